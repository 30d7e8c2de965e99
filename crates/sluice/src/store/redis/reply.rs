//! Reading the library's reply: the time it decided at, then
//! [`REPLY_PER_CHECK`] integers per check (see `lua/main.lua`), as an
//! array of RESP integers or, from the native module asked for it, as one
//! bulk string of 8-byte little-endian integers ([`Integers`] reads
//! either); [`parse`] makes the decisions of both.

use std::time::Duration;

use super::library::REPLY_PER_CHECK;
use crate::store::Check;
use crate::{Decision, StoreError};

/// A reply's integers, from either form: an array of RESP integers (the
/// Lua library, a module older than the bytes reply), or the module's
/// bytes reply ([`BYTES_REPLY`](super::library::BYTES_REPLY)), read with
/// no [`redis::Value`] per integer.
#[derive(Debug, PartialEq, Eq)]
pub struct Integers(pub Vec<i64>);

impl redis::FromRedisValue for Integers {
    fn from_redis_value_ref(v: &redis::Value) -> Result<Self, redis::ParsingError> {
        match v {
            redis::Value::BulkString(bytes) => unpack(bytes),
            other => Vec::<i64>::from_redis_value_ref(other).map(Integers),
        }
    }

    fn from_redis_value(v: redis::Value) -> Result<Self, redis::ParsingError> {
        match v {
            redis::Value::BulkString(bytes) => unpack(&bytes),
            other => Vec::<i64>::from_redis_value(other).map(Integers),
        }
    }
}

/// The integers of a bytes reply: 8 bytes each, little-endian, in order.
fn unpack(bytes: &[u8]) -> Result<Integers, redis::ParsingError> {
    let (integers, []) = bytes.as_chunks::<8>() else {
        return Err(format!(
            "a bytes reply of {} bytes, not whole 8-byte integers",
            bytes.len()
        )
        .into());
    };
    Ok(Integers(
        integers.iter().map(|&b| i64::from_le_bytes(b)).collect(),
    ))
}

