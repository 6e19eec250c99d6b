//! GDPR requests and the erasure of a citizen, as committer jobs.
//!
//! A request is one record per citizen and choice; while open (PENDING or WIP) it also has an
//! entry in the index of due requests, written and removed in the same job as the record, so
//! the worker finds exactly the open requests, earliest first.
//!
//! The erasure runs as exclusive work (a group of its own, so its scans see the tree with
//! nothing pending): it finds the citizen's records by prefix (activations, keyed service
//! first, by a scan of them all) and the citizen's messages through the recipients index, then
//! removes everything in one batch. Each message's state gives way to an erased-journal record
//! that keeps the evidence (the journal and its head name the citizen only by hash), and its
//! queued tasks leave the queue, so a worker still holding one gets `LeaseLost`.

use io_core::{
    Choice, DataRequest, Erasure, ErasureReport, FeedEvent, FeedScope, FiscalCode, MessageId,
    Profile, StoreError, Subscription,
};

use super::citizens::{email_key, feed_in};
use super::committer::{Job, Output, Tx};
use super::keys::{self, kind};
use super::message_state::MessageState;
use super::{backend, decode, encode};

/// Writes (or removes) a request record and its entry in the index of due requests.
fn put_request_in(
    tx: &mut Tx<'_>,
    fiscal_code: &FiscalCode,
    choice: Choice,
    previous: Option<&DataRequest>,
    new: Option<&DataRequest>,
) {
    if let Some(previous) = previous.filter(|r| r.is_open()) {
        tx.remove(keys::data_request_due(previous.due_at, fiscal_code, choice));
    }
    let key = keys::data_request(fiscal_code, choice);
    match new {
        Some(request) => {
            if request.is_open() {
                tx.insert(
                    keys::data_request_due(request.due_at, fiscal_code, choice),
                    &[][..],
                );
            }
            tx.insert(key, encode(request));
        }
        None => tx.remove(key),
    }
}

fn request_in(
    tx: &Tx<'_>,
    fiscal_code: &FiscalCode,
    choice: Choice,
) -> Result<Option<DataRequest>, StoreError> {
    match tx.get(&keys::data_request(fiscal_code, choice))? {
        Some(bytes) => decode("data request", &bytes).map(Some),
        None => Ok(None),
    }
}

/// The job of `swap_data_request`.
pub(crate) fn swap_request(
    fiscal_code: FiscalCode,
    choice: Choice,
    expected: Option<DataRequest>,
    new: Option<DataRequest>,
) -> Job {
    Box::new(move |tx| {
        let current = request_in(tx, &fiscal_code, choice)?;
        if current != expected {
            return Ok(Output::Swapped(false));
        }
        put_request_in(tx, &fiscal_code, choice, current.as_ref(), new.as_ref());
        Ok(Output::Swapped(true))
    })
}

/// The keys under `prefix`, read from the tree (exclusive work only).
fn keys_with_prefix(tx: &Tx<'_>, prefix: &[u8]) -> Result<Vec<sled::IVec>, StoreError> {
    tx.tree()
        .scan_prefix(prefix)
        .keys()
        .map(|key| key.map_err(backend))
        .collect()
}

/// The job of `erase_citizen` (exclusive).
pub(crate) fn erase(erasure: Erasure) -> Job {
    Box::new(move |tx| {
        let fiscal_code = &erasure.fiscal_code;
        let mut report = ErasureReport::default();
        let profile_key = keys::citizen(kind::PROFILE, fiscal_code);
        if let Some(bytes) = tx.get(&profile_key)? {
            let profile: Profile = decode("profile", &bytes)?;
            if let Some(email) = profile
                .email
                .as_ref()
                .filter(|_| profile.is_email_validated)
            {
                let owner_key = email_key(email);
                if tx.get(&owner_key)?.as_deref() == Some(fiscal_code.as_str().as_bytes()) {
                    tx.remove(owner_key);
                }
            }
            tx.remove(profile_key);
            report.profile = true;
        }
        for key in keys_with_prefix(
            tx,
            &keys::pair_prefix(kind::PREFERENCE, fiscal_code.as_str()),
        )? {
            tx.remove(key.to_vec());
            report.preferences += 1;
        }
        for item in tx.tree().scan_prefix([kind::ACTIVATION]).keys() {
            let key = item.map_err(backend)?;
            if keys::pair_second(&key[1..]) == Some(fiscal_code.as_str().as_bytes()) {
                tx.remove(key.to_vec());
                report.activations += 1;
            }
        }
        for key in keys_with_prefix(
            tx,
            &keys::pair_prefix(kind::INSTALLATION, fiscal_code.as_str()),
        )? {
            tx.remove(key.to_vec());
            report.installations += 1;
        }
        for key in keys_with_prefix(tx, &keys::citizen(kind::FLAGS, fiscal_code))? {
            tx.remove(key.to_vec());
            report.flags += 1;
        }
        let download = request_in(tx, fiscal_code, Choice::Download)?;
        if download.is_some() {
            put_request_in(tx, fiscal_code, Choice::Download, download.as_ref(), None);
        }
        for key in keys_with_prefix(tx, &keys::citizen(kind::RECIPIENT, fiscal_code))? {
            let message = keys::trailing_message_id(&key).ok_or_else(|| StoreError::Corrupt {
                what: "recipients",
                detail: "malformed key".into(),
            })?;
            erase_message(tx, fiscal_code, &message, &mut report)?;
        }
        if report.profile {
            feed_in(
                tx,
                &FeedEvent {
                    at: erasure.at,
                    scope: FeedScope::AllServices,
                    citizen: fiscal_code.hash(),
                    change: Subscription::Unsubscribed,
                },
            );
        }
        if let Some(closed) = &erasure.closes {
            let current = request_in(tx, fiscal_code, Choice::Delete)?;
            put_request_in(
                tx,
                fiscal_code,
                Choice::Delete,
                current.as_ref(),
                Some(closed),
            );
        }
        Ok(Output::Erased(report))
    })
}

/// Removes a message with its index entries, deliveries and queued tasks, keeping its journal.
fn erase_message(
    tx: &mut Tx<'_>,
    fiscal_code: &FiscalCode,
    message: &MessageId,
    report: &mut ErasureReport,
) -> Result<(), StoreError> {
    tx.remove(keys::citizen_message(kind::RECIPIENT, fiscal_code, message));
    tx.remove(keys::citizen_message(kind::INBOX, fiscal_code, message));
    tx.remove(keys::message(kind::MESSAGE, message));
    let Some(state) = tx.state(message)? else {
        return Ok(());
    };
    report.messages += 1;
    report.deliveries += state.deliveries.len() as u64;
    for task in tx.scheduler().tasks_of(message) {
        tx.unqueue(task);
        report.tasks += 1;
    }
    for channel in io_core::ChannelKind::ALL {
        tx.attempt_finished(io_core::DeliveryId::new(*message, channel));
    }
    // The journal's records stay; its head moves to a record of its own.
    let mut erased = MessageState::new(state.header);
    erased.header.outbox = None;
    tx.insert(keys::message(kind::ERASED, message), erased.encode());
    tx.put_state(*message, None);
    Ok(())
}
