//! IO's views of a managed service: `CmsServiceLifecycle`, `CmsServicePublication`,
//! `CmsServiceHistory`, `CmsServicePagination`, `CmsServiceTopicList`.

use io_core::{
    HistoryKind, Publication, Service, ServiceHistoryItem, ServiceId, ServiceLifecycle,
    ServiceScope, Topic,
};
use serde::Serialize;

/// IO's `CmsOrganization`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = CmsOrganization)]
pub struct OrganizationView {
    name: String,
    #[schema(value_type = io_core::OrganizationFiscalCode)]
    fiscal_code: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    department_name: Option<String>,
}

/// IO's `CmsServiceTopic`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = CmsServiceTopic)]
pub struct TopicView {
    id: u32,
    name: &'static str,
}

/// IO's `CmsServiceMetadata`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = CmsServiceMetadata)]
pub struct MetadataView {
    scope: ServiceScope,
    #[serde(skip_serializing_if = "Option::is_none")]
    topic: Option<TopicView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    web_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    app_ios: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    app_android: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tos_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    privacy_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    address: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    phone: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pec: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cta: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    support_url: Option<String>,
}

/// IO's `CmsServiceData` with the metadata.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ServiceDataView {
    name: String,
    description: String,
    organization: OrganizationView,
    require_secure_channel: bool,
    #[schema(value_type = Vec<io_core::FiscalCode>)]
    authorized_recipients: Vec<String>,
    authorized_cidrs: Vec<String>,
    max_allowed_payment_amount: u64,
    metadata: MetadataView,
}

/// IO's `CmsServiceLifecycleStatus`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = CmsServiceLifecycleStatus)]
pub struct StatusView {
    #[schema(value_type = io_core::LifecycleStatus)]
    value: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    /// Why the platform rejected it.
    reason: Option<String>,
}

/// IO's `CmsServiceLifecycle`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = CmsServiceLifecycle)]
pub struct LifecycleView {
    /// The service's id (a ULID io gives it at creation).
    id: String,
    status: StatusView,
    #[schema(format = DateTime)]
    last_update: String,
    #[serde(flatten)]
    data: ServiceDataView,
}

/// IO's `CmsServicePublication`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = CmsServicePublication)]
pub struct PublicationView {
    /// The service's id (a ULID io gives it at creation).
    id: String,
    #[schema(value_type = io_core::PublicationStatus)]
    status: &'static str,
    #[schema(format = DateTime)]
    last_update: String,
    #[serde(flatten)]
    data: ServiceDataView,
}

