use super::*;

fn errors(text: &str) -> Vec<String> {
    match parse(text, "sluice.yaml") {
        Ok(config) => panic!("expected errors, got {config:?}"),
        Err(ConfigErrors(errors)) => errors.iter().map(ToString::to_string).collect(),
    }
}

#[test]
fn a_full_file_loads() {
    let text = "\
store: redis://127.0.0.1:6379
policies:
  api:
    algorithm: sliding_window_counter
    limit: 100
    period: 1m
  login:
    limit: 5
    period: 15m
    burst: 2
    shadow: true
    overrides:
      trusted-partner:
        limit: 50
      ci-runner:
        burst: 9
";
    let config = parse(text, "sluice.yaml").unwrap();
    assert_eq!(
        config.store,
        Some(StoreSpec::Redis("redis://127.0.0.1:6379".into()))
    );
    let [api, login] = &config.policies[..] else {
        panic!("{config:?}")
    };
    assert_eq!(api.name(), "api");
    assert_eq!(api.quota().algorithm(), Algorithm::SlidingWindowCounter);
    assert_eq!(api.quota().period(), Duration::from_secs(60));
    assert_eq!(login.quota().algorithm(), Algorithm::TokenBucket);
    assert_eq!((login.quota().limit(), login.quota().burst()), (5, 2));
    assert!(login.shadow());
    // An override inherits what it does not set; the policy set a burst.
    let partner = login.quota_for("trusted-partner");
    assert_eq!(
        (partner.limit(), partner.period(), partner.burst()),
        (50, Duration::from_secs(900), 2)
    );
    let runner = login.quota_for("ci-runner");
    assert_eq!((runner.limit(), runner.burst()), (5, 9));
}

#[test]
fn redis_options_are_read_and_checked() {
    let text = "redis:\n  prefix: shop\n  timeout: 250ms\n  functions: false\n  module: false\npolicies:\n  api: {limit: 1, period: 1s}\n";
    let config = parse(text, "sluice.yaml").unwrap();
    assert_eq!(
        (
            config.redis.prefix.as_str(),
            config.redis.timeout,
            config.redis.functions,
            config.redis.module
        ),
        ("shop", Duration::from_millis(250), false, false)
    );
    let defaults = parse("policies:\n  api: {limit: 1, period: 1s}\n", "sluice.yaml").unwrap();
    assert!(defaults.redis.functions && defaults.redis.module);
    let got = errors(
        "redis:\n  prefix: '{x}'\n  colour: red\npolicies:\n  api: {limit: 1, period: 1s}\n",
    );
    assert_eq!(
        got,
        [
            "sluice.yaml:3: redis.colour: unknown field; expected one of prefix, timeout, functions, module, tls",
            "sluice.yaml:2: redis.prefix: must be a non-empty prefix without braces, got \"{x}\"",
        ]
    );
}

/// Issue 11: a zero timeout would fail every decision; it is refused with
/// its line, as any other error.
#[test]
fn i11_a_zero_redis_timeout_is_an_error() {
    let got = errors("policies:\n  api: {limit: 1, period: 1s}\nredis:\n  timeout: 0s\n");
    assert_eq!(
        got,
        ["sluice.yaml:4: redis.timeout: must be above zero, got 0s"]
    );
    let defaults = parse("policies:\n  api: {limit: 1, period: 1s}\n", "sluice.yaml").unwrap();
    assert_eq!(defaults.redis.timeout, Duration::from_millis(250));
}

#[test]
fn an_unset_burst_follows_the_overridden_limit() {
    let text = "policies:\n  api:\n    limit: 10\n    period: 1s\n    overrides:\n      vip:\n        limit: 1000\n";
    let config = parse(text, "sluice.yaml").unwrap();
    let vip = config.policies[0].quota_for("vip");
    assert_eq!((vip.limit(), vip.burst()), (1000, 1000));
}

/// Issue 14: override keys by pattern (the most specific wins), and
/// `unlimited` and `block` overrides.
#[test]
fn issue_14_overrides_describe_tiers() {
    let text = "policies:\n  api:\n    limit: 10\n    period: 1s\n    overrides:\n      \"*.premium\":\n        limit: 100\n      \"tenant-7:*\":\n        limit: 50\n      \"tenant-7:*.premium\":\n        limit: 500\n      internal-batch:\n        unlimited: true\n      \"abuser-*\":\n        block: true\n      plain:\n        unlimited: false\n";
    let config = parse(text, "sluice.yaml").unwrap();
    let api = &config.policies[0];
    for (key, limit) in [
        ("acme.premium", 100),
        ("tenant-7:x", 50),
        ("tenant-7:x.premium", 500),
        ("plain", 10),
        ("other", 10),
    ] {
        assert_eq!(api.quota_for(key).limit(), limit, "{key}");
    }
    assert_eq!(
        api.limits()[0].override_for("internal-batch"),
        Some(&sluice::Override::Unlimited)
    );
    assert_eq!(
        api.limits()[0].override_for("abuser-9"),
        Some(&sluice::Override::Blocked)
    );
}

