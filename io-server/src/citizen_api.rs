//! The citizen API under `/app/v1` (io-reference §7): what the app calls, authenticated by a
//! bearer token through [`crate::citizen_token::CitizenVerifier`]. A citizen only ever sees
//! their own data: another citizen's message is "not found", never "forbidden".
//!
//! One submodule per resource: [`profile`], [`preferences`], [`messages`] (inbox, message,
//! read and archive flags), [`installations`] (push devices), [`catalogue`] (the institutions
//! and services the app lists), [`data_processing`] (GDPR download and erasure requests, and
//! the background work that carries them out).

pub mod catalogue;
pub mod data_processing;
pub mod installations;
pub mod messages;
pub mod preferences;
pub mod profile;

use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use io_core::{FeedEvent, FeedScope, FiscalCode, Profile, Store, Subscription};

use crate::app::App;
use crate::problem::{ApiResult, Problem};

pub use data_processing::process_due_requests;

/// The authenticated citizen, put in the request's extensions by the authentication layer.
#[derive(Debug, Clone)]
pub struct Citizen(pub FiscalCode);

/// The `/app/v1` routes.
pub fn router<S: Store>(app: Arc<App<S>>) -> Router<Arc<App<S>>> {
    Router::new()
        .route(
            "/profile",
            get(profile::get_profile::<S>).post(profile::post_profile::<S>),
        )
        .route("/institutions", get(catalogue::list_institutions::<S>))
        .route(
            "/institutions/{fiscal_code}/services",
            get(catalogue::list_services::<S>),
        )
        .route(
            "/institutions/{fiscal_code}/logo",
            get(catalogue::institution_logo::<S>),
        )
        .route("/topics", get(catalogue::list_topics))
        .route("/services/{service_id}", get(catalogue::get_service::<S>))
        .route(
            "/services/{service_id}/logo",
            get(catalogue::service_logo::<S>),
        )
        .route(
            "/services/{service_id}/preferences",
            get(preferences::get_preference::<S>).post(preferences::post_preference::<S>),
        )
        .route("/messages", get(messages::list_messages::<S>))
        .route("/messages/{id}", get(messages::get_message::<S>))
        .route(
            "/third-party-messages/{id}",
            get(messages::get_third_party_message::<S>),
        )
        .route(
            "/messages/{id}/message-status",
            put(messages::put_message_status::<S>),
        )
        .route(
            "/installations/{installation_id}",
            put(installations::put_installation::<S>),
        )
        .route(
            "/user-data-processing",
            post(data_processing::post_request::<S>),
        )
        .route(
            "/user-data-processing/{choice}",
            get(data_processing::get_request::<S>).delete(data_processing::abort_request::<S>),
        )
        .route(
            "/user-data-processing/DOWNLOAD/archive",
            get(data_processing::get_archive::<S>),
        )
        .route_layer(middleware::from_fn_with_state(
            app.clone(),
            authenticate::<S>,
        ))
        .route_layer(middleware::from_fn_with_state(
            app.clone(),
            crate::app::measure::<S>,
        ))
        .merge(crate::openapi::route(
            app,
            crate::openapi::citizen_api_document(),
        ))
}

/// Resolves `Authorization: Bearer <token>` to a [`Citizen`]; 401 when missing, expired or
/// not ours.
async fn authenticate<S: Store>(
    State(app): State<Arc<App<S>>>,
    mut request: Request,
    next: Next,
) -> Response {
    let token = match crate::request_headers::bearer_token(request.headers()) {
        Ok(Some(token)) => token.to_string(),
        Ok(None) => {
            return Problem::unauthorized("missing Authorization: Bearer <token>").into_response();
        }
        Err(problem) => return problem.into_response(),
    };
    match app.citizen_verifier.verify(&token, app.clock.now()) {
        Ok(fiscal_code) => {
            request.extensions_mut().insert(Citizen(fiscal_code));
            next.run(request).await
        }
        Err(error) => Problem::unauthorized(error.to_string()).into_response(),
    }
}

/// The citizen's profile, or 404.
async fn profile_of<S: Store>(app: &App<S>, fiscal_code: &FiscalCode) -> ApiResult<Profile> {
    app.store
        .profile(fiscal_code)
        .await?
        .ok_or_else(|| Problem::not_found("no profile yet: create it with POST /profile"))
}

/// The feed event of a subscription change of the citizen (io-reference §6), to be written
/// with the change that causes it.
fn feed_event<S: Store>(
    app: &App<S>,
    fiscal_code: &FiscalCode,
    scope: FeedScope,
    change: Subscription,
) -> FeedEvent {
    FeedEvent {
        at: app.clock.now(),
        scope,
        citizen: fiscal_code.hash(),
        change,
    }
}
