//! Errors as RFC 9457 `application/problem+json`, the shape IO's APIs answer with. Every
//! refusal of the server goes through [`Problem`], so clients parse one error format, and the
//! `detail` names the field and the rule whenever the request is at fault.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// The media type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// An error answer: status, a short title and a detail for humans.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// A URI naming the kind of problem (`about:blank` when the status says it all).
    #[serde(rename = "type")]
    pub kind: String,
    /// The status's reason phrase or a short summary.
    pub title: String,
    /// The HTTP status, repeated in the body as RFC 9457 asks.
    pub status: u16,
    /// What exactly is wrong: the field and the rule.
    pub detail: String,
    /// Extra headers (`Retry-After`, rate-limit hints).
    #[serde(skip)]
    pub headers: Vec<(&'static str, String)>,
    /// The kind of a damaged stored record behind a 500: passed to the response as a
    /// [`CorruptRecord`] extension, which the measuring layer counts and `/readyz` reports.
    #[serde(skip)]
    pub corrupt: Option<&'static str>,
}

/// Marks a response caused by a damaged stored record (see [`Problem::corrupt`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CorruptRecord(pub &'static str);

impl Problem {
    /// A problem with `status` and `detail`; the title is the status's reason phrase.
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        Self {
            kind: "about:blank".into(),
            title: status.canonical_reason().unwrap_or("Error").into(),
            status: status.as_u16(),
            detail: detail.into(),
            headers: Vec::new(),
            corrupt: None,
        }
    }

    /// A named problem type under `https://io.example/problems/` (documented in the OpenAPI
    /// descriptions), for errors a client handles programmatically.
    pub fn typed(status: StatusCode, kind: &str, detail: impl Into<String>) -> Self {
        let mut problem = Self::new(status, detail);
        problem.kind = format!("/problems/{kind}");
        problem
    }

    /// 400: the request breaks a rule.
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, detail)
    }

    /// 401: no valid credentials.
    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, detail)
    }

    /// 403: valid credentials that do not allow this.
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, detail)
    }

    /// 404: no such resource (or not visible to the caller).
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, detail)
    }

    /// 409: a stale version or a conflicting reuse.
    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, detail)
    }

    /// 429 with `Retry-After` in whole seconds (at least 1).
    pub fn too_many_requests(detail: impl Into<String>, retry_after_secs: u64) -> Self {
        Self::new(StatusCode::TOO_MANY_REQUESTS, detail)
            .with_header("retry-after", retry_after_secs.max(1).to_string())
    }

    /// 500 for a failure of ours; the detail stays generic, the cause goes to the log.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(%cause, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal error; the request may be retried",
        )
    }

    /// 503: a dependency (the store) failed in a way that retrying may fix.
    pub fn unavailable(cause: impl std::fmt::Display) -> Self {
        tracing::warn!(%cause, "store unavailable");
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "storage temporarily unavailable; retry later",
        )
        .with_header("retry-after", "1".into())
    }

    /// Adds a header to the answer.
    pub fn with_header(mut self, name: &'static str, value: String) -> Self {
        self.headers.push((name, value));
        self
    }
}

impl From<io_core::StoreError> for Problem {
    fn from(error: io_core::StoreError) -> Self {
        match error {
            io_core::StoreError::Conflict { .. } => Self::conflict(error.to_string()),
            io_core::StoreError::Taken { .. } => {
                Self::new(StatusCode::PRECONDITION_FAILED, error.to_string())
            }
            io_core::StoreError::Corrupt { what, .. } => {
                // Not retriable, not the client's fault: an operator must look.
                tracing::error!(record = what, %error, "a stored record is damaged; stop the server and run `io-server store check`");
                let mut problem = Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!(
                        "a stored record ({what}) needed by this request is damaged; the operator has been alerted"
                    ),
                );
                problem.corrupt = Some(what);
                problem
            }
            error if error.is_retriable() => Self::unavailable(error),
            error => Self::internal(error),
        }
    }
}

impl IntoResponse for Problem {
    fn into_response(mut self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let headers = std::mem::take(&mut self.headers);
        let corrupt = self.corrupt;
        let mut response = (status, Json(&self)).into_response();
        if let Some(what) = corrupt {
            response.extensions_mut().insert(CorruptRecord(what));
        }
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        for (name, value) in headers {
            if let Ok(value) = HeaderValue::from_str(&value) {
                response.headers_mut().insert(name, value);
            }
        }
        response
    }
}

/// The result of a handler.
pub type ApiResult<T> = Result<T, Problem>;
