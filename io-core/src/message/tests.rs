use super::*;

use std::sync::LazyLock;

use crate::{FiscalCodeError, SANDBOX_FISCAL_CODE};

/// A real-looking citizen (check character verified).
const CITIZEN: &str = "RSSMRA85T10A562S";
/// Another citizen, used as the prescribing doctor.
const DOCTOR: &str = "MRTMTT25D09F205Z";
/// The sending service's organization (the default payee).
const SENDER_ORG: &str = "15376371009";
/// Another organization, named as an explicit payee.
const OTHER_ORG: &str = "06363391001";
/// A notice number of 18 digits starting with 0..=3.
const NOTICE: &str = "302000100000009424";
/// A service limit high enough never to be the rule that fails.
const NO_SERVICE_LIMIT: u64 = u64::MAX;

static SENDER_ORG_CODE: LazyLock<OrganizationFiscalCode> =
    LazyLock::new(|| OrganizationFiscalCode::parse(SENDER_ORG).unwrap());

fn chars(n: usize, c: char) -> String {
    std::iter::repeat_n(c, n).collect()
}

fn subject() -> String {
    "Avviso di pagamento TARI 2026".to_owned()
}

fn markdown() -> String {
    let text = "Gentile cittadino, le ricordiamo che è disponibile l'avviso di pagamento della \
                tassa sui rifiuti per l'anno 2026. Può pagarlo direttamente dall'app.";
    assert!(text.chars().count() >= MARKDOWN_CHARS.0);
    text.to_owned()
}

/// A message that passes every rule, with nothing optional.
fn new_message() -> NewMessage {
    NewMessage {
        fiscal_code: Some(CITIZEN.to_owned()),
        time_to_live: None,
        content: NewMessageContent {
            subject: Some(subject()),
            markdown: Some(markdown()),
            ..NewMessageContent::default()
        },
        feature_level_type: None,
        legal_value: None,
    }
}

fn payment(amount: u64, notice_number: &str) -> NewPaymentData {
    NewPaymentData {
        amount: Some(amount),
        notice_number: Some(notice_number.to_owned()),
        invalid_after_due_date: None,
        payee: None,
    }
}

fn with_payment(payment: NewPaymentData) -> NewMessage {
    let mut message = new_message();
    message.content.payment_data = Some(payment);
    message
}

fn prescription(nre: &str, iup: Option<&str>, prescriber: Option<&str>) -> NewPrescriptionData {
    NewPrescriptionData {
        nre: Some(nre.to_owned()),
        iup: iup.map(str::to_owned),
        prescriber_fiscal_code: prescriber.map(str::to_owned),
    }
}

fn with_prescription(prescription: NewPrescriptionData) -> NewMessage {
    let mut message = new_message();
    message.content.prescription_data = Some(prescription);
    message
}

fn sender(
    max_allowed_payment_amount: u64,
    capabilities: SenderCapabilities,
) -> SenderLimits<'static> {
    SenderLimits {
        max_allowed_payment_amount,
        organization_fiscal_code: &SENDER_ORG_CODE,
        capabilities,
    }
}

/// A plain key of a service that may request any payment.
fn plain_sender() -> SenderLimits<'static> {
    sender(NO_SERVICE_LIMIT, SenderCapabilities::default())
}

fn validate(message: &NewMessage) -> Result<ValidMessage, ValidationError> {
    message.validate(plain_sender())
}

/// Asserts that `message` is rejected with `want`, that the error names `field` and that its
/// `Display` contains every string of `shows`.
#[track_caller]
fn assert_rejected(
    result: Result<ValidMessage, ValidationError>,
    want: &ValidationError,
    field: &str,
    shows: &[&str],
) {
    let err = result.expect_err("expected a validation error");
    assert_eq!(&err, want);
    assert_eq!(err.field(), field, "{err:?}");
    let text = err.to_string();
    for part in shows {
        assert!(text.contains(part), "{text:?} does not show {part:?}");
    }
}

#[test]
fn minimal_message_validates_with_defaults() {
    let valid = validate(&new_message()).unwrap();
    assert_eq!(valid.fiscal_code, FiscalCode::parse(CITIZEN).unwrap());
    assert_eq!(valid.content.subject, subject());
    assert_eq!(valid.content.markdown, markdown());
    assert_eq!(valid.content.due_date, None);
    assert_eq!(valid.content.payment_data, None);
    assert_eq!(valid.content.prescription_data, None);
    assert_eq!(valid.content.require_secure_channels, None);
    assert_eq!(valid.time_to_live_secs, DEFAULT_TIME_TO_LIVE_SECS);
    assert_eq!(valid.feature_level, FeatureLevel::Standard);
}

