//! Server configuration, read from the command line and the environment.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

/// The API key that works when no keys are configured, on a loopback bind only.
pub const DEMO_API_KEY: &str = "unicatcher-api-key-demo";

/// Settings of a running server; every field has an environment variable.
#[derive(Debug, Clone, Args)]
pub struct Config {
    /// PostgreSQL URL. Unset: an embedded cluster under BATCH_DATA_DIR, made
    /// from the machine's PostgreSQL binaries.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,

    /// Folder of the embedded PostgreSQL cluster, used when DATABASE_URL is unset.
    #[arg(long, env = "BATCH_DATA_DIR", default_value = ".data/postgres")]
    pub data_dir: PathBuf,

    /// Address and port to listen on.
    #[arg(long, env = "BATCH_BIND", default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,

    /// Comma-separated API keys accepted on /api/external. Unset: the demo
    /// key, on a loopback bind only.
    #[arg(
        long,
        env = "BATCH_API_KEYS",
        hide_env_values = true,
        value_delimiter = ','
    )]
    pub api_keys: Vec<String>,

    /// Maximum database connections in the pool.
    #[arg(long, env = "BATCH_DB_POOL_SIZE", default_value_t = 16)]
    pub pool_size: u32,

    /// Seconds to wait for a free database connection before returning 503.
    #[arg(long, env = "BATCH_DB_TIMEOUT_SECS", default_value_t = 3)]
    pub db_timeout_secs: u64,

    /// Seconds between heartbeats of the batches this instance works.
    #[arg(long, env = "BATCH_HEARTBEAT_SECS", default_value_t = 2)]
    pub heartbeat_secs: u64,

    /// Seconds without a heartbeat after which a batch's owner counts as gone
    /// and the watchdog fails the batch. Must exceed the heartbeat interval.
    #[arg(long, env = "BATCH_LEASE_SECS", default_value_t = 15)]
    pub lease_secs: u64,

    /// Seconds one provider HTTP request may take.
    #[arg(long, env = "BATCH_PROVIDER_TIMEOUT_SECS", default_value_t = 60)]
    pub provider_timeout_secs: u64,

    /// Retries of a provider request after a 429, a 5xx or a timeout.
    #[arg(long, env = "BATCH_PROVIDER_RETRIES", default_value_t = 3)]
    pub provider_retries: u32,

    /// Milliseconds of the first retry delay; later ones double, with jitter.
    #[arg(long, env = "BATCH_PROVIDER_RETRY_DELAY_MS", default_value_t = 500)]
    pub provider_retry_delay_ms: u64,

    /// Language of messages when a request has no Accept-Language: zh or en.
    #[arg(long, env = "BATCH_LOCALE", default_value = "zh")]
    pub locale: String,
}

impl Config {
    /// Time to wait for a pooled connection.
    pub fn db_timeout(&self) -> Duration {
        Duration::from_secs(self.db_timeout_secs.max(1))
    }

    /// Interval between heartbeats.
    pub fn heartbeat(&self) -> Duration {
        Duration::from_secs(self.heartbeat_secs.max(1))
    }

    /// Time without a heartbeat after which a lease expires.
    pub fn lease(&self) -> Duration {
        Duration::from_secs(self.lease_secs.max(self.heartbeat_secs * 2 + 1))
    }

    /// Checks settings that clap cannot check on its own.
    pub fn validate(&self) -> Result<(), String> {
        if self.api_keys.iter().all(|key| key.trim().is_empty()) && !self.bind.ip().is_loopback() {
            return Err(format!(
                "BATCH_BIND is {}, which is not a loopback address, and BATCH_API_KEYS is unset: \
                 the public demo key would open the API to the network. \
                 Set BATCH_API_KEYS to your own keys, or bind to 127.0.0.1.",
                self.bind
            ));
        }
        if self.pool_size < 2 {
            return Err(format!(
                "BATCH_DB_POOL_SIZE is {}; it must be at least 2 because workers and requests share the pool.",
                self.pool_size
            ));
        }
        if !matches!(self.locale.as_str(), "zh" | "en") {
            return Err(format!("BATCH_LOCALE is {:?}; use zh or en.", self.locale));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        config: Config,
    }

    fn parse(args: &[&str]) -> Config {
        let mut all = vec!["batch-server"];
        all.extend_from_slice(args);
        Cli::try_parse_from(all)
            .expect("the arguments parse")
            .config
    }

    #[test]
    fn demo_key_refused_on_public_bind() {
        let error = parse(&["--bind", "0.0.0.0:8080"])
            .validate()
            .expect_err("a public bind needs keys");
        assert!(error.contains("BATCH_API_KEYS"), "{error}");
    }

    #[test]
    fn public_bind_with_keys_is_accepted() {
        let config = parse(&["--bind", "0.0.0.0:8080", "--api-keys", "k1,k2"]);
        assert_eq!(config.api_keys, vec!["k1".to_owned(), "k2".to_owned()]);
        assert!(config.validate().is_ok());
    }

    #[test]
    fn loopback_bind_allows_demo_key() {
        assert!(parse(&[]).validate().is_ok());
    }

    #[test]
    fn lease_outlasts_two_heartbeats() {
        let config = parse(&["--heartbeat-secs", "5", "--lease-secs", "3"]);
        assert!(config.lease() > config.heartbeat() * 2);
    }

    #[test]
    fn unknown_locale_is_rejected() {
        assert!(parse(&["--locale", "fr"]).validate().is_err());
    }
}
