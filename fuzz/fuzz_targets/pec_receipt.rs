//! Fuzzes PEC receipt recognition (`io_channels::pec::receipt`): every message in the sender's
//! mailbox is read, whoever sent it, so MIME parsing, header checks and the `daticert.xml`
//! attachment are untrusted input. It must never panic; a receipt it accepts must agree with
//! its own certification data.
//!
//! Run: `RUSTC_BOOTSTRAP=1 cargo fuzz run pec_receipt fuzz/seeds/pec_receipt` (or `.ci/fuzz.sh`).
#![no_main]

use io_channels::pec::receipt::Receipt;
use libfuzzer_sys::fuzz_target;

/// libFuzzer's panic hook aborts at once. A panic raised inside mail-parser (its reachable
/// `debug_assert!`, see `Receipt::parse`) must unwind to the `catch_unwind` that contains it;
/// any other panic is a finding.
fn contain_mail_parser_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let abort = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let in_mail_parser = info
                .location()
                .is_some_and(|at| at.file().contains("mail-parser"));
            if !in_mail_parser {
                abort(info);
            }
        }));
    });
}

fuzz_target!(|data: &[u8]| {
    contain_mail_parser_panics();
    let Ok(receipt) = Receipt::parse(data) else {
        return;
    };
    assert_eq!(receipt.kind, receipt.data.kind);
    assert_eq!(Some(receipt.refers_to.as_str()), receipt.data.msgid.as_deref());
});
