//! The server's configuration: defaults that run with nothing set, an optional TOML file
//! (`--config`), then environment variables `IO_…` (nested keys joined by `__`, e.g.
//! `IO_RATE_LIMIT__DEFAULT__CALLS=250`), then the command line's `--listen` and `--data`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::num::{NonZeroU32, NonZeroU64};
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use io_core::EngineConfig;
use serde::{Deserialize, Serialize};

/// Everything the server reads at start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Where the HTTP server listens.
    pub listen: SocketAddr,
    /// The data directory: the embedded store (`<data>/store`) and the generated secrets.
    pub data: PathBuf,
    /// The admin API's bearer token. When unset, one is generated on first start, kept in
    /// `<data>/admin-token` and printed once.
    pub admin_token: Option<String>,
    /// Proxies (CIDR networks, IPv4 or IPv6) whose forwarding header is believed when
    /// checking a service's `authorized_cidrs`. Empty: the TCP peer is the source.
    pub trusted_proxies: Vec<io_core::IpNetwork>,
    /// The header the trusted proxies append the client's address to: `"x-forwarded-for"`
    /// (default) or `"forwarded"` (RFC 7239). Only that one is read.
    pub proxy_header: crate::request_headers::ProxyHeader,
    /// The largest request body accepted (413 beyond, at once when `Content-Length` says so).
    pub max_body_bytes: usize,
    /// Connection limits and timeouts against slow or idle clients.
    pub http: HttpConfig,
    /// Submits are refused with 429 while the engine's backlog (queued tasks) exceeds this.
    pub max_backlog: u64,
    /// The `Retry-After` of a back-pressure 429, in seconds.
    pub backpressure_retry_after_secs: u64,
    /// Services API calls per institution.
    pub rate_limit: RateLimitConfig,
    /// Citizen tokens minted by the admin API.
    pub citizen_tokens: CitizenTokenConfig,
    /// GDPR requests.
    pub gdpr: GdprConfig,
    /// Engine worker loops in this process (0: accept only; another process delivers).
    pub workers: usize,
    /// The delivery engine.
    pub engine: EngineConfig,
    /// The notification channels beside the inbox; each is off until configured.
    pub channels: ChannelsConfig,
    /// Sender callbacks (signed POSTs of every status change).
    pub callbacks: crate::callbacks::CallbacksConfig,
    /// Reading messages' details from their senders' servers (remote contents): its own SSRF
    /// switch, off by default, since what those servers answer is shown to citizens.
    pub remote_contents: io_channels::RemoteContentConfig,
    /// Which store backend, and its settings.
    pub store: StoreConfig,
}

/// The store backend: `kind = "sled"` (the embedded store in `<data>/store`, one process) or
/// `kind = "postgres"` with a `url` (several processes on one database, README "Several
/// processes on PostgreSQL").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// Which backend.
    pub kind: StoreKind,
    /// sled's page cache, in MiB: the bound on the store's share of the process's memory.
    /// sled's own default (1 GiB) let a small server's resident set reach 1.1 GB; 64 MiB
    /// (io-store's `DEFAULT_CACHE_BYTES`) keeps a small server small and still holds the hot
    /// part of the queue and the inboxes. Raise it on a machine with memory to spare for big
    /// inboxes or deep backlogs.
    pub cache_mb: u64,
    /// PostgreSQL: the `postgres://` URL (`IO_STORE__URL`). Required with `kind = "postgres"`.
    pub url: Option<String>,
    /// PostgreSQL: the schema io's tables live in (created if absent); the database's default
    /// (`public`) when unset.
    pub schema: Option<String>,
    /// PostgreSQL: the connection pool's size per process.
    pub max_connections: u32,
    /// How many io processes share this store. Rate limits (the per-institution tier and the
    /// engine's delivery limits) are divided among them, so that together they keep to the
    /// configured rates when requests and work are spread evenly across processes.
    pub processes: u32,
}

/// The store backends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    /// The embedded sled store in `<data>/store`.
    Sled,
    /// PostgreSQL at `store.url`.
    Postgres,
}

/// Bytes in a MiB.
const MIB: u64 = 1024 * 1024;

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            kind: StoreKind::Sled,
            cache_mb: io_store::DEFAULT_CACHE_BYTES / MIB,
            url: None,
            schema: None,
            max_connections: io_store::DEFAULT_MAX_CONNECTIONS,
            processes: 1,
        }
    }
}

