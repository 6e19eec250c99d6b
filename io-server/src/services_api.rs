//! The Services API under `/api/v1`: what institutions call, with IO's paths, field names,
//! status codes and headers (io-reference §6), so that a client written for IO works by
//! changing only its base URL. Authentication, source-IP check and the per-institution rate
//! limit run in `authenticate` before any handler.

pub mod activations;
pub mod messages;
pub mod profiles;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use io_core::{FiscalCode, Group, Groups, MessageId, Service, ServiceId, Store};

use crate::app::{App, source_ip};
use crate::institution_limit::Verdict;
use crate::openapi::DocumentedRouter;
use crate::problem::Problem;
use crate::request_headers::single;

/// The header carrying a service's key, as on IO (Azure API Management's name).
pub const KEY_HEADER: &str = "ocp-apim-subscription-key";

/// The authenticated caller of a Services API route.
#[derive(Debug, Clone)]
pub struct ServiceCaller {
    /// The calling service, as stored.
    pub service: Service,
    /// What its key may do.
    pub groups: Groups,
}

impl ServiceCaller {
    /// 403 unless the key has `group`.
    pub fn require(&self, group: Group) -> Result<(), Problem> {
        if self.groups.has(group) {
            Ok(())
        } else {
            Err(Problem::forbidden(format!(
                "this operation requires the {} permission",
                group.as_str()
            )))
        }
    }

    /// 403 when a limited key, or the key of a sandboxed (not yet published) service, names a
    /// recipient outside `authorized_recipients` (403, not 404, so a sandbox key cannot probe
    /// who is registered).
    pub fn require_recipient(&self, fiscal_code: &FiscalCode) -> Result<(), Problem> {
        if self.service.authorized_recipients.contains(fiscal_code) {
            return Ok(());
        }
        if self.service.sandboxed {
            return Err(Problem::forbidden(
                "the service is not published: until it is, it reaches only its authorized_recipients and the fiscal code is not one of them",
            ));
        }
        if self.groups.is_limited() {
            return Err(Problem::forbidden(
                "this key is limited to the service's authorized_recipients and the fiscal code is not one of them",
            ));
        }
        Ok(())
    }

    /// The service's id.
    pub fn service_id(&self) -> &ServiceId {
        &self.service.service_id
    }
}

/// The documented `/api/v1` routes of services (service management has its own, in
/// `crate::manage_api`), before the authentication layers.
pub fn routes<S: Store>() -> DocumentedRouter<Arc<App<S>>> {
    DocumentedRouter::default()
        .route::<messages::__path_submit_with_body_recipient, _, _>(
            messages::submit_with_body_recipient::<S>,
        )
        .route::<messages::__path_submit_to, _, _>(messages::submit_to::<S>)
        .route::<messages::__path_get_message, _, _>(messages::get_message::<S>)
        .route::<profiles::__path_profile_by_body, _, _>(profiles::profile_by_body::<S>)
        .route::<profiles::__path_profile_by_path, _, _>(profiles::profile_by_path::<S>)
        .route::<profiles::__path_subscriptions_feed, _, _>(profiles::subscriptions_feed::<S>)
        // IO's paths end with a slash; the slash-less form (io's first) is kept.
        .route::<activations::__path_get_activation, _, _>(activations::get_activation::<S>)
        .alias::<activations::__path_get_activation, _, _>(
            "/activations",
            "WithoutSlash",
            activations::get_activation::<S>,
        )
        .route::<activations::__path_put_activation, _, _>(activations::put_activation::<S>)
        .alias::<activations::__path_put_activation, _, _>(
            "/activations",
            "WithoutSlash",
            activations::put_activation::<S>,
        )
}

