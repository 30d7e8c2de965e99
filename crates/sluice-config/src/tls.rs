//! `redis.tls`: the files of a TLS connection to Redis, read and checked
//! when the configuration is loaded (so `sluice validate` and a reload
//! report a missing or malformed file with its line and field):
//!
//! ```yaml
//! store: rediss://redis.internal:6380
//! redis:
//!   tls:
//!     ca: /etc/sluice/redis-ca.pem      # trust this CA, not the public roots
//!     cert: /etc/sluice/client.pem      # a client certificate, with its key,
//!     key: /etc/sluice/client.key       # for `tls-auth-clients yes`
//! ```
//!
//! A relative path is relative to the configuration file's directory. All
//! three are optional, but `cert` and `key` go together.

use std::path::{Path, PathBuf};

use marked_yaml::Node;
use marked_yaml::types::{MarkedMappingNode, MarkedScalarNode};
use sluice::TlsOptions;

use crate::file::io_reason;
use crate::yaml::Walker;

pub(crate) const TLS_FIELDS: &[&str] = &["ca", "cert", "key"];

/// The TLS options `node` (the `redis.tls` mapping) describes; `None` when
/// anything in it is wrong (reported).
pub(crate) fn tls(w: &mut Walker<'_>, node: &Node) -> Option<TlsOptions> {
    let map = w.mapping(node, "redis.tls", TLS_FIELDS)?;
    let base = Path::new(w.file()).parent().map(Path::to_owned);
    let read = |w: &mut Walker<'_>, field| read_file(w, map, base.as_deref(), field);
    let ca = read(w, "ca");
    // Checked before the next file is read, so errors come in file order.
    let ca = match ca {
        Ok(Some((pem, scalar, path))) => match TlsOptions::default().with_ca(pem) {
            Ok(tls) => Ok(tls),
            Err(e) => {
                w.error(scalar.span(), &path, e.to_string());
                Err(())
            }
        },
        Ok(None) => Ok(TlsOptions::default()),
        Err(()) => Err(()),
    };
    let (cert, key) = (read(w, "cert"), read(w, "key"));
    let tls = match (cert, key) {
        (Ok(Some((cert, scalar, path))), Ok(Some((key, _, _)))) => {
            // Checked even when the CA failed, to report both.
            match TlsOptions::default().with_client_certificate(cert.clone(), key.clone()) {
                Ok(_) => ca.and_then(|tls| tls.with_client_certificate(cert, key).map_err(drop)),
                Err(e) => {
                    w.error(scalar.span(), &path, e.to_string());
                    Err(())
                }
            }
        }
        (Ok(Some((_, scalar, _))), Ok(None)) => {
            w.error(
                scalar.span(),
                "redis.tls.key",
                "missing: cert needs its key",
            );
            Err(())
        }
        (Ok(None), Ok(Some((_, scalar, _)))) => {
            w.error(
                scalar.span(),
                "redis.tls.cert",
                "missing: key needs its cert",
            );
            Err(())
        }
        (Ok(None), Ok(None)) => ca,
        _ => Err(()),
    };
    tls.ok()
}

/// The file named by `field` of `map` (its contents, its node, its path);
/// `Err` when it was given but cannot be read (reported), `Ok(None)` when
/// absent.
type Read<'n> = Result<Option<(Vec<u8>, &'n MarkedScalarNode, String)>, ()>;

fn read_file<'n>(
    w: &mut Walker<'_>,
    map: &'n MarkedMappingNode,
    base: Option<&Path>,
    field: &str,
) -> Read<'n> {
    let Some(node) = map.get_node(field) else {
        return Ok(None);
    };
    let path = format!("redis.tls.{field}");
    let scalar = w.scalar(node, &path, "a file path").ok_or(())?;
    let file = resolve(base, scalar.as_str());
    match std::fs::read(&file) {
        Ok(bytes) => Ok(Some((bytes, scalar, path))),
        Err(e) => {
            let message = format!("cannot read {}: {}", file.display(), io_reason(&e));
            w.error(scalar.span(), &path, message);
            Err(())
        }
    }
}

