//! OpenAI-compatible chat completions, used by `openai`, `openai-badger` and `zhipu`.
//!
//! The requests go through reqwest directly rather than async-openai. The
//! server shares one reqwest 0.13 client, while async-openai brings its own
//! client and retry loop. That loop hides the status code and the
//! `Retry-After` header that the retry policy in `retry.rs` needs.

use reqwest::{Client, RequestBuilder};
use serde_json::{Value, json};
use url::Url;

use super::{ApiKey, ProviderConfig, ProviderError};

/// Sampling temperature: low, so that repeated runs give similar keywords.
const TEMPERATURE: f64 = 0.2;

/// Returns `{base_url}/chat/completions`.
pub(super) fn endpoint(config: &ProviderConfig) -> Result<Url, ProviderError> {
    super::endpoint_url(config, "chat/completions")
}

/// Builds the JSON body of a chat completion that requests a JSON object.
// NOTE: `response_format` is OpenAI's JSON mode, and Zhipu accepts the same
// field. A gateway that does not may reject it with HTTP 400, which fails
// the request's items without a retry.
pub(super) fn request_body(config: &ProviderConfig, system: &str, user: &str) -> Value {
    let mut body = json!({
        "model": config.model,
        "messages": [
            { "role": "system", "content": system },
            { "role": "user", "content": user },
        ],
        "response_format": { "type": "json_object" },
    });
    if accepts_temperature(&config.model) {
        body["temperature"] = json!(TEMPERATURE);
    }
    body
}

/// Returns whether the model accepts a non-default temperature.
// NOTE: OpenAI's reasoning models (o1, o3, o4-mini, gpt-5) reject any
// temperature but the default. This prefix list is a guess, so it needs
// updating as model names change.
fn accepts_temperature(model: &str) -> bool {
    let model = model.to_ascii_lowercase();
    !["o1", "o3", "o4", "gpt-5"]
        .iter()
        .any(|prefix| model.starts_with(prefix))
}

/// Builds one attempt of the request; the key goes only into the `Authorization` header.
pub(super) fn build_request(
    http: &Client,
    endpoint: &Url,
    api_key: &ApiKey,
    body: &Value,
) -> RequestBuilder {
    // bearer_auth marks the header value as sensitive, so reqwest's Debug output hides it.
    http.post(endpoint.clone())
        .bearer_auth(api_key.expose())
        .json(body)
}

