//! Command-line arguments of batchctl.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::Language;
use crate::types::{AiConfig, BatchStatus, ProcessingMode, StartBatchRequest};

/// The API key of the server's demo configuration.
pub const DEMO_API_KEY: &str = "unicatcher-api-key-demo";

/// The environment variable that carries the provider's API key for `start`.
pub const PROVIDER_KEY_ENV: &str = "BATCH_PROVIDER_API_KEY";

/// Control the batch service: start, watch, cancel and clear LLM analysis
/// batches, and import the texts they analyse.
#[derive(Debug, Parser)]
#[command(name = "batchctl", version)]
pub struct Cli {
    /// Base URL of the batch server.
    #[arg(
        long,
        env = "BATCH_URL",
        default_value = "http://127.0.0.1:8080",
        global = true
    )]
    pub url: String,

    /// API key sent as x-api-key [default: the server's demo key].
    #[arg(
        long,
        env = "BATCH_API_KEY",
        default_value = DEMO_API_KEY,
        hide_default_value = true,
        hide_env_values = true,
        global = true
    )]
    pub api_key: String,

    /// Print the `data` of the response as JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,

    /// Language of the server's messages.
    #[arg(
        long,
        value_enum,
        env = "BATCH_LANG",
        default_value = "en",
        global = true
    )]
    pub lang: Lang,

    /// Time limit of one request, in seconds.
    #[arg(
        long,
        value_name = "SECONDS",
        default_value_t = 30,
        value_parser = clap::value_parser!(u64).range(1..),
        global = true
    )]
    pub timeout: u64,

    /// The operation to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The operations of batchctl.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show the global state, or one batch with BATCH_ID.
    Status {
        /// The batch to show.
        batch_id: Option<String>,
    },

    /// Show what `clear` would cancel, without changing anything.
    Preview,

    /// Cancel every processing batch and release the global task lock.
    ///
    /// Without --yes, prints the preview and prompts for confirmation. It then
    /// clears only if the previewed batches are still the processing ones.
    Clear {
        /// Clear only if exactly these batches are processing; repeat for several.
        #[arg(long = "expect", value_name = "BATCH_ID")]
        expect: Vec<String>,

        /// Clear without asking.
        #[arg(long, short = 'y')]
        yes: bool,
    },

    /// Repair inconsistent batch state; with --force, cancel every processing batch.
    Reset {
        /// Cancel every processing batch instead of repairing only inconsistencies.
        #[arg(long)]
        force: bool,
    },

    /// Start a batch over the items that match the filters.
    ///
    /// The provider's API key is read from the BATCH_PROVIDER_API_KEY
    /// environment variable, never from a flag.
    Start(StartArgs),

    /// Start a batch that continues the chain of PREVIOUS_BATCH_ID.
    Continue {
        /// The batch whose chain to continue.
        previous_batch_id: String,

        /// Filters and settings of the new batch.
        #[command(flatten)]
        start: StartArgs,
    },

    /// Cancel a batch and hand its unfinished items back to the queue.
    Cancel {
        /// The batch to cancel.
        batch_id: String,
    },

    /// Insert or update items from a JSON Lines file.
    ///
    /// Each line is one {"externalId", "content", "username", "listId",
    /// "publishedAt"?} object. Invalid lines are reported with their line
    /// number and skipped, and the exit code is then 1. Items are keyed by
    /// externalId, so running the import again is safe.
    Import {
        /// The JSON Lines file.
        file: PathBuf,

        /// Items per upsert request, 1 to 10000.
        #[arg(long, default_value_t = 5000, value_parser = clap::value_parser!(u32).range(1..=10_000))]
        chunk_size: u32,
    },

    /// List batches, newest first.
    Batches {
        /// Maximum number of batches to list.
        #[arg(long)]
        limit: Option<u32>,

        /// The cursor printed after the previous page.
        #[arg(long)]
        cursor: Option<String>,

        /// Only batches in this status.
        #[arg(long, value_enum)]
        status: Option<StatusFilter>,
    },

    /// List the per-item results of a batch.
    Results {
        /// The batch whose results to list.
        batch_id: String,

        /// Maximum number of results to list.
        #[arg(long, conflicts_with = "all")]
        limit: Option<u32>,

        /// The cursor printed after the previous page.
        #[arg(long, conflicts_with = "all")]
        cursor: Option<String>,

        /// List every result in one streamed request (with --json, one JSON object per line).
        #[arg(long)]
        all: bool,
    },

    /// Check the server's liveness and readiness probes.
    Health,
}

