//! The `io-server` command: `serve` runs the server; the other subcommands are clients of a
//! running server's admin and Services APIs.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use io_core::Store;
use io_server::app::Opened;
use io_server::config::StoreKind;
use io_server::{App, ServerConfig};

mod cli;

/// mimalloc rather than the system allocator: with glibc's, the store's committer thread and
/// the runtime's threads contend on allocator locks (they free what the other allocated), and
/// the store-backed dispatch bench ran about 1.6 times slower (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// io: a message delivery engine for public administrations.
#[derive(Debug, Parser)]
#[command(name = "io-server", version, about, after_help = EXIT_STATUS)]
struct Cli {
    /// What to do.
    #[command(subcommand)]
    command: Command,
}

/// The exit statuses, shown under `--help`.
const EXIT_STATUS: &str = "Client commands (all but serve) call a running server over HTTP or \
HTTPS (--url, IO_URL; --ca-cert, IO_CA_CERT adds a private certificate authority to the \
system's); the admin ones need its admin token (--admin-token, IO_ADMIN_TOKEN). Exit status: 0 success, 1 something \
failed (a row, a journal check, a refusal), 2 usage or setup error.";

/// The subcommands.
#[derive(Debug, Subcommand)]
enum Command {
    /// Runs the server (embedded store in ./io-data, listening on 127.0.0.1:8080 by default).
    Serve {
        /// Address to listen on (overrides the configuration).
        #[arg(long)]
        listen: Option<SocketAddr>,
        /// Data directory (overrides the configuration).
        #[arg(long)]
        data: Option<PathBuf>,
        /// A TOML configuration file; `IO_…` environment variables override it.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Creates, lists, shows services and their API keys (admin API).
    Service(cli::admin::ServiceArgs),
    /// Mints tokens for development and tests (admin API).
    Token(cli::admin::TokenArgs),
    /// Sends one message per row of a CSV file, resumably (Services API).
    Send(cli::send::SendArgs),
    /// Verifies a message's hash-chained journal (admin API).
    Journal(cli::admin::JournalArgs),
    /// Checks a stopped server's store: every record decodes, every journal verifies.
    Store(cli::store::StoreArgs),
    /// Exports a message's evidence bundle (admin API), or verifies one offline.
    Evidence(cli::evidence::EvidenceArgs),
}

/// Parses the command line and runs the command on a multi-threaded runtime.
fn main() -> ExitCode {
    let cli = Cli::parse();
    // One TLS provider for every HTTP client of the process (the CLI's included).
    io_channels::install_default_crypto_provider();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("io-server: cannot start the runtime: {error}");
            return ExitCode::from(2);
        }
    };
    let result = match cli.command {
        Command::Serve {
            listen,
            data,
            config,
        } => runtime.block_on(serve(listen, data, config)),
        Command::Service(args) => return cli::finish(runtime.block_on(cli::admin::service(args))),
        Command::Token(args) => return cli::finish(runtime.block_on(cli::admin::token(args))),
        Command::Send(args) => return cli::finish(runtime.block_on(cli::send::run(args))),
        Command::Journal(args) => return cli::finish(runtime.block_on(cli::admin::journal(args))),
        Command::Store(args) => return cli::finish(runtime.block_on(cli::store::run(args))),
        Command::Evidence(args) => return cli::finish(runtime.block_on(cli::evidence::run(args))),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("io-server: {error:#}");
            ExitCode::from(1)
        }
    }
}

/// `io-server serve`: the server until Ctrl-C or SIGTERM, then a graceful shutdown.
async fn serve(
    listen: Option<SocketAddr>,
    data: Option<PathBuf>,
    config_file: Option<PathBuf>,
) -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("IO_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let mut config = ServerConfig::load(config_file.as_deref())?;
    if let Some(listen) = listen {
        config.listen = listen;
    }
    if let Some(data) = data {
        config.data = data;
    }
    let listen = config.listen;
    match config.store.kind {
        StoreKind::Sled => run(App::open(config)?, listen).await,
        StoreKind::Postgres => run(App::open_postgres(config).await?, listen).await,
    }
}

/// Serves `opened` on `listen` until Ctrl-C or SIGTERM.
async fn run<S: Store>(opened: Opened<S>, listen: SocketAddr) -> anyhow::Result<()> {
    if let Some(token) = &opened.generated_admin_token {
        println!("admin token (generated, kept in the data directory; shown once): {token}");
    }
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let running = io_server::serve::start(opened.app, listener)?;
    println!("io-server listening on http://{}", running.local_addr);
    let trigger = running.trigger();
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = trigger.send(true);
    });
    running.wait().await?;
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
