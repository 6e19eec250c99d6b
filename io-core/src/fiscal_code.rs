//! The Italian fiscal code (codice fiscale) that identifies a citizen: parsed once at the edge,
//! shape and check character verified, and hashed the way IO hashes it wherever a citizen must
//! not be identifiable (logs, journals, the subscriptions feed).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize, Serializer};
use sha2::{Digest, Sha256};

/// Characters in a fiscal code: 15 for the person and the check character.
pub const FISCAL_CODE_LEN: usize = 16;

/// Characters the check character is computed from (all but the last).
pub const CHECK_INPUT_LEN: usize = FISCAL_CODE_LEN - 1;

/// IO's test fiscal code. It does not satisfy the check character (that would be `I`), yet
/// institutions use it against IO's sandbox, so it is accepted as a documented exception.
pub const SANDBOX_FISCAL_CODE: &str = "AAAAAA00A00A000A";

/// Letters that replace the digits 0..9 when two people would otherwise share a code (omocodia).
const OMOCODIA_LETTERS: &[u8; 10] = b"LMNPQRSTUV";

/// Letters that encode the month of birth, January..December.
const MONTH_LETTERS: &[u8; 12] = b"ABCDEHLMPRST";

/// Letters in the alphabet the check character is taken from (`sum mod 26 → 'A' + n`).
const CHECK_MODULUS: u32 = 26;

/// Value of a character at an odd (1st, 3rd, …) position, indexed by letter (`A` = 0); a digit
/// `d` has the value of the `d`-th letter (`0`/`A` → 1, `1`/`B` → 0, …). Table of DM 23/12/1976.
const ODD_VALUES: [u8; 26] = [
    1, 0, 5, 7, 9, 13, 15, 17, 19, 21, 2, 4, 18, 20, 11, 3, 6, 8, 12, 14, 16, 10, 22, 25, 24, 23,
];

/// Bytes of the SHA-256 shown by `Debug` (8 hex digits): enough to tell codes apart in a log,
/// too few to be a usable pseudonym.
const DEBUG_HASH_PREFIX_BYTES: usize = 4;

/// Hex characters in a [`FiscalCodeHash`] (SHA-256, 32 bytes).
pub const FISCAL_CODE_HASH_LEN: usize = 64;

/// What each position of a fiscal code accepts (the regex of IO's OpenAPI, position by position).
#[derive(Clone, Copy)]
enum Slot {
    /// `[A-Z]`: surname, name, place of birth, check character.
    Letter,
    /// `[0-9LMNPQRSTUV]`: year and day of birth, place code; a digit or its omocodia letter.
    Digit,
    /// `[ABCDEHLMPRST]`: month of birth.
    Month,
}

use Slot::{Digit, Letter, Month};

/// `^[A-Z]{6}[0-9LMNPQRSTUV]{2}[ABCDEHLMPRST][0-9LMNPQRSTUV]{2}[A-Z][0-9LMNPQRSTUV]{3}[A-Z]$`
const SHAPE: [Slot; FISCAL_CODE_LEN] = [
    Letter, Letter, Letter, Letter, Letter, Letter, Digit, Digit, Month, Digit, Digit, Letter,
    Digit, Digit, Digit, Letter,
];

impl Slot {
    fn accepts(self, byte: u8) -> bool {
        match self {
            Letter => byte.is_ascii_uppercase(),
            Digit => byte.is_ascii_digit() || OMOCODIA_LETTERS.contains(&byte),
            Month => MONTH_LETTERS.contains(&byte),
        }
    }

    fn expected(self) -> &'static str {
        match self {
            Letter => "a letter",
            Digit => "a digit or an omocodia letter (L-V)",
            Month => "a month letter (ABCDEHLMPRST)",
        }
    }
}

/// An Italian fiscal code, upper-case, shape and check character verified (or the sandbox
/// code). `Debug` prints a short hash only, so a code never reaches a log by accident;
/// `Display` prints the code, for API responses.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(try_from = "String")] // JSON goes through the same check
pub struct FiscalCode(String); // private field: `parse` is the only way in

