//! Messages: the `NewMessage` a service submits (IO's JSON shape, io-reference §6), its
//! validation into a [`ValidMessage`], and the stored [`Message`].

use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{
    ConfigurationId, FiscalCode, FiscalCodeError, HasPrecondition, MessageId,
    OrganizationFiscalCode, OrganizationFiscalCodeError, ServiceId, Timestamp,
};

/// Subject length in characters (Unicode scalar values), inclusive.
pub const SUBJECT_CHARS: (usize, usize) = (10, 120);
/// Markdown length in characters, inclusive.
pub const MARKDOWN_CHARS: (usize, usize) = (80, 10_000);
/// Time-to-live bounds in seconds, inclusive, and the default.
pub const TIME_TO_LIVE_SECS: (u64, u64) = (3_600, 604_800);
/// The time-to-live when the sender gives none.
pub const DEFAULT_TIME_TO_LIVE_SECS: u64 = 3_600;
/// Payment amount bounds in euro cents, inclusive.
pub const PAYMENT_AMOUNT_CENTS: (u64, u64) = (1, 9_999_999_999);
/// Length of a pagoPA notice number.
pub const NOTICE_NUMBER_LEN: usize = 18;
/// Length of a prescription's NRE.
pub const NRE_LEN: usize = 15;
/// IUP length bounds, inclusive.
pub const IUP_LEN: (usize, usize) = (1, 16);
/// The control characters a subject or markdown may hold: tab, line feed, carriage return.
/// Every other C0 control (U+0000..=U+001F) is refused: a NUL or an escape sequence has no
/// place in a message, and a C string, a terminal or a mail header downstream may misread it.
pub const ALLOWED_CONTROL_CHARS: [char; 3] = ['\t', '\n', '\r'];
/// The earliest accepted `due_date`: the Unix epoch. RFC 3339 admits year 0000, and a
/// [`Timestamp`] could hold it as negative milliseconds, but no due date precedes 1970.
pub const DUE_DATE_MIN: Timestamp = Timestamp::EPOCH;

/// A message as a service submits it: IO's `NewMessage` JSON. Nothing here is trusted until
/// [`NewMessage::validate`] turns it into a [`ValidMessage`]. Unknown fields are ignored, as IO
/// does, so clients that send deprecated fields (`default_addresses`) keep working.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(
    feature = "openapi",
    schema(
        description = "A message (IO's `NewMessage`): the recipient is `fiscal_code` for `POST /messages`, the path for `POST /messages/{fiscal_code}` (a `fiscal_code` in the body is refused there). Unknown fields are ignored, as IO does."
    )
)]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewMessage {
    /// The recipient (in the body for `POST /messages`, else from the path).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::openapi::fiscal_code))]
    pub fiscal_code: Option<String>,
    /// Seconds the notifications may wait before they expire.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::openapi::time_to_live))]
    pub time_to_live: Option<u64>,
    /// The content.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub content: NewMessageContent,
    /// `STANDARD` (default) or `ADVANCED` (read status visible to the sender), which needs
    /// `ApiMessageWriteAdvanced` (403 otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<crate::FeatureLevel>))]
    pub feature_level_type: Option<String>,
    /// io's extension: the message has legal value, so it also goes by PEC to the citizen's
    /// digital domicile, whatever the citizen's per-service preferences (io-reference §8); the
    /// delivery is SENT only on the provider's delivery receipt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub legal_value: Option<bool>,
}

/// The `content` object of a `NewMessage`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewMessageContent {
    /// 10 to 120 characters; of the control characters, only tab, line feed and carriage return.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(required = true, schema_with = crate::openapi::subject))]
    pub subject: Option<String>,
    /// 80 to 10,000 characters of markdown; control characters as in `subject`.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(required = true, schema_with = crate::openapi::markdown))]
    pub markdown: Option<String>,
    /// RFC 3339 timestamp, not before 1970 ([`DUE_DATE_MIN`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::openapi::timestamp))]
    pub due_date: Option<String>,
    /// A pagoPA payment notice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_data: Option<NewPaymentData>,
    /// Overrides the service's flag: no email, anonymous push.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_secure_channels: Option<bool>,
    /// A medical prescription.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prescription_data: Option<NewPrescriptionData>,
    /// Details kept on the sender's server (IO's remote contents).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub third_party_data: Option<NewThirdPartyData>,
}

