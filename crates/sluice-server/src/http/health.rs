//! `GET /healthz` (the process runs) and `GET /readyz` (the store answers).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::server::state::AppState;

/// Handles `GET /healthz`: 200 while the process runs.
pub async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// Handles `GET /readyz`: 200 when the store answers, 503 otherwise.
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let store = state.store_kind();
    match state.active().limiter.store().ping().await {
        Ok(()) => (
            StatusCode::OK,
            Json(json!({"status": "ready", "store": store})),
        ),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check: the store does not answer");
            let error = if e.is_transient() {
                "the store does not answer"
            } else {
                "the store gave an unexpected answer"
            };
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"status": "unavailable", "store": store, "error": error})),
            )
        }
    }
}
