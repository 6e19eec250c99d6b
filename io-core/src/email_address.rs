//! Email addresses, checked once when they enter the system.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The longest address SMTP can carry (RFC 5321 path limit).
pub const EMAIL_MAX_LEN: usize = 254;

/// An email address with a plausible shape: one `@`, a non-empty local part, a dotted domain,
/// no spaces or control characters. Deliverability is for the mail server to tell.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct EmailAddress(String);

/// Why a string is not an email address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmailAddressError {
    /// Empty, or longer than [`EMAIL_MAX_LEN`].
    #[error("email address has {len} characters, expected 3..={EMAIL_MAX_LEN}")]
    Length {
        /// Its length in bytes.
        len: usize,
    },
    /// Not `local@domain.tld`, or contains spaces or control characters.
    #[error("email address is not of the form local@domain.tld")]
    Shape,
}

impl EmailAddress {
    /// Validates an address; surrounding spaces are trimmed, the domain is lower-cased.
    pub fn parse(raw: &str) -> Result<Self, EmailAddressError> {
        let raw = raw.trim();
        if raw.len() < 3 || raw.len() > EMAIL_MAX_LEN {
            return Err(EmailAddressError::Length { len: raw.len() });
        }
        let (local, domain) = raw.rsplit_once('@').ok_or(EmailAddressError::Shape)?;
        let clean =
            |s: &str| !s.is_empty() && s.chars().all(|c| !c.is_whitespace() && !c.is_control());
        let domain_ok = clean(domain)
            && !domain.contains('@')
            && domain.contains('.')
            && domain.split('.').all(|label| !label.is_empty());
        if !clean(local) || local.contains('@') || !domain_ok {
            return Err(EmailAddressError::Shape);
        }
        Ok(Self(format!("{local}@{}", domain.to_lowercase())))
    }

    /// The address as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for EmailAddress {
    type Error = EmailAddressError;
    fn try_from(raw: String) -> Result<Self, EmailAddressError> {
        Self::parse(&raw)
    }
}

impl From<EmailAddress> for String {
    fn from(address: EmailAddress) -> String {
        address.0
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Debug hides the local part: addresses are personal data and Debug output ends up in logs.
impl fmt::Debug for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let domain = self.0.rsplit_once('@').map_or("", |(_, d)| d);
        write!(f, "EmailAddress(***@{domain})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_checked_and_normalised() {
        assert_eq!(
            EmailAddress::parse(" Mario.Rossi@Comune.Example.IT ")
                .unwrap()
                .as_str(),
            "Mario.Rossi@comune.example.it"
        );
        for bad in [
            "",
            "a@b",
            "no-at.example.it",
            "a b@example.it",
            "a@@example.it",
            "a@example..it",
            "@example.it",
        ] {
            assert!(EmailAddress::parse(bad).is_err(), "{bad}");
        }
        assert!(matches!(
            EmailAddress::parse(&format!("{}@example.it", "a".repeat(250))),
            Err(EmailAddressError::Length { .. })
        ));
    }

    #[test]
    fn debug_hides_the_local_part() {
        let address = EmailAddress::parse("mario@example.it").unwrap();
        assert_eq!(format!("{address:?}"), "EmailAddress(***@example.it)");
    }
}
