//! Helpers shared by the provider tests: configurations aimed at a local
//! wiremock server and canned provider responses.

use std::time::Duration;

use serde_json::{Value, json};
use url::Url;
use wiremock::MockServer;

use super::{ApiKey, Provider, ProviderConfig, ProviderItem, ProviderKind};

/// The key every test provider sends; tests check where it appears.
pub(super) const TEST_KEY: &str = "sk-test-4f2a9c0e-never-in-a-body";

/// Builds a provider of `kind` aimed at `server`, with fast retries, after `tweak` adjusts the configuration.
pub(super) fn remote_provider(
    server: &MockServer,
    kind: ProviderKind,
    tweak: impl FnOnce(&mut ProviderConfig),
) -> Provider {
    let mut config = ProviderConfig::new(kind, Some(ApiKey::new(TEST_KEY)));
    let base = match kind {
        ProviderKind::Anthropic => server.uri(),
        _ => format!("{}/v1", server.uri()),
    };
    config.base_url = Some(Url::parse(&base).expect("wiremock's URI is a valid URL"));
    config.timeout = Duration::from_secs(5);
    config.max_retries = 3;
    config.retry_base_delay = Duration::from_millis(10);
    tweak(&mut config);
    Provider::new(config, reqwest::Client::new()).expect("the test configuration is valid")
}

/// Builds items with the given ids and the text "text of item {id}".
pub(super) fn items(ids: &[i64]) -> Vec<ProviderItem> {
    ids.iter()
        .map(|id| ProviderItem {
            id: *id,
            content: format!("text of item {id}"),
        })
        .collect()
}

/// Returns a chat completion response whose message content is `content`.
pub(super) fn chat_response(content: &str) -> Value {
    json!({
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "choices": [{
            "index": 0,
            "message": { "role": "assistant", "content": content },
            "finish_reason": "stop",
        }],
    })
}

/// Returns a Messages API response whose one text block is `text`.
pub(super) fn anthropic_response(text: &str) -> Value {
    json!({
        "id": "msg_test",
        "type": "message",
        "role": "assistant",
        "content": [{ "type": "text", "text": text }],
        "stop_reason": "end_turn",
    })
}

/// Asserts that every request the server received carries [`TEST_KEY`] in
/// `auth_header` and nowhere else: not in the URL, the body or another header.
pub(super) async fn assert_key_only_in_auth_header(server: &MockServer, auth_header: &str) {
    let requests = server.received_requests().await.unwrap_or_default();
    assert!(!requests.is_empty(), "the server received no request");
    for request in requests {
        let body = String::from_utf8_lossy(&request.body);
        assert!(!body.contains(TEST_KEY), "the key is in the body");
        assert!(
            !request.url.as_str().contains(TEST_KEY),
            "the key is in the URL"
        );
        for (name, value) in &request.headers {
            let value = String::from_utf8_lossy(value.as_bytes());
            if name.as_str() == auth_header {
                assert!(value.contains(TEST_KEY), "the key is missing from {name}");
            } else {
                assert!(!value.contains(TEST_KEY), "the key is in header {name}");
            }
        }
    }
}
