//! Running the server: the HTTP listener, the engine's worker loops (which also send the
//! sender callbacks) and the GDPR requests' sweep, with a graceful shutdown that stops
//! accepting and lets requests, rounds and a sweep in flight finish, so leases are released by
//! their commits, not left to expire. Every store write the server waits for is durable when
//! it returns, so there is nothing to flush at the end.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use io_core::Store;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::app::{App, router};

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
    }
    let service = router(app.clone()).into_make_service_with_connect_info::<SocketAddr>();
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
        let served = axum::serve(listener, service)
            .with_graceful_shutdown(until_stopped)
            .await;
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
