//! One row of `send` over HTTP: `POST /api/v1/messages/{fiscal_code}` with the row's
//! idempotency key, the answer classified, transient ones retried as [`RetryPolicy`] says, and
//! the run told to stop when no further row can succeed (401) or the server is gone.

use rand::SeedableRng;
use rand::rngs::SmallRng;
use reqwest::StatusCode;
use serde_json::Value;
use tokio::sync::watch;

use super::retry::{Answer, RetryPolicy};
use super::rows::{ContentHash, Row, RowMessage};
use crate::cli::client::{BaseUrl, error_detail, retry_after};

/// The header with which the server says it answered an idempotency key seen before.
const REPLAYED_HEADER: &str = "idempotent-replayed";
/// The header carrying a service's API key.
const KEY_HEADER: &str = "Ocp-Apim-Subscription-Key";
/// The header making a submit safe to repeat.
const IDEMPOTENCY_HEADER: &str = "Idempotency-Key";

/// Why a run stopped before its last row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Stop {
    /// Ctrl-C.
    Interrupted,
    /// The server refused the key (401).
    Unauthorized(String),
    /// The server stopped answering.
    Unreachable(String),
}

impl std::fmt::Display for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Interrupted => f.write_str("interrupted"),
            Self::Unauthorized(detail) => write!(f, "the server refused the key: {detail}"),
            Self::Unreachable(error) => write!(f, "the server stopped answering: {error}"),
        }
    }
}

/// A row's result.
#[derive(Debug)]
pub(crate) struct RowOutcome {
    /// Its number.
    pub(crate) row: u64,
    /// Its fiscal code cell.
    pub(crate) raw_fiscal_code: String,
    /// The message, or why there is none.
    pub(crate) result: Result<Created, Failure>,
}

/// A created message.
#[derive(Debug)]
pub(crate) struct Created {
    /// Its id.
    pub(crate) id: String,
    /// Whether an earlier run had created it.
    pub(crate) replayed: bool,
}

/// A row that was not created.
#[derive(Debug)]
pub(crate) struct Failure {
    /// For the results file.
    pub(crate) error: String,
    /// Set when no further row should be started.
    pub(crate) stop: Option<Stop>,
}

/// Sends rows of one file with one service's key.
pub(crate) struct Sender {
    /// The HTTP client.
    http: reqwest::Client,
    /// The server.
    base: BaseUrl,
    /// The service's API key.
    key: String,
    /// The file's hash, for the idempotency keys.
    hash: ContentHash,
    /// When to retry.
    policy: RetryPolicy,
    /// Becomes true when the run stops: retries waiting give up.
    stop: watch::Receiver<bool>,
}

impl Sender {
    /// A sender of the rows of the file with `hash` to `base` with `key`.
    pub(crate) fn new(
        http: reqwest::Client,
        base: BaseUrl,
        key: String,
        hash: ContentHash,
        policy: RetryPolicy,
        stop: watch::Receiver<bool>,
    ) -> Self {
        Self {
            http,
            base,
            key,
            hash,
            policy,
            stop,
        }
    }

    /// Sends one row, retrying transient answers as the policy allows.
    pub(crate) async fn send(&self, row: Row) -> RowOutcome {
        let result = match &row.message {
            Ok(message) => self.send_message(row.number, message).await,
            Err(error) => Err(Failure {
                error: error.to_string(),
                stop: None,
            }),
        };
        RowOutcome {
            row: row.number,
            raw_fiscal_code: row.raw_fiscal_code,
            result,
        }
    }

