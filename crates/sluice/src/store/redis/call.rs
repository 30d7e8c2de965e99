//! Calling the library: checks as the library takes them, in the form this
//! Redis runs (the native module's command when loaded, else a function,
//! else a script), loaded again when Redis lost it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use redis::{Cmd, RedisError, RedisResult};

use super::connection::{Connection, within};
use super::library::{self, Mode, VALUES_PER_CHECK};
use super::{keys, reply};
use crate::clock::Clock;
use crate::store::Check;
use crate::{Decision, StoreError};

/// The checks of one all-or-nothing group, as the library takes them: a
/// key and [`VALUES_PER_CHECK`] packed values per check.
#[derive(Debug, Default)]
pub struct Group {
    /// The state key of each check.
    pub keys: Vec<String>,
    /// The values of each check, in order, packed by [`library::pack`].
    pub values: Vec<u8>,
}

impl Group {
    /// Adds a check on `key` with `values`.
    pub fn push(&mut self, key: String, values: [u64; VALUES_PER_CHECK]) {
        self.keys.push(key);
        library::pack(&values, &mut self.values);
    }
}

/// Which form of the library this Redis runs: the native module's
/// `SLUICE.CALL` (`crates/sluice-redis-module`) when Redis has it; else
/// the function until Redis shows it cannot (no `FCALL`, or `FUNCTION
/// LOAD` refused), then the script.
#[derive(Debug)]
pub struct Form {
    functions: AtomicBool,
    /// Whether to use the module when Redis has it.
    module: bool,
    /// The connection (by [`Connection::opened`]) on which Redis last
    /// answered that it has no such command, plus 1 (0: none did): the
    /// module is asked for again after a reconnect, maybe to a Redis that
    /// has it.
    module_missing_on: AtomicU64,
    /// Whether the module answered since it was last found missing (for
    /// the log line that says which form decides).
    module_seen: AtomicBool,
}

impl Form {
    /// The module first when `module`, then functions when `functions`,
    /// else scripts only.
    pub fn new(module: bool, functions: bool) -> Form {
        Form {
            functions: AtomicBool::new(functions),
            module,
            module_missing_on: AtomicU64::new(0),
            module_seen: AtomicBool::new(false),
        }
    }

    /// Whether to try the module on `connection`.
    fn try_module(&self, connection: &Connection) -> bool {
        self.module && self.module_missing_on.load(Ordering::Relaxed) != connection.opened() + 1
    }

    fn module_answered(&self) {
        if !self.module_seen.swap(true, Ordering::Relaxed) {
            tracing::info!("Redis decides with the native Sluice module ({MODULE_COMMAND})");
        }
    }

    fn module_missing(&self, connection: &Connection) {
        self.module_missing_on
            .store(connection.opened() + 1, Ordering::Relaxed);
        if self.module_seen.swap(false, Ordering::Relaxed) || connection.opened() <= 1 {
            tracing::info!(
                "no Sluice module on this Redis: it decides with the Lua library ({})",
                if self.functions() {
                    "a Function"
                } else {
                    "EVALSHA"
                }
            );
        }
    }

    /// The form the last call used: `module`, `function` or `script`.
    pub fn describe(&self) -> &'static str {
        if self.module && self.module_seen.load(Ordering::Relaxed) {
            "module"
        } else if self.functions() {
            "function"
        } else {
            "script"
        }
    }

    fn functions(&self) -> bool {
        self.functions.load(Ordering::Relaxed)
    }

    fn use_scripts(&self) {
        self.functions.store(false, Ordering::Relaxed);
    }
}

