//! Builds the application for `main` and for the tests.

use std::net::TcpListener;

use actix_web::dev::Server;
use actix_web::middleware::{Logger, from_fn};
use actix_web::{App, HttpServer, web};
use tokio_util::sync::CancellationToken;
use utoipa::OpenApi;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa_actix_web::service_config::ServiceConfig;
use utoipa_actix_web::{AppExt, scope};
use utoipa_swagger_ui::SwaggerUi;

use crate::auth::{self, ApiKeys};
use crate::config::Config;
use crate::db::{self, DbPool};
use crate::embedded::EmbeddedPostgres;
use crate::engine::{Engine, EngineSettings};
use crate::errors::ApiError;
use crate::i18n::{self, DefaultLang, Lang};
use crate::routes::{batches, clear, health, items};

/// The parts of the OpenAPI document that no handler carries.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "batch",
        description = "Runs LLM analysis over stored short texts in batches, and gives operators \
                       a preview and a forced clear of every running batch."
    ),
    modifiers(&SecuritySchemes),
    tags(
        (name = "clear", description = "Preview and force-clear running batches, and reset"),
        (name = "batches", description = "Start, watch, list and cancel batches"),
        (name = "items", description = "Store and list the texts batches analyse"),
        (name = "health", description = "Liveness, readiness and metrics; no key needed"),
    )
)]
struct ApiDoc;

struct SecuritySchemes;

impl utoipa::Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "x-api-key",
                "An API key from BATCH_API_KEYS; the demo key unicatcher-api-key-demo when none is configured",
            ))),
        );
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// Registers every route, collecting the OpenAPI paths on the way.
fn configure(config: &mut ServiceConfig) {
    config
        .service(health::check_health)
        .service(health::check_ready)
        .service(health::get_metrics)
        .service(
            scope("/api/external/ai-batch")
                .wrap(from_fn(auth::require_api_key))
                .service(clear::preview_clear)
                .service(clear::clear_batches)
                .service(clear::reset_batches)
                .service(batches::start_batch)
                .service(batches::get_start_status)
                .service(batches::continue_batch)
                .service(batches::get_global_status)
                .service(batches::get_batch_status)
                .service(batches::list_batches)
                .service(batches::cancel_batch)
                .service(batches::list_batch_results),
        )
        .service(
            scope("/api/external/items")
                .wrap(from_fn(auth::require_api_key))
                .service(items::upsert_items)
                .service(items::list_items),
        );
}

/// The OpenAPI document of the whole API, as served at `/api-docs/openapi.json`.
pub fn openapi() -> utoipa::openapi::OpenApi {
    App::new()
        .into_utoipa_app()
        .openapi(ApiDoc::openapi())
        .configure(configure)
        .split_for_parts()
        .1
}

/// A bound, not yet running server and what it needs until it stops.
pub struct Application {
    server: Server,
    port: u16,
    engine: Engine,
    shutdown: CancellationToken,
    embedded: Option<EmbeddedPostgres>,
}

impl Application {
    /// Connects to the database (starting the embedded cluster when
    /// `DATABASE_URL` is unset), applies migrations and binds the listener.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        config.validate().map_err(anyhow::Error::msg)?;
        let (url, embedded) = match &config.database_url {
            Some(url) => (url.clone(), None),
            None => {
                let root = config.data_dir.clone();
                let cluster =
                    tokio::task::spawn_blocking(move || EmbeddedPostgres::start(&root)).await??;
                (cluster.database_url(), Some(cluster))
            }
        };
        let pool = db::build_pool(&url, config.pool_size, config.db_timeout())?;
        migrate(&pool, &url).await?;

        let engine = Engine::new(
            pool.clone(),
            EngineSettings {
                heartbeat: config.heartbeat(),
                lease: config.lease(),
                provider_timeout: std::time::Duration::from_secs(
                    config.provider_timeout_secs.max(1),
                ),
                provider_retries: config.provider_retries,
                provider_retry_delay: std::time::Duration::from_millis(
                    config.provider_retry_delay_ms,
                ),
            },
        );
        let listener = TcpListener::bind(config.bind)?;
        let port = listener.local_addr()?.port();
        log::info!(
            "listening on http://{}:{port} (instance {}, pool size {}, database {})",
            config.bind.ip(),
            engine.instance_id(),
            config.pool_size,
            db::redact_url(&url)
        );
        let server = serve(listener, engine.clone(), &config)?;
        Ok(Self {
            server,
            port,
            engine,
            shutdown: CancellationToken::new(),
            embedded,
        })
    }

    /// The port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Runs until SIGINT or SIGTERM, then stops workers, the server and the
    /// embedded database, in that order.
    pub async fn run_until_stopped(mut self) -> anyhow::Result<()> {
        let background = tokio::spawn(self.engine.clone().run_background(self.shutdown.clone()));
        // actix-web handles SIGINT and SIGTERM: it stops accepting, lets
        // requests finish, and then this future returns.
        let result = self.server.await;
        log::info!("HTTP server stopped; stopping batch workers");
        self.engine.shutdown().await;
        self.shutdown.cancel();
        let _ = background.await;
        if let Some(mut cluster) = self.embedded.take() {
            tokio::task::spawn_blocking(move || cluster.stop()).await?;
        }
        result.map_err(Into::into)
    }

    /// Runs in the background for tests; the returned token stops the
    /// instance's background loop, and the handle stops the server.
    pub fn spawn(self) -> (actix_web::dev::ServerHandle, CancellationToken) {
        let handle = self.server.handle();
        let shutdown = self.shutdown.clone();
        tokio::spawn(self.engine.clone().run_background(self.shutdown.clone()));
        let engine = self.engine.clone();
        tokio::spawn(async move {
            let _ = self.server.await;
            engine.shutdown().await;
        });
        (handle, shutdown)
    }
}

