//! Scenarios that run on every store, through the in-process API: the same
//! assertions on memory, on a Redis server and on a Redis Cluster.

use std::time::Duration;

use serde_json::json;
use sluice::{Algorithm, Clock, Limit, Policy};

use super::app::{App, START_US, quota};

const SECOND: Duration = Duration::from_secs(1);
const HOUR: Duration = Duration::from_secs(3600);

/// A policy of two limits: 2 per second and 5 per hour.
pub fn two_limits() -> Policy {
    Policy::with_limits(
        "two",
        [
            Limit::new(quota(Algorithm::TokenBucket, 2, SECOND, None)),
            Limit::new(quota(Algorithm::FixedWindow, 5, HOUR, None)),
        ],
    )
    .unwrap()
}

/// A policy with a per-second and a per-hour limit, checked through the
/// API over `app`'s store: a denial by the second spends nothing on the
/// hour, and every answer's headers describe the limit that decided.
/// `app` decides [`two_limits`] (named `two`) from [`START_US`].
pub async fn the_hour_spends_nothing_when_the_second_denies(app: &App) {
    let check = || app.check(json!({"policy": "two", "key": "k"}));
    for left in [1, 0] {
        let a = check().await;
        assert_eq!(a.status, 200);
        assert_eq!(
            (&a.json["burst"], &a.json["remaining"]),
            (&json!(2), &json!(left))
        );
        assert_eq!(a.header("ratelimit-policy"), r#""two";q=2;w=1"#);
    }
    for _ in 0..3 {
        let a = check().await;
        assert_eq!(a.status, 429);
        assert_eq!(
            (&a.json["burst"], &a.json["retry_after_ms"]),
            (&json!(2), &json!(500)),
            "{}",
            a.json
        );
        assert_eq!(a.header("ratelimit-policy"), r#""two";q=2;w=1"#);
        assert_eq!(a.header("ratelimit"), r#""two";r=0;t=1"#);
        assert_eq!(a.header("retry-after"), "1");
    }

    // A second later the per-second limit is full again, and the hour,
    // which spent the two admissions only, admits two more.
    app.advance(SECOND);
    for left in [1, 0] {
        let a = check().await;
        assert_eq!(a.status, 200, "the denials spent the hour: {}", a.json);
        assert_eq!(
            (&a.json["burst"], &a.json["remaining"]),
            (&json!(2), &json!(left))
        );
    }
    // Another second: the hour, with 1 left, is the tighter; the peek
    // answers what the check would: 0 left after it.
    app.advance(SECOND);
    let a = app.get("/v1/limits/two/k").await;
    assert_eq!(
        (&a.json["burst"], &a.json["remaining"]),
        (&json!(5), &json!(0)),
        "{}",
        a.json
    );
    assert_eq!(a.header("ratelimit-policy"), r#""two";q=5;w=3600"#);
    let a = check().await;
    assert_eq!(a.status, 200);
    assert_eq!(
        (&a.json["burst"], &a.json["remaining"]),
        (&json!(5), &json!(0))
    );
    assert_eq!(a.header("ratelimit-policy"), r#""two";q=5;w=3600"#);

    // The hour denies now; its window ends 3598 s from now.
    let a = check().await;
    assert_eq!(a.status, 429);
    assert_eq!(
        (&a.json["burst"], &a.json["retry_after_ms"]),
        (&json!(5), &json!(3_598_000))
    );
    assert_eq!(a.header("ratelimit-policy"), r#""two";q=5;w=3600"#);
    assert_eq!(a.header("retry-after"), "3598");

    app.advance(Duration::from_secs(3598) - Duration::from_millis(1));
    assert_eq!(check().await.status, 429);
    app.advance(Duration::from_millis(1));
    let a = check().await;
    assert_eq!(a.status, 200, "a new hour");
    assert_eq!(
        (&a.json["burst"], &a.json["remaining"]),
        (&json!(2), &json!(1))
    );
    assert_eq!(app.clock.now_us() - START_US, 3600 * 1_000_000);
}
