//! `GET /profiles/{fiscal_code}`, `POST /profiles` and `GET /subscriptions-feed/{date}`.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use io_core::{
    FeedDay, FiscalCode, Group, PreferredLanguage, SenderAllowedInput, Store, inbox_allowed,
};
use serde::{Deserialize, Serialize};

use super::{ServiceCaller, parse_fiscal_code};
use crate::app::App;
use crate::body::JsonBody;
use crate::problem::{ApiResult, Problem};

/// IO's `LimitedProfile`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LimitedProfile {
    /// Whether the calling service's messages reach this citizen's inbox now.
    pub sender_allowed: bool,
    /// The citizen's languages.
    pub preferred_languages: Vec<PreferredLanguage>,
}

/// `POST /profiles` body: the fiscal code kept out of URLs and logs.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FiscalCodePayload {
    /// The citizen.
    #[schema(value_type = io_core::FiscalCode)]
    pub fiscal_code: String,
}

const PROFILE_200: &str = "The citizen's profile as a sender may see it.";
const PROFILE_403: &str = "The key lacks ApiLimitedProfileRead, or a limited key asks for a recipient outside authorized_recipients (403, not 404: no probing of who is registered).";
const PROFILE_404: &str = "The citizen has no profile, or has disabled the inbox.";

/// `GET /profiles/{fiscal_code}`.
#[utoipa::path(
    get,
    path = "/profiles/{fiscal_code}",
    operation_id = "getProfile",
    tag = "profiles",
    summary = "Whether a citizen can receive this service's messages",
    params(("fiscal_code" = inline(io_core::FiscalCode), Path)),
    responses(
        (status = 200, description = PROFILE_200, body = LimitedProfile),
        (status = 400, description = "The fiscal code is not valid."),
        (status = 403, description = PROFILE_403),
        (status = 404, description = PROFILE_404),
    )
)]
pub async fn profile_by_path<S: Store>(
    State(app): State<Arc<App<S>>>,
    caller: ServiceCaller,
    Path(fiscal_code): Path<String>,
) -> ApiResult<Json<LimitedProfile>> {
    let fiscal_code = parse_fiscal_code(&fiscal_code, "fiscal_code (path)")?;
    limited_profile(&app, &caller, &fiscal_code).await.map(Json)
}

/// `POST /profiles`.
#[utoipa::path(
    post,
    path = "/profiles",
    operation_id = "getProfileByPOST",
    tag = "profiles",
    summary = "Whether a citizen can receive this service's messages (fiscal code in the body)",
    request_body = FiscalCodePayload,
    responses(
        (status = 200, description = PROFILE_200, body = LimitedProfile),
        (status = 400, description = "The fiscal code is not valid."),
        (status = 403, description = PROFILE_403),
        (status = 404, description = PROFILE_404),
    )
)]
pub async fn profile_by_body<S: Store>(
    State(app): State<Arc<App<S>>>,
    caller: ServiceCaller,
    JsonBody(payload): JsonBody<FiscalCodePayload>,
) -> ApiResult<Json<LimitedProfile>> {
    let fiscal_code = parse_fiscal_code(&payload.fiscal_code, "fiscal_code")?;
    limited_profile(&app, &caller, &fiscal_code).await.map(Json)
}

async fn limited_profile<S: Store>(
    app: &App<S>,
    caller: &ServiceCaller,
    fiscal_code: &FiscalCode,
) -> ApiResult<LimitedProfile> {
    caller.require(Group::ApiLimitedProfileRead)?;
    caller.require_recipient(fiscal_code)?;
    let profile = app
        .store
        .profile(fiscal_code)
        .await?
        .filter(|p| p.is_inbox_enabled)
        .ok_or_else(|| {
            Problem::not_found("no profile with an enabled inbox for this fiscal code")
        })?;
    let service = &caller.service;
    let preference = app
        .store
        .preference(
            fiscal_code,
            &service.service_id,
            profile.service_preferences_settings.version,
        )
        .await?;
    let activation = app
        .store
        .activation(&service.service_id, fiscal_code)
        .await?;
    let sender_allowed = inbox_allowed(SenderAllowedInput {
        profile: &profile,
        preference: preference.as_ref(),
        activation: activation.as_ref(),
        service,
        now: app.clock.now(),
        activation_grace: app.config.engine.activation_grace,
    });
    Ok(LimitedProfile {
        sender_allowed,
        preferred_languages: profile.preferred_languages.clone(),
    })
}

/// IO's `SubscriptionsFeed`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SubscriptionsFeed {
    /// The day, `YYYY-MM-DD`.
    #[serde(rename = "dateUTC")]
    #[schema(format = Date)]
    pub date_utc: String,
    /// Hashed fiscal codes of citizens who subscribed that day.
    #[schema(value_type = Vec<io_core::FiscalCodeHash>)]
    pub subscriptions: Vec<String>,
    /// Hashed fiscal codes of citizens who unsubscribed that day.
    #[schema(value_type = Vec<io_core::FiscalCodeHash>)]
    pub unsubscriptions: Vec<String>,
}

/// `GET /subscriptions-feed/{date}`: the calling service's feed for one UTC day.
#[utoipa::path(
    get,
    path = "/subscriptions-feed/{date}",
    operation_id = "getSubscriptionsFeedForDate",
    tag = "profiles",
    summary = "Citizens who subscribed to or unsubscribed from the service on one UTC day",
    params(("date" = String, Path, format = Date, pattern = "^[0-9]{4}-[0-9]{2}-[0-9]{2}$", example = "2026-01-31")),
    responses(
        (status = 200, description = "The day's feed.", body = SubscriptionsFeed),
        (status = 400, description = "The date is not YYYY-MM-DD."),
        (status = 403, description = "The key lacks ApiSubscriptionsFeedRead."),
        (status = 404, description = "The day is not over yet (UTC): its feed is served from the next day on."),
    )
)]
pub async fn subscriptions_feed<S: Store>(
    State(app): State<Arc<App<S>>>,
    caller: ServiceCaller,
    Path(date): Path<String>,
) -> ApiResult<Json<SubscriptionsFeed>> {
    caller.require(Group::ApiSubscriptionsFeedRead)?;
    let day = FeedDay::parse(&date).ok_or_else(|| {
        Problem::bad_request(format!(
            "date (path): {:?} is not a YYYY-MM-DD date",
            date.chars().take(32).collect::<String>()
        ))
    })?;
    // As IO: a day's feed is served once the day is over (UTC), so that a reader never takes
    // a partial day for the whole.
    let available_from = FeedDay::from_days_since_epoch(day.days_since_epoch() + 1);
    if FeedDay::of(app.clock.now()) < available_from {
        return Err(Problem::not_found(format!(
            "the feed of {date} is served once the day is over (from 00:00 UTC the next day)"
        )));
    }
    let feed = app
        .store
        .subscriptions_feed(day, caller.service_id())
        .await?;
    let hashes = |hashes: Vec<io_core::FiscalCodeHash>| {
        hashes.into_iter().map(|h| h.as_str().to_owned()).collect()
    };
    Ok(Json(SubscriptionsFeed {
        date_utc: date,
        subscriptions: hashes(feed.subscribed),
        unsubscriptions: hashes(feed.unsubscribed),
    }))
}
