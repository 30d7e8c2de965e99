//! The Redis store: every decision is made inside Redis by one Lua script,
//! atomically and in one round trip, so any number of servers share a limit.
//!
//! - **One key per limit.** A string (`"level:at"`, `"window:count"`, …) or,
//!   for the sliding log, a sorted set, with an expiry at the moment the key
//!   is back to its untouched state: idle keys cost no memory.
//! - **Time** comes from Redis `TIME` unless a clock is given
//!   ([`RedisStore::with_clock`]); the tests drive the scripts with a fake one.
//! - **Connections** are multiplexed: concurrent decisions are pipelined on
//!   one connection instead of queueing one round trip at a time. A lost
//!   connection is re-established on the next call; a script missing after
//!   a restart or `SCRIPT FLUSH` is loaded again transparently.
//! - **All or nothing.** Several checks in one [`Store::decide`] call are
//!   one script call on a single Redis, which charges every limit or none.
//!   On Redis Cluster the checks are grouped by hash tag (a client's key; see
//!   [`keys`]): all the policies of one client are one atomic call. Checks on
//!   different clients' keys may live in different slots: each slot's group
//!   is charged atomically, and when a group denies, the groups already
//!   charged are refunded by a second call. Between the charge and the
//!   refund (one round trip) another request may see the charged state, so
//!   it may be denied where it would have been admitted: the guarantee is
//!   that no limit is ever over-admitted, and that a denied request
//!   consumes nothing once the call returns.

pub mod keys;
mod scripts;

use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::cluster_async::ClusterConnection;
use redis::{RedisError, ScriptInvocation};

use crate::clock::Clock;
use crate::store::{Check, Store};
use crate::{Decision, StoreError};

pub use scripts::SOURCE as SCRIPT_SOURCE;

/// How the Redis store connects and names its keys.
#[derive(Clone, Debug)]
pub struct RedisOptions {
    /// Prepended to every key (a namespace), without braces; default `sluice`.
    pub prefix: String,
    /// The most one call (connecting included) may take; default 1 s.
    pub timeout: Duration,
}

impl Default for RedisOptions {
    fn default() -> Self {
        RedisOptions {
            prefix: "sluice".to_owned(),
            timeout: Duration::from_secs(1),
        }
    }
}

/// Limiter state in Redis or Redis Cluster.
///
/// Cloning is cheap: clones share the multiplexed connection.
#[derive(Clone)]
pub struct RedisStore {
    connection: Connection,
    options: RedisOptions,
    clock: Option<Arc<dyn Clock>>,
}

#[derive(Clone)]
enum Connection {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl RedisStore {
    /// Connects with the default options to `redis://[user:password@]host[:port][/db]`,
    /// `rediss://…` (TLS) or `redis+cluster://[user:password@]host:port[,host:port…]`.
    pub async fn connect(url: &str) -> Result<RedisStore, StoreError> {
        RedisStore::connect_with(url, RedisOptions::default()).await
    }

    /// Connects to `url` (see [`RedisStore::connect`]) with `options`.
    pub async fn connect_with(url: &str, options: RedisOptions) -> Result<RedisStore, StoreError> {
        if options.prefix.contains(['{', '}']) {
            return Err(StoreError::Protocol(format!(
                "the key prefix {:?} must not contain braces (they choose the cluster slot)",
                options.prefix
            )));
        }
        let timeout = options.timeout;
        let connecting = async {
            if let Some(nodes) = cluster_nodes(url) {
                let client = redis::cluster::ClusterClientBuilder::new(nodes)
                    .connection_timeout(timeout)
                    .response_timeout(timeout)
                    .build()?;
                Ok(Connection::Cluster(client.get_async_connection().await?))
            } else {
                let client = redis::Client::open(url)?;
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(timeout))
                    .set_response_timeout(Some(timeout))
                    .set_number_of_retries(1);
                Ok(Connection::Single(
                    ConnectionManager::new_with_config(client, config).await?,
                ))
            }
        };
        let connection = within(timeout, connecting).await?;
        Ok(RedisStore {
            connection,
            options,
            clock: None,
        })
    }

    /// Decides with the time from `clock` instead of Redis `TIME`. For
    /// tests, which drive time by hand.
    pub fn with_clock(mut self, clock: impl Clock) -> RedisStore {
        self.clock = Some(Arc::new(clock));
        self
    }