/// `path` as written, relative to `base` (the configuration file's
/// directory) unless absolute.
fn resolve(base: Option<&Path>, path: &str) -> PathBuf {
    match base {
        Some(base) if Path::new(path).is_relative() => base.join(path),
        _ => PathBuf::from(path),
    }
}

#[cfg(test)]
mod tests {
    use std::fs;

    use sluice_testkit::Certificates;

    use crate::{Config, ConfigErrors};

    /// A configuration file `sluice.yaml` in a directory holding copies of
    /// `certs`'s CA and client files, whose `redis.tls` is `tls`.
    fn file(certs: &Certificates, tls: &str) -> (tempfile::TempDir, String, String) {
        let dir = tempfile::tempdir().unwrap();
        fs::copy(certs.ca(), dir.path().join("ca.pem")).unwrap();
        fs::copy(certs.client_cert(), dir.path().join("client.pem")).unwrap();
        fs::copy(certs.client_key(), dir.path().join("client.key")).unwrap();
        let text = format!(
            "store: rediss://127.0.0.1:6380\nredis:\n  tls:\n{tls}policies:\n  api: {{limit: 1, period: 1s}}\n"
        );
        let path = dir.path().join("sluice.yaml").display().to_string();
        (dir, path, text)
    }

    fn errors(path: &str, text: &str) -> Vec<String> {
        match Config::from_str(text, path) {
            Ok(config) => panic!("expected errors, got {config:?}"),
            Err(ConfigErrors(errors)) => errors.iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn relative_files_are_read_beside_the_configuration() {
        let certs = Certificates::generate();
        let (_dir, path, text) = file(
            &certs,
            "    ca: ca.pem\n    cert: client.pem\n    key: client.key\n",
        );
        let tls = Config::from_str(&text, &path).unwrap().redis.tls.unwrap();
        assert!(tls.has_ca() && tls.has_client_certificate());
        let (_dir, path, text) = file(&certs, "    ca: ca.pem\n");
        let tls = Config::from_str(&text, &path).unwrap().redis.tls.unwrap();
        assert!(tls.has_ca() && !tls.has_client_certificate());
    }

    #[test]
    fn each_bad_file_is_named_with_its_line_and_field() {
        let certs = Certificates::generate();
        let (_dir, path, text) = file(
            &certs,
            "    ca: client.key\n    cert: client.pem\n    key: nowhere.key\n",
        );
        let errors = errors(&path, &text);
        assert_eq!(errors.len(), 2, "{errors:#?}");
        assert!(
            errors[0].starts_with(&format!("{path}:4: redis.tls.ca: no CA certificate")),
            "{errors:#?}"
        );
        assert!(
            errors[1].starts_with(&format!("{path}:6: redis.tls.key: cannot read ")),
            "{errors:#?}"
        );
        assert!(
            errors[1].ends_with("nowhere.key: no such file"),
            "{errors:#?}"
        );
    }

    #[test]
    fn a_certificate_needs_its_key_and_a_key_its_certificate() {
        let certs = Certificates::generate();
        let (_dir, path, text) = file(&certs, "    cert: client.pem\n");
        assert_eq!(
            errors(&path, &text),
            [format!(
                "{path}:4: redis.tls.key: missing: cert needs its key"
            )]
        );
        let (_dir, path, text) = file(&certs, "    key: client.key\n");
        assert_eq!(
            errors(&path, &text),
            [format!(
                "{path}:4: redis.tls.cert: missing: key needs its cert"
            )]
        );
        let (_dir, path, text) = file(&certs, "    key: client.pem\n    cert: client.key\n");
        let errors = errors(&path, &text);
        assert!(errors[0].contains("redis.tls.cert"), "{errors:#?}");
    }

    #[test]
    fn unknown_tls_fields_are_refused() {
        let certs = Certificates::generate();
        let (_dir, path, text) = file(&certs, "    ca: ca.pem\n    verify: false\n");
        assert_eq!(
            errors(&path, &text),
            [format!(
                "{path}:5: redis.tls.verify: unknown field; expected one of ca, cert, key"
            )]
        );
    }
}
