//! The HTTP client the provider channels share: reqwest over rustls (ring), with the channel's
//! own trusted roots, and helpers that classify transport failures and `Retry-After`.

use std::time::{Duration, UNIX_EPOCH};

use io_core::{Timestamp, TransientCause};

use crate::error_text::http_error_chain;
#[cfg(feature = "push")]
use crate::{ConfigError, TrustedRoots};

/// How a provider's HTTP client connects.
#[cfg(feature = "push")]
pub(crate) struct ClientSettings<'a> {
    /// Whose certificates are trusted.
    pub(crate) roots: &'a TrustedRoots,
    /// The longest one request may take, connection included.
    pub(crate) timeout: Duration,
    /// Speak HTTP/2 only (APNs requires it; it also makes `http://` mean h2c for tests).
    pub(crate) http2_only: bool,
}

/// The default longest time of one provider request (APNs, FCM).
#[cfg(feature = "push")]
pub(crate) fn default_request_timeout() -> Duration {
    Duration::from_secs(10)
}

#[cfg(feature = "push")]
/// Builds a pooled client: one long-lived connection per host, multiplexed under HTTP/2.
pub(crate) fn client(settings: ClientSettings<'_>) -> Result<reqwest::Client, ConfigError> {
    let alpn: &[&[u8]] = if settings.http2_only {
        &[b"h2"]
    } else {
        &[b"h2", b"http/1.1"]
    };
    let tls = settings.roots.client_config(alpn)?;
    let mut builder = reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .timeout(settings.timeout)
        .connect_timeout(settings.timeout)
        .pool_idle_timeout(Duration::from_secs(600))
        .http2_keep_alive_interval(Duration::from_secs(60))
        .http2_keep_alive_while_idle(true)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy();
    if settings.http2_only {
        builder = builder.http2_prior_knowledge();
    }
    builder
        .build()
        .map_err(|e| ConfigError::invalid("http client", e.to_string()))
}

/// What failed when no HTTP answer came back.
pub(crate) fn transport_cause(error: &reqwest::Error) -> TransientCause {
    if error.is_timeout() {
        TransientCause::Timeout
    } else if error.is_connect() {
        TransientCause::Connection
    } else {
        TransientCause::Other(http_error_chain(error))
    }
}

/// `Retry-After` as delay-seconds or an HTTP-date (RFC 9110 §10.2.3), a date measured from
/// `now`, the engine's clock at the attempt; a date in the past is no wait at all.
pub(crate) fn retry_after(
    headers: &reqwest::header::HeaderMap,
    now: Timestamp,
) -> Option<Duration> {
    let raw = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(seconds) = raw.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(raw).ok()?;
    let at_millis = at
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    Some(Timestamp::from_millis(at_millis).since(now))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::{HeaderMap, HeaderValue, RETRY_AFTER};

    fn headers(value: &str) -> HeaderMap {
        let mut map = HeaderMap::new();
        map.insert(RETRY_AFTER, HeaderValue::from_str(value).unwrap());
        map
    }

    #[test]
    fn retry_after_reads_seconds_and_dates_from_the_engines_clock() {
        // Wed, 21 Oct 2015 07:28:00 GMT
        let now = Timestamp::from_millis(1_445_412_480_000);
        assert_eq!(
            retry_after(&headers("120"), now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            retry_after(&headers("Wed, 21 Oct 2015 07:28:00 GMT"), now),
            Some(Duration::ZERO)
        );
        assert_eq!(
            retry_after(&headers("Wed, 21 Oct 2015 08:28:00 GMT"), now),
            Some(Duration::from_secs(3600))
        );
        assert_eq!(
            retry_after(&headers("Wed, 21 Oct 2015 06:28:00 GMT"), now),
            Some(Duration::ZERO),
            "a date in the past is no wait"
        );
        assert_eq!(retry_after(&headers("soon"), now), None);
        assert_eq!(retry_after(&HeaderMap::new(), now), None);
    }
}