/// The `third_party_data` object of a `NewMessage` (IO's `ThirdPartyData`).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewThirdPartyData {
    /// The sender's id of the message, which io asks its server for.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(required = true, schema_with = crate::openapi::third_party_text))]
    pub id: Option<String>,
    /// Who originally sent it, when the service relays another sender.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::openapi::third_party_text))]
    pub original_sender: Option<String>,
    /// When the original sender received it (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::openapi::timestamp))]
    pub original_receipt_date: Option<String>,
    /// The sender's server has attachments for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub has_attachments: Option<bool>,
    /// The sender's server has its details.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub has_remote_content: Option<bool>,
    /// Whether a precondition comes before the details.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub has_precondition: Option<HasPrecondition>,
    /// A summary shown before the details are read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::openapi::third_party_text))]
    pub summary: Option<String>,
    /// The remote-content configuration that says where the details are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::openapi::configuration_id))]
    pub configuration_id: Option<String>,
}

/// The `payment_data` object of a `NewMessage`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewPaymentData {
    /// Euro cents.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(required = true, schema_with = crate::openapi::payment_amount))]
    pub amount: Option<u64>,
    /// 18 digits, the first one of 0-3.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(required = true, schema_with = crate::openapi::notice_number))]
    pub notice_number: Option<String>,
    /// Whether the notice stops being payable after the due date.
    #[serde(default)]
    pub invalid_after_due_date: Option<bool>,
    /// Who is paid, when not the sender's organization; needs `ApiMessageWriteWithPayee` (403
    /// otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payee: Option<NewPayee>,
}

/// The `payee` object of `payment_data`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewPayee {
    /// The payee organization's fiscal code.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(required = true, schema_with = crate::openapi::organization_fiscal_code))]
    pub fiscal_code: Option<String>,
}

/// The `prescription_data` object of a `NewMessage`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewPrescriptionData {
    /// Numero di ricetta elettronica, 15 characters.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(required = true, schema_with = crate::openapi::nre))]
    pub nre: Option<String>,
    /// Identificativo unico di prescrizione, 1 to 16 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::openapi::iup))]
    pub iup: Option<String>,
    /// The prescribing doctor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::openapi::fiscal_code))]
    pub prescriber_fiscal_code: Option<String>,
}

/// What the sending key may do beyond plain messages (IO's permission groups): the server
/// derives it from the key, the validation enforces it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SenderCapabilities {
    /// `ApiMessageWriteWithPayee`: may name a payee other than the sender's organization.
    pub may_set_payee: bool,
    /// `ApiMessageWriteAdvanced`: may send ADVANCED messages.
    pub may_send_advanced: bool,
}

