//! Sending a provider request with retries, and classifying what went wrong.
//!
//! Retried: 429, 408, 5xx, timeouts and connection errors, with exponential
//! backoff and jitter, where a `Retry-After` header replaces the computed
//! delay. Not retried: 401/403 and unknown models (fatal for the batch) and
//! every other 4xx (the request's items fail).

use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use chrono::{DateTime, Utc};
use reqwest::header::HeaderMap;
use reqwest::{RequestBuilder, Response, StatusCode};

use super::{ProviderConfig, ProviderError};

/// The maximum wait that a `Retry-After` header can impose.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// The maximum computed backoff delay, before jitter.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// How much of an error body is read to find its message.
const MAX_ERROR_BODY_BYTES: usize = 16 * 1024;

/// The largest successful response read. A reply for 100 short texts is a
/// few tens of kilobytes, so anything near this is not an analysis. Reading
/// it whole would let one provider exhaust the server's memory.
const MAX_RESPONSE_BYTES: usize = 4 * 1024 * 1024;

/// How many characters of a provider's error message an error may quote.
const MAX_QUOTED_CHARS: usize = 200;

/// One failed attempt, classified for the retry policy.
#[derive(Debug)]
pub(super) enum AttemptError {
    /// Worth another attempt: 429, 408, 5xx, a timeout or a connection error.
    Retryable {
        /// The message used if no retry succeeds.
        reason: String,
        /// A short label for logs: the status code or the transport failure.
        label: String,
        /// The delay that the provider requested in `Retry-After`.
        retry_after: Option<Duration>,
    },
    /// Stops the batch.
    Fatal(String),
    /// Fails this request's items without a retry.
    Failed(String),
}

