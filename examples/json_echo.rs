//! A bare axum JSON echo: the HTTP ceiling of the machine that `bench/run`
//! measures `sluice serve` against.
//!
//! `POST /v1/check` takes a body shaped like Sluice's request,
//! `{"policy": "default", "key": "user-42", "cost": 1}`, parses it into a
//! struct, and answers 200 with a body of the same shape and size as
//! Sluice's decision, `{"allowed":true,"policy":"default","key":"user-42",
//! "burst":10,"remaining":9,"reset_after_ms":6000,"retry_after_ms":0}`. It
//! decides nothing and keeps no state: whatever `sluice serve` does beyond
//! this (the decision, the rate-limit headers, the metrics) is its own cost.
//! It runs on the same axum, tokio runtime and `TCP_NODELAY` as `sluice
//! serve`.
//!
//! ```text
//! cargo run --release --example json_echo
//! LISTEN=127.0.0.1:0 cargo run --release --example json_echo
//! ```
//!
//! - `LISTEN`: the address to listen on; default `127.0.0.1:3001`. Port 0
//!   picks a free port; the line printed at startup (`json-echo listening on
//!   http://ADDR`) says which.

use anyhow::Context;
use axum::body::Bytes;
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::serve::ListenerExt;
use axum::{Json, Router};
use serde_json::{Value, json};
use tokio::net::TcpListener;

/// Where the echo listens unless `LISTEN` says otherwise.
const DEFAULT_LISTEN: &str = "127.0.0.1:3001";

/// The request, as Sluice's `POST /v1/check` reads it.
struct CheckRequest {
    policy: String,
    key: String,
    cost: u64,
}

impl CheckRequest {
    /// Reads the request from a JSON body, or says what is wrong with it.
    fn parse(body: &[u8]) -> Result<Self, String> {
        let value: Value =
            serde_json::from_slice(body).map_err(|e| format!("invalid JSON body: {e}"))?;
        let text = |field: &str| {
            value
                .get(field)
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| format!("missing \"{field}\""))
        };
        Ok(Self {
            policy: text("policy")?,
            key: text("key")?,
            cost: value.get("cost").and_then(Value::as_u64).unwrap_or(1),
        })
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("json-echo: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> anyhow::Result<()> {
    let listen = std::env::var("LISTEN").unwrap_or_else(|_| DEFAULT_LISTEN.to_owned());
    let listener = TcpListener::bind(&listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let addr = listener
        .local_addr()
        .context("cannot read the listening address")?;
    // As `sluice serve` does: send each small answer at once.
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let app = Router::new().route("/v1/check", post(check));
    println!("json-echo listening on http://{addr}");
    axum::serve(listener, app)
        .await
        .context("the server failed")
}

/// Answers a decision-shaped body for any well-formed request.
async fn check(body: Bytes) -> Response {
    match CheckRequest::parse(&body) {
        Ok(request) => Json(json!({
            "allowed": true,
            "policy": request.policy,
            "key": request.key,
            "burst": 1_000_000_000_u64,
            "remaining": 1_000_000_000_u64.saturating_sub(request.cost),
            "reset_after_ms": 1,
            "retry_after_ms": 0,
        }))
        .into_response(),
        Err(message) => (
            StatusCode::BAD_REQUEST,
            [(CONTENT_TYPE, "application/json")],
            json!({ "error": message }).to_string(),
        )
            .into_response(),
    }
}