/// Issue 14: `unlimited` and `block` stand alone: beside quota fields or
/// each other, or not a boolean, they are errors with line and path.
#[test]
fn issue_14_unlimited_and_block_stand_alone() {
    let text = "policies:\n  api:\n    limit: 10\n    period: 1s\n    overrides:\n      a:\n        unlimited: true\n        limit: 5\n      b:\n        unlimited: true\n        block: true\n      c:\n        block: yes please\n";
    assert_eq!(
        errors(text),
        [
            "sluice.yaml:7: policies.api.overrides.a.unlimited: an override with unlimited: true takes no limit",
            "sluice.yaml:11: policies.api.overrides.b.block: give unlimited or block, not both",
            "sluice.yaml:13: policies.api.overrides.c.block: must be true or false, got yes please",
        ]
    );
}

#[test]
fn the_issue_example_error_reads_as_written() {
    let text = "\
# Sluice
store: memory

policies:
  api:
    period: 1m
    limit: -5
";
    assert_eq!(
        errors(text),
        ["sluice.yaml:7: policies.api.limit: must be a positive integer, got -5"]
    );
}

#[test]
fn every_error_is_listed_with_its_line_and_path() {
    let text = "\
policies:
  api:
    algorithm: token-bucket
    limit: ten
    period: 5 parsecs
    burts: 3
  windows:
    algorithm: fixed_window
    limit: 10
    period: 1s
    burst: 5
  tiers:
    limit: 10
    period: 1s
    overrides:
      vip:
        limit: 0
        colour: blue
  bad name:
    limit: 1
    period: 1s
";
    let got = errors(text);
    let expected = [
        "sluice.yaml:6: policies.api.burts: unknown field; expected one of algorithm, limit, period, burst, shadow, overrides",
        "sluice.yaml:3: policies.api.algorithm: unknown algorithm \"token-bucket\"",
        "sluice.yaml:4: policies.api.limit: must be a positive integer, got ten",
        "sluice.yaml:5: policies.api.period: \"5 parsecs\" is not a duration: write a whole number followed by ms, s, m, h or d (or us), e.g. 250ms or 1h30m",
        "sluice.yaml:11: policies.windows.burst: fixed_window has no burst",
        "sluice.yaml:18: policies.tiers.overrides.vip.colour: unknown field; expected one of limit, period, burst, unlimited, block",
        "sluice.yaml:17: policies.tiers.overrides.vip.limit: must be a positive integer, got 0",
        "sluice.yaml:19: policies.bad name: policy name \"bad name\" must be",
    ];
    assert_eq!(got.len(), expected.len(), "{got:#?}");
    for (got, expected) in got.iter().zip(expected) {
        assert!(
            got.starts_with(expected),
            "{got}\n  does not start with\n{expected}"
        );
    }
}

#[test]
fn missing_and_unknown_top_level_fields_are_errors() {
    assert_eq!(
        errors("store: memory\n"),
        ["sluice.yaml:1: policies: missing field; at least one policy is required"]
    );
    let got = errors("polices:\n  api: {limit: 1, period: 1s}\n");
    assert!(
        got[0].starts_with(
            "sluice.yaml:1: polices: unknown field; expected one of store, redis, on_store_error, local_share, deny_cache, policies"
        ),
        "{got:?}"
    );
    let got = errors("policies:\n  api:\n    limit: 1\n");
    assert_eq!(got, ["sluice.yaml:3: policies.api.period: missing field"]);
}

#[test]
fn yaml_syntax_errors_name_the_line() {
    let got = errors("policies:\n  api:\n    limit: 1\n   period: [1s\n");
    assert_eq!(got.len(), 1);
    assert!(got[0].starts_with("sluice.yaml:4: invalid YAML"), "{got:?}");
    let got = errors("policies:\n  api: {limit: 1, period: 1s}\n  api: {limit: 2, period: 1s}\n");
    assert!(
        got[0].starts_with("sluice.yaml:3: duplicate key \"api\" (first defined on line 2)"),
        "{got:?}"
    );
    let got = errors("- just\n- a list\n");
    assert!(got[0].contains("must be a YAML mapping"), "{got:?}");
}

