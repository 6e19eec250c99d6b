//! `io-server store check`: the one command that opens the store itself rather than calling a
//! server, since it must run while the server is stopped (sled allows one process per
//! directory).

use std::io::IsTerminal;
use std::path::PathBuf;

use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use io_server::ServerConfig;
use io_server::store_check::{self, Phase};
use io_store::SledStore;

use super::CliError;

/// `io-server store …`.
#[derive(Debug, Args)]
pub(crate) struct StoreArgs {
    /// What to do.
    #[command(subcommand)]
    command: StoreCommand,
}

#[derive(Debug, Subcommand)]
enum StoreCommand {
    /// Reads every record, decodes it and verifies every journal; exit status 1 if anything
    /// is damaged. Run it with the server stopped.
    Check {
        /// Data directory (overrides the configuration).
        #[arg(long)]
        data: Option<PathBuf>,
        /// A TOML configuration file; `IO_…` environment variables override it.
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

/// Runs `io-server store …`.
pub(crate) async fn run(args: StoreArgs) -> Result<(), CliError> {
    let StoreCommand::Check { data, config } = args.command;
    let mut config = ServerConfig::load(config.as_deref()).map_err(CliError::setup)?;
    if let Some(data) = data {
        config.data = data;
    }
    if config.store.kind == io_server::config::StoreKind::Postgres {
        return Err(CliError::setup(
            "store check reads the embedded sled store; this configuration uses PostgreSQL, \
             whose pages PostgreSQL checks itself (pg_amcheck) — verify journals with \
             `io-server journal`",
        ));
    }
    let path = config.data.join("store");
    if !path.is_dir() {
        return Err(CliError::setup(format!(
            "no store at {} (is --data right?)",
            path.display()
        )));
    }
    let store = SledStore::open_with_cache(&path, config.store.cache_bytes()).map_err(|e| {
        CliError::setup(format!(
            "cannot open the store at {} (stop the server first): {e}",
            path.display()
        ))
    })?;
    let bar = progress_bar();
    let check = store_check::check(&store, &mut |phase, done, total| {
        bar.set_length(total);
        bar.set_position(done);
        bar.set_message(match phase {
            Phase::Records => "records",
            Phase::Journals => "journals",
        });
    })
    .await;
    bar.finish_and_clear();
    println!(
        "{} records read, {} journals verified",
        check.records, check.messages
    );
    for damaged in &check.damaged {
        println!(
            "DAMAGED {} (key {}): {}",
            damaged.what, damaged.key, damaged.detail
        );
    }
    for (id, reason) in &check.broken_messages {
        println!("DAMAGED message {id}: {reason}");
    }
    if check.is_clean() {
        println!("the store is intact");
        Ok(())
    } else {
        Err(CliError::failed(format!(
            "{} damaged records, {} damaged messages",
            check.damaged.len(),
            check.broken_messages.len()
        )))
    }
}

/// A bar on stderr when it is a terminal; hidden otherwise.
fn progress_bar() -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template("{wide_bar} {pos}/{len} {msg} · {elapsed}") {
        bar.set_style(style);
    }
    bar
}
