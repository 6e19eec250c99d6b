//! `io-server evidence export` (over the admin API) and `io-server evidence verify`, which
//! needs nothing but the bundle: the point of a bundle is that whoever holds it can check it
//! without io ([`io_server::evidence`]).

use std::path::PathBuf;

use clap::{Args, Subcommand};
use io_core::MessageId;
use io_server::evidence::Bundle;
use reqwest::StatusCode;

use super::client::{AdminClient, ApiError};
use super::{AdminArgs, CliError};

/// `io-server evidence …`.
#[derive(Debug, Args)]
pub(crate) struct EvidenceArgs {
    /// What to do.
    #[command(subcommand)]
    command: EvidenceCommand,
}

#[derive(Debug, Subcommand)]
enum EvidenceCommand {
    /// Writes a message's evidence bundle (journal, head, PEC receipts byte for byte) into a
    /// new directory (admin API).
    Export {
        /// Where the server is, and the admin token.
        #[command(flatten)]
        admin: AdminArgs,
        /// The message id (a ULID).
        #[arg(long, value_parser = super::admin::parse_message_id)]
        message: MessageId,
        /// The directory to write (created; it must not hold a bundle already).
        #[arg(long)]
        out: PathBuf,
    },
    /// Verifies a bundle offline: the journal's chain and head, and every receipt against the
    /// SHA-256 the journal names. Exit status 1 if anything does not match.
    Verify {
        /// The bundle's directory.
        bundle: PathBuf,
        /// The journal head's hash as you hold it (from a callback, or your records): the
        /// bundle's head must be this one.
        #[arg(long)]
        head: Option<String>,
    },
}

/// Runs `io-server evidence …`.
pub(crate) async fn run(args: EvidenceArgs) -> Result<(), CliError> {
    match args.command {
        EvidenceCommand::Export {
            admin,
            message,
            out,
        } => export(&admin, &message, out).await,
        EvidenceCommand::Verify { bundle, head } => verify(bundle, head.as_deref()),
    }
}

async fn export(admin: &AdminArgs, id: &MessageId, out: PathBuf) -> Result<(), CliError> {
    let client = AdminClient::new(&admin.server.url, admin.admin_token.as_deref())?;
    let answer = match client.get(&format!("/messages/{id}/evidence")).await {
        Ok(answer) => answer,
        Err(ApiError::Status { status, .. }) if status == StatusCode::NOT_FOUND => {
            return Err(CliError::failed(format!("no message {id}")));
        }
        Err(error) => return Err(error.into()),
    };
    let bundle = Bundle::from_json(&answer).map_err(CliError::failed)?;
    bundle.write_dir(&out).map_err(CliError::setup)?;
    println!("message: {id}");
    println!("entries: {}", bundle.entries.len());
    println!("receipts: {}", bundle.receipts.len());
    println!("head: {}", bundle.head.hash);
    println!("bundle: {}", out.display());
    Ok(())
}

fn verify(dir: PathBuf, head: Option<&str>) -> Result<(), CliError> {
    let bundle = Bundle::read_dir(&dir).map_err(CliError::setup)?;
    println!("message: {}", bundle.message_id);
    match bundle.verify(head) {
        Ok(verified) => {
            println!("journal: verified, {} entries", verified.entries);
            println!("head: {}", verified.head);
            for (kind, issued_at, sha256) in &verified.receipts {
                println!("receipt: {kind} {} {sha256}", issued_at.to_rfc3339());
            }
            println!("evidence: verified");
            Ok(())
        }
        Err(error) => {
            println!("evidence: NOT verified: {error}");
            Err(CliError::failed(format!(
                "the evidence of message {} does not verify",
                bundle.message_id
            )))
        }
    }
}
