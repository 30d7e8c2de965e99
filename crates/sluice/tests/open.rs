//! `sluice::store::open`: the store a URL names, as one type, on memory and
//! on a real Redis.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use sluice::store::{OpenError, open};
use sluice::{BoxStore, Limiter, Policy, Quota};
use sluice_testkit::RedisServer;

fn limiter(store: BoxStore) -> Limiter<BoxStore> {
    let policy = Policy::new("api", Quota::per_minute(2).unwrap()).unwrap();
    Limiter::new(store, [policy])
}

async fn remaining(limiter: &Limiter<BoxStore>) -> (bool, u64) {
    let decision = limiter.check("api", "k", 1).await.unwrap();
    (decision.allowed, decision.remaining)
}

#[tokio::test]
async fn memory_opens_a_store_of_this_process() {
    let one = limiter(open("memory").await.unwrap());
    assert_eq!(remaining(&one).await, (true, 1));
    assert_eq!(remaining(&one).await, (true, 0));
    assert!(!remaining(&one).await.0);
    // Each opening is a store of its own.
    let two = limiter(open("memory").await.unwrap());
    assert_eq!(remaining(&two).await, (true, 1));
}

#[tokio::test]
async fn a_redis_url_opens_a_store_shared_through_redis() {
    let redis = RedisServer::start();
    let one = limiter(open(&redis.url()).await.unwrap());
    assert_eq!(remaining(&one).await, (true, 1));
    // A second opening sees the same state: it lives in Redis.
    let two = limiter(open(&redis.url()).await.unwrap());
    assert_eq!(remaining(&two).await, (true, 0));
    assert!(!remaining(&one).await.0);
}

#[tokio::test]
async fn an_unknown_url_or_an_unreachable_redis_is_an_error() {
    let unknown = open("http://127.0.0.1:6379").await.unwrap_err();
    assert!(matches!(unknown, OpenError::Url(_)), "{unknown:?}");
    let redis = RedisServer::start();
    let url = redis.url();
    drop(redis);
    let refused = open(&url).await.unwrap_err();
    assert!(matches!(refused, OpenError::Store(_)), "{refused:?}");
}
