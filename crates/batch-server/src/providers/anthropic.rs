//! Anthropic's Messages API.

use reqwest::header::HeaderValue;
use reqwest::{Client, RequestBuilder};
use serde_json::{Value, json};
use url::Url;

use super::{ApiKey, ProviderConfig, ProviderError};

/// The API version header value this client's request and response shapes follow.
const API_VERSION: &str = "2023-06-01";

/// Sampling temperature: low, so that repeated runs give similar keywords.
const TEMPERATURE: f64 = 0.2;

/// Output tokens allowed for the JSON wrapper of the results.
const BASE_MAX_TOKENS: usize = 512;

/// Output tokens added for each item in the request.
const MAX_TOKENS_PER_ITEM: usize = 400;

/// The maximum `max_tokens` sent. Claude Haiku 4.5, the default model,
/// accepts up to 64K output tokens, so this only binds past 40 items.
// NOTE: older models with lower output limits reject a large `max_tokens`
// with HTTP 400, which fails that request's items.
const MAX_TOKENS_CAP: usize = 16_384;

/// Returns `{base_url}/v1/messages`, or `{base_url}/messages` when the base URL already ends in `/v1`.
pub(super) fn endpoint(config: &ProviderConfig) -> Result<Url, ProviderError> {
    let has_version = config
        .base_url
        .as_ref()
        .is_some_and(|base| base.path().trim_end_matches('/').ends_with("/v1"));
    let path = if has_version {
        "messages"
    } else {
        "v1/messages"
    };
    super::endpoint_url(config, path)
}

/// Builds the JSON body: the instructions as `system`, the items as one user message.
pub(super) fn request_body(
    config: &ProviderConfig,
    system: &str,
    user: &str,
    item_count: usize,
) -> Value {
    json!({
        "model": config.model,
        "max_tokens": max_tokens(item_count),
        "temperature": TEMPERATURE,
        "system": system,
        "messages": [{ "role": "user", "content": user }],
    })
}

fn max_tokens(item_count: usize) -> usize {
    let wanted = BASE_MAX_TOKENS.saturating_add(MAX_TOKENS_PER_ITEM.saturating_mul(item_count));
    wanted.min(MAX_TOKENS_CAP)
}

/// Builds one attempt of the request; the key goes only into the `x-api-key` header.
pub(super) fn build_request(
    http: &Client,
    endpoint: &Url,
    api_key: &ApiKey,
    body: &Value,
) -> RequestBuilder {
    let request = http
        .post(endpoint.clone())
        .header("anthropic-version", API_VERSION)
        .json(body);
    match HeaderValue::from_str(api_key.expose()) {
        Ok(mut value) => {
            value.set_sensitive(true);
            request.header("x-api-key", value)
        }
        // Provider::new rejects such keys. Without the header the provider returns 401.
        Err(_) => request,
    }
}

