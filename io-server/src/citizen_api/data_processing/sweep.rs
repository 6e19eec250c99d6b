//! Carrying GDPR requests out: [`process_due_requests`] takes the requests due at a given
//! instant (`Store::due_data_requests`, earliest first) and carries each out; [`run`] calls it
//! every [`SWEEP_INTERVAL`] until the server stops.
//!
//! Each request is first moved PENDING → WIP by a compare-and-swap (an abort meanwhile wins,
//! and the request is left alone). A DOWNLOAD is then closed (its archive is assembled when
//! fetched). A DELETE is one store operation, `Store::erase_citizen`: the citizen's profile
//! (and with it the claim on a validated email), preferences, activations, installations,
//! message flags, DOWNLOAD request and every message to them with its deliveries and tasks
//! go, the services' feed records them unsubscribed, and the DELETE request is written CLOSED
//! — the trace that the erasure was done — all at once. Journals stay, naming the citizen
//! only by hash.

use std::sync::Arc;
use std::time::Duration;

use io_core::{
    Choice, DataRequest, DueRequest, Erasure, FiscalCode, RequestStatus, Store, StoreError,
    Timestamp,
};
use tokio::sync::watch;
use tokio::time::MissedTickBehavior;

use crate::app::App;

/// How often a running server looks for due requests.
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(60);

/// How many due requests are read from the store at a time.
const BATCH: usize = 100;

/// Carries out every request due at `now`; returns how many were carried out. A request
/// whose work fails with a retriable store error stays WIP and is retried by the next call;
/// one that fails otherwise ends FAILED.
pub async fn process_due_requests<S: Store>(
    app: &App<S>,
    now: Timestamp,
) -> Result<usize, StoreError> {
    let mut done = 0;
    let mut after: Option<DueRequest> = None;
    loop {
        let batch = app
            .store
            .due_data_requests(now, after.as_ref(), BATCH)
            .await?;
        let Some(last) = batch.last().cloned() else {
            return Ok(done);
        };
        for due in &batch {
            if carry_out(app, due, now).await? {
                done += 1;
            }
        }
        after = Some(last);
    }
}

/// Calls [`process_due_requests`] at once and then every [`SWEEP_INTERVAL`] until `stop`
/// turns true (or its sender is dropped). A sweep under way, or already due when `stop`
/// turns, is finished first.
pub async fn run<S: Store>(app: Arc<App<S>>, mut stop: watch::Receiver<bool>) {
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

/// Carries out one due request; true when done.
async fn carry_out<S: Store>(
    app: &App<S>,
    due: &DueRequest,
    now: Timestamp,
) -> Result<bool, StoreError> {
    let fiscal_code = &due.fiscal_code;
    let request = due.request;
    let started = match request.status {
        RequestStatus::Pending => {
            let started = request.moved_to(RequestStatus::Wip, now);
            if !swap(app, fiscal_code, &request, &started).await? {
                // Aborted or carried out meanwhile.
                return Ok(false);
            }
            started
        }
        // Left WIP by a failed or interrupted attempt: carrying out again is harmless.
        _ => request,
    };
    let closed = started.moved_to(RequestStatus::Closed, now);
    let outcome = match request.choice {
        // False only if another worker closed it meanwhile.
        Choice::Download => swap(app, fiscal_code, &started, &closed).await,
        Choice::Delete => erase(app, fiscal_code, now, closed).await.map(|()| true),
    };
    match outcome {
        Ok(done) => Ok(done),
        Err(error) if error.is_retriable() => {
            tracing::warn!(%error, citizen = ?fiscal_code, choice = request.choice.as_str(), "GDPR request failed; retried at the next sweep");
            Ok(false)
        }
        Err(error) => {
            tracing::error!(%error, citizen = ?fiscal_code, choice = request.choice.as_str(), "GDPR request failed");
            let failed = started.moved_to(RequestStatus::Failed, now);
            swap(app, fiscal_code, &started, &failed).await?;
            Ok(false)
        }
    }
}

async fn swap<S: Store>(
    app: &App<S>,
    fiscal_code: &FiscalCode,
    from: &DataRequest,
    to: &DataRequest,
) -> Result<bool, StoreError> {
    app.store
        .swap_data_request(fiscal_code, from.choice, Some(from), Some(to))
        .await
}

/// Erases the citizen's data and closes their DELETE request, in one store operation.
async fn erase<S: Store>(
    app: &App<S>,
    fiscal_code: &FiscalCode,
    now: Timestamp,
    closed: DataRequest,
) -> Result<(), StoreError> {
    let report = app
        .store
        .erase_citizen(&Erasure {
            fiscal_code: fiscal_code.clone(),
            at: now,
            closes: Some(closed),
        })
        .await?;
    tracing::info!(
        citizen = ?fiscal_code,
        profile = report.profile,
        preferences = report.preferences,
        activations = report.activations,
        installations = report.installations,
        messages = report.messages,
        deliveries = report.deliveries,
        tasks = report.tasks,
        flags = report.flags,
        "citizen's data erased"
    );
    Ok(())
}
