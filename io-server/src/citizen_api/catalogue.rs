//! The service catalogue the app shows in its services tab: the institutions with services
//! citizens can see, searchable by name and by topic and paged, each institution's services, a
//! service's details (scope, topic, contacts, privacy and terms), the topics, and the logos
//! institutions uploaded. Only visible services (`is_visible`) are listed or shown; an
//! invisible one is "not found".

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use io_core::{
    Logo, LogoOwner, OrganizationFiscalCode, Service, ServiceCategory, ServiceId, ServiceScope,
    Store, TOPICS, Topic,
};
use serde::{Deserialize, Serialize};

use crate::app::App;
use crate::problem::{ApiResult, Problem};
use crate::query_number::number;

/// Page size bounds and default.
pub const LIMIT: (usize, usize, usize) = (1, 100, 20);
/// The longest search text, in characters.
pub const SEARCH_MAX: usize = 100;

/// The largest `offset` of a page.
pub const OFFSET_MAX: usize = 1_000_000;

/// `GET /institutions` query. Numbers are read by hand (`query_number`), so that a bad one is
/// a 400 naming it; the types here are what the document says.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct InstitutionsQuery {
    /// Part of the institution's name or of one of its services' names or descriptions (case
    /// ignored).
    #[param(max_length = 100)]
    search: Option<String>,
    /// Keeps the institutions with a service of this scope.
    #[param(value_type = Option<ServiceScope>)]
    scope: Option<String>,
    /// A topic id (listTopics): keeps the institutions with a service of that topic.
    #[param(value_type = Option<u32>, minimum = 0, maximum = 15)]
    topic: Option<String>,
    #[param(value_type = Option<u32>, minimum = 0, maximum = 1000000, default = 0)]
    offset: Option<String>,
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100, default = 20)]
    limit: Option<String>,
}

/// `GET /institutions/{fiscal_code}/services` query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    /// A topic id (listTopics): keeps the services of that topic.
    #[param(value_type = Option<u32>, minimum = 0, maximum = 15)]
    topic: Option<String>,
    #[param(value_type = Option<u32>, minimum = 0, maximum = 1000000, default = 0)]
    offset: Option<String>,
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100, default = 20)]
    limit: Option<String>,
}

/// A page of `T`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Page<T> {
    items: Vec<T>,
    /// Every item matching, over all pages.
    count: usize,
    offset: usize,
    limit: usize,
}

/// An institution of the catalogue.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = Institution)]
pub struct InstitutionItem {
    #[schema(value_type = OrganizationFiscalCode)]
    fiscal_code: String,
    name: String,
    /// How many of its services are visible.
    services: usize,
}

/// A service in an institution's list.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = ServiceSummary)]
pub struct ServiceItem {
    #[schema(value_type = ServiceId)]
    service_id: String,
    service_name: String,
    department_name: String,
    scope: ServiceScope,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    topic: Option<TopicView>,
}

/// A topic as the catalogue shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = Topic)]
pub struct TopicView {
    /// 0 to the last of `GET /topics`.
    #[schema(minimum = 0, maximum = 15)]
    id: u32,
    #[schema(example = "Benessere sociale")]
    name: &'static str,
}

impl From<&Topic> for TopicView {
    fn from(topic: &Topic) -> Self {
        Self {
            id: topic.id,
            name: topic.name,
        }
    }
}

/// The topics (`GET /topics`).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TopicList {
    topics: Vec<TopicView>,
}

/// A service's details.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ServiceDetails {
    #[schema(value_type = ServiceId)]
    service_id: String,
    service_name: String,
    department_name: String,
    organization: Organization,
    scope: ServiceScope,
    category: ServiceCategory,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    topic: Option<TopicView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    description: Option<String>,
    contacts: Contacts,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    privacy_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    tos_url: Option<String>,
    version: u64,
}

/// The institution behind a service.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Organization {
    name: String,
    #[schema(value_type = OrganizationFiscalCode)]
    fiscal_code: String,
}

/// How a citizen reaches a service's office.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Contacts {
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    web_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    support_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pec: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    phone: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    address: Option<String>,
}

