//! HTTP to addresses senders choose (callback URLs, remote-content servers), behind one SSRF
//! guard: io refuses to call private, loopback, link-local, shared and multicast addresses
//! unless the configuration allows them. The check runs on the addresses a name resolves to at
//! connection time, so a name that resolves to a public address when registered and to
//! 127.0.0.1 later is still refused. Redirects are never followed and no proxy is used.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, OnceLock};

use ipnet::IpNet;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use std::time::Duration;

use crate::error_text::http_error_chain;
use crate::{ConfigError, TrustedRoots};

/// The longest URL accepted.
pub const MAX_URL_LEN: usize = 2048;

/// A URL that io will not call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlRefused {
    /// Longer than [`MAX_URL_LEN`].
    #[error("longer than {MAX_URL_LEN} characters")]
    TooLong,
    /// Not an absolute http(s) URL.
    #[error("not an absolute http or https URL")]
    Malformed,
    /// It names an address the SSRF guard refuses.
    #[error("{0} is a private, loopback, link-local or otherwise internal address")]
    Internal(IpAddr),
    /// Plain http toward a public address, where only https is allowed.
    #[error("only https is allowed (plain http only toward in-house servers)")]
    PlainHttp,
    /// It carries credentials, which would be sent on every call.
    #[error("a URL io calls must not carry a user name or password")]
    Credentials,
}

/// The networks the SSRF guard refuses: every block of IANA's IPv4 and IPv6 Special-Purpose
/// Address Registries (RFC 6890 and updates) that is not globally reachable or embeds an IPv4
/// address the guard cannot see through, plus multicast and the deprecated site-local and
/// IPv4-compatible ranges. A sender's server is a public server: none of these is one.
const REFUSED_NETWORKS: &[&str] = &[
    // IPv4
    "0.0.0.0/8",       // "this network"
    "10.0.0.0/8",      // private
    "100.64.0.0/10",   // shared address space (carrier-grade NAT)
    "127.0.0.0/8",     // loopback
    "169.254.0.0/16",  // link-local (cloud metadata services)
    "172.16.0.0/12",   // private
    "192.0.0.0/24",    // IETF protocol assignments
    "192.0.2.0/24",    // documentation
    "192.88.99.0/24",  // 6to4 relay anycast (deprecated)
    "192.168.0.0/16",  // private
    "198.18.0.0/15",   // benchmarking
    "198.51.100.0/24", // documentation
    "203.0.113.0/24",  // documentation
    "224.0.0.0/4",     // multicast
    "240.0.0.0/4",     // reserved, and the limited broadcast address
    // IPv6
    "::/128",         // unspecified
    "::1/128",        // loopback
    "::/96",          // IPv4-compatible (deprecated; embeds an IPv4 address)
    "64:ff9b::/96",   // NAT64 well-known prefix (embeds an IPv4 address)
    "64:ff9b:1::/48", // NAT64 local use
    "100::/64",       // discard-only
    "2001::/23",      // IETF protocol assignments (Teredo 2001::/32 embeds IPv4)
    "2001:db8::/32",  // documentation
    "2002::/16",      // 6to4 (embeds an IPv4 address)
    "3fff::/20",      // documentation
    "5f00::/16",      // segment routing SIDs
    "fc00::/7",       // unique local
    "fe80::/10",      // link-local
    "fec0::/10",      // site-local (deprecated)
    "ff00::/8",       // multicast
];

/// [`REFUSED_NETWORKS`], parsed once.
fn refused_networks() -> &'static [IpNet] {
    static PARSED: OnceLock<Vec<IpNet>> = OnceLock::new();
    PARSED.get_or_init(|| {
        REFUSED_NETWORKS
            .iter()
            .map(|net| net.parse().expect("REFUSED_NETWORKS holds valid CIDRs"))
            .collect()
    })
}

/// Whether the SSRF guard refuses `ip`. An IPv4-mapped address (`::ffff:a.b.c.d`) is judged
/// as the IPv4 address it carries.
pub fn is_internal(ip: IpAddr) -> bool {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    refused_networks().iter().any(|net| net.contains(&ip))
}

