//! IO's `CmsServicePayload`: what an institution sends to create or update a service, validated
//! into an `io_core::Service` (every refusal a 400 naming the field).

use std::collections::BTreeSet;

use io_core::{
    FiscalCode, IpNetwork, OrganizationFiscalCode, SANDBOX_FISCAL_CODE, Service, ServiceId,
    ServiceMetadata, ServiceScope, Topic,
};
use serde::Deserialize;

use crate::problem::Problem;

/// The longest name, description or metadata text, in characters.
const TEXT_MAX: usize = 1000;
/// IO's largest `max_allowed_payment_amount` (euro cents).
const PAYMENT_MAX: u64 = 9_999_999_999;
/// The most authorized recipients or CIDRs a service may list.
const LIST_MAX: usize = 1000;

/// IO's `CmsServicePayload`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CmsServicePayload {
    name: String,
    description: String,
    organization: CmsOrganization,
    #[serde(default)]
    require_secure_channel: bool,
    #[serde(default)]
    authorized_recipients: Vec<String>,
    #[serde(default)]
    authorized_cidrs: Vec<String>,
    #[serde(default)]
    max_allowed_payment_amount: u64,
    metadata: CmsPayloadMetadata,
}

/// IO's `CmsOrganization`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CmsOrganization {
    name: String,
    fiscal_code: String,
    #[serde(default)]
    department_name: Option<String>,
}

/// IO's `CmsServicePayloadMetadata`. `token_name` is accepted and not kept (IO deprecated it).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CmsPayloadMetadata {
    scope: ServiceScope,
    topic_id: f64,
    #[serde(default)]
    web_url: Option<String>,
    #[serde(default)]
    app_ios: Option<String>,
    #[serde(default)]
    app_android: Option<String>,
    #[serde(default)]
    tos_url: Option<String>,
    #[serde(default)]
    privacy_url: Option<String>,
    #[serde(default)]
    address: Option<String>,
    #[serde(default)]
    phone: Option<String>,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    pec: Option<String>,
    #[serde(default)]
    cta: Option<String>,
    #[serde(default, rename = "token_name")]
    _token_name: Option<String>,
    #[serde(default)]
    support_url: Option<String>,
}

fn invalid(field: &str, rule: impl std::fmt::Display) -> Problem {
    Problem::bad_request(format!("{field}: {rule}"))
}

/// A required text: trimmed, 1 to [`TEXT_MAX`] characters.
fn text(field: &str, value: &str) -> Result<String, Problem> {
    let trimmed = value.trim();
    if trimmed.is_empty() || trimmed.chars().count() > TEXT_MAX {
        return Err(invalid(
            field,
            format!("expected 1 to {TEXT_MAX} characters"),
        ));
    }
    Ok(trimmed.to_owned())
}

/// An optional text: absent stays absent, present must be a valid text.
fn optional(field: &str, value: Option<String>) -> Result<Option<String>, Problem> {
    value.map(|v| text(field, &v)).transpose()
}

impl CmsServicePayload {
    /// The service `id` of `organization` this payload describes. The payload's institution
    /// must be the caller's (403 otherwise). From a stored draft (`previous`), what the payload
    /// cannot say is kept: the category (an operator's SPECIAL) and the owner's email.
    pub(crate) fn into_service(
        self,
        id: ServiceId,
        organization: &OrganizationFiscalCode,
        previous: Option<&Service>,
    ) -> Result<Service, Problem> {
        let fiscal_code = OrganizationFiscalCode::parse(&self.organization.fiscal_code)
            .map_err(|e| invalid("organization.fiscal_code", e))?;
        if &fiscal_code != organization {
            return Err(Problem::forbidden(format!(
                "organization.fiscal_code: the key manages the services of {}, not of {}",
                organization.as_str(),
                fiscal_code.as_str()
            )));
        }
        if self.authorized_recipients.len() > LIST_MAX {
            return Err(invalid(
                "authorized_recipients",
                format!("at most {LIST_MAX}"),
            ));
        }
        if self.authorized_cidrs.len() > LIST_MAX {
            return Err(invalid("authorized_cidrs", format!("at most {LIST_MAX}")));
        }
        let mut authorized_recipients = BTreeSet::new();
        for (i, raw) in self.authorized_recipients.iter().enumerate() {
            authorized_recipients.insert(
                FiscalCode::parse(raw)
                    .map_err(|e| invalid(&format!("authorized_recipients[{i}]"), e))?,
            );
        }
        authorized_recipients
            .insert(FiscalCode::parse(SANDBOX_FISCAL_CODE).expect("the sandbox code parses"));
        let mut authorized_cidrs = Vec::with_capacity(self.authorized_cidrs.len());
        for (i, raw) in self.authorized_cidrs.iter().enumerate() {
            authorized_cidrs.push(
                raw.parse::<IpNetwork>()
                    .map_err(|e| invalid(&format!("authorized_cidrs[{i}]"), e))?,
            );
        }
        if self.max_allowed_payment_amount > PAYMENT_MAX {
            return Err(invalid(
                "max_allowed_payment_amount",
                format!("at most {PAYMENT_MAX} (euro cents)"),
            ));
        }
        let topic = self.metadata.topic_id;
        let topic_id = (topic.fract() == 0.0 && (0.0..=f64::from(u32::MAX)).contains(&topic))
            .then_some(topic as u32)
            .and_then(Topic::by_id)
            .ok_or_else(|| {
                invalid(
                    "metadata.topic_id",
                    "not a topic id (GET /manage/services/topics lists them)",
                )
            })?
            .id;
        let metadata = self.metadata;
        let service_metadata = ServiceMetadata {
            scope: metadata.scope,
            category: previous
                .map(|p| p.service_metadata.category)
                .unwrap_or_default(),
            description: Some(text("description", &self.description)?),
            web_url: optional("metadata.web_url", metadata.web_url)?,
            privacy_url: optional("metadata.privacy_url", metadata.privacy_url)?,
            tos_url: optional("metadata.tos_url", metadata.tos_url)?,
            support_url: optional("metadata.support_url", metadata.support_url)?,
            email: optional("metadata.email", metadata.email)?,
            pec: optional("metadata.pec", metadata.pec)?,
            phone: optional("metadata.phone", metadata.phone)?,
            address: optional("metadata.address", metadata.address)?,
            cta: optional("metadata.cta", metadata.cta)?,
            app_ios: optional("metadata.app_ios", metadata.app_ios)?,
            app_android: optional("metadata.app_android", metadata.app_android)?,
            topic_id: Some(topic_id),
        };
        let organization_name = text("organization.name", &self.organization.name)?;
        Ok(Service {
            service_id: id,
            service_name: text("name", &self.name)?,
            department_name: optional(
                "organization.department_name",
                self.organization.department_name,
            )?
            .unwrap_or_default(),
            organization_name,
            organization_fiscal_code: fiscal_code,
            authorized_cidrs,
            authorized_recipients,
            is_visible: false,
            max_allowed_payment_amount: self.max_allowed_payment_amount,
            require_secure_channels: self.require_secure_channel,
            service_metadata,
            owner_email: previous.and_then(|p| p.owner_email.clone()),
            version: 0,
            sandboxed: true,
        })
    }
}