fn paging(offset: Option<&str>, limit: Option<&str>) -> ApiResult<(usize, usize)> {
    let offset = number(offset, "offset", (0, OFFSET_MAX), 0)?;
    let limit = number(limit, "limit", (LIMIT.0, LIMIT.1), LIMIT.2)?;
    Ok((offset, limit))
}

fn page<T>(all: Vec<T>, offset: usize, limit: usize) -> Page<T> {
    let count = all.len();
    let items = all.into_iter().skip(offset).take(limit).collect();
    Page {
        items,
        count,
        offset,
        limit,
    }
}

/// The visible services, each with its institution's fiscal code.
async fn visible<S: Store>(app: &App<S>) -> ApiResult<Vec<Service>> {
    let mut services = app.store.services().await?;
    services.retain(|service| service.is_visible);
    Ok(services)
}

/// A service's topic, when it names one io knows.
fn topic_of(service: &Service) -> Option<TopicView> {
    service
        .service_metadata
        .topic_id
        .and_then(Topic::by_id)
        .map(|topic| TopicView::from(&topic))
}

/// The `topic` query parameter: a topic id of [`TOPICS`].
fn parse_topic(raw: Option<&str>) -> ApiResult<Option<u32>> {
    let Some(raw) = raw else { return Ok(None) };
    raw.trim()
        .parse::<u32>()
        .ok()
        .and_then(Topic::by_id)
        .map(|topic| Some(topic.id))
        .ok_or_else(|| {
            Problem::bad_request(format!(
                "topic: expected a topic id from 0 to {} (GET /topics lists them)",
                TOPICS.len() - 1
            ))
        })
}

/// Lower-cased, for a search that ignores case.
fn folded(text: &str) -> String {
    text.to_lowercase()
}

/// `GET /institutions`: the institutions with visible services, by name; `search` matches the
/// institution's name or one of its services' names or descriptions (case ignored); `scope`
/// and `topic` keep the institutions with a service of that scope and of that topic.
#[utoipa::path(
    get, path = "/institutions", operation_id = "listInstitutions", tag = "catalogue",
    summary = "The institutions with services citizens can see, by name",
    params(InstitutionsQuery),
    responses(
        (status = 200, description = "One page.", body = Page<InstitutionItem>),
        (status = 400, description = "A query parameter is not valid."),
    )
)]
pub async fn list_institutions<S: Store>(
    State(app): State<Arc<App<S>>>,
    query: Result<Query<InstitutionsQuery>, QueryRejection>,
) -> ApiResult<Json<Page<InstitutionItem>>> {
    let Query(query) = query.map_err(|e| Problem::bad_request(e.body_text()))?;
    let (offset, limit) = paging(query.offset.as_deref(), query.limit.as_deref())?;
    let search = match query.search.as_deref().map(str::trim) {
        Some(text) if text.chars().count() > SEARCH_MAX => {
            return Err(Problem::bad_request(format!(
                "search: at most {SEARCH_MAX} characters"
            )));
        }
        Some("") | None => None,
        Some(text) => Some(folded(text)),
    };
    let scope = match query.scope.as_deref() {
        None => None,
        Some("NATIONAL") => Some(ServiceScope::National),
        Some("LOCAL") => Some(ServiceScope::Local),
        Some(_) => return Err(Problem::bad_request("scope: expected NATIONAL or LOCAL")),
    };
    let topic = parse_topic(query.topic.as_deref())?;
    let mut institutions: BTreeMap<String, (String, Vec<Service>)> = BTreeMap::new();
    for service in visible(&app).await? {
        institutions
            .entry(service.organization_fiscal_code.as_str().to_owned())
            .or_insert_with(|| (service.organization_name.clone(), Vec::new()))
            .1
            .push(service);
    }
    let mut items: Vec<InstitutionItem> = institutions
        .into_iter()
        .filter(|(_, (name, services))| {
            let in_scope = services.iter().any(|s| {
                scope.is_none_or(|scope| s.service_metadata.scope == scope)
                    && topic.is_none_or(|topic| s.service_metadata.topic_id == Some(topic))
            });
            let found = search.as_ref().is_none_or(|text| {
                folded(name).contains(text)
                    || services.iter().any(|s| {
                        folded(&s.service_name).contains(text)
                            || s.service_metadata
                                .description
                                .as_deref()
                                .is_some_and(|d| folded(d).contains(text))
                    })
            });
            in_scope && found
        })
        .map(|(fiscal_code, (name, services))| InstitutionItem {
            fiscal_code,
            name,
            services: services.len(),
        })
        .collect();
    items.sort_by(|a, b| {
        folded(&a.name)
            .cmp(&folded(&b.name))
            .then_with(|| a.fiscal_code.cmp(&b.fiscal_code))
    });
    Ok(Json(page(items, offset, limit)))
}

