//! The JSON shapes of IO's APIs, built from the engine's types: stored records never leak their
//! internal layout, and a field IO names differently is renamed here, in one place.

use io_core::{
    Delivery, DeliveryState, FailureReason, HasPrecondition, Message, MessageContent,
    MessageStatus, PaymentData, PrescriptionData, ThirdPartyData,
};
use serde::Serialize;

/// IO's `MessageContent`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = MessageContent)]
pub struct ContentView {
    /// Subject.
    #[schema(schema_with = io_core::openapi::subject)]
    pub subject: String,
    /// Markdown body.
    #[schema(schema_with = io_core::openapi::markdown)]
    pub markdown: String,
    /// RFC 3339.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = io_core::openapi::timestamp)]
    pub due_date: Option<String>,
    /// Payment notice.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payment_data: Option<PaymentView>,
    /// Prescription.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prescription_data: Option<PrescriptionView>,
    /// The message's own secure-channels flag, when it set one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub require_secure_channels: Option<bool>,
    /// Details on the sender's server.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub third_party_data: Option<ThirdPartyView>,
}

/// IO's `ThirdPartyData`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = ThirdPartyData)]
pub struct ThirdPartyView {
    /// The sender's id of the message.
    #[schema(schema_with = io_core::openapi::third_party_text)]
    pub id: String,
    /// Who originally sent it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub original_sender: Option<String>,
    /// RFC 3339.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = io_core::openapi::timestamp)]
    pub original_receipt_date: Option<String>,
    /// Attachments on the sender's server.
    pub has_attachments: bool,
    /// Details on the sender's server.
    pub has_remote_content: bool,
    /// A precondition before the details.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub has_precondition: Option<HasPrecondition>,
    /// Shown before the details are read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// Where the details are.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub configuration_id: Option<String>,
}

impl From<&ThirdPartyData> for ThirdPartyView {
    fn from(t: &ThirdPartyData) -> Self {
        Self {
            id: t.id.clone(),
            original_sender: t.original_sender.clone(),
            original_receipt_date: t.original_receipt_date.map(|d| d.to_rfc3339()),
            has_attachments: t.has_attachments,
            has_remote_content: t.has_remote_content,
            has_precondition: t.has_precondition,
            summary: t.summary.clone(),
            configuration_id: t.configuration_id.as_ref().map(|c| c.as_str().to_owned()),
        }
    }
}

/// IO's `PaymentData` with its payee.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = PaymentData)]
pub struct PaymentView {
    /// Euro cents.
    #[schema(schema_with = io_core::openapi::payment_amount)]
    pub amount: u64,
    /// 18 digits.
    #[schema(schema_with = io_core::openapi::notice_number)]
    pub notice_number: String,
    /// Whether it expires with the due date.
    pub invalid_after_due_date: bool,
    /// Who is paid.
    pub payee: PayeeView,
}

/// IO's `Payee`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = Payee)]
pub struct PayeeView {
    /// Organization fiscal code.
    #[schema(value_type = io_core::OrganizationFiscalCode)]
    pub fiscal_code: String,
}

/// IO's `PrescriptionData`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = PrescriptionData)]
pub struct PrescriptionView {
    /// NRE.
    #[schema(schema_with = io_core::openapi::nre)]
    pub nre: String,
    /// IUP.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iup: Option<String>,
    /// Prescriber.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<io_core::FiscalCode>)]
    pub prescriber_fiscal_code: Option<String>,
}

impl From<&PaymentData> for PaymentView {
    fn from(p: &PaymentData) -> Self {
        Self {
            amount: p.amount,
            notice_number: p.notice_number.clone(),
            invalid_after_due_date: p.invalid_after_due_date,
            payee: PayeeView {
                fiscal_code: p.payee_fiscal_code.as_str().to_string(),
            },
        }
    }
}

impl From<&PrescriptionData> for PrescriptionView {
    fn from(p: &PrescriptionData) -> Self {
        Self {
            nre: p.nre.clone(),
            iup: p.iup.clone(),
            prescriber_fiscal_code: p
                .prescriber_fiscal_code
                .as_ref()
                .map(|f| f.as_str().to_string()),
        }
    }
}

impl From<&MessageContent> for ContentView {
    fn from(c: &MessageContent) -> Self {
        Self {
            subject: c.subject.clone(),
            markdown: c.markdown.clone(),
            due_date: c.due_date.map(|d| d.to_rfc3339()),
            payment_data: c.payment_data.as_ref().map(PaymentView::from),
            prescription_data: c.prescription_data.as_ref().map(PrescriptionView::from),
            require_secure_channels: c.require_secure_channels,
            third_party_data: c.third_party_data.as_ref().map(ThirdPartyView::from),
        }
    }
}

