//! Compact JWS (RFC 7515) signing for the two provider credentials io uses: APNs provider
//! tokens (ES256 over a `.p8` key) and Google service-account assertions (RS256). Signed with
//! ring, which rustls already brings, rather than a JWT crate: two algorithms and a few lines do
//! not justify a second crypto stack (the RSA one of which has an open timing advisory).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::SystemRandom;
use ring::signature;
#[cfg(feature = "apns")]
use ring::signature::EcdsaKeyPair;
#[cfg(feature = "fcm")]
use ring::signature::RsaKeyPair;
use rustls::pki_types::PrivatePkcs8KeyDer;
use rustls::pki_types::pem::PemObject;

use crate::ConfigError;

/// A private key able to sign one JWS algorithm.
pub(crate) enum JwtKey {
    /// ECDSA P-256 with SHA-256: APNs provider tokens.
    #[cfg(feature = "apns")]
    Es256(EcdsaKeyPair),
    /// RSASSA-PKCS1-v1_5 with SHA-256: Google OAuth2 assertions.
    #[cfg(feature = "fcm")]
    Rs256(RsaKeyPair),
}

impl JwtKey {
    #[cfg(feature = "apns")]
    /// An ES256 key from a PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`, Apple's `.p8` format).
    pub(crate) fn es256(pem: &str, setting: &'static str) -> Result<Self, ConfigError> {
        let der = pkcs8(pem, setting)?;
        EcdsaKeyPair::from_pkcs8(
            &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            der.secret_pkcs8_der(),
            &SystemRandom::new(),
        )
        .map(Self::Es256)
        .map_err(|e| ConfigError::invalid(setting, format!("not a P-256 PKCS#8 key: {e}")))
    }

    #[cfg(feature = "fcm")]
    /// An RS256 key from a PKCS#8 PEM (a service account's `private_key`).
    pub(crate) fn rs256(pem: &str, setting: &'static str) -> Result<Self, ConfigError> {
        let der = pkcs8(pem, setting)?;
        RsaKeyPair::from_pkcs8(der.secret_pkcs8_der())
            .map(Self::Rs256)
            .map_err(|e| ConfigError::invalid(setting, format!("not an RSA PKCS#8 key: {e}")))
    }

    fn algorithm(&self) -> &'static str {
        match self {
            #[cfg(feature = "apns")]
            Self::Es256(_) => "ES256",
            #[cfg(feature = "fcm")]
            Self::Rs256(_) => "RS256",
        }
    }

    /// `header.claims.signature`, each base64url without padding. `kid` goes in the header
    /// when given. Fails only if the system random source fails.
    pub(crate) fn sign(
        &self,
        kid: Option<&str>,
        claims: &serde_json::Value,
    ) -> Result<String, ring::error::Unspecified> {
        let mut header = serde_json::json!({ "alg": self.algorithm(), "typ": "JWT" });
        if let Some(kid) = kid {
            header["kid"] = serde_json::Value::from(kid);
        }
        let mut token = URL_SAFE_NO_PAD.encode(header.to_string());
        token.push('.');
        token.push_str(&URL_SAFE_NO_PAD.encode(claims.to_string()));
        let rng = SystemRandom::new();
        let signature = match self {
            #[cfg(feature = "apns")]
            Self::Es256(key) => key.sign(&rng, token.as_bytes())?.as_ref().to_vec(),
            #[cfg(feature = "fcm")]
            Self::Rs256(key) => {
                let mut out = vec![0; key.public().modulus_len()];
                key.sign(
                    &signature::RSA_PKCS1_SHA256,
                    &rng,
                    token.as_bytes(),
                    &mut out,
                )?;
                out
            }
        };
        token.push('.');
        token.push_str(&URL_SAFE_NO_PAD.encode(signature));
        Ok(token)
    }
}

fn pkcs8(pem: &str, setting: &'static str) -> Result<PrivatePkcs8KeyDer<'static>, ConfigError> {
    PrivatePkcs8KeyDer::from_pem_slice(pem.as_bytes())
        .map_err(|e| ConfigError::invalid(setting, format!("expected a PKCS#8 PEM key: {e}")))
}

#[cfg(all(test, feature = "apns"))]
mod tests {
    use super::*;
    use ring::signature::KeyPair;

    #[test]
    fn an_es256_token_verifies_with_the_public_key() {
        let rng = SystemRandom::new();
        let der = EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .unwrap();
        let pem = format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            base64::engine::general_purpose::STANDARD.encode(der.as_ref())
        );
        let key = JwtKey::es256(&pem, "key").unwrap();
        let token = key
            .sign(
                Some("ABC123"),
                &serde_json::json!({ "iss": "TEAM", "iat": 1 }),
            )
            .unwrap();
        let parts: Vec<&str> = token.split('.').collect();
        assert_eq!(parts.len(), 3);
        let header: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
        assert_eq!(header["alg"], "ES256");
        assert_eq!(header["kid"], "ABC123");
        let pair = EcdsaKeyPair::from_pkcs8(
            &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            der.as_ref(),
            &rng,
        )
        .unwrap();
        let public = signature::UnparsedPublicKey::new(
            &signature::ECDSA_P256_SHA256_FIXED,
            pair.public_key().as_ref(),
        );
        let signed = format!("{}.{}", parts[0], parts[1]);
        let sig = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
        public.verify(signed.as_bytes(), &sig).unwrap();
        let mut forged = sig.clone();
        forged[0] ^= 1;
        assert!(public.verify(signed.as_bytes(), &forged).is_err());
    }

    #[test]
    fn a_key_of_the_wrong_kind_is_a_configuration_error() {
        let error = JwtKey::es256("not a key", "apns.signing_key")
            .err()
            .unwrap();
        assert!(
            error.to_string().starts_with("apns.signing_key: "),
            "{error}"
        );
    }
}
