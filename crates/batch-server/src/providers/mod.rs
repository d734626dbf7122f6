//! AI providers: the clients that turn stored texts into [`Analysis`] values.
//!
//! `openai`, `openai-badger` and `zhipu` speak the OpenAI chat completions
//! API, `anthropic` speaks the Messages API, and `local` analyses offline with
//! no key and no network. Every remote request goes through one retry policy
//! (see `retry.rs`), and every model output goes through one tolerant parser
//! (see `parse.rs`).
//!
//! Cancellation works by dropping the future returned by
//! [`Provider::analyze_chunk`] or [`Provider::analyze_item`]: no task is
//! spawned, so dropping it aborts the HTTP request or the backoff sleep.

mod anthropic;
mod keywords;
mod local;
mod openai;
mod parse;
mod prompt;
mod retry;

#[cfg(test)]
mod test_support;

use std::fmt;
use std::time::Duration;

use batch_types::Analysis;
use url::Url;

/// The timeout of one HTTP request in [`ProviderConfig::new`].
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// The retries after the first attempt in [`ProviderConfig::new`].
pub const DEFAULT_MAX_RETRIES: u32 = 3;

/// The first backoff delay in [`ProviderConfig::new`].
pub const DEFAULT_RETRY_BASE_DELAY: Duration = Duration::from_millis(500);

/// The provider a batch uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderKind {
    /// OpenAI chat completions.
    OpenAi,
    /// An OpenAI-compatible gateway; the same wire format as `openai`.
    OpenAiBadger,
    /// Zhipu AI (BigModel), OpenAI-compatible chat completions.
    Zhipu,
    /// Anthropic Messages API.
    Anthropic,
    /// The offline analyzer: no key, no network.
    Local,
}

impl ProviderKind {
    /// The accepted provider names, for error messages.
    pub const NAMES: &'static [&'static str] =
        &["openai", "openai-badger", "zhipu", "anthropic", "local"];

    /// Parses a provider name as the API accepts it.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "openai" => Some(Self::OpenAi),
            "openai-badger" => Some(Self::OpenAiBadger),
            "zhipu" => Some(Self::Zhipu),
            "anthropic" => Some(Self::Anthropic),
            "local" => Some(Self::Local),
            _ => None,
        }
    }

    /// Returns the provider name as the API accepts it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OpenAi => "openai",
            Self::OpenAiBadger => "openai-badger",
            Self::Zhipu => "zhipu",
            Self::Anthropic => "anthropic",
            Self::Local => "local",
        }
    }

    /// Returns the model used when a batch names none.
    pub fn default_model(self) -> &'static str {
        match self {
            Self::OpenAi => "gpt-4o-mini",
            Self::OpenAiBadger => "gpt-4o",
            Self::Zhipu => "glm-4-flash",
            Self::Anthropic => "claude-haiku-4-5",
            Self::Local => local::MODEL,
        }
    }

    /// Returns the API base URL used when a batch names none, or `None` for `local`.
    // NOTE: no public endpoint of openai-badger is known here, so it defaults
    // to OpenAI's and callers are expected to pass `baseURL`.
    pub fn default_base_url(self) -> Option<&'static str> {
        match self {
            Self::OpenAi | Self::OpenAiBadger => Some("https://api.openai.com/v1"),
            Self::Zhipu => Some("https://open.bigmodel.cn/api/paas/v4"),
            Self::Anthropic => Some("https://api.anthropic.com"),
            Self::Local => None,
        }
    }

    /// Returns the environment variable that contains the provider key, or `None` for `local`.
    pub fn api_key_env_var(self) -> Option<&'static str> {
        match self {
            Self::OpenAi | Self::OpenAiBadger => Some("OPENAI_API_KEY"),
            Self::Zhipu => Some("ZHIPU_API_KEY"),
            Self::Anthropic => Some("ANTHROPIC_API_KEY"),
            Self::Local => None,
        }
    }

    /// Returns whether the provider is called over HTTP and so needs a key.
    pub fn is_remote(self) -> bool {
        self != Self::Local
    }
}

