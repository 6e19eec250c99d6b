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

/// IO's `CmsServicePayload`: a service as its institution writes it.
// The schema's limits are TEXT_MAX, LIST_MAX and PAYMENT_MAX (`schema_limits_are_the_constants`).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CmsServicePayload {
    #[schema(min_length = 1, max_length = 1000)]
    name: String,
    #[schema(min_length = 1, max_length = 1000)]
    description: String,
    organization: CmsOrganization,
    #[serde(default)]
    #[schema(default = false)]
    require_secure_channel: bool,
    #[serde(default)]
    #[schema(value_type = Vec<io_core::FiscalCode>, max_items = 1000)]
    authorized_recipients: Vec<String>,
    #[serde(default)]
    #[schema(max_items = 1000, example = json!(["192.168.0.0/24"]))]
    authorized_cidrs: Vec<String>,
    #[serde(default)]
    #[schema(maximum = 9999999999_u64, default = 0)]
    max_allowed_payment_amount: u64,
    metadata: CmsPayloadMetadata,
}

/// IO's `CmsOrganization`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct CmsOrganization {
    #[schema(min_length = 1, max_length = 1000)]
    name: String,
    #[schema(value_type = io_core::OrganizationFiscalCode)]
    fiscal_code: String,
    #[serde(default)]
    #[schema(min_length = 1, max_length = 1000)]
    department_name: Option<String>,
}

/// IO's `CmsServicePayloadMetadata`. `token_name` is accepted and not kept (IO deprecated it).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(as = CmsServicePayloadMetadata)]
#[serde(deny_unknown_fields)]
struct CmsPayloadMetadata {
    scope: ServiceScope,
    /// One of the topics of `GET /manage/services/topics` (a whole number).
    #[schema(value_type = u32, minimum = 0, maximum = 15, example = 3)]
    topic_id: f64,
    #[serde(default)]
    #[schema(min_length = 1, max_length = 1000)]
    web_url: Option<String>,
    #[serde(default)]
    #[schema(min_length = 1, max_length = 1000)]
    app_ios: Option<String>,
    #[serde(default)]
    #[schema(min_length = 1, max_length = 1000)]
    app_android: Option<String>,
    #[serde(default)]
    #[schema(min_length = 1, max_length = 1000)]
    tos_url: Option<String>,
    #[serde(default)]
    #[schema(min_length = 1, max_length = 1000)]
    privacy_url: Option<String>,
    #[serde(default)]
    #[schema(min_length = 1, max_length = 1000)]
    address: Option<String>,
    #[serde(default)]
    #[schema(min_length = 1, max_length = 1000)]
    phone: Option<String>,
    #[serde(default)]
    #[schema(min_length = 1, max_length = 1000)]
    email: Option<String>,
    #[serde(default)]
    #[schema(min_length = 1, max_length = 1000)]
    pec: Option<String>,
    #[serde(default)]
    #[schema(min_length = 1, max_length = 1000)]
    cta: Option<String>,
    /// Accepted and not kept (IO deprecated it).
    #[serde(default, rename = "token_name")]
    #[schema(min_length = 1, max_length = 1000)]
    _token_name: Option<String>,
    #[serde(default)]
    #[schema(min_length = 1, max_length = 1000)]
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

#[cfg(test)]
mod schema_tests {
    use super::*;
    use utoipa::PartialSchema;

    fn schema_of<T: PartialSchema>() -> serde_json::Value {
        serde_json::to_value(T::schema()).unwrap()
    }

    #[test]
    fn schema_limits_are_the_constants() {
        let payload = schema_of::<CmsServicePayload>();
        let properties = &payload["properties"];
        assert_eq!(properties["name"]["maxLength"], TEXT_MAX);
        assert_eq!(properties["authorized_recipients"]["maxItems"], LIST_MAX);
        assert_eq!(properties["authorized_cidrs"]["maxItems"], LIST_MAX);
        assert_eq!(
            properties["max_allowed_payment_amount"]["maximum"],
            PAYMENT_MAX
        );
        let metadata = schema_of::<CmsPayloadMetadata>();
        assert_eq!(metadata["properties"]["web_url"]["maxLength"], TEXT_MAX);
        assert_eq!(
            metadata["properties"]["topic_id"]["maximum"],
            io_core::TOPICS.len() - 1
        );
        assert_eq!(payload["additionalProperties"], false);
    }
}
