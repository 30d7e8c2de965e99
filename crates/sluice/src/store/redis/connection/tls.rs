//! TLS to Redis (`rediss://`): the crypto provider rustls needs, and the
//! certificates a deployment may bring (its own CA, a client certificate).

use redis::{Client, ClientTlsConfig, RedisResult, TlsCertificates};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// The certificates of a TLS connection to Redis beyond the defaults: a CA
/// to trust instead of the public roots (a private or self-signed CA, as
/// most managed and in-house Redis deployments use), and a client
/// certificate for servers that ask for one (`tls-auth-clients yes`).
/// Everything is PEM, checked when given.
///
/// ```
/// use sluice::TlsOptions;
///
/// // Without a CA or a client certificate, the public roots are trusted.
/// let tls = TlsOptions::default();
/// assert!(!tls.has_ca() && !tls.has_client_certificate());
/// // Something that is not a PEM certificate is refused at once.
/// assert!(TlsOptions::default().with_ca(b"not a certificate".to_vec()).is_err());
/// ```
#[derive(Clone, Default)]
pub struct TlsOptions {
    ca: Option<Vec<u8>>,
    client: Option<(Vec<u8>, Vec<u8>)>,
}

/// Why a certificate or key given to [`TlsOptions`] cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TlsError(String);

impl TlsOptions {
    /// Trusts the CA certificates in `pem` (one or more) instead of the
    /// public roots.
    pub fn with_ca(mut self, pem: Vec<u8>) -> Result<TlsOptions, TlsError> {
        certificates(&pem, "CA")?;
        self.ca = Some(pem);
        Ok(self)
    }

    /// Shows the client certificate `cert` (PEM, its chain may follow) with
    /// its private key `key` (PEM: PKCS#8, PKCS#1 or SEC1).
    pub fn with_client_certificate(
        mut self,
        cert: Vec<u8>,
        key: Vec<u8>,
    ) -> Result<TlsOptions, TlsError> {
        certificates(&cert, "client")?;
        PrivateKeyDer::from_pem_slice(&key)
            .map_err(|e| TlsError(format!("no private key in PEM form: {e}")))?;
        self.client = Some((cert, key));
        Ok(self)
    }

    /// Whether a CA replaces the public roots.
    pub fn has_ca(&self) -> bool {
        self.ca.is_some()
    }

    /// Whether a client certificate is shown.
    pub fn has_client_certificate(&self) -> bool {
        self.client.is_some()
    }

    fn certificates(&self) -> TlsCertificates {
        TlsCertificates {
            client_tls: self.client.as_ref().map(|(cert, key)| ClientTlsConfig {
                client_cert: cert.clone(),
                client_key: key.clone(),
            }),
            root_cert: self.ca.clone(),
        }
    }
}

/// Never prints a key (nor certificates, which are long).
impl std::fmt::Debug for TlsOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsOptions")
            .field("ca", &self.has_ca())
            .field("client_certificate", &self.has_client_certificate())
            .finish()
    }
}

/// Checks that `pem` holds at least one certificate.
fn certificates(pem: &[u8], what: &str) -> Result<(), TlsError> {
    let mut count = 0;
    for certificate in CertificateDer::pem_slice_iter(pem) {
        certificate
            .map_err(|e| TlsError(format!("the {what} certificate is not valid PEM: {e}")))?;
        count += 1;
    }
    if count == 0 {
        return Err(TlsError(format!("no {what} certificate in PEM form")));
    }
    Ok(())
}

/// Refuses `tls` for a URL that is not `rediss://`: certificates that
/// would be ignored (on a cluster or Sentinel URL, or plain text) are a
/// mistake to report, not to hide.
pub fn check_url(url: &str, tls: Option<&TlsOptions>) -> RedisResult<()> {
    if tls.is_some() && !url.starts_with("rediss://") {
        return Err(redis::RedisError::from((
            redis::ErrorKind::InvalidClientConfig,
            "TLS certificates are used with a rediss:// URL only (a single Redis)",
        )));
    }
    Ok(())
}

/// A client for the single Redis at `url`, with `tls`'s certificates when
/// given (which need a `rediss://` URL).
pub fn client(url: &str, tls: Option<&TlsOptions>) -> RedisResult<Client> {
    check_url(url, tls)?;
    if url.starts_with("rediss://") {
        install_crypto_provider();
    }
    match tls {
        Some(tls) => Client::build_with_tls(url, tls.certificates()),
        None => Client::open(url),
    }
}

/// Makes ring the process's rustls crypto provider unless one is set.
///
/// The redis crate builds its rustls configuration from the process-wide
/// default provider and panics when there is none (any `rediss://` URL
/// exited with status 101). Cargo features alone cannot promise one: a
/// program that also enables aws-lc-rs has two, and rustls then picks
/// neither. Installing only when none is set leaves a program's own
/// choice alone.
pub fn install_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Fails only if another thread installed one just now: also fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}