impl fmt::Display for ProviderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A provider key: Debug and Display print `<redacted>`; [`ApiKey::expose`] returns the key.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    /// Wraps a key so that formatting it never prints it.
    pub fn new(key: impl Into<String>) -> Self {
        Self(key.into())
    }

    /// Returns the key itself, for the one header that carries it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<String> for ApiKey {
    fn from(key: String) -> Self {
        Self(key)
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Everything needed to call a provider.
#[derive(Clone, Debug)]
pub struct ProviderConfig {
    /// The provider to call.
    pub kind: ProviderKind,
    /// The model name sent to the provider.
    pub model: String,
    /// The provider key; required for every kind but `local`.
    pub api_key: Option<ApiKey>,
    /// The API base URL; `None` uses the kind's default.
    pub base_url: Option<Url>,
    /// Instructions that replace the built-in ones; the output format is always appended.
    pub system_prompt: Option<String>,
    /// The timeout of one HTTP request, from sending it to the end of the response body.
    pub timeout: Duration,
    /// Retries after the first attempt, on 429, 5xx, timeouts and connection errors.
    pub max_retries: u32,
    /// The first backoff delay; later ones grow exponentially with jitter, and `Retry-After` overrides them.
    pub retry_base_delay: Duration,
}

impl ProviderConfig {
    /// Builds a configuration with the kind's default model and base URL and the default timeouts.
    pub fn new(kind: ProviderKind, api_key: Option<ApiKey>) -> Self {
        Self {
            kind,
            model: kind.default_model().to_owned(),
            api_key,
            base_url: None,
            system_prompt: None,
            timeout: DEFAULT_TIMEOUT,
            max_retries: DEFAULT_MAX_RETRIES,
            retry_base_delay: DEFAULT_RETRY_BASE_DELAY,
        }
    }
}

/// One item sent to the provider.
#[derive(Clone, Debug)]
pub struct ProviderItem {
    /// The server's id of the item; the model echoes it back.
    pub id: i64,
    /// The text to analyse.
    pub content: String,
}

/// The result for one item.
#[derive(Clone, Debug, PartialEq)]
pub enum ItemOutcome {
    /// The provider returned an analysis for the item.
    Analyzed(Analysis),
    /// The item failed; the reason is short and never contains model output.
    Failed(String),
}

/// The failure of a whole request.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// Stops the batch: invalid or missing key (401/403), unknown model (404 or an error body naming the model), bad base URL.
    #[error("{0}")]
    Fatal(String),
    /// The request failed after all retries (timeout, 5xx, 429, malformed body): the items of this request fail with this reason, the batch goes on.
    #[error("{0}")]
    Failed(String),
}

/// A configured provider client; cheap to share behind an Arc.
#[derive(Debug)]
pub struct Provider {
    config: ProviderConfig,
    http: reqwest::Client,
    /// The full request URL; `None` for `local`.
    endpoint: Option<Url>,
}

impl Provider {
    /// Validates the configuration and builds a client around the shared `http` client.
    ///
    /// Returns [`ProviderError::Fatal`] when a remote kind has no key, because
    /// the caller resolves the environment variable. It also does so when the
    /// key cannot be sent in an HTTP header, when the model name is empty, or
    /// when the base URL is not an absolute http or https URL.
    pub fn new(config: ProviderConfig, http: reqwest::Client) -> Result<Self, ProviderError> {
        if config.model.trim().is_empty() {
            return Err(ProviderError::Fatal(format!(
                "the model name for the {} provider is empty",
                config.kind
            )));
        }
        let endpoint = match config.kind {
            ProviderKind::Local => None,
            ProviderKind::Anthropic => Some(anthropic::endpoint(&config)?),
            _ => Some(openai::endpoint(&config)?),
        };
        if config.kind.is_remote() {
            check_api_key(&config)?;
        }
        Ok(Self {
            config,
            http,
            endpoint,
        })
    }

    /// Returns the configuration this provider was built with.
    pub fn config(&self) -> &ProviderConfig {
        &self.config
    }

