//! `io-server evidence export` (over the admin API) and `io-server evidence verify`, which
//! needs nothing but the bundle: the point of a bundle is that whoever holds it can check it
//! without io ([`io_server::evidence`]).

use std::path::PathBuf;

use clap::{Args, Subcommand};
use io_channels::pec::signature::{self, ProviderCertificates, Signature};
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
    /// Verifies a bundle offline: the journal's chain and head, every receipt against the
    /// SHA-256 the journal names and, given the providers' certificates, its S/MIME signature.
    /// Exit status 1 if anything does not match.
    Verify {
        /// The bundle's directory.
        bundle: PathBuf,
        /// The journal head's hash as you hold it (from a callback, or your records): the
        /// bundle's head must be this one.
        #[arg(long)]
        head: Option<String>,
        /// A PEM file of the providers' certificates: each receipt's S/MIME signature must
        /// verify against one of them too.
        #[arg(long)]
        provider_certificates: Option<PathBuf>,
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
        EvidenceCommand::Verify {
            bundle,
            head,
            provider_certificates,
        } => verify(bundle, head.as_deref(), provider_certificates),
    }
}

async fn export(admin: &AdminArgs, id: &MessageId, out: PathBuf) -> Result<(), CliError> {
    let client = AdminClient::new(&admin.server, admin.admin_token.as_deref())?;
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

fn verify(
    dir: PathBuf,
    head: Option<&str>,
    provider_certificates: Option<PathBuf>,
) -> Result<(), CliError> {
    let trusted = match provider_certificates {
        Some(path) => {
            let pem = std::fs::read_to_string(&path)
                .map_err(|e| CliError::setup(format!("{}: {e}", path.display())))?;
            Some(ProviderCertificates::from_pem(&[pem]).map_err(CliError::setup)?)
        }
        None => None,
    };
    let bundle = Bundle::read_dir(&dir).map_err(CliError::setup)?;
    println!("message: {}", bundle.message_id);
    match bundle.verify(head) {
        Ok(verified) => {
            println!("journal: verified, {} entries", verified.entries);
            println!("head: {}", verified.head);
            let mut unsigned = 0;
            for (kind, issued_at, sha256) in &verified.receipts {
                let signature = match &trusted {
                    None => String::new(),
                    Some(trusted) => {
                        let bytes = bundle
                            .receipts
                            .iter()
                            .find(|r| &r.sha256 == sha256)
                            .map(|r| r.bytes.as_slice())
                            .unwrap_or_default();
                        match signature::check(bytes, trusted) {
                            Signature::Verified { signer } => format!(" signed by {signer}"),
                            Signature::Unverified { reason } => {
                                unsigned += 1;
                                format!(" NOT signed by a trusted provider: {reason}")
                            }
                        }
                    }
                };
                println!(
                    "receipt: {kind} {} {sha256}{signature}",
                    issued_at.to_rfc3339()
                );
            }
            if unsigned > 0 {
                println!("evidence: NOT verified: {unsigned} receipts without a trusted signature");
                return Err(CliError::failed(format!(
                    "the evidence of message {} has receipts without a trusted signature",
                    bundle.message_id
                )));
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
