//! The `batch-server` binary: serve the API, apply migrations, import
//! items, or print the OpenAPI document.

use std::path::PathBuf;

use batch_server::config::Config;
use batch_server::startup::{Application, openapi};
use clap::{Parser, Subcommand};

/// Runs LLM analysis over stored short texts in batches.
#[derive(Debug, Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    #[command(flatten)]
    config: Config,

    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the HTTP API (the default).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Load a JSONL file of items ({"externalId","content","username","listId","publishedAt"} a line).
    Import {
        /// The file to load.
        file: PathBuf,
    },
    /// Print the OpenAPI document to standard output.
    Openapi,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            Application::build(cli.config)
                .await?
                .run_until_stopped()
                .await
        }
        Command::Openapi => {
            println!("{}", openapi().to_pretty_json()?);
            Ok(())
        }
        Command::Migrate => with_database(cli.config, |connection| {
            let applied =
                batch_server::db::run_migrations(connection).map_err(anyhow::Error::msg)?;
            log::info!("applied {} migrations", applied.len());
            Ok(())
        }),
        Command::Import { file } => with_database(cli.config, move |connection| {
            batch_server::db::run_migrations(connection).map_err(anyhow::Error::msg)?;
            let started = std::time::Instant::now();
            let summary = batch_server::import::import_file(connection, &file)?;
            eprintln!(
                "imported {}: {} inserted, {} updated in {:.1} s",
                file.display(),
                summary.inserted,
                summary.updated,
                started.elapsed().as_secs_f64()
            );
            Ok(())
        }),
    }
}

/// Runs `work` with one connection, starting the embedded cluster when
/// `DATABASE_URL` is unset and stopping it afterwards.
fn with_database(
    config: Config,
    work: impl FnOnce(&mut batch_server::db::DbConn) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let (url, cluster) = match config.database_url.clone() {
        Some(url) => (url, None),
        None => {
            let cluster = batch_server::embedded::EmbeddedPostgres::start(&config.data_dir)?;
            (cluster.database_url(), Some(cluster))
        }
    };
    let pool = batch_server::db::build_pool(&url, 2, config.db_timeout())?;
    let mut connection = pool.get()?;
    let result = work(&mut connection);
    drop(connection);
    drop(cluster);
    result
}
