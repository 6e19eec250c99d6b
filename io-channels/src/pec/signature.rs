//! The providers' S/MIME signatures on PEC receipts (`multipart/signed`, `smime.p7s`), checked
//! with OpenSSL's `PKCS7_verify` against the certificates the operator trusts: the providers'
//! own certificates or the authorities that issue them (AgID publishes the list of accredited
//! providers). A receipt whose signature does not verify is still kept as evidence, flagged as
//! such in the journal, and never moves a delivery: only a verified receipt is trusted.

use std::fmt;

use openssl::pkcs7::{Pkcs7, Pkcs7Flags};
use openssl::stack::Stack;
use openssl::x509::store::{X509Store, X509StoreBuilder};
use openssl::x509::verify::X509VerifyFlags;
use openssl::x509::{X509, X509NameRef};

use crate::ConfigError;

/// The certificates receipts must be signed under.
pub struct ProviderCertificates {
    store: X509Store,
    count: usize,
}

impl fmt::Debug for ProviderCertificates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ProviderCertificates({} certificates)", self.count)
    }
}

impl ProviderCertificates {
    /// Trusts the certificates in `pems` (each may hold several). A provider's own certificate
    /// is enough: it need not chain to an authority in the list.
    pub fn from_pem(pems: &[String]) -> Result<Self, ConfigError> {
        let setting = "pec.mailbox.provider_certificates";
        let mut builder =
            X509StoreBuilder::new().map_err(|e| ConfigError::invalid(setting, e.to_string()))?;
        let mut count = 0;
        for pem in pems {
            let certificates = contained(|| X509::stack_from_pem(pem.as_bytes()))
                .map_err(|e| ConfigError::invalid(setting, format!("not PEM certificates: {e}")))?;
            if certificates.is_empty() {
                return Err(ConfigError::invalid(setting, "no CERTIFICATE block found"));
            }
            for certificate in certificates {
                builder
                    .add_cert(certificate)
                    .map_err(|e| ConfigError::invalid(setting, e.to_string()))?;
                count += 1;
            }
        }
        if count == 0 {
            return Err(ConfigError::invalid(
                setting,
                "at least one provider certificate (PEM) is needed to trust receipts",
            ));
        }
        builder
            .set_flags(X509VerifyFlags::PARTIAL_CHAIN)
            .map_err(|e| ConfigError::invalid(setting, e.to_string()))?;
        Ok(Self {
            store: builder.build(),
            count,
        })
    }
}

/// What the check of a receipt's signature found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signature {
    /// Signed by a trusted certificate, whose subject is given.
    Verified {
        /// The signer's subject, e.g. `CN=Posta certificata, O=Gestore S.p.A.`.
        signer: String,
    },
    /// Not signed, or not by a trusted certificate, or the content was changed.
    Unverified {
        /// Why, for the journal and the logs.
        reason: String,
    },
}

/// Runs an OpenSSL call that may panic: the openssl crate unwraps the text of OpenSSL's error
/// as UTF-8, and OpenSSL quotes the input in it (a MIME header), so a receipt with non-UTF-8
/// bytes there panics inside the crate (found by fuzzing). The panic is contained, the rest
/// of the thread's error queue drained, and the call reported failed.
fn contained<T>(call: impl FnOnce() -> Result<T, openssl::error::ErrorStack>) -> Result<T, String> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(call)) {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => Err(error.to_string()),
        Err(_) => {
            // Each `get` pops at least one entry before it can panic: the queue empties.
            for _ in 0..64 {
                let drained = std::panic::catch_unwind(openssl::error::ErrorStack::get);
                if drained.is_ok_and(|stack| stack.errors().is_empty()) {
                    break;
                }
            }
            Err("OpenSSL refused the message (its error quoted non-UTF-8 input)".into())
        }
    }
}

/// Checks the S/MIME signature of the receipt `raw` against `trusted`.
pub fn check(raw: &[u8], trusted: &ProviderCertificates) -> Signature {
    let unverified = |reason: String| Signature::Unverified { reason };
    let (pkcs7, content) = match contained(|| Pkcs7::from_smime(raw)) {
        Ok(parsed) => parsed,
        Err(error) => return unverified(format!("not an S/MIME signed message: {error}")),
    };
    let Some(content) = content else {
        return unverified("the signature is not detached from its content".into());
    };
    let Ok(no_extra) = Stack::new() else {
        return unverified("out of memory".into());
    };
    if let Err(error) = contained(|| {
        pkcs7.verify(
            &no_extra,
            &trusted.store,
            Some(&content),
            None,
            Pkcs7Flags::empty(),
        )
    }) {
        return unverified(format!("the signature does not verify: {error}"));
    }
    let signer = contained(|| pkcs7.signers(&no_extra, Pkcs7Flags::empty()))
        .ok()
        .and_then(|signers| signers.iter().next().map(|c| subject(c.subject_name())))
        .unwrap_or_else(|| "unknown signer".into());
    Signature::Verified { signer }
}

fn subject(name: &X509NameRef) -> String {
    name.entries()
        .map(|entry| {
            let key = entry.object().nid().short_name().unwrap_or("?");
            let value = entry.data().to_string().unwrap_or_default();
            format!("{key}={value}")
        })
        .collect::<Vec<_>>()
        .join(", ")
}
