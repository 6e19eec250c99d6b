//! Remote-content configurations as IO has them (`/messages-sending/remote-contents/configurations`,
//! with the institution's manage key): where a sender keeps its messages' details and the header
//! io authenticates with there. Each base URL passes the SSRF guard of the remote-content client
//! (https, public addresses; `[remote_contents] allow_private_addresses` opens it to in-house
//! servers) before it is kept, and again at each read.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use io_core::{
    ConfigurationId, FiscalCode, HasPrecondition, RemoteAuthentication, RemoteContentConfiguration,
    RemoteEnvironment, Store, StoreError,
};
use serde::{Deserialize, Serialize};

use super::InstitutionCaller;
use crate::app::App;
use crate::body::JsonBody;
use crate::problem::{ApiResult, Problem};

/// IO's `NewRCConfigurationPublic`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = NewRCConfigurationPublic)]
pub struct ConfigurationPayload {
    #[schema(min_length = 1, max_length = 1000)]
    name: String,
    #[schema(min_length = 1, max_length = 1000)]
    description: String,
    has_precondition: HasPrecondition,
    #[schema(value_type = Vec<io_core::FiscalCode>, max_items = 1000)]
    disable_lollipop_for: Vec<String>,
    /// Must be false: io does not sign with Lollipop.
    is_lollipop_enabled: bool,
    #[serde(default)]
    prod_environment: Option<EnvironmentPayload>,
    #[serde(default)]
    test_environment: Option<TestEnvironmentPayload>,
}

/// IO's `RCConfigurationProdEnvironment`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = RCConfigurationProdEnvironment)]
struct EnvironmentPayload {
    #[schema(
        min_length = 1,
        max_length = 2048,
        example = "https://avvisi.example.it/api"
    )]
    base_url: String,
    details_authentication: AuthenticationPayload,
}

/// IO's `RCConfigurationTestEnvironment`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = RCConfigurationTestEnvironment)]
struct TestEnvironmentPayload {
    #[schema(
        min_length = 1,
        max_length = 2048,
        example = "https://avvisi.example.it/api"
    )]
    base_url: String,
    details_authentication: AuthenticationPayload,
    #[schema(value_type = Vec<io_core::FiscalCode>, max_items = 1000)]
    test_users: Vec<String>,
}

/// IO's `RCAuthenticationConfig`. `Debug` hides the key.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = RCAuthenticationConfig)]
struct AuthenticationPayload {
    #[schema(min_length = 1, max_length = 100, example = "X-Api-Key")]
    header_key_name: String,
    #[schema(min_length = 1, max_length = 4096)]
    key: String,
    #[serde(rename = "type")]
    #[schema(min_length = 1, max_length = 1000)]
    kind: String,
}

impl std::fmt::Debug for AuthenticationPayload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthenticationPayload")
            .field("header_key_name", &self.header_key_name)
            .field("key", &"…")
            .field("type", &self.kind)
            .finish()
    }
}

impl AuthenticationPayload {
    fn into_core(self) -> RemoteAuthentication {
        RemoteAuthentication {
            header_key_name: self.header_key_name,
            key: self.key,
            kind: self.kind,
        }
    }
}

fn fiscal_codes(field: &str, raw: Vec<String>) -> ApiResult<Vec<FiscalCode>> {
    raw.iter()
        .enumerate()
        .map(|(i, code)| {
            FiscalCode::parse(code).map_err(|e| Problem::bad_request(format!("{field}[{i}]: {e}")))
        })
        .collect()
}

impl ConfigurationPayload {
    /// The configuration it describes, checked (texts, header, fiscal codes, the SSRF guard on
    /// each base URL); a 400 naming the field otherwise.
    fn into_configuration<S: Store>(
        self,
        app: &App<S>,
        id: ConfigurationId,
        caller: &InstitutionCaller,
        version: u64,
    ) -> ApiResult<RemoteContentConfiguration> {
        let (test_environment, test_users) = match self.test_environment {
            Some(test) => (
                Some(RemoteEnvironment {
                    base_url: test.base_url,
                    details_authentication: test.details_authentication.into_core(),
                }),
                fiscal_codes("test_environment.test_users", test.test_users)?,
            ),
            None => (None, Vec::new()),
        };
        let configuration = RemoteContentConfiguration {
            configuration_id: id,
            organization: caller.organization.clone(),
            name: self.name,
            description: self.description,
            has_precondition: self.has_precondition,
            disable_lollipop_for: fiscal_codes("disable_lollipop_for", self.disable_lollipop_for)?,
            is_lollipop_enabled: self.is_lollipop_enabled,
            prod_environment: self.prod_environment.map(|prod| RemoteEnvironment {
                base_url: prod.base_url,
                details_authentication: prod.details_authentication.into_core(),
            }),
            test_environment,
            test_users,
            version,
        };
        configuration
            .check()
            .map_err(|e| Problem::bad_request(e.to_string()))?;
        for (field, environment) in [
            ("prod_environment", &configuration.prod_environment),
            ("test_environment", &configuration.test_environment),
        ] {
            if let Some(environment) = environment {
                app.remote_contents
                    .check_url(&environment.base_url)
                    .map_err(|e| Problem::bad_request(format!("{field}.base_url: {e}")))?;
            }
        }
        Ok(configuration)
    }
}