/// Runs the library on `groups` in `mode` at `now` (Redis `TIME` when
/// `None`, then refused by Redis after `deadline` if one is given, in µs
/// of Redis `TIME`); returns the raw reply.
pub async fn call(
    connection: &Connection,
    form: &Form,
    now: Option<u64>,
    deadline: Option<u64>,
    mode: Mode,
    groups: &[&Group],
) -> RedisResult<Vec<i64>> {
    let time = Time { now, deadline };
    if form.try_module(connection) {
        let cmd = command(MODULE_COMMAND, None, time, mode, groups);
        let first_key = groups.iter().find_map(|g| g.keys.first());
        let sent = match first_key {
            Some(key) => connection.query_at(&cmd, key).await,
            None => connection.query(&cmd).await,
        };
        match sent {
            Err(e) if says(&e, "unknown command") => form.module_missing(connection),
            result => {
                if result.is_ok() {
                    form.module_answered();
                }
                return result;
            }
        }
    }
    if form.functions() {
        let fcall = || command("FCALL", Some(library::function_name()), time, mode, groups);
        match connection.query(&fcall()).await {
            Err(e) if says(&e, "Function not found") => {
                let load = redis::cmd("FUNCTION")
                    .arg("LOAD")
                    .arg("REPLACE")
                    .arg(library::function_library())
                    .to_owned();
                match connection.query::<()>(&load).await {
                    Ok(()) => return connection.query(&fcall()).await,
                    // No functions, or no permission: scripts may still do.
                    Err(e) if says(&e, "unknown command") || e.code() == Some("NOPERM") => {
                        form.use_scripts()
                    }
                    // Anything else may pass (OOM, BUSY, LOADING, a lost
                    // connection): this call fails, the next loads again.
                    Err(e) => return Err(e),
                }
            }
            Err(e) if says(&e, "unknown command") => form.use_scripts(),
            result => return result,
        }
    }
    let evalsha = || command("EVALSHA", Some(library::script_sha()), time, mode, groups);
    match connection.query(&evalsha()).await {
        Err(e) if e.code() == Some("NOSCRIPT") => {
            let load = redis::cmd("SCRIPT")
                .arg("LOAD")
                .arg(library::script())
                .to_owned();
            connection.query::<String>(&load).await?;
            connection.query(&evalsha()).await
        }
        result => result,
    }
}

/// The time a call decides at, and the deadline it must start by.
#[derive(Clone, Copy)]
struct Time {
    /// The caller's time; Redis `TIME` when `None`.
    now: Option<u64>,
    /// On Redis `TIME`, the instant after which Redis refuses the call.
    deadline: Option<u64>,
}

/// The native module's command: `FCALL`'s arguments without the
/// function's name.
pub const MODULE_COMMAND: &str = "SLUICE.CALL";

/// `<name> [<id>] <number of keys> <keys…>`, then the arguments of
/// [`library::Call::arguments`] from groups already packed: `<now> <mode>
/// [<n> <packed values>]…` (a test holds the two equal), where `<now>` is
/// `<<deadline>` for Redis `TIME` with a deadline. The module's command
/// has no `<id>`.
fn command(name: &str, id: Option<&str>, time: Time, mode: Mode, groups: &[&Group]) -> Cmd {
    let mut cmd = redis::cmd(name);
    if let Some(id) = id {
        cmd.arg(id);
    }
    cmd.arg(groups.iter().map(|g| g.keys.len()).sum::<usize>());
    for group in groups {
        cmd.arg(&group.keys);
    }
    match time {
        Time { now: Some(now), .. } => cmd.arg(now),
        Time {
            deadline: Some(deadline),
            ..
        } => cmd.arg(format!("<{deadline}")),
        _ => cmd.arg(""),
    };
    cmd.arg(&*mode.argument());
    for group in groups {
        cmd.arg(group.keys.len()).arg(&group.values[..]);
    }
    cmd
}

/// Whether Redis answered an error whose message contains `text`.
fn says(error: &RedisError, text: &str) -> bool {
    error.code().is_some() && error.to_string().contains(text)
}

/// What the store needs to call the library on its own checks: the
/// connection, the form, the time limit, the clock and the key prefix.
#[derive(Clone)]
pub struct Caller {
    /// The connection every call goes through.
    pub connection: Connection,
    /// The form of the library this Redis runs.
    pub form: Arc<Form>,
    /// The most one call may take.
    pub timeout: Duration,
    /// The time to decide at; Redis `TIME` when `None`.
    pub clock: Option<Arc<dyn Clock>>,
    /// Prepended to every key.
    pub prefix: String,
}