    /// Analyses a whole chunk in one request (optimized mode).
    ///
    /// Returns exactly one entry per input id, in input order. Items the
    /// model skipped fail with "the model returned no result for this item".
    /// When the model output is not JSON at all, every item fails with "the
    /// model output is not valid JSON" inside `Ok`, because the request itself
    /// succeeded and retrying would resend the same prompt.
    pub async fn analyze_chunk(
        &self,
        items: &[ProviderItem],
    ) -> Result<Vec<(i64, ItemOutcome)>, ProviderError> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        if self.config.kind == ProviderKind::Local {
            return Ok(local::analyze_items(items));
        }
        let system =
            prompt::system_prompt(self.config.system_prompt.as_deref(), prompt::Mode::Chunk);
        let user = prompt::chunk_user_message(items);
        let output = self.complete(&system, &user, items.len()).await?;
        let ids: Vec<i64> = items.iter().map(|item| item.id).collect();
        let outcomes = parse::parse_outcomes(&output, &ids);
        self.log_unusable_output(outcomes.iter().map(|(_, outcome)| outcome));
        Ok(outcomes)
    }

    /// Analyses one item in one request (traditional mode).
    ///
    /// Model output that is not JSON, or that has no result for the item,
    /// gives `Ok(ItemOutcome::Failed(..))` as in [`Provider::analyze_chunk`].
    pub async fn analyze_item(&self, item: &ProviderItem) -> Result<ItemOutcome, ProviderError> {
        if self.config.kind == ProviderKind::Local {
            return Ok(local::analyze_item(item));
        }
        let system =
            prompt::system_prompt(self.config.system_prompt.as_deref(), prompt::Mode::Item);
        let user = prompt::item_user_message(item);
        let output = self.complete(&system, &user, 1).await?;
        let outcome = parse::parse_outcome(&output, item.id);
        self.log_unusable_output([&outcome]);
        Ok(outcome)
    }

    /// Logs how many items of one response had no usable result, without the output itself.
    fn log_unusable_output<'a>(&self, outcomes: impl IntoIterator<Item = &'a ItemOutcome>) {
        let mut total = 0;
        let mut failed = 0;
        for outcome in outcomes {
            total += 1;
            if matches!(outcome, ItemOutcome::Failed(_)) {
                failed += 1;
            }
        }
        if failed > 0 {
            log::warn!(
                "{} model {} returned no usable result for {failed} of {total} items",
                self.config.kind,
                self.config.model
            );
        }
    }

    /// Sends one completion request with retries and returns the model's text.
    async fn complete(
        &self,
        system: &str,
        user: &str,
        item_count: usize,
    ) -> Result<String, ProviderError> {
        let Some(endpoint) = &self.endpoint else {
            return Err(ProviderError::Fatal(format!(
                "the {} provider has no endpoint",
                self.config.kind
            )));
        };
        let api_key = check_api_key(&self.config)?;
        let body = match self.config.kind {
            ProviderKind::Anthropic => {
                let request = anthropic::request_body(&self.config, system, user, item_count);
                retry::send_with_retry(&self.config, || {
                    anthropic::build_request(&self.http, endpoint, api_key, &request)
                })
                .await?
            }
            _ => {
                let request = openai::request_body(&self.config, system, user);
                retry::send_with_retry(&self.config, || {
                    openai::build_request(&self.http, endpoint, api_key, &request)
                })
                .await?
            }
        };
        let text = match self.config.kind {
            ProviderKind::Anthropic => anthropic::output_text(&body),
            _ => openai::output_text(&body),
        };
        text.map_err(|reason| {
            ProviderError::Failed(format!(
                "the {} response is malformed: {reason}",
                self.config.kind
            ))
        })
    }
}

/// Builds the request URL from the configured or default base URL and an API
/// path, keeping any query string (some gateways require one).
fn endpoint_url(config: &ProviderConfig, path: &str) -> Result<Url, ProviderError> {
    let kind = config.kind;
    let base = match &config.base_url {
        Some(base) => base.clone(),
        None => {
            let default = kind.default_base_url().unwrap_or_default();
            Url::parse(default).map_err(|error| {
                ProviderError::Fatal(format!("the default {kind} base URL is invalid: {error}"))
            })?
        }
    };
    if !matches!(base.scheme(), "http" | "https")
        || base.cannot_be_a_base()
        || base.host().is_none()
    {
        return Err(ProviderError::Fatal(format!(
            "the {kind} base URL must be an absolute http or https URL, got scheme \"{}\": \
             fix aiConfig.baseURL",
            base.scheme()
        )));
    }
    let mut url = base;
    let joined = format!("{}/{}", url.path().trim_end_matches('/'), path);
    url.set_path(&joined);
    Ok(url)
}

