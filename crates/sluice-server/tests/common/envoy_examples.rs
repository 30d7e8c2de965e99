//! Every example of envoyproxy/ratelimit's README "Configuration" section
//! (its configuration, and the requests and limits it describes), as one
//! table with a runner that asks through any transport: the service
//! in-process, the gRPC server, HTTP `/json`.
//!
//! The runner's clock stands still at [`NOW_S`]: every window's end, and so
//! every `duration_until_reset`, is known exactly.

use std::future::Future;

use envoy_types::pb::envoy::extensions::common::ratelimit::v3::RateLimitDescriptor;
use envoy_types::pb::envoy::extensions::common::ratelimit::v3::rate_limit_descriptor::Entry;
use sluice_server::config::envoy::EnvoyConfig;
use sluice_server::envoy::{RateLimitRequest, RateLimitResponse};

/// The instant the clock stands at, in seconds since the epoch
/// (2023-11-14T22:13:27Z): 27 s into its minute, 807 s into its hour,
/// 80,007 s into its day.
pub const NOW_S: u64 = 1_700_000_007;

/// Envoy's units, as its API numbers them.
pub const SECOND: i32 = 1;
/// A minute.
pub const MINUTE: i32 = 2;
/// An hour.
pub const HOUR: i32 = 3;
/// A day.
pub const DAY: i32 = 4;

/// OK, as Envoy's API numbers it.
pub const OK: i32 = 1;
/// OVER_LIMIT.
pub const OVER: i32 = 2;

/// One example: a configuration and requests asked in order.
pub struct Example {
    /// The example's heading in the README.
    pub name: &'static str,
    /// The configuration, as the README gives it.
    pub config: &'static str,
    /// The requests, in order.
    pub steps: &'static [Step],
}

/// A request asked `times` times; the last answer is checked.
pub struct Step {
    /// Its descriptors, each a list of `(key, value)`.
    pub descriptors: &'static [&'static [(&'static str, &'static str)]],
    /// How many times it is asked.
    pub times: u32,
    /// The overall code of the last answer.
    pub overall: i32,
    /// Its statuses, one per descriptor.
    pub statuses: &'static [Status],
}

/// What a descriptor's status must be.
#[derive(Clone, Copy, Debug)]
pub enum Status {
    /// OK, no limit applied (no rule, or a replaced one).
    Free,
    /// OK, unlimited: remaining 4294967295, no limit.
    Unlimited,
    /// A limit applied.
    Limit {
        /// OK or OVER.
        code: i32,
        /// `requests_per_unit`.
        per_unit: u32,
        /// The unit.
        unit: i32,
        /// `limit_remaining`.
        remaining: u32,
        /// The limit's name.
        name: &'static str,
    },
}

const fn limit(code: i32, per_unit: u32, unit: i32, remaining: u32) -> Status {
    Status::Limit {
        code,
        per_unit,
        unit,
        remaining,
        name: "",
    }
}

const fn step(
    descriptors: &'static [&'static [(&'static str, &'static str)]],
    times: u32,
    overall: i32,
    statuses: &'static [Status],
) -> Step {
    Step {
        descriptors,
        times,
        overall,
        statuses,
    }
}

