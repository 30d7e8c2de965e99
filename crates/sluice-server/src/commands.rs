//! The one-shot commands: `sluice validate`, `sluice check`, `sluice peek`
//! and `sluice reset`. Each works on the store of a configuration through
//! the same [`DecisionService`] `sluice serve` decides with, so it answers
//! exactly as the HTTP API would.

use std::path::Path;

use serde::Serialize;
use sluice::{Error, Limiter};

use crate::body::{DecisionBody, MultiBody};
use crate::config::{Config, ConfigErrors};
use crate::service::{DecisionService, Snapshot};
use crate::stores::{self, Connecting};
use crate::summary::Summary;

/// Checks the configuration file at `path`: what it says, resolved, or
/// every error in it.
pub fn validate(path: &Path) -> Result<Summary, ConfigErrors> {
    Config::load(path).map(|config| Summary::of(&config))
}

/// A decision as `sluice check` and `sluice peek` print it: one policy's
/// body, or for several the most restrictive one's at the top and every
/// policy's under `results` (as `POST /v1/check` with `policies`).
#[derive(Serialize)]
#[serde(untagged)]
pub enum Printed<'a> {
    /// One policy's decision.
    One(DecisionBody<'a>),
    /// Several policies' decisions, all or nothing.
    Several(MultiBody<'a>),
}

impl Printed<'_> {
    /// Whether the request was (or would be) admitted.
    pub fn allowed(&self) -> bool {
        match self {
            Printed::One(body) => body.allowed,
            Printed::Several(multi) => multi.top.allowed,
        }
    }
}

/// Opens the store of `config`, waiting for Redis to connect, and puts
/// its policies in force.
pub async fn open(config: Config) -> anyhow::Result<DecisionService> {
    let (store, handles) = stores::open_resilient(
        &config.store,
        &config.redis,
        &config.memory,
        Connecting::Wait,
    )
    .await?;
    let limiter = Limiter::new(store, config.policies);
    Ok(DecisionService::with_handles(
        limiter,
        config.store.kind(),
        None,
        handles,
    ))
}

/// Charges `cost` to `key` under every one of `policies`, all or nothing.
pub async fn check<'a>(
    snapshot: &'a Snapshot,
    policies: &[&str],
    key: &'a str,
    cost: u64,
) -> anyhow::Result<Printed<'a>> {
    let answer = (snapshot.check(policies, key, cost).await).map_err(|e| explain(snapshot, e))?;
    let mut results: Vec<DecisionBody<'a>> = (answer.verdicts.iter())
        .map(|v| DecisionBody::of(v, key, cost))
        .collect();
    let top = results[answer.deciding()].clone();
    Ok(if results.len() == 1 {
        Printed::One(results.remove(0))
    } else {
        Printed::Several(MultiBody { top, results })
    })
}

/// What a check of cost 1 on `key` under `policy` would be told, charging
/// nothing.
pub async fn peek<'a>(
    snapshot: &'a Snapshot,
    policy: &str,
    key: &'a str,
) -> anyhow::Result<Printed<'a>> {
    let verdict = (snapshot.peek(policy, key).await).map_err(|e| explain(snapshot, e))?;
    Ok(Printed::One(DecisionBody::of(&verdict, key, 1)))
}

/// Forgets `key` under `policy`: its next check starts afresh.
pub async fn reset(snapshot: &Snapshot, policy: &str, key: &str) -> anyhow::Result<()> {
    (snapshot.reset(policy, key).await).map_err(|e| explain(snapshot, e))
}

/// `error` for a person at a terminal: an unknown policy lists the known
/// ones.
fn explain(snapshot: &Snapshot, error: Error) -> anyhow::Error {
    match error {
        Error::UnknownPolicy(name) => {
            let mut known: Vec<&str> = snapshot.policies().iter().map(|p| p.name()).collect();
            known.sort_unstable();
            anyhow::anyhow!(
                "unknown policy {name:?}; the policies are: {}",
                known.join(", ")
            )
        }
        other => other.into(),
    }
}
