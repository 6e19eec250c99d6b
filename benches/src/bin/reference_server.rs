//! `reference-server`: the durable ceiling that `benches/http.sh` measures io-server against.
//! A measuring stick, not a product: no authentication, no validation beyond parsing, no
//! processing, no delivery.
//!
//! It does the least work a durable message API must do, the way
//! `/work/shared/design/performance.md` describes its probe: axum 0.8 (HTTP/1.1, tokio's
//! multi-threaded runtime, as io-server), `POST /api/v1/messages/{fiscal_code}` parses the
//! ~1 KiB IO JSON body into a small serde struct (`fiscal_code`, `time_to_live`,
//! `content{subject, markdown, due_date?, payment_data?}`), writes one sled transaction over
//! two trees (the re-encoded message under a fresh ULID in `messages`, and one
//! `fiscal_code ‖ id` entry in `recipients`) and answers `201 {"id": …}` only once the write
//! is durable. Durability is a **group commit**: ONE dedicated flusher thread takes every
//! writer waiting for it, calls `db.flush()` once, and wakes them all. Never sled's
//! `flush_async`, which deadlocks under concurrent callers in sled 0.34 (spacejam/sled#1308),
//! and never a blocking flush on a runtime thread. The transaction itself runs on the runtime
//! thread: without a flush it is CPU work only.
//!
//! `--no-store` skips sled (parse and answer 201): the HTTP + JSON ceiling of this box, used
//! to check that the load client is not the bottleneck.
//!
//! ```sh
//! reference-server --listen 127.0.0.1:0 --data /tmp/ref-data   # prints the bound address
//! reference-server --listen 127.0.0.1:8081 --no-store
//! ```
//!
//! On Ctrl-C or SIGTERM it stops accepting, finishes what is in flight and prints how many
//! messages it made durable in how many flushes.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use clap::Parser;
use serde::{Deserialize, Serialize};
use sled::Transactional;
use sled::transaction::ConflictableTransactionError;
use tokio::sync::oneshot;

/// The allocator io-server ships with (ARCHITECTURE.md, "Memory"), for io and its ceiling alike.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser, Debug)]
#[command(
    name = "reference-server",
    about = "The minimal durable axum + sled (group commit) server io-server is compared with."
)]
struct Args {
    /// Address to listen on (port 0: any free port; the bound address is printed).
    #[arg(long, default_value = "127.0.0.1:8081")]
    listen: SocketAddr,
    /// The sled directory (required unless --no-store).
    #[arg(long, value_name = "DIR", required_unless_present = "no_store")]
    data: Option<PathBuf>,
    /// Parse and answer 201 without storing anything (the HTTP + JSON ceiling).
    #[arg(long)]
    no_store: bool,
}

/// The message as IO's Services API receives it, reduced to the fields a store keeps.
#[derive(Debug, Deserialize, Serialize)]
struct NewMessage {
    #[serde(default)]
    fiscal_code: Option<String>,
    #[serde(default)]
    time_to_live: Option<u64>,
    content: Content,
}

#[derive(Debug, Deserialize, Serialize)]
struct Content {
    subject: String,
    markdown: String,
    #[serde(default)]
    due_date: Option<String>,
    #[serde(default)]
    payment_data: Option<PaymentData>,
}

#[derive(Debug, Deserialize, Serialize)]
struct PaymentData {
    amount: u64,
    notice_number: String,
}

/// A writer waiting for the next flush.
type Waiter = oneshot::Sender<Result<(), String>>;

/// The sled trees and the way to the flusher thread.
struct Store {
    messages: sled::Tree,
    recipients: sled::Tree,
    flusher: mpsc::Sender<Waiter>,
}

#[derive(Default)]
struct Counters {
    durable: AtomicU64,
    flushes: AtomicU64,
}

