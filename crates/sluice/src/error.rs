//! The errors a caller can match on.

use std::time::Duration;

/// Why a store could not make a decision.
#[derive(Debug, thiserror::Error)]
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
}

impl StoreError {
    /// Whether the same call may succeed later.
    pub fn is_transient(&self) -> bool {
        matches!(self, StoreError::Unavailable(_) | StoreError::Timeout(_))
    }
}

/// Why a [`Limiter`](crate::Limiter) could not make a decision.
#[derive(Debug, thiserror::Error)]
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
    #[error("store error")]
    Store(#[from] StoreError),
}
