//! The client commands of `io-server`: they talk to a running server over HTTP, never to its
//! store, so they work the same against a local server and a remote one — all but
//! [`store`]'s `store check`, which reads a stopped server's store.
//!
//! - [`client`]: the HTTP client (base URL, admin token, problem+json errors).
//! - [`admin`]: `service …`, `token citizen`, `journal verify`, over the admin API.
//! - [`send`]: `send`, a resumable bulk send of a CSV file over the Services API.
//! - [`evidence`]: `evidence export` (admin API) and `evidence verify` (offline, the bundle only).
//!
//! Exit status: 0 on success, 1 when the command ran and something failed (a row, a journal
//! check, a refusal of the server), 2 on a usage or setup error (missing token, unreadable
//! file, unreachable server, rejected credentials).

pub(crate) mod admin;
pub(crate) mod client;
pub(crate) mod evidence;
pub(crate) mod send;
pub(crate) mod store;

use std::process::ExitCode;

use clap::Args;

/// The default `--url`.
pub(crate) const DEFAULT_URL: &str = "http://127.0.0.1:8080";

/// Where the server is, and whom to trust when it is reached over https.
#[derive(Debug, Clone, Args)]
pub(crate) struct ServerArgs {
    /// Base URL of the running server, http:// or https:// (a server behind a TLS-terminating
    /// proxy). https verifies the server's certificate against the system's authorities.
    #[arg(long, env = "IO_URL", default_value = DEFAULT_URL, global = true)]
    pub(crate) url: String,
    /// A PEM file of certificate authorities to trust besides the system's: a server whose
    /// certificate a private authority signed (an institution's internal CA).
    #[arg(long, env = "IO_CA_CERT", global = true)]
    pub(crate) ca_cert: Option<std::path::PathBuf>,
}

/// Where the server is, and the admin token for its admin API.
#[derive(Debug, Clone, Args)]
pub(crate) struct AdminArgs {
    /// Where the server is.
    #[command(flatten)]
    pub(crate) server: ServerArgs,
    /// The server's admin token (prefer the environment variable: a flag shows in `ps`).
    #[arg(long, env = "IO_ADMIN_TOKEN", hide_env_values = true, global = true)]
    pub(crate) admin_token: Option<String>,
}

/// Why a client command did not succeed, and so its exit status.
#[derive(Debug)]
pub(crate) enum CliError {
    /// The command could not start or go on: bad arguments, missing token or file, unreachable
    /// server, rejected credentials. Exit status 2.
    Setup(anyhow::Error),
    /// The command ran and something failed. Exit status 1.
    Failed(anyhow::Error),
}

impl CliError {
    /// A setup error with `message`.
    pub(crate) fn setup(message: impl std::fmt::Display) -> Self {
        Self::Setup(anyhow::anyhow!("{message}"))
    }

    /// A failure with `message`.
    pub(crate) fn failed(message: impl std::fmt::Display) -> Self {
        Self::Failed(anyhow::anyhow!("{message}"))
    }

    /// The process exit status.
    pub(crate) fn exit_code(&self) -> ExitCode {
        match self {
            Self::Setup(_) => ExitCode::from(2),
            Self::Failed(_) => ExitCode::from(1),
        }
    }
}

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Setup(error) | Self::Failed(error) => write!(f, "{error:#}"),
        }
    }
}

/// The exit status of a client command's result, after printing its error on stderr.
pub(crate) fn finish(result: Result<(), CliError>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("io-server: {error}");
            error.exit_code()
        }
    }
}