#[test]
fn subject_must_have_10_to_120_characters() {
    for len in [10, 11, 119, 120] {
        let mut message = new_message();
        message.content.subject = Some(chars(len, 'a'));
        assert_eq!(validate(&message).unwrap().content.subject.len(), len);
    }
    for len in [0, 9, 121] {
        let mut message = new_message();
        message.content.subject = Some(chars(len, 'a'));
        assert_rejected(
            validate(&message),
            &ValidationError::SubjectLength {
                len,
                min: 10,
                max: 120,
            },
            "content.subject",
            &[&format!("content.subject has {len} characters"), "10..=120"],
        );
    }
}

#[test]
fn subject_length_counts_characters_not_bytes() {
    // 'è' is two bytes in UTF-8: 10 of them are 20 bytes, 120 are 240 bytes.
    for len in [10, 120] {
        let mut message = new_message();
        message.content.subject = Some(chars(len, 'è'));
        assert!(validate(&message).is_ok(), "{len} × 'è'");
    }
    // 9 'è' are 18 bytes: too short although more than 10 bytes; '€' is three bytes.
    for (subject, len) in [
        (chars(9, 'è'), 9),
        (chars(121, 'è'), 121),
        (chars(9, '€'), 9),
    ] {
        let mut message = new_message();
        message.content.subject = Some(subject);
        assert_rejected(
            validate(&message),
            &ValidationError::SubjectLength {
                len,
                min: 10,
                max: 120,
            },
            "content.subject",
            &[&len.to_string()],
        );
    }
}

#[test]
fn markdown_must_have_80_to_10000_characters() {
    for (len, c) in [(80, 'a'), (10_000, 'a'), (80, 'è')] {
        let mut message = new_message();
        message.content.markdown = Some(chars(len, c));
        assert!(validate(&message).is_ok(), "{len} × {c:?}");
    }
    for (len, c) in [(79, 'a'), (10_001, 'a'), (79, 'è'), (0, 'a')] {
        let mut message = new_message();
        message.content.markdown = Some(chars(len, c));
        assert_rejected(
            validate(&message),
            &ValidationError::MarkdownLength {
                len,
                min: 80,
                max: 10_000,
            },
            "content.markdown",
            &[
                &format!("content.markdown has {len} characters"),
                "80..=10000",
            ],
        );
    }
}

#[test]
fn time_to_live_is_3600_to_604800_seconds_defaulting_to_3600() {
    let valid = validate(&new_message()).unwrap();
    assert_eq!(valid.time_to_live_secs, 3_600);
    assert_eq!(valid.time_to_live(), Duration::from_secs(3_600));
    for secs in [3_600, 3_601, 604_799, 604_800] {
        let mut message = new_message();
        message.time_to_live = Some(secs);
        let valid = validate(&message).unwrap();
        assert_eq!(valid.time_to_live_secs, secs);
        assert_eq!(valid.time_to_live(), Duration::from_secs(secs));
    }
    for secs in [0, 3_599, 604_801, u64::MAX] {
        let mut message = new_message();
        message.time_to_live = Some(secs);
        assert_rejected(
            validate(&message),
            &ValidationError::TimeToLive { secs },
            "time_to_live",
            &[&format!("time_to_live of {secs}s"), "3600..=604800"],
        );
    }
}

#[test]
fn due_date_must_be_rfc3339() {
    let mut message = new_message();
    message.content.due_date = Some("2026-01-31T23:59:59.000Z".to_owned());
    let valid = validate(&message).unwrap();
    assert_eq!(
        valid.content.due_date,
        Some(Timestamp::parse_rfc3339("2026-01-31T23:59:59Z").unwrap())
    );
    message.content.due_date = Some("31/01/2026".to_owned());
    assert_rejected(
        validate(&message),
        &ValidationError::DueDate {
            value: "31/01/2026".to_owned(),
        },
        "content.due_date",
        &["\"31/01/2026\""],
    );
}

#[test]
fn due_date_may_not_precede_1970() {
    for (raw, millis) in [
        ("1970-01-01T00:00:00Z", 0),
        ("1970-01-01T01:00:00+01:00", 0),
        ("9999-12-31T23:59:59.999Z", 253_402_300_799_999),
    ] {
        let mut message = new_message();
        message.content.due_date = Some(raw.to_owned());
        let valid = validate(&message).unwrap();
        assert_eq!(
            valid.content.due_date,
            Some(Timestamp::from_millis(millis)),
            "{raw}"
        );
    }
    for raw in [
        "0000-01-01T00:00:00Z",
        "0001-01-01T00:00:00Z",
        "1969-12-31T23:59:59.999Z",
        "1970-01-01T00:30:00+01:00",
    ] {
        let mut message = new_message();
        message.content.due_date = Some(raw.to_owned());
        assert_rejected(
            validate(&message),
            &ValidationError::DueDateTooEarly {
                value: raw.to_owned(),
            },
            "content.due_date",
            &[&format!("{raw:?}"), "1970-01-01T00:00:00.000Z"],
        );
    }
}

