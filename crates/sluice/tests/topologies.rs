//! The Redis topologies beyond a plain single node and a cluster of masters
//! (issue 11): TLS (`rediss://`, a private CA, a client certificate),
//! against a real TLS-enabled `redis-server` with certificates made here.
//! (Sentinel and Cluster failovers are in `failover.rs`.)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use sluice::{Algorithm, Check, Quota, RedisOptions, RedisStore, Store, StoreError, TlsOptions};
use sluice_testkit::{Certificates, TlsRedisServer};

fn read(path: std::path::PathBuf) -> Vec<u8> {
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// TLS options trusting `certs`'s CA, and showing its client certificate
/// when `client`.
fn tls(certs: &Certificates, client: bool) -> TlsOptions {
    let tls = TlsOptions::default().with_ca(read(certs.ca())).unwrap();
    if client {
        tls.with_client_certificate(read(certs.client_cert()), read(certs.client_key()))
            .unwrap()
    } else {
        tls
    }
}

fn options(tls: TlsOptions) -> RedisOptions {
    RedisOptions::default()
        .with_timeout(Duration::from_secs(2))
        .with_tls(tls)
}

/// Three admissions then a denial: the store decides over TLS, and the
/// state is in the server (seen on its plain port).
async fn decides_exactly(store: &RedisStore, redis: &TlsRedisServer) {
    let quota = Quota::new(Algorithm::FixedWindow, 3, Duration::from_secs(3600), None).unwrap();
    let check = Check::new("tls", "client", &quota, 1);
    let mut allowed = Vec::new();
    for _ in 0..4 {
        let decisions = store.decide(std::slice::from_ref(&check)).await.unwrap();
        allowed.push(decisions[0].allowed);
    }
    assert_eq!(allowed, [true, true, true, false]);
    assert_eq!(redis.server().cli(&["dbsize"]), "1");
}

/// Issue 11: any `rediss://` URL panicked (rustls had no crypto provider).
/// Now a server whose CA is not trusted is an error like any other.
#[tokio::test]
async fn i11_rediss_with_an_unknown_ca_is_an_error_not_a_panic() {
    let redis = TlsRedisServer::start(false);
    // The public roots do not know the test's CA.
    let error = RedisStore::connect_with(&redis.url(), RedisOptions::default())
        .await
        .err()
        .expect("a server signed by an unknown CA must be refused");
    assert!(
        error.is_transient() || matches!(error, StoreError::Protocol(_)),
        "{error:?}"
    );
    // Nor does another CA made the same way.
    let stranger = Certificates::generate();
    let refused = RedisStore::connect_with(&redis.url(), options(tls(&stranger, false))).await;
    assert!(
        refused.is_err(),
        "a server signed by another CA was trusted"
    );
}

#[tokio::test]
async fn rediss_with_the_servers_ca_decides() {
    let redis = TlsRedisServer::start(false);
    let store = RedisStore::connect_with(&redis.url(), options(tls(redis.certificates(), false)))
        .await
        .unwrap();
    store.ping().await.unwrap();
    decides_exactly(&store, &redis).await;
}

#[tokio::test]
async fn a_client_certificate_is_shown_to_a_server_that_asks_for_one() {
    let redis = TlsRedisServer::start(true);
    let url = redis.url();
    let without = RedisStore::connect_with(&url, options(tls(redis.certificates(), false)));
    assert!(
        without.await.is_err(),
        "the server asks for a client certificate: connecting without one must fail"
    );
    let store = RedisStore::connect_with(&redis.url(), options(tls(redis.certificates(), true)))
        .await
        .unwrap();
    decides_exactly(&store, &redis).await;
}

#[tokio::test]
async fn certificates_are_refused_for_a_plain_url() {
    let redis = TlsRedisServer::start(false);
    let plain = redis.server().url();
    let error = RedisStore::connect_with(&plain, options(tls(redis.certificates(), false)))
        .await
        .err()
        .expect("TLS options on redis:// must be refused");
    assert!(format!("{error:?}").contains("rediss://"), "{error:?}");
    // Nor are they ignored on a cluster or a Sentinel URL.
    for url in [
        "redis+cluster://127.0.0.1:1",
        "redis+sentinel://127.0.0.1:1/m",
    ] {
        let connecting = RedisStore::connect_with(url, options(tls(redis.certificates(), false)));
        let Err(error) = connecting.await else {
            panic!("TLS options must be refused on {url}");
        };
        assert!(
            format!("{error:?}").contains("rediss://"),
            "{url}: {error:?}"
        );
    }
}

#[test]
fn what_is_not_pem_is_refused_when_given() {
    let certs = Certificates::generate();
    let cert = read(certs.client_cert());
    let key = read(certs.client_key());
    assert!(TlsOptions::default().with_ca(b"".to_vec()).is_err());
    assert!(
        TlsOptions::default().with_ca(key.clone()).is_err(),
        "a key is no CA"
    );
    assert!(
        TlsOptions::default()
            .with_client_certificate(cert.clone(), cert.clone())
            .is_err(),
        "a certificate is no key"
    );
    assert!(
        TlsOptions::default()
            .with_client_certificate(key.clone(), key.clone())
            .is_err(),
        "a key is no certificate"
    );
    let tls = TlsOptions::default()
        .with_client_certificate(cert, key)
        .unwrap();
    assert!(tls.has_client_certificate() && !tls.has_ca());
    assert!(
        !format!("{tls:?}").contains("PRIVATE"),
        "Debug must not print the key"
    );
}
