//! OpenAPI schemas of the wire types' constrained fields (feature `openapi`): each limit is
//! the constant the validation enforces, so a document cannot drift from the code. The wire
//! types derive `utoipa::ToSchema` and name these functions with `schema_with`; io-server's
//! documents use them for their own payloads too.

use utoipa::openapi::schema::{KnownFormat, Object, ObjectBuilder, SchemaFormat, Type};

use crate::email_address::EMAIL_MAX_LEN;
use crate::fiscal_code::{FISCAL_CODE_HASH_LEN, SANDBOX_FISCAL_CODE};
use crate::ids::{IDEMPOTENCY_KEY_MAX_LEN, SERVICE_ID_MAX_LEN};
use crate::installation::INSTALLATION_ID_MAX_LEN;
use crate::message::{
    DEFAULT_TIME_TO_LIVE_SECS, IUP_LEN, MARKDOWN_CHARS, NOTICE_NUMBER_LEN, NRE_LEN,
    PAYMENT_AMOUNT_CENTS, SUBJECT_CHARS, THIRD_PARTY_TEXT_MAX, TIME_TO_LIVE_SECS,
};
use crate::organization_fiscal_code::ORGANIZATION_FISCAL_CODE_LEN;

/// IO's fiscal code regex (io-reference §2). `FiscalCode::parse` checks the same shape position
/// by position, then the check character, which no regex expresses.
pub const FISCAL_CODE_PATTERN: &str =
    "^[A-Z]{6}[0-9LMNPQRSTUV]{2}[ABCDEHLMPRST][0-9LMNPQRSTUV]{2}[A-Z][0-9LMNPQRSTUV]{3}[A-Z]$";

/// A ULID in Crockford base 32 as `MessageId` renders it (the first character is at most 7:
/// 128 bits in 26 characters).
pub const ULID_PATTERN: &str = "^[0-7][0-9A-HJKMNP-TV-Z]{25}$";

/// A fiscal code that passes every check (examples, so generated requests can succeed).
pub const EXAMPLE_FISCAL_CODE: &str = "RSSMRA85T10A562S";

/// An organization fiscal code with a valid check digit.
pub const EXAMPLE_ORGANIZATION: &str = "02438750586";

fn string() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::String)
}

fn integer() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
}

/// `(min, max)` characters.
fn text(chars: (usize, usize)) -> Object {
    string()
        .min_length(Some(chars.0))
        .max_length(Some(chars.1))
        .build()
}

/// A citizen's fiscal code.
pub fn fiscal_code() -> Object {
    string()
        .pattern(Some(FISCAL_CODE_PATTERN))
        .description(Some(format!(
            "An Italian fiscal code, upper case. Beyond the pattern, the 16th character must be the check character of the first 15 (400 otherwise); IO's test code {SANDBOX_FISCAL_CODE} is accepted as the documented exception. Input is trimmed and upper-cased."
        )))
        .examples([EXAMPLE_FISCAL_CODE])
        .build()
}

/// An organization fiscal code (partita IVA).
pub fn organization_fiscal_code() -> Object {
    string()
        .pattern(Some(format!("^[0-9]{{{ORGANIZATION_FISCAL_CODE_LEN}}}$")))
        .description(Some(format!(
            "{ORGANIZATION_FISCAL_CODE_LEN} digits, the last a check digit (verified)."
        )))
        .examples([EXAMPLE_ORGANIZATION])
        .build()
}

/// `lowercase(hex(sha256(fiscal_code)))`.
pub fn fiscal_code_hash() -> Object {
    string()
        .pattern(Some(format!("^[0-9a-f]{{{FISCAL_CODE_HASH_LEN}}}$")))
        .description(Some("lowercase(hex(sha256(uppercase(fiscal_code))))"))
        .build()
}

/// A message id (ULID).
pub fn message_id() -> Object {
    string()
        .pattern(Some(ULID_PATTERN))
        .description(Some(
            "A ULID (26 Crockford base-32 characters); ids sort by creation time.",
        ))
        .examples(["01ARZ3NDEKTSV4RRFFQ69G5FAV"])
        .build()
}

/// A service id.
pub fn service_id() -> Object {
    string()
        .pattern(Some(format!("^[A-Za-z0-9_-]{{1,{SERVICE_ID_MAX_LEN}}}$")))
        .description(Some(format!(
            "1 to {SERVICE_ID_MAX_LEN} characters among A-Z a-z 0-9 - _."
        )))
        .examples(["tari-roma"])
        .build()
}

