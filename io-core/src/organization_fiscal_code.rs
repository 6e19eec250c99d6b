//! The fiscal code of an organization (codice fiscale numerico / partita IVA): 11 digits, the last
//! a check digit. It identifies the institution that owns services; it is not personal data.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize, Serializer};

/// Digits in an organization fiscal code.
pub const ORGANIZATION_FISCAL_CODE_LEN: usize = 11;

/// Digits the check digit is computed from (all but the last).
pub const CHECK_DIGIT_INPUT_LEN: usize = ORGANIZATION_FISCAL_CODE_LEN - 1;

/// An Italian organization fiscal code (partita IVA): 11 ASCII digits, check digit verified.
/// `Debug` and `Display` print the code: organizations are not personal data.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Deserialize)]
#[serde(try_from = "String")] // JSON goes through the same check
pub struct OrganizationFiscalCode(String); // private field: `parse` is the only way in

/// Why a text is not an organization fiscal code, with the facts to fix the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OrganizationFiscalCodeError {
    /// The trimmed input does not have 11 characters.
    #[error(
        "organization fiscal code has {len} characters, expected {expected}",
        expected = ORGANIZATION_FISCAL_CODE_LEN
    )]
    Length {
        /// Characters (not bytes) after trimming.
        len: usize,
    },
    /// A character is not an ASCII digit.
    #[error("character {position} of the organization fiscal code is {found:?}, expected a digit")]
    NotDigit {
        /// 1-based position of the offending character.
        position: usize,
        /// The character found there.
        found: char,
    },
    /// The 11th digit does not match the one computed from the first 10.
    #[error("organization fiscal code check digit is {found:?}, expected {expected:?}")]
    CheckDigit {
        /// The check digit computed from the first 10 digits.
        expected: char,
        /// The 11th digit of the input.
        found: char,
    },
}

impl OrganizationFiscalCode {
    /// Trims and validates `raw`: 11 ASCII digits whose last is the partita IVA check digit.
    /// Never panics, whatever the input.
    pub fn parse(raw: &str) -> Result<Self, OrganizationFiscalCodeError> {
        let code = raw.trim();
        let len = code.chars().count();
        if len != ORGANIZATION_FISCAL_CODE_LEN {
            return Err(OrganizationFiscalCodeError::Length { len });
        }
        if let Some((index, found)) = code.chars().enumerate().find(|(_, c)| !c.is_ascii_digit()) {
            return Err(OrganizationFiscalCodeError::NotDigit {
                position: index + 1,
                found,
            });
        }
        // All 11 characters are ASCII digits, so bytes and characters coincide.
        let (first10, last) = code.as_bytes().split_at(CHECK_DIGIT_INPUT_LEN);
        let found = last.first().map_or('?', |&byte| char::from(byte));
        let expected = check_digit_of(first10).unwrap_or('?');
        if expected != found {
            return Err(OrganizationFiscalCodeError::CheckDigit { expected, found });
        }
        Ok(Self(code.to_owned()))
    }

    /// The 11 digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The check digit (11th) of an organization fiscal code whose first 10 digits are `first10`.
/// `None` unless `first10` is exactly 10 ASCII digits. Public for tests, benches and fixtures
/// that need valid codes.
pub fn compute_check_digit(first10: &str) -> Option<char> {
    check_digit_of(first10.as_bytes())
}

/// Luhn-style rule of the partita IVA: digits at odd positions (1st, 3rd, …) count as they are,
/// digits at even positions are doubled, minus 9 when above 9; the check digit brings the sum
/// to a multiple of 10.
fn check_digit_of(first10: &[u8]) -> Option<char> {
    if first10.len() != CHECK_DIGIT_INPUT_LEN {
        return None;
    }
    let mut sum = 0u32;
    for (index, &byte) in first10.iter().enumerate() {
        if !byte.is_ascii_digit() {
            return None;
        }
        let digit = u32::from(byte - b'0');
        // `index` is 0-based, so odd indexes are the even (2nd, 4th, …) positions.
        sum += if index % 2 == 1 {
            let doubled = digit * 2;
            if doubled > 9 { doubled - 9 } else { doubled }
        } else {
            digit
        };
    }
    char::from_digit((10 - sum % 10) % 10, 10)
}

impl fmt::Display for OrganizationFiscalCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for OrganizationFiscalCode {
    type Err = OrganizationFiscalCodeError;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        Self::parse(raw)
    }
}

impl TryFrom<String> for OrganizationFiscalCode {
    type Error = OrganizationFiscalCodeError;

    fn try_from(raw: String) -> Result<Self, Self::Error> {
        Self::parse(&raw)
    }
}

impl Serialize for OrganizationFiscalCode {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Verified by hand:
    /// - 00000000000: every term 0, check (10 - 0) mod 10 = 0.
    /// - 15376371009 (PagoPA S.p.A.): odd 1+3+6+7+0 = 17; even 5→1, 7→5, 3→6, 1→2, 0→0 = 14;
    ///   31 → (10 - 1) mod 10 = 9.
    /// - 06363391001 (Agenzia delle Entrate): odd 0+3+3+9+0 = 15; even 6→3, 6→3, 3→6, 1→2,
    ///   0→0 = 14; 29 → 1.
    /// - 12345678903: odd 1+3+5+7+9 = 25; even 2→4, 4→8, 6→3, 8→7, 0→0 = 22; 47 → 3.
    const VALID: [&str; 4] = ["00000000000", "15376371009", "06363391001", "12345678903"];

