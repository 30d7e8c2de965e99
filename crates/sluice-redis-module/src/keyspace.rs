//! The Redis commands a decision runs, the ones the Lua library runs. The
//! writes go through `RedisModule_Call` with the `!` flag: Redis replicates
//! each to the replicas and the AOF as it is made (wrapped with the others
//! of the call in one `MULTI`/`EXEC`), never the `SLUICE.CALL` itself,
//! which a replica would decide again with its own clock. The reads of a
//! key's type and string (the `GET` and `TYPE` of every check) go through
//! the low-level key API instead (`RedisModule_OpenKey`, `KeyType`,
//! `StringDMA`): nothing to replicate, and no fake client, argument vector
//! and reply to build per read.

use redis_module::key::RedisKey;
use redis_module::{CallOptions, CallOptionsBuilder, CallReply, CallResult, Context, KeyType};

/// What a command answered: the few shapes the library reads.
#[derive(Debug, PartialEq, Eq)]
pub enum Reply {
    /// An integer.
    Int(i64),
    /// A string (bulk or status).
    Bytes(Vec<u8>),
    /// An array.
    Array(Vec<Reply>),
    /// Nothing (a missing key's `GET`).
    Null,
}

/// The Redis type of a key, as the library tells them apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// No such key.
    None,
    /// A string: a packed state.
    String,
    /// A sorted set: a sliding log.
    Zset,
    /// A type Sluice never writes, by its error marker's code (1 list,
    /// 2 set, 3 hash, 4 stream, 0 another).
    Other(i64),
}

/// Runs commands on the keyspace of the calling client's database.
pub struct Keyspace<'a> {
    ctx: &'a Context,
    options: CallOptions,
}

impl<'a> Keyspace<'a> {
    /// Commands through `ctx`, replicated as effects.
    pub fn new(ctx: &'a Context) -> Keyspace<'a> {
        Keyspace {
            ctx,
            options: CallOptionsBuilder::new()
                .replicate()
                .errors_as_replies()
                .build(),
        }
    }

    /// Runs `command` with `args`.
    pub fn run(&self, command: &str, args: &[&[u8]]) -> Result<Reply, String> {
        let result: CallResult<'static> = self.ctx.call_ext(command, &self.options, args);
        match result {
            Ok(reply) => Ok(read(&reply)),
            Err(e) => Err(e
                .to_utf8_string()
                .unwrap_or_else(|| format!("{command} failed"))),
        }
    }

    /// `key` opened for reading (closed when dropped, before any write).
    fn open(&self, key: &[u8]) -> RedisKey {
        self.ctx.open_key(&self.ctx.create_string(key))
    }

    /// The type of `key`, as `TYPE` names it.
    pub fn kind(&self, key: &[u8]) -> Result<Kind, String> {
        Ok(match self.open(key).key_type() {
            KeyType::Empty => Kind::None,
            KeyType::String => Kind::String,
            KeyType::ZSet => Kind::Zset,
            KeyType::List => Kind::Other(1),
            KeyType::Set => Kind::Other(2),
            KeyType::Hash => Kind::Other(3),
            KeyType::Stream => Kind::Other(4),
            KeyType::Module => Kind::Other(0),
        })
    }

    /// The string at `key` (`None`: missing), as `GET` answers it: an
    /// error on a key of another type.
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, String> {
        let opened = self.open(key);
        match opened.key_type() {
            KeyType::Empty => Ok(None),
            KeyType::String => opened
                .read()
                .map(|value| value.map(<[u8]>::to_vec))
                .map_err(|e| format!("reading the string failed: {e}")),
            _ => {
                Err("WRONGTYPE Operation against a key holding the wrong kind of value".to_owned())
            }
        }
    }

    /// The members a `ZRANGE`/`ZRANGEBYSCORE` of `args` answers.
    pub fn members(&self, command: &str, args: &[&[u8]]) -> Result<Vec<Vec<u8>>, String> {
        match self.run(command, args)? {
            Reply::Array(items) => items
                .into_iter()
                .map(|item| match item {
                    Reply::Bytes(m) => Ok(m),
                    other => Err(format!("{command} answered {other:?}")),
                })
                .collect(),
            other => Err(format!("{command} answered {other:?}")),
        }
    }

    /// Redis `TIME`, in µs since the epoch.
    pub fn time(&self) -> Result<u64, String> {
        let number = |r: &Reply| match r {
            Reply::Bytes(b) => sluice::store::packed::whole_number(b),
            _ => None,
        };
        match self.run("TIME", &[])? {
            Reply::Array(parts) if parts.len() == 2 => number(&parts[0])
                .zip(number(&parts[1]))
                .and_then(|(s, us)| s.checked_mul(1_000_000)?.checked_add(us))
                .ok_or_else(|| "TIME answered something else than seconds and µs".to_owned()),
            other => Err(format!("TIME answered {other:?}")),
        }
    }

    /// Logs `message` as a warning in the Redis log.
    pub fn warn(&self, message: &str) {
        self.ctx.log_warning(message);
    }
}

fn read(reply: &CallReply<'_>) -> Reply {
    match reply {
        CallReply::I64(n) => Reply::Int(n.to_i64()),
        CallReply::String(s) => Reply::Bytes(s.as_bytes().to_vec()),
        CallReply::Array(items) => Reply::Array(
            items
                .iter()
                .map(|item| item.map_or(Reply::Null, |r| read(&r)))
                .collect(),
        ),
        _ => Reply::Null,
    }
}
