//! Running the server: the HTTP listener, the engine's worker loops (which also send the
//! sender callbacks), the GDPR requests' sweep and the PEC mailbox reader, with a graceful shutdown that stops
//! accepting and lets requests, rounds and a sweep in flight finish, so leases are released by
//! their commits, not left to expire. Every store write the server waits for is durable when
//! it returns, so there is nothing to flush at the end.
//!
//! The listener is hyper's HTTP/1 connection loop rather than `axum::serve`, for the limits a
//! public server needs ([`crate::config::HttpConfig`]): a header-read timeout (slowloris), a
//! body timeout (read by [`crate::body`]), and a bound on connections served at once.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::Request;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use io_core::Store;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tower::ServiceExt;

use crate::app::{App, router};
use crate::config::HttpConfig;

/// A running server.
pub struct Running {
    /// The bound address (useful when the configuration asked for port 0).
    pub local_addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Running {
    /// Begins a graceful shutdown and waits for it to finish.
    pub async fn shutdown(self) -> std::io::Result<()> {
        let _ = self.shutdown.send(true);
        self.task.await.map_err(std::io::Error::other)?
    }

    /// Waits until the server stops (after a shutdown signal sent through [`Running::trigger`]).
    pub async fn wait(self) -> std::io::Result<()> {
        self.task.await.map_err(std::io::Error::other)?
    }

    /// A handle that starts the shutdown when `true` is sent.
    pub fn trigger(&self) -> watch::Sender<bool> {
        self.shutdown.clone()
    }
}

/// Binds `listener` and starts serving `app` with `app.config.workers` engine workers. A
/// process with workers also carries out due GDPR requests
/// ([`crate::citizen_api::data_processing::run`]); an accept-only process (`workers = 0`)
/// leaves that, like deliveries, to the processes that work.
pub fn start<S: Store>(app: Arc<App<S>>, listener: TcpListener) -> std::io::Result<Running> {
    let local_addr = listener.local_addr()?;
    let (shutdown, mut stop) = watch::channel(false);
    let mut workers = Vec::new();
    for _ in 0..app.config.workers {
        let engine = app.engine.clone();
        let stop = shutdown.subscribe();
        workers.push(tokio::spawn(async move { engine.run(stop).await }));
    }
    if app.config.workers > 0 {
        let sweep = crate::citizen_api::data_processing::run(app.clone(), shutdown.subscribe());
        workers.push(tokio::spawn(sweep));
        if let Some(reader) = app.pec_reader.clone() {
            let engine = app.engine.clone();
            let stop = shutdown.subscribe();
            let run = {
                let stop = stop.clone();
                move || {
                    let (reader, engine, stop) = (reader.clone(), engine.clone(), stop.clone());
                    async move { reader.run(engine, stop).await }
                }
            };
            workers.push(tokio::spawn(supervised("PEC mailbox reader", stop, run)));
        }
    }
    let router = router(app.clone());
    let app_for_task = app.clone();
    let task = tokio::spawn(async move {
        let until_stopped = async move {
            while !*stop.borrow_and_update() {
                if stop.changed().await.is_err() {
                    break;
                }
            }
            app_for_task.ready.store(false, Ordering::Relaxed);
            tracing::info!("shutting down: finishing requests and rounds in flight");
        };
        let served = accept_loop(listener, router, &app.config.http, until_stopped).await;
        for worker in workers {
            let _ = worker.await;
        }
        tracing::info!("stopped");
        served
    });
    Ok(Running {
        local_addr,
        shutdown,
        task,
    })
}

/// Runs the task `start` makes until it returns, making it again if it panics (after a
/// second), unless `stop` turned true: used for the PEC mailbox reader, since everything it
/// reads comes from outside and one malformed receipt must not stop the reading of all the
/// others (the panics found so far are contained where they arise, SECURITY.md).
async fn supervised<F, Fut>(what: &'static str, stop: watch::Receiver<bool>, start: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    loop {
        match tokio::spawn(start()).await {
            Ok(()) => return,
            Err(error) if error.is_panic() => {
                tracing::error!(task = what, "a background task panicked; starting it again");
                if *stop.borrow() {
                    return;
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(_) => return,
        }
    }
}

/// How long a request may take to send its body, for [`crate::body`]: put in every request's
/// extensions by the listener (absent when the router is driven directly, as in tests).
#[derive(Debug, Clone, Copy)]
pub struct BodyTimeout(pub Duration);

/// Accepts connections until `until_stopped`, serving each with `router` under the limits of
/// `config`; then waits for the requests in flight.
async fn accept_loop(
    listener: TcpListener,
    router: Router,
    config: &HttpConfig,
    until_stopped: impl std::future::Future<Output = ()>,
) -> std::io::Result<()> {
    let slots = Arc::new(Semaphore::new(config.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(config.header_timeout())
        .keep_alive(true);
    let body_timeout = BodyTimeout(config.body_timeout());
    tokio::pin!(until_stopped);
    loop {
        // A free slot first: at the limit, clients wait in the kernel's backlog.
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => slot.map_err(std::io::Error::other)?,
            () = &mut until_stopped => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: wait, do not spin or stop.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut until_stopped => break,
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            request.extensions_mut().insert(body_timeout);
            router.clone().oneshot(request)
        });
        let connection = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            // A client that hangs up or times out ends its connection; nothing to report.
            let _ = connection.await;
            drop(slot);
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_supervised_task_that_panics_is_started_again_until_it_returns() {
        let starts = Arc::new(AtomicUsize::new(0));
        let (_stop, stopping) = watch::channel(false);
        let counted = starts.clone();
        supervised("test", stopping, move || {
            let n = counted.fetch_add(1, Ordering::SeqCst);
            async move {
                assert!(n >= 2, "a panic of start {n}");
            }
        })
        .await;
        assert_eq!(starts.load(Ordering::SeqCst), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn a_supervised_task_is_not_started_again_once_stopping() {
        let starts = Arc::new(AtomicUsize::new(0));
        let (stop, stopping) = watch::channel(false);
        stop.send(true).unwrap();
        let counted = starts.clone();
        supervised("test", stopping, move || {
            counted.fetch_add(1, Ordering::SeqCst);
            async { panic!("always") }
        })
        .await;
        assert_eq!(starts.load(Ordering::SeqCst), 1);
    }
}
