//! The HTTP client of the client commands: one base URL, the admin token where the admin API is
//! used, and the server's answers turned into JSON values or [`ApiError`]s.

use std::path::Path;
use std::time::Duration;

use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::{Method, RequestBuilder, StatusCode, Url};
use serde_json::Value;

use super::{CliError, ServerArgs};

/// How long a connection may take to open.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a whole request may take.
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// The longest error body quoted when the server did not answer problem+json.
const MAX_QUOTED_BODY: usize = 200;

/// Why a call did not succeed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ApiError {
    /// The server answered with an error status; `detail` is the problem's detail (or the
    /// beginning of the body when it was not problem+json).
    #[error("{status}: {detail}")]
    Status {
        /// The HTTP status.
        status: StatusCode,
        /// What the server said.
        detail: String,
    },
    /// No answer: the connection failed or timed out.
    #[error("no answer from {url}")]
    Unreachable {
        /// What was called.
        url: String,
        /// What failed (without the URL, said above).
        source: reqwest::Error,
    },
    /// A success status whose body is not what the API documents.
    #[error("unexpected answer from {url}: {reason}")]
    Unexpected {
        /// What was called.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
}

impl From<ApiError> for CliError {
    /// An unreachable server or refused credentials stop everything (setup, exit 2); any other
    /// refusal is a failure of the command (exit 1).
    fn from(error: ApiError) -> Self {
        match &error {
            ApiError::Unreachable { .. } => Self::Setup(error.into()),
            ApiError::Status { status, .. } if *status == StatusCode::UNAUTHORIZED => {
                Self::Setup(error.into())
            }
            _ => Self::Failed(error.into()),
        }
    }
}

/// The server's base URL, checked: http or https, no query or fragment, no trailing slash.
#[derive(Debug, Clone)]
pub(crate) struct BaseUrl(String);

impl BaseUrl {
    /// Parses `--url`.
    pub(crate) fn parse(raw: &str) -> Result<Self, CliError> {
        let url = Url::parse(raw).map_err(|e| CliError::setup(format!("--url {raw:?}: {e}")))?;
        match url.scheme() {
            "http" | "https" => {}
            other => {
                return Err(CliError::setup(format!(
                    "--url {raw:?}: expected an http:// or https:// URL, not {other}://"
                )));
            }
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(CliError::setup(format!(
                "--url {raw:?}: expected a base URL without query or fragment"
            )));
        }
        Ok(Self(url.as_str().trim_end_matches('/').to_string()))
    }

    /// The URL of `path` (which starts with `/`).
    pub(crate) fn join(&self, path: &str) -> String {
        format!("{}{path}", self.0)
    }
}

impl std::fmt::Display for BaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A reqwest client with the CLI's timeouts, trusting the system's certificate authorities and
/// those of `ca_cert` (a PEM file) for https.
pub(crate) fn http_client(ca_cert: Option<&Path>) -> Result<reqwest::Client, CliError> {
    // reqwest's rustls needs a process-wide provider (the workspace uses ring).
    io_channels::install_default_crypto_provider();
    let mut builder = reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(REQUEST_TIMEOUT)
        .user_agent(concat!("io-server-cli/", env!("CARGO_PKG_VERSION")));
    if let Some(path) = ca_cert {
        let shown = path.display();
        let pem =
            std::fs::read(path).map_err(|e| CliError::setup(format!("--ca-cert {shown}: {e}")))?;
        let authorities = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| CliError::setup(format!("--ca-cert {shown}: {e}")))?;
        if authorities.is_empty() {
            return Err(CliError::setup(format!(
                "--ca-cert {shown}: no CERTIFICATE block in the file"
            )));
        }
        for authority in authorities {
            builder = builder.add_root_certificate(authority);
        }
    }
    builder
        .build()
        .map_err(|e| CliError::setup(format!("cannot build the HTTP client: {e}")))
}

/// A client of the admin API.
#[derive(Debug, Clone)]
pub(crate) struct AdminClient {
    http: reqwest::Client,
    base: BaseUrl,
    token: String,
}

