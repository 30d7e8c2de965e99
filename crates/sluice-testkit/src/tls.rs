//! [`TlsRedisServer`]: a `redis-server` that also listens with TLS, and the
//! [`Certificates`] made for it (a CA, a server and a client certificate).

use std::fs;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use tempfile::TempDir;

use crate::RedisServer;
use crate::process::{HOST, Mode, PortReservation};

/// A fresh certificate authority and two certificates it signed, as PEM
/// files in a temporary directory (deleted on drop): one for a server on
/// `127.0.0.1` (and `localhost`), one for a client. Nothing is trusted
/// anywhere else: a client must be given [`ca`](Self::ca).
///
/// ```
/// let certs = sluice_testkit::Certificates::generate();
/// let ca = std::fs::read_to_string(certs.ca()).unwrap();
/// assert!(ca.starts_with("-----BEGIN CERTIFICATE-----"));
/// ```
#[derive(Debug)]
pub struct Certificates {
    dir: TempDir,
}

impl Certificates {
    /// Makes a CA, then a server and a client certificate signed by it,
    /// each with its own key, and writes them as PEM files.
    ///
    /// # Panics
    ///
    /// If a key cannot be made or a file written.
    pub fn generate() -> Certificates {
        let dir = tempfile::Builder::new()
            .prefix("sluice-tls-")
            .tempdir()
            .expect("cannot create a temporary directory for certificates");

        let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "sluice test CA");
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_key = KeyPair::generate().expect("a CA key");
        let ca = CertifiedIssuer::self_signed(ca, ca_key).expect("a self-signed CA");

        let leaf = |names: Vec<String>, usage: ExtendedKeyUsagePurpose, cn: &str| {
            let mut params = CertificateParams::new(names).expect("certificate parameters");
            params.distinguished_name.push(DnType::CommonName, cn);
            params.extended_key_usages = vec![usage];
            params.key_usages = vec![
                KeyUsagePurpose::DigitalSignature,
                KeyUsagePurpose::KeyEncipherment,
            ];
            let key = KeyPair::generate().expect("a key");
            let cert = params.signed_by(&key, &ca).expect("a signed certificate");
            (cert.pem(), key.serialize_pem())
        };
        let (server, server_key) = leaf(
            vec![HOST.to_owned(), "localhost".to_owned()],
            ExtendedKeyUsagePurpose::ServerAuth,
            "redis-server",
        );
        let (client, client_key) = leaf(
            Vec::new(),
            ExtendedKeyUsagePurpose::ClientAuth,
            "sluice test client",
        );

        let certs = Certificates { dir };
        for (name, pem) in [
            ("ca.pem", ca.pem()),
            ("server.pem", server),
            ("server.key", server_key),
            ("client.pem", client),
            ("client.key", client_key),
        ] {
            let path = certs.dir.path().join(name);
            fs::write(&path, pem)
                .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        }
        certs
    }

    /// The CA certificate (PEM) that signed the other two.
    pub fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// The server's certificate (PEM), valid for `127.0.0.1` and `localhost`.
    pub fn server_cert(&self) -> PathBuf {
        self.dir.path().join("server.pem")
    }

    /// The server's private key (PEM, PKCS#8).
    pub fn server_key(&self) -> PathBuf {
        self.dir.path().join("server.key")
    }

    /// The client's certificate (PEM), for servers that ask for one.
    pub fn client_cert(&self) -> PathBuf {
        self.dir.path().join("client.pem")
    }

    /// The client's private key (PEM, PKCS#8).
    pub fn client_key(&self) -> PathBuf {
        self.dir.path().join("client.key")
    }

    /// The directory holding the files.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

