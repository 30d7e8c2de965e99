//! The Redis store: every decision is made inside Redis by one Lua script,
//! atomically and in one round trip, so any number of servers share a limit.
//!
//! - **One key per limit.** A string of packed numbers (level and time,
//!   window and count, …) or, for the sliding log, a sorted set, with an expiry at the moment the key
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

mod batch;
mod call;
pub mod keys;
mod scripts;

use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::cluster_async::ClusterConnection;
use redis::{FromRedisValue, RedisError, RedisResult};

use crate::clock::Clock;
use crate::store::{Check, Store};
use crate::{Decision, StoreError};
use batch::Batcher;
use call::{Form, Group, call};

pub use scripts::LIBRARY as LUA_LIBRARY;

/// How the Redis store connects and names its keys.
#[derive(Clone, Debug)]
pub struct RedisOptions {
    /// Prepended to every key (a namespace), without braces; default `sluice`.
    pub prefix: String,
    /// The most one call (connecting included) may take; default 1 s.
    pub timeout: Duration,
    /// Whether to run the decisions as a Redis Function (Redis 7+; about
    /// half the cost of a script), falling back to `EVALSHA` where Redis
    /// has no functions or refuses `FUNCTION LOAD`; default true. False
    /// uses `EVALSHA` only (for proxies that pass scripts but not functions).
    pub functions: bool,
}

impl Default for RedisOptions {
    fn default() -> Self {
        RedisOptions {
            prefix: "sluice".to_owned(),
            timeout: Duration::from_secs(1),
            functions: true,
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
    form: Arc<Form>,
    /// Packs concurrent decisions into one call; single Redis only (on a
    /// cluster, one call's keys must share a slot).
    batcher: Option<Batcher>,
}

#[derive(Clone)]
enum Connection {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl Connection {
    /// Sends `cmd` (routed by its key on a cluster).
    async fn query<T: FromRedisValue>(&self, cmd: &redis::Cmd) -> RedisResult<T> {
        match self {
            Connection::Single(c) => cmd.query_async(&mut c.clone()).await,
            Connection::Cluster(c) => cmd.query_async(&mut c.clone()).await,
        }
    }
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Connection::Single(_) => "Connection::Single",
            Connection::Cluster(_) => "Connection::Cluster",
        })
    }
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
        let form = Arc::new(Form::new(options.functions));
        let batcher = match &connection {
            Connection::Single(_) => Some(Batcher::start(
                connection.clone(),
                Arc::clone(&form),
                timeout,
            )),
            Connection::Cluster(_) => None,
        };
        Ok(RedisStore {
            connection,
            options,
            clock: None,
            form,
            batcher,
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
        within(self.options.timeout, self.connection.query::<()>(cmd)).await
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

    /// The group of `checks` as the library takes it.
    fn group(&self, checks: &[Check<'_>]) -> Group {
        let mut group = Group {
            keys: Vec::with_capacity(checks.len()),
            values: Vec::with_capacity(checks.len() * scripts::VALUES_PER_CHECK * 8),
        };
        for check in checks {
            let q = check.quota;
            group.push(
                self.key_of(check),
                [
                    u64::from(scripts::code(q.algorithm())),
                    check.cost,
                    u64::from(check.shadow),
                    q.capacity(),
                    q.period_us(),
                    q.scaled_unit(),
                    q.refill_per_us(),
                ],
            );
        }
        group
    }

    /// Runs the library on `checks` (all in one slot) in `mode`, in a call
    /// of its own; returns the time it decided at and one decision per check.
    async fn run(
        &self,
        checks: &[Check<'_>],
        mode: &str,
    ) -> Result<(u64, Vec<Decision>), StoreError> {
        let group = self.group(checks);
        let now = self.clock.as_ref().map(|c| c.now_us());
        let groups = [&group];
        let call = call(&self.connection, &self.form, now, mode, &groups);
        let reply = within(self.options.timeout, call).await?;
        parse_reply(&reply, checks)
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
        match (&self.batcher, checks) {
            (_, []) => Ok(Vec::new()),
            // A single Redis: every decision goes through the batcher. The
            // batch's call has the timeout; a check waits at most for the
            // calls in flight before its own.
            (Some(batcher), _) => {
                let now = self.clock.as_ref().map(|c| c.now_us());
                let reply = batcher.decide(self.group(checks), now).await?;
                Ok(parse_reply(&reply, checks)?.1)
            }
            // A cluster: checks in several slots are grouped per slot.
            (None, [_, _, ..]) => self.decide_grouped(checks).await,
            (None, _) => Ok(self.run(checks, "d").await?.1),
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

    async fn ping(&self) -> Result<(), StoreError> {
        RedisStore::ping(self).await
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

/// The time and the decisions in a reply for `checks`.
fn parse_reply(reply: &[i64], checks: &[Check<'_>]) -> Result<(u64, Vec<Decision>), StoreError> {
    let expected = 1 + checks.len() * scripts::REPLY_PER_CHECK;
    if reply.len() != expected {
        return Err(StoreError::Protocol(format!(
            "the script answered {} values, expected {expected}",
            reply.len()
        )));
    }
    let number = |v: i64| u64::try_from(v).unwrap_or(0);
    let decisions = reply[1..]
        .chunks_exact(scripts::REPLY_PER_CHECK)
        .zip(checks)
        .map(|(d, check)| Decision {
            allowed: d[0] == 1,
            limit: check.quota.capacity(),
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
        let quota = crate::Quota::new(
            crate::Algorithm::FixedWindow,
            5,
            Duration::from_secs(1),
            None,
        )
        .unwrap();
        let check = Check {
            policy: "p",
            key: "k",
            quota: &quota,
            cost: 1,
            shadow: false,
        };
        let checks = [check];
        assert!(matches!(
            parse_reply(&[1, 1, 0], &checks),
            Err(StoreError::Protocol(_))
        ));
        let (now, d) = parse_reply(&[42, 0, 3, 10, -1, 0, 0], &checks).unwrap();
        assert_eq!(d[0].limit, 5);
        assert_eq!(now, 42);
        assert_eq!(
            (d[0].allowed, d[0].remaining, d[0].retry_after),
            (false, 3, None)
        );
    }
}