/// IO's `RCConfigurationResponse`: the configuration with its id and owner.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = RCConfigurationResponse)]
pub struct ConfigurationView {
    #[schema(value_type = String, example = "01ARZ3NDEKTSV4RRFFQ69G5FAV")]
    configuration_id: String,
    /// The institution's fiscal code (IO names its owner `user_id`).
    #[schema(value_type = io_core::OrganizationFiscalCode)]
    user_id: String,
    name: String,
    description: String,
    has_precondition: HasPrecondition,
    #[schema(value_type = Vec<io_core::FiscalCode>)]
    disable_lollipop_for: Vec<String>,
    is_lollipop_enabled: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    prod_environment: Option<EnvironmentView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    test_environment: Option<EnvironmentView>,
}

/// An environment as shown to its institution (the key included, as IO shows it).
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = RCConfigurationEnvironment)]
struct EnvironmentView {
    base_url: String,
    #[schema(value_type = AuthenticationPayload)]
    details_authentication: RemoteAuthentication,
    #[serde(skip_serializing_if = "Option::is_none")]
    /// The test environment's test users.
    #[schema(value_type = Option<Vec<io_core::FiscalCode>>)]
    test_users: Option<Vec<String>>,
}

fn view(configuration: &RemoteContentConfiguration) -> ConfigurationView {
    let codes = |list: &[FiscalCode]| list.iter().map(|c| c.as_str().to_owned()).collect();
    let environment =
        |environment: &RemoteEnvironment, test_users: Option<Vec<String>>| EnvironmentView {
            base_url: environment.base_url.clone(),
            details_authentication: environment.details_authentication.clone(),
            test_users,
        };
    ConfigurationView {
        configuration_id: configuration.configuration_id.as_str().to_owned(),
        user_id: configuration.organization.as_str().to_owned(),
        name: configuration.name.clone(),
        description: configuration.description.clone(),
        has_precondition: configuration.has_precondition,
        disable_lollipop_for: codes(&configuration.disable_lollipop_for),
        is_lollipop_enabled: configuration.is_lollipop_enabled,
        prod_environment: configuration
            .prod_environment
            .as_ref()
            .map(|e| environment(e, None)),
        test_environment: configuration
            .test_environment
            .as_ref()
            .map(|e| environment(e, Some(codes(&configuration.test_users)))),
    }
}

/// IO's `RCConfigurationListResponse`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = RCConfigurationListResponse)]
pub struct ConfigurationList {
    rc_config_list: Vec<ConfigurationView>,
}

/// The caller's configuration `raw`; 404 for another institution's or an unknown one.
async fn owned<S: Store>(
    app: &App<S>,
    caller: &InstitutionCaller,
    raw: &str,
) -> ApiResult<RemoteContentConfiguration> {
    let id = ConfigurationId::parse(raw).map_err(|e| Problem::bad_request(e.to_string()))?;
    app.store
        .remote_content_configuration(&id)
        .await?
        .filter(|c| c.organization == caller.organization)
        .ok_or_else(|| Problem::not_found(format!("the institution has no configuration {id}")))
}

/// Writes `configuration`; a concurrent write that got in first is a 409.
async fn put<S: Store>(app: &App<S>, configuration: &RemoteContentConfiguration) -> ApiResult<()> {
    match app
        .store
        .put_remote_content_configuration(configuration)
        .await
    {
        Err(StoreError::Conflict { .. }) => Err(Problem::conflict(
            "the configuration was changed concurrently; read it again and retry",
        )),
        result => Ok(result?),
    }
}

/// Why a configuration is refused.
const REFUSED: &str = "A field is not valid (the detail names it): a text empty or over 1000 characters, a fiscal code, a header name io sets itself or that is not an HTTP token, a key that is not visible ASCII, a base URL that is not http(s) or that the SSRF guard refuses, is_lollipop_enabled true (io does not sign with Lollipop).";
const UPDATE_REFUSED: &str = "configurationId is not a ULID, or a field is not valid (the detail names it): a text empty or over 1000 characters, a fiscal code, a header name io sets itself or that is not an HTTP token, a key that is not visible ASCII, a base URL that is not http(s) or that the SSRF guard refuses, is_lollipop_enabled true (io does not sign with Lollipop).";