/// Returns the configured key, or a Fatal error that names where a key comes from.
fn check_api_key(config: &ProviderConfig) -> Result<&ApiKey, ProviderError> {
    let env_var = config
        .kind
        .api_key_env_var()
        .unwrap_or("the provider's key variable");
    let Some(key) = config
        .api_key
        .as_ref()
        .filter(|key| !key.expose().trim().is_empty())
    else {
        return Err(ProviderError::Fatal(format!(
            "the {} provider needs an API key: pass aiConfig.apiKey or set {env_var}",
            config.kind
        )));
    };
    // Header values must be visible ASCII; checking here turns a request
    // builder error on every attempt into one clear message.
    if !key.expose().bytes().all(|byte| byte.is_ascii_graphic()) {
        return Err(ProviderError::Fatal(format!(
            "the {} API key contains characters that are not allowed in an HTTP header: \
             pass a valid aiConfig.apiKey or fix {env_var}",
            config.kind
        )));
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_names_round_trip() {
        for name in ProviderKind::NAMES {
            let kind = ProviderKind::parse(name);
            assert_eq!(kind.map(ProviderKind::as_str), Some(*name), "{name}");
        }
    }

    #[test]
    fn kind_parse_rejects_unknown_name() {
        assert_eq!(ProviderKind::parse("gemini"), None);
    }

    #[test]
    fn kind_local_needs_no_key_or_url() {
        assert_eq!(ProviderKind::Local.api_key_env_var(), None);
        assert_eq!(ProviderKind::Local.default_base_url(), None);
    }

    #[test]
    fn api_key_formatting_is_redacted() {
        let key = ApiKey::new("sk-secret-value");
        assert_eq!(format!("{key}"), "<redacted>");
        assert_eq!(format!("{key:?}"), "<redacted>");
        let config = ProviderConfig::new(ProviderKind::OpenAi, Some(key));
        assert!(!format!("{config:?}").contains("sk-secret-value"));
    }

    #[test]
    fn new_rejects_remote_kind_without_key() {
        let config = ProviderConfig::new(ProviderKind::Zhipu, None);
        let error = Provider::new(config, reqwest::Client::new()).err();
        let message = match error {
            Some(ProviderError::Fatal(message)) => message,
            other => panic!("expected Fatal, got {other:?}"),
        };
        assert!(message.contains("ZHIPU_API_KEY"), "{message}");
        assert!(message.contains("aiConfig.apiKey"), "{message}");
    }

    #[test]
    fn new_rejects_blank_key() {
        let config = ProviderConfig::new(ProviderKind::OpenAi, Some(ApiKey::new("  ")));
        let error = Provider::new(config, reqwest::Client::new()).err();
        assert!(matches!(error, Some(ProviderError::Fatal(_))), "{error:?}");
    }

    #[test]
    fn new_rejects_non_http_base_url() {
        let mut config = ProviderConfig::new(ProviderKind::OpenAi, Some(ApiKey::new("k")));
        config.base_url = Url::parse("ftp://127.0.0.1/v1").ok();
        let error = Provider::new(config, reqwest::Client::new()).err();
        assert!(matches!(error, Some(ProviderError::Fatal(_))), "{error:?}");
    }

    #[test]
    fn new_rejects_empty_model() {
        let mut config = ProviderConfig::new(ProviderKind::Local, None);
        config.model = String::new();
        let error = Provider::new(config, reqwest::Client::new()).err();
        assert!(matches!(error, Some(ProviderError::Fatal(_))), "{error:?}");
    }

    #[test]
    fn new_accepts_local_without_key() {
        let config = ProviderConfig::new(ProviderKind::Local, None);
        assert!(Provider::new(config, reqwest::Client::new()).is_ok());
    }

    #[tokio::test]
    async fn local_chunk_returns_one_entry_per_item() {
        let config = ProviderConfig::new(ProviderKind::Local, None);
        let provider =
            Provider::new(config, reqwest::Client::new()).expect("local config is valid");
        let items = [
            ProviderItem {
                id: 7,
                content: "Rust makes systems programming safer".to_owned(),
            },
            ProviderItem {
                id: 3,
                content: "https://example.com/only-a-link".to_owned(),
            },
        ];
        let outcomes = provider
            .analyze_chunk(&items)
            .await
            .expect("local never fails");
        let ids: Vec<i64> = outcomes.iter().map(|(id, _)| *id).collect();
        assert_eq!(ids, vec![7, 3]);
        assert!(
            matches!(&outcomes[1].1, ItemOutcome::Analyzed(analysis) if analysis.is_valueless),
            "{outcomes:?}"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn local_item_runs_on_multi_thread_runtime() {
        let config = ProviderConfig::new(ProviderKind::Local, None);
        let provider =
            Provider::new(config, reqwest::Client::new()).expect("local config is valid");
        let item = ProviderItem {
            id: 1,
            content: "今天天气很好，我们一起去公园散步吧。".to_owned(),
        };
        let outcome = provider
            .analyze_item(&item)
            .await
            .expect("local never fails");
        let ItemOutcome::Analyzed(analysis) = outcome else {
            panic!("the local analyzer failed: {outcome:?}");
        };
        assert!(
            analysis.keywords.iter().any(|k| k == "公园"),
            "{:?}",
            analysis.keywords
        );
    }

    #[tokio::test]
    async fn empty_chunk_sends_nothing() {
        let mut config = ProviderConfig::new(ProviderKind::OpenAi, Some(ApiKey::new("k")));
        // Port 9 on loopback: were a request sent, it would fail instead of leaving the machine.
        config.base_url = Url::parse("http://127.0.0.1:9/v1").ok();
        let provider = Provider::new(config, reqwest::Client::new()).expect("config is valid");
        let outcomes = provider
            .analyze_chunk(&[])
            .await
            .expect("no request is made");
        assert!(outcomes.is_empty());
    }
}
