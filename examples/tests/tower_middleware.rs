//! The README's middleware example runs as written (`tests/readme.rs` keeps
//! the README's text and `tower_middleware.rs` the same): the built
//! `tower_middleware` example answers its route, and a client that keeps
//! asking is refused with 429 once its per-second burst of 10 is spent.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Running, get};

#[test]
fn the_readme_example_serves_then_refuses_with_429() {
    let app = Running::start("tower_middleware", &[]);
    assert!(
        app.banner.starts_with("listening on http://127.0.0.1:"),
        "{:?}",
        app.banner
    );
    // The bucket holds 10 and refills one every 100 ms, so the first ten are
    // served whatever the timing; a tight loop spends faster than the refill,
    // so a 429 follows well within 100 requests.
    let mut served = 0;
    let denied = loop {
        let reply = get(&app.addr, "/");
        match reply.status {
            200 => {
                assert_eq!(reply.body, "hello");
                served += 1;
                assert!(served < 100, "no 429 after {served} requests");
            }
            429 => break reply,
            _ => panic!("unexpected answer {reply:#?}"),
        }
    };
    assert!(served >= 10, "refused after only {served} requests");
    assert_eq!(denied.headers["ratelimit-remaining"], "0", "{denied:#?}");
    let retry_after: u64 = denied.headers["retry-after"].parse().unwrap();
    assert_eq!(
        retry_after, 1,
        "a token comes back within 100 ms: {denied:#?}"
    );
}