/// The `/api/v1` routes.
pub fn router<S: Store>(app: Arc<App<S>>) -> Router<Arc<App<S>>> {
    let (routes, documented) = routes::<S>().into_parts();
    let (manage_routes, manage_documented) = crate::manage_api::routes::<S>().into_parts();
    routes
        .route_layer(middleware::from_fn_with_state(
            app.clone(),
            authenticate::<S>,
        ))
        .route_layer(middleware::from_fn_with_state(
            app.clone(),
            crate::app::measure::<S>,
        ))
        // Service management authenticates institutions, with layers of its own.
        .merge(crate::manage_api::router(app.clone(), manage_routes))
        .merge(crate::openapi::route(
            app,
            crate::openapi::services_api_document_of(documented, manage_documented),
        ))
}

/// Authenticates the key, checks the source address against `authorized_cidrs` and counts the
/// call against the institution's rate limit; adds the rate-limit headers to the answer.
async fn authenticate<S: Store>(
    State(app): State<Arc<App<S>>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    mut request: Request,
    next: Next,
) -> Response {
    let caller = match identify(&app, peer, request.headers()).await {
        Ok(caller) => caller,
        Err(problem) => return problem.into_response(),
    };
    let verdict = app
        .limiter
        .check(caller.service.organization_fiscal_code.as_str());
    if let Verdict::Refused { limit, retry_after } = verdict {
        return crate::institution_limit::refusal(
            caller.service.organization_fiscal_code.as_str(),
            limit,
            retry_after,
        )
        .into_response();
    }
    request.extensions_mut().insert(caller);
    let mut response = next.run(request).await;
    if let Verdict::Allowed { limit, remaining } = verdict {
        let headers = response.headers_mut();
        headers.insert("x-rate-limit-limit", HeaderValue::from(limit));
        headers.insert("x-rate-limit-remaining", HeaderValue::from(remaining));
    }
    response
}

/// Whose subscription the key in `headers` is (a service's or an institution's manage key)
/// and its groups; 401 without a key or with one that is not valid.
pub(crate) async fn key_owner<S: Store>(
    app: &App<S>,
    headers: &HeaderMap,
) -> Result<(ServiceId, Groups), Problem> {
    let key = single(headers, KEY_HEADER)?
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .ok_or_else(|| Problem::unauthorized("missing Ocp-Apim-Subscription-Key header"))?;
    crate::api_keys::authenticate(&*app.store, &app.keys, key)
        .await?
        .ok_or_else(|| Problem::unauthorized("the subscription key is not valid"))
}

/// The service calling with the key in `headers`, checked against its `authorized_cidrs`; a
/// manage key is refused (403): it manages services and sends nothing.
pub(crate) async fn identify<S: Store>(
    app: &App<S>,
    peer: SocketAddr,
    headers: &HeaderMap,
) -> Result<ServiceCaller, Problem> {
    let (service_id, groups) = key_owner(app, headers).await?;
    if crate::api_keys::managing_institution(&service_id).is_some() {
        return Err(Problem::forbidden(
            "this is an institution's manage key: it manages services under /manage/services; call this operation with a service's key",
        ));
    }
    let service =
        app.store.service(&service_id).await?.ok_or_else(|| {
            Problem::unauthorized("the subscription key's service no longer exists")
        })?;
    if !service.authorized_cidrs.is_empty() {
        let Some(ip) = source_ip(app, peer, headers) else {
            return Err(Problem::forbidden(
                "the client address forwarded by the proxy could not be read, and the service accepts calls only from its authorized_cidrs",
            ));
        };
        if !service.authorized_cidrs.iter().any(|net| net.contains(ip)) {
            return Err(Problem::forbidden(format!(
                "source address {ip} is not in the service's authorized_cidrs"
            )));
        }
    }
    Ok(ServiceCaller { service, groups })
}

/// Parses a message id from a path or query, as a 400 that names where it came from.
pub fn parse_message_id(raw: &str, field: &str) -> Result<MessageId, Problem> {
    raw.parse::<MessageId>()
        .map_err(|e| Problem::bad_request(format!("{field}: {e}")))
}

/// Parses a fiscal code from a path or body, as a 400 that names where it came from.
pub fn parse_fiscal_code(raw: &str, field: &str) -> Result<FiscalCode, Problem> {
    FiscalCode::parse(raw).map_err(|e| Problem::bad_request(format!("{field}: {e}")))
}