#[test]
fn wrong_shapes_say_what_they_got() {
    let got = errors("policies:\n  api:\n    limit: [1]\n    period: 1s\n    shadow: maybe\n");
    assert_eq!(
        got,
        [
            "sluice.yaml:3: policies.api.limit: must be a positive integer, got a list",
            "sluice.yaml:5: policies.api.shadow: must be true or false, got maybe",
        ]
    );
    let got = errors("policies: 3\n");
    assert_eq!(
        got,
        ["sluice.yaml:1: policies: must be a mapping from policy name to policy, got \"3\""]
    );
}

#[test]
fn periods_are_checked_against_the_quota_rules() {
    let got = errors("policies:\n  api:\n    limit: 1\n    period: 500us\n");
    assert_eq!(
        got,
        [
            "sluice.yaml:4: policies.api.period: must be whole microseconds from 1ms to 366d, got 500us"
        ]
    );
    let got = errors("policies:\n  api:\n    limit: 1\n    period: 60\n");
    assert!(got[0].contains("a number needs a unit"), "{got:?}");
}

#[test]
fn flags_beat_the_environment_which_beats_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sluice.yaml");
    std::fs::write(
        &path,
        "store: redis://127.0.0.1:1\npolicies:\n  api: {limit: 1, period: 1s}\n",
    )
    .unwrap();
    let path_text = path.display().to_string();
    let env = |name: &str| match name {
        CONFIG_ENV => Some(path_text.clone()),
        STORE_ENV => Some("redis://127.0.0.1:2".to_owned()),
        _ => None,
    };

    let from_env = Config::resolve(&Flags::default(), env).unwrap();
    assert_eq!(
        from_env.store,
        StoreSpec::Redis("redis://127.0.0.1:2".into())
    );
    assert_eq!(from_env.policies[0].name(), "api");

    let flags = Flags {
        config: None,
        store: Some("memory".into()),
        ..Flags::default()
    };
    assert_eq!(
        Config::resolve(&flags, env).unwrap().store,
        StoreSpec::Memory
    );

    let file_only = Config::resolve(&Flags::default(), |n| {
        (n == CONFIG_ENV).then(|| path_text.clone())
    })
    .unwrap();
    assert_eq!(
        file_only.store,
        StoreSpec::Redis("redis://127.0.0.1:1".into())
    );

    let bad = Config::resolve(&Flags::default(), |n| {
        (n == STORE_ENV).then(|| "postgres://x".to_owned())
    });
    let message = bad.unwrap_err().to_string();
    assert!(
        message.starts_with("environment variable SLUICE_STORE: must be memory"),
        "{message}"
    );
}

#[test]
fn no_configuration_at_all_runs_the_default_policy_in_memory() {
    let config = Config::resolve(&Flags::default(), |_| None).unwrap();
    assert_eq!(config.store, StoreSpec::Memory);
    let [policy] = &config.policies[..] else {
        panic!("{config:?}")
    };
    let q = policy.quota();
    assert_eq!(policy.name(), "default");
    assert_eq!(
        (q.algorithm(), q.limit(), q.period(), q.burst()),
        (Algorithm::TokenBucket, 10, Duration::from_secs(60), 10)
    );
}

#[test]
fn an_unreadable_file_is_named() {
    let flags = Flags {
        config: Some("/nonexistent/sluice.yaml".into()),
        store: None,
        ..Flags::default()
    };
    let message = Config::resolve(&flags, |_| None).unwrap_err().to_string();
    assert_eq!(
        message,
        "cannot read /nonexistent/sluice.yaml: no such file"
    );
}

/// Issue 14: a missing `--envoy-config` (or `SLUICE_ENVOY_CONFIG`) is
/// named as missing, after the flag that named it.
#[test]
fn i14_a_missing_envoy_config_from_a_flag_is_named_as_missing() {
    let flags = Flags {
        envoy_config: Some("/nonexistent/rl.yaml".into()),
        ..Flags::default()
    };
    let message = Config::resolve(&flags, |_| None).unwrap_err().to_string();
    assert_eq!(
        message,
        "--envoy-config: cannot read /nonexistent/rl.yaml: no such file"
    );
}

#[test]
fn an_empty_file_lacks_policies() {
    assert_eq!(
        errors(""),
        ["sluice.yaml:1: policies: missing field; at least one policy is required"]
    );
    assert_eq!(
        errors("# nothing\n"),
        ["sluice.yaml:1: policies: missing field; at least one policy is required"]
    );
}