/// Why a text is not a fiscal code: the rule that failed, with the facts to fix the input.
/// It never contains the code itself, so it can be logged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FiscalCodeError {
    /// The trimmed input does not have 16 characters.
    #[error(
        "fiscal code has {len} characters, expected {expected}",
        expected = FISCAL_CODE_LEN
    )]
    Length {
        /// Characters (not bytes) after trimming.
        len: usize,
    },
    /// A character is not allowed at its position.
    #[error("character {position} of the fiscal code is {found:?}, expected {expected}")]
    Character {
        /// 1-based position of the offending character.
        position: usize,
        /// The character found there, after upper-casing.
        found: char,
        /// What the position accepts, e.g. "a month letter (ABCDEHLMPRST)".
        expected: &'static str,
    },
    /// The 16th character does not match the one computed from the first 15.
    #[error("fiscal code check character is {found:?}, expected {expected:?}")]
    CheckCharacter {
        /// The check character computed from the first 15 characters.
        expected: char,
        /// The 16th character of the input.
        found: char,
    },
}

impl FiscalCode {
    /// Trims, upper-cases and validates `raw`: the shape (omocodia letters allowed in digit
    /// positions), then the check character. [`SANDBOX_FISCAL_CODE`] is accepted despite its
    /// check character. Never panics, whatever the input.
    pub fn parse(raw: &str) -> Result<Self, FiscalCodeError> {
        let trimmed = raw.trim();
        let len = trimmed.chars().count();
        if len != FISCAL_CODE_LEN {
            return Err(FiscalCodeError::Length { len });
        }
        let code = trimmed.to_ascii_uppercase();
        let bytes = check_shape(&code)?;
        if code != SANDBOX_FISCAL_CODE {
            check_check_character(&bytes)?;
        }
        Ok(Self(code))
    }

    /// The code, upper-case.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this is IO's sandbox code, which institutions use for tests.
    pub fn is_sandbox(&self) -> bool {
        self.0 == SANDBOX_FISCAL_CODE
    }

    /// IO's pseudonym for this citizen, `lowercase(hex(sha256(uppercase(code))))`: the only form
    /// allowed in logs, journals, metrics and the subscriptions feed.
    pub fn hash(&self) -> FiscalCodeHash {
        FiscalCodeHash(hex::encode(Sha256::digest(self.0.as_bytes())))
    }
}

/// Checks every position against [`SHAPE`]; on success the code is 16 ASCII bytes.
fn check_shape(code: &str) -> Result<[u8; FISCAL_CODE_LEN], FiscalCodeError> {
    let mut bytes = [0; FISCAL_CODE_LEN];
    let mut filled = 0;
    for ((found, slot), byte) in code.chars().zip(SHAPE).zip(bytes.iter_mut()) {
        match u8::try_from(found) {
            Ok(ascii) if slot.accepts(ascii) => *byte = ascii,
            _ => {
                return Err(FiscalCodeError::Character {
                    position: filled + 1,
                    found,
                    expected: slot.expected(),
                });
            }
        }
        filled += 1;
    }
    if filled == FISCAL_CODE_LEN {
        Ok(bytes)
    } else {
        Err(FiscalCodeError::Length { len: filled })
    }
}

fn check_check_character(bytes: &[u8; FISCAL_CODE_LEN]) -> Result<(), FiscalCodeError> {
    let (first15, last) = bytes.split_at(CHECK_INPUT_LEN);
    let found = last.first().map_or('?', |&byte| char::from(byte));
    match check_character_of(first15) {
        Some(expected) if expected == found => Ok(()),
        // The shape check admits only [A-Z0-9] in the first 15, so `None` cannot happen here;
        // reporting it as a mismatch keeps the function total.
        Some(expected) => Err(FiscalCodeError::CheckCharacter { expected, found }),
        None => Err(FiscalCodeError::CheckCharacter {
            expected: '?',
            found,
        }),
    }
}