/// A real `redis-server` that listens with TLS on [`tls_port`](Self::tls_port)
/// (certificates from [`Certificates::generate`]) and, for the harness
/// itself (readiness, [`cli`](RedisServer::cli)), in plain text on
/// [`server`](Self::server)'s port. Dropping it stops the server and
/// deletes the certificates.
///
/// With `auth_clients`, the server refuses a client that does not show a
/// certificate signed by the CA (`--tls-auth-clients yes`).
///
/// ```
/// let redis = sluice_testkit::TlsRedisServer::start(false);
/// assert_eq!(redis.url(), format!("rediss://127.0.0.1:{}", redis.tls_port()));
/// assert_eq!(redis.server().cli(&["ping"]), "PONG");
/// ```
#[derive(Debug)]
pub struct TlsRedisServer {
    // Declared first so that the server stops before its files go.
    server: RedisServer,
    tls_port: PortReservation,
    certificates: Certificates,
}

impl TlsRedisServer {
    /// Starts the server (see the type); with `auth_clients`, clients must
    /// show a certificate.
    ///
    /// # Panics
    ///
    /// As [`RedisServer::start`]; also when this `redis-server` was built
    /// without TLS (its log then says `--tls-port` is unknown).
    pub fn start(auth_clients: bool) -> TlsRedisServer {
        let certificates = Certificates::generate();
        let tls_port = PortReservation::pick(Mode::Standalone);
        let path = |p: PathBuf| p.display().to_string();
        let server = RedisServer::start_with_args([
            "--tls-port".to_owned(),
            tls_port.port().to_string(),
            "--tls-cert-file".to_owned(),
            path(certificates.server_cert()),
            "--tls-key-file".to_owned(),
            path(certificates.server_key()),
            "--tls-ca-cert-file".to_owned(),
            path(certificates.ca()),
            "--tls-auth-clients".to_owned(),
            if auth_clients { "yes" } else { "no" }.to_owned(),
        ]);
        TlsRedisServer {
            server,
            tls_port,
            certificates,
        }
    }

    /// The URL to connect to with TLS: `rediss://127.0.0.1:TLS_PORT`.
    pub fn url(&self) -> String {
        format!("rediss://{HOST}:{}", self.tls_port())
    }

    /// The port that speaks TLS.
    pub fn tls_port(&self) -> u16 {
        self.tls_port.port()
    }

    /// The certificates the server uses, and the client's.
    pub fn certificates(&self) -> &Certificates {
        &self.certificates
    }

    /// The server itself, on its plain port: `cli`, `log`, `pid`.
    pub fn server(&self) -> &RedisServer {
        &self.server
    }

    /// The server itself, to [`kill`](RedisServer::kill) or
    /// [`restart`](RedisServer::restart) it (TLS included).
    pub fn server_mut(&mut self) -> &mut RedisServer {
        &mut self.server
    }
}

#[cfg(test)]
mod tests {
    use std::process::{Command, Stdio};

    use super::*;

    /// `redis-cli --tls` with the client certificate when `client`.
    fn tls_ping(redis: &TlsRedisServer, client: bool) -> (bool, String) {
        let certs = redis.certificates();
        let mut cli = Command::new("redis-cli");
        cli.args(["-h", HOST, "-p", &redis.tls_port().to_string(), "--tls"])
            .arg("--cacert")
            .arg(certs.ca());
        if client {
            cli.arg("--cert")
                .arg(certs.client_cert())
                .arg("--key")
                .arg(certs.client_key());
        }
        let output = cli.arg("ping").stdin(Stdio::null()).output().unwrap();
        let text = String::from_utf8_lossy(&output.stdout).into_owned()
            + &String::from_utf8_lossy(&output.stderr);
        (text.trim() == "PONG", text)
    }

    #[test]
    fn the_tls_port_answers_with_the_made_certificates() {
        let redis = TlsRedisServer::start(false);
        assert_ne!(redis.tls_port(), redis.server().port());
        let (ok, text) = tls_ping(&redis, false);
        assert!(ok, "{text}\n{}", redis.server().log());
    }

    #[test]
    fn auth_clients_refuses_a_client_without_a_certificate() {
        let redis = TlsRedisServer::start(true);
        let (ok, text) = tls_ping(&redis, false);
        assert!(!ok, "answered without a client certificate: {text}");
        let (ok, text) = tls_ping(&redis, true);
        assert!(ok, "{text}\n{}", redis.server().log());
    }
}
