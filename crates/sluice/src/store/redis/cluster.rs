//! Checks that span several Redis Cluster slots: one atomic call per slot
//! (per hash tag), and refunds to the slots already charged when another
//! denies. Each slot's call goes through the batcher when there is one
//! (packed with other decisions on that slot); refunds and standings are
//! calls of their own.

use std::future::Future;
use std::pin::Pin;

use tokio::time::Instant;

use super::batch::Batcher;
use super::call::Caller;
use super::library::Mode;
use super::{keys, reply};
use crate::store::Check;
use crate::{Decision, StoreError};

/// Decides `checks`, all in one slot (or on a single Redis), all or
/// nothing: through `batcher` when there is one (answered within the
/// timeout of `arrived`), else in a call of their own. Returns the time
/// the call decided at and one decision per check.
pub async fn decide_slot(
    caller: &Caller,
    batcher: Option<&Batcher>,
    arrived: Instant,
    checks: &[Check<'_>],
) -> Result<(u64, Vec<Decision>), StoreError> {
    match batcher {
        Some(batcher) => {
            let group = caller.group(checks);
            let reply = batcher.decide(group, caller.now(), arrived).await?;
            reply::parse(&reply, checks, |c| caller.key_of(c))
        }
        // Boxed: a call's future is kilobytes, and every decision's future
        // would carry (and move) it, batched ones too. As a `dyn` future,
        // so that the compiler checks it `Send` once, not at every caller.
        None => {
            let call: Pin<Box<dyn Future<Output = _> + Send + '_>> =
                Box::pin(caller.run(checks, Mode::Decide));
            call.await
        }
    }
}

/// Decides checks that may live in several cluster slots: one atomic call
/// per hash tag, in order, stopping at the first group that denies; then
/// the groups already charged are refunded, and every check charged
/// nothing (refunded, or never reached) reports its standing. Returns when
/// each check's call decided it (what a refund of its charge names) and
/// one decision per check.
pub async fn decide_grouped(
    caller: &Caller,
    batcher: Option<&Batcher>,
    arrived: Instant,
    checks: &[Check<'_>],
) -> Result<(Vec<Option<u64>>, Vec<Decision>), StoreError> {
    let mut groups: Vec<(String, Vec<usize>)> = Vec::new();
    for (i, check) in checks.iter().enumerate() {
        let key = caller.key_of(check);
        let tag = keys::hash_tag(&key).to_owned();
        match groups.iter_mut().find(|(t, _)| *t == tag) {
            Some((_, members)) => members.push(i),
            None => groups.push((tag, vec![i])),
        }
    }
    let mut decisions = vec![None; checks.len()];
    let mut decided_at = vec![None; checks.len()];
    let mut charged = Vec::new();
    let mut all = true;
    for (_, members) in &groups {
        let group: Vec<Check<'_>> = members.iter().map(|&i| checks[i]).collect();
        let (at, made) = match decide_slot(caller, batcher, arrived, &group).await {
            Ok(answer) => answer,
            Err(error) => {
                // No check is both charged and answered as failed: the
                // groups already charged are given back first.
                refund(caller, checks, &decisions, &charged).await?;
                return Err(error);
            }
        };
        let admitted = made.iter().all(|d| d.allowed);
        all &= admitted;
        if admitted {
            charged.push((at, members));
        }
        for (&i, d) in members.iter().zip(made) {
            decisions[i] = Some(d);
            decided_at[i] = Some(at);
        }
        if !all {
            break;
        }
    }
    if !all {
        // Groups never reached, and charges given back, get their standing.
        let mut stale: Vec<usize> = (0..checks.len())
            .filter(|&i| decisions[i].is_none())
            .collect();
        stale.extend(refund(caller, checks, &decisions, &charged).await?);
        for i in stale {
            decided_at[i] = None;
            let standing = checks[i].with_cost(0);
            let (_, mut made) = caller
                .run(std::slice::from_ref(&standing), Mode::Decide)
                .await?;
            decisions[i] = made.pop();
        }
    }
    let decisions = decisions
        .into_iter()
        .map(|d| d.ok_or_else(|| StoreError::Protocol("a check got no decision".into())))
        .collect::<Result<_, _>>()?;
    Ok((decided_at, decisions))
}

/// Gives back what the `charged` groups (each with the time its call
/// decided at) took; returns the checks refunded.
async fn refund(
    caller: &Caller,
    checks: &[Check<'_>],
    decisions: &[Option<Decision>],
    charged: &[(u64, &Vec<usize>)],
) -> Result<Vec<usize>, StoreError> {
    let mut refunded = Vec::new();
    for &(at_us, members) in charged {
        // Give back exactly what was taken: shadow denials took nothing.
        let taken: Vec<usize> = members
            .iter()
            .copied()
            .filter(|&i| decisions[i].is_some_and(|d| !d.shadow))
            .collect();
        let refunds: Vec<Check<'_>> = taken.iter().map(|&i| checks[i]).collect();
        caller.run(&refunds, Mode::Refund { at_us }).await?;
        refunded.extend(taken);
    }
    Ok(refunded)
}
