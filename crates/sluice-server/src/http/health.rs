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

/// Handles `GET /readyz`: 200 when the store answers, 503 while it does
/// not or its circuit breaker is open. The body names the
/// `on_store_error` modes in force (what requests get meanwhile) and the
/// breaker's state.
pub async fn readyz(State(service): State<DecisionService>) -> (StatusCode, Json<Value>) {
    let store = service.store_kind();
    let result = service.ready().await;
    let modes = service.modes_in_force();
    let breaker = service.health().map(|h| h.breaker_state().name());
    match result {
        Ok(()) => (
            StatusCode::OK,
            Json(json!({
                "status": "ready",
                "store": store,
                "on_store_error": modes,
                "breaker": breaker,
            })),
        ),
        Err(e) => {
            let error = if matches!(e, sluice::StoreError::CircuitOpen) {
                "the store failed repeatedly; its circuit breaker is open"
            } else if e.is_transient() {
                "the store does not answer"
            } else {
                "the store gave an unexpected answer"
            };
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({
                    "status": "unavailable",
                    "store": store,
                    "error": error,
                    "on_store_error": modes,
                    "breaker": breaker,
                })),
            )
        }
    }
}
