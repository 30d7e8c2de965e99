//! Prints what a tool that calls Sluice's Redis library directly needs,
//! from the library itself (`sluice::store::redis::library`), so that the
//! tool copies none of its calling protocol. `bench/lib/sluice_lua.sh`
//! drives `bench/run`'s Lua measurements with it.
//!
//! ```text
//! cargo run -q -p sluice --example redis_library -- library
//!     the library as FUNCTION LOAD takes it (what RedisStore loads)
//! cargo run -q -p sluice --example redis_library -- bench-library
//!     the same library named sluice_bench, with one more function,
//!     sluice_bench, that takes the checks' numbers as text (see below)
//! cargo run -q -p sluice --example redis_library -- algorithms
//!     one line per algorithm: its name and its code
//! cargo run -q -p sluice --example redis_library -- decision ALGORITHM LIMIT PERIOD_US BURST COST KEY
//!     the command of one decision on the bench library, one argument per
//!     line (the time is empty: Redis TIME); BURST is `-` or the limit for
//!     the window algorithms
//! ```
//!
//! Why a text form: the library takes each check as packed doubles, whose
//! NUL bytes no command-line argument (redis-benchmark's, redis-cli's) can
//! carry. The bench library's `sluice_bench` function packs each argument
//! of comma-separated numbers once, keeps it (later calls pay one table
//! lookup), and calls the library's own `run`: every call then does what
//! the store's own `FCALL` does.

use std::process::ExitCode;
use std::time::Duration;

use sluice::store::redis::library::{self, Argument, Call, Mode};
use sluice::{Algorithm, Quota};

/// The name of the bench library and of its text entry point.
const BENCH_NAME: &str = "sluice_bench";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(text) => {
            println!("{text}");
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("redis_library: {message}");
            ExitCode::from(2)
        }
    }
}

fn run(args: &[String]) -> Result<String, String> {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["library"] => Ok(library::function_library().trim_end().to_owned()),
        ["bench-library"] => Ok(bench_library()),
        ["algorithms"] => Ok(Algorithm::ALL
            .iter()
            .map(|&a| format!("{a} {}", library::code(a)))
            .collect::<Vec<_>>()
            .join("\n")),
        ["decision", algorithm, limit, period_us, burst, cost, key] => {
            decision(algorithm, limit, period_us, burst, cost, key)
        }
        _ => Err("usage: library | bench-library | algorithms | \
                  decision ALGORITHM LIMIT PERIOD_US BURST COST KEY"
            .to_owned()),
    }
}

/// The library named [`BENCH_NAME`], with the text entry point.
fn bench_library() -> String {
    // Where the checks are among the arguments after the keys (1-based,
    // as Lua counts): one call's groups are (count, checks) pairs.
    let quota = Quota::new(Algorithm::TokenBucket, 1, Duration::from_secs(1), None);
    let first = quota.ok().and_then(|q| {
        Call::one(Mode::Decide, None, &q, 1)
            .arguments()
            .iter()
            .position(|a| matches!(a, Argument::Checks(_)))
    });
    let first = first.map_or(4, |i| i + 1);
    format!(
        r#"#!lua name={BENCH_NAME}
{source}
local packed_of = {{}}
local function {BENCH_NAME}(keys, argv)
  for a = {first}, #argv, 2 do
    local text = argv[a]
    local packed = packed_of[text]
    if not packed then
      local parts = {{}}
      for x in string.gmatch(text, '[^,]+') do
        parts[#parts + 1] = struct.pack('<d', tonumber(x))
      end
      packed = table.concat(parts)
      packed_of[text] = packed
    end
    argv[a] = packed
  end
  return run(keys, argv)
end
redis.register_function('{BENCH_NAME}', {BENCH_NAME})"#,
        source = library::SOURCE.trim_end(),
    )
}

/// `FCALL sluice_bench 1 KEY` and the arguments of one decision, one per line.
fn decision(
    algorithm: &str,
    limit: &str,
    period_us: &str,
    burst: &str,
    cost: &str,
    key: &str,
) -> Result<String, String> {
    let algorithm: Algorithm = algorithm.parse().map_err(|e| format!("{e}"))?;
    let number = |name: &str, text: &str| {
        text.parse::<u64>()
            .map_err(|_| format!("{name} must be a whole number, got {text:?}"))
    };
    let limit = number("LIMIT", limit)?;
    let period = Duration::from_micros(number("PERIOD_US", period_us)?);
    let cost = number("COST", cost)?;
    let burst = match burst {
        "-" => None,
        text if !algorithm.has_burst() && number("BURST", text)? == limit => None,
        text => Some(number("BURST", text)?),
    };
    let quota = Quota::new(algorithm, limit, period, burst).map_err(|e| format!("{e}"))?;
    if key.contains('\n') {
        return Err("KEY must not hold a newline (one argument per line)".to_owned());
    }
    let mut lines = vec![
        "FCALL".to_owned(),
        BENCH_NAME.to_owned(),
        "1".to_owned(),
        key.to_owned(),
    ];
    let call = Call::one(Mode::Decide, None, &quota, cost);
    lines.extend(call.arguments().iter().map(Argument::to_text));
    Ok(lines.join("\n"))
}
