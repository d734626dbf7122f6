//! The blocking client against a local wiremock server.

mod common;

use batch_client::blocking::Client;
use batch_client::types::StartBatchRequest;
use serde_json::json;
use wiremock::matchers::{header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use common::{API_KEY, BATCH_ID};

/// Starts a mock server on a runtime that the test keeps, so the blocking
/// client's own runtime is never nested inside it.
fn start_server(mocks: Vec<Mock>) -> (tokio::runtime::Runtime, MockServer) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("test runtime starts");
    let server = runtime.block_on(async {
        let server = MockServer::start().await;
        for mock in mocks {
            mock.mount(&server).await;
        }
        server
    });
    (runtime, server)
}

#[test]
fn blocking_get_decodes_data() {
    let mock = Mock::given(method("GET"))
        .and(path("/api/external/ai-batch/status"))
        .and(header("x-api-key", API_KEY))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(common::envelope(common::global_status())),
        )
        .expect(1);
    let (runtime, server) = start_server(vec![mock]);

    let client = Client::new(server.uri(), API_KEY).expect("valid settings");
    let status = client.get_global_status().expect("status succeeds");
    assert_eq!(status.current_batch_id.as_deref(), Some(BATCH_ID));

    runtime.block_on(server.verify());
}

#[test]
fn blocking_conflict_maps_like_async() {
    let body = common::error_body(
        "已有批处理任务正在运行",
        None,
        Some(json!({"currentBatchId": BATCH_ID})),
    );
    let mock = Mock::given(method("POST"))
        .and(path("/api/external/ai-batch/start"))
        .respond_with(ResponseTemplate::new(409).set_body_json(body));
    let (_runtime, server) = start_server(vec![mock]);

    let client = Client::new(server.uri(), API_KEY).expect("valid settings");
    let error = client
        .start_batch(&StartBatchRequest::default())
        .expect_err("409 is an error");
    assert!(error.is_conflict(), "{error:?}");
    assert_eq!(error.current_batch_id(), Some(BATCH_ID));
}

#[test]
fn blocking_stream_iterates_lines() {
    let lines = format!(
        "{}\n{}\n{}\n",
        common::batch_result(1),
        common::batch_result(2),
        common::batch_result(3)
    );
    let mock = Mock::given(method("GET"))
        .and(path(format!(
            "/api/external/ai-batch/batches/{BATCH_ID}/results"
        )))
        .and(query_param("format", "jsonl"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(lines, "application/x-ndjson"));
    let (_runtime, server) = start_server(vec![mock]);

    let client = Client::new(server.uri(), API_KEY).expect("valid settings");
    let ids: Vec<i64> = client
        .stream_batch_results(BATCH_ID)
        .expect("stream opens")
        .map(|result| result.expect("line decodes").item_id)
        .collect();
    assert_eq!(ids, vec![1, 2, 3]);
}

#[test]
fn blocking_debug_redacts_api_key() {
    let client = Client::new("http://127.0.0.1:8080", "secret-key").expect("valid settings");
    let text = format!("{client:?}");
    assert!(!text.contains("secret-key"), "{text}");
    assert!(text.contains("<redacted>"), "{text}");
}
