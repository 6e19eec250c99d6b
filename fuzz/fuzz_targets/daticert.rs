//! Fuzzes the PEC `daticert.xml` parser (`io_channels::pec::daticert`): receipts arrive from
//! providers' mailboxes, so their attachments are untrusted input. It must never panic, and a
//! document it accepts, written back in the canonical form, must parse to the same value (the
//! simulator writes what the channel reads).
//!
//! Run: `RUSTC_BOOTSTRAP=1 cargo fuzz run daticert fuzz/seeds/daticert` (or `.ci/fuzz.sh`).
#![no_main]

use io_channels::pec::daticert::Daticert;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(document) = Daticert::parse(data) else {
        return;
    };
    let written = document.to_xml();
    assert_eq!(
        Daticert::parse(written.as_bytes()).as_ref(),
        Ok(&document),
        "the canonical form of an accepted document must parse to the same value:\n{written}"
    );
});
