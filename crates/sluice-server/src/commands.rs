//! The one-shot commands: `sluice validate`, `sluice check`, `sluice peek`
//! and `sluice reset`. Each works on the store of a configuration through
//! the same [`DecisionService`] `sluice serve` decides with, so it answers
//! exactly as the HTTP API would.

use std::path::Path;

use serde::Serialize;
use sluice::summary::Summary as StateSummary;
use sluice::{Clock, Error, Limiter, SystemClock};

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
/// nothing; with `state`, also the key's state under each of the policy's
/// limits.
pub async fn peek<'a>(
    snapshot: &'a Snapshot,
    policy: &str,
    key: &'a str,
    state: bool,
) -> anyhow::Result<Peeked<'a>> {
    let verdict = (snapshot.peek(policy, key).await).map_err(|e| explain(snapshot, e))?;
    let state = if state {
        let limits = (snapshot.inspect(policy, key).await).map_err(|e| explain(snapshot, e))?;
        let now_us = SystemClock.now_us();
        let states = (limits.iter())
            .map(|(quota, state)| LimitState::of(quota, state.as_ref(), now_us))
            .collect();
        Some(states)
    } else {
        None
    };
    Ok(Peeked {
        decision: Printed::One(DecisionBody::of(&verdict, key, 1)),
        state,
    })
}

/// What `sluice peek` prints: the decision, and with `--state` the key's
/// state per limit under `state`.
#[derive(Serialize)]
pub struct Peeked<'a> {
    /// The decision a check of cost 1 would get.
    #[serde(flatten)]
    pub decision: Printed<'a>,
    /// The key's state under each limit of the policy, in order.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<Vec<LimitState>>,
}

/// One limit's state as `sluice peek --state` prints it: a line for a
/// person (`summary`) and its numbers as fields.
#[derive(Serialize)]
pub struct LimitState {
    /// The limit's algorithm.
    pub algorithm: &'static str,
    /// The state in words ([`sluice::summary::Summary`]), `untouched` for none.
    pub summary: String,
    /// Whether nothing is stored for the key.
    pub untouched: bool,
    /// What a request of cost 1 would still find.
    pub remaining: u64,
    /// The most there can be: a bucket's burst, a window's limit.
    pub capacity: u64,
    /// Milliseconds until the key is untouched again.
    pub reset_after_ms: u128,
}

impl LimitState {
    fn of(quota: &sluice::Quota, state: Option<&sluice::algorithm::State>, now_us: u64) -> Self {
        let summary = StateSummary::new(state, quota, now_us);
        LimitState {
            algorithm: quota.algorithm().name(),
            summary: summary.to_string(),
            untouched: state.is_none(),
            remaining: summary.remaining,
            capacity: summary.capacity,
            reset_after_ms: summary.reset_after.as_millis(),
        }
    }
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
