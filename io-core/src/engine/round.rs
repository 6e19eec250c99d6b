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
        let failed = futures::stream::iter(tasks)
            .map(|task| self.run_task(task))
            .buffer_unordered(self.config.max_in_flight)
            .filter(|result| std::future::ready(result.is_err()))
            .count()
            .await;
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

    async fn run_task(&self, task: Task) -> Result<(), StoreError> {
        let result = match task.kind {
            TaskKind::Process(id) => self.process(task.clone(), id).await,
            TaskKind::Deliver(id) => self.deliver(task.clone(), id).await,
        };
        if let Err(error) = &result {
            tracing::warn!(task = ?task.kind, %error, "task result not recorded; it returns when its lease ends");
        }
        result
    }
}