/// Every C0 control character but tab, line feed and carriage return.
fn refused_controls() -> impl Iterator<Item = char> {
    ('\u{0}'..='\u{1f}').filter(|c| !ALLOWED_CONTROL_CHARS.contains(c))
}

#[test]
fn subject_and_markdown_allow_tabs_and_line_breaks_but_no_other_control_character() {
    let mut message = new_message();
    message.content.subject = Some("Avviso\tdi pagamento\r\nTARI".to_owned());
    message.content.markdown = Some(format!("# Avviso\r\n\n\t{}", markdown()));
    assert!(validate(&message).is_ok());

    assert_eq!(refused_controls().count(), 29);
    for c in refused_controls() {
        let code = u32::from(c);
        let shows = |index: usize| {
            [
                format!("U+{code:04X}"),
                format!("at character {index}"),
                "tab, line feed and carriage return".to_owned(),
            ]
        };
        let mut message = new_message();
        message.content.subject = Some(format!("Avviso{c}di pagamento TARI"));
        assert_rejected(
            validate(&message),
            &ValidationError::ControlCharacter {
                field: "content.subject",
                index: 6,
                code,
            },
            "content.subject",
            &shows(6).each_ref().map(String::as_str),
        );

        let mut message = new_message();
        let index = markdown().chars().count();
        message.content.markdown = Some(format!("{}{c}", markdown()));
        assert_rejected(
            validate(&message),
            &ValidationError::ControlCharacter {
                field: "content.markdown",
                index,
                code,
            },
            "content.markdown",
            &shows(index).each_ref().map(String::as_str),
        );
    }
}

#[test]
fn payment_amount_is_1_to_9999999999_cents() {
    for amount in [1, 2, 9_999_999_998, 9_999_999_999] {
        let valid = validate(&with_payment(payment(amount, NOTICE))).unwrap();
        assert_eq!(valid.content.payment_data.unwrap().amount, amount);
    }
    for amount in [0, 10_000_000_000, u64::MAX] {
        assert_rejected(
            validate(&with_payment(payment(amount, NOTICE))),
            &ValidationError::PaymentAmount { amount },
            "content.payment_data.amount",
            &[&format!("amount of {amount} cents"), "1..=9999999999"],
        );
    }
}

#[test]
fn payment_amount_may_not_exceed_the_service_limit() {
    let limit = 15_000;
    let at_limit = with_payment(payment(limit, NOTICE))
        .validate(sender(limit, SenderCapabilities::default()))
        .unwrap();
    assert_eq!(at_limit.content.payment_data.unwrap().amount, limit);
    assert_rejected(
        with_payment(payment(limit + 1, NOTICE))
            .validate(sender(limit, SenderCapabilities::default())),
        &ValidationError::PaymentAmountOverServiceLimit {
            amount: limit + 1,
            max: limit,
        },
        "content.payment_data.amount",
        &["15001 cents", "max_allowed_payment_amount of 15000"],
    );
}

#[test]
fn service_limit_of_zero_forbids_any_payment() {
    let no_payments = sender(0, SenderCapabilities::default());
    assert!(new_message().validate(no_payments).is_ok());
    for amount in [1, 9_999_999_999] {
        assert_rejected(
            with_payment(payment(amount, NOTICE)).validate(no_payments),
            &ValidationError::PaymentAmountOverServiceLimit { amount, max: 0 },
            "content.payment_data.amount",
            &[
                &format!("{amount} cents"),
                "max_allowed_payment_amount of 0",
            ],
        );
    }
}

#[test]
fn notice_number_is_18_digits_starting_with_0_to_3() {
    for first in ['0', '1', '2', '3'] {
        let notice = format!("{first}{}", chars(17, '7'));
        let valid = validate(&with_payment(payment(100, &notice))).unwrap();
        assert_eq!(valid.content.payment_data.unwrap().notice_number, notice);
    }
    let rejected = [
        format!("4{}", chars(17, '0')),  // first digit out of 0..=3
        format!("9{}", chars(17, '0')),  // likewise
        format!("0{}", chars(16, '0')),  // 17 digits
        format!("0{}", chars(18, '0')),  // 19 digits
        "30200010000000942A".to_owned(), // a letter at the end
        "A02000100000009424".to_owned(), // a letter first
        "3020001000 0009424".to_owned(), // a space
        "30200010000000942٤".to_owned(), // a non-ASCII digit (Arabic-Indic four)
        String::new(),
    ];
    for notice in rejected {
        assert_rejected(
            validate(&with_payment(payment(100, &notice))),
            &ValidationError::NoticeNumber {
                value: notice.clone(),
            },
            "content.payment_data.notice_number",
            &[&format!("{notice:?}")],
        );
    }
}