    /// Sends row `number`'s message.
    async fn send_message(&self, number: u64, message: &RowMessage) -> Result<Created, Failure> {
        let url = self.base.join(&format!(
            "/api/v1/messages/{}",
            message.fiscal_code.as_str()
        ));
        let key = self.hash.idempotency_key(number);
        // Seeded by the row: jitter differs between rows and a run is reproducible.
        let mut rng = SmallRng::seed_from_u64(number);
        let mut retries = 0;
        loop {
            let answer = self.attempt(&url, &key, &message.body).await;
            match answer {
                Answer::Created { id, replayed } => return Ok(Created { id, replayed }),
                Answer::Unauthorized { detail } => {
                    return Err(Failure {
                        error: detail.clone(),
                        stop: Some(Stop::Unauthorized(detail)),
                    });
                }
                _ => {}
            }
            let Some(wait) = self.policy.delay(&answer, retries, &mut rng) else {
                let mut error = answer.describe();
                match retries {
                    0 => {}
                    1 => error.push_str(" (after 1 retry)"),
                    n => error.push_str(&format!(" (after {n} retries)")),
                }
                let stop = match &answer {
                    Answer::Unreachable { error } => Some(Stop::Unreachable(error.clone())),
                    _ => None,
                };
                return Err(Failure { error, stop });
            };
            let mut stop = self.stop.clone();
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                Ok(_) = stop.wait_for(|stopped| *stopped) => {
                    return Err(Failure {
                        error: format!("interrupted while retrying: {}", answer.describe()),
                        stop: None,
                    });
                }
            }
            retries += 1;
        }
    }

    /// One request.
    async fn attempt(&self, url: &str, key: &str, body: &Value) -> Answer {
        let sent = self
            .http
            .post(url)
            .header(KEY_HEADER, &self.key)
            .header(IDEMPOTENCY_HEADER, key)
            .json(body)
            .send()
            .await;
        let response = match sent {
            Ok(response) => response,
            // Without the URL: it holds the fiscal code.
            Err(error) => {
                return Answer::Unreachable {
                    error: error_chain(&error.without_url()),
                };
            }
        };
        classify(response).await
    }
}

/// An answer of `POST /api/v1/messages/{fiscal_code}` as an [`Answer`].
async fn classify(response: reqwest::Response) -> Answer {
    let status = response.status();
    if status.is_success() {
        let replayed = response
            .headers()
            .get(REPLAYED_HEADER)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"true"));
        return match response.json::<Value>().await {
            Ok(body) => match body.get("id").and_then(Value::as_str) {
                Some(id) => Answer::Created {
                    id: id.to_string(),
                    replayed,
                },
                None => Answer::Refused {
                    status: status.as_u16(),
                    detail: format!("{status} without a message id"),
                },
            },
            // The connection broke mid-body: the message may exist; the same key finds it.
            Err(error) => Answer::Unreachable {
                error: error_chain(&error.without_url()),
            },
        };
    }
    let retry_after = retry_after(response.headers());
    let detail = error_detail(response).await;
    match status {
        StatusCode::TOO_MANY_REQUESTS => Answer::TooManyRequests {
            retry_after,
            detail,
        },
        StatusCode::UNAUTHORIZED => Answer::Unauthorized { detail },
        status if status.is_server_error() => Answer::ServerError {
            status: status.as_u16(),
            detail,
        },
        status => Answer::Refused {
            status: status.as_u16(),
            detail,
        },
    }
}

