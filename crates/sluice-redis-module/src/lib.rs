//! Sluice's decisions as a native Redis module: one command,
//! `SLUICE.CALL`, that takes what the Lua library's function takes and
//! answers what it answers, deciding with the pure steps of the `sluice`
//! crate (`algorithm::decide`, `carry`, `peek`, the refund model) instead
//! of Lua: no interpreter, no `redis.call` per read.
//!
//! ```text
//! SLUICE.CALL <numkeys> <key>… <time> <mode> [<n> <packed values>]…
//! ```
//!
//! `FCALL <function> …` without the function's name: the time (empty for
//! Redis `TIME`, `<deadline` for Redis `TIME` refused after it with
//! `LATE`), the mode (`d`, `p`, `r<at>`), then per all-or-nothing group
//! its number of checks and their packed values; the reply is the time
//! decided at, then six integers per check (see the Redis store's
//! `library` module and `lua/main.lua`). A mode prefixed with `b` (`bd`,
//! `bp`, `br<at>`: `sluice::store::packed::BYTES_REPLY`) asks for the same
//! integers as one bulk string, 8 bytes of little-endian `i64` each, which
//! the client reads without a RESP integer per value; errors (`LATE`, bad
//! arguments) stay errors. A module older than that form answers
//! `sluice: unknown mode bd`, and the store asks for the array again.
//!
//! The keys, values and expiries are the Lua library's, so a key written
//! by one is read by the other (a fleet mid-rollout), and the `RedisStore`
//! uses the command whenever the server has it.
//!
//! Atomic: a module command runs alone, as a script does. Its writes are
//! replicated as effects (see [`keyspace`]), never the command itself.
//! Cluster: the keys are declared through the getkeys API (`COMMAND
//! GETKEYS` and the cluster's slot checks see exactly the `<numkeys>`
//! keys), and they must share a slot, as for `FCALL`.
//!
//! # Layout
//!
//! - `args`: the command's arguments, read.
//! - `run`: one call: groups decided all or nothing, peeks, refunds, the reply.
//! - `state`: a key's state read (carried over, a log's view) and written back.
//! - [`keyspace`]: the Redis commands, replicated as effects.
//! - `last_key`: the key a call touched last, its value and its write kept
//!   for the end of the call.
//! - `ffi`: the module API calls with no safe wrapper (Redis's clocks, a
//!   key's expiry set to an instant).

// The unit tests build no entry point (see `entry`), so the command and
// what only it calls are unused there.
#![cfg_attr(test, allow(dead_code))]

mod args;
mod ffi;
pub mod keyspace;
mod last_key;
mod run;
mod state;

use redis_module::{Context, RedisError, RedisResult, RedisString, RedisValue};

/// The command's name.
pub const COMMAND: &str = "sluice.call";

/// `SLUICE.CALL`: answers the keys' positions when Redis asks for them,
/// else runs the call.
fn sluice_call(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
    let bytes: Vec<&[u8]> = args.iter().map(|a| a.as_slice()).collect();
    if ctx.is_keys_position_request() {
        if let Some(n) = args::key_count(&bytes) {
            for position in args::FIRST_KEY..args::FIRST_KEY + n {
                ctx.key_at_pos(i32::try_from(position).unwrap_or(i32::MAX));
            }
        }
        return Ok(RedisValue::NoReply);
    }
    let call = args::parse(&bytes).map_err(RedisError::String)?;
    let keys = &args[args::FIRST_KEY..args::FIRST_KEY + call.keys.len()];
    let reply = run::run(keyspace::Keyspace::new(ctx, keys), &call).map_err(RedisError::String)?;
    if call.bytes_reply {
        return Ok(RedisValue::StringBuffer(bytes_of(&reply)));
    }
    Ok(RedisValue::Array(
        reply.into_iter().map(RedisValue::Integer).collect(),
    ))
}

/// The bytes reply: each integer as 8 bytes, little-endian, in order.
fn bytes_of(reply: &[i64]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(reply.len() * 8);
    for n in reply {
        bytes.extend_from_slice(&n.to_le_bytes());
    }
    bytes
}

// The entry point Redis calls on MODULE LOAD is `unsafe extern "C"` (see
// Cargo.toml's lints). Not in the unit tests: the macro makes Redis's
// allocator the global one, which aborts outside Redis.
#[cfg(not(test))]
#[allow(unsafe_code, missing_docs)]
mod entry {
    use redis_module::redis_module;

    redis_module! {
        name: "sluice",
        version: 1,
        allocator: (redis_module::alloc::RedisAlloc, redis_module::alloc::RedisAlloc),
        data_types: [],
        commands: [
            // write: it writes; deny-oom: refused on OOM before it starts,
            // as a script that writes is; getkeys-api: the keys are the
            // <numkeys> after the name (1, 1, 1: the legacy range, for
            // COMMAND INFO only).
            [super::COMMAND, super::sluice_call, "write deny-oom getkeys-api", 1, 1, 1, ""],
        ],
    }
}

#[cfg(test)]
mod tests {
    /// Each integer as 8 bytes, little-endian, in order.
    #[test]
    fn the_bytes_reply_is_each_integer_little_endian() {
        let bytes = super::bytes_of(&[1, -1, 258]);
        assert_eq!(bytes.len(), 24);
        assert_eq!(bytes[..8], [1, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(bytes[8..16], [0xff; 8]);
        assert_eq!(bytes[16..], [2, 1, 0, 0, 0, 0, 0, 0]);
    }
}