/// Filters and provider settings of `start` and `continue`.
#[derive(Debug, Clone, Args)]
pub struct StartArgs {
    /// Only items of this list; repeat for several lists.
    #[arg(long = "list-id", value_name = "LIST_ID")]
    pub list_ids: Vec<String>,

    /// Only items of this author; repeat for several authors.
    #[arg(long = "username", value_name = "USERNAME")]
    pub usernames: Vec<String>,

    /// Only items published at or after this RFC 3339 time, such as 2025-09-01T00:00:00Z.
    #[arg(long, value_name = "TIME")]
    pub published_after: Option<String>,

    /// Item selection: without an analysis (false, the server's default), with one (true), or all.
    #[arg(long, value_enum)]
    pub is_extracted: Option<Extracted>,

    /// Items per provider request, 1 to 100 [server default: 10].
    #[arg(long, value_name = "N")]
    pub batch_size: Option<u32>,

    /// Processing mode: one provider request per chunk or per item [server default: optimized].
    #[arg(long, value_enum)]
    pub mode: Option<Mode>,

    /// Maximum number of items in the batch.
    #[arg(long, value_name = "N")]
    pub max_items: Option<u64>,

    /// Provider requests in flight at once, 1 to 32 [server default: 2].
    #[arg(long, value_name = "N")]
    pub concurrency: Option<u32>,

    /// openai, openai-badger, zhipu, anthropic or local [server default: local].
    #[arg(long)]
    pub provider: Option<String>,

    /// The provider's model [default: the provider's default model].
    #[arg(long)]
    pub model: Option<String>,

    /// Base URL of an OpenAI-compatible gateway.
    #[arg(long, value_name = "URL")]
    pub base_url: Option<String>,
}

impl StartArgs {
    /// Builds the request body; `provider_key` comes from the environment.
    pub fn to_request(
        &self,
        provider_key: Option<String>,
        previous_batch_id: Option<String>,
    ) -> StartBatchRequest {
        let has_ai_config = self.provider.is_some()
            || self.model.is_some()
            || self.base_url.is_some()
            || provider_key.is_some();
        let ai_config = has_ai_config.then(|| AiConfig {
            provider: self.provider.clone(),
            model: self.model.clone(),
            api_key: provider_key,
            base_url: self.base_url.clone(),
        });

        StartBatchRequest {
            list_ids: non_empty(&self.list_ids),
            usernames: non_empty(&self.usernames),
            published_after: self.published_after.clone(),
            is_extracted: self.is_extracted.map(|value| value.as_str().to_owned()),
            batch_size: self.batch_size,
            batch_processing_mode: self.mode.map(|mode| mode.to_mode().as_str().to_owned()),
            system_prompt: None,
            max_items: self.max_items,
            concurrency: self.concurrency,
            ai_config,
            previous_batch_id,
        }
    }
}

/// `None` for an empty list, so the server applies no filter.
fn non_empty(values: &[String]) -> Option<Vec<String>> {
    (!values.is_empty()).then(|| values.to_vec())
}

/// Values of `--is-extracted`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Extracted {
    /// Items with and without an analysis.
    All,
    /// Only items with an analysis.
    True,
    /// Only items without an analysis.
    False,
}

