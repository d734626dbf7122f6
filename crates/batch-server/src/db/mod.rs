//! The database: connection pool, migrations and the named queries.

pub mod batches;
pub mod control;
pub mod items;
#[allow(
    missing_docs,
    reason = "diesel's table! macro generates one undocumented type per column"
)]
pub mod schema;

use std::time::Duration;

use diesel::pg::PgConnection;
use diesel::r2d2::{ConnectionManager, Pool, PooledConnection};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

/// The migrations in the top-level `migrations/` folder, compiled in.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations");

/// The shared connection pool.
pub type DbPool = Pool<ConnectionManager<PgConnection>>;

/// One connection checked out of the pool.
pub type DbConn = PooledConnection<ConnectionManager<PgConnection>>;

/// Builds a pool that waits at most `timeout` for a connection.
///
/// The pool opens no connection up front (`min_idle` 0), so a server whose
/// database is down still starts and reports itself unready.
pub fn build_pool(
    url: &str,
    size: u32,
    timeout: Duration,
) -> Result<DbPool, diesel::r2d2::PoolError> {
    let manager = ConnectionManager::<PgConnection>::new(url);
    Pool::builder()
        .max_size(size)
        .min_idle(Some(0))
        .connection_timeout(timeout)
        .test_on_check_out(true)
        .error_handler(Box::new(QuietErrorHandler::default()))
        .build(manager)
}

/// Logs connection failures at most once per [`CONNECTION_ERROR_LOG_INTERVAL`],
/// so an outage leaves a few lines in the log, not one per attempt.
#[derive(Debug, Default)]
struct QuietErrorHandler {
    last_logged_secs: std::sync::atomic::AtomicU64,
    suppressed: std::sync::atomic::AtomicU64,
}

/// Minimum time between two logged connection failures.
const CONNECTION_ERROR_LOG_INTERVAL: Duration = Duration::from_secs(10);

impl diesel::r2d2::HandleError<diesel::r2d2::Error> for QuietErrorHandler {
    fn handle_error(&self, error: diesel::r2d2::Error) {
        use std::sync::atomic::Ordering;

        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|elapsed| elapsed.as_secs())
            .unwrap_or(0);
        let last = self.last_logged_secs.load(Ordering::Relaxed);
        if now.saturating_sub(last) < CONNECTION_ERROR_LOG_INTERVAL.as_secs() {
            self.suppressed.fetch_add(1, Ordering::Relaxed);
            return;
        }
        self.last_logged_secs.store(now, Ordering::Relaxed);
        let suppressed = self.suppressed.swap(0, Ordering::Relaxed);
        let message = redact_url(&error.to_string());
        log::error!(
            "database connection failed: {message} ({suppressed} similar failures not logged)"
        );
    }
}

/// How long a control action (clear, reset, cancel) waits for a row lock
/// before it gives up. A worker holds a batch row for one short commit; a
/// longer hold means a stalled transaction, and the operator must hear so.
pub const CONTROL_LOCK_TIMEOUT: &str = "5s";

/// Sets [`CONTROL_LOCK_TIMEOUT`] for the rest of the current transaction.
pub fn set_lock_timeout(connection: &mut PgConnection) -> diesel::QueryResult<()> {
    use diesel::RunQueryDsl;
    diesel::sql_query(format!("SET LOCAL lock_timeout = '{CONTROL_LOCK_TIMEOUT}'"))
        .execute(connection)
        .map(|_| ())
}

/// Applies the pending migrations and returns their versions.
pub fn run_migrations(connection: &mut PgConnection) -> Result<Vec<String>, String> {
    connection
        .run_pending_migrations(MIGRATIONS)
        .map(|versions| versions.iter().map(ToString::to_string).collect())
        .map_err(|error| format!("applying migrations failed: {error}"))
}

/// Replaces every password in a database URL or key=value connection
/// string with `***`, for logs and error messages.
pub fn redact_url(url: &str) -> String {
    static PASSWORD_PARAMETER: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"(?i)(password\s*=\s*)('[^']*'|[^&\s]*)").expect("the pattern is valid")
    });
    let url = PASSWORD_PARAMETER.replace_all(url, "${1}***").into_owned();
    let Some((scheme, rest)) = url.split_once("://") else {
        return url;
    };
    // The user info ends at the last '@' before the path.
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) if rest[..at].contains(':') => {
            let user = rest[..at].split(':').next().unwrap_or("");
            format!("{scheme}://{user}:***{}", &rest[at..])
        }
        _ => url,
    }
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn connection_errors_are_rate_limited() {
        use diesel::r2d2::HandleError;
        use std::sync::atomic::Ordering;

        let handler = super::QuietErrorHandler::default();
        for _ in 0..5 {
            handler.handle_error(diesel::r2d2::Error::ConnectionError(
                diesel::ConnectionError::BadConnection("refused".into()),
            ));
        }

        assert_ne!(
            handler.last_logged_secs.load(Ordering::Relaxed),
            0,
            "the first failure is logged"
        );
        assert_eq!(
            handler.suppressed.load(Ordering::Relaxed),
            4,
            "the next four are counted, not logged"
        );
    }

    #[test]
    fn redact_url_hides_only_the_password() {
        assert_eq!(
            redact_url("postgres://app:s3cret@db.internal:5432/batch"),
            "postgres://app:***@db.internal:5432/batch"
        );
        assert_eq!(
            redact_url("postgres://postgres@/batch?host=/tmp/run"),
            "postgres://postgres@/batch?host=/tmp/run"
        );
        assert_eq!(
            redact_url("postgres://postgres@/batch?host=/tmp/run&password=s3cret&sslmode=disable"),
            "postgres://postgres@/batch?host=/tmp/run&password=***&sslmode=disable"
        );
        assert_eq!(
            redact_url("host=db user=app password='s3 cret' dbname=batch"),
            "host=db user=app password=*** dbname=batch"
        );
    }
}