/// IO's `CmsServiceHistoryItemStatus`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = CmsServiceHistoryItemStatus)]
pub struct HistoryStatusView {
    kind: HistoryKind,
    /// A lifecycle status (`kind` lifecycle) or a publication status (`kind` publication).
    #[schema(schema_with = history_value)]
    value: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

/// IO's `CmsServiceHistoryItem`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = CmsServiceHistoryItem)]
pub struct HistoryItemView {
    /// The service's id (a ULID io gives it at creation).
    id: String,
    status: HistoryStatusView,
    #[schema(format = DateTime)]
    last_update: String,
    #[serde(flatten)]
    data: ServiceDataView,
}

/// IO's `CmsServiceHistory`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = CmsServiceHistory)]
pub struct HistoryPage {
    items: Vec<HistoryItemView>,
    #[serde(rename = "continuationToken", skip_serializing_if = "Option::is_none")]
    /// Absent on the last page.
    continuation_token: Option<String>,
}

/// IO's `CmsPaginationResultSet`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = CmsPaginationResultSet)]
pub struct PaginationView {
    offset: usize,
    #[schema(minimum = 1)]
    limit: usize,
    count: usize,
}

/// IO's `CmsServicePagination`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = CmsServicePagination)]
pub struct ServicePage {
    value: Vec<LifecycleView>,
    pagination: PaginationView,
}

/// IO's `CmsServiceTopicList`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = CmsServiceTopicList)]
pub struct TopicList {
    topics: Vec<TopicView>,
}

/// The values a history item's `value` takes: every lifecycle and publication status.
fn history_value() -> utoipa::openapi::schema::Object {
    use io_core::{LifecycleStatus as L, PublicationStatus as P};
    let values = [L::Draft, L::Submitted, L::Approved, L::Rejected, L::Deleted]
        .map(L::as_str)
        .into_iter()
        .chain([P::Published, P::Unpublished].map(P::as_str));
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .enum_values(Some(values))
        .build()
}

fn data(service: &Service) -> ServiceDataView {
    let m = &service.service_metadata;
    ServiceDataView {
        name: service.service_name.clone(),
        description: m.description.clone().unwrap_or_default(),
        organization: OrganizationView {
            name: service.organization_name.clone(),
            fiscal_code: service.organization_fiscal_code.as_str().to_owned(),
            department_name: Some(service.department_name.clone()).filter(|d| !d.is_empty()),
        },
        require_secure_channel: service.require_secure_channels,
        authorized_recipients: service
            .authorized_recipients
            .iter()
            .map(|f| f.as_str().to_owned())
            .collect(),
        authorized_cidrs: service
            .authorized_cidrs
            .iter()
            .map(ToString::to_string)
            .collect(),
        max_allowed_payment_amount: service.max_allowed_payment_amount,
        metadata: MetadataView {
            scope: m.scope,
            topic: m.topic_id.and_then(Topic::by_id).map(topic),
            web_url: m.web_url.clone(),
            app_ios: m.app_ios.clone(),
            app_android: m.app_android.clone(),
            tos_url: m.tos_url.clone(),
            privacy_url: m.privacy_url.clone(),
            address: m.address.clone(),
            phone: m.phone.clone(),
            email: m.email.clone(),
            pec: m.pec.clone(),
            cta: m.cta.clone(),
            support_url: m.support_url.clone(),
        },
    }
}

fn topic(topic: Topic) -> TopicView {
    TopicView {
        id: topic.id,
        name: topic.name,
    }
}

/// A lifecycle as IO shows it.
pub fn lifecycle(lifecycle: &ServiceLifecycle) -> LifecycleView {
    LifecycleView {
        id: lifecycle.service.service_id.as_str().to_owned(),
        status: StatusView {
            value: lifecycle.status.as_str(),
            reason: lifecycle.reason.clone(),
        },
        last_update: lifecycle.last_update.to_rfc3339(),
        data: data(&lifecycle.service),
    }
}

/// A publication as IO shows it.
pub fn publication(publication: &Publication) -> PublicationView {
    PublicationView {
        id: publication.service.service_id.as_str().to_owned(),
        status: publication.status.as_str(),
        last_update: publication.last_update.to_rfc3339(),
        data: data(&publication.service),
    }
}

/// A page of history items, with the token of the next page.
pub fn history<'a>(
    id: &ServiceId,
    items: impl Iterator<Item = &'a ServiceHistoryItem>,
    next: Option<String>,
) -> HistoryPage {
    HistoryPage {
        items: items
            .map(|item| HistoryItemView {
                id: id.as_str().to_owned(),
                status: HistoryStatusView {
                    kind: item.kind,
                    value: item.status.clone(),
                    reason: item.reason.clone(),
                },
                last_update: item.at.to_rfc3339(),
                data: data(&item.service),
            })
            .collect(),
        continuation_token: next,
    }
}

/// A page of lifecycles.
pub fn page(all: &[ServiceLifecycle], offset: usize, limit: usize) -> ServicePage {
    ServicePage {
        value: all.iter().skip(offset).take(limit).map(lifecycle).collect(),
        pagination: PaginationView {
            offset,
            limit,
            count: all.len(),
        },
    }
}

/// Every topic.
pub fn topics(all: &[Topic]) -> TopicList {
    TopicList {
        topics: all.iter().copied().map(topic).collect(),
    }
}