impl Extracted {
    /// Returns the wire value of `isExtracted`.
    fn as_str(self) -> &'static str {
        match self {
            Self::All => "all",
            Self::True => "true",
            Self::False => "false",
        }
    }
}

/// Values of `--mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    /// One provider request per chunk of batch-size items.
    Optimized,
    /// One provider request per item.
    Traditional,
}

impl Mode {
    /// Returns the matching processing mode.
    fn to_mode(self) -> ProcessingMode {
        match self {
            Self::Optimized => ProcessingMode::Optimized,
            Self::Traditional => ProcessingMode::Traditional,
        }
    }
}

/// Values of `--lang`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Lang {
    /// English.
    En,
    /// Chinese.
    Zh,
}

impl Lang {
    /// Returns the matching client language.
    pub fn to_language(self) -> Language {
        match self {
            Self::En => Language::English,
            Self::Zh => Language::Chinese,
        }
    }
}

/// Values of `batches --status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StatusFilter {
    /// Running batches.
    Processing,
    /// Batches that processed every item.
    Completed,
    /// Batches stopped by an error or an expired lease.
    Failed,
    /// Batches stopped by cancel, clear or a forced reset.
    Cancelled,
}

impl StatusFilter {
    /// Returns the matching batch status.
    pub fn to_status(self) -> BatchStatus {
        match self {
            Self::Processing => BatchStatus::Processing,
            Self::Completed => BatchStatus::Completed,
            Self::Failed => BatchStatus::Failed,
            Self::Cancelled => BatchStatus::Cancelled,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn start_args(extra: &[&str]) -> StartArgs {
        let mut argv = vec!["batchctl", "start"];
        argv.extend_from_slice(extra);
        let cli = Cli::try_parse_from(argv).expect("arguments parse");
        match cli.command {
            Command::Start(args) => args,
            other => panic!("parsed as {other:?}"),
        }
    }

    #[test]
    fn cli_definition_is_valid() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn start_without_flags_sends_empty_request() {
        let request = start_args(&[]).to_request(None, None);
        assert_eq!(request, StartBatchRequest::default());
    }

    #[test]
    fn start_flags_map_to_request() {
        let args = start_args(&[
            "--list-id",
            "a",
            "--list-id",
            "b",
            "--username",
            "alice",
            "--published-after",
            "2025-09-01T00:00:00Z",
            "--is-extracted",
            "all",
            "--batch-size",
            "20",
            "--mode",
            "traditional",
            "--max-items",
            "100",
            "--concurrency",
            "4",
            "--provider",
            "openai",
            "--model",
            "gpt-4o",
            "--base-url",
            "http://127.0.0.1:9000/v1",
        ]);
        let request = args.to_request(Some("provider-key".into()), None);

        assert_eq!(request.list_ids, Some(vec!["a".into(), "b".into()]));
        assert_eq!(request.usernames, Some(vec!["alice".into()]));
        assert_eq!(
            request.published_after.as_deref(),
            Some("2025-09-01T00:00:00Z")
        );
        assert_eq!(request.is_extracted.as_deref(), Some("all"));
        assert_eq!(request.batch_size, Some(20));
        assert_eq!(
            request.batch_processing_mode.as_deref(),
            Some("traditional")
        );
        assert_eq!(request.max_items, Some(100));
        assert_eq!(request.concurrency, Some(4));

        let ai_config = request.ai_config.expect("ai config set");
        assert_eq!(ai_config.provider.as_deref(), Some("openai"));
        assert_eq!(ai_config.model.as_deref(), Some("gpt-4o"));
        assert_eq!(ai_config.api_key.as_deref(), Some("provider-key"));
        assert_eq!(
            ai_config.base_url.as_deref(),
            Some("http://127.0.0.1:9000/v1")
        );
    }

    #[test]
    fn import_rejects_oversized_chunk() {
        let argv = ["batchctl", "import", "items.jsonl", "--chunk-size", "10001"];
        assert!(Cli::try_parse_from(argv).is_err());
    }
}
