//! Reading the library's reply: the time it decided at, then
//! [`REPLY_PER_CHECK`] integers per check (see `lua/main.lua`).

use std::time::Duration;

use super::library::REPLY_PER_CHECK;
use crate::store::Check;
use crate::{Decision, StoreError};

/// The time and the decisions in a reply for `checks`.
pub fn parse(reply: &[i64], checks: &[Check<'_>]) -> Result<(u64, Vec<Decision>), StoreError> {
    let expected = 1 + checks.len() * REPLY_PER_CHECK;
    if reply.len() != expected {
        return Err(StoreError::Protocol(format!(
            "the script answered {} values, expected {expected}",
            reply.len()
        )));
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
            parse(&[1, 1, 0], &checks),
            Err(StoreError::Protocol(_))
        ));
        let (now, d) = parse(&[42, 0, 3, 10, -1, 0, 0], &checks).unwrap();
        assert_eq!(d[0].limit, 5);
        assert_eq!(now, 42);
        assert_eq!(
            (d[0].allowed, d[0].remaining, d[0].retry_after),
            (false, 3, None)
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