impl StoreConfig {
    /// The page cache in bytes.
    pub fn cache_bytes(&self) -> u64 {
        self.cache_mb.saturating_mul(MIB)
    }
}

/// Limits of the HTTP listener: a client that sends its headers or its body slowly (or not at
/// all) holds a connection, and a connection holds memory and a file descriptor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Seconds a client has to send a request's headers (from the connection's start, or the
    /// end of its previous request); the connection is closed after it.
    pub header_timeout_secs: u64,
    /// Seconds a client has to send a request's body once its headers arrived (408 after it).
    pub body_timeout_secs: u64,
    /// Connections served at once; further clients wait in the listen backlog until one closes.
    pub max_connections: usize,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            header_timeout_secs: 10,
            body_timeout_secs: 30,
            max_connections: 1024,
        }
    }
}

impl HttpConfig {
    /// The header timeout.
    pub fn header_timeout(&self) -> Duration {
        Duration::from_secs(self.header_timeout_secs.max(1))
    }

    /// The body timeout.
    pub fn body_timeout(&self) -> Duration {
        Duration::from_secs(self.body_timeout_secs.max(1))
    }
}

/// The notification channels. The inbox is always on; email, push and PEC are on when their
/// section is present.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChannelsConfig {
    /// Email over an SMTP relay.
    pub email: Option<io_channels::EmailConfig>,
    /// Push to Apple devices.
    pub apns: Option<io_channels::ApnsConfig>,
    /// Push to Android devices.
    pub fcm: Option<io_channels::FcmConfig>,
    /// PEC to citizens' digital domiciles, for messages with legal value.
    pub pec: Option<PecSection>,
}

/// PEC: the sender's certified mailbox at its provider, written to over SMTP and read over
/// IMAP for the providers' receipts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PecSection {
    /// Submissions: the mailbox's SMTP account.
    pub submission: io_channels::PecConfig,
    /// Receipts: the mailbox over IMAP, read by the processes that run workers.
    pub mailbox: io_channels::MailboxConfig,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data: PathBuf::from("./io-data"),
            admin_token: None,
            trusted_proxies: Vec::new(),
            proxy_header: crate::request_headers::ProxyHeader::XForwardedFor,
            max_body_bytes: 256 * 1024,
            http: HttpConfig::default(),
            max_backlog: 1_000_000,
            backpressure_retry_after_secs: 5,
            rate_limit: RateLimitConfig::default(),
            citizen_tokens: CitizenTokenConfig::default(),
            gdpr: GdprConfig::default(),
            workers: 1,
            engine: EngineConfig::default(),
            channels: ChannelsConfig::default(),
            callbacks: crate::callbacks::CallbacksConfig::default(),
            remote_contents: io_channels::RemoteContentConfig::default(),
            store: StoreConfig::default(),
        }
    }
}

/// The per-institution limit on Services API calls (io-reference §6).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitConfig {
    /// The tier of institutions not listed below: IO's 150 calls per 5 seconds.
    pub default: Tier,
    /// Tiers by organization fiscal code.
    pub institutions: BTreeMap<String, Tier>,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            default: Tier::Limited {
                calls: NonZeroU32::new(150).expect("nonzero"),
                per_secs: NonZeroU64::new(5).expect("nonzero"),
            },
            institutions: BTreeMap::new(),
        }
    }
}

impl RateLimitConfig {
    /// Each tier's share when `processes` serve the API side by side, each with its own
    /// limiter: the calls divided among them (rounded up, at least 1), the period unchanged.
    pub fn divided_among(&self, processes: u32) -> Self {
        Self {
            default: self.default.divided_among(processes),
            institutions: self
                .institutions
                .iter()
                .map(|(code, tier)| (code.clone(), tier.divided_among(processes)))
                .collect(),
        }
    }
}

impl Tier {
    /// This tier's share among `processes` (see [`RateLimitConfig::divided_among`]).
    pub fn divided_among(self, processes: u32) -> Self {
        match self {
            Self::Limited { calls, per_secs } => Self::Limited {
                calls: NonZeroU32::new(calls.get().div_ceil(processes.max(1)))
                    .unwrap_or(NonZeroU32::MIN),
                per_secs,
            },
            Self::Unlimited => Self::Unlimited,
        }
    }
}

/// A rate tier: `{calls = 250, per_secs = 5}` or the string `"unlimited"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "TierRepr", into = "TierRepr")]
pub enum Tier {
    /// At most `calls` per `per_secs` seconds (bursts up to `calls`).
    Limited {
        /// Calls per period.
        calls: NonZeroU32,
        /// The period in seconds.
        per_secs: NonZeroU64,
    },
    /// No limit.
    Unlimited,
}

