//! Fuzzes IO's `NewMessage` JSON: `serde_json` decoding, then `NewMessage::validate` under
//! several sender limits (payment ceiling 0, 10,000 and `u64::MAX`, every capability pair). It
//! must never panic; an accepted message must satisfy io-reference §6 (lengths, time-to-live,
//! amount within the limit, capabilities respected), and a rejection must name its field.
//!
//! Run: `RUSTC_BOOTSTRAP=1 cargo fuzz run new_message fuzz/seeds/new_message` (or `.ci/fuzz.sh`).
#![no_main]

use io_core::message::{
    MARKDOWN_CHARS, NOTICE_NUMBER_LEN, PAYMENT_AMOUNT_CENTS, SUBJECT_CHARS, TIME_TO_LIVE_SECS,
};
use io_core::{FeatureLevel, NewMessage, OrganizationFiscalCode, SenderCapabilities, SenderLimits};
use libfuzzer_sys::fuzz_target;

/// Payment ceilings: payments forbidden, a typical service, no ceiling.
const MAX_AMOUNTS: [u64; 3] = [0, 10_000, u64::MAX];

fuzz_target!(|data: &[u8]| {
    let Ok(message) = serde_json::from_slice::<NewMessage>(data) else {
        return;
    };
    let organization =
        OrganizationFiscalCode::parse("15376371009").expect("a valid organization code");
    for max_allowed_payment_amount in MAX_AMOUNTS {
        for (may_set_payee, may_send_advanced) in
            [(false, false), (false, true), (true, false), (true, true)]
        {
            let capabilities = SenderCapabilities {
                may_set_payee,
                may_send_advanced,
            };
            let limits = SenderLimits {
                max_allowed_payment_amount,
                organization_fiscal_code: &organization,
                capabilities,
            };
            match message.validate(limits) {
                Err(error) => {
                    assert!(!error.field().is_empty(), "no field for {error:?}");
                    assert!(!error.to_string().is_empty());
                }
                Ok(valid) => {
                    let content = &valid.content;
                    let subject = content.subject.chars().count();
                    assert!((SUBJECT_CHARS.0..=SUBJECT_CHARS.1).contains(&subject));
                    let markdown = content.markdown.chars().count();
                    assert!((MARKDOWN_CHARS.0..=MARKDOWN_CHARS.1).contains(&markdown));
                    assert!(
                        (TIME_TO_LIVE_SECS.0..=TIME_TO_LIVE_SECS.1)
                            .contains(&valid.time_to_live_secs)
                    );
                    if valid.feature_level == FeatureLevel::Advanced {
                        assert!(
                            may_send_advanced,
                            "ADVANCED accepted without the permission"
                        );
                    }
                    if let Some(payment) = &content.payment_data {
                        assert!(payment.amount <= max_allowed_payment_amount);
                        assert!(
                            (PAYMENT_AMOUNT_CENTS.0..=PAYMENT_AMOUNT_CENTS.1)
                                .contains(&payment.amount)
                        );
                        assert_eq!(payment.notice_number.len(), NOTICE_NUMBER_LEN);
                        if !may_set_payee {
                            assert_eq!(payment.payee_fiscal_code, organization);
                        }
                    }
                    // The content hash must be computable (serialisation of a valid message).
                    assert_eq!(valid.content_hash().len(), 64);
                }
            }
        }
    }
});
