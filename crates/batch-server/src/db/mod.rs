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
        .build(manager)
}

/// Applies the pending migrations and returns their versions.
pub fn run_migrations(connection: &mut PgConnection) -> Result<Vec<String>, String> {
    connection
        .run_pending_migrations(MIGRATIONS)
        .map(|versions| versions.iter().map(ToString::to_string).collect())
        .map_err(|error| format!("applying migrations failed: {error}"))
}

/// Replaces the password in a database URL with `***`, for logs.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    // The user info ends at the last '@' before the path.
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => {
            let user = rest[..at].split(':').next().unwrap_or("");
            let password = if rest[..at].contains(':') { ":***" } else { "" };
            format!("{scheme}://{user}{password}{}", &rest[at..])
        }
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::redact_url;

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
    }
}