/// A rule of io-reference §6 that a [`NewMessage`] breaks. [`ValidationError::field`] names the
/// JSON field for problem+json details.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidationError {
    /// A required field is absent.
    #[error("{field} is required")]
    Missing {
        /// JSON path of the field.
        field: &'static str,
    },
    /// The recipient is not a fiscal code.
    #[error("fiscal_code: {0}")]
    FiscalCode(FiscalCodeError),
    /// Subject too short or too long.
    #[error("content.subject has {len} characters, expected {min}..={max}")]
    SubjectLength {
        /// Its length in characters.
        len: usize,
        /// Minimum.
        min: usize,
        /// Maximum.
        max: usize,
    },
    /// Markdown too short or too long.
    #[error("content.markdown has {len} characters, expected {min}..={max}")]
    MarkdownLength {
        /// Its length in characters.
        len: usize,
        /// Minimum.
        min: usize,
        /// Maximum.
        max: usize,
    },
    /// The due date is not an RFC 3339 timestamp.
    #[error("content.due_date {value:?} is not an RFC 3339 timestamp")]
    DueDate {
        /// The rejected text, cut to 64 characters.
        value: String,
    },
    /// The due date is an RFC 3339 timestamp before [`DUE_DATE_MIN`].
    #[error(
        "content.due_date {value:?} is before {}, the earliest accepted",
        DUE_DATE_MIN
    )]
    DueDateTooEarly {
        /// The rejected text, cut to 64 characters.
        value: String,
    },
    /// A C0 control character other than those of [`ALLOWED_CONTROL_CHARS`] in a text field.
    #[error(
        "{field} has control character U+{code:04X} at character {index}, \
         only tab, line feed and carriage return are allowed"
    )]
    ControlCharacter {
        /// JSON path of the field.
        field: &'static str,
        /// Position of the first such character, counted in characters from 0.
        index: usize,
        /// Its code point.
        code: u32,
    },
    /// Time-to-live out of bounds.
    #[error("time_to_live of {secs}s is outside {}..={}", TIME_TO_LIVE_SECS.0, TIME_TO_LIVE_SECS.1)]
    TimeToLive {
        /// The seconds given.
        secs: u64,
    },
    /// Amount outside 1..=9,999,999,999 cents.
    #[error("content.payment_data.amount of {amount} cents is outside {}..={}", PAYMENT_AMOUNT_CENTS.0, PAYMENT_AMOUNT_CENTS.1)]
    PaymentAmount {
        /// The cents given.
        amount: u64,
    },
    /// Amount above what the service may request.
    #[error(
        "content.payment_data.amount of {amount} cents exceeds the service's max_allowed_payment_amount of {max}"
    )]
    PaymentAmountOverServiceLimit {
        /// The cents given.
        amount: u64,
        /// The service's limit.
        max: u64,
    },
    /// Notice number not 18 digits starting with 0-3.
    #[error("content.payment_data.notice_number {value:?} does not match ^[0123][0-9]{{17}}$")]
    NoticeNumber {
        /// The rejected text, cut to 64 characters.
        value: String,
    },
    /// A payee was named without `ApiMessageWriteWithPayee`.
    #[error("content.payment_data.payee requires the ApiMessageWriteWithPayee permission")]
    PayeeNotAllowed,
    /// The payee is not an organization fiscal code.
    #[error("content.payment_data.payee.fiscal_code: {0}")]
    PayeeFiscalCode(OrganizationFiscalCodeError),
    /// NRE not 15 characters.
    #[error("content.prescription_data.nre has {len} characters, expected {NRE_LEN}")]
    NreLength {
        /// Its length in characters.
        len: usize,
    },
    /// IUP not 1 to 16 characters.
    #[error("content.prescription_data.iup has {len} characters, expected {}..={}", IUP_LEN.0, IUP_LEN.1)]
    IupLength {
        /// Its length in characters.
        len: usize,
    },
    /// The prescriber is not a fiscal code.
    #[error("content.prescription_data.prescriber_fiscal_code: {0}")]
    PrescriberFiscalCode(FiscalCodeError),
    /// A field of `content.third_party_data` is not valid.
    #[error("{field}: {reason}")]
    ThirdPartyData {
        /// JSON path of the field.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// Feature level neither STANDARD nor ADVANCED.
    #[error("feature_level_type {value:?} is not STANDARD or ADVANCED")]
    FeatureLevel {
        /// The rejected text, cut to 64 characters.
        value: String,
    },
    /// ADVANCED without `ApiMessageWriteAdvanced`.
    #[error("feature_level_type ADVANCED requires the ApiMessageWriteAdvanced permission")]
    AdvancedNotAllowed,
}