#[test]
fn a_policy_may_hold_several_limits() {
    let text = "\
policies:
  api:
    shadow: true
    limits:
      - {limit: 10, period: 1s}
      - {limit: 1000, period: 1h, algorithm: fixed_window}
  login:
    limit: 5
    period: 15m
";
    let config = parse(text, "sluice.yaml").unwrap();
    let [api, login] = &config.policies[..] else {
        panic!("{config:?}")
    };
    assert_eq!(api.name(), "api");
    assert!(api.shadow());
    let [second, hour] = api.limits() else {
        panic!("{api:?}")
    };
    let (s, h) = (second.quota(), hour.quota());
    assert_eq!(
        (s.algorithm(), s.limit(), s.period(), s.burst()),
        (Algorithm::TokenBucket, 10, Duration::from_secs(1), 10)
    );
    assert_eq!(
        (h.algorithm(), h.limit(), h.period()),
        (Algorithm::FixedWindow, 1000, Duration::from_secs(3600))
    );
    // The single-limit form is a policy of one limit.
    assert_eq!(login.limits().len(), 1);
    assert!(!login.shadow());
}

#[test]
fn each_limit_has_its_own_overrides_inheriting_from_it() {
    let text = "\
policies:
  api:
    limits:
      - limit: 10
        period: 1s
        burst: 20
        overrides:
          vip: {limit: 100}
      - algorithm: fixed_window
        limit: 1000
        period: 1h
        overrides:
          vip: {period: 2h}
          batch: {limit: 50}
";
    let config = parse(text, "sluice.yaml").unwrap();
    let [second, hour] = config.policies[0].limits() else {
        panic!("{config:?}")
    };
    let vip = second.quota_for("vip");
    assert_eq!(
        (vip.algorithm(), vip.limit(), vip.period(), vip.burst()),
        (Algorithm::TokenBucket, 100, Duration::from_secs(1), 20)
    );
    let vip = hour.quota_for("vip");
    assert_eq!(
        (vip.algorithm(), vip.limit(), vip.period()),
        (Algorithm::FixedWindow, 1000, Duration::from_secs(7200))
    );
    // An override of one limit leaves the other limit's quota alone.
    assert_eq!(second.quota_for("batch").limit(), 10);
    assert_eq!(hour.quota_for("batch").limit(), 50);
    assert_eq!(
        (second.overrides().count(), hour.overrides().count()),
        (1, 2)
    );
}

#[test]
fn one_limit_and_a_list_of_limits_do_not_mix() {
    let text = "\
policies:
  api:
    limit: 10
    limits:
      - {limit: 1000, period: 1h}
    overrides:
      vip: {limit: 100}
";
    assert_eq!(
        errors(text),
        [
            "sluice.yaml:3: policies.api.limit: cannot be set beside `limits`; set it in each limit of the list",
            "sluice.yaml:6: policies.api.overrides: cannot be set beside `limits`; set it in each limit of the list",
        ]
    );
}

#[test]
fn a_list_of_limits_holds_one_to_eight() {
    assert_eq!(
        errors("policies:\n  api:\n    limits: []\n"),
        ["sluice.yaml:3: policies.api.limits: at least one limit is required"]
    );
    assert_eq!(
        errors("policies:\n  api:\n    limits:\n"),
        [
            "sluice.yaml:3: policies.api.limits: must be a list of limits such as [{limit: 10, period: 1s}], got nothing"
        ]
    );
    let list = |n: usize| {
        let limits = vec!["      - {limit: 1, period: 1s}\n"; n].concat();
        format!("policies:\n  api:\n    limits:\n{limits}")
    };
    let eight = parse(&list(8), "sluice.yaml").unwrap();
    assert_eq!(eight.policies[0].limits().len(), 8);
    assert_eq!(
        errors(&list(9)),
        ["sluice.yaml:12: policies.api.limits: at most 8 limits per policy, got 9"]
    );
}

#[test]
fn errors_inside_a_limit_name_its_place_in_the_list() {
    let text = "\
policies:
  api:
    limits:
      - limit: 10
        period: 1s
      - limit: 1000
        period: 1 fortnight
        shadow: true
      - 7
      - limit: 5
        period: 1s
        overrides:
          vip: {limit: 0}
      - {period: 1m}
";
    let got = errors(text);
    let expected = [
        "sluice.yaml:8: policies.api.limits[1].shadow: unknown field; expected one of algorithm, limit, period, burst, overrides",
        "sluice.yaml:7: policies.api.limits[1].period: \"1 fortnight\" is not a duration: write a whole number followed by ms, s, m, h or d (or us), e.g. 250ms or 1h30m",
        "sluice.yaml:9: policies.api.limits[2]: must be a mapping, got \"7\"",
        "sluice.yaml:13: policies.api.limits[3].overrides.vip.limit: must be a positive integer, got 0",
        "sluice.yaml:14: policies.api.limits[4].limit: missing field",
    ];
    assert_eq!(got.len(), expected.len(), "{got:#?}");
    for (got, expected) in got.iter().zip(expected) {
        assert!(
            got.starts_with(expected),
            "{got}\n  does not start with\n{expected}"
        );
    }
}

