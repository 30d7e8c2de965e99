use super::matching::wildcard_match;
use super::*;

/// The configuration of the files `(name, text)`, loaded in that order.
fn load(files: &[(&str, &str)], merge: bool) -> Result<EnvoyConfig, Vec<String>> {
    let mut config = EnvoyConfig::default();
    let mut errors = Vec::new();
    for (name, text) in files {
        if let Err(e) = config.add(text, name, merge) {
            errors.extend(e.0.iter().map(ToString::to_string));
        }
    }
    if errors.is_empty() {
        Ok(config)
    } else {
        Err(errors)
    }
}

fn one(text: &str) -> EnvoyConfig {
    load(&[("ratelimit.yaml", text)], false).unwrap()
}

fn errors(text: &str) -> Vec<String> {
    load(&[("ratelimit.yaml", text)], false).unwrap_err()
}

/// What `find` answers for `entries` in `domain`: the matched descriptor's
/// full key, its requests per unit and the counter's values.
fn found(
    config: &EnvoyConfig,
    domain: &str,
    entries: &[(&str, &str)],
) -> Option<(String, u32, Vec<String>)> {
    let m = config.find(domain, entries)?;
    let values = m.counter.iter().map(|(k, v)| format!("{k}={v}")).collect();
    Some((
        m.descriptor.full_key.clone(),
        m.limit.requests_per_unit,
        values,
    ))
}

const EXAMPLE_2: &str = "\
domain: messaging
descriptors:
  - key: message_type
    value: marketing
    descriptors:
      - key: to_number
        rate_limit:
          unit: day
          requests_per_unit: 5
  - key: to_number
    rate_limit:
      unit: day
      requests_per_unit: 100
";

#[test]
fn nested_descriptors_match_level_by_level_and_only_where_the_request_ends() {
    let config = one(EXAMPLE_2);
    assert_eq!(
        found(
            &config,
            "messaging",
            &[("message_type", "marketing"), ("to_number", "2061111111")]
        ),
        Some((
            "messaging.message_type_marketing.to_number".to_owned(),
            5,
            vec![
                "message_type=marketing".to_owned(),
                "to_number=2061111111".to_owned()
            ]
        ))
    );
    assert_eq!(
        found(&config, "messaging", &[("to_number", "2061111111")]).map(|f| f.1),
        Some(100)
    );
    // The placeholder has no limit of its own; a deeper request is not met.
    assert_eq!(
        found(&config, "messaging", &[("message_type", "marketing")]),
        None
    );
    assert_eq!(
        found(&config, "messaging", &[("to_number", "1"), ("extra", "x")]),
        None
    );
    assert_eq!(found(&config, "other", &[("to_number", "1")]), None);
}

