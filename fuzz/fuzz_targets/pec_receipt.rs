//! Fuzzes PEC receipt recognition (`io_channels::pec::receipt`): every message in the sender's
//! mailbox is read, whoever sent it, so MIME parsing, header checks and the `daticert.xml`
//! attachment are untrusted input, and so is what the S/MIME check (`pec::signature`) is
//! given. It must never panic; a receipt it accepts must agree with its own certification
//! data, and no input verifies against a key the fuzzer never had.
//!
//! Run: `RUSTC_BOOTSTRAP=1 cargo fuzz run pec_receipt fuzz/seeds/pec_receipt` (or `.ci/fuzz.sh`).
#![no_main]

use std::sync::OnceLock;

use io_channels::pec::compose::Signer;
use io_channels::pec::receipt::Receipt;
use io_channels::pec::signature::{self, ProviderCertificates, Signature};
use libfuzzer_sys::fuzz_target;

/// A provider whose private key is made afresh and never leaves the process.
fn trusted() -> &'static ProviderCertificates {
    static TRUSTED: OnceLock<ProviderCertificates> = OnceLock::new();
    TRUSTED.get_or_init(|| {
        let signer = Signer::generate("fuzz").expect("a key");
        ProviderCertificates::from_pem(&[signer.certificate_pem()]).expect("its certificate")
    })
}

/// libFuzzer's panic hook aborts at once. A panic raised inside mail-parser (its reachable
/// `debug_assert!`, see `Receipt::parse`) or inside the openssl crate (its unwrap of OpenSSL's
/// error text as UTF-8, see `pec::signature`) must unwind to the `catch_unwind` that contains
/// it; any other panic is a finding.
fn contain_mail_parser_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let abort = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let contained = info.location().is_some_and(|at| {
                at.file().contains("mail-parser") || at.file().contains("/openssl-0.10")
            });
            if !contained {
                abort(info);
            }
        }));
    });
}

fuzz_target!(|data: &[u8]| {
    contain_mail_parser_panics();
    assert!(matches!(
        signature::check(data, trusted()),
        Signature::Unverified { .. }
    ));
    let Ok(receipt) = Receipt::parse(data) else {
        return;
    };
    assert_eq!(receipt.kind, receipt.data.kind);
    assert_eq!(Some(receipt.refers_to.as_str()), receipt.data.msgid.as_deref());
});