proptest::proptest! {
    /// Whatever the file holds, loading it answers with a config or errors
    /// that name the file; it never panics.
    #[test]
    fn any_text_gets_an_answer_never_a_panic(text in "(?s).{0,200}") {
        if let Err(ConfigErrors(errors)) = parse(&text, "f.yaml") {
            proptest::prop_assert!(!errors.is_empty());
            for e in errors {
                proptest::prop_assert!(e.to_string().starts_with("f.yaml:"), "{e}");
            }
        }
    }

    /// Near-valid files (valid structure, random field values) never panic.
    #[test]
    fn any_field_values_get_an_answer(
        algorithm in "[a-z_]{0,24}",
        limit in "-?[0-9]{0,22}",
        period in "[0-9]{0,12}(us|ms|s|m|h|d|y|)",
        burst in "[0-9a-z]{0,5}",
    ) {
        let text = format!(
            "policies:\n  p:\n    algorithm: {algorithm}\n    limit: {limit}\n    period: {period}\n    burst: {burst}\n"
        );
        let _ = parse(&text, "f.yaml");
    }
}

#[test]
fn what_to_do_when_the_store_fails_is_set_at_the_top_and_per_policy() {
    let text = "\
on_store_error: local
local_share: 0.25
deny_cache: true
policies:
  api: {limit: 100, period: 1s}
  login: {limit: 5, period: 1m, on_store_error: deny, deny_cache: false}
  search: {limit: 10, period: 1s, on_store_error: allow, local_share: 1}
";
    let file = parse(text, "sluice.yaml").unwrap();
    let by_name = |name: &str| file.policies.iter().find(|p| p.name() == name).unwrap();
    let api = by_name("api");
    assert_eq!(api.on_store_error(), sluice::OnStoreError::Local);
    assert_eq!(api.local_share(), sluice::LocalShare::new(0.25).unwrap());
    assert!(api.deny_cache());
    let login = by_name("login");
    assert_eq!(login.on_store_error(), sluice::OnStoreError::Deny);
    assert!(!login.deny_cache());
    assert_eq!(login.local_share(), sluice::LocalShare::new(0.25).unwrap());
    let search = by_name("search");
    assert_eq!(search.on_store_error(), sluice::OnStoreError::Allow);
    assert_eq!(search.local_share(), sluice::LocalShare::FULL);
    // Without any of them: deny, the whole limit, no cache.
    let plain = parse("policies:\n  api: {limit: 1, period: 1s}\n", "f").unwrap();
    assert_eq!(
        plain.policies[0].on_store_error(),
        sluice::OnStoreError::Deny
    );
    assert!(!plain.policies[0].deny_cache());
}

#[test]
fn bad_store_failure_settings_name_their_line_and_field() {
    let got = errors(
        "on_store_error: open\nlocal_share: 0\npolicies:\n  api:\n    limit: 1\n    period: 1s\n    local_share: 1.5\n    deny_cache: yes\n",
    );
    assert_eq!(
        got,
        [
            "sluice.yaml:1: on_store_error: unknown on_store_error \"open\"; expected allow, deny or local",
            "sluice.yaml:2: local_share: must be above 0 and at most 1, got 0",
            "sluice.yaml:7: policies.api.local_share: must be above 0 and at most 1, got 1.5",
            "sluice.yaml:8: policies.api.deny_cache: must be true or false, got yes",
        ]
    );
}

#[test]
fn i12_server_settings_are_read_and_checked() {
    let text = "\
server:
  header_timeout: 2s
  body_timeout: 3s
  send_timeout: 4s
  max_header_bytes: 8192
  max_headers: 50
  max_connections: 7
  drain_timeout: 500ms
policies:
  api: {limit: 1, period: 1s}
";
    let server = parse(text, "sluice.yaml").unwrap().server;
    assert_eq!(server.header_timeout, Duration::from_secs(2));
    assert_eq!(server.body_timeout, Duration::from_secs(3));
    assert_eq!(server.send_timeout, Duration::from_secs(4));
    assert_eq!(server.max_header_bytes, 8192);
    assert_eq!(server.max_headers, 50);
    assert_eq!(server.max_connections, 7);
    assert_eq!(server.drain_timeout, Duration::from_millis(500));
    let defaults = parse("policies:\n  api: {limit: 1, period: 1s}\n", "sluice.yaml")
        .unwrap()
        .server;
    assert_eq!(defaults, ServerSettings::default());
    let text = "\
server:
  drain_timeout: 0s
  max_connections: 0
  header_timeout: soon
  backlog: 5
policies:
  api: {limit: 1, period: 1s}
";
    assert_eq!(
        errors(text),
        [
            "sluice.yaml:5: server.backlog: unknown field; expected one of header_timeout, body_timeout, send_timeout, max_header_bytes, max_headers, max_connections, drain_timeout",
            "sluice.yaml:4: server.header_timeout: \"soon\" is not a duration: write a whole number followed by ms, s, m, h or d (or us), e.g. 250ms or 1h30m",
            "sluice.yaml:2: server.drain_timeout: must be above zero, got 0s",
            "sluice.yaml:3: server.max_connections: must be a positive integer, got 0",
        ]
    );
}

