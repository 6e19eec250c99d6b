//! Fuzzes `FiscalCode::parse` with arbitrary text: it must never panic, and whatever it accepts
//! must be a canonical code (16 upper-case ASCII characters that re-parse to themselves) whose
//! check character is right (unless it is the sandbox code) and whose hash is 64 lowercase hex.
//!
//! Run: `RUSTC_BOOTSTRAP=1 cargo fuzz run fiscal_code fuzz/seeds/fiscal_code` (or `.ci/fuzz.sh`).
#![no_main]

use io_core::fiscal_code::{FISCAL_CODE_HASH_LEN, FISCAL_CODE_LEN, compute_check_character};
use io_core::{FiscalCode, SANDBOX_FISCAL_CODE};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(code) = FiscalCode::parse(text) else {
        return;
    };
    let canonical = code.as_str();
    assert_eq!(
        canonical.len(),
        FISCAL_CODE_LEN,
        "not 16 bytes: {canonical:?}"
    );
    assert!(
        canonical
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()),
        "not upper-case ASCII: {canonical:?}"
    );
    // The accepted code is canonical: parsing it again gives the same code.
    let again = FiscalCode::parse(canonical).expect("an accepted code re-parses");
    assert_eq!(again, code);
    assert_eq!(again.as_str(), canonical);
    assert_eq!(code.is_sandbox(), canonical == SANDBOX_FISCAL_CODE);
    if !code.is_sandbox() {
        let (first15, last) = canonical.split_at(FISCAL_CODE_LEN - 1);
        let expected = compute_check_character(first15).expect("15 characters of [A-Z0-9]");
        assert_eq!(Some(expected), last.chars().next(), "wrong check character");
    }
    let hash = code.hash();
    assert_eq!(hash.as_str().len(), FISCAL_CODE_HASH_LEN);
    assert!(
        hash.as_str()
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')),
        "hash not lowercase hex: {}",
        hash.as_str()
    );
});
