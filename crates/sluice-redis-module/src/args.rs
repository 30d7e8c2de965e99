//! The command's arguments, read: `SLUICE.CALL <numkeys> <key>… <time>
//! <mode> [<n> <packed values>]…`, that is `FCALL`'s after the function's
//! name, so the store sends the module exactly what it sends the Lua
//! library (see the Redis store's `library` module for the protocol). The
//! one addition: a mode prefixed with [`packed::BYTES_REPLY`] asks for the
//! reply as one bulk string.

use sluice::store::packed::{self, Mode, VALUES_PER_CHECK};

/// The time a call decides at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Time {
    /// The caller's, in µs since the epoch (expiries get
    /// [`packed::TTL_SLACK_MS`] of slack).
    Given(u64),
    /// Redis `TIME`, refused after the deadline if there is one.
    Redis {
        /// The instant after which the call decides nothing and answers
        /// [`packed::LATE`].
        deadline: Option<u64>,
    },
}

/// One call, read.
#[derive(Debug, PartialEq, Eq)]
pub struct Call<'a> {
    /// The state key of every check, over all groups.
    pub keys: Vec<&'a [u8]>,
    /// When to decide.
    pub time: Time,
    /// What to do.
    pub mode: Mode,
    /// Whether the reply is one bulk string of little-endian `i64`s
    /// (the mode had the [`packed::BYTES_REPLY`] prefix), not an array.
    pub bytes_reply: bool,
    /// How many checks each all-or-nothing group holds, in key order.
    pub sizes: Vec<usize>,
    /// Every check's values, in key order.
    pub values: Vec<[u64; VALUES_PER_CHECK]>,
}

impl Call<'_> {
    /// The all-or-nothing groups, in key order: each check's values.
    pub fn groups(&self) -> impl Iterator<Item = &[[u64; VALUES_PER_CHECK]]> {
        let mut rest = &self.values[..];
        self.sizes.iter().map(move |&n| {
            let (group, after) = rest.split_at(n.min(rest.len()));
            rest = after;
            group
        })
    }
}

/// Where the keys start: after the command's name and `numkeys`.
pub const FIRST_KEY: usize = 2;

/// The number of keys `args` (the command's name first) declares, if it
/// names no more keys than it has arguments.
pub fn key_count(args: &[&[u8]]) -> Option<usize> {
    let n = usize::try_from(packed::whole_number(args.get(1)?)?).ok()?;
    (FIRST_KEY + n <= args.len()).then_some(n)
}