/// The check character (16th) of a fiscal code whose first 15 characters are `first15`, by the
/// tables of DM 23/12/1976. `first15` must be exactly 15 characters of `[A-Z0-9]` (upper-case,
/// already normalised); the shape is not checked. `None` otherwise. Public for tests, benches
/// and fixtures that need valid codes.
pub fn compute_check_character(first15: &str) -> Option<char> {
    let bytes = first15.as_bytes();
    if bytes.len() != CHECK_INPUT_LEN {
        return None;
    }
    check_character_of(bytes)
}

/// The check character of 15 bytes of `[A-Z0-9]`, `None` on any other byte or length.
fn check_character_of(first15: &[u8]) -> Option<char> {
    if first15.len() != CHECK_INPUT_LEN {
        return None;
    }
    let mut sum = 0u32;
    for (index, &byte) in first15.iter().enumerate() {
        // A digit stands for the letter with the same index: 0 → A, 1 → B, …
        let letter_index = match byte {
            b'0'..=b'9' => byte - b'0',
            b'A'..=b'Z' => byte - b'A',
            _ => return None,
        };
        // `index` is 0-based, so even indexes are the odd (1st, 3rd, …) positions.
        let value = if index % 2 == 0 {
            *ODD_VALUES.get(usize::from(letter_index))?
        } else {
            letter_index
        };
        sum += u32::from(value);
    }
    let offset = u8::try_from(sum % CHECK_MODULUS).ok()?;
    Some(char::from(b'A' + offset))
}

impl fmt::Debug for FiscalCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FiscalCode(#")?;
        for byte in Sha256::digest(self.0.as_bytes())
            .iter()
            .take(DEBUG_HASH_PREFIX_BYTES)
        {
            write!(f, "{byte:02x}")?;
        }
        f.write_str(")")
    }
}

impl fmt::Display for FiscalCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for FiscalCode {
    type Err = FiscalCodeError;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        Self::parse(raw)
    }
}

impl TryFrom<String> for FiscalCode {
    type Error = FiscalCodeError;

    fn try_from(raw: String) -> Result<Self, Self::Error> {
        Self::parse(&raw)
    }
}

impl Serialize for FiscalCode {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

/// IO's pseudonym of a fiscal code: 64 lowercase hex characters of the SHA-256 of the upper-case
/// code. Stable across systems, so it can be matched against IO's own logs and feeds.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Deserialize)]
#[serde(try_from = "String")]
pub struct FiscalCodeHash(String);

/// Why a text is not a [`FiscalCodeHash`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FiscalCodeHashError {
    /// The text does not have 64 characters.
    #[error(
        "fiscal code hash has {len} characters, expected {expected}",
        expected = FISCAL_CODE_HASH_LEN
    )]
    Length {
        /// Characters (not bytes) in the text.
        len: usize,
    },
    /// A character is not a lowercase hex digit.
    #[error("character {position} of the fiscal code hash is {found:?}, expected 0-9 or a-f")]
    NotLowerHex {
        /// 1-based position of the offending character.
        position: usize,
        /// The character found there.
        found: char,
    },
}

impl FiscalCodeHash {
    /// Accepts exactly 64 lowercase hex characters, untrimmed: hashes are machine-made, so any
    /// other form means the data came from somewhere else.
    pub fn parse(raw: &str) -> Result<Self, FiscalCodeHashError> {
        let len = raw.chars().count();
        if len != FISCAL_CODE_HASH_LEN {
            return Err(FiscalCodeHashError::Length { len });
        }
        match raw
            .chars()
            .enumerate()
            .find(|(_, c)| !matches!(c, '0'..='9' | 'a'..='f'))
        {
            Some((index, found)) => Err(FiscalCodeHashError::NotLowerHex {
                position: index + 1,
                found,
            }),
            None => Ok(Self(raw.to_owned())),
        }
    }

    /// The 64 lowercase hex characters.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for FiscalCodeHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for FiscalCodeHash {
    type Error = FiscalCodeHashError;

    fn try_from(raw: String) -> Result<Self, Self::Error> {
        Self::parse(&raw)
    }
}

