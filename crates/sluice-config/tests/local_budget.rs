//! Issue 15: a policy's `local_budget`, read and checked.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use sluice::LocalBudget;
use sluice_config::Config;

#[test]
fn a_policy_opts_in_to_local_budgets() {
    let text = "\
policies:
  hot: {limit: 100000, period: 1s, local_budget: {max_overshoot: 0.01, instances: 3}}
  plain: {limit: 10, period: 1s}
";
    let config = Config::from_str(text, "sluice.yaml").unwrap();
    let budget = config.policies[0].local_budget().unwrap();
    assert_eq!(budget, LocalBudget::new(0.01, 3).unwrap());
    assert_eq!(budget.slice(config.policies[0].quota()), Some(333));
    assert_eq!(config.policies[1].local_budget(), None);
}

#[test]
fn a_bad_local_budget_names_its_line_and_field() {
    let text = "\
policies:
  a: {limit: 1, period: 1s, local_budget: {max_overshoot: 0, instances: 3}}
  b: {limit: 1, period: 1s, local_budget: {max_overshoot: 0.1}}
  c: {limit: 1, period: 1s, local_budget: {max_overshoot: 0.1, instances: 0, slice: 4}}
";
    let errors = Config::from_str(text, "sluice.yaml")
        .unwrap_err()
        .to_string();
    assert_eq!(
        errors.lines().collect::<Vec<_>>(),
        [
            "sluice.yaml:2: policies.a.local_budget.max_overshoot: must be above 0 and at most 1, got 0",
            "sluice.yaml:3: policies.b.local_budget.instances: missing field",
            "sluice.yaml:4: policies.c.local_budget.slice: unknown field; expected one of max_overshoot, instances",
            "sluice.yaml:4: policies.c.local_budget.instances: must be a positive integer, got 0",
        ]
    );
}
