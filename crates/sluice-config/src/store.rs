//! Which store keeps the limiter state, as written in `store:`,
//! `SLUICE_STORE` or `--store`.

use std::fmt;

use sluice::store::StoreKind;

/// A store named by the configuration.
#[derive(Clone, PartialEq, Eq)]
pub enum StoreSpec {
    /// The in-memory store of this process: `memory`.
    Memory,
    /// One Redis server: `redis://[user:password@]host[:port][/db]`, or
    /// `rediss://…` for TLS.
    Redis(String),
    /// A Redis Cluster: `redis+cluster://host:port[,host:port…]`.
    RedisCluster(String),
    /// The master Redis Sentinel names:
    /// `redis+sentinel://host:port[,host:port…]/master[/db]`.
    RedisSentinel(String),
}

impl StoreSpec {
    /// Parses a store URL; the error says what was expected.
    pub fn parse(text: &str) -> Result<StoreSpec, String> {
        // The core knows the schemes: one list for the library and the server.
        let text = text.trim();
        match StoreKind::of(text) {
            Ok(StoreKind::Memory) => Ok(StoreSpec::Memory),
            Ok(StoreKind::RedisCluster) => Ok(StoreSpec::RedisCluster(text.to_owned())),
            Ok(StoreKind::RedisSentinel) => Ok(StoreSpec::RedisSentinel(text.to_owned())),
            Ok(_) => Ok(StoreSpec::Redis(text.to_owned())),
            Err(error) => Err(format!("{error}, got {text:?}")),
        }
    }
}

impl StoreSpec {
    /// The store's kind, as metrics label it: `memory`, `redis`,
    /// `redis_cluster` or `redis_sentinel`.
    pub fn kind(&self) -> &'static str {
        let kind = match self {
            StoreSpec::Memory => StoreKind::Memory,
            StoreSpec::Redis(_) => StoreKind::Redis,
            StoreSpec::RedisCluster(_) => StoreKind::RedisCluster,
            StoreSpec::RedisSentinel(_) => StoreKind::RedisSentinel,
        };
        kind.name()
    }
}

/// Shows the store with any password replaced by `***`, so that it can be
/// logged.
impl fmt::Display for StoreSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreSpec::Memory => f.write_str("memory"),
            StoreSpec::Redis(url)
            | StoreSpec::RedisCluster(url)
            | StoreSpec::RedisSentinel(url) => f.write_str(&redact(url)),
        }
    }
}

impl fmt::Debug for StoreSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StoreSpec({self})")
    }
}

/// `scheme://user:secret@host` becomes `scheme://user:***@host`.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    // Credentials end at the last '@' before the first '/'.
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else {
        return url.to_owned();
    };
    let user = rest[..at].split_once(':').map_or("", |(user, _)| user);
    format!("{scheme}://{user}:***@{}", &rest[at + 1..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_show() {
        let spec = StoreSpec::parse("redis://app:s3cret@127.0.0.1:6379/2").unwrap();
        assert_eq!(spec.to_string(), "redis://app:***@127.0.0.1:6379/2");
        assert!(!format!("{spec:?}").contains("s3cret"));
        let spec = StoreSpec::parse("rediss://:pa@ss@host").unwrap();
        assert_eq!(spec.to_string(), "rediss://:***@host");
        let spec = StoreSpec::parse("redis://127.0.0.1:6379").unwrap();
        assert_eq!(spec.to_string(), "redis://127.0.0.1:6379");
    }

    /// Issue 12: a URL holding a password, read from a secrets file or an
    /// environment variable written with spaces, is trimmed like the token.
    #[test]
    fn issue_12_a_store_url_from_a_secrets_file_is_trimmed() {
        let spec = StoreSpec::parse("  redis://:s3cret@127.0.0.1:6379/0\n").unwrap();
        assert_eq!(
            spec,
            StoreSpec::Redis("redis://:s3cret@127.0.0.1:6379/0".into())
        );
    }

    #[test]
    fn unknown_schemes_are_refused() {
        assert_eq!(StoreSpec::parse("memory"), Ok(StoreSpec::Memory));
        assert!(
            StoreSpec::parse("http://x")
                .unwrap_err()
                .contains("must be memory")
        );
        assert!(matches!(
            StoreSpec::parse("redis+cluster://127.0.0.1:7000,127.0.0.1:7001"),
            Ok(StoreSpec::RedisCluster(_))
        ));
        let sentinel = StoreSpec::parse("redis+sentinel://:pw@127.0.0.1:26379/sluice").unwrap();
        assert!(matches!(sentinel, StoreSpec::RedisSentinel(_)));
        assert_eq!(sentinel.kind(), "redis_sentinel");
        assert_eq!(
            sentinel.to_string(),
            "redis+sentinel://:***@127.0.0.1:26379/sluice"
        );
    }
}
