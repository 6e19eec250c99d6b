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
use io_core::{FeedEvent, FeedScope, FiscalCode, Profile, Store, Subscription};

use crate::app::App;
use crate::openapi::DocumentedRouter;
use crate::problem::{ApiResult, Problem};

pub use data_processing::process_due_requests;

/// The authenticated citizen, put in the request's extensions by the authentication layer.
#[derive(Debug, Clone)]
pub struct Citizen(pub FiscalCode);

/// The documented `/app/v1` routes, before the authentication layer.
pub fn routes<S: Store>() -> DocumentedRouter<Arc<App<S>>> {
    DocumentedRouter::default()
        .route::<profile::__path_get_profile, _, _>(profile::get_profile::<S>)
        .route::<profile::__path_post_profile, _, _>(profile::post_profile::<S>)
        .route::<catalogue::__path_list_institutions, _, _>(catalogue::list_institutions::<S>)
        .route::<catalogue::__path_list_services, _, _>(catalogue::list_services::<S>)
        .route::<catalogue::__path_institution_logo, _, _>(catalogue::institution_logo::<S>)
        .route::<catalogue::__path_list_topics, _, _>(catalogue::list_topics)
        .route::<catalogue::__path_get_service, _, _>(catalogue::get_service::<S>)
        .route::<catalogue::__path_service_logo, _, _>(catalogue::service_logo::<S>)
        .route::<preferences::__path_get_preference, _, _>(preferences::get_preference::<S>)
        .route::<preferences::__path_post_preference, _, _>(preferences::post_preference::<S>)
        .route::<messages::__path_list_messages, _, _>(messages::list_messages::<S>)
        .route::<messages::__path_get_message, _, _>(messages::get_message::<S>)
        .route::<messages::__path_get_third_party_message, _, _>(
            messages::get_third_party_message::<S>,
        )
        .route::<messages::__path_put_message_status, _, _>(messages::put_message_status::<S>)
        .route::<installations::__path_put_installation, _, _>(installations::put_installation::<S>)
        .route::<data_processing::__path_post_request, _, _>(data_processing::post_request::<S>)
        .route::<data_processing::__path_get_request, _, _>(data_processing::get_request::<S>)
        .route::<data_processing::__path_abort_request, _, _>(data_processing::abort_request::<S>)
        .route::<data_processing::__path_get_archive, _, _>(data_processing::get_archive::<S>)
}

/// The `/app/v1` routes.
pub fn router<S: Store>(app: Arc<App<S>>) -> Router<Arc<App<S>>> {
    let (routes, documented) = routes::<S>().into_parts();
    routes
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
            crate::openapi::citizen_api_document_of(documented),
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
