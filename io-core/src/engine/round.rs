//! One scheduling round, fair across services: every service with due work gets up to
//! `quantum` tasks, in round-robin order from where the previous round stopped. A burst of any
//! size from one service therefore delays another service's message by at most one round.

use std::sync::PoisonError;

use futures::StreamExt;

use crate::{Engine, ServiceId, Store, StoreError, Task, TaskKind};

/// What a round did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RoundReport {
    /// Services visited.
    pub services: usize,
    /// Tasks claimed and run.
    pub tasks: usize,
    /// Tasks whose result could not be recorded (they return when their lease ends).
    pub failed: usize,
}

impl<S: Store> Engine<S> {
    /// Runs one round: claim due tasks fairly across services, run them concurrently (up to
    /// `max_in_flight`), record their results.
    pub async fn run_round(&self) -> Result<RoundReport, StoreError> {
        let now = self.clock.now();
        let services = self.services_in_turn(now).await?;
        if services.is_empty() {
            return Ok(RoundReport::default());
        }
        let lease_until = now.plus(self.config.lease);
        let tasks = self
            .store
            .claim_tasks(&services, now, self.config.quantum, lease_until)
            .await?;
        let count = tasks.len();
        let (mut process, mut deliver, mut callback) = (Vec::new(), Vec::new(), Vec::new());
        for task in tasks {
            match task.kind {
                TaskKind::Process(_) => process.push(task),
                TaskKind::Deliver(_) => deliver.push(task),
                TaskKind::Callback(_) => callback.push(task),
            }
        }
        let (process_failed, deliver_failed, callback_failed) = futures::join!(
            self.run_process_tasks(process),
            self.run_deliver_tasks(deliver),
            self.run_callback_tasks(callback)
        );
        let failed = process_failed + deliver_failed + callback_failed;
        Ok(RoundReport {
            services: services.len(),
            tasks: count,
            failed,
        })
    }

    /// The services with due work, starting after the one the previous round ended with.
    async fn services_in_turn(&self, now: crate::Timestamp) -> Result<Vec<ServiceId>, StoreError> {
        let limit = self.config.services_per_round;
        let cursor = self
            .round_robin_cursor
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let mut services = self.store.due_services(now, cursor.as_ref(), limit).await?;
        if services.len() < limit && cursor.is_some() {
            let wrapped = self
                .store
                .due_services(now, None, limit - services.len())
                .await?;
            for service in wrapped {
                if !services.contains(&service) {
                    services.push(service);
                }
            }
        }
        *self
            .round_robin_cursor
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = services.last().cloned();
        Ok(services)
    }

    /// Decides the process tasks concurrently, then records all the decisions with one call,
    /// so the store can share one transaction and one flush among them.
    async fn run_process_tasks(&self, tasks: Vec<Task>) -> usize {
        if tasks.is_empty() {
            return 0;
        }
        let decided: Vec<_> = futures::stream::iter(tasks)
            .map(|task| async move {
                let TaskKind::Process(id) = task.kind else {
                    return Ok(None);
                };
                self.process(task, id).await
            })
            .buffer_unordered(self.config.max_in_flight)
            .collect()
            .await;
        let mut failed = 0;
        let mut records = Vec::with_capacity(decided.len());
        for result in decided {
            match result {
                Ok(Some(record)) => records.push(record),
                Ok(None) => {}
                Err(error) => {
                    failed += 1;
                    tracing::warn!(%error, "processing failed; the task returns when its lease ends");
                }
            }
        }
        let observed: Vec<_> = if !self.observers.is_empty() {
            records
                .iter()
                .map(|r| {
                    (
                        r.message.id,
                        r.message.sender_service_id.clone(),
                        r.at,
                        r.events.clone(),
                    )
                })
                .collect()
        } else {
            Vec::new()
        };
        let results = self.store.commit_processes(records).await;
        for (index, result) in results.into_iter().enumerate() {
            match result {
                Ok(()) => {
                    if let Some((id, service, at, events)) = observed.get(index) {
                        self.observe(*id, service, *at, events);
                    }
                }
                Err(error) => {
                    failed += 1;
                    tracing::warn!(%error, "decision not recorded; the task returns when its lease ends");
                }
            }
        }
        failed
    }
}
