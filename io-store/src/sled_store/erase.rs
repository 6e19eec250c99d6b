//! Erasing a citizen (GDPR deletion): one transaction, run by the committer as exclusive work
//! so that it is serialized with the pipeline's writes.
//!
//! What to erase is found in two steps. The citizen's own records (profile, preferences,
//! activations, installations) are not written through the committer, so their keys are
//! collected first, on the caller's thread: activations, keyed service first, take a scan of
//! them all, which must not hold up the pipeline. Then, on the committer thread, `recipients`
//! gives the citizen's messages exactly (only the committer writes it), and one transaction
//! removes everything. A message's inbox entry, deliveries and tasks are found by key, not by
//! scan: its deliveries are one per channel at most, and a queued task sits at its lease's end
//! while leased, else at its due time (acceptance for processing, the next attempt for a
//! delivery). Leases and queue entries are read inside the transaction, because claims change
//! them from other threads.

use io_core::{
    ChannelKind, Delivery, DeliveryId, ErasureReport, FiscalCode, MessageId, StoreError,
    StoredMessage, TaskKind, Timestamp,
};
use sled::Transactional;
use sled::transaction::TransactionalTree;

use super::committer::{Exclusive, Output, PipelineTrees, TxResult, from_tx};
use super::{LeaseEntry, SledStore, backend, citizen_message_id, keys, tx_decode};

/// The keys of a citizen's own records, found before the erasure runs.
struct OwnRecords {
    profile: Vec<u8>,
    preferences: Vec<sled::IVec>,
    activations: Vec<sled::IVec>,
    installations: Vec<sled::IVec>,
}

/// The trees of the citizen's own records (handles: cheap clones).
struct OwnTrees {
    profiles: sled::Tree,
    preferences: sled::Tree,
    activations: sled::Tree,
    installations: sled::Tree,
}

/// The pipeline trees an erasure writes, inside its transaction.
struct MessageTx<'a> {
    messages: &'a TransactionalTree,
    queue: &'a TransactionalTree,
    leases: &'a TransactionalTree,
    inbox: &'a TransactionalTree,
    deliveries: &'a TransactionalTree,
    recipients: &'a TransactionalTree,
}

/// Erases `fiscal_code`'s data: see `Store::erase_citizen`.
pub(super) async fn erase_citizen(
    store: &SledStore,
    fiscal_code: &FiscalCode,
) -> Result<ErasureReport, StoreError> {
    let inner = &*store.inner;
    let own = OwnRecords {
        profile: fiscal_code.as_str().as_bytes().to_vec(),
        preferences: prefix_keys(&inner.preferences, fiscal_code)?,
        activations: store
            .activation_entries(fiscal_code)?
            .into_iter()
            .map(|(key, _)| key)
            .collect(),
        installations: prefix_keys(&inner.installations, fiscal_code)?,
    };
    let trees = OwnTrees {
        profiles: inner.profiles.clone(),
        preferences: inner.preferences.clone(),
        activations: inner.activations.clone(),
        installations: inner.installations.clone(),
    };
    let work = erasure(fiscal_code.clone(), trees, own);
    match inner.committer.apply_exclusive(work, true).await? {
        Output::Erased(report) => {
            store.add_backlog(-(report.tasks as i64));
            Ok(report)
        }
        _ => Err(StoreError::Backend("unexpected committer output".into())),
    }
}

/// The keys of `tree` that start with `fiscal_code SEP`.
fn prefix_keys(tree: &sled::Tree, fiscal_code: &FiscalCode) -> Result<Vec<sled::IVec>, StoreError> {
    tree.scan_prefix(keys::pair(fiscal_code.as_str(), ""))
        .keys()
        .map(|key| key.map_err(backend))
        .collect()
}

/// The committer's work: find the citizen's messages, then remove everything in one
/// transaction.
fn erasure(fiscal_code: FiscalCode, own_trees: OwnTrees, own: OwnRecords) -> Exclusive {
    Box::new(move |pipeline: &PipelineTrees| {
        let messages: Vec<MessageId> = pipeline
            .recipients
            .scan_prefix(fiscal_code.as_str().as_bytes())
            .keys()
            .map(|key| citizen_message_id("recipients", &key.map_err(backend)?))
            .collect::<Result<_, _>>()?;
        let report = (
            &own_trees.profiles,
            &own_trees.preferences,
            &own_trees.activations,
            &own_trees.installations,
            &pipeline.messages,
            &pipeline.queue,
            &pipeline.leases,
            &pipeline.inbox,
            &pipeline.deliveries,
            &pipeline.recipients,
        )
            .transaction(
                |(
                    profiles,
                    preferences,
                    activations,
                    installations,
                    messages_tx,
                    queue,
                    leases,
                    inbox,
                    deliveries,
                    recipients,
                )| {
                    let mut report = ErasureReport {
                        profile: profiles.remove(own.profile.as_slice())?.is_some(),
                        preferences: remove_all(preferences, &own.preferences)?,
                        activations: remove_all(activations, &own.activations)?,
                        installations: remove_all(installations, &own.installations)?,
                        ..ErasureReport::default()
                    };
                    let tx = MessageTx {
                        messages: messages_tx,
                        queue,
                        leases,
                        inbox,
                        deliveries,
                        recipients,
                    };
                    for id in &messages {
                        erase_message(&tx, &fiscal_code, id, &mut report)?;
                    }
                    Ok(report)
                },
            )
            .map_err(from_tx)?;
        Ok(Output::Erased(report))
    })
}

/// Removes every key that is present; returns how many were.
fn remove_all(tree: &TransactionalTree, keys: &[sled::IVec]) -> TxResult<u64> {
    let mut removed = 0;
    for key in keys {
        if tree.remove(key.clone())?.is_some() {
            removed += 1;
        }
    }
    Ok(removed)
}

/// Removes a message with its index and inbox entries, deliveries, queued tasks and leases.
fn erase_message(
    tx: &MessageTx<'_>,
    fiscal_code: &FiscalCode,
    id: &MessageId,
    report: &mut ErasureReport,
) -> TxResult<()> {
    let entry = keys::citizen_message(fiscal_code, id);
    tx.recipients.remove(entry.as_slice())?;
    tx.inbox.remove(entry)?;
    let Some(bytes) = tx.messages.remove(&id.to_bytes())? else {
        return Ok(());
    };
    let message = tx_decode::<StoredMessage>("messages", &bytes)?.message;
    report.messages += 1;
    // Each task with the time it is queued at when no lease holds it.
    let mut tasks: Vec<(TaskKind, Option<Timestamp>)> =
        vec![(TaskKind::Process(*id), Some(message.created_at))];
    for channel in ChannelKind::ALL {
        let delivery = DeliveryId::new(*id, channel);
        let due = match tx.deliveries.remove(&keys::delivery(&delivery))? {
            Some(bytes) => {
                report.deliveries += 1;
                Some(tx_decode::<Delivery>("deliveries", &bytes)?.next_attempt_at)
            }
            None => None,
        };
        tasks.push((TaskKind::Deliver(delivery), due));
    }
    for (task, due) in tasks {
        let queued_at = match tx.leases.remove(&keys::task_id(&task))? {
            Some(bytes) => Some(tx_decode::<LeaseEntry>("leases", &bytes)?.until),
            None => due,
        };
        if let Some(at) = queued_at
            && tx
                .queue
                .remove(keys::queue(&message.sender_service_id, at, &task))?
                .is_some()
        {
            report.tasks += 1;
        }
    }
    Ok(())
}