impl Serialize for FiscalCodeHash {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Published examples, each verified by hand against the DM 23/12/1976 tables:
    /// - RSSMRA85T10A562S: odd R8 S12 R8 8→19 T14 0→1 5→13 2→5 = 80; even S18 M12 A0 5 1 A0 6
    ///   = 42; 122 mod 26 = 18 → S.
    /// - MRTMTT25D09F205Z: odd M18 T14 T14 2→5 D7 9→21 2→5 5→13 = 97; even R17 M12 T19 5 0 F5
    ///   0 = 58; 155 mod 26 = 25 → Z.
    /// - RSSMRAURTMLARSNL (the first with all seven digits replaced by omocodia letters): odd
    ///   R8 S12 R8 U16 T14 L4 R8 N20 = 90; even S18 M12 A0 R17 M12 A0 S18 = 77; 167 mod 26 =
    ///   11 → L.
    const PUBLISHED: [&str; 3] = ["RSSMRA85T10A562S", "MRTMTT25D09F205Z", "RSSMRAURTMLARSNL"];

    // ---- An independent oracle, written without the tables above ----

    /// The odd-position table inverted: the letter at index `v` is the one whose odd value is
    /// `v` (B → 0, A → 1, K → 2, …). Digits count as the letter with the same index.
    const ODD_BY_VALUE: &str = "BAKPLCQDREVOSFTGUHMINJWZYX";
    /// Position kinds: L letter, D digit or omocodia letter, M month letter.
    const MASK: &str = "LLLLLLDDMDDLDDDL";

    fn oracle_shape_ok(code: &str) -> bool {
        code.len() == MASK.len()
            && code.chars().zip(MASK.chars()).all(|(c, kind)| match kind {
                'L' => c.is_ascii_uppercase(),
                'D' => c.is_ascii_digit() || (('L'..='V').contains(&c) && c != 'O'),
                _ => "ABCDEHLMPRST".contains(c),
            })
    }

    fn oracle_check(first15: &str) -> char {
        let mut sum = 0;
        for (i, c) in first15.chars().enumerate() {
            let base36 = c.to_digit(36).expect("alphanumeric");
            let position = i + 1;
            sum += if position % 2 == 1 {
                let as_letter = if c.is_ascii_digit() {
                    char::from_digit(base36 + 10, 36)
                        .expect("digit maps to a..j")
                        .to_ascii_uppercase()
                } else {
                    c
                };
                ODD_BY_VALUE.find(as_letter).expect("a letter") as u32
            } else if c.is_ascii_digit() {
                base36
            } else {
                base36 - 10
            };
        }
        char::from_digit(sum % 26 + 10, 36)
            .expect("0..26 + 10 < 36")
            .to_ascii_uppercase()
    }

    fn oracle_valid(code: &str) -> bool {
        oracle_shape_ok(code)
            && (code == SANDBOX_FISCAL_CODE || code.ends_with(oracle_check(&code[..15])))
    }

    fn with_char(code: &str, index: usize, c: char) -> String {
        code.chars()
            .enumerate()
            .map(|(i, old)| if i == index { c } else { old })
            .collect()
    }

    #[test]
    fn oracle_table_is_a_permutation_of_the_alphabet() {
        let mut letters: Vec<char> = ODD_BY_VALUE.chars().collect();
        letters.sort_unstable();
        assert_eq!(letters, ('A'..='Z').collect::<Vec<_>>());
    }

    #[test]
    fn published_examples_are_valid() {
        for code in PUBLISHED {
            let parsed = FiscalCode::parse(code).unwrap();
            assert_eq!(parsed.as_str(), code);
            assert_eq!(parsed.to_string(), code);
            assert!(!parsed.is_sandbox());
            assert_eq!(compute_check_character(&code[..15]), code.chars().last());
            assert_eq!(Some(oracle_check(&code[..15])), code.chars().last());
        }
    }

    #[test]
    fn computed_codes_are_valid() {
        for first15 in ["BNCGPP70A01H501", "VRDLCU99S41L219", "ZZZZZZ99T71Z999"] {
            let check = compute_check_character(first15).unwrap();
            assert_eq!(check, oracle_check(first15));
            let code = format!("{first15}{check}");
            assert_eq!(FiscalCode::parse(&code).unwrap().as_str(), code);
        }
    }