/// The examples, in the README's order.
pub const EXAMPLES: &[Example] = &[
    Example {
        name: "Example 1",
        config: "domain: mongo_cps
descriptors:
  - key: database
    value: users
    rate_limit:
      unit: second
      requests_per_unit: 500

  - key: database
    value: default
    rate_limit:
      unit: second
      requests_per_unit: 500
",
        steps: &[
            step(
                &[&[("database", "users")]],
                500,
                OK,
                &[limit(OK, 500, SECOND, 0)],
            ),
            step(
                &[&[("database", "users")]],
                1,
                OVER,
                &[limit(OVER, 500, SECOND, 0)],
            ),
            step(
                &[&[("database", "default")]],
                1,
                OK,
                &[limit(OK, 500, SECOND, 499)],
            ),
            step(&[&[("database", "other")]], 1, OK, &[Status::Free]),
        ],
    },
    Example {
        name: "Example 2",
        config: "domain: messaging
descriptors:
  # Only allow 5 marketing messages a day
  - key: message_type
    value: marketing
    descriptors:
      - key: to_number
        rate_limit:
          unit: day
          requests_per_unit: 5

  # Only allow 100 messages a day to any unique phone number
  - key: to_number
    rate_limit:
      unit: day
      requests_per_unit: 100
",
        steps: &[
            step(
                &[
                    &[("message_type", "marketing"), ("to_number", "2061111111")],
                    &[("to_number", "2061111111")],
                ],
                5,
                OK,
                &[limit(OK, 5, DAY, 0), limit(OK, 100, DAY, 95)],
            ),
            // The sixth marketing message is over: nothing is spent on the
            // number's own limit either (all or nothing).
            step(
                &[
                    &[("message_type", "marketing"), ("to_number", "2061111111")],
                    &[("to_number", "2061111111")],
                ],
                1,
                OVER,
                &[limit(OVER, 5, DAY, 0), limit(OK, 100, DAY, 95)],
            ),
            step(
                &[
                    &[("message_type", "marketing"), ("to_number", "2062222222")],
                    &[("to_number", "2062222222")],
                ],
                1,
                OK,
                &[limit(OK, 5, DAY, 4), limit(OK, 100, DAY, 99)],
            ),
            step(
                &[&[("to_number", "2061111111")]],
                1,
                OK,
                &[limit(OK, 100, DAY, 94)],
            ),
        ],
    },
    Example {
        name: "Example 3",
        config: "domain: edge_proxy_per_ip
descriptors:
  - key: remote_address
    rate_limit:
      unit: second
      requests_per_unit: 10

  # Black list IP
  - key: remote_address
    value: 50.0.0.5
    rate_limit:
      unit: second
      requests_per_unit: 0
",
        steps: &[
            step(
                &[&[("remote_address", "50.0.0.1")]],
                1,
                OK,
                &[limit(OK, 10, SECOND, 9)],
            ),
            step(
                &[&[("remote_address", "50.0.0.2")]],
                11,
                OVER,
                &[limit(OVER, 10, SECOND, 0)],
            ),
            step(
                &[&[("remote_address", "50.0.0.5")]],
                1,
                OVER,
                &[limit(OVER, 0, SECOND, 0)],
            ),
        ],
    },
    Example {
        name: "Example 4 (no match)",
        config: "domain: example4
descriptors:
  - key: key
    value: value
    rate_limit:
      requests_per_unit: 300
      unit: second
",
        steps: &[
            step(
                &[&[("key", "value"), ("subkey", "subvalue")]],
                1,
                OK,
                &[Status::Free],
            ),
            step(
                &[&[("key", "value")]],
                1,
                OK,
                &[limit(OK, 300, SECOND, 299)],
            ),
        ],
    },
    Example {
        name: "Example 4 (match)",
        config: "domain: example4
descriptors:
  - key: key
    value: value
    descriptors:
      - key: subkey
        rate_limit:
          requests_per_unit: 300
          unit: second
",
        steps: &[
            step(
                &[&[("key", "value"), ("subkey", "subvalue")]],
                1,
                OK,
                &[limit(OK, 300, SECOND, 299)],
            ),
            step(&[&[("key", "value")]], 1, OK, &[Status::Free]),
        ],
    },
    Example {
        name: "Example 5",
        config: "domain: internal
descriptors:
  - key: ldap
    rate_limit:
      unlimited: true

  - key: azure
    rate_limit:
      unit: minute
      requests_per_unit: 100
",
        steps: &[
            step(&[&[("ldap", "x")]], 3, OK, &[Status::Unlimited]),
            step(&[&[("azure", "x")]], 1, OK, &[limit(OK, 100, MINUTE, 99)]),
            step(
                &[&[("ldap", "y")], &[("azure", "x")]],
                1,
                OK,
                &[Status::Unlimited, limit(OK, 100, MINUTE, 98)],
            ),
        ],
    },
    Example {
        name: "Example 6",
        config: "domain: example6
descriptors:
  - key: service
    descriptors:
      - key: user
        value: user-a
        rate_limit:
          requests_per_unit: 10
          unit: second
        shadow_mode: true
      - key: user
        value: user-b
        rate_limit:
          requests_per_unit: 20
          unit: second
",
        steps: &[
            step(
                &[&[("service", "auth-service"), ("user", "user-a")]],
                10,
                OK,
                &[limit(OK, 10, SECOND, 0)],
            ),
            // Past the limit, in shadow mode: OK, nothing remaining.
            step(
                &[&[("service", "auth-service"), ("user", "user-a")]],
                5,
                OK,
                &[limit(OK, 10, SECOND, 0)],
            ),
            step(
                &[&[("service", "auth-service"), ("user", "user-b")]],
                20,
                OK,
                &[limit(OK, 20, SECOND, 0)],
            ),
            step(
                &[&[("service", "auth-service"), ("user", "user-b")]],
                1,
                OVER,
                &[limit(OVER, 20, SECOND, 0)],
            ),
        ],
    },
    Example {
        name: "Example 7",
        config: "domain: example7
descriptors:
  - key: key_1
    value: value_1
    descriptors:
      - key: user
        value: bkthomps
        rate_limit:
          name: specific_limit
          requests_per_unit: 5
          unit: second
  - key: key_2
    value: value_2
    descriptors:
      - key: user
        value: bkthomps
        rate_limit:
          replaces:
            - name: specific_limit
          requests_per_unit: 10
          unit: second
",
        steps: &[
            step(
                &[&[("key_1", "value_1"), ("user", "bkthomps")]],
                1,
                OK,
                &[Status::Limit {
                    code: OK,
                    per_unit: 5,
                    unit: SECOND,
                    remaining: 4,
                    name: "specific_limit",
                }],
            ),
            step(
                &[&[("key_2", "value_2"), ("user", "bkthomps")]],
                1,
                OK,
                &[limit(OK, 10, SECOND, 9)],
            ),
            // Both: the 5/s limit is replaced, only the 10/s one counts.
            step(
                &[
                    &[("key_1", "value_1"), ("user", "bkthomps")],
                    &[("key_2", "value_2"), ("user", "bkthomps")],
                ],
                8,
                OK,
                &[Status::Free, limit(OK, 10, SECOND, 1)],
            ),
            // ... and the 5/s limit alone was not touched meanwhile.
            step(
                &[&[("key_1", "value_1"), ("user", "bkthomps")]],
                1,
                OK,
                &[Status::Limit {
                    code: OK,
                    per_unit: 5,
                    unit: SECOND,
                    remaining: 3,
                    name: "specific_limit",
                }],
            ),
        ],
    },
    Example {
        name: "Example 8",
        config: "domain: example8
descriptors:
  - key: key1
    detailed_metric: true
    rate_limit:
      unit: minute
      requests_per_unit: 10
  - key: key1
    value: value1
    rate_limit:
      unit: minute
      requests_per_unit: 20
",
        steps: &[
            step(
                &[&[("key1", "unspecified_value")]],
                10,
                OK,
                &[limit(OK, 10, MINUTE, 0)],
            ),
            step(
                &[&[("key1", "unspecified_value")]],
                1,
                OVER,
                &[limit(OVER, 10, MINUTE, 0)],
            ),
            step(
                &[&[("key1", "unspecified_value2")]],
                1,
                OK,
                &[limit(OK, 10, MINUTE, 9)],
            ),
            step(
                &[&[("key1", "value1")]],
                1,
                OK,
                &[limit(OK, 20, MINUTE, 19)],
            ),
        ],
    },
    Example {
        name: "Example 9 (trailing wildcard)",
        config: "domain: example9
descriptors:
  - key: key1
    value: value*
    rate_limit:
      unit: minute
      requests_per_unit: 20
",
        steps: &[
            step(
                &[&[("key1", "value1")]],
                2,
                OK,
                &[limit(OK, 20, MINUTE, 18)],
            ),
            // Each value its own counter (no share_threshold).
            step(
                &[&[("key1", "valueXYZ")]],
                1,
                OK,
                &[limit(OK, 20, MINUTE, 19)],
            ),
            step(&[&[("key1", "value")]], 1, OK, &[limit(OK, 20, MINUTE, 19)]),
            step(&[&[("key1", "other")]], 1, OK, &[Status::Free]),
        ],
    },
    Example {
        name: "Example 9 (middle wildcard)",
        config: "domain: example9
descriptors:
  - key: path
    value: /api/*/action
    rate_limit:
      unit: minute
      requests_per_unit: 20
",
        steps: &[
            step(
                &[&[("path", "/api/123/action")]],
                1,
                OK,
                &[limit(OK, 20, MINUTE, 19)],
            ),
            step(
                &[&[("path", "/api/user-id/action")]],
                1,
                OK,
                &[limit(OK, 20, MINUTE, 19)],
            ),
            step(&[&[("path", "/api/123/other")]], 1, OK, &[Status::Free]),
        ],
    },
    Example {
        name: "Example 9 (multiple wildcards)",
        config: "domain: example9
descriptors:
  - key: route
    value: /api/*/resource/*/action
    rate_limit:
      unit: minute
      requests_per_unit: 20
",
        steps: &[
            step(
                &[&[("route", "/api/v1/resource/123/action")]],
                1,
                OK,
                &[limit(OK, 20, MINUTE, 19)],
            ),
            step(
                &[&[("route", "/api/v2/resource/456/action")]],
                1,
                OK,
                &[limit(OK, 20, MINUTE, 19)],
            ),
            step(
                &[&[("route", "/api/v1/resource/123")]],
                1,
                OK,
                &[Status::Free],
            ),
        ],
    },
    Example {
        name: "Example 10",
        config: "domain: example10
descriptors:
  - key: route
    value_to_metric: true
    descriptors:
      - key: http_method
        value_to_metric: true
        descriptors:
          - key: subject_id
            rate_limit:
              unit: minute
              requests_per_unit: 60
",
        steps: &[
            step(
                &[&[
                    ("route", "api"),
                    ("http_method", "GET"),
                    ("subject_id", "123"),
                ]],
                1,
                OK,
                &[limit(OK, 60, MINUTE, 59)],
            ),
            step(
                &[&[
                    ("route", "web"),
                    ("http_method", "POST"),
                    ("subject_id", "456"),
                ]],
                1,
                OK,
                &[limit(OK, 60, MINUTE, 59)],
            ),
        ],
    },
    Example {
        name: "Example 10 (wildcard)",
        config: "domain: example10_wildcard
descriptors:
  - key: user
    value_to_metric: true
    descriptors:
      - key: action
        value: read*
        value_to_metric: true
        descriptors:
          - key: resource
            rate_limit:
              unit: minute
              requests_per_unit: 100
",
        steps: &[
            step(
                &[&[
                    ("user", "alice"),
                    ("action", "readfile"),
                    ("resource", "documents"),
                ]],
                1,
                OK,
                &[limit(OK, 100, MINUTE, 99)],
            ),
            step(
                &[&[
                    ("user", "alice"),
                    ("action", "write"),
                    ("resource", "documents"),
                ]],
                1,
                OK,
                &[Status::Free],
            ),
        ],
    },
    Example {
        name: "Example 11",
        config: "domain: example11
descriptors:
  # With share_threshold: true, all files/* matches share the same threshold
  - key: files
    value: files/*
    share_threshold: true
    rate_limit:
      unit: hour
      requests_per_unit: 10

  # Without share_threshold, each files_no_share/* match has its own isolated threshold
  - key: files_no_share
    value: files_no_share/*
    share_threshold: false
    rate_limit:
      unit: hour
      requests_per_unit: 10
",
        steps: &[
            step(
                &[&[("files", "files/a.pdf")]],
                5,
                OK,
                &[limit(OK, 10, HOUR, 5)],
            ),
            step(
                &[&[("files", "files/b.csv")]],
                5,
                OK,
                &[limit(OK, 10, HOUR, 0)],
            ),
            step(
                &[&[("files", "files/c.txt")]],
                1,
                OVER,
                &[limit(OVER, 10, HOUR, 0)],
            ),
            step(
                &[&[("files_no_share", "files_no_share/a.pdf")]],
                10,
                OK,
                &[limit(OK, 10, HOUR, 0)],
            ),
            step(
                &[&[("files_no_share", "files_no_share/a.pdf")]],
                1,
                OVER,
                &[limit(OVER, 10, HOUR, 0)],
            ),
            step(
                &[&[("files_no_share", "files_no_share/b.csv")]],
                1,
                OK,
                &[limit(OK, 10, HOUR, 9)],
            ),
        ],
    },
    Example {
        name: "Example 11 (with value_to_metric)",
        config: "domain: example11_metrics
descriptors:
  - key: route
    value: api/*
    share_threshold: true
    value_to_metric: true
    descriptors:
      - key: method
        rate_limit:
          unit: minute
          requests_per_unit: 60
",
        steps: &[
            step(
                &[&[("route", "api/v1"), ("method", "GET")]],
                1,
                OK,
                &[limit(OK, 60, MINUTE, 59)],
            ),
            // api/* routes share one threshold.
            step(
                &[&[("route", "api/v2"), ("method", "GET")]],
                1,
                OK,
                &[limit(OK, 60, MINUTE, 58)],
            ),
        ],
    },
];

impl Example {
    /// The example's configuration, loaded as a file of it would be.
    pub fn load(&self) -> EnvoyConfig {
        let mut config = EnvoyConfig::default();
        config
            .add(self.config, "example.yaml", false)
            .unwrap_or_else(|e| panic!("{}: {e}", self.name));
        config
    }
}

/// The request of `descriptors` in `domain`.
pub fn request(domain: &str, descriptors: &[&[(&str, &str)]]) -> RateLimitRequest {
    RateLimitRequest {
        domain: domain.to_owned(),
        descriptors: descriptors
            .iter()
            .map(|entries| RateLimitDescriptor {
                entries: entries
                    .iter()
                    .map(|(k, v)| Entry {
                        key: (*k).to_owned(),
                        value: (*v).to_owned(),
                    })
                    .collect(),
                ..RateLimitDescriptor::default()
            })
            .collect(),
        hits_addend: 0,
    }
}

/// The example's domain (its configuration's first line).
fn domain(example: &Example) -> &str {
    let first = example.config.lines().next().unwrap_or_default();
    first.trim_start_matches("domain:").trim()
}

/// Asks every step of `example` through `ask`, on a service that counts
/// from nothing with `example`'s configuration and a clock standing at
/// [`NOW_S`], and checks every last answer exactly.
pub async fn run<F, Fut>(example: &Example, mut ask: F)
where
    F: FnMut(RateLimitRequest) -> Fut,
    Fut: Future<Output = RateLimitResponse>,
{
    let domain = domain(example);
    for (s, step) in example.steps.iter().enumerate() {
        let request = request(domain, step.descriptors);
        let mut answer = None;
        for _ in 0..step.times {
            answer = Some(ask(request.clone()).await);
        }
        let answer = answer.expect("every step asks at least once");
        let at = format!("{}, step {s}: {answer:?}", example.name);
        assert_eq!(answer.overall_code, step.overall, "overall code; {at}");
        assert_eq!(answer.statuses.len(), step.statuses.len(), "{at}");
        for (got, want) in answer.statuses.iter().zip(step.statuses) {
            check(got, want, &at);
        }
    }
}

/// Checks one status against what it must be.
pub fn check(
    got: &envoy_types::pb::envoy::service::ratelimit::v3::rate_limit_response::DescriptorStatus,
    want: &Status,
    at: &str,
) {
    match *want {
        Status::Free => {
            assert_eq!(got.code, OK, "{at}");
            assert_eq!(got.current_limit, None, "{at}");
            assert_eq!(got.limit_remaining, 0, "{at}");
        }
        Status::Unlimited => {
            assert_eq!(got.code, OK, "{at}");
            assert_eq!(got.current_limit, None, "{at}");
            assert_eq!(got.limit_remaining, u32::MAX, "{at}");
        }
        Status::Limit {
            code,
            per_unit,
            unit,
            remaining,
            name,
        } => {
            assert_eq!(got.code, code, "code; {at}");
            let limit = got.current_limit.as_ref().expect("a limit");
            assert_eq!(limit.requests_per_unit, per_unit, "{at}");
            assert_eq!(limit.unit, unit, "{at}");
            assert_eq!(limit.name, name, "{at}");
            assert_eq!(got.limit_remaining, remaining, "remaining; {at}");
            let unit_s: u64 = match unit {
                SECOND => 1,
                MINUTE => 60,
                HOUR => 3_600,
                DAY => 86_400,
                _ => panic!("unit {unit} not in the table"),
            };
            let reset = got.duration_until_reset.expect("a reset");
            let want_s = unit_s - NOW_S % unit_s;
            assert_eq!(
                (reset.seconds, reset.nanos),
                (want_s as i64, 0),
                "reset; {at}"
            );
        }
    }
}