#[test]
fn i12_the_memory_bound_is_read_and_checked() {
    let text = "memory:\n  max_keys: 5000\npolicies:\n  api: {limit: 1, period: 1s}\n";
    assert_eq!(
        parse(text, "sluice.yaml").unwrap().memory.max_keys.get(),
        5000
    );
    let defaults = parse("policies:\n  api: {limit: 1, period: 1s}\n", "sluice.yaml").unwrap();
    assert_eq!(defaults.memory, MemorySettings::default());
    assert_eq!(MemorySettings::default().max_keys.get(), 1_000_000);
    let text = "\
memory:
  max_keys: 0
  max_bytes: 1000
policies:
  api: {limit: 1, period: 1s}
";
    assert_eq!(
        errors(text),
        [
            "sluice.yaml:3: memory.max_bytes: unknown field; expected one of max_keys",
            "sluice.yaml:2: memory.max_keys: must be a positive integer, got 0",
        ]
    );
}

#[test]
fn i13_forward_auth_and_trusted_proxies_are_read_and_checked() {
    let text = "\
trusted_proxies: [10.0.0.0/8, 127.0.0.1, '::1']
forward_auth:
  policy: api
  deny_status: 403
  client_header: x_real_ip
policies:
  api: {limit: 1, period: 1s}
";
    let fa = parse(text, "sluice.yaml").unwrap().forward_auth;
    assert_eq!(fa.policy, "api");
    assert_eq!(fa.deny_status.as_u16(), 403);
    assert_eq!(fa.client_header, sluice_tower::ProxyHeader::XRealIp);
    let nets: Vec<String> = fa.trusted_proxies.iter().map(ToString::to_string).collect();
    assert_eq!(nets, ["10.0.0.0/8", "127.0.0.1/32", "::1/128"]);
    let defaults = parse("policies:\n  api: {limit: 1, period: 1s}\n", "sluice.yaml").unwrap();
    assert_eq!(defaults.forward_auth, ForwardAuthSettings::default());
    let text = "\
trusted_proxies: [10.0.0.0/33, nowhere]
forward_auth:
  deny_status: 200
  client_header: x-forwarded-for
  policy: missing
policies:
  api: {limit: 1, period: 1s}
";
    assert_eq!(
        errors(text),
        [
            "sluice.yaml:3: forward_auth.deny_status: must be 429 or 403, got \"200\"",
            "sluice.yaml:4: forward_auth.client_header: must be one of x_forwarded_for, forwarded, x_real_ip, got \"x-forwarded-for\"",
            "sluice.yaml:1: trusted_proxies[0]: must be a network such as 10.0.0.0/8 or an address, got \"10.0.0.0/33\"",
            "sluice.yaml:1: trusted_proxies[1]: must be a network such as 10.0.0.0/8 or an address, got \"nowhere\"",
            "sluice.yaml:5: forward_auth.policy: no such policy; the policies are: api",
        ]
    );
}