#[test]
fn payment_data_needs_amount_and_notice_number() {
    let mut no_amount = payment(100, NOTICE);
    no_amount.amount = None;
    assert_rejected(
        validate(&with_payment(no_amount)),
        &ValidationError::Missing {
            field: "content.payment_data.amount",
        },
        "content.payment_data.amount",
        &["content.payment_data.amount is required"],
    );
    let mut no_notice = payment(100, NOTICE);
    no_notice.notice_number = None;
    assert_rejected(
        validate(&with_payment(no_notice)),
        &ValidationError::Missing {
            field: "content.payment_data.notice_number",
        },
        "content.payment_data.notice_number",
        &["content.payment_data.notice_number is required"],
    );
}

#[test]
fn default_payee_is_the_sender_organization() {
    let mut data = payment(100, NOTICE);
    data.invalid_after_due_date = Some(true);
    let valid = validate(&with_payment(data)).unwrap();
    assert_eq!(
        valid.content.payment_data,
        Some(PaymentData {
            amount: 100,
            notice_number: NOTICE.to_owned(),
            invalid_after_due_date: true,
            payee_fiscal_code: OrganizationFiscalCode::parse(SENDER_ORG).unwrap(),
        })
    );
    // invalid_after_due_date defaults to false.
    let valid = validate(&with_payment(payment(100, NOTICE))).unwrap();
    assert!(!valid.content.payment_data.unwrap().invalid_after_due_date);
}

#[test]
fn payee_needs_the_with_payee_permission() {
    let mut data = payment(100, NOTICE);
    data.payee = Some(NewPayee {
        fiscal_code: Some(OTHER_ORG.to_owned()),
    });
    let message = with_payment(data);
    let advanced_only = SenderCapabilities {
        may_set_payee: false,
        may_send_advanced: true,
    };
    for capabilities in [SenderCapabilities::default(), advanced_only] {
        assert_rejected(
            message.validate(sender(NO_SERVICE_LIMIT, capabilities)),
            &ValidationError::PayeeNotAllowed,
            "content.payment_data.payee",
            &["ApiMessageWriteWithPayee"],
        );
    }
    let with_payee = SenderCapabilities {
        may_set_payee: true,
        may_send_advanced: false,
    };
    let valid = message
        .validate(sender(NO_SERVICE_LIMIT, with_payee))
        .unwrap();
    assert_eq!(
        valid.content.payment_data.unwrap().payee_fiscal_code,
        OrganizationFiscalCode::parse(OTHER_ORG).unwrap()
    );
}

#[test]
fn payee_fiscal_code_is_checked() {
    let with_payee = sender(
        NO_SERVICE_LIMIT,
        SenderCapabilities {
            may_set_payee: true,
            may_send_advanced: false,
        },
    );
    let cases = [
        (
            "06363391002",
            OrganizationFiscalCodeError::CheckDigit {
                expected: '1',
                found: '2',
            },
            "'2'",
        ),
        (
            "0636339100",
            OrganizationFiscalCodeError::Length { len: 10 },
            "10 characters",
        ),
        (
            "0636339100A",
            OrganizationFiscalCodeError::NotDigit {
                position: 11,
                found: 'A',
            },
            "'A'",
        ),
    ];
    for (code, cause, shows) in cases {
        let mut data = payment(100, NOTICE);
        data.payee = Some(NewPayee {
            fiscal_code: Some(code.to_owned()),
        });
        assert_rejected(
            with_payment(data).validate(with_payee),
            &ValidationError::PayeeFiscalCode(cause),
            "content.payment_data.payee.fiscal_code",
            &["content.payment_data.payee.fiscal_code: ", shows],
        );
    }
    let mut data = payment(100, NOTICE);
    data.payee = Some(NewPayee { fiscal_code: None });
    assert_rejected(
        with_payment(data).validate(with_payee),
        &ValidationError::Missing {
            field: "content.payment_data.payee.fiscal_code",
        },
        "content.payment_data.payee.fiscal_code",
        &["is required"],
    );
}

#[test]
fn rpt_id_is_payee_followed_by_notice_number() {
    let valid = validate(&with_payment(payment(100, NOTICE))).unwrap();
    assert_eq!(
        valid.content.payment_data.unwrap().rpt_id(),
        "15376371009302000100000009424"
    );
    let explicit = PaymentData {
        amount: 1,
        notice_number: "012345678901234567".to_owned(),
        invalid_after_due_date: false,
        payee_fiscal_code: OrganizationFiscalCode::parse(OTHER_ORG).unwrap(),
    };
    assert_eq!(explicit.rpt_id(), "06363391001012345678901234567");
    assert_eq!(explicit.rpt_id().len(), 11 + NOTICE_NUMBER_LEN);
}

