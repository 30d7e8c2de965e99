//! The test that holds `lua/refund.lua` to its Rust model,
//! [`crate::store::refund`], on a real Redis.

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use sluice_testkit::RedisServer;

    use crate::Quota;
    use crate::algorithm::State;
    use crate::store::redis::call::{Caller, Form};
    use crate::store::redis::connection::Connection;
    use crate::store::redis::library::Mode;
    use crate::store::refund::refund;
    use crate::{Algorithm, Check, Decision, FakeClock, algorithm};

    /// An epoch-like start, not aligned to any window used here.
    const T0: u64 = 1_764_000_000_123_457;

    /// A charge, its refund and what comes around them, as times (µs) and
    /// costs. Times may go back: a clock that steps back after a failover.
    #[derive(Clone, Debug)]
    struct Scenario {
        quota: Quota,
        /// Decisions before the charge.
        before: Vec<(u64, u64)>,
        /// The charge refunded, which must be admitted.
        charge: (u64, u64),
        /// Whether the state is lost right after the charge (a failover to
        /// a replica that had not received it).
        lost: bool,
        /// Decisions between the charge and its refund.
        between: Vec<(u64, u64)>,
        /// When the refund is made.
        now: u64,
        /// Decisions after the refund, which show what it left.
        after: Vec<(u64, u64)>,
    }

    impl Scenario {
        /// Whether the spec promises the state of a charge never made.
        fn exact(&self) -> bool {
            let times: Vec<u64> = self
                .before
                .iter()
                .chain([&self.charge])
                .chain(&self.between)
                .map(|s| s.0)
                .chain([self.now])
                .collect();
            let forward = times.windows(2).all(|w| w[0] <= w[1]);
            // A bucket may have been full between the charge and the refund
            // had the charge not been made: the refund gives back the charge
            // whole, up to that interval's refill more.
            let counted = !self.quota.algorithm().has_burst() || self.between.is_empty();
            forward && counted
        }
    }

    /// Decides `steps` one after the other from `state`, keeping what each
    /// admission writes.
    fn replay(state: &mut Option<State>, quota: &Quota, steps: &[(u64, u64)]) -> Vec<Decision> {
        steps
            .iter()
            .map(|&(now, cost)| {
                let (decision, next) = algorithm::decide(state.as_ref(), quota, cost, now);
                if next.is_some() {
                    *state = next;
                }
                decision
            })
            .collect()
    }

    /// The Rust side: every decision, with the model's refund in between;
    /// `None` when the charge is not admitted (nothing to refund).
    fn model(s: &Scenario) -> Option<Vec<Decision>> {
        let mut state = None;
        let mut out = replay(&mut state, &s.quota, &s.before);
        let charged = replay(&mut state, &s.quota, &[s.charge]);
        if !charged[0].allowed || s.charge.1 == 0 {
            return None;
        }
        out.extend(charged);
        if s.lost {
            state = None;
        }
        out.extend(replay(&mut state, &s.quota, &s.between));
        state = refund(state.as_ref(), &s.quota, s.charge.1, s.charge.0, s.now);
        out.extend(replay(&mut state, &s.quota, &s.after));
        Some(out)
    }

    /// What comes after, had the charge never been made and everything
    /// else admitted as it was (`decided`: the model's decisions).
    fn without_the_charge(s: &Scenario, decided: &[Decision]) -> Vec<Decision> {
        let mut state = None;
        replay(&mut state, &s.quota, &s.before);
        if s.lost {
            state = None;
        }
        let admitted: Vec<(u64, u64)> = s
            .between
            .iter()
            .zip(&decided[s.before.len() + 1..])
            .filter(|(_, d)| d.allowed)
            .map(|(step, _)| *step)
            .collect();
        replay(&mut state, &s.quota, &admitted);
        replay(&mut state, &s.quota, &s.after)
    }

    /// The Lua side, through the store's own call path, on key `key`.
    async fn lua(caller: &Caller, clock: &FakeClock, key: &str, s: &Scenario) -> Vec<Decision> {
        let mut out = Vec::new();
        let decide = |now: u64, cost: u64| {
            clock.set(now);
            let check = Check::new("refund", key, &s.quota, cost);
            async move { caller.run(&[check], Mode::Decide).await.unwrap() }
        };
        for &(now, cost) in &s.before {
            out.push(decide(now, cost).await.1[0]);
        }
        let (at, made) = decide(s.charge.0, s.charge.1).await;
        assert_eq!(at, s.charge.0, "the call decides at the caller's time");
        out.push(made[0]);
        if s.lost {
            let check = Check::new("refund", key, &s.quota, 0);
            caller
                .query(redis::cmd("DEL").arg(caller.key_of(&check)))
                .await
                .unwrap();
        }
        for &(now, cost) in &s.between {
            out.push(decide(now, cost).await.1[0]);
        }
        clock.set(s.now);
        let check = Check::new("refund", key, &s.quota, s.charge.1);
        caller
            .run(&[check], Mode::Refund { at_us: at })
            .await
            .unwrap();
        for &(now, cost) in &s.after {
            out.push(decide(now, cost).await.1[0]);
        }
        out
    }

    /// What follows a refund: the standing, a cost of 1 and of the whole
    /// capacity at once, then later.
    fn probes(quota: &Quota, now: u64) -> Vec<(u64, u64)> {
        let p = quota.period_us();
        vec![
            (now, 0),
            (now, 1),
            (now + p / 3, quota.capacity()),
            (now + p + 1, 1),
            (now + 2 * p, 0),
        ]
    }

    /// A tiny deterministic generator.
    struct Xorshift(u64);

    impl Xorshift {
        fn below(&mut self, n: u64) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0 % n.max(1)
        }
    }

    /// Random scenarios: small quotas, times mostly forward, sometimes a
    /// step back (by up to two periods) before the charge or before the
    /// refund, and sometimes decisions between the charge and its refund.
    fn random(algorithm: Algorithm, rng: &mut Xorshift) -> Scenario {
        let limit = 1 + rng.below(6);
        let period = 1_000 + rng.below(20_000);
        let burst = (algorithm.has_burst() && rng.below(2) == 0).then(|| 1 + rng.below(8));
        let quota = Quota::new(algorithm, limit, Duration::from_micros(period), burst).unwrap();
        let mut t = T0 + rng.below(period);
        let step = |rng: &mut Xorshift, t: &mut u64| {
            *t = match rng.below(10) {
                0 => *t - rng.below(2 * period),
                1..=3 => *t,
                4..=6 => *t + rng.below(period / limit + 1),
                _ => *t + rng.below(2 * period),
            };
            *t
        };
        let cost = |rng: &mut Xorshift| match rng.below(3) {
            0 => 1 + rng.below(quota.capacity()),
            _ => 1,
        };
        let before = (0..rng.below(6))
            .map(|_| (step(rng, &mut t), cost(rng)))
            .collect();
        let charge = (step(rng, &mut t), cost(rng));
        let lost = rng.below(10) == 0;
        let between = (0..rng.below(3))
            .map(|_| (step(rng, &mut t), cost(rng)))
            .collect();
        let now = step(rng, &mut t);
        Scenario {
            quota,
            before,
            charge,
            lost,
            between,
            now,
            after: probes(&quota, now),
        }
    }

    /// The case `refund.lua` names: a state ahead of the clock. Before the
    /// charge a node whose clock was ahead charged twice; the charge and
    /// its refund come from a clock a quarter of a period behind it (a
    /// bucket's state ahead), or three periods (a window's).
    fn stepped_back(algorithm: Algorithm, quarters: u64) -> Scenario {
        let quota = Quota::new(algorithm, 4, Duration::from_millis(10), None).unwrap();
        let ahead = T0 + quarters * quota.period_us() / 4;
        let at = T0;
        Scenario {
            quota,
            before: vec![(ahead, 1), (ahead, 1)],
            charge: (at, 1),
            lost: false,
            between: vec![],
            now: at + 200,
            after: probes(&quota, at + 200),
        }
    }

    /// The clock steps back between the charge and its refund.
    fn failover_between(algorithm: Algorithm) -> Scenario {
        let quota = Quota::new(algorithm, 4, Duration::from_millis(10), None).unwrap();
        let p = quota.period_us();
        Scenario {
            quota,
            before: vec![(T0, 1)],
            charge: (T0 + 100, 2),
            lost: false,
            between: vec![],
            now: T0 + 100 - p / 2,
            after: probes(&quota, T0 + 100 - p / 2),
        }
    }

    /// The state is lost after the charge, and a clock behind it charges
    /// the key again before the refund comes.
    fn lost_then_charged_behind(algorithm: Algorithm) -> Scenario {
        let quota = Quota::new(algorithm, 4, Duration::from_millis(10), None).unwrap();
        let p = quota.period_us();
        Scenario {
            quota,
            before: vec![],
            charge: (T0 + p, 1),
            lost: true,
            between: vec![(T0 + 100, 2)],
            now: T0 + 200,
            after: probes(&quota, T0 + 200),
        }
    }

    /// refund.lua gives back exactly what the Rust model does, for every
    /// algorithm: on random scenarios, with clocks that step back before
    /// the charge or before the refund; and the model leaves the state of a
    /// charge never made wherever the spec says it does.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn r9_refund_lua_matches_its_rust_model() {
        let server = RedisServer::start();
        let clock = FakeClock::new(T0);
        let timeout = Duration::from_secs(5);
        let caller = Caller {
            connection: Connection::open(&server.url(), timeout, None, true)
                .await
                .unwrap(),
            form: Arc::new(Form::new(false, true)),
            timeout,
            clock: Some(Arc::new(clock.clone())),
            prefix: "sluice".to_owned(),
        };
        let mut rng = Xorshift(0x9e37_79b9_7f4a_7c15);
        let (mut compared, mut exact, mut failures) = (0, 0, Vec::new());
        for algorithm in Algorithm::ALL {
            // Each scenario, and whether the spec promises the state of a
            // charge never made.
            let mut scenarios: Vec<(Scenario, bool)> = (0..250)
                .map(|_| random(algorithm, &mut rng))
                .map(|s| {
                    let promised = s.exact() && !s.lost;
                    (s, promised)
                })
                .collect();
            for quarters in [1, 5, 12] {
                scenarios.push((stepped_back(algorithm, quarters), true));
            }
            scenarios.push((failover_between(algorithm), false));
            // A window cannot tell a count charged again from its own.
            let windows = matches!(
                algorithm,
                Algorithm::FixedWindow | Algorithm::SlidingWindowCounter
            );
            scenarios.push((lost_then_charged_behind(algorithm), !windows));
            for (i, (s, promised)) in scenarios.iter().enumerate() {
                let Some(want) = model(s) else { continue };
                let key = format!("{algorithm}-{i}");
                let got = lua(&caller, &clock, &key, s).await;
                compared += 1;
                if got != want {
                    failures.push(format!(
                        "{algorithm} scenario {i}: Lua and model differ: {s:?}\n  Lua   {got:?}\n  model {want:?}"
                    ));
                    continue;
                }
                if *promised {
                    let after = &want[want.len() - s.after.len()..];
                    let never = without_the_charge(s, &want);
                    if after != never {
                        failures.push(format!(
                            "{algorithm} scenario {i}: not as if never charged: {s:?}\n  refunded {after:?}\n  never    {never:?}"
                        ));
                    }
                    exact += 1;
                }
            }
        }
        assert!(
            failures.is_empty(),
            "{} failures:\n{}",
            failures.len(),
            failures.join("\n")
        );
        // The generator must reach both kinds of case.
        eprintln!("{compared} scenarios compared, {exact} exact");
        assert!(compared > 800, "only {compared} scenarios compared");
        assert!(exact > 300, "only {exact} exact scenarios");
    }
}
