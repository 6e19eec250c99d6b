//! The task queue of a sled store, in memory.
//!
//! A sled store belongs to one process (sled locks its directory), so the queue and its leases
//! need not be written to disk: the durable truth is in the message states (an ACCEPTED status
//! is a process task, a delivery not final is a deliver task at its next attempt, an open
//! callback outbox that is due is a callback task), and `Scheduler::rebuild` derives the queue
//! from them when the store opens. Claims then cost no write at all, and a restart releases
//! every lease at once instead of waiting for them to run out.
//!
//! Per service, tasks are ordered by the time they are due (or, while leased, the time their
//! lease runs out, so a dead worker's tasks come back by themselves), then by message, so a
//! message's deliveries are claimed together and their outcomes share a write.

use std::collections::{BTreeMap, BTreeSet};

use super::fast_hash::FastMap;
use std::ops::Bound;

use io_core::{ChannelKind, DeliveryId, Lease, MessageId, ServiceId, Task, TaskKind, Timestamp};

/// A task's place in its service's queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Slot {
    at: Timestamp,
    message: MessageId,
    sub: u8,
}

const SUB_PROCESS: u8 = 0;
const SUB_CALLBACK: u8 = 9;

fn sub_of(kind: &TaskKind) -> u8 {
    match kind {
        TaskKind::Process(_) => SUB_PROCESS,
        TaskKind::Deliver(id) => id.channel.code(),
        TaskKind::Callback(_) => SUB_CALLBACK,
    }
}

fn kind_of(slot: &Slot) -> TaskKind {
    match slot.sub {
        SUB_PROCESS => TaskKind::Process(slot.message),
        SUB_CALLBACK => TaskKind::Callback(slot.message),
        code => match ChannelKind::from_code(code) {
            Some(channel) => TaskKind::Deliver(DeliveryId::new(slot.message, channel)),
            // Only `sub_of` makes slots.
            None => TaskKind::Callback(slot.message),
        },
    }
}

#[derive(Debug, Clone)]
struct Queued {
    service: ServiceId,
    at: Timestamp,
    /// The token of the lease holding it, if any.
    lease: Option<u64>,
}

/// What a change did to the set of open messages (those with at least one task).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OpenChange {
    /// The message had no task and now has one.
    Opened,
    /// The message's last task is gone.
    Closed,
    /// Neither.
    None,
}

/// The queue: tasks per service in due order, their leases, and the open messages.
#[derive(Debug, Default)]
pub(crate) struct Scheduler {
    queues: BTreeMap<ServiceId, BTreeSet<Slot>>,
    tasks: FastMap<TaskKind, Queued>,
    open: FastMap<MessageId, u32>,
    tokens: u64,
}

impl Scheduler {
    /// Makes every token issued from now on greater than `floor`.
    pub(crate) fn start_tokens_after(&mut self, floor: u64) {
        self.tokens = self.tokens.max(floor);
    }

    /// Queues `kind` for `service` at `due`, or moves it there, releasing any lease.
    pub(crate) fn put(
        &mut self,
        kind: TaskKind,
        service: &ServiceId,
        due: Timestamp,
    ) -> OpenChange {
        let message = kind.message();
        let change = match self.tasks.get(&kind) {
            Some(queued) => {
                let old = Slot {
                    at: queued.at,
                    message,
                    sub: sub_of(&kind),
                };
                let service = queued.service.clone();
                self.unqueue(&service, &old);
                OpenChange::None
            }
            None => {
                let count = self.open.entry(message).or_insert(0);
                *count += 1;
                if *count == 1 {
                    OpenChange::Opened
                } else {
                    OpenChange::None
                }
            }
        };
        self.queues
            .entry(service.clone())
            .or_default()
            .insert(Slot {
                at: due,
                message,
                sub: sub_of(&kind),
            });
        self.tasks.insert(
            kind,
            Queued {
                service: service.clone(),
                at: due,
                lease: None,
            },
        );
        change
    }

    /// Removes `kind` (absent is fine).
    pub(crate) fn remove(&mut self, kind: &TaskKind) -> OpenChange {
        let Some(queued) = self.tasks.remove(kind) else {
            return OpenChange::None;
        };
        let message = kind.message();
        self.unqueue(
            &queued.service,
            &Slot {
                at: queued.at,
                message,
                sub: sub_of(kind),
            },
        );
        match self.open.get_mut(&message) {
            Some(count) if *count > 1 => {
                *count -= 1;
                OpenChange::None
            }
            Some(_) => {
                self.open.remove(&message);
                OpenChange::Closed
            }
            None => OpenChange::None,
        }
    }

    fn unqueue(&mut self, service: &ServiceId, slot: &Slot) {
        if let Some(queue) = self.queues.get_mut(service) {
            queue.remove(slot);
            if queue.is_empty() {
                self.queues.remove(service);
            }
        }
    }

    /// Whether `task`'s lease is the one in force (no other claim since).
    pub(crate) fn holds(&self, task: &Task) -> bool {
        self.tasks
            .get(&task.kind)
            .is_some_and(|queued| queued.lease == Some(task.lease.token))
    }

