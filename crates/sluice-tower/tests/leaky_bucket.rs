//! A leaky-bucket delay is waited out before the inner service runs, on
//! tokio's paused clock.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use http::{Request, Response, StatusCode};
use sluice::{Algorithm, FakeClock, Limiter, MemoryStore, Policy, Quota};
use sluice_tower::{KeyBy, RateLimitLayer};
use tower::{Layer, ServiceExt, service_fn};

/// Polls `future` once, without a runtime wakeup: the test decides when to
/// look again.
fn poll_once<F: Future + Unpin>(future: &mut F) -> Poll<F::Output> {
    Pin::new(future).poll(&mut Context::from_waker(Waker::noop()))
}

#[tokio::test(start_paused = true)]
async fn the_inner_service_runs_only_once_the_delay_has_passed() {
    // One request per second, three in the queue: the first goes through at
    // once, the second waits 1 s for its turn. The store's fake clock stands
    // still; the wait is on tokio's paused clock.
    let quota = Quota::new(Algorithm::LeakyBucket, 1, Duration::from_secs(1), Some(3)).unwrap();
    let store = MemoryStore::with_clock(FakeClock::new(1_000_000_000));
    let limiter = Limiter::new(store, [Policy::new("queue", quota).unwrap()]);
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&calls);
    let service = RateLimitLayer::new(limiter, "queue", KeyBy::peer_ip())
        .unwrap()
        .layer(service_fn(move |_: Request<()>| {
            counter.fetch_add(1, Ordering::SeqCst);
            async { Ok::<_, Infallible>(Response::new(String::from("served"))) }
        }));
    let request = || {
        let mut request = Request::new(());
        let peer: SocketAddr = "192.0.2.1:4000".parse().unwrap();
        request.extensions_mut().insert(peer);
        request
    };

    let first = service.clone().oneshot(request()).await.unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    assert_eq!(calls.load(Ordering::SeqCst), 1, "no delay for the first");

    let mut second = Box::pin(service.oneshot(request()));
    assert!(poll_once(&mut second).is_pending());
    tokio::time::advance(Duration::from_millis(999)).await;
    assert!(poll_once(&mut second).is_pending());
    assert_eq!(calls.load(Ordering::SeqCst), 1, "called before its turn");

    tokio::time::advance(Duration::from_millis(1)).await;
    let Poll::Ready(response) = poll_once(&mut second) else {
        panic!("still waiting after the delay");
    };
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    let response = response.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["ratelimit-remaining"], "1");
}