#[test]
fn nre_must_have_15_characters() {
    let nre = "080A12345678901";
    let valid = validate(&with_prescription(prescription(nre, None, None))).unwrap();
    assert_eq!(
        valid.content.prescription_data,
        Some(PrescriptionData {
            nre: nre.to_owned(),
            iup: None,
            prescriber_fiscal_code: None,
        })
    );
    for len in [14, 16, 0] {
        assert_rejected(
            validate(&with_prescription(prescription(
                &chars(len, '1'),
                None,
                None,
            ))),
            &ValidationError::NreLength { len },
            "content.prescription_data.nre",
            &[&format!("nre has {len} characters, expected 15")],
        );
    }
    // Characters, not bytes: 15 'è' are 30 bytes.
    assert!(
        validate(&with_prescription(prescription(
            &chars(15, 'è'),
            None,
            None
        )))
        .is_ok()
    );
    let missing = NewPrescriptionData {
        nre: None,
        ..prescription(nre, None, None)
    };
    assert_rejected(
        validate(&with_prescription(missing)),
        &ValidationError::Missing {
            field: "content.prescription_data.nre",
        },
        "content.prescription_data.nre",
        &["content.prescription_data.nre is required"],
    );
}

#[test]
fn iup_must_have_1_to_16_characters() {
    let nre = chars(15, '1');
    for len in [1, 16] {
        let iup = chars(len, 'X');
        let valid = validate(&with_prescription(prescription(&nre, Some(&iup), None))).unwrap();
        assert_eq!(valid.content.prescription_data.unwrap().iup, Some(iup));
    }
    for len in [0, 17] {
        assert_rejected(
            validate(&with_prescription(prescription(
                &nre,
                Some(&chars(len, 'X')),
                None,
            ))),
            &ValidationError::IupLength { len },
            "content.prescription_data.iup",
            &[&format!("iup has {len} characters"), "1..=16"],
        );
    }
}

#[test]
fn prescriber_fiscal_code_is_checked() {
    let nre = chars(15, '1');
    let valid = validate(&with_prescription(prescription(&nre, None, Some(DOCTOR)))).unwrap();
    assert_eq!(
        valid
            .content
            .prescription_data
            .unwrap()
            .prescriber_fiscal_code,
        Some(FiscalCode::parse(DOCTOR).unwrap())
    );
    let cases = [
        (
            "MRTMTT25D09F205A",
            FiscalCodeError::CheckCharacter {
                expected: 'Z',
                found: 'A',
            },
            "'A'",
        ),
        ("MRTMTT25D09F205", FiscalCodeError::Length { len: 15 }, "15"),
    ];
    for (code, cause, shows) in cases {
        assert_rejected(
            validate(&with_prescription(prescription(&nre, None, Some(code)))),
            &ValidationError::PrescriberFiscalCode(cause),
            "content.prescription_data.prescriber_fiscal_code",
            &["content.prescription_data.prescriber_fiscal_code: ", shows],
        );
    }
}

#[test]
fn feature_level_advanced_needs_the_advanced_permission() {
    let advanced = SenderCapabilities {
        may_set_payee: false,
        may_send_advanced: true,
    };
    let mut message = new_message();
    for (level, capabilities, want) in [
        (None, SenderCapabilities::default(), FeatureLevel::Standard),
        (
            Some("STANDARD"),
            SenderCapabilities::default(),
            FeatureLevel::Standard,
        ),
        (Some("STANDARD"), advanced, FeatureLevel::Standard),
        (Some("ADVANCED"), advanced, FeatureLevel::Advanced),
    ] {
        message.feature_level_type = level.map(str::to_owned);
        let valid = message.validate(sender(0, capabilities)).unwrap();
        assert_eq!(valid.feature_level, want, "{level:?}");
    }
    message.feature_level_type = Some("ADVANCED".to_owned());
    assert_rejected(
        message.validate(sender(0, SenderCapabilities::default())),
        &ValidationError::AdvancedNotAllowed,
        "feature_level_type",
        &["ApiMessageWriteAdvanced"],
    );
}

#[test]
fn feature_level_must_be_standard_or_advanced() {
    let advanced = sender(
        0,
        SenderCapabilities {
            may_set_payee: false,
            may_send_advanced: true,
        },
    );
    for level in ["PREMIUM", "advanced", "", " ADVANCED"] {
        let mut message = new_message();
        message.feature_level_type = Some(level.to_owned());
        assert_rejected(
            message.validate(advanced),
            &ValidationError::FeatureLevel {
                value: level.to_owned(),
            },
            "feature_level_type",
            &[&format!("{level:?}")],
        );
    }
    // The echoed value is cut to 64 characters.
    let mut message = new_message();
    message.feature_level_type = Some(chars(100, 'X'));
    assert_eq!(
        message.validate(advanced),
        Err(ValidationError::FeatureLevel {
            value: chars(64, 'X')
        })
    );
}

