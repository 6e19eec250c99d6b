//! Operations endpoints: `/healthz` (the process answers), `/readyz` (the store answers, no
//! damaged record was met, and shutdown has not begun), `/metrics` (Prometheus text).

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use io_core::Store;

use crate::app::App;
use crate::problem::{ApiResult, Problem};

/// The operations routes.
pub fn router<S: Store>(app: Arc<App<S>>) -> Router<Arc<App<S>>> {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz::<S>))
        .route("/metrics", get(metrics::<S>))
        .route_layer(axum::middleware::from_fn_with_state(
            app,
            crate::app::measure::<S>,
        ))
}

async fn readyz<S: Store>(State(app): State<Arc<App<S>>>) -> ApiResult<&'static str> {
    if !app.is_ready() {
        return Err(Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting down",
        ));
    }
    let corrupt = app.metrics.corrupt_records();
    if !corrupt.is_empty() {
        let kinds: Vec<String> = corrupt
            .iter()
            .map(|(what, n)| format!("{what} ×{n}"))
            .collect();
        return Err(Problem::typed(
            StatusCode::SERVICE_UNAVAILABLE,
            "store-damaged",
            format!(
                "requests met damaged stored records ({}); stop the server and run `io-server store check`",
                kinds.join(", ")
            ),
        ));
    }
    app.store.backlog().await?;
    Ok("ready")
}

async fn metrics<S: Store>(State(app): State<Arc<App<S>>>) -> ApiResult<impl IntoResponse> {
    let backlog = app.store.backlog().await?;
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        app.metrics.render(backlog),
    ))
}