/// Joins the text blocks of the response's `content`.
pub(super) fn output_text(body: &str) -> Result<String, String> {
    let value: Value =
        serde_json::from_str(body).map_err(|_| "the response body is not JSON".to_owned())?;
    let Some(blocks) = value.get("content").and_then(Value::as_array) else {
        return Err("the response has no content".to_owned());
    };
    let text: String = blocks
        .iter()
        .filter(|block| block.get("type").and_then(Value::as_str) == Some("text"))
        .filter_map(|block| block.get("text").and_then(Value::as_str))
        .collect();
    if text.trim().is_empty() {
        return Err("the response has no text content".to_owned());
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use wiremock::matchers::{body_partial_json, header, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    use super::super::test_support::{
        TEST_KEY, anthropic_response, assert_key_only_in_auth_header, items, remote_provider,
    };
    use super::super::{ItemOutcome, ProviderError, ProviderKind};
    use super::*;

    const RESULTS: &str = "Here you go:\n```json\n[{\"id\": 1, \"keywords\": [\"claude\"]}, \
                           {\"id\": 2, \"keywords\": [\"haiku\"]}]\n```";

    #[tokio::test]
    async fn chunk_happy_path() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/v1/messages"))
            .and(header("x-api-key", TEST_KEY))
            .and(header("anthropic-version", API_VERSION))
            .and(body_partial_json(json!({
                "model": "claude-haiku-4-5",
                "max_tokens": max_tokens(2),
                "messages": [{ "role": "user" }],
            })))
            .respond_with(ResponseTemplate::new(200).set_body_json(anthropic_response(RESULTS)))
            .expect(1)
            .mount(&server)
            .await;
        let provider = remote_provider(&server, ProviderKind::Anthropic, |_| {});

        let outcomes = provider
            .analyze_chunk(&items(&[1, 2]))
            .await
            .expect("the request succeeds");

        assert!(matches!(&outcomes[0].1, ItemOutcome::Analyzed(a) if a.keywords == ["claude"]));
        assert!(matches!(&outcomes[1].1, ItemOutcome::Analyzed(a) if a.keywords == ["haiku"]));
    }

    #[tokio::test]
    async fn request_sends_system_prompt() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(200).set_body_json(anthropic_response(RESULTS)))
            .mount(&server)
            .await;
        let provider = remote_provider(&server, ProviderKind::Anthropic, |config| {
            config.system_prompt = Some("Focus on product names.".to_owned());
        });

        provider
            .analyze_chunk(&items(&[1, 2]))
            .await
            .expect("the request succeeds");

        let requests = server.received_requests().await.unwrap_or_default();
        let body: Value = serde_json::from_slice(&requests[0].body).expect("the body is JSON");
        let system = body["system"].as_str().unwrap_or_default();
        assert!(system.starts_with("Focus on product names."), "{system}");
        assert_key_only_in_auth_header(&server, "x-api-key").await;
    }

    #[tokio::test]
    async fn unauthorized_is_fatal() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(401).set_body_json(json!({
                "type": "error",
                "error": { "type": "authentication_error", "message": "invalid x-api-key" }
            })))
            .mount(&server)
            .await;
        let provider = remote_provider(&server, ProviderKind::Anthropic, |_| {});

        let error = provider.analyze_item(&items(&[1])[0]).await.err();

        let Some(ProviderError::Fatal(message)) = error else {
            panic!("expected Fatal, got {error:?}");
        };
        assert!(message.contains("ANTHROPIC_API_KEY"), "{message}");
        let received = server.received_requests().await.unwrap_or_default();
        assert_eq!(received.len(), 1);
    }

    #[tokio::test]
    async fn overloaded_is_retried() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(529))
            .up_to_n_times(1)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(200).set_body_json(anthropic_response(RESULTS)))
            .mount(&server)
            .await;
        let provider = remote_provider(&server, ProviderKind::Anthropic, |_| {});

        let outcomes = provider.analyze_chunk(&items(&[1, 2])).await;

        assert!(outcomes.is_ok(), "{outcomes:?}");
    }

    #[test]
    fn endpoint_accepts_base_with_version() {
        let mut config = ProviderConfig::new(ProviderKind::Anthropic, None);
        config.base_url = Url::parse("http://127.0.0.1:8080/v1/").ok();
        let url = endpoint(&config).map(String::from);
        assert_eq!(
            url.ok().as_deref(),
            Some("http://127.0.0.1:8080/v1/messages")
        );
    }

    #[test]
    fn endpoint_defaults_to_anthropic() {
        let config = ProviderConfig::new(ProviderKind::Anthropic, None);
        let url = endpoint(&config).map(String::from);
        assert_eq!(
            url.ok().as_deref(),
            Some("https://api.anthropic.com/v1/messages")
        );
    }

    #[test]
    fn max_tokens_is_capped() {
        assert_eq!(max_tokens(1), 912);
        assert_eq!(max_tokens(100), MAX_TOKENS_CAP);
    }

    #[test]
    fn output_text_skips_other_blocks() {
        let body = json!({
            "content": [{ "type": "thinking", "thinking": "..." }, { "type": "text", "text": "{}" }]
        });
        assert_eq!(output_text(&body.to_string()), Ok("{}".to_owned()));
    }
}