impl ValidationError {
    /// The JSON path of the offending field.
    pub fn field(&self) -> &'static str {
        match self {
            Self::Missing { field } => field,
            Self::FiscalCode(_) => "fiscal_code",
            Self::SubjectLength { .. } => "content.subject",
            Self::MarkdownLength { .. } => "content.markdown",
            Self::DueDate { .. } | Self::DueDateTooEarly { .. } => "content.due_date",
            Self::ControlCharacter { field, .. } => field,
            Self::TimeToLive { .. } => "time_to_live",
            Self::PaymentAmount { .. } | Self::PaymentAmountOverServiceLimit { .. } => {
                "content.payment_data.amount"
            }
            Self::NoticeNumber { .. } => "content.payment_data.notice_number",
            Self::PayeeNotAllowed => "content.payment_data.payee",
            Self::PayeeFiscalCode(_) => "content.payment_data.payee.fiscal_code",
            Self::NreLength { .. } => "content.prescription_data.nre",
            Self::IupLength { .. } => "content.prescription_data.iup",
            Self::PrescriberFiscalCode(_) => "content.prescription_data.prescriber_fiscal_code",
            Self::ThirdPartyData { field, .. } => field,
            Self::FeatureLevel { .. } | Self::AdvancedNotAllowed => "feature_level_type",
        }
    }
}

/// STANDARD or ADVANCED (read and payment status visible to the sender).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum FeatureLevel {
    /// The default.
    #[default]
    Standard,
    /// Needs `ApiMessageWriteAdvanced`.
    Advanced,
}

/// A validated payment notice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentData {
    /// Euro cents, within the service's limit.
    pub amount: u64,
    /// 18 digits.
    pub notice_number: String,
    /// Whether the notice stops being payable after the due date.
    pub invalid_after_due_date: bool,
    /// Who is paid: the named payee, or the sender's organization.
    pub payee_fiscal_code: OrganizationFiscalCode,
}

impl PaymentData {
    /// pagoPA's payment notice id: payee fiscal code followed by the notice number.
    pub fn rpt_id(&self) -> String {
        format!("{}{}", self.payee_fiscal_code.as_str(), self.notice_number)
    }
}

/// A validated prescription.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrescriptionData {
    /// 15 characters.
    pub nre: String,
    /// 1 to 16 characters.
    pub iup: Option<String>,
    /// The prescriber.
    pub prescriber_fiscal_code: Option<FiscalCode>,
}

/// Validated message content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageContent {
    /// 10 to 120 characters.
    pub subject: String,
    /// 80 to 10,000 characters.
    pub markdown: String,
    /// When something is due.
    pub due_date: Option<Timestamp>,
    /// A payment notice.
    pub payment_data: Option<PaymentData>,
    /// Overrides the service's flag when set.
    pub require_secure_channels: Option<bool>,
    /// A prescription.
    pub prescription_data: Option<PrescriptionData>,
    /// Details kept on the sender's server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub third_party_data: Option<ThirdPartyData>,
}

/// Validated `third_party_data`: what the citizen's app shows before it reads the details
/// from the sender's server, and the configuration that says where they are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThirdPartyData {
    /// The sender's id of the message: 1 to [`THIRD_PARTY_TEXT_MAX`] characters, no control
    /// characters, one path segment (not `.` or `..`, no `/` or `\`).
    pub id: String,
    /// Who originally sent it.
    pub original_sender: Option<String>,
    /// When the original sender received it.
    pub original_receipt_date: Option<Timestamp>,
    /// The sender's server has attachments for it.
    pub has_attachments: bool,
    /// The sender's server has its details.
    pub has_remote_content: bool,
    /// Whether a precondition comes before the details.
    pub has_precondition: Option<HasPrecondition>,
    /// A summary shown before the details are read.
    pub summary: Option<String>,
    /// Where the details are: required when the sender has details or attachments.
    pub configuration_id: Option<ConfigurationId>,
}

/// The longest text of `third_party_data`, in characters.
pub const THIRD_PARTY_TEXT_MAX: usize = 1000;