async fn migrate(pool: &DbPool, url: &str) -> anyhow::Result<()> {
    let pool = pool.clone();
    let redacted = db::redact_url(url);
    let applied = tokio::task::spawn_blocking(move || {
        let mut connection = pool.get().map_err(|error| {
            anyhow::anyhow!("cannot connect to the database {redacted}: {error}")
        })?;
        db::run_migrations(&mut connection).map_err(anyhow::Error::msg)
    })
    .await??;
    if applied.is_empty() {
        log::info!("database schema is up to date");
    } else {
        log::info!(
            "applied {} migrations: {}",
            applied.len(),
            applied.join(", ")
        );
    }
    Ok(())
}

/// The documented routes as (path pattern, methods), read from the OpenAPI
/// document so the list cannot drift from the handlers.
static ROUTES: std::sync::LazyLock<Vec<(regex::Regex, Vec<String>)>> =
    std::sync::LazyLock::new(|| {
        let spec = serde_json::to_value(openapi()).unwrap_or_default();
        let paths = spec["paths"].as_object().cloned().unwrap_or_default();
        paths
            .iter()
            .filter_map(|(path, item)| {
                let pattern: Vec<String> = path
                    .split('/')
                    .map(|segment| {
                        if segment.starts_with('{') {
                            "[^/]+".to_owned()
                        } else {
                            regex::escape(segment)
                        }
                    })
                    .collect();
                let pattern = pattern.join("/");
                let methods = item
                    .as_object()?
                    .keys()
                    .map(|method| method.to_uppercase())
                    .collect();
                Some((regex::Regex::new(&format!("^{pattern}$")).ok()?, methods))
            })
            .collect()
    });

/// Responds to requests no route matches with a JSON 404, and to a known
/// path with a method it does not accept with a JSON 405 and `Allow`.
async fn route_not_found(
    request: actix_web::HttpRequest,
) -> Result<actix_web::HttpResponse, ApiError> {
    let allowed = ROUTES
        .iter()
        .find(|(pattern, _)| pattern.is_match(request.path()))
        .map(|(_, methods)| methods.join(", "));
    if let Some(allowed) = allowed {
        return Ok(actix_web::HttpResponse::MethodNotAllowed()
            .insert_header((actix_web::http::header::ALLOW, allowed.clone()))
            .json(batch_types::ErrorBody {
                success: false,
                error: i18n::pick(
                    format!("{} 不支持 {} 方法", request.path(), request.method()),
                    format!("{} does not accept {}", request.path(), request.method()),
                ),
                details: Some(batch_types::ErrorDetails::Message(i18n::pick(
                    format!("请改用：{allowed}"),
                    format!("use one of: {allowed}"),
                ))),
                data: None,
                timestamp: chrono::Utc::now(),
            }));
    }
    Err(ApiError::NotFound {
        message: i18n::pick(
            format!("没有 {} {} 这个接口", request.method(), request.path()),
            format!("no route matches {} {}", request.method(), request.path()),
        ),
        data: Some(serde_json::json!({ "documentation": "/swagger-ui/" })),
    })
}

fn serve(listener: TcpListener, engine: Engine, config: &Config) -> std::io::Result<Server> {
    let keys = web::Data::new(ApiKeys::new(&config.api_keys));
    let engine = web::Data::new(engine);
    let lang = web::Data::new(DefaultLang(Lang::from_locale(&config.locale)));
    let server = HttpServer::new(move || {
        let (app, api) = App::new()
            .into_utoipa_app()
            .openapi(ApiDoc::openapi())
            .app_data(keys.clone())
            .app_data(engine.clone())
            .app_data(lang.clone())
            .app_data(web::QueryConfig::default().error_handler(|error, _| {
                ApiError::invalid("query", format!("{error}; check the query string")).into()
            }))
            .app_data(
                web::PathConfig::default()
                    .error_handler(|error, _| ApiError::invalid("path", error.to_string()).into()),
            )
            .configure(configure)
            .split_for_parts();
        app.service(SwaggerUi::new("/swagger-ui/{_:.*}").url("/api-docs/openapi.json", api))
            .service(web::redirect("/swagger-ui", "/swagger-ui/"))
            .default_service(web::to(route_not_found))
            .wrap(from_fn(i18n::scope_language))
            .wrap(Logger::new("%a \"%r\" %s %b %Dms"))
    })
    .workers(2)
    .listen(listener)?
    .shutdown_timeout(15)
    .run();
    Ok(server)
}
