//! The one-shot commands: `sluice check` and `sluice validate`.

use std::path::Path;

use anyhow::Context;
use sluice::{Error, Limiter};

use crate::body::DecisionBody;
use crate::config::{Config, ConfigErrors};
use crate::stores::{self, Connecting};

/// Checks the configuration file at `path`: the number of policies it
/// defines, or every error in it.
pub fn validate(path: &Path) -> Result<usize, ConfigErrors> {
    Config::load(path).map(|c| c.policies.len())
}

/// Makes one decision with `config` and returns it as the JSON body.
pub async fn check<'a>(
    config: Config,
    policy: &'a str,
    key: &'a str,
    cost: u64,
) -> anyhow::Result<DecisionBody<'a>> {
    let (store, _handles) = stores::open_resilient(
        &config.store,
        &config.redis,
        &config.memory,
        Connecting::Wait,
    )
    .await?;
    let limiter = Limiter::new(store, config.policies);
    let resolved = match limiter.resolve(policy, key) {
        Err(Error::UnknownPolicy(name)) => {
            let mut known: Vec<&str> = limiter.policies().iter().map(|p| p.name()).collect();
            known.sort_unstable();
            anyhow::bail!(
                "unknown policy {name:?}; the policies are: {}",
                known.join(", ")
            )
        }
        other => other?,
    };
    let verdict = (limiter.decide_one(resolved, cost).await)
        .with_context(|| format!("checking {key:?} against policy {policy:?}"))?;
    Ok(DecisionBody::new(
        policy,
        key,
        verdict.quota(),
        &verdict.decision,
        cost,
    ))
}
