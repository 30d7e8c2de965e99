//! Division by a number fixed when a quota is made, as a multiplication.
//!
//! A 64-bit `div` takes tens of cycles, and a token bucket's step divides
//! twice (the tokens left, the time to refill): more than the rest of the
//! step. The divisors are the quota's, known long before any check, so
//! each is turned once into a multiplier and a shift that give the exact
//! quotient of every `u64` (libdivide's unsigned 64-bit algorithm, after
//! Granlund and Montgomery, "Division by invariant integers using
//! multiplication", 1994), as a compiler does for a constant divisor.

/// A divisor, ready to divide by multiplying.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Divisor {
    /// The divisor itself.
    d: u64,
    /// How to divide by it.
    how: How,
}

/// The three ways a quotient is computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum How {
    /// A power of two: a shift.
    Shift(u32),
    /// `mulhi(n, magic) >> shift`: the magic fits in 64 bits.
    Multiply { magic: u64, shift: u32 },
    /// The magic needs 65 bits: its top bit is added back as `n`, halved
    /// first so that the sum cannot overflow.
    MultiplyAdd { magic: u64, shift: u32 },
}

impl Divisor {
    /// Division by `d`, which is not zero.
    pub(crate) const fn new(d: u64) -> Divisor {
        assert!(d != 0, "a divisor is not zero");
        let log = 63 - d.leading_zeros();
        if d.is_power_of_two() {
            return Divisor {
                d,
                how: How::Shift(log),
            };
        }
        // 2^(64 + log) / d fits in 64 bits, as d > 2^log.
        let m = ((1u128 << (64 + log)) / d as u128) as u64;
        let rem = ((1u128 << (64 + log)) % d as u128) as u64;
        let e = d - rem;
        let how = if e < 1 << log {
            // 2^(64 + log) / d rounded up, over 2^(64 + log), exceeds 1/d
            // by e / (d 2^(64 + log)) < 1 / (d 2^64): too little to move
            // the quotient of any u64.
            How::Multiply {
                magic: m.wrapping_add(1),
                shift: log,
            }
        } else {
            // One more bit of precision: 2^(65 + log) / d, whose 65th bit
            // is always set and is added back in `quotient`. Its low bit
            // is 0: here rem ≤ d - 2^log < d / 2, so 2 rem < d (libdivide
            // tests for a carry that cannot happen on this path).
            How::MultiplyAdd {
                magic: m.wrapping_add(m).wrapping_add(1),
                shift: log,
            }
        };
        Divisor { d, how }
    }

    /// The divisor.
    #[inline(always)]
    pub(crate) fn get(&self) -> u64 {
        self.d
    }

    /// `n / d`, rounded down.
    #[inline(always)]
    pub(crate) fn quotient(&self, n: u64) -> u64 {
        let mulhi = |magic: u64| ((u128::from(n) * u128::from(magic)) >> 64) as u64;
        match self.how {
            How::Shift(shift) => n >> shift,
            How::Multiply { magic, shift } => mulhi(magic) >> shift,
            How::MultiplyAdd { magic, shift } => {
                let q = mulhi(magic);
                (((n - q) >> 1) + q) >> shift
            }
        }
    }

    /// `n / d`, rounded up.
    #[inline(always)]
    pub(crate) fn ceil_quotient(&self, n: u64) -> u64 {
        let q = self.quotient(n);
        // q × d ≤ n, so the product cannot overflow.
        q + u64::from(q * self.d != n)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// Divisors where the three ways meet their edges.
    fn edges() -> Vec<u64> {
        let mut ds = vec![
            1, 2, 3, 5, 6, 7, 10, 60, 641, 1_000, 86_400, 864_000, 1_000_000,
        ];
        for k in 1..64 {
            let p = 1u64 << k;
            ds.extend([p - 1, p, p + 1]);
        }
        ds.extend([u64::MAX - 1, u64::MAX, u64::MAX / 3, u64::MAX / 7]);
        ds
    }

    fn numerators(d: u64) -> Vec<u64> {
        let mut ns = vec![
            0,
            1,
            2,
            u64::MAX,
            u64::MAX - 1,
            d - 1,
            d,
            d.saturating_add(1),
        ];
        for k in [2, 3, 1_000, u64::MAX / d] {
            let m = d.saturating_mul(k);
            ns.extend([m.saturating_sub(1), m, m.saturating_add(1)]);
        }
        ns
    }

    #[test]
    fn divides_exactly_at_the_edges() {
        for d in edges() {
            let div = Divisor::new(d);
            for n in numerators(d) {
                assert_eq!(div.quotient(n), n / d, "{n} / {d}");
                assert_eq!(div.ceil_quotient(n), n.div_ceil(d), "{n} / {d} rounded up");
            }
        }
    }

    proptest! {
        #[test]
        fn divides_exactly(d in 1..=u64::MAX, n in any::<u64>(), small in 1..2_000_000u64) {
            for d in [d, small, d >> (n % 64) | 1] {
                let div = Divisor::new(d);
                prop_assert_eq!(div.quotient(n), n / d);
                prop_assert_eq!(div.ceil_quotient(n), n.div_ceil(d));
                let n = n % (1 << 40);
                prop_assert_eq!(div.quotient(n), n / d);
                prop_assert_eq!(div.ceil_quotient(n), n.div_ceil(d));
            }
        }
    }
}