/// Reads `args` (the command's name first), or says what is wrong.
pub fn parse<'a>(args: &[&'a [u8]]) -> Result<Call<'a>, String> {
    let n = key_count(args).ok_or("sluice: the number of keys is missing or too large")?;
    let keys = args[FIRST_KEY..FIRST_KEY + n].to_vec();
    let rest = &args[FIRST_KEY + n..];
    let [time, mode, groups @ ..] = rest else {
        return Err("sluice: the time and the mode are missing".into());
    };
    let time = match time {
        [] => Time::Redis { deadline: None },
        [b'<', deadline @ ..] => Time::Redis {
            deadline: Some(packed::whole_number(deadline).ok_or("sluice: invalid deadline")?),
        },
        now => Time::Given(packed::whole_number(now).ok_or("sluice: invalid time")?),
    };
    let (bytes_reply, mode) = match mode.split_first() {
        Some((&packed::BYTES_REPLY, mode)) => (true, mode),
        _ => (false, *mode),
    };
    let mode = Mode::parse(mode).ok_or_else(|| {
        format!(
            "sluice: unknown mode {}",
            String::from_utf8_lossy(mode).into_owned()
        )
    })?;
    if !groups.len().is_multiple_of(2) {
        return Err("sluice: a group's number of checks without its values".into());
    }
    // One vector for every group's values (a group is often one check).
    let mut sizes = Vec::with_capacity(groups.len() / 2);
    let mut values = Vec::with_capacity(n);
    for pair in groups.chunks_exact(2) {
        let size = packed::whole_number(pair[0]).and_then(|n| usize::try_from(n).ok());
        size.and_then(|size| {
            sizes.push(size);
            packed::unpack_into(pair[1], size, &mut values)
        })
        .ok_or("sluice: a group's checks are not packed values")?;
    }
    if values.len() != keys.len() {
        return Err("sluice: the groups' checks and the keys differ in number".into());
    }
    Ok(Call {
        keys,
        time,
        mode,
        bytes_reply,
        sizes,
        values,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::time::Duration;

    use sluice::{Algorithm, Quota};

    #[test]
    fn reads_what_the_store_sends() {
        let quota = Quota::new(Algorithm::Gcra, 7, Duration::from_secs(60), None).unwrap();
        let values = packed::values(&quota, 3, false);
        let mut raw = Vec::new();
        packed::pack(&values, &mut raw);
        let args: Vec<&[u8]> = vec![b"SLUICE.CALL", b"1", b"k", b"<99", b"r42", b"1", &raw];
        assert_eq!(key_count(&args), Some(1));
        let call = parse(&args).unwrap();
        assert_eq!(call.keys, [&b"k"[..]]);
        assert_eq!(call.time, Time::Redis { deadline: Some(99) });
        assert_eq!(call.mode, Mode::Refund { at_us: 42 });
        assert_eq!(call.groups().collect::<Vec<_>>(), [&[values][..]]);
        assert!(!call.bytes_reply);
        let given: Vec<&[u8]> = vec![b"SLUICE.CALL", b"0", b"5", b"p"];
        assert_eq!(parse(&given).unwrap().time, Time::Given(5));
    }

    /// The `b` prefix asks for the bytes reply and leaves the mode as it is.
    #[test]
    fn a_bytes_reply_is_asked_by_the_modes_prefix() {
        for (mode, expected) in [
            (&b"bd"[..], Mode::Decide),
            (b"bp", Mode::Peek),
            (b"br42", Mode::Refund { at_us: 42 }),
        ] {
            let args: Vec<&[u8]> = vec![b"SLUICE.CALL", b"0", b"5", mode];
            let call = parse(&args).unwrap();
            assert_eq!((call.mode, call.bytes_reply), (expected, true));
        }
        for bad in [&b"b"[..], b"bb", b"bbd", b"db"] {
            let args: Vec<&[u8]> = vec![b"SLUICE.CALL", b"0", b"5", bad];
            assert!(parse(&args).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn each_group_gets_its_own_checks_in_order() {
        let quota = Quota::new(Algorithm::FixedWindow, 9, Duration::from_secs(1), None).unwrap();
        let values: Vec<_> = (1..=3)
            .map(|cost| packed::values(&quota, cost, false))
            .collect();
        let (mut two, mut one) = (Vec::new(), Vec::new());
        packed::pack(&values[0], &mut two);
        packed::pack(&values[1], &mut two);
        packed::pack(&values[2], &mut one);
        let args: Vec<&[u8]> = vec![
            b"SLUICE.CALL",
            b"3",
            b"a",
            b"b",
            b"c",
            b"",
            b"d",
            b"2",
            &two,
            b"1",
            &one,
        ];
        let call = parse(&args).unwrap();
        let groups: Vec<_> = call.groups().collect();
        assert_eq!(groups, [&values[..2], &values[2..]]);
        // More checks than keys: refused.
        let short: Vec<&[u8]> = vec![
            b"SLUICE.CALL",
            b"2",
            b"a",
            b"b",
            b"",
            b"d",
            b"2",
            &two,
            b"1",
            &one,
        ];
        assert!(parse(&short).is_err());
    }

    #[test]
    fn refuses_what_it_cannot_read() {
        for bad in [
            &[&b"SLUICE.CALL"[..]][..],
            &[b"SLUICE.CALL", b"3", b"a"],
            &[b"SLUICE.CALL", b"0", b"", b"x"],
            &[b"SLUICE.CALL", b"0", b"x", b"d"],
            &[b"SLUICE.CALL", b"1", b"k", b"", b"d", b"1", b"short"],
            &[b"SLUICE.CALL", b"1", b"k", b"", b"d"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }
}
