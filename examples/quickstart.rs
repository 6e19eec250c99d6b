//! # quickstart: embed the io engine in your own program
//!
//! Shows what an integrator writes to use io without its server: open a durable
//! [`io_store::SledStore`] in a directory, store a service and some citizens with
//! `Store::put_service` / `put_profile` / `put_preference`, build an [`io_core::Engine`] with
//! channels, submit messages concurrently with [`io_core::Engine::submit`] (each one durable
//! when it returns), and drive the engine with [`io_core::Engine::run_until_idle`] (a
//! long-running process would start workers with `Engine::run` instead).
//!
//! The citizens cover the channel decision (io-reference §4): a LEGACY profile with a validated
//! email (inbox + email); a LEGACY profile that blocked EMAIL for the service (inbox only); an
//! AUTO profile whose preference turns email off for the service (inbox only: io honours the
//! preference's email flag in every mode, where IO reads it in LEGACY mode only); a MANUAL
//! profile without a preference and a profile with the inbox disabled (both REJECTED
//! SERVICE_NOT_ALLOWED); a fiscal code without a profile (REJECTED USER_NOT_FOUND); a citizen
//! whose messages require secure channels (no email); and IO's sandbox code (an email to the
//! service owner only). Messages go round-robin over them.
//!
//! Channels: the inbox (built into the engine), and **an email stand-in defined by this example**
//! (`io_examples::CountingEmailChannel`) that sends no mail and counts what it would send (the
//! real SMTP channel is io-channels' `EmailChannel`).
//!
//! At the end it prints the messages per status, the deliveries per channel and state, a line
//! per citizen, the elapsed time and messages per second, and verifies the evidence journal of
//! a sample of messages. It exits with status 1 if any message is still ACCEPTED, any journal
//! fails (or disagrees with the stored state), any delivery is not final or any email would
//! have been sent twice; with status 2 on a setup error.
//!
//! Run it (from the workspace root):
//!
//! ```text
//! cargo run --release -p io-examples --example quickstart
//! cargo run --release -p io-examples --example quickstart -- --messages 2000 --data /tmp/io-qs
//! ```
//!
//! The data directory (default `./io-quickstart-data`) is removed and recreated at start so
//! that reruns are clean; to be safe it refuses a directory that is neither empty nor a sled
//! store.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use io_examples::{Category, QuickstartOptions, run_quickstart};
use io_store::SledStore;

const DEFAULT_DATA_DIR: &str = "./io-quickstart-data";
const USAGE: &str = "usage: quickstart [--messages N] [--data DIR]";

#[derive(Debug)]
struct Args {
    messages: usize,
    data: PathBuf,
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Option<Args>, String> {
    let mut parsed = Args {
        messages: QuickstartOptions::default().messages,
        data: PathBuf::from(DEFAULT_DATA_DIR),
    };
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--messages" => {
                let value = args.next().ok_or("--messages needs a number")?;
                parsed.messages = value
                    .parse()
                    .map_err(|_| format!("--messages {value:?} is not a number"))?;
            }
            "--data" => parsed.data = args.next().ok_or("--data needs a directory")?.into(),
            "-h" | "--help" => return Ok(None),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(Some(parsed))
}

/// Empties `dir` for a clean run, refusing anything that does not look like our own data.
fn fresh_data_dir(dir: &Path) -> io::Result<()> {
    if dir.exists() {
        let empty = fs::read_dir(dir)?.next().is_none();
        // sled 0.34 keeps a `conf` and a `db` file at the top of its directory.
        let sled_store = dir.join("conf").is_file() && dir.join("db").is_file();
        if !empty && !sled_store {
            return Err(io::Error::other(format!(
                "{} is neither empty nor a sled store; refusing to remove it",
                dir.display()
            )));
        }
        fs::remove_dir_all(dir)?;
    }
    fs::create_dir_all(dir)
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(Some(args)) => args,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(error) => {
            eprintln!("{error}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(args).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("quickstart failed: {error}");
            ExitCode::from(2)
        }
    }
}

/// Runs the quickstart; `Ok(false)` when the run finished but something is wrong.
async fn run(args: Args) -> Result<bool, Box<dyn std::error::Error>> {
    fresh_data_dir(&args.data)?;
    let store = Arc::new(SledStore::open(&args.data)?);
    let options = QuickstartOptions {
        messages: args.messages,
        ..QuickstartOptions::default()
    };
    println!(
        "io quickstart: {} messages, {} submits in flight, sled store in {} (every write flushed)",
        options.messages,
        options.concurrency,
        args.data.display()
    );

    let result = run_quickstart(store, &options).await?;

    let service = &result.demo.service;
    println!(
        "service {} \"{}\" of {} (organization fiscal code {}), category STANDARD",
        service.service_id,
        service.service_name,
        service.organization_name,
        service.organization_fiscal_code
    );
    println!("citizens (messages go round-robin over them):");
    for category in Category::ALL {
        println!("  {:<30} {}", category.name(), category.rule());
    }
    println!();
    println!(
        "submitted {} messages in {:.2} s ({:.0} durable submits/s)",
        result.summary.messages,
        result.submit_elapsed.as_secs_f64(),
        result.submits_per_second()
    );
    println!(
        "engine ran {} tasks until idle in {:.2} s",
        result.tasks_run,
        result.engine_elapsed.as_secs_f64()
    );
    println!(
        "total {:.2} s: {:.0} messages/s accepted, decided and delivered",
        result.elapsed().as_secs_f64(),
        result.messages_per_second()
    );
    println!();
    println!("{}", result.summary);

    let problems = result.summary.problems();
    if problems.is_empty() {
        println!("OK");
        Ok(true)
    } else {
        for problem in &problems {
            eprintln!("PROBLEM: {problem}");
        }
        Ok(false)
    }
}