struct Shared {
    store: Option<Store>,
    counters: Arc<Counters>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("reference-server: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("reference-server: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(args: Args) -> Result<(), String> {
    let counters = Arc::new(Counters::default());
    let store = match (&args.data, args.no_store) {
        (Some(dir), false) => Some(open_store(dir, counters.clone())?),
        _ => None,
    };
    let shared = Arc::new(Shared { store, counters });
    let app = Router::new()
        .route("/api/v1/messages/{fiscal_code}", post(submit))
        .with_state(shared.clone());
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    let local = listener
        .local_addr()
        .map_err(|e| format!("listening socket: {e}"))?;
    let what = if args.no_store {
        "no store"
    } else {
        "sled, group commit"
    };
    println!("reference-server ({what}) listening on http://{local}");
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await
        .map_err(|e| format!("server: {e}"))?;
    let durable = shared.counters.durable.load(Ordering::Relaxed);
    let flushes = shared.counters.flushes.load(Ordering::Relaxed);
    println!(
        "reference-server: {durable} messages made durable in {flushes} flushes ({:.1} per flush)",
        durable as f64 / flushes.max(1) as f64
    );
    Ok(())
}

fn open_store(dir: &std::path::Path, counters: Arc<Counters>) -> Result<Store, String> {
    let db = sled::Config::new()
        .path(dir)
        .open()
        .map_err(|e| format!("cannot open sled at {}: {e}", dir.display()))?;
    let messages = db
        .open_tree("messages")
        .map_err(|e| format!("sled tree: {e}"))?;
    let recipients = db
        .open_tree("recipients")
        .map_err(|e| format!("sled tree: {e}"))?;
    let (flusher, waiting) = mpsc::channel::<Waiter>();
    std::thread::Builder::new()
        .name("group-commit".into())
        .spawn(move || group_commit(db, waiting, counters))
        .map_err(|e| format!("cannot start the flusher thread: {e}"))?;
    Ok(Store {
        messages,
        recipients,
        flusher,
    })
}

/// The flusher: wait for one writer, take every other writer already waiting, flush once,
/// wake them all. Each writer's transaction was applied before it queued here, so this flush
/// covers it.
fn group_commit(db: sled::Db, waiting: mpsc::Receiver<Waiter>, counters: Arc<Counters>) {
    while let Ok(first) = waiting.recv() {
        let mut group = vec![first];
        group.extend(waiting.try_iter());
        let result = db.flush().map(|_| ()).map_err(|e| e.to_string());
        counters.flushes.fetch_add(1, Ordering::Relaxed);
        if result.is_ok() {
            counters
                .durable
                .fetch_add(group.len() as u64, Ordering::Relaxed);
        }
        for waiter in group {
            let _ = waiter.send(result.clone());
        }
    }
}

fn problem(status: StatusCode, detail: String) -> Response {
    (status, axum::Json(serde_json::json!({ "detail": detail }))).into_response()
}

/// `POST /api/v1/messages/{fiscal_code}`: parse, one transaction, wait for the group commit,
/// `201 {"id"}`.
async fn submit(
    State(shared): State<Arc<Shared>>,
    Path(fiscal_code): Path<String>,
    body: Bytes,
) -> Response {
    let mut message: NewMessage = match serde_json::from_slice(&body) {
        Ok(message) => message,
        Err(e) => return problem(StatusCode::BAD_REQUEST, format!("body: {e}")),
    };
    if fiscal_code.len() != 16
        || message
            .fiscal_code
            .as_ref()
            .is_some_and(|f| *f != fiscal_code)
    {
        return problem(
            StatusCode::BAD_REQUEST,
            "fiscal_code: expected 16 characters, the same in the path and the body".into(),
        );
    }
    message.fiscal_code = Some(fiscal_code);
    let id = ulid::Ulid::new();
    let Some(store) = &shared.store else {
        return (
            StatusCode::CREATED,
            axum::Json(serde_json::json!({ "id": id.to_string() })),
        )
            .into_response();
    };
    let value = match serde_json::to_vec(&message) {
        Ok(value) => value,
        Err(e) => return problem(StatusCode::INTERNAL_SERVER_ERROR, format!("encode: {e}")),
    };
    let id_bytes = id.to_bytes();
    let mut recipient_key = message.fiscal_code.unwrap_or_default().into_bytes();
    recipient_key.extend_from_slice(&id_bytes);
    let written = (&store.messages, &store.recipients).transaction(|(messages, recipients)| {
        messages.insert(&id_bytes[..], value.as_slice())?;
        recipients.insert(recipient_key.as_slice(), &[][..])?;
        Ok::<(), ConflictableTransactionError<()>>(())
    });
    if let Err(e) = written {
        return problem(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("sled transaction: {e:?}"),
        );
    }
    let (waiter, flushed) = oneshot::channel();
    if store.flusher.send(waiter).is_err() {
        return problem(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the flusher thread is gone".into(),
        );
    }
    match flushed.await {
        Ok(Ok(())) => (
            StatusCode::CREATED,
            axum::Json(serde_json::json!({ "id": id.to_string() })),
        )
            .into_response(),
        Ok(Err(e)) => problem(StatusCode::INTERNAL_SERVER_ERROR, format!("flush: {e}")),
        Err(_) => problem(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the flusher thread is gone".into(),
        ),
    }
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    let Ok(mut term) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
    else {
        let _ = ctrl_c.await;
        return;
    };
    tokio::select! {
        _ = ctrl_c => {}
        _ = term.recv() => {}
    }
}