impl AdminClient {
    /// A client of the server `server` names, presenting `token`; both are checked first.
    pub(crate) fn new(server: &ServerArgs, token: Option<&str>) -> Result<Self, CliError> {
        let base = BaseUrl::parse(&server.url)?;
        let token = token
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| CliError::setup("the admin API needs --admin-token or IO_ADMIN_TOKEN"))?
            .to_string();
        Ok(Self {
            http: http_client(server.ca_cert.as_deref())?,
            base,
            token,
        })
    }

    /// A request to the admin API's `path` (under `/adm`).
    fn request(&self, method: Method, path: &str) -> (String, RequestBuilder) {
        let url = self.base.join(&format!("/adm{path}"));
        let builder = self.http.request(method, &url).bearer_auth(&self.token);
        (url, builder)
    }

    /// `GET /adm{path}`.
    pub(crate) async fn get(&self, path: &str) -> Result<Value, ApiError> {
        let (url, request) = self.request(Method::GET, path);
        json_answer(&url, request.send().await).await
    }

    /// `POST /adm{path}` with a JSON body.
    pub(crate) async fn post(&self, path: &str, body: &Value) -> Result<Value, ApiError> {
        let (url, request) = self.request(Method::POST, path);
        json_answer(&url, request.json(body).send().await).await
    }

    /// `PUT /adm{path}` with a JSON body.
    pub(crate) async fn put(&self, path: &str, body: &Value) -> Result<Value, ApiError> {
        let (url, request) = self.request(Method::PUT, path);
        json_answer(&url, request.json(body).send().await).await
    }
}

/// The JSON body of a success, or the error.
async fn json_answer(
    url: &str,
    sent: Result<reqwest::Response, reqwest::Error>,
) -> Result<Value, ApiError> {
    let response = sent.map_err(|source| ApiError::Unreachable {
        url: url.to_string(),
        source: source.without_url(),
    })?;
    let status = response.status();
    if !status.is_success() {
        return Err(ApiError::Status {
            status,
            detail: error_detail(response).await,
        });
    }
    response.json().await.map_err(|e| ApiError::Unexpected {
        url: url.to_string(),
        reason: format!("the body is not the JSON expected: {e}"),
    })
}

/// The `detail` of a problem+json answer, or else its title, or else the start of the body.
pub(crate) async fn error_detail(response: reqwest::Response) -> String {
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    problem_detail(&body).unwrap_or_else(|| {
        let text: String = body.trim().chars().take(MAX_QUOTED_BODY).collect();
        if text.is_empty() {
            status.canonical_reason().unwrap_or("no detail").to_string()
        } else {
            text
        }
    })
}

/// The `detail` (or `title`) of a problem+json body.
fn problem_detail(body: &str) -> Option<String> {
    let value: Value = serde_json::from_str(body).ok()?;
    ["detail", "title"]
        .iter()
        .find_map(|field| value.get(field)?.as_str())
        .filter(|text| !text.is_empty())
        .map(str::to_string)
}

/// A `Retry-After` header given in seconds (an HTTP date is not used by io and is ignored).
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let seconds = headers
        .get(RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls_are_http_or_https_without_trailing_slash() {
        let base = BaseUrl::parse("http://127.0.0.1:8080/").unwrap();
        assert_eq!(
            base.join("/adm/services"),
            "http://127.0.0.1:8080/adm/services"
        );
        let prefixed = BaseUrl::parse("http://gateway.local/io/").unwrap();
        assert_eq!(prefixed.join("/healthz"), "http://gateway.local/io/healthz");
        let secure = BaseUrl::parse("https://io.example/").unwrap();
        assert_eq!(
            secure.join("/adm/services"),
            "https://io.example/adm/services"
        );
        for refused in ["ftp://io.example", "not a url", "http://h/?a=1"] {
            assert!(
                matches!(BaseUrl::parse(refused), Err(CliError::Setup(_))),
                "{refused}"
            );
        }
    }

    #[test]
    fn problem_details_are_read_from_the_body() {
        assert_eq!(
            problem_detail(
                r#"{"type":"about:blank","title":"Bad Request","status":400,"detail":"content.subject: too short"}"#
            ),
            Some("content.subject: too short".to_string())
        );
        assert_eq!(
            problem_detail(r#"{"title":"Not Found"}"#),
            Some("Not Found".into())
        );
        assert_eq!(problem_detail("<html>oops</html>"), None);
    }

    #[test]
    fn retry_after_is_read_in_seconds() {
        let mut headers = HeaderMap::new();
        assert_eq!(retry_after(&headers), None);
        headers.insert(RETRY_AFTER, "7".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(7)));
        headers.insert(
            RETRY_AFTER,
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&headers), None);
    }
}
