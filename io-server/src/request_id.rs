//! The request id: every answer carries `X-Request-Id`, and every log line written while a
//! request is served is in a span holding it, so an institution quoting the id of a failed call
//! leads an operator to that call's log lines. A proxy's or client's id is kept when it is a
//! plain token (letters, digits, `.`, `_`, `-`; at most 64), so one id follows a call through
//! the proxy's logs and io's; anything else is replaced, never echoed: the header is user input,
//! and an id ends up in log lines and answers.
//!
//! With `IO_LOG=info,io_server::access=debug` each request is also logged once when it is
//! answered (route template, never the path: paths hold fiscal codes), with status and
//! latency. It is off by default, being one line per request.

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

/// The header, on requests and answers.
pub const HEADER: &str = "x-request-id";

/// The longest id taken from a request.
pub const MAX_LENGTH: usize = 64;

/// A request's id, in the request's extensions for handlers that quote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(String);

impl RequestId {
    /// The id the request brought, if it is a plain token.
    pub fn from_header(value: &HeaderValue) -> Option<Self> {
        let text = value.to_str().ok()?;
        let plain = !text.is_empty()
            && text.len() <= MAX_LENGTH
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        plain.then(|| Self(text.to_owned()))
    }

    /// A new id (a ULID: sortable by time, unique without coordination).
    pub fn generate() -> Self {
        Self(ulid::Ulid::new().to_string())
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The outermost layer: gives the request its id, serves it inside a span holding the id, and
/// puts the id on the answer.
pub async fn layer(mut request: Request, next: Next) -> Response {
    let id = request
        .headers()
        .get(HEADER)
        .and_then(RequestId::from_header)
        .unwrap_or_else(RequestId::generate);
    request.extensions_mut().insert(id.clone());
    let method = crate::app::method_label(request.method());
    let span = tracing::info_span!("request", id = id.as_str(), method);
    let started = Instant::now();
    let mut response = next.run(request).instrument(span.clone()).await;
    let route = response
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str);
    span.in_scope(|| {
        tracing::debug!(
            target: "io_server::access",
            route,
            status = response.status().as_u16(),
            latency_ms = started.elapsed().as_secs_f64() * 1000.0,
            "request answered"
        );
    });
    if let Ok(value) = HeaderValue::from_str(id.as_str()) {
        response.headers_mut().insert(HEADER, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_tokens_are_taken_from_a_request() {
        for taken in [
            "abc",
            "01HF7YATZ80000000000000001",
            "req-1.2_3",
            &"a".repeat(64),
        ] {
            let id = RequestId::from_header(&HeaderValue::from_str(taken).unwrap());
            assert_eq!(id.as_ref().map(RequestId::as_str), Some(taken));
        }
        for refused in ["", "a b", "a\tb", "<script>", "id\"x", "é", &"a".repeat(65)] {
            let value = HeaderValue::from_bytes(refused.as_bytes()).unwrap();
            assert_eq!(RequestId::from_header(&value), None, "{refused:?}");
        }
        assert_eq!(RequestId::from_header(&HeaderValue::from_static("")), None);
    }

    #[test]
    fn generated_ids_are_distinct_plain_tokens() {
        let (a, b) = (RequestId::generate(), RequestId::generate());
        assert_ne!(a, b);
        let value = HeaderValue::from_str(a.as_str()).unwrap();
        assert_eq!(RequestId::from_header(&value), Some(a));
    }
}