    #[test]
    fn omocodia_variants_parse() {
        let base = "RSSMRA85T10A562S";
        let digit_indexes = [6, 7, 9, 10, 12, 13, 14];
        // Every subset of the seven digit positions replaced by its omocodia letter.
        for mask in 0u32..1 << digit_indexes.len() {
            let mut first15: Vec<char> = base[..15].chars().collect();
            for (bit, &index) in digit_indexes.iter().enumerate() {
                if mask & (1 << bit) != 0 {
                    let digit = first15[index].to_digit(10).unwrap() as usize;
                    first15[index] = char::from(OMOCODIA_LETTERS[digit]);
                }
            }
            let first15: String = first15.into_iter().collect();
            let code = format!("{first15}{}", compute_check_character(&first15).unwrap());
            assert!(oracle_valid(&code), "{code}");
            assert!(FiscalCode::parse(&code).is_ok(), "{code}");
        }
        // Hand-verified: only the last digit replaced, 2 → N: 122 - 5 + 20 = 137 → 7 → H.
        assert!(FiscalCode::parse("RSSMRA85T10A56NH").is_ok());
    }

    #[test]
    fn sandbox_code_is_accepted_despite_its_check_character() {
        assert_eq!(compute_check_character("AAAAAA00A00A000"), Some('I'));
        let sandbox = FiscalCode::parse(SANDBOX_FISCAL_CODE).unwrap();
        assert!(sandbox.is_sandbox());
        assert!(
            FiscalCode::parse(" aaaaaa00a00a000a\n")
                .unwrap()
                .is_sandbox()
        );
        // Its correctly checked sibling is an ordinary code.
        assert!(!FiscalCode::parse("AAAAAA00A00A000I").unwrap().is_sandbox());
    }

    #[test]
    fn input_is_trimmed_and_upper_cased() {
        let parsed = FiscalCode::parse("  rssMRA85t10a562s\t\n").unwrap();
        assert_eq!(parsed.as_str(), "RSSMRA85T10A562S");
        assert_eq!(parsed, "RSSMRA85T10A562S".parse().unwrap());
    }

    #[test]
    fn length_errors_count_characters() {
        for (raw, len) in [
            ("", 0),
            ("   ", 0),
            ("RSSMRA85T10A562", 15),
            ("RSSMRA85T10A562SS", 17),
            ("RSSMRA85T10A56é", 15), // 16 bytes, 15 characters
        ] {
            assert_eq!(
                FiscalCode::parse(raw),
                Err(FiscalCodeError::Length { len }),
                "{raw:?}"
            );
        }
        assert_eq!(
            FiscalCodeError::Length { len: 15 }.to_string(),
            "fiscal code has 15 characters, expected 16"
        );
    }

    #[test]
    fn character_errors_name_position_and_rule() {
        let digit = "a digit or an omocodia letter (L-V)";
        for (raw, position, found, expected) in [
            ("1SSMRA85T10A562S", 1, '1', "a letter"),
            ("RSSMRAA5T10A562S", 7, 'A', digit),
            ("RSSMRA8OT10A562S", 8, 'O', digit),
            ("RSSMRA85F10A562S", 9, 'F', "a month letter (ABCDEHLMPRST)"),
            ("RSSMRA85T10A5W2S", 14, 'W', digit),
            ("RSSMRA85T10A5622", 16, '2', "a letter"),
            ("RSSMRà85T10A562S", 6, 'à', "a letter"),
            ("RSSMRA85T10A562€", 16, '€', "a letter"),
            ("RSS-RA85T10A562S", 4, '-', "a letter"),
        ] {
            assert_eq!(
                FiscalCode::parse(raw),
                Err(FiscalCodeError::Character {
                    position,
                    found,
                    expected
                }),
                "{raw:?}"
            );
        }
        assert_eq!(
            FiscalCode::parse("RSSMRA85F10A562S")
                .unwrap_err()
                .to_string(),
            "character 9 of the fiscal code is 'F', expected a month letter (ABCDEHLMPRST)"
        );
    }