#[test]
fn a_key_value_is_met_before_the_key_alone() {
    let config = one("\
domain: edge_proxy_per_ip
descriptors:
  - key: remote_address
    rate_limit: {unit: second, requests_per_unit: 10}
  - key: remote_address
    value: 50.0.0.5
    rate_limit: {unit: second, requests_per_unit: 0}
  - key: remote_address
    value: 50.0.0.6
");
    let rpu = |ip| found(&config, "edge_proxy_per_ip", &[("remote_address", ip)]).map(|f| f.1);
    assert_eq!(rpu("50.0.0.1"), Some(10));
    assert_eq!(rpu("50.0.0.5"), Some(0));
    // A value with no limit and nothing nested lets it through.
    assert_eq!(rpu("50.0.0.6"), None);
}

#[test]
fn wildcards_match_in_the_order_written_after_the_exact_value() {
    let config = one("\
domain: w
descriptors:
  - key: path
    value: /api/*/action
    rate_limit: {unit: minute, requests_per_unit: 1}
  - key: path
    value: /api/*
    rate_limit: {unit: minute, requests_per_unit: 2}
  - key: path
    value: /api/7/action
    rate_limit: {unit: minute, requests_per_unit: 3}
  - key: path
    rate_limit: {unit: minute, requests_per_unit: 4}
  - key: route
    value: /api/*/resource/*/action
    rate_limit: {unit: minute, requests_per_unit: 5}
");
    let rpu = |k, v| found(&config, "w", &[(k, v)]).map(|f| f.1);
    assert_eq!(rpu("path", "/api/123/action"), Some(1));
    assert_eq!(rpu("path", "/api/7/action"), Some(3));
    assert_eq!(rpu("path", "/api/123/other"), Some(2));
    assert_eq!(rpu("path", "/other"), Some(4));
    assert_eq!(rpu("route", "/api/v1/resource/123/action"), Some(5));
    assert_eq!(rpu("route", "/api/v1/resource/123/other"), None);
    // Each value is its own counter unless share_threshold.
    let counter = found(&config, "w", &[("path", "/api/1/action")]).unwrap().2;
    assert_eq!(counter, ["path=/api/1/action"]);
}

#[test]
fn share_threshold_counts_every_value_a_wildcard_matches_on_one_counter() {
    let config = one("\
domain: example11
descriptors:
  - key: files
    value: files/*
    share_threshold: true
    rate_limit: {unit: hour, requests_per_unit: 10}
  - key: files_no_share
    value: files_no_share/*
    rate_limit: {unit: hour, requests_per_unit: 10}
  - key: route
    value: api/*
    share_threshold: true
    descriptors:
      - key: method
        rate_limit: {unit: minute, requests_per_unit: 60}
");
    let counter = |entries: &[(&str, &str)]| found(&config, "example11", entries).unwrap().2;
    assert_eq!(counter(&[("files", "files/a.pdf")]), ["files=files/*"]);
    assert_eq!(counter(&[("files", "files/b.csv")]), ["files=files/*"]);
    assert_eq!(
        counter(&[("files_no_share", "files_no_share/a.pdf")]),
        ["files_no_share=files_no_share/a.pdf"]
    );
    assert_eq!(
        counter(&[("route", "api/v1"), ("method", "GET")]),
        ["route=api/*", "method=GET"]
    );
}

#[test]
fn the_wildcard_match_is_envoyproxy_ratelimits() {
    for (pattern, value, matches) in [
        ("value*", "value", true),
        ("value*", "valueXYZ", true),
        ("value*", "valu", false),
        ("/api/*/action", "/api/123/action", true),
        ("/api/*/action", "/api//action", true),
        ("/api/*/action", "/api/action", false),
        ("a*b*c", "abc", true),
        ("a*b*c", "axxbyyc", true),
        ("a*b*c", "acb", false),
        ("*", "", true),
        ("ab*ba", "aba", false),
        ("exact", "exact", true),
        ("exact", "exactly", false),
    ] {
        assert_eq!(
            wildcard_match(pattern, value),
            matches,
            "{pattern} ~ {value}"
        );
    }
}

#[test]
fn every_field_of_the_format_is_read() {
    let config = one("\
domain: all
descriptors:
  - key: k
    value: v
    shadow_mode: true
    quota_mode: true
    detailed_metric: true
    value_to_metric: true
    metadata:
      team: payments
      tier: 2
      tags: [a, b]
    rate_limit:
      name: specific
      unit: SECOND
      requests_per_unit: 4294967295
      replaces:
        - name: general
  - key: ldap
    rate_limit:
      unlimited: true
");
    let level = &config.domains["all"];
    let d = &level.descriptors[0];
    assert!(d.shadow_mode && d.quota_mode && d.detailed_metric && d.value_to_metric);
    assert_eq!(
        d.metadata,
        Some(serde_json::json!({"team": "payments", "tier": 2, "tags": ["a", "b"]}))
    );
    assert_eq!(
        d.rate_limit,
        Some(RateLimit {
            requests_per_unit: u32::MAX,
            unit: Some(Unit::Second),
            unlimited: false,
            name: Some("specific".to_owned()),
            replaces: vec!["general".to_owned()],
        })
    );
    let ldap = level.descriptors[1].rate_limit.as_ref().unwrap();
    assert!(ldap.unlimited && ldap.unit.is_none());
    assert_eq!(
        Unit::ALL.map(Unit::seconds),
        [1, 60, 3600, 86400, 604800, 2592000, 31536000]
    );
}

#[test]
fn the_load_errors_are_envoyproxy_ratelimits_with_file_line_and_field() {
    assert_eq!(
        errors(
            "\
domain: d
descriptors:
  - key: ''
    rate_limit: {unit: second, requests_per_unit: 1}
  - key: a
    rate_limit: {unit: second, requests_per_unit: 1}
  - key: a
    rate_limit: {unit: minute, requests_per_unit: 2}
  - key: b
    rate_limit: {unlimited: true, unit: second}
  - key: c
    rate_limit: {unit: fortnight, requests_per_unit: 1}
  - key: e
    rate_limit:
      name: same
      unit: second
      requests_per_unit: 1
      replaces: [{name: same}, {name: ''}]
  - key: f
    value: plain
    share_threshold: true
  - key: g
    unit: second
  - key: h
    rate_limit: {unit: second, requests_per_unit: -1}
  - key: i
    rate_limit: {requests_per_unit: 1}
"
        ),
        [
            "ratelimit.yaml:3: descriptors[0].key: descriptor has an empty key",
            "ratelimit.yaml:7: descriptors[2]: duplicate descriptor composite key \"d.a\"",
            "ratelimit.yaml:10: descriptors[3].rate_limit.unit: should not be given when unlimited is true",
            "ratelimit.yaml:12: descriptors[4].rate_limit.unit: invalid rate limit unit \"fortnight\"; expected one of second, minute, hour, day, week, month, year",
            "ratelimit.yaml:18: descriptors[5].rate_limit.replaces[0].name: \"same\" is this limit's own name; a limit cannot replace itself",
            "ratelimit.yaml:18: descriptors[5].rate_limit.replaces[1].name: should not be empty",
            "ratelimit.yaml:21: descriptors[6].share_threshold: can only be used with a wildcard value (containing '*'), but the key is \"f_plain\"",
            "ratelimit.yaml:23: descriptors[7].unit: unknown field; expected one of key, value, rate_limit, descriptors, shadow_mode, quota_mode, detailed_metric, value_to_metric, share_threshold, metadata",
            "ratelimit.yaml:25: descriptors[8].rate_limit.requests_per_unit: must be a whole number from 0 to 4294967295, got -1",
            "ratelimit.yaml:27: descriptors[9].rate_limit.unit: missing field; a unit such as second or minute is required",
        ]
    );
    assert_eq!(
        errors("descriptors: []\n"),
        ["ratelimit.yaml:1: domain: missing field; a domain is required"]
    );
    assert_eq!(
        errors("domain: ''\ndescriptors: []\nextra: 1\n"),
        [
            "ratelimit.yaml:3: extra: unknown field; expected one of domain, descriptors",
            "ratelimit.yaml:1: domain: must not be empty",
        ]
    );
}

#[test]
fn a_domain_in_two_files_is_an_error_unless_merged() {
    let first = (
        "one.yaml",
        "domain: d\ndescriptors:\n  - key: a\n    rate_limit: {unit: second, requests_per_unit: 1}\n",
    );
    let second = (
        "two.yaml",
        "domain: d\ndescriptors:\n  - key: b\n    rate_limit: {unit: second, requests_per_unit: 2}\n",
    );
    assert_eq!(
        load(&[first, second], false).unwrap_err(),
        ["two.yaml:1: domain: domain \"d\" is already loaded from another file"]
    );
    let merged = load(&[first, second], true).unwrap();
    assert_eq!(found(&merged, "d", &[("a", "x")]).map(|f| f.1), Some(1));
    assert_eq!(found(&merged, "d", &[("b", "x")]).map(|f| f.1), Some(2));
    // Merged, a composite key already loaded is still a duplicate.
    assert_eq!(
        load(&[first, first], true).unwrap_err(),
        ["one.yaml:3: descriptors[0]: duplicate descriptor composite key \"d.a\""]
    );
}

#[test]
fn a_directory_loads_its_yaml_files_in_name_order() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
    write(
        "b.yaml",
        "domain: second\ndescriptors:\n  - key: k\n    rate_limit: {unit: hour, requests_per_unit: 2}\n",
    );
    write(
        "a.yml",
        "domain: first\ndescriptors:\n  - key: k\n    rate_limit: {unit: hour, requests_per_unit: 1}\n",
    );
    write("notes.txt", "not yaml: [");
    let config = EnvoyConfig::load(dir.path(), false).unwrap();
    assert_eq!(
        config.domains.keys().collect::<Vec<_>>(),
        ["first", "second"]
    );
    write("c.yaml", "domain: first\ndescriptors: []\n");
    let err = EnvoyConfig::load(dir.path(), false)
        .unwrap_err()
        .to_string();
    assert!(
        err.ends_with("c.yaml:1: domain: domain \"first\" is already loaded from another file"),
        "{err}"
    );
    let absent = dir.path().join("absent.yaml");
    let err = EnvoyConfig::load(&absent, false).unwrap_err().to_string();
    assert_eq!(
        err,
        format!("cannot read {}: no such file", absent.display())
    );
}
