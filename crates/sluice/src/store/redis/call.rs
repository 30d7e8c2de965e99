//! One call of the decision library: `FCALL` of the Redis Function, or
//! `EVALSHA` of the script where Redis has no functions. A function or
//! script that Redis lacks (a new server, a restart, `FUNCTION FLUSH`,
//! `SCRIPT FLUSH`) is loaded and the call made again.

use std::sync::atomic::{AtomicBool, Ordering};

use redis::{Cmd, RedisError, RedisResult};

use super::Connection;
use super::scripts;

/// The checks of one all-or-nothing group, as the library takes them: a
/// key and [`scripts::VALUES_PER_CHECK`] packed values per check.
#[derive(Debug, Default)]
pub struct Group {
    /// The state key of each check.
    pub keys: Vec<String>,
    /// The values of each check, in order, as little-endian doubles.
    pub values: Vec<u8>,
}

impl Group {
    /// Adds a check on `key` with `values`, every one below 2^53 (quota
    /// validation keeps them there), so exact as doubles.
    pub fn push(&mut self, key: String, values: [u64; scripts::VALUES_PER_CHECK]) {
        self.keys.push(key);
        for value in values {
            self.values.extend_from_slice(&(value as f64).to_le_bytes());
        }
    }
}

/// Which form of the library this Redis runs: the function until Redis
/// shows it cannot (no `FCALL`, or `FUNCTION LOAD` refused), then the script.
#[derive(Debug)]
pub struct Form {
    functions: AtomicBool,
}

impl Form {
    /// Functions first when `functions`, else scripts only.
    pub fn new(functions: bool) -> Form {
        Form {
            functions: AtomicBool::new(functions),
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
/// `None`); returns the raw reply.
pub async fn call(
    connection: &Connection,
    form: &Form,
    now: Option<u64>,
    mode: &str,
    groups: &[&Group],
) -> RedisResult<Vec<i64>> {
    if form.functions() {
        let fcall = || command("FCALL", scripts::function_name(), now, mode, groups);
        match connection.query(&fcall()).await {
            Err(e) if says(&e, "Function not found") => {
                let load = redis::cmd("FUNCTION")
                    .arg("LOAD")
                    .arg("REPLACE")
                    .arg(scripts::function_library())
                    .to_owned();
                match connection.query::<()>(&load).await {
                    Ok(()) => return connection.query(&fcall()).await,
                    // No permission, or no functions: scripts may still do.
                    Err(e) if e.code().is_some() => form.use_scripts(),
                    Err(e) => return Err(e),
                }
            }
            Err(e) if says(&e, "unknown command") => form.use_scripts(),
            result => return result,
        }
    }
    let (source, sha) = scripts::script();
    let evalsha = || command("EVALSHA", sha, now, mode, groups);
    match connection.query(&evalsha()).await {
        Err(e) if e.code() == Some("NOSCRIPT") => {
            let load = redis::cmd("SCRIPT").arg("LOAD").arg(source).to_owned();
            connection.query::<String>(&load).await?;
            connection.query(&evalsha()).await
        }
        result => result,
    }
}

/// `<name> <id> <number of keys> <keys…> <now> <mode> [<n> <packed values>]…`.
fn command(name: &str, id: &str, now: Option<u64>, mode: &str, groups: &[&Group]) -> Cmd {
    let mut cmd = redis::cmd(name);
    cmd.arg(id)
        .arg(groups.iter().map(|g| g.keys.len()).sum::<usize>());
    for group in groups {
        cmd.arg(&group.keys);
    }
    match now {
        Some(now) => cmd.arg(now),
        None => cmd.arg(""),
    };
    cmd.arg(mode);
    for group in groups {
        cmd.arg(group.keys.len()).arg(&group.values[..]);
    }
    cmd
}

/// Whether Redis answered an error whose message contains `text`.
fn says(error: &RedisError, text: &str) -> bool {
    error.code().is_some() && error.to_string().contains(text)
}