/// A message that satisfies every rule of io-reference §6 for its sender.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidMessage {
    /// The recipient.
    pub fiscal_code: FiscalCode,
    /// The content.
    pub content: MessageContent,
    /// Seconds within 3600..=604800.
    pub time_to_live_secs: u64,
    /// STANDARD or ADVANCED.
    pub feature_level: FeatureLevel,
    /// Legal value: delivered by PEC to the digital domicile too (absent when false, so the
    /// content hash of an ordinary message is what it always was).
    #[serde(default, skip_serializing_if = "is_false")]
    pub legal_value: bool,
}

fn is_false(value: &bool) -> bool {
    !value
}

impl ValidMessage {
    /// SHA-256 of the validated message: what an idempotency key is bound to (the same key with
    /// a body that validates to something else is a conflict) and what the journal records.
    pub fn content_hash(&self) -> String {
        let bytes = serde_json::to_vec(self).unwrap_or_default();
        hex::encode(Sha256::digest(&bytes))
    }

    /// The time-to-live as a duration.
    pub fn time_to_live(&self) -> Duration {
        Duration::from_secs(self.time_to_live_secs)
    }
}

/// What validation needs to know about the sender.
#[derive(Debug, Clone, Copy)]
pub struct SenderLimits<'a> {
    /// The service's `max_allowed_payment_amount` (0 forbids payments).
    pub max_allowed_payment_amount: u64,
    /// The sender organization: the default payee.
    pub organization_fiscal_code: &'a OrganizationFiscalCode,
    /// What the key may do.
    pub capabilities: SenderCapabilities,
}

fn cut(raw: &str) -> String {
    raw.chars().take(64).collect()
}

fn check_len(
    text: &str,
    (min, max): (usize, usize),
    error: impl Fn(usize, usize, usize) -> ValidationError,
) -> Result<(), ValidationError> {
    let len = text.chars().count();
    if (min..=max).contains(&len) {
        Ok(())
    } else {
        Err(error(len, min, max))
    }
}

/// Refuses a C0 control character other than [`ALLOWED_CONTROL_CHARS`] in the text of `field`.
fn check_control_chars(text: &str, field: &'static str) -> Result<(), ValidationError> {
    match text
        .chars()
        .enumerate()
        .find(|(_, c)| matches!(c, '\u{0}'..='\u{1f}') && !ALLOWED_CONTROL_CHARS.contains(c))
    {
        None => Ok(()),
        Some((index, c)) => Err(ValidationError::ControlCharacter {
            field,
            index,
            code: u32::from(c),
        }),
    }
}

impl NewMessage {
    /// Checks every rule and returns the typed message; the first broken rule is reported.
    pub fn validate(&self, sender: SenderLimits<'_>) -> Result<ValidMessage, ValidationError> {
        let raw_fc = self
            .fiscal_code
            .as_deref()
            .ok_or(ValidationError::Missing {
                field: "fiscal_code",
            })?;
        let fiscal_code = FiscalCode::parse(raw_fc).map_err(ValidationError::FiscalCode)?;

        let time_to_live_secs = self.time_to_live.unwrap_or(DEFAULT_TIME_TO_LIVE_SECS);
        if !(TIME_TO_LIVE_SECS.0..=TIME_TO_LIVE_SECS.1).contains(&time_to_live_secs) {
            return Err(ValidationError::TimeToLive {
                secs: time_to_live_secs,
            });
        }

        let feature_level = match self.feature_level_type.as_deref() {
            None | Some("STANDARD") => FeatureLevel::Standard,
            Some("ADVANCED") if sender.capabilities.may_send_advanced => FeatureLevel::Advanced,
            Some("ADVANCED") => return Err(ValidationError::AdvancedNotAllowed),
            Some(other) => return Err(ValidationError::FeatureLevel { value: cut(other) }),
        };

        let content = validate_content(&self.content, sender)?;
        Ok(ValidMessage {
            fiscal_code,
            content,
            time_to_live_secs,
            feature_level,
            legal_value: self.legal_value.unwrap_or(false),
        })
    }
}