#[test]
fn i13_forward_auth_routes_choose_policies_by_path_and_method() {
    let text = "\
forward_auth:
  policy: api
  routes:
    - {path: /login, methods: [post], policy: login}
    - {path: /files/*/raw, policy: downloads}
policies:
  api: {limit: 1, period: 1s}
  login: {limit: 1, period: 1s}
  downloads: {limit: 1, period: 1s}
";
    let fa = parse(text, "sluice.yaml").unwrap().forward_auth;
    assert_eq!(fa.routes.len(), 2);
    assert_eq!(fa.routes[0].methods, ["POST"]);
    for (uri, method, policy) in [
        (Some("/login"), Some("POST"), "login"),
        (Some("/login?next=/home"), Some("post"), "login"),
        (Some("/login"), Some("GET"), "api"),
        (Some("/login"), None, "api"),
        (Some("/files/a/b/raw"), Some("GET"), "downloads"),
        (Some("/files/a/raw/more"), Some("GET"), "api"),
        (None, Some("POST"), "api"),
    ] {
        assert_eq!(fa.policy_for(uri, method), policy, "{uri:?} {method:?}");
    }
    let text = "\
forward_auth:
  routes:
    - {path: login, policy: api}
    - {methods: [GET, 'P O'], policy: nope}
    - {path: /x, policy: api, limit: 3}
policies:
  api: {limit: 1, period: 1s}
";
    assert_eq!(
        errors(text),
        [
            "sluice.yaml:3: forward_auth.routes[0].path: must start with /, got \"login\"",
            "sluice.yaml:4: forward_auth.routes[1].path: missing; a path such as /api/*",
            "sluice.yaml:4: forward_auth.routes[1].methods[1]: must be a method such as GET, got \"P O\"",
            "sluice.yaml:5: forward_auth.routes[2].limit: unknown field; expected one of path, methods, policy",
            "sluice.yaml:4: forward_auth.routes[1].policy: no such policy; the policies are: api",
        ]
    );
}

/// A file for Envoy's rate limit service alone needs no policies: the
/// built-in `default` serves `/v1/check`; without `envoy_config` a file
/// must still name at least one.
#[test]
fn i13_an_envoy_only_file_runs_the_default_policy() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rl.yaml");
    std::fs::write(&rules, "domain: rl\ndescriptors: [{key: k}]\n").unwrap();
    let text = format!("envoy_config: {}\n", rules.display());
    let file = parse(&text, "sluice.yaml").unwrap();
    let names: Vec<&str> = file.policies.iter().map(|p| p.name()).collect();
    assert_eq!(names, ["default"]);
    assert_eq!(
        errors("store: memory\n"),
        ["sluice.yaml:1: policies: missing field; at least one policy is required"]
    );
}

/// Issue 12 (the config fuzz target's first find, in its corpus as
/// `found-cr-line-ends`): YAML breaks lines at a lone `\r` too (old Mac
/// line ends), so an error's line counts them, as does `\r\n` once.
#[test]
fn issue_12_errors_count_every_yaml_line_break() {
    for (text, line) in [
        ("policies:\r  api:\r    limit: x\r    period: 1s\r", 3),
        (
            "policies:\r\n  api:\r\n    limit: x\r\n    period: 1s\r\n",
            3,
        ),
        ("policies:\n  api:\r\n\r    limit: x\r    period: 1s\n", 4),
    ] {
        let got = errors(text);
        assert_eq!(
            got,
            [format!(
                "sluice.yaml:{line}: policies.api.limit: must be a positive integer, got x"
            )],
            "{text:?}"
        );
    }
}

#[test]
fn i13_grpc_settings_are_read_and_checked() {
    let text = "\
grpc:
  listen: 127.0.0.1:8081
  max_connections: 3
  max_concurrent_streams: 4
  keepalive_interval: 5s
  keepalive_timeout: 6s
  request_timeout: 7s
  max_message_bytes: 1000
policies:
  api: {limit: 1, period: 1s}
";
    let grpc = parse(text, "sluice.yaml").unwrap().grpc;
    assert_eq!(grpc.listen.as_deref(), Some("127.0.0.1:8081"));
    assert_eq!((grpc.max_connections, grpc.max_concurrent_streams), (3, 4));
    assert_eq!(grpc.keepalive_interval, Duration::from_secs(5));
    assert_eq!(grpc.keepalive_timeout, Duration::from_secs(6));
    assert_eq!(grpc.request_timeout, Duration::from_secs(7));
    assert_eq!(grpc.max_message_bytes, 1000);
    let defaults = parse("policies:\n  api: {limit: 1, period: 1s}\n", "sluice.yaml").unwrap();
    assert_eq!(defaults.grpc, GrpcSettings::default());
    assert_eq!(defaults.grpc.listen, None, "gRPC is off unless asked for");
    let text = "\
grpc:
  listen: 8081x
  request_timeout: 0s
  max_message_bytes: -1
  port: 5
policies:
  api: {limit: 1, period: 1s}
";
    assert_eq!(
        errors(text),
        [
            "sluice.yaml:5: grpc.port: unknown field; expected one of listen, max_connections, max_concurrent_streams, keepalive_interval, keepalive_timeout, request_timeout, max_message_bytes",
            "sluice.yaml:2: grpc.listen: must be an address to listen on such as 127.0.0.1:8081, :8081 (every interface) or 8081 (127.0.0.1 only), got \"8081x\"",
            "sluice.yaml:3: grpc.request_timeout: must be above zero, got 0s",
            "sluice.yaml:4: grpc.max_message_bytes: must be a positive integer, got -1",
        ]
    );
}

#[test]
fn i13_the_grpc_address_comes_from_the_flag_then_the_environment_then_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sluice.yaml");
    let text = "grpc:\n  listen: localhost:1\npolicies:\n  api: {limit: 1, period: 1s}\n";
    std::fs::write(&path, text).unwrap();
    let file = Flags {
        config: Some(path),
        ..Flags::default()
    };
    let env = |name: &str| (name == GRPC_LISTEN_ENV).then(|| "[::1]:2".to_owned());
    let listen = |flags: &Flags, env: &dyn Fn(&str) -> Option<String>| {
        Config::resolve(flags, env).map(|c| c.grpc.listen)
    };
    assert_eq!(listen(&file, &|_| None), Ok(Some("localhost:1".into())));
    assert_eq!(listen(&file, &env), Ok(Some("[::1]:2".into())));
    let flag = Flags {
        grpc_listen: Some("127.0.0.1:3".into()),
        ..file.clone()
    };
    assert_eq!(listen(&flag, &env), Ok(Some("127.0.0.1:3".into())));
    let bad = Flags {
        grpc_listen: Some("127.0.0.1:99999".into()),
        ..Flags::default()
    };
    assert_eq!(
        listen(&bad, &|_| None).unwrap_err().to_string(),
        "--grpc-listen: must be an address to listen on such as 127.0.0.1:8081, :8081 (every interface) or 8081 (127.0.0.1 only), got \"127.0.0.1:99999\""
    );
    let bad_env = |name: &str| (name == GRPC_LISTEN_ENV).then(|| "[::1:2".to_owned());
    assert!(
        (listen(&Flags::default(), &bad_env).unwrap_err().to_string())
            .starts_with("environment variable SLUICE_GRPC_LISTEN: must be an address"),
    );
}

#[test]
fn issue_14_a_listen_address_may_be_a_bare_port_or_start_with_a_colon() {
    let port = |text: &str| {
        let flags = Flags {
            grpc_listen: Some(text.to_owned()),
            ..Flags::default()
        };
        Config::resolve(&flags, |_| None).map(|c| c.grpc.listen)
    };
    assert_eq!(port(":8081"), Ok(Some("0.0.0.0:8081".into())));
    assert_eq!(port("8081"), Ok(Some("127.0.0.1:8081".into())));
    assert_eq!(port("0"), Ok(Some("127.0.0.1:0".into())));
    for bad in [
        "", ":", "+8081", ":+8081", "65536", ":65536", "8081:", "a b:1",
    ] {
        assert!(port(bad).is_err(), "{bad:?} was accepted");
    }
    let file = parse(
        "grpc:\n  listen: \":9\"\npolicies:\n  api: {limit: 1, period: 1s}\n",
        "sluice.yaml",
    );
    assert_eq!(file.unwrap().grpc.listen.as_deref(), Some("0.0.0.0:9"));
}

/// Issue 14: one duration grammar. `1M` is neither minutes nor months,
/// weeks, years and words are refused with what was given and what is
/// accepted, units combine largest first, and a zero period says `0s`.
#[test]
fn i14_durations_have_one_grammar() {
    let period = |p: &str| format!("policies:\n  api:\n    limit: 1\n    period: {p}\n");
    let config = parse(&period("1h30m"), "sluice.yaml").unwrap();
    assert_eq!(
        config.policies[0].quota().period(),
        Duration::from_secs(5400)
    );
    let expected = "is not a duration: write a whole number followed by ms, s, m, h or d (or us), e.g. 250ms or 1h30m";
    for text in ["1M", "1w", "1y", "2 days", "10 minutes", "1.5s", "60"] {
        let got = errors(&period(text));
        let start = format!("sluice.yaml:4: policies.api.period: {text:?} {expected}");
        assert!(got.len() == 1 && got[0].starts_with(&start), "{got:?}");
    }
    assert!(
        errors(&period("1M"))[0].ends_with(
            "; M is not a unit: m is minutes, and months have no fixed length (write 30d)"
        )
    );
    assert_eq!(
        errors(&period("0s")),
        ["sluice.yaml:4: policies.api.period: must be whole microseconds from 1ms to 366d, got 0s"]
    );
    assert_eq!(
        errors("redis:\n  timeout: 1M\npolicies:\n  api: {limit: 1, period: 1s}\n"),
        [format!(
            "sluice.yaml:2: redis.timeout: \"1M\" {expected}; M is not a unit: m is minutes, and months have no fixed length (write 30d)"
        )]
    );
}