    #[test]
    fn wrong_check_character_names_both() {
        let err = FiscalCode::parse("RSSMRA85T10A562A").unwrap_err();
        assert_eq!(
            err,
            FiscalCodeError::CheckCharacter {
                expected: 'S',
                found: 'A'
            }
        );
        assert_eq!(
            err.to_string(),
            "fiscal code check character is 'A', expected 'S'"
        );
    }

    #[test]
    fn compute_check_character_rejects_bad_input() {
        for raw in [
            "",
            "RSSMRA85T10A56",
            "RSSMRA85T10A5622",
            "rssmra85t10a562",
            "RSSMRA85T10A56-",
            "RSSMRA85T10A56é",
        ] {
            assert_eq!(compute_check_character(raw), None, "{raw:?}");
        }
    }

    #[test]
    fn debug_shows_a_hash_prefix_never_the_code() {
        let code = FiscalCode::parse("RSSMRA85T10A562S").unwrap();
        let debug = format!("{code:?}");
        assert_eq!(debug, "FiscalCode(#bd807ad7)");
        assert!(!debug.contains("RSSMRA"));
        assert!(code.hash().as_str().starts_with(&debug[12..20]));
        assert_eq!(format!("{:?}", Some(&code)), "Some(FiscalCode(#bd807ad7))");
    }

    #[test]
    fn hash_is_ios_form() {
        // printf 'RSSMRA85T10A562S' | sha256sum
        let expected = "bd807ad78163541b86ec74dec91f028a83299ba3adc7e1345f8c213573cd22be";
        let hash = FiscalCode::parse(" rssmra85t10a562s").unwrap().hash();
        assert_eq!(hash.as_str(), expected);
        assert_eq!(hash.to_string(), expected);
        assert_eq!(FiscalCodeHash::parse(expected), Ok(hash.clone()));
        let json = serde_json::to_string(&hash).unwrap();
        assert_eq!(json, format!("\"{expected}\""));
        assert_eq!(serde_json::from_str::<FiscalCodeHash>(&json).unwrap(), hash);
    }

    #[test]
    fn malformed_hashes_are_rejected() {
        let good = "bd807ad78163541b86ec74dec91f028a83299ba3adc7e1345f8c213573cd22be";
        assert_eq!(
            FiscalCodeHash::parse(&good[1..]),
            Err(FiscalCodeHashError::Length { len: 63 })
        );
        assert_eq!(
            FiscalCodeHash::parse(&good.replacen('b', "B", 1)),
            Err(FiscalCodeHashError::NotLowerHex {
                position: 1,
                found: 'B'
            })
        );
        assert_eq!(
            FiscalCodeHash::parse(&format!("{}g", &good[..63])),
            Err(FiscalCodeHashError::NotLowerHex {
                position: 64,
                found: 'g'
            })
        );
        assert!(serde_json::from_str::<FiscalCodeHash>("\"RSSMRA85T10A562S\"").is_err());
    }

    #[test]
    fn serde_uses_the_plain_string_and_validates() {
        let code = FiscalCode::parse("MRTMTT25D09F205Z").unwrap();
        assert_eq!(
            serde_json::to_string(&code).unwrap(),
            "\"MRTMTT25D09F205Z\""
        );
        assert_eq!(
            serde_json::from_str::<FiscalCode>("\" mrtmtt25d09f205z \"").unwrap(),
            code
        );
        let err = serde_json::from_str::<FiscalCode>("\"MRTMTT25D09F205A\"").unwrap_err();
        assert!(err.to_string().contains("check character"), "{err}");
        assert!(serde_json::from_str::<FiscalCode>("42").is_err());
    }

    #[test]
    fn one_changed_character_can_land_on_the_sandbox_code() {
        // The only single-character change of a valid code that parses.
        assert!(FiscalCode::parse(&with_char("AAAAAA00A00A000I", 15, 'A')).is_ok());
        assert!(FiscalCode::parse(&with_char("AAAAAA00A00A000I", 15, 'B')).is_err());
    }