/// `GET /institutions/{fiscal_code}/services`: an institution's visible services, by name;
/// `topic` keeps those of that topic.
#[utoipa::path(
    get, path = "/institutions/{fiscal_code}/services", operation_id = "listInstitutionServices",
    tag = "catalogue", summary = "An institution's services citizens can see, by name",
    params(("fiscal_code" = inline(io_core::OrganizationFiscalCode), Path), PageQuery),
    responses(
        (status = 200, description = "One page.", body = Page<ServiceItem>),
        (status = 400, description = "The fiscal code or a query parameter is not valid."),
        (status = 404, description = "No institution with visible services has this fiscal code."),
    )
)]
pub async fn list_services<S: Store>(
    State(app): State<Arc<App<S>>>,
    Path(fiscal_code): Path<String>,
    query: Result<Query<PageQuery>, QueryRejection>,
) -> ApiResult<Json<Page<ServiceItem>>> {
    let Query(query) = query.map_err(|e| Problem::bad_request(e.body_text()))?;
    let (offset, limit) = paging(query.offset.as_deref(), query.limit.as_deref())?;
    let topic = parse_topic(query.topic.as_deref())?;
    let fiscal_code = OrganizationFiscalCode::parse(&fiscal_code)
        .map_err(|e| Problem::bad_request(format!("fiscal_code (path): {e}")))?;
    let mut services: Vec<Service> = visible(&app)
        .await?
        .into_iter()
        .filter(|s| s.organization_fiscal_code == fiscal_code)
        .collect();
    if services.is_empty() {
        return Err(Problem::not_found(
            "no institution with visible services has this fiscal code",
        ));
    }
    services.retain(|s| topic.is_none_or(|topic| s.service_metadata.topic_id == Some(topic)));
    services.sort_by(|a, b| {
        folded(&a.service_name)
            .cmp(&folded(&b.service_name))
            .then_with(|| a.service_id.cmp(&b.service_id))
    });
    let items = services
        .into_iter()
        .map(|s| ServiceItem {
            topic: topic_of(&s),
            service_id: s.service_id.as_str().to_owned(),
            service_name: s.service_name,
            department_name: s.department_name,
            scope: s.service_metadata.scope,
        })
        .collect();
    Ok(Json(page(items, offset, limit)))
}

/// `GET /services/{service_id}`: a visible service's details.
#[utoipa::path(
    get, path = "/services/{service_id}", operation_id = "getService", tag = "catalogue",
    summary = "A service's details: scope, contacts, privacy and terms",
    params(("service_id" = inline(io_core::ServiceId), Path)),
    responses(
        (status = 200, description = "The service.", body = ServiceDetails),
        (status = 400, description = "The service id is not valid."),
        (status = 404, description = "No visible service has this id."),
    )
)]
pub async fn get_service<S: Store>(
    State(app): State<Arc<App<S>>>,
    Path(service_id): Path<String>,
) -> ApiResult<Json<ServiceDetails>> {
    let id = ServiceId::parse(&service_id)
        .map_err(|e| Problem::bad_request(format!("service_id (path): {e}")))?;
    let service = app
        .store
        .service(&id)
        .await?
        .filter(|s| s.is_visible)
        .ok_or_else(|| Problem::not_found("no visible service with this id"))?;
    let topic = topic_of(&service);
    let metadata = service.service_metadata;
    Ok(Json(ServiceDetails {
        topic,
        service_id: service.service_id.as_str().to_owned(),
        service_name: service.service_name,
        department_name: service.department_name,
        organization: Organization {
            name: service.organization_name,
            fiscal_code: service.organization_fiscal_code.as_str().to_owned(),
        },
        scope: metadata.scope,
        category: metadata.category,
        description: metadata.description,
        contacts: Contacts {
            web_url: metadata.web_url,
            support_url: metadata.support_url,
            email: metadata.email,
            pec: metadata.pec,
            phone: metadata.phone,
            address: metadata.address,
        },
        privacy_url: metadata.privacy_url,
        tos_url: metadata.tos_url,
        version: service.version,
    }))
}