#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum TierRepr {
    Word(String),
    Limited {
        calls: NonZeroU32,
        per_secs: NonZeroU64,
    },
}

impl TryFrom<TierRepr> for Tier {
    type Error = String;
    fn try_from(repr: TierRepr) -> Result<Self, String> {
        match repr {
            TierRepr::Word(word) if word == "unlimited" => Ok(Self::Unlimited),
            TierRepr::Word(word) => Err(format!(
                "rate tier {word:?}: expected \"unlimited\" or {{calls, per_secs}}"
            )),
            TierRepr::Limited { calls, per_secs } => Ok(Self::Limited { calls, per_secs }),
        }
    }
}

impl From<Tier> for TierRepr {
    fn from(tier: Tier) -> Self {
        match tier {
            Tier::Unlimited => Self::Word("unlimited".into()),
            Tier::Limited { calls, per_secs } => Self::Limited { calls, per_secs },
        }
    }
}

/// Citizen bearer tokens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CitizenTokenConfig {
    /// How long a minted token is valid, in seconds; also the longest lifetime (`exp - iat`)
    /// a presented token may claim.
    pub ttl_secs: u64,
}

impl Default for CitizenTokenConfig {
    fn default() -> Self {
        Self { ttl_secs: 3600 }
    }
}

/// GDPR requests (io-reference §7).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GdprConfig {
    /// How long a DELETE request waits (and may be aborted) before the erasure: IO's 6 days.
    pub delete_grace_secs: u64,
}

impl Default for GdprConfig {
    fn default() -> Self {
        Self {
            delete_grace_secs: 6 * 24 * 3600,
        }
    }
}

/// The top-level keys, so that unrelated `IO_…` variables (a test's, a shell's) are ignored
/// rather than refused as unknown fields.
const TOP_LEVEL_KEYS: &[&str] = &[
    "listen",
    "data",
    "admin_token",
    "trusted_proxies",
    "proxy_header",
    "max_body_bytes",
    "http",
    "max_backlog",
    "backpressure_retry_after_secs",
    "rate_limit",
    "citizen_tokens",
    "gdpr",
    "workers",
    "engine",
    "channels",
    "callbacks",
    "remote_contents",
    "store",
];

/// Why the configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A file or variable could not be read or has a wrong value (the message says where).
    #[error("configuration: {0}")]
    Invalid(#[from] Box<figment::Error>),
    /// The config file does not exist.
    #[error("configuration file {0} does not exist")]
    MissingFile(PathBuf),
}