    /// Claims up to `per_service` due tasks of each of `services`, leased until `until`.
    pub(crate) fn claim(
        &mut self,
        services: &[ServiceId],
        now: Timestamp,
        per_service: usize,
        until: Timestamp,
    ) -> Vec<Task> {
        let mut claimed = Vec::new();
        for service in services {
            let Some(queue) = self.queues.get_mut(service) else {
                continue;
            };
            let due: Vec<Slot> = queue
                .iter()
                .take_while(|slot| slot.at <= now)
                .take(per_service)
                .copied()
                .collect();
            for slot in due {
                queue.remove(&slot);
                queue.insert(Slot { at: until, ..slot });
                self.tokens += 1;
                let kind = kind_of(&slot);
                if let Some(queued) = self.tasks.get_mut(&kind) {
                    queued.at = until;
                    queued.lease = Some(self.tokens);
                }
                claimed.push(Task {
                    service_id: service.clone(),
                    kind,
                    lease: Lease {
                        until,
                        token: self.tokens,
                    },
                });
            }
        }
        claimed
    }

    /// Services with a task due at `now`, in id order, strictly after `after`, at most `limit`.
    pub(crate) fn due_services(
        &self,
        now: Timestamp,
        after: Option<&ServiceId>,
        limit: usize,
    ) -> Vec<ServiceId> {
        let start = match after {
            Some(after) => Bound::Excluded(after),
            None => Bound::Unbounded,
        };
        self.queues
            .range::<ServiceId, _>((start, Bound::Unbounded))
            .filter(|(_, queue)| queue.first().is_some_and(|slot| slot.at <= now))
            .take(limit)
            .map(|(service, _)| service.clone())
            .collect()
    }

    /// When the earliest task is due.
    pub(crate) fn next_due_at(&self) -> Option<Timestamp> {
        self.queues
            .values()
            .filter_map(|queue| queue.first().map(|slot| slot.at))
            .min()
    }

    /// How many tasks are queued.
    pub(crate) fn backlog(&self) -> u64 {
        self.tasks.len() as u64
    }

    /// Whether `message` has at least one task.
    pub(crate) fn is_open(&self, message: &MessageId) -> bool {
        self.open.contains_key(message)
    }

    /// The messages with at least one task.
    pub(crate) fn open_messages(&self) -> impl Iterator<Item = &MessageId> {
        self.open.keys()
    }

    /// The queued tasks of `message` (for an erasure).
    pub(crate) fn tasks_of(&self, message: &MessageId) -> Vec<TaskKind> {
        let mut kinds = vec![TaskKind::Process(*message), TaskKind::Callback(*message)];
        kinds.extend(
            ChannelKind::ALL
                .into_iter()
                .map(|channel| TaskKind::Deliver(DeliveryId::new(*message, channel))),
        );
        kinds.retain(|kind| self.tasks.contains_key(kind));
        kinds
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(ms: i64) -> Timestamp {
        Timestamp::from_millis(ms)
    }

    #[test]
    fn a_message_s_tasks_are_claimed_together_and_leases_fence() {
        let mut scheduler = Scheduler::default();
        let service = ServiceId::parse("svc").unwrap();
        let (a, b) = (MessageId::from_parts(1, 1), MessageId::from_parts(1, 2));
        let deliver = |m, c| TaskKind::Deliver(DeliveryId::new(m, c));
        assert_eq!(
            scheduler.put(deliver(a, ChannelKind::Push), &service, t(10)),
            OpenChange::Opened
        );
        scheduler.put(deliver(b, ChannelKind::Email), &service, t(10));
        assert_eq!(
            scheduler.put(deliver(a, ChannelKind::Email), &service, t(10)),
            OpenChange::None
        );
        let claimed = scheduler.claim(std::slice::from_ref(&service), t(10), 2, t(100));
        assert_eq!(
            claimed.iter().map(|task| task.kind).collect::<Vec<_>>(),
            vec![
                deliver(a, ChannelKind::Email),
                deliver(a, ChannelKind::Push)
            ]
        );
        assert!(scheduler.holds(&claimed[0]));
        assert_eq!(scheduler.next_due_at(), Some(t(10)));
        // The lease runs out: claimed again with a new token, the first claim is fenced.
        scheduler.claim(std::slice::from_ref(&service), t(10), 1, t(100));
        let again = scheduler.claim(std::slice::from_ref(&service), t(100), 1, t(200));
        assert_eq!(again[0].kind, deliver(a, ChannelKind::Email));
        assert!(!scheduler.holds(&claimed[0]) && scheduler.holds(&again[0]));
        assert_eq!(
            scheduler.remove(&deliver(a, ChannelKind::Email)),
            OpenChange::None
        );
        assert_eq!(
            scheduler.remove(&deliver(a, ChannelKind::Push)),
            OpenChange::Closed
        );
        assert_eq!(scheduler.backlog(), 1);
    }
}
