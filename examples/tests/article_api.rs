//! The article's API, as the built `article_api` example, over HTTP: ten
//! requests from one client are served, the eleventh gets the article's 429.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Running, get};
use sluice_testkit::RedisServer;

const OK_BODY: &str = r#"{"message":"Resource accessed successfully!"}"#;
const DENIED_BODY: &str = r#"{"message":"Rate limit exceeded. Try again later."}"#;

/// Ten 200s with the article's body and a falling `RateLimit-Remaining`,
/// then the article's 429 with `Retry-After`.
fn ten_then_the_articles_429(api: &Running) {
    for remaining in (0..10).rev() {
        let reply = get(&api.addr, "/api/resource");
        assert_eq!(reply.status, 200, "{reply:#?}");
        assert_eq!(reply.body, OK_BODY);
        assert_eq!(reply.headers["content-type"], "application/json");
        assert_eq!(reply.headers["ratelimit-limit"], "10");
        assert_eq!(reply.headers["ratelimit-remaining"], remaining.to_string());
        assert_eq!(reply.headers["ratelimit-policy"], r#""api";q=10;w=60"#);
    }
    let denied = get(&api.addr, "/api/resource");
    assert_eq!(denied.status, 429, "{denied:#?}");
    assert_eq!(denied.body, DENIED_BODY);
    assert_eq!(denied.headers["content-type"], "application/json");
    // One token comes back every 6 s.
    let retry_after: u64 = denied.headers["retry-after"].parse().unwrap();
    assert!((1..=6).contains(&retry_after), "{denied:#?}");
    assert_eq!(denied.headers["ratelimit-remaining"], "0");
}

#[test]
fn with_the_memory_store() {
    let api = Running::start("article_api", &[]);
    assert!(api.banner.ends_with("(store: memory)\n"), "{}", api.banner);
    ten_then_the_articles_429(&api);
}

#[test]
fn with_the_redis_store() {
    let redis = RedisServer::start();
    let api = Running::start("article_api", &[("REDIS_URL", &redis.url())]);
    assert!(api.banner.ends_with("(store: redis)\n"), "{}", api.banner);
    ten_then_the_articles_429(&api);
    assert_eq!(redis.cli(&["dbsize"]), "1", "one key: the client's bucket");
}
