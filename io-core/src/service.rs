//! Services: what an institution offers and what sends messages (io-reference §5).

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::{EmailAddress, FiscalCode, IpNetwork, OrganizationFiscalCode, ServiceId};

/// A service as the engine needs it. API keys and permission groups belong to the server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Service {
    /// Its id.
    pub service_id: ServiceId,
    /// Shown to citizens.
    pub service_name: String,
    /// The office inside the institution.
    pub department_name: String,
    /// The institution: the title of a FULL push notification.
    pub organization_name: String,
    /// The institution's fiscal code: the default payee of payment notices.
    pub organization_fiscal_code: OrganizationFiscalCode,
    /// Networks (IPv4 or IPv6) allowed to call the API with this service's keys; empty means
    /// any.
    pub authorized_cidrs: Vec<IpNetwork>,
    /// The only recipients a *limited* key may write to (sandbox).
    pub authorized_recipients: BTreeSet<FiscalCode>,
    /// Whether the service is listed to citizens.
    pub is_visible: bool,
    /// Largest payment a message may request, in euro cents; 0 forbids payment data.
    pub max_allowed_payment_amount: u64,
    /// Secure services send no email and only anonymous push, unless a message says otherwise.
    pub require_secure_channels: bool,
    /// Scope, category and contact data.
    pub service_metadata: ServiceMetadata,
    /// Where messages to the sandbox fiscal code are emailed: the address the service's owner
    /// registered (IO: the developer-portal account).
    pub owner_email: Option<EmailAddress>,
    /// Optimistic-concurrency version: 1 on creation, +1 on each update.
    pub version: u64,
    /// Whether its keys write only to `authorized_recipients`, as a limited key does: a
    /// service its institution manages is sandboxed until it is published (see
    /// [`crate::ServiceLifecycle`]). Services an operator creates are not.
    #[serde(default)]
    pub sandboxed: bool,
}

/// Descriptive data of a service; `category` drives the SPECIAL-service rule of the decision.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceMetadata {
    /// National or local.
    pub scope: ServiceScope,
    /// STANDARD or SPECIAL (special services need an activation per citizen).
    pub category: ServiceCategory,
    /// What the service does.
    pub description: Option<String>,
    /// Web site.
    pub web_url: Option<String>,
    /// Privacy notice.
    pub privacy_url: Option<String>,
    /// Terms of service.
    pub tos_url: Option<String>,
    /// Support page.
    pub support_url: Option<String>,
    /// Contact email.
    pub email: Option<String>,
    /// Contact PEC address.
    pub pec: Option<String>,
    /// Contact phone.
    pub phone: Option<String>,
    /// Postal address.
    pub address: Option<String>,
    /// Call-to-action front matter.
    pub cta: Option<String>,
    /// The service's iOS app.
    pub app_ios: Option<String>,
    /// The service's Android app.
    pub app_android: Option<String>,
    /// The topic citizens find it under (see [`crate::TOPICS`]).
    #[serde(default)]
    pub topic_id: Option<u32>,
}

/// Whether a service is national or local (IO's `scope`).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ServiceScope {
    /// Offered nationwide.
    #[default]
    National,
    /// Offered by a local body.
    Local,
}

/// IO's service category.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ServiceCategory {
    /// Messages reach every citizen whose preferences allow them.
    #[default]
    Standard,
    /// Messages reach only citizens with an activation for the service.
    Special,
}