#[test]
fn missing_required_fields_are_named() {
    let mut no_fiscal_code = new_message();
    no_fiscal_code.fiscal_code = None;
    let mut no_subject = new_message();
    no_subject.content.subject = None;
    let mut no_markdown = new_message();
    no_markdown.content.markdown = None;
    for (message, field) in [
        (no_fiscal_code, "fiscal_code"),
        (no_subject, "content.subject"),
        (no_markdown, "content.markdown"),
        (NewMessage::default(), "fiscal_code"),
    ] {
        assert_rejected(
            validate(&message),
            &ValidationError::Missing { field },
            field,
            &[&format!("{field} is required")],
        );
    }
}

#[test]
fn recipient_fiscal_code_is_checked_and_normalized() {
    let mut message = new_message();
    message.fiscal_code = Some(" rssmra85t10a562s ".to_owned());
    assert_eq!(validate(&message).unwrap().fiscal_code.as_str(), CITIZEN);
    message.fiscal_code = Some(SANDBOX_FISCAL_CODE.to_owned());
    assert!(validate(&message).unwrap().fiscal_code.is_sandbox());
    message.fiscal_code = Some("RSSMRA85T10A562A".to_owned());
    assert_rejected(
        validate(&message),
        &ValidationError::FiscalCode(FiscalCodeError::CheckCharacter {
            expected: 'S',
            found: 'A',
        }),
        "fiscal_code",
        &["fiscal_code: ", "'A'", "'S'"],
    );
}

#[test]
fn every_error_names_its_field_and_value() {
    let cases = [
        (
            ValidationError::Missing {
                field: "content.subject",
            },
            "content.subject",
            "content.subject is required",
        ),
        (
            ValidationError::FiscalCode(FiscalCodeError::Length { len: 3 }),
            "fiscal_code",
            "fiscal_code: fiscal code has 3 characters, expected 16",
        ),
        (
            ValidationError::SubjectLength {
                len: 9,
                min: 10,
                max: 120,
            },
            "content.subject",
            "content.subject has 9 characters, expected 10..=120",
        ),
        (
            ValidationError::MarkdownLength {
                len: 10_001,
                min: 80,
                max: 10_000,
            },
            "content.markdown",
            "content.markdown has 10001 characters, expected 80..=10000",
        ),
        (
            ValidationError::DueDate {
                value: "tomorrow".to_owned(),
            },
            "content.due_date",
            "content.due_date \"tomorrow\" is not an RFC 3339 timestamp",
        ),
        (
            ValidationError::DueDateTooEarly {
                value: "0000-01-01T00:00:00Z".to_owned(),
            },
            "content.due_date",
            "content.due_date \"0000-01-01T00:00:00Z\" is before 1970-01-01T00:00:00.000Z, the \
             earliest accepted",
        ),
        (
            ValidationError::ControlCharacter {
                field: "content.subject",
                index: 3,
                code: 0,
            },
            "content.subject",
            "content.subject has control character U+0000 at character 3, only tab, line feed \
             and carriage return are allowed",
        ),
        (
            ValidationError::TimeToLive { secs: 3_599 },
            "time_to_live",
            "time_to_live of 3599s is outside 3600..=604800",
        ),
        (
            ValidationError::PaymentAmount { amount: 0 },
            "content.payment_data.amount",
            "content.payment_data.amount of 0 cents is outside 1..=9999999999",
        ),
        (
            ValidationError::PaymentAmountOverServiceLimit {
                amount: 11,
                max: 10,
            },
            "content.payment_data.amount",
            "content.payment_data.amount of 11 cents exceeds the service's \
             max_allowed_payment_amount of 10",
        ),
        (
            ValidationError::NoticeNumber {
                value: "4".to_owned(),
            },
            "content.payment_data.notice_number",
            "content.payment_data.notice_number \"4\" does not match ^[0123][0-9]{17}$",
        ),
        (
            ValidationError::PayeeNotAllowed,
            "content.payment_data.payee",
            "content.payment_data.payee requires the ApiMessageWriteWithPayee permission",
        ),
        (
            ValidationError::PayeeFiscalCode(OrganizationFiscalCodeError::Length { len: 4 }),
            "content.payment_data.payee.fiscal_code",
            "content.payment_data.payee.fiscal_code: organization fiscal code has 4 characters, \
             expected 11",
        ),
        (
            ValidationError::NreLength { len: 14 },
            "content.prescription_data.nre",
            "content.prescription_data.nre has 14 characters, expected 15",
        ),
        (
            ValidationError::IupLength { len: 17 },
            "content.prescription_data.iup",
            "content.prescription_data.iup has 17 characters, expected 1..=16",
        ),
        (
            ValidationError::PrescriberFiscalCode(FiscalCodeError::Length { len: 15 }),
            "content.prescription_data.prescriber_fiscal_code",
            "content.prescription_data.prescriber_fiscal_code: fiscal code has 15 characters, \
             expected 16",
        ),
        (
            ValidationError::FeatureLevel {
                value: "PREMIUM".to_owned(),
            },
            "feature_level_type",
            "feature_level_type \"PREMIUM\" is not STANDARD or ADVANCED",
        ),
        (
            ValidationError::AdvancedNotAllowed,
            "feature_level_type",
            "feature_level_type ADVANCED requires the ApiMessageWriteAdvanced permission",
        ),
    ];
    for (err, field, display) in cases {
        assert_eq!(err.field(), field, "{err:?}");
        assert_eq!(err.to_string(), display, "{err:?}");
    }
}

