//! Liveness, readiness and metrics over HTTP: `/healthz` answers while
//! the worker's loop turns, `/readyz` once its StepRun watch has listed
//! everything and until it drains, `/metrics` in Prometheus' text format.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;

/// What the endpoints report.
#[derive(Debug, Clone)]
pub struct Health {
    /// Synced and not draining.
    pub ready: Arc<AtomicBool>,
    /// When the worker's loop last turned (seconds since the epoch).
    pub last_tick: Arc<AtomicU64>,
    /// A loop that has not turned for this long is not alive.
    pub stall: Duration,
    /// The metrics.
    pub metrics: Arc<Metrics>,
}

impl Health {
    /// Notes that the loop turned.
    pub fn tick(&self) {
        self.last_tick.store(epoch_seconds(), Ordering::Relaxed);
    }
}

fn epoch_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

async fn healthz(State(h): State<Health>) -> impl IntoResponse {
    let idle = epoch_seconds().saturating_sub(h.last_tick.load(Ordering::Relaxed));
    if idle > h.stall.as_secs() {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the worker's loop has not turned for {idle}s\n"),
        )
    } else {
        (StatusCode::OK, "ok\n".to_string())
    }
}

async fn readyz(State(h): State<Health>) -> impl IntoResponse {
    if h.ready.load(Ordering::Relaxed) {
        (StatusCode::OK, "ready\n")
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: listing StepRuns, or draining\n",
        )
    }
}

async fn metrics(State(h): State<Health>) -> impl IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        h.metrics.encode(),
    )
}

/// Serves the endpoints on `listener` until `shutdown`.
pub async fn serve(listener: tokio::net::TcpListener, health: Health, shutdown: CancellationToken) {
    let app = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(health);
    let result = axum::serve(listener, app)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await;
    if let Err(e) = result {
        tracing::error!(error = %e, "the health and metrics server stopped");
    }
}
