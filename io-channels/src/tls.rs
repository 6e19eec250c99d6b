//! TLS for every channel that leaves the process: rustls on the ring provider (no C build, one
//! provider for the whole workspace) and a root store the operator controls, so a private relay
//! or a loopback test peer with its own certificate authority can be trusted explicitly instead
//! of by switching verification off.

use serde::{Deserialize, Serialize};

/// Makes ring the process's default rustls provider, unless one is installed already. Every
/// channel builds its TLS configuration with ring explicitly; this is for the other rustls
/// users of the process (reqwest clients built with defaults), which otherwise panic on their
/// first use when no provider is installed. Idempotent; call it early in `main`.
pub fn install_default_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Which certificate authorities a channel trusts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrustedRoots {
    /// Trust the Mozilla root program (webpki-roots): what public providers (Apple, Google,
    /// commercial relays) are signed by.
    pub builtin: bool,
    /// More authorities, as PEM text (one or more `CERTIFICATE` blocks each).
    pub extra_pem: Vec<String>,
}

impl Default for TrustedRoots {
    fn default() -> Self {
        Self {
            builtin: true,
            extra_pem: Vec::new(),
        }
    }
}

impl TrustedRoots {
    /// Only the authorities in `pem` (tests, private deployments).
    pub fn only(pem: impl Into<String>) -> Self {
        Self {
            builtin: false,
            extra_pem: vec![pem.into()],
        }
    }

    /// The extra authorities, parsed.
    #[cfg(any(feature = "http", feature = "pec"))]
    pub(crate) fn extra_certificates(
        &self,
    ) -> Result<Vec<rustls::pki_types::CertificateDer<'static>>, TlsError> {
        use rustls::pki_types::CertificateDer;
        use rustls::pki_types::pem::PemObject;
        let mut certificates = Vec::new();
        for pem in &self.extra_pem {
            let before = certificates.len();
            for certificate in CertificateDer::pem_slice_iter(pem.as_bytes()) {
                certificates.push(certificate.map_err(|e| TlsError::Pem(e.to_string()))?);
            }
            if certificates.len() == before {
                return Err(TlsError::Pem("no CERTIFICATE block found".to_owned()));
            }
        }
        Ok(certificates)
    }

    /// A rustls client configuration trusting these roots and offering `alpn` protocols.
    #[cfg(any(feature = "http", feature = "pec"))]
    pub(crate) fn client_config(&self, alpn: &[&[u8]]) -> Result<rustls::ClientConfig, TlsError> {
        install_default_crypto_provider();
        let mut roots = rustls::RootCertStore::empty();
        if self.builtin {
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        }
        for certificate in self.extra_certificates()? {
            roots
                .add(certificate)
                .map_err(|e| TlsError::Pem(e.to_string()))?;
        }
        if roots.is_empty() {
            return Err(TlsError::NoRoots);
        }
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Pem(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Ok(config)
    }
}

/// A TLS setting that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TlsError {
    /// A PEM text held no usable certificate.
    #[error("trusted roots: {0}")]
    Pem(String),
    /// Neither built-in nor extra roots: nothing could ever be verified.
    #[error("trusted roots: none configured (enable builtin or give extra_pem)")]
    NoRoots,
}