#[test]
fn io_shaped_json_with_unknown_fields_decodes_and_validates() {
    let json = r#"{
        "fiscal_code": "RSSMRA85T10A562S",
        "time_to_live": 7200,
        "default_addresses": { "email": "mario.rossi@example.it" },
        "content": {
            "subject": "Avviso di pagamento TARI 2026",
            "markdown": "Gentile cittadino, le ricordiamo che è disponibile l'avviso di pagamento della tassa sui rifiuti per l'anno 2026.",
            "due_date": "2026-06-30T00:00:00.000Z",
            "payment_data": {
                "amount": 12345,
                "notice_number": "302000100000009424",
                "invalid_after_due_date": false
            },
            "some_future_field": [1, 2, 3]
        },
        "feature_level_type": "STANDARD"
    }"#;
    let message: NewMessage = serde_json::from_str(json).unwrap();
    assert_eq!(message.fiscal_code.as_deref(), Some(CITIZEN));
    assert_eq!(message.time_to_live, Some(7_200));
    let valid = validate(&message).unwrap();
    assert_eq!(valid.fiscal_code.as_str(), CITIZEN);
    assert_eq!(valid.time_to_live_secs, 7_200);
    assert_eq!(valid.feature_level, FeatureLevel::Standard);
    assert_eq!(
        valid.content.due_date,
        Some(Timestamp::parse_rfc3339("2026-06-30T00:00:00Z").unwrap())
    );
    let payment = valid.content.payment_data.unwrap();
    assert_eq!(payment.amount, 12_345);
    assert_eq!(payment.payee_fiscal_code.as_str(), SENDER_ORG);
    assert_eq!(payment.rpt_id(), "15376371009302000100000009424");

    // Absent fields decode as absent and then fail validation, they do not fail decoding.
    let bare: NewMessage = serde_json::from_str(r#"{"default_addresses": {}}"#).unwrap();
    assert_eq!(bare, NewMessage::default());
    assert_eq!(
        validate(&bare),
        Err(ValidationError::Missing {
            field: "fiscal_code"
        })
    );
}

/// A message with every optional part set, so that each field can be changed alone.
fn full_valid_message() -> ValidMessage {
    let mut message = new_message();
    message.time_to_live = Some(86_400);
    message.feature_level_type = Some("ADVANCED".to_owned());
    message.content.due_date = Some("2026-06-30T00:00:00Z".to_owned());
    message.content.require_secure_channels = Some(false);
    message.content.payment_data = Some(payment(12_345, NOTICE));
    message.content.prescription_data = Some(prescription(
        "080A12345678901",
        Some("IUP0001"),
        Some(DOCTOR),
    ));
    message
        .validate(sender(
            NO_SERVICE_LIMIT,
            SenderCapabilities {
                may_set_payee: true,
                may_send_advanced: true,
            },
        ))
        .unwrap()
}

#[test]
fn content_hash_is_equal_for_identical_messages() {
    let a = full_valid_message();
    let b = full_valid_message();
    assert_eq!(a.content_hash(), b.content_hash());
    assert_eq!(a.content_hash(), a.clone().content_hash());
    let hash = a.content_hash();
    assert_eq!(hash.len(), 64);
    assert!(
        hash.chars().all(|c| matches!(c, '0'..='9' | 'a'..='f')),
        "{hash}"
    );
    // The same request decoded twice hashes the same.
    assert_eq!(
        validate(&new_message()).unwrap().content_hash(),
        validate(&new_message()).unwrap().content_hash()
    );
}