/// IO's `NewMessageWithContent` as stored.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = MessageWithContent)]
pub struct MessageView {
    /// ULID.
    #[schema(value_type = io_core::MessageId)]
    pub id: String,
    /// Recipient.
    #[schema(value_type = io_core::FiscalCode)]
    pub fiscal_code: String,
    /// Seconds.
    pub time_to_live: u64,
    /// RFC 3339.
    #[schema(schema_with = io_core::openapi::timestamp)]
    pub created_at: String,
    /// Content.
    pub content: ContentView,
    /// Sender.
    #[schema(value_type = io_core::ServiceId)]
    pub sender_service_id: String,
    /// STANDARD or ADVANCED.
    #[schema(value_type = io_core::FeatureLevel)]
    pub feature_level_type: &'static str,
    /// io's extension: delivered by PEC to the digital domicile too (absent when false).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    #[schema(required = false)]
    pub legal_value: bool,
}

impl From<&Message> for MessageView {
    fn from(m: &Message) -> Self {
        Self {
            id: m.id.to_string(),
            fiscal_code: m.body.fiscal_code.as_str().to_string(),
            time_to_live: m.body.time_to_live_secs,
            created_at: m.created_at.to_rfc3339(),
            content: ContentView::from(&m.body.content),
            sender_service_id: m.sender_service_id.as_str().to_string(),
            feature_level_type: match m.body.feature_level {
                io_core::FeatureLevel::Standard => "STANDARD",
                io_core::FeatureLevel::Advanced => "ADVANCED",
            },
            legal_value: m.body.legal_value,
        }
    }
}

/// IO's `notification` object: per-channel status of email and push ("webhook").
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
#[schema(as = MessageNotification)]
pub struct NotificationView {
    /// Email notification status.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = crate::openapi::delivery_status)]
    pub email: Option<&'static str>,
    /// Push notification status.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = crate::openapi::delivery_status)]
    pub webhook: Option<&'static str>,
}

/// One channel's delivery, which IO no longer reports and io does.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = Delivery)]
pub struct DeliveryView {
    /// inbox, email, push or pec.
    #[schema(value_type = io_core::ChannelKind)]
    pub channel: &'static str,
    /// PENDING, THROTTLED, SUBMITTED (PEC), SENT, EXPIRED or FAILED.
    #[schema(schema_with = crate::openapi::delivery_status)]
    pub status: &'static str,
    /// Attempts made.
    pub attempts: u32,
    /// RFC 3339.
    #[schema(schema_with = io_core::openapi::timestamp)]
    pub updated_at: String,
    /// When the next attempt is due, while retrying.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = io_core::openapi::timestamp)]
    pub next_attempt_at: Option<String>,
    /// Why it failed, when FAILED.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure_reason: Option<String>,
    /// PEC: the legal delivery time its delivery receipt certifies (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = io_core::openapi::timestamp)]
    pub legal_delivery_at: Option<String>,
}

impl From<&Delivery> for DeliveryView {
    fn from(d: &Delivery) -> Self {
        Self {
            channel: d.id.channel.as_str(),
            status: d.state.as_str(),
            attempts: d.attempts,
            updated_at: d.updated_at.to_rfc3339(),
            next_attempt_at: matches!(d.state, DeliveryState::Pending | DeliveryState::Retrying)
                .then(|| d.next_attempt_at.to_rfc3339()),
            failure_reason: match &d.state {
                DeliveryState::Failed {
                    reason: FailureReason::Permanent { reason },
                } => Some(format!("{}: {}", reason.code, reason.detail)),
                DeliveryState::Failed {
                    reason: FailureReason::InvalidRecipient,
                } => Some("invalid_recipient".into()),
                _ => None,
            },
            legal_delivery_at: d.legal_delivery_at.map(io_core::Timestamp::to_rfc3339),
        }
    }
}

/// IO's `MessageResponseWithContent` plus `rejection_reason` and `deliveries`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct MessageResponse {
    /// The message.
    pub message: MessageView,
    /// ACCEPTED, PROCESSED, REJECTED, FAILED.
    #[schema(schema_with = crate::openapi::message_status)]
    pub status: &'static str,
    /// Why it was rejected.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<io_core::RejectionReason>)]
    pub rejection_reason: Option<&'static str>,
    /// Email and push status, as IO shaped it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notification: Option<NotificationView>,
    /// Every channel's delivery.
    pub deliveries: Vec<DeliveryView>,
    /// ADVANCED messages: UNREAD or READ.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = crate::openapi::read_status)]
    pub read_status: Option<&'static str>,
}

impl MessageResponse {
    /// The response for a message, its status and deliveries.
    pub fn new(message: &Message, status: MessageStatus, deliveries: &[Delivery]) -> Self {
        let mut notification = NotificationView::default();
        for d in deliveries {
            match d.id.channel {
                io_core::ChannelKind::Email => notification.email = Some(d.state.as_str()),
                io_core::ChannelKind::Push => notification.webhook = Some(d.state.as_str()),
                io_core::ChannelKind::Inbox | io_core::ChannelKind::Pec => {}
            }
        }
        let has_notifications = notification.email.is_some() || notification.webhook.is_some();
        Self {
            message: MessageView::from(message),
            status: status.as_str(),
            rejection_reason: match status {
                MessageStatus::Rejected(reason) => Some(reason.as_str()),
                _ => None,
            },
            notification: has_notifications.then_some(notification),
            deliveries: deliveries.iter().map(DeliveryView::from).collect(),
            read_status: None,
        }
    }
}