/// Reads the model's text from `choices[0].message.content`, given as a
/// string or, by some compatible servers, as a list of text parts.
pub(super) fn output_text(body: &str) -> Result<String, String> {
    let value: Value =
        serde_json::from_str(body).map_err(|_| "the response body is not JSON".to_owned())?;
    let content = value
        .get("choices")
        .and_then(|choices| choices.get(0))
        .and_then(|choice| choice.get("message"))
        .and_then(|message| message.get("content"));
    let text = match content {
        Some(Value::String(text)) => Some(text.clone()),
        Some(Value::Array(parts)) => Some(
            parts
                .iter()
                .filter_map(|part| part.get("text").and_then(Value::as_str))
                .collect::<String>(),
        ),
        _ => None,
    };
    match text {
        Some(text) if !text.trim().is_empty() => Ok(text),
        _ => Err("the response has no message content".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use serde_json::json;
    use wiremock::matchers::{body_partial_json, header, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    use super::super::test_support::{
        TEST_KEY, assert_key_only_in_auth_header, chat_response, items, remote_provider,
    };
    use super::super::{ItemOutcome, ProviderError, ProviderKind};
    use super::*;

    const TWO_RESULTS: &str = r#"{"results": [
        {"id": 1, "keywords": ["rust"], "topicTags": ["programming"], "contentTypes": ["text"],
         "isValueless": false, "summary": "About Rust."},
        {"id": 2, "keywords": [], "topicTags": [], "contentTypes": ["link"], "isValueless": true}
    ]}"#;

    async fn mount_ok(server: &MockServer, content: &str) {
        Mock::given(method("POST"))
            .and(path("/v1/chat/completions"))
            .respond_with(ResponseTemplate::new(200).set_body_json(chat_response(content)))
            .mount(server)
            .await;
    }

    async fn received_count(server: &MockServer) -> usize {
        server
            .received_requests()
            .await
            .map_or(0, |requests| requests.len())
    }

    #[tokio::test]
    async fn chunk_happy_path() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/v1/chat/completions"))
            .and(header(
                "authorization",
                format!("Bearer {TEST_KEY}").as_str(),
            ))
            .and(body_partial_json(json!({
                "model": "gpt-4o-mini",
                "response_format": { "type": "json_object" },
                "temperature": TEMPERATURE,
            })))
            .respond_with(ResponseTemplate::new(200).set_body_json(chat_response(TWO_RESULTS)))
            .expect(1)
            .mount(&server)
            .await;
        let provider = remote_provider(&server, ProviderKind::OpenAi, |_| {});

        let outcomes = provider
            .analyze_chunk(&items(&[1, 2]))
            .await
            .expect("the request succeeds");

        let ItemOutcome::Analyzed(first) = &outcomes[0].1 else {
            panic!("item 1 failed: {outcomes:?}");
        };
        assert_eq!(first.keywords, vec!["rust"]);
        assert!(matches!(&outcomes[1].1, ItemOutcome::Analyzed(a) if a.is_valueless));
        assert_eq!(outcomes.len(), 2);
    }

    #[tokio::test]
    async fn chunk_request_lists_items_with_ids() {
        let server = MockServer::start().await;
        mount_ok(&server, TWO_RESULTS).await;
        let provider = remote_provider(&server, ProviderKind::OpenAi, |_| {});

        provider
            .analyze_chunk(&items(&[1, 2]))
            .await
            .expect("the request succeeds");

        let requests = server.received_requests().await.unwrap_or_default();
        let body: Value = serde_json::from_slice(&requests[0].body).expect("the body is JSON");
        assert_eq!(body["messages"][0]["role"], "system");
        let user: Value =
            serde_json::from_str(body["messages"][1]["content"].as_str().unwrap_or(""))
                .expect("the user message is JSON");
        assert_eq!(user[0]["id"], 1);
        assert_eq!(user[1]["text"], "text of item 2");
    }

    #[tokio::test]
    async fn oversized_response_fails_items() {
        let server = MockServer::start().await;
        let huge = "x".repeat(5 * 1024 * 1024);
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(200).set_body_string(huge))
            .mount(&server)
            .await;
        let provider = remote_provider(&server, ProviderKind::OpenAi, |_| {});

        let result = provider.analyze_chunk(&items(&[1, 2])).await;

        let error = result.expect_err("a 5 MiB response is not read");
        assert!(matches!(error, ProviderError::Failed(_)), "{error:?}");
        assert!(error.to_string().contains("larger than"), "{error}");
    }

    #[tokio::test]
    async fn item_happy_path() {
        let server = MockServer::start().await;
        mount_ok(
            &server,
            r#"{"id": 5, "keywords": ["solo"], "contentTypes": ["question"]}"#,
        )
        .await;
        let provider = remote_provider(&server, ProviderKind::OpenAi, |_| {});

        let outcome = provider
            .analyze_item(&items(&[5])[0])
            .await
            .expect("the request succeeds");

        let ItemOutcome::Analyzed(analysis) = outcome else {
            panic!("the item failed: {outcome:?}");
        };
        assert_eq!(analysis.keywords, vec!["solo"]);
        assert_eq!(analysis.content_types, vec!["question"]);
    }

    #[tokio::test]
    async fn retry_after_429_is_honoured() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "1"))
            .up_to_n_times(1)
            .mount(&server)
            .await;
        mount_ok(&server, TWO_RESULTS).await;
        let provider = remote_provider(&server, ProviderKind::OpenAi, |_| {});

        let started = Instant::now();
        let outcomes = provider.analyze_chunk(&items(&[1, 2])).await;

        assert!(outcomes.is_ok(), "{outcomes:?}");
        assert!(
            started.elapsed() >= Duration::from_millis(950),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(received_count(&server).await, 2);
    }

    #[tokio::test]
    async fn server_errors_are_retried() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(500))
            .up_to_n_times(2)
            .mount(&server)
            .await;
        mount_ok(&server, TWO_RESULTS).await;
        let provider = remote_provider(&server, ProviderKind::OpenAi, |_| {});

        let outcomes = provider.analyze_chunk(&items(&[1, 2])).await;

        assert!(outcomes.is_ok(), "{outcomes:?}");
        assert_eq!(received_count(&server).await, 3);
    }

    #[tokio::test]
    async fn server_errors_exhaust_retries() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(503).set_body_json(json!({
                "error": { "message": "overloaded" }
            })))
            .mount(&server)
            .await;
        let provider = remote_provider(&server, ProviderKind::OpenAi, |config| {
            config.max_retries = 2;
        });

        let error = provider.analyze_chunk(&items(&[1])).await.err();

        let Some(ProviderError::Failed(message)) = error else {
            panic!("expected Failed, got {error:?}");
        };
        assert!(message.contains("503"), "{message}");
        assert!(message.contains("overloaded"), "{message}");
        assert!(message.contains("3 attempts"), "{message}");
        assert_eq!(received_count(&server).await, 3);
    }

    #[tokio::test]
    async fn unauthorized_is_fatal_without_retry() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(401).set_body_json(json!({
                "error": { "message": "Incorrect API key provided: sk-tes***key" }
            })))
            .mount(&server)
            .await;
        let provider = remote_provider(&server, ProviderKind::OpenAi, |_| {});

        let error = provider.analyze_chunk(&items(&[1, 2])).await.err();

        let Some(ProviderError::Fatal(message)) = error else {
            panic!("expected Fatal, got {error:?}");
        };
        assert!(message.contains("401"), "{message}");
        assert!(message.contains("OPENAI_API_KEY"), "{message}");
        assert!(!message.contains("sk-tes"), "{message}");
        assert_eq!(received_count(&server).await, 1);
    }

    #[tokio::test]
    async fn not_found_is_fatal_naming_model() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(404).set_body_json(json!({
                "error": { "message": "The model `gpt-9` does not exist", "code": "model_not_found" }
            })))
            .mount(&server)
            .await;
        let provider = remote_provider(&server, ProviderKind::OpenAi, |config| {
            config.model = "gpt-9".to_owned();
        });

        let error = provider.analyze_item(&items(&[1])[0]).await.err();

        let Some(ProviderError::Fatal(message)) = error else {
            panic!("expected Fatal, got {error:?}");
        };
        assert!(message.contains("gpt-9"), "{message}");
        assert_eq!(received_count(&server).await, 1);
    }

    #[tokio::test]
    async fn other_client_error_fails_without_retry() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(400).set_body_json(json!({
                "error": { "message": "maximum context length exceeded" }
            })))
            .mount(&server)
            .await;
        let provider = remote_provider(&server, ProviderKind::OpenAi, |_| {});

        let error = provider.analyze_chunk(&items(&[1])).await.err();

        assert!(matches!(error, Some(ProviderError::Failed(_))), "{error:?}");
        assert_eq!(received_count(&server).await, 1);
    }

    #[tokio::test]
    async fn timeout_fails_within_timeout() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(chat_response(TWO_RESULTS))
                    .set_delay(Duration::from_secs(5)),
            )
            .mount(&server)
            .await;
        let provider = remote_provider(&server, ProviderKind::OpenAi, |config| {
            config.timeout = Duration::from_millis(200);
            config.max_retries = 0;
        });

        let started = Instant::now();
        let error = provider.analyze_chunk(&items(&[1, 2])).await.err();

        let Some(ProviderError::Failed(message)) = error else {
            panic!("expected Failed, got {error:?}");
        };
        assert!(message.contains("timed out"), "{message}");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
    }

    #[tokio::test]
    async fn connection_refused_is_retried_then_fails() {
        // A port that was just free: nothing listens there once the listener drops.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("binding loopback works");
        let port = listener
            .local_addr()
            .expect("a bound socket has an address")
            .port();
        drop(listener);
        let server = MockServer::start().await;
        let provider = remote_provider(&server, ProviderKind::OpenAi, |config| {
            config.base_url = Url::parse(&format!("http://127.0.0.1:{port}/v1")).ok();
            config.max_retries = 1;
        });

        let error = provider.analyze_chunk(&items(&[1])).await.err();

        let Some(ProviderError::Failed(message)) = error else {
            panic!("expected Failed, got {error:?}");
        };
        assert!(message.contains("could not connect"), "{message}");
        assert!(message.contains("2 attempts"), "{message}");
    }

    #[tokio::test]
    async fn malformed_content_fails_items() {
        let server = MockServer::start().await;
        mount_ok(&server, "Sorry, I can't help with that.").await;
        let provider = remote_provider(&server, ProviderKind::OpenAi, |_| {});

        let outcomes = provider
            .analyze_chunk(&items(&[1, 2]))
            .await
            .expect("the request succeeds");

        let expected = ItemOutcome::Failed(crate::providers::parse::NOT_JSON.to_owned());
        assert_eq!(outcomes, vec![(1, expected.clone()), (2, expected)]);
        assert_eq!(received_count(&server).await, 1);
    }

    #[tokio::test]
    async fn malformed_body_fails_request() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(200).set_body_string("<html>gateway</html>"))
            .mount(&server)
            .await;
        let provider = remote_provider(&server, ProviderKind::OpenAi, |_| {});

        let error = provider.analyze_chunk(&items(&[1])).await.err();

        let Some(ProviderError::Failed(message)) = error else {
            panic!("expected Failed, got {error:?}");
        };
        assert!(message.contains("not JSON"), "{message}");
        assert!(!message.contains("gateway"), "{message}");
    }

    #[tokio::test]
    async fn dropping_future_cancels_promptly() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(chat_response(TWO_RESULTS))
                    .set_delay(Duration::from_secs(10)),
            )
            .mount(&server)
            .await;
        let provider = remote_provider(&server, ProviderKind::OpenAi, |config| {
            config.timeout = Duration::from_secs(30);
        });
        let chunk = items(&[1, 2]);

        let started = Instant::now();
        let result =
            tokio::time::timeout(Duration::from_millis(200), provider.analyze_chunk(&chunk)).await;

        assert!(result.is_err(), "the request finished: {result:?}");
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
    }

    #[tokio::test]
    async fn dropping_future_cancels_backoff() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "30"))
            .mount(&server)
            .await;
        let provider = remote_provider(&server, ProviderKind::OpenAi, |_| {});
        let chunk = items(&[1]);

        let started = Instant::now();
        let result =
            tokio::time::timeout(Duration::from_millis(300), provider.analyze_chunk(&chunk)).await;

        assert!(result.is_err(), "the request finished: {result:?}");
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(received_count(&server).await, 1);
    }

    #[tokio::test]
    async fn key_only_in_auth_header() {
        let server = MockServer::start().await;
        mount_ok(&server, TWO_RESULTS).await;
        let provider = remote_provider(&server, ProviderKind::OpenAiBadger, |_| {});

        provider
            .analyze_chunk(&items(&[1, 2]))
            .await
            .expect("the request succeeds");

        assert_key_only_in_auth_header(&server, "authorization").await;
    }

    #[tokio::test]
    async fn zhipu_uses_base_url_path() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/api/paas/v4/chat/completions"))
            .and(body_partial_json(json!({ "model": "glm-4-flash" })))
            .respond_with(ResponseTemplate::new(200).set_body_json(chat_response(TWO_RESULTS)))
            .expect(1)
            .mount(&server)
            .await;
        let provider = remote_provider(&server, ProviderKind::Zhipu, |config| {
            let base = format!("{}/api/paas/v4/", server.uri());
            config.base_url = Url::parse(&base).ok();
        });

        let outcomes = provider.analyze_chunk(&items(&[1, 2])).await;

        assert!(outcomes.is_ok(), "{outcomes:?}");
    }

    #[test]
    fn output_text_reads_content_parts() {
        let body = json!({
            "choices": [{ "message": { "content": [{ "type": "text", "text": "{\"id\": 1}" }] } }]
        });
        assert_eq!(output_text(&body.to_string()), Ok("{\"id\": 1}".to_owned()));
    }

    #[test]
    fn output_text_rejects_empty_content() {
        let body = json!({ "choices": [{ "message": { "content": null } }] });
        assert!(output_text(&body.to_string()).is_err());
    }

    #[test]
    fn reasoning_models_get_no_temperature() {
        assert!(!accepts_temperature("o3-mini"));
        assert!(accepts_temperature("gpt-4o-mini"));
    }
}
