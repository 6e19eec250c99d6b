//! Citizen bearer tokens. Login (SPID, CIE) is out of io's scope: an identity provider in
//! front of io, or the admin API in development, hands the app a token, and the citizen API
//! only verifies it through [`CitizenVerifier`], so an OIDC verifier can replace the built-in
//! one. The built-in [`Hs256Tokens`] are compact JWTs signed with HMAC-SHA256 by the server's
//! secret, carrying the fiscal code as `sub` and an expiry.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use io_core::{FiscalCode, Timestamp};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// Why a token was refused (all answered 401; the variants are for logs and tests).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not three base64url parts of JSON.
    #[error("the token is not a well-formed JWT")]
    Malformed,
    /// A header naming another algorithm (including `none`).
    #[error("the token's algorithm is not HS256")]
    Algorithm,
    /// The signature does not match.
    #[error("the token's signature is invalid")]
    Signature,
    /// `exp` is past.
    #[error("the token has expired")]
    Expired,
    /// `aud` or `iss` is not ours.
    #[error("the token was not issued for this API")]
    Audience,
    /// `sub` is not a fiscal code.
    #[error("the token's subject is not a fiscal code")]
    Subject,
    /// `iat` (or `nbf`) is later than now, beyond the allowed clock skew.
    #[error("the token is not valid yet (issued in the future)")]
    NotYetValid,
    /// `exp - iat` exceeds the lifetime this server grants.
    #[error("the token's lifetime exceeds what this server grants")]
    Lifetime,
}

/// How far a token's `iat` or `nbf` may be ahead of this server's clock (the issuer's clock
/// may run a little fast).
pub const CLOCK_SKEW_SECS: i64 = 60;

/// Turns a bearer token into the citizen it authenticates.
pub trait CitizenVerifier: Send + Sync + 'static {
    /// The citizen, if the token is valid at `now`.
    fn verify(&self, token: &str, now: Timestamp) -> Result<FiscalCode, TokenError>;
}

const ISSUER: &str = "io";
const AUDIENCE: &str = "io-citizen";

#[derive(Serialize, Deserialize)]
struct Header {
    alg: String,
    typ: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct Claims {
    sub: String,
    iss: String,
    aud: String,
    iat: i64,
    exp: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    nbf: Option<i64>,
}

/// HS256 tokens signed by the server. A token is accepted only within the lifetime the server
/// grants, counted from an `iat` that is not in the future: a leaked signing key aside, no
/// token lives longer than that, whatever its `exp` says.
#[derive(Clone)]
pub struct Hs256Tokens {
    secret: Vec<u8>,
    max_lifetime_secs: i64,
}

impl std::fmt::Debug for Hs256Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Hs256Tokens(..)")
    }
}

impl Hs256Tokens {
    /// Tokens signed with `secret`, living at most a day.
    pub fn new(secret: &[u8]) -> Self {
        Self {
            secret: secret.to_vec(),
            max_lifetime_secs: 24 * 3600,
        }
    }

    /// The longest lifetime (`exp - iat`) minted or accepted.
    pub fn with_max_lifetime(mut self, secs: u64) -> Self {
        self.max_lifetime_secs = i64::try_from(secs).unwrap_or(i64::MAX).max(1);
        self
    }

    fn mac(&self) -> Hmac<Sha256> {
        Hmac::<Sha256>::new_from_slice(&self.secret).expect("HMAC takes keys of any size")
    }

    /// A token for `citizen`, valid from `now` for `ttl_secs` (at most the maximum lifetime).
    pub fn mint(&self, citizen: &FiscalCode, now: Timestamp, ttl_secs: u64) -> String {
        let header = Header {
            alg: "HS256".into(),
            typ: Some("JWT".into()),
        };
        let iat = now.as_millis() / 1000;
        let claims = Claims {
            sub: citizen.as_str().into(),
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            iat,
            exp: iat.saturating_add(
                i64::try_from(ttl_secs)
                    .unwrap_or(i64::MAX)
                    .min(self.max_lifetime_secs),
            ),
            nbf: None,
        };
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header).expect("header serializes")),
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).expect("claims serialize")),
        );
        let mut mac = self.mac();
        mac.update(signing_input.as_bytes());
        let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        format!("{signing_input}.{signature}")
    }
}

