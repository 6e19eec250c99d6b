//! `pec-simulator`: a PEC provider for demos and tests (crate doc of `pec_simulator`).
//!
//! `pec-simulator --smtp 127.0.0.1:2525 --imap 127.0.0.1:1143 --user U --password P` takes
//! submissions on the SMTP address and appends their receipts to the mailbox of `U` on the
//! IMAP server, until Ctrl-C.

use std::net::SocketAddr;
use std::process::ExitCode;

use clap::Parser;
use pec_simulator::{Config, Simulator};

/// A PEC provider simulator: SMTP submissions in, receipts into the sender's IMAP mailbox.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Where to take submissions (plain SMTP: keep it on loopback).
    #[arg(long, default_value = "127.0.0.1:2525")]
    smtp: SocketAddr,
    /// The IMAP server holding the sender's mailbox.
    #[arg(long, default_value = "127.0.0.1:1143")]
    imap: SocketAddr,
    /// The mailbox's user (the SMTP user too).
    #[arg(long)]
    user: String,
    /// The mailbox's password (the SMTP password too).
    #[arg(long, env = "PEC_SIMULATOR_PASSWORD", hide_env_values = true)]
    password: String,
    /// The simulated provider's domain.
    #[arg(long, default_value = "pec.simulatore.invalid")]
    provider_domain: String,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    if !args.smtp.ip().is_loopback() {
        eprintln!(
            "pec-simulator: --smtp must be a loopback address (plain SMTP, test credentials)"
        );
        return ExitCode::from(2);
    }
    let config = Config {
        imap: args.imap,
        user: args.user,
        password: args.password,
        provider_domain: args.provider_domain,
    };
    let simulator = match Simulator::start(args.smtp, config).await {
        Ok(simulator) => simulator,
        Err(error) => {
            eprintln!("pec-simulator: cannot listen on {}: {error}", args.smtp);
            return ExitCode::from(2);
        }
    };
    println!("pec-simulator: taking submissions on {}", simulator.smtp);
    let _ = tokio::signal::ctrl_c().await;
    simulator.stop();
    ExitCode::SUCCESS
}