/// `POST /messages-sending/remote-contents/configurations`: a new configuration (201).
#[utoipa::path(
    post, path = "/messages-sending/remote-contents/configurations", operation_id = "createRCConfiguration", tag = "remote contents",
    summary = "Register where the institution's messages' details live",
    request_body(content = ConfigurationPayload),
    responses(
        (status = 201, description = "The configuration, with the id io gave it.", body = ConfigurationView),
        (status = 400, description = REFUSED),
    )
)]
pub(super) async fn create<S: Store>(
    State(app): State<Arc<App<S>>>,
    caller: InstitutionCaller,
    JsonBody(payload): JsonBody<ConfigurationPayload>,
) -> ApiResult<Response> {
    caller.require_manage()?;
    let id = ConfigurationId::generate();
    let configuration = payload.into_configuration(&app, id.clone(), &caller, 1)?;
    put(&app, &configuration).await?;
    let mut response = (StatusCode::CREATED, Json(view(&configuration))).into_response();
    if let Ok(location) =
        format!("/api/v1/messages-sending/remote-contents/configurations/{id}").parse()
    {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

/// `GET /messages-sending/remote-contents/configurations`: the institution's, by id.
#[utoipa::path(
    get, path = "/messages-sending/remote-contents/configurations", operation_id = "listRCConfiguration", tag = "remote contents",
    summary = "The institution's remote-content configurations, by id",
    responses((status = 200, description = "Every configuration of the institution.", body = ConfigurationList))
)]
pub(super) async fn list<S: Store>(
    State(app): State<Arc<App<S>>>,
    caller: InstitutionCaller,
) -> ApiResult<Json<ConfigurationList>> {
    caller.require_manage()?;
    let all = app
        .store
        .remote_content_configurations(&caller.organization)
        .await?;
    Ok(Json(ConfigurationList {
        rc_config_list: all.iter().map(view).collect(),
    }))
}

/// `GET /messages-sending/remote-contents/configurations/{configurationId}`.
#[utoipa::path(
    get, path = "/messages-sending/remote-contents/configurations/{configurationId}", operation_id = "getRCConfiguration", tag = "remote contents",
    summary = "One remote-content configuration",
    params(("configurationId" = String, Path, description = "The configuration's id (a ULID io gives it at creation).", example = "01ARZ3NDEKTSV4RRFFQ69G5FAV")),
    responses(
        (status = 200, description = "The configuration.", body = ConfigurationView),
        (status = 400, description = "configurationId is not a ULID."),
        (status = 404, description = "The institution has no such configuration."),
    )
)]
pub(super) async fn read<S: Store>(
    State(app): State<Arc<App<S>>>,
    caller: InstitutionCaller,
    Path(configuration_id): Path<String>,
) -> ApiResult<Json<ConfigurationView>> {
    caller.require_manage()?;
    Ok(Json(view(&owned(&app, &caller, &configuration_id).await?)))
}

/// `PUT /messages-sending/remote-contents/configurations/{configurationId}`: replaces it (204).
#[utoipa::path(
    put, path = "/messages-sending/remote-contents/configurations/{configurationId}", operation_id = "updateRCConfiguration", tag = "remote contents",
    summary = "Replace a remote-content configuration",
    params(("configurationId" = String, Path, description = "The configuration's id (a ULID io gives it at creation).", example = "01ARZ3NDEKTSV4RRFFQ69G5FAV")),
    request_body(content = ConfigurationPayload),
    responses(
        (status = 204, description = "Replaced."),
        (status = 400, description = UPDATE_REFUSED),
        (status = 404, description = "The institution has no such configuration."),
        (status = 409, description = "Another change got in first (read it again and retry)."),
    )
)]
pub(super) async fn update<S: Store>(
    State(app): State<Arc<App<S>>>,
    caller: InstitutionCaller,
    Path(configuration_id): Path<String>,
    JsonBody(payload): JsonBody<ConfigurationPayload>,
) -> ApiResult<StatusCode> {
    caller.require_manage()?;
    let stored = owned(&app, &caller, &configuration_id).await?;
    let configuration =
        payload.into_configuration(&app, stored.configuration_id, &caller, stored.version + 1)?;
    put(&app, &configuration).await?;
    Ok(StatusCode::NO_CONTENT)
}