impl ServerConfig {
    /// Defaults, then `file` if given, then `IO_…` variables of the process environment.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Self::default()));
        if let Some(file) = file {
            if !file.exists() {
                return Err(ConfigError::MissingFile(file.to_path_buf()));
            }
            figment = figment.merge(Toml::file(file));
        }
        let env = Env::prefixed("IO_").split("__").filter(|key| {
            let top = key.as_str().split('.').next().unwrap_or_default();
            TOP_LEVEL_KEYS.contains(&top.to_ascii_lowercase().as_str())
        });
        figment
            .merge(env)
            .extract()
            .map_err(|e| ConfigError::Invalid(Box::new(e)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_serialize_and_load_back() {
        // figment starts from the serialized defaults, so they must read back unchanged.
        let text = serde_json::to_string(&ServerConfig::default()).unwrap();
        assert!(text.contains("127.0.0.1:8080"));
        let back: ServerConfig = serde_json::from_str(&text).unwrap();
        assert_eq!(back, ServerConfig::default());
    }

    #[test]
    fn tiers_are_divided_among_processes_rounding_up() {
        let tier = |calls| Tier::Limited {
            calls: NonZeroU32::new(calls).unwrap(),
            per_secs: NonZeroU64::new(5).unwrap(),
        };
        let mut config = RateLimitConfig {
            default: tier(150),
            institutions: BTreeMap::new(),
        };
        config.institutions.insert("15376371009".into(), tier(2));
        config
            .institutions
            .insert("00000000000".into(), Tier::Unlimited);
        let shared = config.divided_among(3);
        assert_eq!(shared.default, tier(50));
        assert_eq!(shared.institutions["15376371009"], tier(1));
        assert_eq!(shared.institutions["00000000000"], Tier::Unlimited);
        assert_eq!(config.divided_among(1), config);
        assert_eq!(config.divided_among(0), config);
    }

    #[test]
    fn tiers_parse_from_words_and_tables() {
        let tier: Tier = serde_json::from_str("\"unlimited\"").unwrap();
        assert_eq!(tier, Tier::Unlimited);
        let tier: Tier = serde_json::from_str(r#"{"calls": 250, "per_secs": 5}"#).unwrap();
        assert!(matches!(tier, Tier::Limited { calls, .. } if calls.get() == 250));
        assert!(serde_json::from_str::<Tier>("\"fast\"").is_err());
        assert!(serde_json::from_str::<Tier>(r#"{"calls": 0, "per_secs": 5}"#).is_err());
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment's Jail returns figment's own error type
    fn a_file_and_the_environment_override_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("io.toml");
        std::fs::write(
            &path,
            "max_backlog = 10\n[rate_limit.institutions]\n\"00000000000\" = \"unlimited\"\n",
        )
        .unwrap();
        figment::Jail::expect_with(|jail| {
            jail.set_env("IO_WORKERS", "3");
            jail.set_env("IO_SOMETHING_ELSE", "ignored");
            let config = ServerConfig::load(Some(&path)).unwrap();
            assert_eq!(config.max_backlog, 10);
            assert_eq!(config.workers, 3);
            assert_eq!(
                config.rate_limit.institutions.get("00000000000"),
                Some(&Tier::Unlimited)
            );
            Ok(())
        });
    }

    #[test]
    fn the_readme_channel_example_is_a_valid_configuration() {
        let readme = include_str!("../../README.md");
        let start = readme
            .find("```toml\n[channels.email]")
            .expect("README shows a channel configuration");
        let block = &readme[start + "```toml\n".len()..];
        let block = &block[..block.find("```").unwrap()];
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("io.toml");
        std::fs::write(&path, block).unwrap();
        let config = ServerConfig::load(Some(&path)).unwrap();
        let email = config.channels.email.expect("email configured");
        assert_eq!(email.security, io_channels::email::SmtpSecurity::StartTls);
        assert!(email.limit.is_some());
        assert_eq!(config.channels.apns.unwrap().topic, "it.example.app");
        assert!(config.channels.fcm.is_some());
        let pec = config.channels.pec.expect("pec configured");
        assert_eq!(
            pec.submission.smtp.security,
            io_channels::email::SmtpSecurity::Tls
        );
        assert_eq!(pec.mailbox.provider_certificates.len(), 1);
        assert_eq!(pec.mailbox.processed, "io-receipts", "the default folder");
        let cap = config.engine.rate_limits.per_citizen.unwrap();
        assert_eq!((cap.count.get(), cap.per.as_secs()), (10, 3600));
    }

    #[test]
    fn the_store_defaults_to_sled_with_a_small_cache_and_reads_its_section() {
        let defaults = StoreConfig::default();
        assert_eq!(defaults.kind, StoreKind::Sled);
        assert_eq!(defaults.cache_mb, 64);
        assert_eq!(defaults.cache_bytes(), io_store::DEFAULT_CACHE_BYTES);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("io.toml");
        std::fs::write(&path, "[store]\nkind = \"sled\"\ncache_mb = 256\n").unwrap();
        let config = ServerConfig::load(Some(&path)).unwrap();
        assert_eq!(config.store.cache_bytes(), 256 * 1024 * 1024);
        std::fs::write(
            &path,
            "[store]\nkind = \"postgres\"\nurl = \"postgres://io@db/io\"\nprocesses = 3\n",
        )
        .unwrap();
        let config = ServerConfig::load(Some(&path)).unwrap();
        assert_eq!(config.store.kind, StoreKind::Postgres);
        assert_eq!(config.store.url.as_deref(), Some("postgres://io@db/io"));
        assert_eq!(config.store.processes, 3);
        std::fs::write(&path, "[store]\nkind = \"mysql\"\n").unwrap();
        let error = ServerConfig::load(Some(&path)).unwrap_err().to_string();
        assert!(error.contains("mysql"), "{error}");
    }

    #[test]
    fn an_unknown_key_in_the_file_is_an_error_that_names_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("io.toml");
        std::fs::write(&path, "max_backlogg = 10\n").unwrap();
        let error = ServerConfig::load(Some(&path)).unwrap_err().to_string();
        assert!(error.contains("max_backlogg"), "{error}");
    }
}
