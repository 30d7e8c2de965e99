//! `GET /healthz` (the process runs) and `GET /readyz` (the store answers).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::service::DecisionService;

/// Handles `GET /healthz`: 200 while the process runs.
pub async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// Handles `GET /readyz`: 200 when the store answers, 503 otherwise.
pub async fn readyz(State(service): State<DecisionService>) -> (StatusCode, Json<Value>) {
    let store = service.store_kind();
    match service.ready().await {
        Ok(()) => (
            StatusCode::OK,
            Json(json!({"status": "ready", "store": store})),
        ),
        Err(e) => {
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