    #[test]
    fn known_codes_are_valid() {
        for code in VALID {
            let parsed = OrganizationFiscalCode::parse(code).unwrap();
            assert_eq!(parsed.as_str(), code);
            assert_eq!(parsed.to_string(), code);
            assert_eq!(
                format!("{parsed:?}"),
                format!("OrganizationFiscalCode({code:?})")
            );
            assert_eq!(compute_check_digit(&code[..10]), code.chars().last());
        }
    }

    #[test]
    fn input_is_trimmed() {
        let parsed: OrganizationFiscalCode = " 15376371009\n".parse().unwrap();
        assert_eq!(parsed.as_str(), "15376371009");
    }

    #[test]
    fn each_error_names_the_rule() {
        for (raw, want) in [
            ("", OrganizationFiscalCodeError::Length { len: 0 }),
            (
                "1537637100",
                OrganizationFiscalCodeError::Length { len: 10 },
            ),
            (
                "153763710090",
                OrganizationFiscalCodeError::Length { len: 12 },
            ),
            (
                "1537637100é",
                OrganizationFiscalCodeError::NotDigit {
                    position: 11,
                    found: 'é',
                },
            ),
            (
                "IT376371009",
                OrganizationFiscalCodeError::NotDigit {
                    position: 1,
                    found: 'I',
                },
            ),
            (
                "15376 71009",
                OrganizationFiscalCodeError::NotDigit {
                    position: 6,
                    found: ' ',
                },
            ),
            (
                "15376371008",
                OrganizationFiscalCodeError::CheckDigit {
                    expected: '9',
                    found: '8',
                },
            ),
        ] {
            assert_eq!(OrganizationFiscalCode::parse(raw), Err(want), "{raw:?}");
        }
        let messages = [
            (
                OrganizationFiscalCodeError::Length { len: 10 },
                "organization fiscal code has 10 characters, expected 11",
            ),
            (
                OrganizationFiscalCodeError::NotDigit {
                    position: 1,
                    found: 'I',
                },
                "character 1 of the organization fiscal code is 'I', expected a digit",
            ),
            (
                OrganizationFiscalCodeError::CheckDigit {
                    expected: '9',
                    found: '8',
                },
                "organization fiscal code check digit is '8', expected '9'",
            ),
        ];
        for (err, message) in messages {
            assert_eq!(err.to_string(), message);
        }
    }

    #[test]
    fn compute_check_digit_rejects_bad_input() {
        for raw in ["", "153763710", "15376371009", "153763710a", "15376371é"] {
            assert_eq!(compute_check_digit(raw), None, "{raw:?}");
        }
    }

    #[test]
    fn serde_uses_the_plain_string_and_validates() {
        let code = OrganizationFiscalCode::parse("06363391001").unwrap();
        assert_eq!(serde_json::to_string(&code).unwrap(), "\"06363391001\"");
        assert_eq!(
            serde_json::from_str::<OrganizationFiscalCode>("\"06363391001\"").unwrap(),
            code
        );
        assert!(serde_json::from_str::<OrganizationFiscalCode>("\"06363391002\"").is_err());
        assert!(serde_json::from_str::<OrganizationFiscalCode>("6363391001").is_err());
    }

    fn valid_code() -> impl Strategy<Value = String> {
        "[0-9]{10}".prop_map(|first10| {
            let check = compute_check_digit(&first10).expect("10 digits");
            format!("{first10}{check}")
        })
    }

    proptest! {
        #[test]
        fn generated_codes_parse_and_round_trip(code in valid_code()) {
            let parsed = OrganizationFiscalCode::parse(&code).unwrap();
            prop_assert_eq!(parsed.as_str(), code.as_str());
            let json = serde_json::to_string(&parsed).unwrap();
            prop_assert_eq!(serde_json::from_str::<OrganizationFiscalCode>(&json).unwrap(), parsed);
        }

        /// Odd positions shift the sum by the difference (1..=9), even positions map digits
        /// through a permutation of 0..=9, and the 11th is compared directly: no single
        /// substitution keeps the check, so every one is rejected by the check digit.
        #[test]
        fn any_single_changed_digit_is_rejected(
            code in valid_code(),
            index in 0..ORGANIZATION_FISCAL_CODE_LEN,
            step in 1u8..10,
        ) {
            let mut bytes = code.into_bytes();
            bytes[index] = b'0' + (bytes[index] - b'0' + step) % 10;
            let changed = String::from_utf8(bytes).unwrap();
            let result = OrganizationFiscalCode::parse(&changed);
            prop_assert!(
                matches!(result, Err(OrganizationFiscalCodeError::CheckDigit { .. })),
                "{} -> {:?}", changed, result
            );
        }

        #[test]
        fn parse_never_panics(raw in any::<String>()) {
            let _ = OrganizationFiscalCode::parse(&raw);
            let _ = compute_check_digit(&raw);
        }

        #[test]
        fn parse_never_panics_on_near_codes(raw in "[ 0-9aé€]{9,13}") {
            let _ = OrganizationFiscalCode::parse(&raw);
        }
    }
}