    /// Whether Redis answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.query(&redis::cmd("PING")).await
    }

    /// Sends one command (routed by its key on a cluster).
    async fn query(&self, cmd: &redis::Cmd) -> Result<(), StoreError> {
        let call = async {
            match &self.connection {
                Connection::Single(c) => cmd.query_async::<()>(&mut c.clone()).await,
                Connection::Cluster(c) => cmd.query_async::<()>(&mut c.clone()).await,
            }
        };
        within(self.options.timeout, call).await
    }

    /// The Redis key that holds `check`'s state.
    pub fn key_of(&self, check: &Check<'_>) -> String {
        keys::state_key(
            &self.options.prefix,
            check.policy,
            check.key,
            check.quota.fingerprint(),
        )
    }

    /// Runs the script on `checks` (all in one slot) in `mode`; returns the
    /// time it decided at and one decision per check.
    async fn run(
        &self,
        checks: &[Check<'_>],
        mode: &str,
    ) -> Result<(u64, Vec<Decision>), StoreError> {
        let script = scripts::decide();
        let mut invocation = script.prepare_invoke();
        for check in checks {
            invocation.key(self.key_of(check));
        }
        let now = self.clock.as_ref().map(|c| c.now_us().to_string());
        invocation.arg(now.unwrap_or_default()).arg(mode);
        for check in checks {
            let q = check.quota;
            invocation
                .arg(scripts::code(q.algorithm()))
                .arg(check.cost)
                .arg(u8::from(check.shadow))
                .arg(q.capacity())
                .arg(q.period_us())
                .arg(q.scaled_unit())
                .arg(q.refill_per_us());
        }
        let reply: Vec<i64> = within(self.options.timeout, self.invoke(&invocation)).await?;
        let (at, mut decisions) = parse_reply(&reply, checks.len())?;
        for (decision, check) in decisions.iter_mut().zip(checks) {
            decision.limit = check.quota.capacity();
        }
        Ok((at, decisions))
    }

    async fn invoke(&self, invocation: &ScriptInvocation<'_>) -> Result<Vec<i64>, RedisError> {
        match &self.connection {
            Connection::Single(c) => invocation.invoke_async(&mut c.clone()).await,
            Connection::Cluster(c) => invocation.invoke_async(&mut c.clone()).await,
        }
    }

    /// Decides checks that may live in several cluster slots: one atomic
    /// call per hash tag, then refunds when a group denied.
    async fn decide_grouped(&self, checks: &[Check<'_>]) -> Result<Vec<Decision>, StoreError> {
        let mut groups: Vec<(String, Vec<usize>)> = Vec::new();
        for (i, check) in checks.iter().enumerate() {
            let key = self.key_of(check);
            let tag = keys::hash_tag(&key).to_owned();
            match groups.iter_mut().find(|(t, _)| *t == tag) {
                Some((_, members)) => members.push(i),
                None => groups.push((tag, vec![i])),
            }
        }
        let mut decisions = vec![None; checks.len()];
        let mut charged = Vec::new();
        let mut all = true;
        for (_, members) in &groups {
            let group: Vec<Check<'_>> = members.iter().map(|&i| checks[i]).collect();
            let (at, made) = self.run(&group, "d").await?;
            let admitted = made.iter().all(|d| d.allowed);
            all &= admitted;
            if admitted {
                charged.push((at, members));
            }
            for (&i, d) in members.iter().zip(made) {
                decisions[i] = Some(d);
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
            for (at, members) in charged {
                // Give back exactly what was taken: shadow denials took nothing.
                let taken: Vec<usize> = members
                    .iter()
                    .copied()
                    .filter(|&i| decisions[i].is_some_and(|d| !d.shadow))
                    .collect();
                let refunds: Vec<Check<'_>> = taken.iter().map(|&i| checks[i]).collect();
                self.run(&refunds, &format!("r{at}")).await?;
                stale.extend(taken);
            }
            for i in stale {
                let standing = Check {
                    cost: 0,
                    ..checks[i]
                };
                let (_, mut made) = self.run(std::slice::from_ref(&standing), "d").await?;
                decisions[i] = made.pop();
            }
        }
        decisions
            .into_iter()
            .map(|d| d.ok_or_else(|| StoreError::Protocol("a check got no decision".into())))
            .collect()
    }
}

impl Store for RedisStore {
    async fn decide(&self, checks: &[Check<'_>]) -> Result<Vec<Decision>, StoreError> {
        for (i, check) in checks.iter().enumerate() {
            if checks[..i]
                .iter()
                .any(|c| c.policy == check.policy && c.key == check.key)
            {
                return Err(StoreError::Protocol(format!(
                    "policy {:?} and key {:?} appear twice in one call",
                    check.policy, check.key
                )));
            }
        }
        match (&self.connection, checks) {
            (_, []) => Ok(Vec::new()),
            (Connection::Cluster(_), [_, _, ..]) => self.decide_grouped(checks).await,
            _ => Ok(self.run(checks, "d").await?.1),
        }
    }

    async fn peek(&self, check: &Check<'_>) -> Result<Decision, StoreError> {
        let (_, mut decisions) = self.run(std::slice::from_ref(check), "p").await?;
        decisions
            .pop()
            .ok_or_else(|| StoreError::Protocol("no decision for the check".into()))
    }

    async fn reset(&self, check: &Check<'_>) -> Result<(), StoreError> {
        self.query(redis::cmd("DEL").arg(self.key_of(check))).await
    }
}

/// The nodes of a `redis+cluster://[credentials@]host:port,host:port` URL,
/// as `redis://` URLs; `None` for any other URL.
fn cluster_nodes(url: &str) -> Option<Vec<String>> {
    let rest = url.strip_prefix("redis+cluster://")?;
    let (credentials, hosts) = match rest.rsplit_once('@') {
        Some((credentials, hosts)) => (format!("{credentials}@"), hosts),
        None => (String::new(), rest),
    };
    let hosts = hosts.trim_end_matches('/');
    Some(
        hosts
            .split(',')
            .filter(|h| !h.is_empty())
            .map(|h| format!("redis://{credentials}{h}"))
            .collect(),
    )
}

fn parse_reply(reply: &[i64], checks: usize) -> Result<(u64, Vec<Decision>), StoreError> {
    let expected = 1 + checks * scripts::REPLY_PER_CHECK;
    if reply.len() != expected {
        return Err(StoreError::Protocol(format!(
            "the script answered {} values, expected {expected}",
            reply.len()
        )));
    }
    let number = |v: i64| u64::try_from(v).unwrap_or(0);
    let decisions = reply[1..]
        .chunks_exact(scripts::REPLY_PER_CHECK)
        .map(|d| Decision {
            allowed: d[0] == 1,
            limit: 0, // filled in from the quota by the caller
            remaining: number(d[1]),
            reset_after: Duration::from_micros(number(d[2])),
            retry_after: (d[3] >= 0).then(|| Duration::from_micros(number(d[3]))),
            delay: Duration::from_micros(number(d[4])),
            shadow: d[5] == 1,
        })
        .collect();
    Ok((number(reply[0]), decisions))
}

/// Runs a Redis call within `timeout`, mapping its errors.
async fn within<T>(
    timeout: Duration,
    call: impl Future<Output = Result<T, RedisError>>,
) -> Result<T, StoreError> {
    match tokio::time::timeout(timeout, call).await {
        Err(_) => Err(StoreError::Timeout(timeout)),
        // The client's own response timeout (the same duration) may fire first.
        Ok(Err(error)) if error.is_timeout() => Err(StoreError::Timeout(timeout)),
        Ok(result) => result.map_err(store_error),
    }
}

fn store_error(error: RedisError) -> StoreError {
    const TRANSIENT_CODES: [&str; 6] = [
        "LOADING",
        "BUSY",
        "TRYAGAIN",
        "CLUSTERDOWN",
        "MASTERDOWN",
        "READONLY",
    ];
    let transient = error.is_io_error()
        || error.is_connection_refusal()
        || error.is_connection_dropped()
        || error.is_cluster_error()
        || error.code().is_some_and(|c| TRANSIENT_CODES.contains(&c));
    if transient {
        StoreError::Unavailable(Box::new(error))
    } else {
        StoreError::Protocol(error.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_urls_list_their_nodes() {
        assert_eq!(
            cluster_nodes("redis+cluster://127.0.0.1:7000,127.0.0.1:7001/"),
            Some(vec![
                "redis://127.0.0.1:7000".to_owned(),
                "redis://127.0.0.1:7001".to_owned()
            ])
        );
        assert_eq!(
            cluster_nodes("redis+cluster://:pw@127.0.0.1:7000,127.0.0.1:7001"),
            Some(vec![
                "redis://:pw@127.0.0.1:7000".to_owned(),
                "redis://:pw@127.0.0.1:7001".to_owned()
            ])
        );
        assert_eq!(cluster_nodes("redis://127.0.0.1:6379"), None);
    }

    #[test]
    fn a_short_reply_is_a_protocol_error() {
        assert!(matches!(
            parse_reply(&[1, 1, 0], 1),
            Err(StoreError::Protocol(_))
        ));
        let (now, d) = parse_reply(&[42, 0, 3, 10, -1, 0, 0], 1).unwrap();
        assert_eq!(now, 42);
        assert_eq!(
            (d[0].allowed, d[0].remaining, d[0].retry_after),
            (false, 3, None)
        );
    }
}
