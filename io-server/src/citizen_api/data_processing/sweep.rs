//! Carrying GDPR requests out: [`process_due_requests`] takes the requests due at a given
//! instant from the schedule and carries each out; [`run`] calls it every
//! [`SWEEP_INTERVAL`] until the server stops.
//!
//! A DOWNLOAD is closed at once (its archive is assembled when fetched). A DELETE erases the
//! citizen with `Store::erase_citizen` (profile, preferences, activations, installations,
//! every message to them with its deliveries and tasks; journals stay, naming the citizen only
//! by hash), then the server's own records of them: message flags, the claim on their
//! validated email, a DOWNLOAD request; the services' feed records them as unsubscribed. The
//! DELETE request itself stays, CLOSED, as the trace that the erasure was done.

use std::sync::Arc;
use std::time::Duration;

use io_core::{FiscalCode, Store, StoreError, Timestamp};
use tokio::sync::watch;
use tokio::time::MissedTickBehavior;

use super::{Choice, DataRequest, RequestStatus};
use crate::app::App;
use crate::records::{FeedScope, ScheduledRequest, Subscription};

/// How often a running server looks for due requests.
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(60);

/// How many scheduled requests are read from the store at a time.
const BATCH: usize = 100;

/// How long an entry of the schedule whose request does not ask for it (aborted, replaced,
/// never stored) is kept after its due time before it is dropped. While a request is being
/// asked for, its entry is written before its record: a sweep in between must not drop it.
const ORPHAN_ENTRY_KEPT: Duration = Duration::from_secs(3600);

/// Carries out every request due at `now`; returns how many were carried out. A request
/// whose erasure fails with a retriable store error stays WIP and is retried by the next
/// call; one that fails otherwise ends FAILED.
pub async fn process_due_requests(app: &App, now: Timestamp) -> Result<usize, StoreError> {
    let mut done = 0;
    let mut after: Option<ScheduledRequest> = None;
    loop {
        let batch = app
            .records
            .due_data_requests(now, after.as_ref(), BATCH)
            .await?;
        let Some(last) = batch.last().cloned() else {
            return Ok(done);
        };
        for scheduled in &batch {
            if carry_out(app, scheduled, now).await? {
                done += 1;
            }
        }
        after = Some(last);
    }
}

/// Calls [`process_due_requests`] at once and then every [`SWEEP_INTERVAL`] until `stop`
/// turns true (or its sender is dropped). A sweep under way, or already due when `stop`
/// turns, is finished first.
pub async fn run(app: Arc<App>, mut stop: watch::Receiver<bool>) {
    let mut ticks = tokio::time::interval(SWEEP_INTERVAL);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    while !*stop.borrow_and_update() {
        tokio::select! {
            biased;
            _ = ticks.tick() => match process_due_requests(&app, app.clock.now()).await {
                Ok(0) => {}
                Ok(done) => tracing::info!(requests = done, "GDPR requests carried out"),
                Err(error) => {
                    tracing::warn!(%error, "GDPR requests: sweep failed, retried at the next one");
                }
            },
            changed = stop.changed() => {
                if changed.is_err() {
                    break;
                }
            }
        }
    }
}

/// Carries out one scheduled request if its record still asks for it; true when done.
async fn carry_out(
    app: &App,
    scheduled: &ScheduledRequest,
    now: Timestamp,
) -> Result<bool, StoreError> {
    let fiscal_code = &scheduled.fiscal_code;
    let choice = match scheduled.choice.as_str() {
        "DOWNLOAD" => Choice::Download,
        "DELETE" => Choice::Delete,
        _ => return drop_entry(app, scheduled).await,
    };
    let request: Option<DataRequest> = app
        .records
        .data_request(fiscal_code, choice.as_str())
        .await?;
    let Some(request) = request.filter(|r| r.is_open() && r.due_at == scheduled.due) else {
        // Aborted, replaced by a later request (with its own entry), never stored, or not
        // stored yet.
        if now >= scheduled.due.plus(ORPHAN_ENTRY_KEPT) {
            return drop_entry(app, scheduled).await;
        }
        return Ok(false);
    };
    let started = match request.status {
        RequestStatus::Pending => {
            let started = request.moved_to(RequestStatus::Wip, now);
            if !swap(app, fiscal_code, &request, &started).await? {
                // Aborted meanwhile: the next sweep sees it and drops the hint.
                return Ok(false);
            }
            started
        }
        // Left WIP by a failed or interrupted attempt: carrying out again is harmless.
        _ => request,
    };
    let outcome = match choice {
        Choice::Download => Ok(()),
        Choice::Delete => erase(app, fiscal_code, now).await,
    };
    let finished = match outcome {
        Ok(()) => started.moved_to(RequestStatus::Closed, now),
        Err(error) if error.is_retriable() => {
            tracing::warn!(%error, citizen = ?fiscal_code, choice = choice.as_str(), "GDPR request failed; retried at the next sweep");
            return Ok(false);
        }
        Err(error) => {
            tracing::error!(%error, citizen = ?fiscal_code, choice = choice.as_str(), "GDPR request failed");
            started.moved_to(RequestStatus::Failed, now)
        }
    };
    swap(app, fiscal_code, &started, &finished).await?;
    app.records.unschedule_data_request(scheduled).await?;
    Ok(finished.status == RequestStatus::Closed)
}

async fn drop_entry(app: &App, scheduled: &ScheduledRequest) -> Result<bool, StoreError> {
    app.records.unschedule_data_request(scheduled).await?;
    Ok(false)
}

async fn swap(
    app: &App,
    fiscal_code: &FiscalCode,
    from: &DataRequest,
    to: &DataRequest,
) -> Result<bool, StoreError> {
    app.records
        .swap_data_request(fiscal_code, from.choice.as_str(), Some(from), Some(to))
        .await
}

/// Erases the citizen's data, then the server's records of them.
async fn erase(app: &App, fiscal_code: &FiscalCode, now: Timestamp) -> Result<(), StoreError> {
    let email = app
        .store
        .profile(fiscal_code)
        .await?
        .and_then(|p| p.email.filter(|_| p.is_email_validated));
    let report = app.store.erase_citizen(fiscal_code).await?;
    let flags = app.records.forget_message_flags(fiscal_code).await?;
    if let Some(email) = email {
        app.records
            .release_email(email.as_str(), fiscal_code)
            .await?;
    }
    app.records
        .put_data_request::<DataRequest>(fiscal_code, Choice::Download.as_str(), None)
        .await?;
    if report.profile {
        app.records
            .record_subscription(
                now,
                &FeedScope::AllServices,
                &fiscal_code.hash(),
                Subscription::Unsubscribed,
            )
            .await?;
    }
    tracing::info!(
        citizen = ?fiscal_code,
        profile = report.profile,
        preferences = report.preferences,
        activations = report.activations,
        installations = report.installations,
        messages = report.messages,
        deliveries = report.deliveries,
        tasks = report.tasks,
        flags,
        "citizen's data erased"
    );
    Ok(())
}
