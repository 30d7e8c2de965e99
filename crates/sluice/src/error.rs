//! The errors a caller can match on.

use std::time::Duration;

/// Why a store could not make a decision.
///
/// `Display` says what happened; the cause (the connection error, the
/// failing node) is the [`source`](std::error::Error::source), so log the
/// whole chain, for example with [`chain`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The store could not be reached or answered with a failure that may
    /// pass (connection refused or lost, cluster resharding). Transient.
    #[error("the store is unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The store did not answer in time. Transient.
    #[error("the store did not answer within {0:?}")]
    Timeout(Duration),
    /// The store answered something Sluice cannot use (a script error, a
    /// reply of the wrong shape). Retrying will not help.
    #[error("the store answered unexpectedly: {0}")]
    Protocol(String),
    /// One key's state cannot be used: the store holds there a value Sluice
    /// never writes (a Redis list, set, hash or stream), or failed on that
    /// key alone. The checks of that key's all-or-nothing group fail and
    /// are charged nothing; the other checks decided with them (a batch)
    /// are decided. Retrying will not help until the value is removed (an
    /// admin reset deletes it).
    #[error("policy {policy:?} and key {key:?} cannot be decided: {problem}")]
    Key {
        /// The policy (or the policy's limit) of the check at fault.
        policy: String,
        /// The key of the check at fault.
        key: String,
        /// What is wrong, naming the store's key.
        problem: String,
    },
    /// One call named the same policy and key twice (see
    /// [`Store::decide`](crate::Store::decide)); nothing was decided. A
    /// mistake of the caller's, not a failure of the store.
    #[error("policy {policy:?} and key {key:?} appear twice in one call")]
    DuplicateCheck {
        /// The policy (or the policy's limit) named twice.
        policy: String,
        /// The key named twice.
        key: String,
    },
    /// The store failed too often lately, and the circuit breaker in front
    /// of it answers at once instead of calling it (see
    /// [`Breaker`](crate::store::Breaker)). Transient: a probe closes it.
    #[error("the store failed repeatedly; calls are held off until a probe succeeds")]
    CircuitOpen,
}

impl StoreError {
    /// Whether the same call may succeed later.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            StoreError::Unavailable(_) | StoreError::Timeout(_) | StoreError::CircuitOpen
        )
    }

    /// Every [`kind`](StoreError::kind), for metrics that show each kind
    /// from the start, at zero.
    pub const KINDS: [&'static str; 6] = [
        "unavailable",
        "timeout",
        "protocol",
        "key",
        "duplicate_check",
        "circuit_open",
    ];

    /// A short stable name for the kind of failure, for metrics labels:
    /// `unavailable`, `timeout`, `protocol`, `key`, `duplicate_check` or
    /// `circuit_open`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use sluice::StoreError;
    ///
    /// assert_eq!(StoreError::Timeout(Duration::from_millis(300)).kind(), "timeout");
    /// ```
    pub fn kind(&self) -> &'static str {
        match self {
            StoreError::Unavailable(_) => "unavailable",
            StoreError::Timeout(_) => "timeout",
            StoreError::Protocol(_) => "protocol",
            StoreError::Key { .. } => "key",
            StoreError::DuplicateCheck { .. } => "duplicate_check",
            StoreError::CircuitOpen => "circuit_open",
        }
    }
}

/// Why a [`Limiter`](crate::Limiter) could not make a decision.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No policy has this name.
    #[error("unknown policy {0:?}")]
    UnknownPolicy(String),
    /// The key is empty or longer than [`MAX_KEY_LEN`](crate::MAX_KEY_LEN) bytes.
    #[error("key must be 1 to {max} bytes long, got {got}", max = crate::MAX_KEY_LEN)]
    InvalidKey {
        /// The key's length in bytes.
        got: usize,
    },
    /// The cost is zero.
    #[error("cost must be at least 1")]
    InvalidCost,
    /// A policy was named twice in one all-or-nothing check.
    #[error("policy {0:?} is listed twice")]
    DuplicatePolicy(String),
    /// The store could not decide.
    #[error("the store could not decide")]
    Store(#[from] StoreError),
}

/// `error` and every cause under it, joined by `": "`, for one log line:
/// `the store could not decide: the store is unavailable: Connection refused (os error 111)`.
///
/// Each cause is printed once: a cause whose text the error above it
/// already shows is skipped. Some errors of other crates (redis-rs, for
/// one) put their cause's text in their own `Display` *and* return that
/// cause from `source()`; printed link by link (as `anyhow`'s `{:#}`
/// does) they read "Connection refused (os error 111): Connection refused
/// (os error 111)". Print any chain through this function, anyhow's too
/// (`chain(error.as_ref())`).
///
/// ```
/// use sluice::{Error, StoreError};
///
/// let cause = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "connection refused");
/// let error = Error::Store(StoreError::Unavailable(Box::new(cause)));
/// assert_eq!(
///     sluice::error::chain(&error).to_string(),
///     "the store could not decide: the store is unavailable: connection refused"
/// );
/// ```
pub fn chain<'a>(error: &'a (dyn std::error::Error + 'static)) -> impl std::fmt::Display + 'a {
    Chain(error)
}

struct Chain<'a>(&'a (dyn std::error::Error + 'static));

impl std::fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut shown = self.0.to_string();
        f.write_str(&shown)?;
        let mut next = self.0.source();
        while let Some(cause) = next {
            let text = cause.to_string();
            if !shown.contains(&text) {
                write!(f, ": {text}")?;
                shown = text;
            }
            next = cause.source();
        }
        Ok(())
    }
}

#[cfg(test)]
mod kinds_tests {
    use super::*;

    #[test]
    fn kinds_lists_the_kind_of_every_variant_once() {
        let key = || (String::from("api"), String::from("user-1"));
        let every = [
            StoreError::Unavailable("refused".into()),
            StoreError::Timeout(Duration::from_millis(250)),
            StoreError::Protocol("odd reply".into()),
            StoreError::Key {
                policy: key().0,
                key: key().1,
                problem: "a list".into(),
            },
            StoreError::DuplicateCheck {
                policy: key().0,
                key: key().1,
            },
            StoreError::CircuitOpen,
        ];
        let kinds: Vec<&str> = every.iter().map(StoreError::kind).collect();
        assert_eq!(kinds, StoreError::KINDS);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An error that shows its cause's text and returns the cause too, as
    /// redis-rs's `RedisError` does for an I/O error.
    #[derive(Debug, thiserror::Error)]
    #[error("{0}")]
    struct Repeats(#[source] std::io::Error);

    #[test]
    fn issue_14_each_cause_is_printed_once() {
        let refused = || {
            std::io::Error::new(
                std::io::ErrorKind::ConnectionRefused,
                "Connection refused (os error 111)",
            )
        };
        let error = Error::Store(StoreError::Unavailable(Box::new(Repeats(refused()))));
        assert_eq!(
            chain(&error).to_string(),
            "the store could not decide: the store is unavailable: Connection refused (os error 111)"
        );
        let pipe = std::io::Error::new(std::io::ErrorKind::BrokenPipe, "broken pipe");
        let error = StoreError::Unavailable(Box::new(Repeats(pipe)));
        assert_eq!(
            chain(&error).to_string(),
            "the store is unavailable: broken pipe"
        );
    }

    #[test]
    fn distinct_causes_are_all_printed() {
        let cause = std::io::Error::other("connection reset");
        let error = Error::Store(StoreError::Unavailable(Box::new(cause)));
        assert_eq!(
            chain(&error).to_string(),
            "the store could not decide: the store is unavailable: connection reset"
        );
    }
}