/// A named change of one field of a [`ValidMessage`].
type Mutation = (&'static str, fn(&mut ValidMessage));

#[test]
fn content_hash_changes_with_every_field() {
    let mutations: [Mutation; 17] = [
        ("fiscal_code", |m| {
            m.fiscal_code = FiscalCode::parse(DOCTOR).unwrap();
        }),
        ("subject", |m| m.content.subject.push('!')),
        ("markdown", |m| m.content.markdown.push('!')),
        ("due_date", |m| {
            m.content.due_date = m.content.due_date.map(|d| d.plus(Duration::from_millis(1)));
        }),
        ("due_date removed", |m| m.content.due_date = None),
        ("payment amount", |m| {
            m.content.payment_data.as_mut().unwrap().amount += 1;
        }),
        ("notice_number", |m| {
            m.content.payment_data.as_mut().unwrap().notice_number =
                "302000100000009425".to_owned();
        }),
        ("invalid_after_due_date", |m| {
            m.content
                .payment_data
                .as_mut()
                .unwrap()
                .invalid_after_due_date = true;
        }),
        ("payee", |m| {
            m.content.payment_data.as_mut().unwrap().payee_fiscal_code =
                OrganizationFiscalCode::parse(OTHER_ORG).unwrap();
        }),
        ("payment removed", |m| m.content.payment_data = None),
        ("require_secure_channels", |m| {
            m.content.require_secure_channels = Some(true);
        }),
        ("require_secure_channels unset", |m| {
            m.content.require_secure_channels = None;
        }),
        ("nre", |m| {
            m.content.prescription_data.as_mut().unwrap().nre = "080A12345678902".to_owned();
        }),
        ("iup", |m| {
            m.content.prescription_data.as_mut().unwrap().iup = None;
        }),
        ("prescriber", |m| {
            m.content
                .prescription_data
                .as_mut()
                .unwrap()
                .prescriber_fiscal_code = Some(FiscalCode::parse(CITIZEN).unwrap());
        }),
        ("time_to_live", |m| m.time_to_live_secs += 1),
        ("feature_level", |m| {
            m.feature_level = FeatureLevel::Standard
        }),
    ];
    let base = full_valid_message();
    let mut seen = std::collections::BTreeSet::from([base.content_hash()]);
    for (name, mutate) in mutations {
        let mut changed = base.clone();
        mutate(&mut changed);
        assert_ne!(changed, base, "{name}: the mutation changed nothing");
        assert_ne!(changed.content_hash(), base.content_hash(), "{name}");
        assert!(seen.insert(changed.content_hash()), "{name}: hash collides");
    }
}

fn with_third_party(data: NewThirdPartyData) -> NewMessage {
    let mut message = new_message();
    message.content.third_party_data = Some(data);
    message
}

fn third_party(id: &str, configuration: Option<&str>) -> NewThirdPartyData {
    NewThirdPartyData {
        id: Some(id.to_owned()),
        has_remote_content: Some(true),
        configuration_id: configuration.map(str::to_owned),
        ..Default::default()
    }
}

#[test]
fn third_party_data_is_validated_and_kept() {
    let configuration = crate::ConfigurationId::generate();
    let mut data = third_party("AVV-2026-001", Some(configuration.as_str()));
    data.summary = Some("Avviso di pagamento".into());
    data.original_receipt_date = Some("2026-11-30T10:00:00Z".into());
    data.has_precondition = Some(crate::HasPrecondition::Once);
    let valid = validate(&with_third_party(data)).unwrap();
    let kept = valid.content.third_party_data.unwrap();
    assert_eq!(kept.id, "AVV-2026-001");
    assert_eq!(kept.configuration_id, Some(configuration));
    assert!(kept.has_remote_content && !kept.has_attachments);
    assert_eq!(kept.has_precondition, Some(crate::HasPrecondition::Once));
    // Without it, nothing is kept.
    assert_eq!(
        validate(&new_message()).unwrap().content.third_party_data,
        None
    );
}

#[test]
fn third_party_data_refusals_name_the_field() {
    let ulid = crate::ConfigurationId::generate();
    let field = |data: NewThirdPartyData| validate(&with_third_party(data)).unwrap_err().field();
    let mut no_id = third_party("x", Some(ulid.as_str()));
    no_id.id = None;
    assert_eq!(field(no_id), "content.third_party_data.id");
    assert_eq!(
        field(third_party("", Some(ulid.as_str()))),
        "content.third_party_data.id"
    );
    assert_eq!(
        field(third_party("a\u{7}b", Some(ulid.as_str()))),
        "content.third_party_data.id"
    );
    for not_a_segment in [".", "..", "a/b", "..\\x"] {
        assert_eq!(
            field(third_party(not_a_segment, Some(ulid.as_str()))),
            "content.third_party_data.id",
            "{not_a_segment}"
        );
    }
    assert_eq!(
        field(third_party("x", None)),
        "content.third_party_data.configuration_id"
    );
    assert_eq!(
        field(third_party("x", Some("not-a-ulid"))),
        "content.third_party_data.configuration_id"
    );
    let mut bad_date = third_party("x", Some(ulid.as_str()));
    bad_date.original_receipt_date = Some("yesterday".into());
    assert_eq!(
        field(bad_date),
        "content.third_party_data.original_receipt_date"
    );
    // Display only, without details on the sender's server: no configuration needed.
    let display_only = NewThirdPartyData {
        id: Some("x".into()),
        ..Default::default()
    };
    assert!(validate(&with_third_party(display_only)).is_ok());
}