const SSRF_MARK: &str = "refused by the SSRF guard";

/// A name that resolved only to addresses the guard refuses.
#[derive(Debug, thiserror::Error)]
#[error("{host} resolves to {address}, {}", SSRF_MARK)]
struct SsrfRefused {
    host: String,
    address: String,
}

/// Resolves names with the system resolver and drops refused addresses.
struct GuardedResolver;

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let resolved: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = resolved
                .iter()
                .copied()
                .filter(|addr| !is_internal(addr.ip()))
                .collect();
            if allowed.is_empty() {
                let address = resolved
                    .first()
                    .map_or_else(|| "no address".to_owned(), |a| a.ip().to_string());
                return Err(Box::new(SsrfRefused { host, address }) as _);
            }
            let addrs: Addrs = Box::new(allowed.into_iter());
            Ok(addrs)
        })
    }
}

/// An HTTP client whose every connection passes the SSRF guard (unless its owner allows
/// internal addresses), with a timeout and trusted roots.
pub struct OutboundClient {
    http: reqwest::Client,
    allow_private: bool,
    https_only: bool,
}

/// What an [`OutboundClient`] may call and how long it waits.
#[derive(Debug, Clone)]
pub struct OutboundPolicy<'a> {
    /// Allow private, loopback and link-local destinations (in-house servers, tests).
    pub allow_private_addresses: bool,
    /// Refuse plain http unless internal addresses are allowed.
    pub https_only: bool,
    /// The longest one call may take, connection included.
    pub timeout: Duration,
    /// Whose certificates are trusted.
    pub roots: &'a TrustedRoots,
    /// How the client announces itself.
    pub user_agent: &'static str,
    /// The configuration section named in errors.
    pub section: &'static str,
}

impl OutboundClient {
    /// A client with its own connection pool.
    pub fn new(policy: &OutboundPolicy<'_>) -> Result<Self, ConfigError> {
        let tls = policy.roots.client_config(&[b"h2", b"http/1.1"])?;
        let mut builder = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .timeout(policy.timeout)
            .connect_timeout(policy.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .user_agent(policy.user_agent);
        if !policy.allow_private_addresses {
            builder = builder.dns_resolver(Arc::new(GuardedResolver));
        }
        let http = builder
            .build()
            .map_err(|e| ConfigError::invalid(policy.section, e.to_string()))?;
        Ok(Self {
            http,
            allow_private: policy.allow_private_addresses,
            https_only: policy.https_only && !policy.allow_private_addresses,
        })
    }

    /// The guarded client.
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// Checks a URL before it is kept (and again before each call): absolute http(s), no
    /// credentials, and no internal literal address unless allowed. Host names are checked
    /// when they are resolved, at each connection.
    pub fn check_url(&self, url: &str) -> Result<reqwest::Url, UrlRefused> {
        if url.len() > MAX_URL_LEN {
            return Err(UrlRefused::TooLong);
        }
        let parsed = reqwest::Url::parse(url).map_err(|_| UrlRefused::Malformed)?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
            return Err(UrlRefused::Malformed);
        }
        if self.https_only && parsed.scheme() != "https" {
            return Err(UrlRefused::PlainHttp);
        }
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(UrlRefused::Credentials);
        }
        if !self.allow_private {
            let ip = match parsed.host() {
                Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
                Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
                _ => None,
            };
            if let Some(ip) = ip.filter(|ip| is_internal(*ip)) {
                return Err(UrlRefused::Internal(ip));
            }
        }
        Ok(parsed)
    }
}

/// Whether the request failed because the guard refused every address of the host. The
/// resolver's error reaches us boxed inside hyper's connect error, where its type can no
/// longer be downcast (a `Box<dyn Error>` forwards `source` past itself), so the chain's
/// text is matched instead.
pub fn refused_by_guard(error: &reqwest::Error) -> bool {
    http_error_chain(error).contains(SSRF_MARK)
}
