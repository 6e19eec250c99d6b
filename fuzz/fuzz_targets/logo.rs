//! Fuzzes `Logo::from_png` with arbitrary bytes (an uploaded logo is anyone's file): it must
//! never panic, and whatever it accepts must be within the limits, start with PNG's signature,
//! and read back from a store (`Logo::from_stored`) as the same logo.
//!
//! Run: `RUSTC_BOOTSTRAP=1 cargo fuzz run logo fuzz/seeds/logo` (or `.ci/fuzz.sh`).
#![no_main]

use io_core::{Logo, MAX_LOGO_BYTES, MAX_LOGO_SIDE, Timestamp};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let at = Timestamp::from_millis(1_700_000_000_000);
    let Ok(logo) = Logo::from_png(data.to_vec(), at) else {
        return;
    };
    assert!(logo.png().len() <= MAX_LOGO_BYTES);
    assert!((1..=MAX_LOGO_SIDE).contains(&logo.width()));
    assert!((1..=MAX_LOGO_SIDE).contains(&logo.height()));
    assert!(logo.png().starts_with(b"\x89PNG\r\n\x1a\n"));
    let kept = Logo::from_stored(logo.png().to_vec(), at).expect("an accepted logo reads back");
    assert_eq!(kept, logo);
});