fn validate_content(
    raw: &NewMessageContent,
    sender: SenderLimits<'_>,
) -> Result<MessageContent, ValidationError> {
    let subject = raw.subject.clone().ok_or(ValidationError::Missing {
        field: "content.subject",
    })?;
    check_len(&subject, SUBJECT_CHARS, |len, min, max| {
        ValidationError::SubjectLength { len, min, max }
    })?;
    check_control_chars(&subject, "content.subject")?;
    let markdown = raw.markdown.clone().ok_or(ValidationError::Missing {
        field: "content.markdown",
    })?;
    check_len(&markdown, MARKDOWN_CHARS, |len, min, max| {
        ValidationError::MarkdownLength { len, min, max }
    })?;
    check_control_chars(&markdown, "content.markdown")?;
    let due_date = raw
        .due_date
        .as_deref()
        .map(|text| match Timestamp::parse_rfc3339(text) {
            Err(_) => Err(ValidationError::DueDate { value: cut(text) }),
            Ok(at) if at < DUE_DATE_MIN => {
                Err(ValidationError::DueDateTooEarly { value: cut(text) })
            }
            Ok(at) => Ok(at),
        })
        .transpose()?;
    let payment_data = raw
        .payment_data
        .as_ref()
        .map(|payment| validate_payment(payment, sender))
        .transpose()?;
    let prescription_data = raw
        .prescription_data
        .as_ref()
        .map(validate_prescription)
        .transpose()?;
    let third_party_data = raw
        .third_party_data
        .as_ref()
        .map(validate_third_party)
        .transpose()?;
    Ok(MessageContent {
        subject,
        markdown,
        due_date,
        payment_data,
        require_secure_channels: raw.require_secure_channels,
        prescription_data,
        third_party_data,
    })
}

/// A text of `third_party_data`: 1 to [`THIRD_PARTY_TEXT_MAX`] characters, no control
/// characters.
fn third_party_text(field: &'static str, text: &str) -> Result<String, ValidationError> {
    let len = text.chars().count();
    if !(1..=THIRD_PARTY_TEXT_MAX).contains(&len) || text.chars().any(char::is_control) {
        return Err(ValidationError::ThirdPartyData {
            field,
            reason: format!(
                "1 to {THIRD_PARTY_TEXT_MAX} characters without control characters ({len} given)"
            ),
        });
    }
    Ok(text.to_owned())
}

fn validate_third_party(raw: &NewThirdPartyData) -> Result<ThirdPartyData, ValidationError> {
    let id = raw.id.as_deref().ok_or(ValidationError::Missing {
        field: "content.third_party_data.id",
    })?;
    let id = third_party_text("content.third_party_data.id", id)?;
    // The id is one path segment of the read from the sender's server.
    if id == "." || id == ".." || id.contains(['/', '\\']) {
        return Err(ValidationError::ThirdPartyData {
            field: "content.third_party_data.id",
            reason: "must be one path segment: not . or .., without / or \\".to_owned(),
        });
    }
    let original_sender = raw
        .original_sender
        .as_deref()
        .map(|text| third_party_text("content.third_party_data.original_sender", text))
        .transpose()?;
    let summary = raw
        .summary
        .as_deref()
        .map(|text| third_party_text("content.third_party_data.summary", text))
        .transpose()?;
    let original_receipt_date = raw
        .original_receipt_date
        .as_deref()
        .map(|text| {
            Timestamp::parse_rfc3339(text).map_err(|_| ValidationError::ThirdPartyData {
                field: "content.third_party_data.original_receipt_date",
                reason: format!("{:?} is not an RFC 3339 timestamp", cut(text)),
            })
        })
        .transpose()?;
    let configuration_id = raw
        .configuration_id
        .as_deref()
        .map(|text| {
            ConfigurationId::parse(text).map_err(|_| ValidationError::ThirdPartyData {
                field: "content.third_party_data.configuration_id",
                reason: format!("{:?} is not a ULID", cut(text)),
            })
        })
        .transpose()?;
    let has_attachments = raw.has_attachments.unwrap_or(false);
    let has_remote_content = raw.has_remote_content.unwrap_or(false);
    if (has_attachments || has_remote_content) && configuration_id.is_none() {
        return Err(ValidationError::ThirdPartyData {
            field: "content.third_party_data.configuration_id",
            reason: "required when has_remote_content or has_attachments is true (io keeps no per-service configuration)".to_owned(),
        });
    }
    Ok(ThirdPartyData {
        id,
        original_sender,
        original_receipt_date,
        has_attachments,
        has_remote_content,
        has_precondition: raw.has_precondition,
        summary,
        configuration_id,
    })
}