impl Caller {
    /// The time to decide at now: the clock's, or `None` for Redis `TIME`.
    pub fn now(&self) -> Option<u64> {
        self.clock.as_ref().map(|c| c.now_us())
    }

    /// The Redis key that holds `check`'s state.
    pub fn key_of(&self, check: &Check<'_>) -> String {
        keys::state_key(&self.prefix, check.policy, check.key)
    }

    /// The group of `checks` as the library takes it.
    pub fn group(&self, checks: &[Check<'_>]) -> Group {
        let mut group = Group {
            keys: Vec::with_capacity(checks.len()),
            values: Vec::with_capacity(checks.len() * VALUES_PER_CHECK * 8),
        };
        for check in checks {
            group.push(
                self.key_of(check),
                library::values(check.quota, check.cost, check.shadow),
            );
        }
        group
    }

    /// Runs the library on `checks` (all in one slot) in `mode`, in a call
    /// of its own; returns the time it decided at and one decision per check.
    pub async fn run(
        &self,
        checks: &[Check<'_>],
        mode: Mode,
    ) -> Result<(u64, Vec<Decision>), StoreError> {
        let group = self.group(checks);
        let groups = [&group];
        let call = call(
            &self.connection,
            &self.form,
            self.now(),
            None,
            mode,
            &groups,
        );
        let reply = within(self.timeout, call).await?;
        reply::parse(&reply, checks, |c| self.key_of(c))
    }

    /// Sends one command (routed by its key on a cluster) within the time
    /// limit.
    pub async fn query(&self, cmd: &Cmd) -> Result<(), StoreError> {
        self.query_as(cmd).await
    }

    /// Sends one command as [`Caller::query`] does, and reads its reply as `T`.
    pub async fn query_as<T: redis::FromRedisValue>(&self, cmd: &Cmd) -> Result<T, StoreError> {
        within(self.timeout, self.connection.query::<T>(cmd)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Algorithm, Quota};

    /// The store sends exactly the documented calling protocol.
    #[test]
    fn the_command_is_the_documented_call() {
        let quota = Quota::new(Algorithm::LeakyBucket, 3, Duration::from_secs(2), Some(5)).unwrap();
        let mut group = Group::default();
        group.push("k".to_owned(), library::values(&quota, 2, false));
        let mode = Mode::Refund { at_us: 99 };
        let time = Time {
            now: Some(7),
            deadline: None,
        };
        let cmd = command("FCALL", Some("f"), time, mode, &[&group]);
        let sent: Vec<Vec<u8>> = cmd
            .args_iter()
            .map(|a| match a {
                redis::Arg::Simple(bytes) => bytes.to_vec(),
                other => panic!("an argument that is not bytes: {other:?}"),
            })
            .collect();
        let mut expected: Vec<Vec<u8>> = [&b"FCALL"[..], b"f", b"1", b"k"]
            .iter()
            .map(|a| a.to_vec())
            .collect();
        let documented = library::Call::one(mode, Some(7), &quota, 2);
        expected.extend(documented.arguments().iter().map(|a| a.to_bytes()));
        assert_eq!(sent, expected);
    }

    /// On Redis `TIME`, a deadline goes where the time would: `<` and it.
    #[test]
    fn a_deadline_replaces_the_empty_time() {
        let group = Group::default();
        let sent = |time| {
            let cmd = command("FCALL", Some("f"), time, Mode::Decide, &[&group]);
            let args: Vec<Vec<u8>> = cmd
                .args_iter()
                .map(|a| match a {
                    redis::Arg::Simple(bytes) => bytes.to_vec(),
                    other => panic!("an argument that is not bytes: {other:?}"),
                })
                .collect();
            args[3].clone()
        };
        let deadline = Some(1_764_000_000_250_000);
        assert_eq!(
            sent(Time {
                now: None,
                deadline
            }),
            b"<1764000000250000"
        );
        assert_eq!(
            sent(Time {
                now: None,
                deadline: None
            }),
            b""
        );
        assert_eq!(
            sent(Time {
                now: Some(5),
                deadline
            }),
            b"5"
        );
    }
}