/// The time and the decisions in a reply for `checks`, whose Redis keys
/// `key_of` gives; an error marker for any check (see `lua/main.lua`) is
/// the [`StoreError::Key`] of the check at fault.
pub fn parse(
    reply: &[i64],
    checks: &[Check<'_>],
    key_of: impl Fn(&Check<'_>) -> String,
) -> Result<(u64, Vec<Decision>), StoreError> {
    let expected = 1 + checks.len() * REPLY_PER_CHECK;
    if reply.len() != expected {
        return Err(StoreError::Protocol(format!(
            "the script answered {} values, expected {expected}",
            reply.len()
        )));
    }
    if let Some(marker) = reply[1..]
        .chunks_exact(REPLY_PER_CHECK)
        .find(|d| d[0] == FAILED)
    {
        return Err(failure(marker, checks, key_of));
    }
    let number = |v: i64| u64::try_from(v).unwrap_or(0);
    let decisions = reply[1..]
        .chunks_exact(REPLY_PER_CHECK)
        .zip(checks)
        .map(|(d, check)| Decision {
            allowed: d[0] == 1,
            limit: check.quota.capacity(),
            remaining: number(d[1]),
            reset_after: Duration::from_micros(number(d[2])),
            retry_after: (d[3] >= 0).then(|| Duration::from_micros(number(d[3]))),
            delay: Duration::from_micros(number(d[4])),
            shadow: d[5] == 1,
            source: crate::Source::Store,
        })
        .collect();
    Ok((number(reply[0]), decisions))
}

/// The first value of a check's reply when it could not be decided.
const FAILED: i64 = -1;

/// The error an error marker `{-1, problem, detail, position, 0, 0}`
/// stands for: the check at `position` (or the first, for a position out
/// of range), and what is wrong with its key.
fn failure(
    marker: &[i64],
    checks: &[Check<'_>],
    key_of: impl Fn(&Check<'_>) -> String,
) -> StoreError {
    let Some(check) = usize::try_from(marker[3])
        .ok()
        .and_then(|at| checks.get(at))
        .or(checks.first())
    else {
        return StoreError::Protocol("an error marker for no check".into());
    };
    let store_key = key_of(check);
    let problem = match (marker[1], marker[2]) {
        (1, detail) => {
            let kind = match detail {
                1 => "a list",
                2 => "a set",
                3 => "a hash",
                4 => "a stream",
                _ => "a value of a type",
            };
            format!(
                "Redis key {store_key:?} holds {kind}, which Sluice never writes; it is left \
                 alone (delete it, or reset the key, to use it again)"
            )
        }
        _ => format!(
            "the decision library failed on Redis key {store_key:?} (the Redis log has the error)"
        ),
    };
    StoreError::Key {
        policy: check.policy.to_owned(),
        key: check.key.to_owned(),
        problem,
    }
}

/// Cuts the reply of a call that carried several groups, of `sizes`
/// checks each, into one reply per group: the time, then its checks.
pub fn split(reply: &[i64], sizes: &[usize]) -> Result<Vec<Vec<i64>>, StoreError> {
    let checks: usize = sizes.iter().sum();
    let (Some(&now), true) = (reply.first(), reply.len() == 1 + checks * REPLY_PER_CHECK) else {
        return Err(StoreError::Protocol(format!(
            "the script answered {} values for {checks} checks",
            reply.len()
        )));
    };
    let mut rest = &reply[1..];
    Ok(sizes
        .iter()
        .map(|&size| {
            let (mine, others) = rest.split_at(size * REPLY_PER_CHECK);
            rest = others;
            let mut part = Vec::with_capacity(1 + mine.len());
            part.push(now);
            part.extend_from_slice(mine);
            part
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_reply_is_a_protocol_error() {
        let quota = crate::Quota::new(
            crate::Algorithm::FixedWindow,
            5,
            Duration::from_secs(1),
            None,
        )
        .unwrap();
        let check = Check::new("p", "k", &quota, 1);
        let checks = [check];
        assert!(matches!(
            parse(&[1, 1, 0], &checks, |_| String::new()),
            Err(StoreError::Protocol(_))
        ));
        let (now, d) = parse(&[42, 0, 3, 10, -1, 0, 0], &checks, |_| String::new()).unwrap();
        assert_eq!(d[0].limit, 5);
        assert_eq!(now, 42);
        assert_eq!(
            (d[0].allowed, d[0].remaining, d[0].retry_after),
            (false, 3, None)
        );
    }

    #[test]
    fn an_error_marker_names_the_check_at_fault() {
        let quota = crate::Quota::new(
            crate::Algorithm::TokenBucket,
            5,
            Duration::from_secs(1),
            None,
        )
        .unwrap();
        let checks = [
            Check::new("a", "fine", &quota, 1),
            Check::new("b", "listed", &quota, 1),
        ];
        let key_of = |c: &Check<'_>| format!("sluice:{{{}}}:{}", c.key, c.policy);
        let marker = [-1, 1, 1, 1, 0, 0];
        let reply: Vec<i64> = [7].into_iter().chain(marker).chain(marker).collect();
        match parse(&reply, &checks, key_of) {
            Err(error @ StoreError::Key { .. }) => {
                assert!(!error.is_transient());
                let text = error.to_string();
                assert!(text.contains("\"listed\""), "{text}");
                assert!(
                    text.contains("sluice:{listed}:b") && text.contains("a list"),
                    "{text}"
                );
            }
            other => panic!("{other:?}"),
        }
        let failed = [7, -1, 2, 0, 0, 0, 0];
        let error = parse(&failed, &checks[..1], key_of).unwrap_err();
        assert!(error.to_string().contains("Redis log"), "{error}");
    }

    /// The bytes reply reads as the same integers as the array, in order,
    /// negative ones included; a length that is not whole integers is
    /// refused.
    #[test]
    fn a_bytes_reply_reads_as_the_arrays_integers() {
        use redis::{FromRedisValue, Value};
        let integers = [
            1_764_000_000_123_456,
            0,
            3,
            10,
            -1,
            0,
            1,
            i64::MIN,
            i64::MAX,
        ];
        let bytes: Vec<u8> = integers.iter().flat_map(|n| n.to_le_bytes()).collect();
        let array = Value::Array(integers.iter().map(|&n| Value::Int(n)).collect());
        let from_bytes = Integers::from_redis_value(Value::BulkString(bytes.clone())).unwrap();
        let from_ref = Integers::from_redis_value_ref(&Value::BulkString(bytes.clone())).unwrap();
        let from_array = Integers::from_redis_value(array).unwrap();
        assert_eq!(from_bytes.0, integers);
        assert_eq!(from_bytes, from_array);
        assert_eq!(from_ref, from_array);
        // 1, not 2^56: little-endian.
        let one = Integers::from_redis_value(Value::BulkString(vec![1, 0, 0, 0, 0, 0, 0, 0]));
        assert_eq!(one.unwrap().0, [1]);
        for length in [1, 7, 9, bytes.len() - 1] {
            let cut = Value::BulkString(bytes[..length].to_vec());
            assert!(Integers::from_redis_value(cut).is_err(), "{length} bytes");
        }
        assert_eq!(
            Integers::from_redis_value(Value::BulkString(Vec::new()))
                .unwrap()
                .0,
            []
        );
    }

    #[test]
    fn a_batch_reply_is_cut_per_group() {
        let reply = [7, 1, 2, 3, 4, 5, 0, 1, 9, 9, 9, 9, 0, 0, 8, 8, 8, 8, 1];
        let parts = split(&reply, &[1, 2]).unwrap();
        assert_eq!(parts[0], [7, 1, 2, 3, 4, 5, 0]);
        assert_eq!(parts[1], [7, 1, 9, 9, 9, 9, 0, 0, 8, 8, 8, 8, 1]);
        assert!(split(&reply, &[1, 1]).is_err());
        assert!(split(&[], &[]).is_err());
    }
}
