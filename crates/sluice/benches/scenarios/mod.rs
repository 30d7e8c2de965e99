//! What the scenarios share: polling a ready future, seeded keys, and
//! running a check loop on several threads against wall time.

pub mod algorithms;
pub mod keyed;
pub mod stores;

use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::sync::Barrier;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// The seed of every random choice, so that runs compare.
pub const SEED: u64 = 0x51u64 << 56 | 0xce;

/// Polls `f` once with a no-op waker and returns its output: the memory
/// store never waits, so its futures are ready at the first poll and no
/// runtime (which governor does not pay for) is measured.
#[inline(always)]
pub fn now<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(out) => out,
        Poll::Pending => panic!("a memory store future was not ready at the first poll"),
    }
}

/// `n` distinct keys of 12 bytes (`user-0000001`), made before measuring.
pub fn keys(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("user-{i:07}")).collect()
}

/// The length of [`Order`]: a power of two, so that wrapping is a mask.
const ORDER_LEN: usize = 1 << 20;

/// A seeded, uniformly random sequence of key indices, made before
/// measuring so that drawing a key costs one load.
pub struct Order(Box<[u32]>);

impl Order {
    /// Indices in `0..keys`.
    pub fn uniform(keys: usize) -> Order {
        let mut rng = StdRng::seed_from_u64(SEED);
        let keys = u32::try_from(keys).expect("fewer than 2^32 keys");
        Order((0..ORDER_LEN).map(|_| rng.random_range(0..keys)).collect())
    }

    /// The `i`th index, wrapping around.
    pub fn at(&self, i: usize) -> usize {
        self.0[i & (ORDER_LEN - 1)] as usize
    }
}

/// Runs `iters` calls of `check(i)` split over `threads` threads that start
/// together, and returns the wall time from their start to the last one's
/// end: `wall / iters` is the cost of a check with that many threads at it.
/// Each thread reads the key order from its own offset.
pub fn on_threads(threads: usize, iters: u64, check: impl Fn(usize) -> bool + Sync) -> Duration {
    let start = Barrier::new(threads + 1);
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads as u64)
            .map(|t| {
                let (start, check) = (&start, &check);
                // The first threads take one more when `iters` does not divide.
                let n = iters / threads as u64 + u64::from(t < iters % threads as u64);
                let offset = t as usize * (ORDER_LEN / threads);
                s.spawn(move || {
                    start.wait();
                    for i in 0..n as usize {
                        black_box(check(offset + i));
                    }
                })
            })
            .collect();
        start.wait();
        let began = Instant::now();
        for w in workers {
            w.join().expect("a benchmark thread panicked");
        }
        began.elapsed()
    })
}