impl AttemptError {
    fn is_retryable(&self) -> bool {
        matches!(self, Self::Retryable { .. })
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Retryable { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    fn into_provider_error(self, attempts: u32) -> ProviderError {
        match self {
            Self::Retryable { reason, .. } if attempts > 1 => {
                ProviderError::Failed(format!("{reason} (gave up after {attempts} attempts)"))
            }
            Self::Retryable { reason, .. } | Self::Failed(reason) => ProviderError::Failed(reason),
            Self::Fatal(reason) => ProviderError::Fatal(reason),
        }
    }
}

/// Sends the request that `build` makes, retrying per the configuration, and
/// returns the body of the first 2xx response.
///
/// `build` runs once per attempt because a `RequestBuilder` is consumed by sending.
pub(super) async fn send_with_retry<F>(
    config: &ProviderConfig,
    build: F,
) -> Result<String, ProviderError>
where
    F: Fn() -> RequestBuilder,
{
    let max_retries = usize::try_from(config.max_retries).unwrap_or(usize::MAX);
    let backoff = ExponentialBuilder::default()
        .with_min_delay(config.retry_base_delay)
        .with_max_delay(MAX_BACKOFF.max(config.retry_base_delay))
        .with_max_times(max_retries)
        .with_jitter();
    let mut retries: u32 = 0;
    let result = (|| send_once(config, build()))
        .retry(backoff)
        .sleep(tokio::time::sleep)
        .when(AttemptError::is_retryable)
        .adjust(|error, delay| {
            // `delay` is None once the retries are used up; keep that.
            delay.map(|computed| error.retry_after().unwrap_or(computed))
        })
        .notify(|error, delay| {
            retries += 1;
            if let AttemptError::Retryable { label, .. } = error {
                log::warn!(
                    "{} request failed ({label}); retry {retries} of {} in {} ms",
                    config.kind,
                    config.max_retries,
                    delay.as_millis()
                );
            }
        })
        .await;
    result.map_err(|error| error.into_provider_error(retries + 1))
}

/// Sends one request and classifies its outcome.
async fn send_once(
    config: &ProviderConfig,
    request: RequestBuilder,
) -> Result<String, AttemptError> {
    let response = request
        .timeout(config.timeout)
        .send()
        .await
        .map_err(|error| classify_transport_error(config, &error))?;
    let status = response.status();
    if status.is_success() {
        return read_success_body(config, response).await;
    }
    let retry_after = retry_after(response.headers());
    let body = read_error_body(response).await;
    Err(classify_status(config, status, retry_after, &body))
}

/// Reads a successful response of at most [`MAX_RESPONSE_BYTES`].
async fn read_success_body(
    config: &ProviderConfig,
    mut response: Response,
) -> Result<String, AttemptError> {
    let mut bytes = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|error| classify_transport_error(config, &error))?
    {
        if bytes.len() + chunk.len() > MAX_RESPONSE_BYTES {
            return Err(AttemptError::Failed(format!(
                "the {} provider's response is larger than {} MiB, so it was not read",
                config.kind,
                MAX_RESPONSE_BYTES / (1024 * 1024)
            )));
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// Reads at most [`MAX_ERROR_BODY_BYTES`] of an error response; a read error
/// only loses the message, so it yields what was read so far.
async fn read_error_body(mut response: Response) -> String {
    let mut bytes = Vec::new();
    while bytes.len() < MAX_ERROR_BODY_BYTES {
        match response.chunk().await {
            Ok(Some(chunk)) => bytes.extend_from_slice(&chunk),
            Ok(None) | Err(_) => break,
        }
    }
    bytes.truncate(MAX_ERROR_BODY_BYTES);
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Classifies an error that happened before a status code arrived, or while reading the body.
fn classify_transport_error(config: &ProviderConfig, error: &reqwest::Error) -> AttemptError {
    let kind = config.kind;
    let cause = root_cause(error);
    if error.is_builder() {
        return AttemptError::Fatal(format!(
            "the request to the {kind} provider could not be built: {cause}; check the base URL"
        ));
    }
    if error.is_redirect() {
        return AttemptError::Failed(format!("the {kind} provider redirected too often: {cause}"));
    }
    if error.is_timeout() {
        return AttemptError::Retryable {
            reason: format!(
                "the request to the {kind} provider timed out after {:?}",
                config.timeout
            ),
            label: "timeout".to_owned(),
            retry_after: None,
        };
    }
    let (reason, label) = if error.is_connect() {
        (
            format!("could not connect to the {kind} provider: {cause}"),
            "connection error",
        )
    } else {
        (
            format!("the request to the {kind} provider failed: {cause}"),
            "transport error",
        )
    };
    AttemptError::Retryable {
        reason,
        label: label.to_owned(),
        retry_after: None,
    }
}

/// Returns the innermost error message, which names the actual failure (for example
/// "Connection refused") where reqwest's own message is generic.
fn root_cause(error: &reqwest::Error) -> String {
    let mut cause: &dyn std::error::Error = error;
    while let Some(source) = cause.source() {
        cause = source;
    }
    truncate_chars(&cause.to_string(), MAX_QUOTED_CHARS)
}

/// Classifies a non-2xx response.
fn classify_status(
    config: &ProviderConfig,
    status: StatusCode,
    retry_after: Option<Duration>,
    body: &str,
) -> AttemptError {
    let kind = config.kind;
    let details = ErrorDetails::parse(body);
    if matches!(status.as_u16(), 400 | 403 | 404 | 422) && details.names_unknown_model() {
        return AttemptError::Fatal(format!(
            "model \"{}\" not found at the {kind} provider (HTTP {}): pass a valid aiConfig.model",
            config.model,
            status.as_u16()
        ));
    }
    match status.as_u16() {
        // The body is not quoted: some providers echo part of the rejected key.
        401 | 403 => AttemptError::Fatal(format!(
            "the {kind} provider key is invalid or not allowed (HTTP {}): pass a valid \
             aiConfig.apiKey or set {}",
            status.as_u16(),
            kind.api_key_env_var()
                .unwrap_or("the provider's key variable")
        )),
        404 => AttemptError::Fatal(format!(
            "the {kind} provider returned HTTP 404 for model \"{}\": check aiConfig.model and \
             aiConfig.baseURL{}",
            config.model,
            details.quote(config)
        )),
        429 if details.is_quota_exhausted() => AttemptError::Fatal(format!(
            "the {kind} provider account has no quota left (HTTP 429){}",
            details.quote(config)
        )),
        408 | 429 | 500..=599 => AttemptError::Retryable {
            reason: format!(
                "the {kind} provider returned HTTP {status}{}",
                details.quote(config)
            ),
            label: format!("HTTP {}", status.as_u16()),
            retry_after,
        },
        _ => AttemptError::Failed(format!(
            "the {kind} provider returned HTTP {status}{}",
            details.quote(config)
        )),
    }
}

/// The fields of a provider's JSON error body that classification uses.
#[derive(Debug, Default)]
struct ErrorDetails {
    message: Option<String>,
    code: Option<String>,
    error_type: Option<String>,
}

impl ErrorDetails {
    /// Reads `{"error": {"message", "code", "type"}}` (OpenAI, Anthropic,
    /// Zhipu), `{"error": "..."}` or a top-level `message`.
    fn parse(body: &str) -> Self {
        let Ok(value) = serde_json::from_str::<serde_json::Value>(body) else {
            return Self::default();
        };
        let error = value.get("error").unwrap_or(&value);
        let text = |field: &str| match error.get(field) {
            Some(serde_json::Value::String(text)) => Some(text.clone()),
            Some(serde_json::Value::Number(number)) => Some(number.to_string()),
            _ => None,
        };
        let message = match error {
            serde_json::Value::String(message) => Some(message.clone()),
            _ => text("message").or_else(|| value.get("message")?.as_str().map(str::to_owned)),
        };
        Self {
            message,
            code: text("code"),
            error_type: text("type"),
        }
    }

    fn names_unknown_model(&self) -> bool {
        if self.code.as_deref() == Some("model_not_found") {
            return true;
        }
        let Some(message) = &self.message else {
            return false;
        };
        let message = message.to_lowercase();
        let mentions_model = message.contains("model") || message.contains("模型");
        let not_found = [
            "not found",
            "does not exist",
            "not exist",
            "unknown",
            "不存在",
        ]
        .iter()
        .any(|phrase| message.contains(phrase));
        mentions_model && not_found
    }

    fn is_quota_exhausted(&self) -> bool {
        self.code.as_deref() == Some("insufficient_quota")
            || self.error_type.as_deref() == Some("insufficient_quota")
    }

    /// Formats the provider's message as a suffix `": ..."`, truncated, with the key removed.
    fn quote(&self, config: &ProviderConfig) -> String {
        let Some(message) = self
            .message
            .as_deref()
            .map(str::trim)
            .filter(|m| !m.is_empty())
        else {
            return String::new();
        };
        // Redact before truncating, so that a cut cannot leave part of the key.
        let mut message = message.to_owned();
        if let Some(key) = &config.api_key
            && !key.expose().is_empty()
        {
            message = message.replace(key.expose(), "<redacted>");
        }
        format!(": {}", truncate_chars(&message, MAX_QUOTED_CHARS))
    }
}

/// Parses `retry-after-ms` (milliseconds, sent by some OpenAI-compatible
/// servers) or `Retry-After` (seconds or an HTTP date), capped at [`MAX_RETRY_AFTER`].
pub(super) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let header = |name: &str| headers.get(name)?.to_str().ok().map(str::trim);
    let delay = if let Some(millis) = header("retry-after-ms").and_then(|v| v.parse::<f64>().ok()) {
        duration_from_secs(millis / 1000.0)
    } else {
        let value = header("retry-after")?;
        match value.parse::<f64>() {
            Ok(seconds) => duration_from_secs(seconds),
            Err(_) => until_http_date(value),
        }
    }?;
    Some(delay.min(MAX_RETRY_AFTER))
}

fn duration_from_secs(seconds: f64) -> Option<Duration> {
    Duration::try_from_secs_f64(seconds).ok()
}

/// Returns the time from now until an HTTP date such as
/// `Wed, 21 Oct 2015 07:28:00 GMT`, or zero if it has passed.
fn until_http_date(value: &str) -> Option<Duration> {
    let date = DateTime::parse_from_rfc2822(value).ok()?;
    let delta = date.with_timezone(&Utc) - Utc::now();
    Some(delta.to_std().unwrap_or(Duration::ZERO))
}

/// Cuts `text` to `max` characters, marking the cut with an ellipsis.
pub(super) fn truncate_chars(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(name: &'static str, value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        let value = HeaderValue::from_str(value).expect("test header value is valid");
        headers.insert(name, value);
        headers
    }

    fn test_config() -> ProviderConfig {
        let key = super::super::ApiKey::new("sk-test-key");
        ProviderConfig::new(super::super::ProviderKind::OpenAi, Some(key))
    }

    #[test]
    fn retry_after_reads_seconds() {
        let delay = retry_after(&headers("retry-after", "3"));
        assert_eq!(delay, Some(Duration::from_secs(3)));
    }

    #[test]
    fn retry_after_reads_milliseconds_header() {
        let delay = retry_after(&headers("retry-after-ms", "250"));
        assert_eq!(delay, Some(Duration::from_millis(250)));
    }

    #[test]
    fn retry_after_is_capped() {
        let delay = retry_after(&headers("retry-after", "3600"));
        assert_eq!(delay, Some(MAX_RETRY_AFTER));
    }

    #[test]
    fn retry_after_reads_http_date() {
        let date = (Utc::now() + chrono::Duration::seconds(30)).to_rfc2822();
        let date = date.replace("+0000", "GMT");
        let delay = retry_after(&headers("retry-after", &date)).expect("an HTTP date parses");
        assert!(delay > Duration::from_secs(25), "{delay:?}");
        assert!(delay <= Duration::from_secs(30), "{delay:?}");
    }

    #[test]
    fn retry_after_past_date_is_zero() {
        let delay = retry_after(&headers("retry-after", "Wed, 21 Oct 2015 07:28:00 GMT"));
        assert_eq!(delay, Some(Duration::ZERO));
    }

    #[test]
    fn retry_after_ignores_garbage() {
        assert_eq!(retry_after(&headers("retry-after", "soon")), None);
        assert_eq!(retry_after(&headers("retry-after", "-5")), None);
    }

    #[test]
    fn status_400_naming_model_is_fatal() {
        let body = r#"{"error":{"code":"1211","message":"模型不存在，请检查模型代码。"}}"#;
        let error = classify_status(&test_config(), StatusCode::BAD_REQUEST, None, body);
        assert!(matches!(error, AttemptError::Fatal(_)), "{error:?}");
    }

    #[test]
    fn status_400_other_fails_without_retry() {
        let body = r#"{"error":{"message":"context length exceeded"}}"#;
        let error = classify_status(&test_config(), StatusCode::BAD_REQUEST, None, body);
        let AttemptError::Failed(message) = error else {
            panic!("expected Failed, got {error:?}");
        };
        assert!(message.contains("400"), "{message}");
        assert!(message.contains("context length exceeded"), "{message}");
    }

    #[test]
    fn status_429_quota_is_fatal() {
        let body = r#"{"error":{"message":"You exceeded your quota","type":"insufficient_quota"}}"#;
        let error = classify_status(&test_config(), StatusCode::TOO_MANY_REQUESTS, None, body);
        assert!(matches!(error, AttemptError::Fatal(_)), "{error:?}");
    }

    #[test]
    fn status_401_does_not_quote_body() {
        let body = r#"{"error":{"message":"Incorrect API key provided: sk-test-key"}}"#;
        let error = classify_status(&test_config(), StatusCode::UNAUTHORIZED, None, body);
        let AttemptError::Fatal(message) = error else {
            panic!("expected Fatal, got {error:?}");
        };
        assert!(!message.contains("sk-test-key"), "{message}");
        assert!(message.contains("OPENAI_API_KEY"), "{message}");
    }

    #[test]
    fn quoted_message_is_truncated_and_redacted() {
        let long = "x".repeat(500);
        let body = format!(r#"{{"error":{{"message":"sk-test-key {long}"}}}}"#);
        let error = classify_status(&test_config(), StatusCode::BAD_GATEWAY, None, &body);
        let AttemptError::Retryable { reason, .. } = error else {
            panic!("expected Retryable, got {error:?}");
        };
        assert!(!reason.contains("sk-test-key"), "{reason}");
        assert!(reason.chars().count() < 300, "{reason}");
    }

    #[test]
    fn truncate_chars_keeps_short_text() {
        assert_eq!(truncate_chars("短文本", 5), "短文本");
        assert_eq!(truncate_chars("一二三四五六", 3), "一二三…");
    }
}