/// `GET /topics`: the topics services are filed under, by id.
#[utoipa::path(
    get, path = "/topics", operation_id = "listTopics", tag = "catalogue",
    summary = "The topics services are filed under (the catalogue's topic filter)",
    responses((status = 200, description = "Every topic, by id.", body = TopicList))
)]
pub async fn list_topics() -> Json<TopicList> {
    Json(TopicList {
        topics: TOPICS.iter().map(TopicView::from).collect(),
    })
}

/// `GET /services/{service_id}/logo`: a visible service's logo, or its institution's when the
/// service has none (404 when neither has one).
#[utoipa::path(
    get, path = "/services/{service_id}/logo", operation_id = "getServiceLogo", tag = "catalogue",
    summary = "A visible service's logo, or its institution's when it has none",
    params(("service_id" = inline(io_core::ServiceId), Path)),
    responses(
        (status = 200, description = "The PNG image.", content_type = "image/png", body = inline(Png)),
        (status = 400, description = "The service id is not valid."),
        (status = 404, description = "No visible service has this id, or neither it nor its institution has a logo."),
    )
)]
pub async fn service_logo<S: Store>(
    State(app): State<Arc<App<S>>>,
    Path(service_id): Path<String>,
) -> ApiResult<Response> {
    let id = ServiceId::parse(&service_id)
        .map_err(|e| Problem::bad_request(format!("service_id (path): {e}")))?;
    let service = app
        .store
        .service(&id)
        .await?
        .filter(|s| s.is_visible)
        .ok_or_else(|| Problem::not_found("no visible service with this id"))?;
    let logo = match app.store.logo(&LogoOwner::Service(id)).await? {
        Some(logo) => Some(logo),
        None => {
            app.store
                .logo(&LogoOwner::Organization(service.organization_fiscal_code))
                .await?
        }
    };
    logo.map(png_response)
        .ok_or_else(|| Problem::not_found("neither the service nor its institution has a logo"))
}

/// `GET /institutions/{fiscal_code}/logo`: the logo of an institution with visible services.
#[utoipa::path(
    get, path = "/institutions/{fiscal_code}/logo", operation_id = "getInstitutionLogo",
    tag = "catalogue", summary = "The logo an institution with visible services uploaded",
    params(("fiscal_code" = inline(io_core::OrganizationFiscalCode), Path)),
    responses(
        (status = 200, description = "The PNG image.", content_type = "image/png", body = inline(Png)),
        (status = 400, description = "The fiscal code is not valid."),
        (status = 404, description = "No institution with visible services has this fiscal code, or it has no logo."),
    )
)]
pub async fn institution_logo<S: Store>(
    State(app): State<Arc<App<S>>>,
    Path(fiscal_code): Path<String>,
) -> ApiResult<Response> {
    let fiscal_code = OrganizationFiscalCode::parse(&fiscal_code)
        .map_err(|e| Problem::bad_request(format!("fiscal_code (path): {e}")))?;
    let listed = visible(&app)
        .await?
        .iter()
        .any(|s| s.organization_fiscal_code == fiscal_code);
    if !listed {
        return Err(Problem::not_found(
            "no institution with visible services has this fiscal code",
        ));
    }
    app.store
        .logo(&LogoOwner::Organization(fiscal_code))
        .await?
        .map(png_response)
        .ok_or_else(|| Problem::not_found("the institution has no logo"))
}

/// A PNG image, as the logos are answered (its schema: a binary string).
pub struct Png;

impl utoipa::PartialSchema for Png {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::schema::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .content_media_type("image/png")
            .build()
            .into()
    }
}

impl utoipa::ToSchema for Png {}

/// A logo as an image answer the app may cache for an hour.
fn png_response(logo: Logo) -> Response {
    (
        [
            (header::CONTENT_TYPE, "image/png"),
            (header::CACHE_CONTROL, "private, max-age=3600"),
        ],
        logo.png().to_vec(),
    )
        .into_response()
}
