//! One call, as `run` in `lua/main.lua`: the time, then each group
//! decided all or nothing (or each check peeked or refunded), the reply
//! `now` and six integers per check, error markers for the checks that
//! could not be decided.

use std::cell::Cell;

use sluice::store::packed::{self, LATE, Mode, REPLY_PER_CHECK, VALUES_PER_CHECK};
use sluice::{Decision, Quota, algorithm};

use crate::args::{Call, Time};
use crate::keyspace::Keyspace;
use crate::state::{Failure, Save, Site};

/// Runs `call`; the reply's integers, or the error to answer (`LATE`).
pub fn run(keyspace: Keyspace<'_>, call: &Call<'_>) -> Result<Vec<i64>, String> {
    let (now, slack_ms) = match call.time {
        Time::Given(now) => (now, packed::TTL_SLACK_MS),
        Time::Redis { deadline } => {
            let now = keyspace.time()?;
            if deadline.is_some_and(|d| now > d) {
                return Err(format!("{LATE} the call reached Redis after its deadline"));
            }
            (now, 0)
        }
    };
    let site = Site {
        keyspace,
        now,
        slack_ms,
        last_quota: Cell::default(),
    };
    let mut reply = Vec::with_capacity(1 + call.keys.len() * REPLY_PER_CHECK);
    reply.push(as_int(now));
    let mut first = 0;
    for group in call.groups() {
        // The parser checked that the groups hold as many checks as there
        // are keys.
        let group_keys = call.keys.get(first..first + group.len()).unwrap_or(&[]);
        first += group.len();
        match call.mode {
            Mode::Decide => {
                let start = reply.len();
                if let Err((failure, position)) = decide_group(&site, group_keys, group, &mut reply)
                {
                    reply.truncate(start);
                    let marker = marker(&failure, position);
                    (0..group.len()).for_each(|_| reply.extend(marker));
                }
            }
            mode => {
                // Peeks and refunds are per check: a check's error is its own.
                for (i, (key, values)) in group_keys.iter().zip(group).enumerate() {
                    let answer = match mode {
                        Mode::Refund { at_us } => refund_check(&site, key, values, at_us),
                        _ => peek_check(&site, key, values),
                    };
                    reply.extend(answer.unwrap_or_else(|failure| marker(&failure, i)));
                }
            }
        }
    }
    // The writes kept for the end (a hot key's last) are made before the
    // answer.
    site.keyspace.flush()?;
    Ok(reply)
}

/// A check's decision as the reply's six integers.
type Answer = [i64; REPLY_PER_CHECK];

/// The answer of a refunded check.
const REFUNDED: Answer = [1, 0, 0, 0, 0, 0];

fn as_int(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn micros(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

fn answer(d: &Decision) -> Answer {
    [
        i64::from(d.allowed),
        as_int(d.remaining),
        micros(d.reset_after),
        d.retry_after.map_or(-1, micros),
        micros(d.delay),
        i64::from(d.shadow),
    ]
}

fn marker(failure: &Failure, position: usize) -> Answer {
    [
        -1,
        failure.problem,
        failure.detail,
        i64::try_from(position).unwrap_or(i64::MAX),
        0,
        0,
    ]
}

/// Decides one check on `key`, charging `cost` (`None`: its own), as
/// `decide_check`: carried first, then decided by the core's step; shadow
/// mode reports a denial allowed. Returns the write that keeps an
/// admission.
fn decide_check<'k>(
    site: &Site<'_>,
    key: &'k [u8],
    values: &[u64; VALUES_PER_CHECK],
    cost: Option<u64>,
) -> Result<(Decision, Option<(Save<'k>, Quota)>), Failure> {
    let quota = site.quota(values)?;
    let cost = cost.unwrap_or(values[1]);
    let loaded = site.load(key, &quota, cost, true)?;
    let (mut decision, next) = algorithm::decide(loaded.state(), &quota, cost, site.now);
    let save = match next {
        Some(next) => Some((site.save_of(key, &quota, loaded, &decision, next)?, quota)),
        None => None,
    };
    if !decision.allowed && values[2] == 1 {
        decision.allowed = true;
        decision.retry_after = Some(std::time::Duration::ZERO);
        decision.shadow = true;
    }
    Ok((decision, save))
}

/// `decide_group`: every check decided; the admissions kept only when
/// every enforced check admits (the last check's at once, as the Lua);
/// else nothing is kept and the checks that admitted report what stands.
/// The answers are appended to `reply` (the caller drops them on an
/// error).
fn decide_group(
    site: &Site<'_>,
    keys: &[&[u8]],
    group: &[[u64; VALUES_PER_CHECK]],
    reply: &mut Vec<i64>,
) -> Result<(), (Failure, usize)> {
    let start = reply.len();
    let mut held = Vec::new();
    let mut all = true;
    for (i, (key, values)) in keys.iter().zip(group).enumerate() {
        let (decision, save) = decide_check(site, key, values, None).map_err(|f| (f, i))?;
        all &= decision.allowed;
        let last = i + 1 == group.len();
        match (save, all) {
            (Some(save), true) if !last => held.push((save, i)),
            // A group of one check (most) holds nothing: no vector.
            (save, true) if last => {
                for (save, at) in held.drain(..).chain(save.map(|save| (save, i))) {
                    site.save(save.0, &save.1).map_err(|f| (f, at))?;
                }
            }
            _ => {}
        }
        reply.extend(answer(&decision));
    }
    if !all {
        for (i, (key, values)) in keys.iter().zip(group).enumerate() {
            let at = start + i * REPLY_PER_CHECK;
            let Some(answered) = reply.get_mut(at..at + REPLY_PER_CHECK) else {
                continue;
            };
            if answered[0] == 1 && answered[5] == 0 {
                let (standing, _) = decide_check(site, key, values, Some(0)).map_err(|f| (f, i))?;
                if let Some(answered) = reply.get_mut(at + 1..at + 5) {
                    answered.copy_from_slice(&answer(&standing)[1..5]);
                }
            }
        }
    }
    Ok(())
}

/// What the check would be told at its cost, nothing kept.
fn peek_check(
    site: &Site<'_>,
    key: &[u8],
    values: &[u64; VALUES_PER_CHECK],
) -> Result<Answer, Failure> {
    let quota = site.quota(values)?;
    let loaded = site.load(key, &quota, values[1], false)?;
    Ok(answer(&algorithm::peek(
        loaded.state(),
        &quota,
        values[1],
        site.now,
    )))
}

/// Gives back the check's charge made at `at_us`.
fn refund_check(
    site: &Site<'_>,
    key: &[u8],
    values: &[u64; VALUES_PER_CHECK],
    at_us: u64,
) -> Result<Answer, Failure> {
    let quota = site.quota(values)?;
    site.refund(key, &quota, values[1], at_us)?;
    Ok(REFUNDED)
}