/// An error and its sources, `: `-separated (reqwest's own message hides the cause).
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use axum::Router;
    use axum::http::{HeaderMap, StatusCode};
    use axum::response::IntoResponse;
    use axum::routing::post;
    use serde_json::json;

    use super::super::rows::HashingReader;
    use super::*;
    use crate::cli::client::http_client;

    /// A fake Services API answering each submit with the next of `script` (the last one
    /// forever), recording the idempotency keys it saw.
    struct Fake {
        script: Mutex<Vec<(u16, Option<&'static str>)>>,
        keys: Mutex<Vec<String>>,
    }

    async fn fake_api(script: Vec<(u16, Option<&'static str>)>) -> (BaseUrl, Arc<Fake>) {
        let state = Arc::new(Fake {
            script: Mutex::new(script),
            keys: Mutex::new(Vec::new()),
        });
        let handler_state = state.clone();
        let app = Router::new().route(
            "/api/v1/messages/{fiscal_code}",
            post(move |headers: HeaderMap| {
                let state = handler_state.clone();
                async move {
                    let key = headers[IDEMPOTENCY_HEADER].to_str().unwrap().to_string();
                    state.keys.lock().unwrap().push(key);
                    let (status, retry_after) = {
                        let mut script = state.script.lock().unwrap();
                        if script.len() > 1 {
                            script.remove(0)
                        } else {
                            script[0]
                        }
                    };
                    let status = StatusCode::from_u16(status).unwrap();
                    let mut headers = HeaderMap::new();
                    if let Some(seconds) = retry_after {
                        headers.insert("retry-after", seconds.parse().unwrap());
                    }
                    let body = if status.is_success() {
                        json!({"id": "01JZZZZZZZZZZZZZZZZZZZZZZZ"})
                    } else {
                        json!({"type": "about:blank", "title": "t", "status": status.as_u16(), "detail": format!("scripted {status}")})
                    };
                    (status, headers, axum::Json(body)).into_response()
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = BaseUrl::parse(&format!("http://{}", listener.local_addr().unwrap())).unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        (base, state)
    }

    fn sender(base: BaseUrl, stop: watch::Receiver<bool>) -> Sender {
        Sender::new(
            http_client(None).unwrap(),
            base,
            "key".into(),
            HashingReader::new(&b"fiscal_code,subject,markdown\n"[..])
                .finish()
                .unwrap(),
            // No waiting: every delay is zero, so the test takes no time.
            RetryPolicy {
                max_retries: 5,
                base: Duration::ZERO,
                cap: Duration::ZERO,
                max_retry_after: Duration::ZERO,
            },
            stop,
        )
    }

    fn row(number: u64) -> Row {
        Row {
            number,
            raw_fiscal_code: "RSSMRA85T10A562S".into(),
            message: Ok(RowMessage {
                fiscal_code: io_core::FiscalCode::parse("RSSMRA85T10A562S").unwrap(),
                body: json!({"content": {"subject": "s", "markdown": "m"}}),
            }),
        }
    }

    #[tokio::test]
    async fn transient_answers_are_retried_with_the_same_idempotency_key() {
        let (base, fake) = fake_api(vec![
            (429, Some("1")),
            (503, None),
            (500, None),
            (201, None),
        ])
        .await;
        let (_stop, stopped) = watch::channel(false);
        let outcome = sender(base, stopped).send(row(7)).await;
        let created = outcome.result.unwrap();
        assert_eq!(created.id, "01JZZZZZZZZZZZZZZZZZZZZZZZ");
        let keys = fake.keys.lock().unwrap().clone();
        assert_eq!(keys.len(), 4);
        assert!(
            keys.iter()
                .all(|key| key == &keys[0] && key.ends_with("-7"))
        );
    }

    #[tokio::test]
    async fn a_row_gives_up_after_five_retries_and_a_4xx_is_final() {
        let (base, fake) = fake_api(vec![(503, None)]).await;
        let (_stop, stopped) = watch::channel(false);
        let failure = sender(base, stopped.clone())
            .send(row(1))
            .await
            .result
            .unwrap_err();
        assert_eq!(
            failure.error,
            "503: scripted 503 Service Unavailable (after 5 retries)"
        );
        assert_eq!(failure.stop, None);
        assert_eq!(fake.keys.lock().unwrap().len(), 6);

        let (base, fake) = fake_api(vec![(400, None)]).await;
        let failure = sender(base, stopped.clone())
            .send(row(1))
            .await
            .result
            .unwrap_err();
        assert_eq!(failure.error, "scripted 400 Bad Request");
        assert_eq!(fake.keys.lock().unwrap().len(), 1);

        let (base, _) = fake_api(vec![(401, None)]).await;
        let failure = sender(base, stopped).send(row(1)).await.result.unwrap_err();
        assert_eq!(
            failure.stop,
            Some(Stop::Unauthorized("scripted 401 Unauthorized".into()))
        );
    }

    #[tokio::test]
    async fn a_stop_ends_the_retries_of_a_row() {
        let (base, _) = fake_api(vec![(503, None)]).await;
        let (stop, stopped) = watch::channel(true);
        let mut sender = sender(base, stopped);
        sender.policy.base = Duration::from_secs(3600);
        sender.policy.cap = Duration::from_secs(3600);
        let failure = sender.send(row(1)).await.result.unwrap_err();
        assert!(
            failure.error.starts_with("interrupted while retrying: 503"),
            "{}",
            failure.error
        );
        drop(stop);
    }
}