impl CitizenVerifier for Hs256Tokens {
    fn verify(&self, token: &str, now: Timestamp) -> Result<FiscalCode, TokenError> {
        let mut parts = token.split('.');
        let (Some(header), Some(claims), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Malformed);
        };
        let decode = |part: &str| {
            URL_SAFE_NO_PAD
                .decode(part)
                .map_err(|_| TokenError::Malformed)
        };
        let header: Header =
            serde_json::from_slice(&decode(header)?).map_err(|_| TokenError::Malformed)?;
        if header.alg != "HS256" {
            return Err(TokenError::Algorithm);
        }
        let mut mac = self.mac();
        mac.update(&token.as_bytes()[..token.len() - signature.len() - 1]);
        mac.verify_slice(&decode(signature)?)
            .map_err(|_| TokenError::Signature)?;
        let claims: Claims =
            serde_json::from_slice(&decode(claims)?).map_err(|_| TokenError::Malformed)?;
        if claims.iss != ISSUER || claims.aud != AUDIENCE {
            return Err(TokenError::Audience);
        }
        let now_secs = now.as_millis() / 1000;
        let latest_start = now_secs.saturating_add(CLOCK_SKEW_SECS);
        if claims.iat > latest_start || claims.nbf.is_some_and(|nbf| nbf > latest_start) {
            return Err(TokenError::NotYetValid);
        }
        if claims.exp.saturating_sub(claims.iat) > self.max_lifetime_secs {
            return Err(TokenError::Lifetime);
        }
        if now_secs >= claims.exp {
            return Err(TokenError::Expired);
        }
        FiscalCode::parse(&claims.sub).map_err(|_| TokenError::Subject)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Timestamp = Timestamp::from_millis(1_700_000_000_000);

    fn citizen() -> FiscalCode {
        FiscalCode::parse("RSSMRA85T10A562S").unwrap()
    }

    #[test]
    fn a_minted_token_verifies_until_it_expires() {
        let tokens = Hs256Tokens::new(b"k");
        let token = tokens.mint(&citizen(), NOW, 60);
        assert_eq!(tokens.verify(&token, NOW), Ok(citizen()));
        let later = Timestamp::from_millis(NOW.as_millis() + 59_999);
        assert_eq!(tokens.verify(&token, later), Ok(citizen()));
        let expired = Timestamp::from_millis(NOW.as_millis() + 60_000);
        assert_eq!(tokens.verify(&token, expired), Err(TokenError::Expired));
    }

    #[test]
    fn forged_tokens_are_refused() {
        let tokens = Hs256Tokens::new(b"k");
        let token = tokens.mint(&citizen(), NOW, 60);
        // Another key.
        let other = Hs256Tokens::new(b"other").mint(&citizen(), NOW, 60);
        assert_eq!(tokens.verify(&other, NOW), Err(TokenError::Signature));
        // Claims swapped for another citizen's, signature kept.
        let parts: Vec<&str> = token.split('.').collect();
        let claims = URL_SAFE_NO_PAD.encode(
            br#"{"sub":"MRTMTT25D09F205Z","iss":"io","aud":"io-citizen","iat":0,"exp":9999999999}"#,
        );
        let forged = format!("{}.{}.{}", parts[0], claims, parts[2]);
        assert_eq!(tokens.verify(&forged, NOW), Err(TokenError::Signature));
        // alg none.
        let none = URL_SAFE_NO_PAD.encode(br#"{"alg":"none"}"#);
        let forged = format!("{none}.{}.", parts[1]);
        assert!(tokens.verify(&forged, NOW).is_err());
        assert_eq!(tokens.verify("abc", NOW), Err(TokenError::Malformed));
    }

    /// A token with `claims`, correctly signed with `k`.
    fn signed(claims: &str) -> String {
        let tokens = Hs256Tokens::new(b"k");
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#),
            URL_SAFE_NO_PAD.encode(claims.as_bytes())
        );
        let mut mac = tokens.mac();
        mac.update(input.as_bytes());
        format!(
            "{input}.{}",
            URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
        )
    }

    #[test]
    fn signed_tokens_from_the_future_or_living_too_long_are_refused() {
        let tokens = Hs256Tokens::new(b"k").with_max_lifetime(3600);
        let now = NOW.as_millis() / 1000;
        let claims = |iat: i64, exp: i64, nbf: Option<i64>| {
            let nbf = nbf.map(|n| format!(r#","nbf":{n}"#)).unwrap_or_default();
            signed(&format!(
                r#"{{"sub":"RSSMRA85T10A562S","iss":"io","aud":"io-citizen","iat":{iat},"exp":{exp}{nbf}}}"#
            ))
        };
        assert_eq!(
            tokens.verify(&claims(now, now + 3600, None), NOW),
            Ok(citizen())
        );
        // A little skew is tolerated; a day ahead is not.
        assert_eq!(
            tokens.verify(&claims(now + 30, now + 600, None), NOW),
            Ok(citizen())
        );
        assert_eq!(
            tokens.verify(&claims(now + 86_400, now + 86_400 + 60, None), NOW),
            Err(TokenError::NotYetValid)
        );
        assert_eq!(
            tokens.verify(&claims(now, now + 600, Some(now + 3_000)), NOW),
            Err(TokenError::NotYetValid)
        );
        // exp in 2^62 (or merely beyond the granted hour).
        assert_eq!(
            tokens.verify(&claims(now, 1 << 62, None), NOW),
            Err(TokenError::Lifetime)
        );
        assert_eq!(
            tokens.verify(&claims(now, now + 3601, None), NOW),
            Err(TokenError::Lifetime)
        );
        // Minting never exceeds the lifetime either.
        let minted = tokens.mint(&citizen(), NOW, u64::MAX);
        assert_eq!(tokens.verify(&minted, NOW), Ok(citizen()));
    }
}
