//! Liveness, readiness and metrics, open without a key.

use actix_web::{HttpResponse, get, web};
use diesel::RunQueryDsl;

use crate::engine::Engine;
use crate::metrics::METRICS;

/// The body of the health routes.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct Health {
    /// `ok`, or `unavailable` when the database cannot be reached.
    pub status: String,
}

/// Reports that the process is alive.
#[utoipa::path(tag = "health", responses((status = 200, description = "Success", body = Health)))]
#[get("/healthz")]
pub async fn check_health() -> HttpResponse {
    HttpResponse::Ok().json(Health {
        status: "ok".into(),
    })
}

/// Reports whether the database responds; 503 while it does not.
#[utoipa::path(
    tag = "health",
    responses((status = 200, description = "Success", body = Health), (status = 503, description = "The database is unavailable; retry shortly", body = Health))
)]
#[get("/readyz")]
pub async fn check_ready(engine: web::Data<Engine>) -> HttpResponse {
    match engine
        .db(|connection| diesel::sql_query("SELECT 1").execute(connection))
        .await
    {
        Ok(_) => HttpResponse::Ok().json(Health {
            status: "ok".into(),
        }),
        Err(error) => {
            log::warn!("readiness check failed: {error}");
            HttpResponse::ServiceUnavailable().json(Health {
                status: "unavailable".into(),
            })
        }
    }
}

/// Prometheus metrics in the text format.
#[utoipa::path(tag = "health", responses((status = 200, description = "Prometheus text format", body = String)))]
#[get("/metrics")]
pub async fn get_metrics(engine: web::Data<Engine>) -> HttpResponse {
    METRICS.local_workers.set(engine.manager().len() as i64);
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(METRICS.render())
}