fn validate_payment(
    raw: &NewPaymentData,
    sender: SenderLimits<'_>,
) -> Result<PaymentData, ValidationError> {
    let amount = raw.amount.ok_or(ValidationError::Missing {
        field: "content.payment_data.amount",
    })?;
    if !(PAYMENT_AMOUNT_CENTS.0..=PAYMENT_AMOUNT_CENTS.1).contains(&amount) {
        return Err(ValidationError::PaymentAmount { amount });
    }
    if amount > sender.max_allowed_payment_amount {
        return Err(ValidationError::PaymentAmountOverServiceLimit {
            amount,
            max: sender.max_allowed_payment_amount,
        });
    }
    let notice_number = raw.notice_number.clone().ok_or(ValidationError::Missing {
        field: "content.payment_data.notice_number",
    })?;
    let notice_ok = notice_number.len() == NOTICE_NUMBER_LEN
        && notice_number.bytes().all(|b| b.is_ascii_digit())
        && matches!(notice_number.as_bytes()[0], b'0'..=b'3');
    if !notice_ok {
        return Err(ValidationError::NoticeNumber {
            value: cut(&notice_number),
        });
    }
    let payee_fiscal_code = match &raw.payee {
        None => sender.organization_fiscal_code.clone(),
        Some(_) if !sender.capabilities.may_set_payee => {
            return Err(ValidationError::PayeeNotAllowed);
        }
        Some(payee) => {
            let code = payee
                .fiscal_code
                .as_deref()
                .ok_or(ValidationError::Missing {
                    field: "content.payment_data.payee.fiscal_code",
                })?;
            OrganizationFiscalCode::parse(code).map_err(ValidationError::PayeeFiscalCode)?
        }
    };
    Ok(PaymentData {
        amount,
        notice_number,
        invalid_after_due_date: raw.invalid_after_due_date.unwrap_or(false),
        payee_fiscal_code,
    })
}

fn validate_prescription(raw: &NewPrescriptionData) -> Result<PrescriptionData, ValidationError> {
    let nre = raw.nre.clone().ok_or(ValidationError::Missing {
        field: "content.prescription_data.nre",
    })?;
    let nre_len = nre.chars().count();
    if nre_len != NRE_LEN {
        return Err(ValidationError::NreLength { len: nre_len });
    }
    if let Some(iup) = &raw.iup {
        let len = iup.chars().count();
        if !(IUP_LEN.0..=IUP_LEN.1).contains(&len) {
            return Err(ValidationError::IupLength { len });
        }
    }
    let prescriber_fiscal_code = raw
        .prescriber_fiscal_code
        .as_deref()
        .map(|code| FiscalCode::parse(code).map_err(ValidationError::PrescriberFiscalCode))
        .transpose()?;
    Ok(PrescriptionData {
        nre,
        iup: raw.iup.clone(),
        prescriber_fiscal_code,
    })
}

/// A message as stored once accepted: immutable from then on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// Its id.
    pub id: MessageId,
    /// The sending service.
    pub sender_service_id: ServiceId,
    /// The validated message.
    pub body: ValidMessage,
    /// When it was accepted.
    pub created_at: Timestamp,
}

impl Message {
    /// When notifications of this message stop being worth sending.
    pub fn expires_at(&self) -> Timestamp {
        self.created_at.plus(self.body.time_to_live())
    }

    /// Whether the message requires secure channels: its own flag, else the service's.
    pub fn requires_secure_channels(&self, service_default: bool) -> bool {
        self.body
            .content
            .require_secure_channels
            .unwrap_or(service_default)
    }
}

#[cfg(test)]
mod tests;