/// An RFC 3339 date-time as the APIs write it (UTC, milliseconds); any offset as an input.
pub fn timestamp() -> Object {
    string()
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
        .examples(["2026-01-31T23:59:59.000Z"])
        .build()
}

/// The `Idempotency-Key` header's value.
pub fn idempotency_key() -> Object {
    string()
        .pattern(Some(format!("^[!-~]{{1,{IDEMPOTENCY_KEY_MAX_LEN}}}$")))
        .description(Some(format!(
            "1 to {IDEMPOTENCY_KEY_MAX_LEN} visible ASCII characters (a UUID is the usual choice)."
        )))
        .examples(["5f0c6f5e-6a35-4a2b-9b7e-0b8f3f3f2a10"])
        .build()
}

/// An email address as an input (`EmailAddress::parse`).
pub fn email_input() -> Object {
    string()
        .min_length(Some(3))
        .max_length(Some(EMAIL_MAX_LEN))
        .description(Some(
            "local@domain.tld, no spaces or control characters; trimmed, the domain lower-cased.",
        ))
        .examples(["mario.rossi@example.org"])
        .build()
}

/// A message's subject.
pub fn subject() -> Object {
    text(SUBJECT_CHARS)
}

/// A message's markdown.
pub fn markdown() -> Object {
    text(MARKDOWN_CHARS)
}

/// A message's time-to-live as submitted.
pub fn time_to_live() -> Object {
    integer()
        .minimum(Some(TIME_TO_LIVE_SECS.0))
        .maximum(Some(TIME_TO_LIVE_SECS.1))
        .default(Some(DEFAULT_TIME_TO_LIVE_SECS.into()))
        .description(Some(
            "Seconds the notifications may wait; past it they end EXPIRED (the inbox copy stays).",
        ))
        .build()
}

/// A payment's amount.
pub fn payment_amount() -> Object {
    integer()
        .minimum(Some(PAYMENT_AMOUNT_CENTS.0))
        .maximum(Some(PAYMENT_AMOUNT_CENTS.1))
        .description(Some(
            "Euro cents; above the service's max_allowed_payment_amount is refused (400).",
        ))
        .build()
}

/// A pagoPA notice number.
pub fn notice_number() -> Object {
    string()
        .pattern(Some(format!("^[0123][0-9]{{{}}}$", NOTICE_NUMBER_LEN - 1)))
        .description(Some("pagoPA notice number."))
        .examples(["012345678901234567"])
        .build()
}

/// A prescription's NRE.
pub fn nre() -> Object {
    string()
        .min_length(Some(NRE_LEN))
        .max_length(Some(NRE_LEN))
        .description(Some("Numero di ricetta elettronica."))
        .build()
}

/// A prescription's IUP.
pub fn iup() -> Object {
    string()
        .min_length(Some(IUP_LEN.0))
        .max_length(Some(IUP_LEN.1))
        .description(Some("Identificativo unico di prescrizione."))
        .build()
}

/// A text of `third_party_data`.
pub fn third_party_text() -> Object {
    text((1, THIRD_PARTY_TEXT_MAX))
}

/// A push installation's id (`InstallationId::parse`).
pub fn installation_id() -> Object {
    string()
        .pattern(Some(format!(
            "^[A-Za-z0-9._-]{{1,{INSTALLATION_ID_MAX_LEN}}}$"
        )))
        .examples(["device-1"])
        .build()
}

/// A remote-content configuration id.
pub fn configuration_id() -> Object {
    string().examples(["01ARZ3NDEKTSV4RRFFQ69G5FAV"]).build()
}

/// A type whose schema is one of this module's functions.
macro_rules! schema_of {
    ($ty:ty, $name:literal, $schema:ident) => {
        impl utoipa::PartialSchema for $ty {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                $schema().into()
            }
        }

        impl utoipa::ToSchema for $ty {
            fn name() -> std::borrow::Cow<'static, str> {
                std::borrow::Cow::Borrowed($name)
            }
        }
    };
}

schema_of!(crate::FiscalCode, "FiscalCode", fiscal_code);
schema_of!(crate::MessageId, "MessageId", message_id);
schema_of!(crate::ServiceId, "ServiceId", service_id);
schema_of!(crate::IdempotencyKey, "IdempotencyKey", idempotency_key);
schema_of!(
    crate::OrganizationFiscalCode,
    "OrganizationFiscalCode",
    organization_fiscal_code
);
schema_of!(crate::FiscalCodeHash, "FiscalCodeHash", fiscal_code_hash);
schema_of!(crate::EmailAddress, "EmailAddress", email_input);
schema_of!(crate::InstallationId, "InstallationId", installation_id);