    // ---- Property tests ----

    const ALPHANUMERIC: &[u8; 36] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

    /// Valid codes: random letters, digits and month, any subset of the seven digit positions
    /// replaced by its omocodia letter, then the computed check character.
    fn valid_code() -> impl Strategy<Value = String> {
        (proptest::array::uniform15(any::<u8>()), 0u8..128).prop_map(|(seeds, omocodia)| {
            let mut digit_slot = 0;
            let mut first15 = String::with_capacity(FISCAL_CODE_LEN);
            for (slot, seed) in SHAPE.iter().zip(seeds) {
                let byte = match slot {
                    Letter => b'A' + seed % 26,
                    Month => MONTH_LETTERS[usize::from(seed) % 12],
                    Digit => {
                        let digit = seed % 10;
                        digit_slot += 1;
                        if omocodia & (1 << (digit_slot - 1)) != 0 {
                            OMOCODIA_LETTERS[usize::from(digit)]
                        } else {
                            b'0' + digit
                        }
                    }
                };
                first15.push(char::from(byte));
            }
            let check = compute_check_character(&first15).expect("15 alphanumerics");
            format!("{first15}{check}")
        })
    }

    proptest! {
        #[test]
        fn generated_codes_parse_and_round_trip(code in valid_code()) {
            prop_assert!(oracle_valid(&code));
            let parsed = FiscalCode::parse(&code).unwrap();
            prop_assert_eq!(parsed.as_str(), code.as_str());
            let json = serde_json::to_string(&parsed).unwrap();
            prop_assert_eq!(&json, &format!("\"{code}\""));
            prop_assert_eq!(serde_json::from_str::<FiscalCode>(&json).unwrap(), parsed.clone());
            let messy = format!(" \t{}\n", code.to_lowercase());
            prop_assert_eq!(FiscalCode::parse(&messy).unwrap(), parsed);
        }

        #[test]
        fn any_single_changed_character_is_rejected_unless_valid_by_construction(
            code in valid_code(),
            index in 0..FISCAL_CODE_LEN,
            step in 1..ALPHANUMERIC.len(),
        ) {
            let old = code.as_bytes()[index];
            let old_at = ALPHANUMERIC.iter().position(|&c| c == old).unwrap();
            let new = char::from(ALPHANUMERIC[(old_at + step) % ALPHANUMERIC.len()]);
            let changed = with_char(&code, index, new);
            prop_assert_ne!(&changed, &code);
            let result = FiscalCode::parse(&changed);
            prop_assert_eq!(result.is_ok(), oracle_valid(&changed), "{} -> {:?}", changed, result);
            match result {
                Ok(_) => prop_assert_eq!(changed.as_str(), SANDBOX_FISCAL_CODE),
                Err(FiscalCodeError::Character { position, found, .. }) => {
                    prop_assert!(!oracle_shape_ok(&changed));
                    prop_assert_eq!((position, found), (index + 1, new));
                }
                Err(FiscalCodeError::CheckCharacter { expected, found }) => {
                    prop_assert!(oracle_shape_ok(&changed));
                    prop_assert_eq!(expected, oracle_check(&changed[..15]));
                    prop_assert_eq!(found, changed.chars().last().unwrap());
                }
                Err(other) => prop_assert!(false, "unexpected {:?}", other),
            }
        }

        #[test]
        fn parse_never_panics(raw in any::<String>()) {
            let _ = FiscalCode::parse(&raw);
            let _ = FiscalCodeHash::parse(&raw);
            let _ = compute_check_character(&raw);
        }

        #[test]
        fn parse_never_panics_on_near_codes(raw in "[ A-Za-z0-9éà€\u{1F600}]{14,18}") {
            match FiscalCode::parse(&raw) {
                Ok(code) => prop_assert!(oracle_valid(code.as_str())),
                Err(_) => prop_assert!(!oracle_valid(&raw.trim().to_ascii_uppercase())),
            }
        }
    }
}
