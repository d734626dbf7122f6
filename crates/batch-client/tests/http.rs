//! The async client against a local wiremock server: request shapes, success
//! decoding, error mapping and retries.

mod common;

use std::net::TcpListener as StdTcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use batch_client::types::{
    AnalysisState, BatchStatus, ClearRequest, NewItem, ResetRequest, StartBatchRequest,
    UNAUTHORIZED_MESSAGE, UpsertItemsRequest,
};
use batch_client::{
    Client, Error, Language, ListBatchResultsQuery, ListBatchesQuery, ListItemsQuery,
    MAX_DECODE_BODY_CHARS,
};
use futures_util::StreamExt;
use reqwest::StatusCode;
use serde_json::json;
use wiremock::matchers::{body_json, header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use common::{API_KEY, BATCH_ID};

fn client(server: &MockServer) -> Client {
    Client::new(server.uri(), API_KEY).expect("valid settings")
}

/// Mounts a mock that responds to `verb route` (with the API key) with `status` and `body`.
async fn mount_response(
    server: &MockServer,
    verb: &str,
    route: &str,
    status: u16,
    body: serde_json::Value,
) {
    Mock::given(method(verb))
        .and(path(route))
        .and(header("x-api-key", API_KEY))
        .respond_with(ResponseTemplate::new(status).set_body_json(body))
        .expect(1)
        .mount(server)
        .await;
}

// ---- success paths: one test per operation ----

#[tokio::test]
async fn preview_clear_decodes_preview() {
    let server = MockServer::start().await;
    mount_response(
        &server,
        "GET",
        "/api/external/ai-batch/clear",
        200,
        common::envelope(common::clear_preview()),
    )
    .await;

    let preview = client(&server)
        .preview_clear()
        .await
        .expect("preview succeeds");
    assert!(preview.needs_clear);
    assert_eq!(preview.processing_records.tasks[0].batch_id, BATCH_ID);
}

#[tokio::test]
async fn clear_batches_sends_expected_ids() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/external/ai-batch/clear"))
        .and(body_json(json!({"expectedBatchIds": [BATCH_ID]})))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(common::envelope(common::clear_result())),
        )
        .expect(1)
        .mount(&server)
        .await;

    let request = ClearRequest {
        expected_batch_ids: Some(vec![BATCH_ID.into()]),
    };
    let result = client(&server)
        .clear_batches(&request)
        .await
        .expect("clear succeeds");
    assert_eq!(result.released_items, 700);
    assert_eq!(result.cleared_tasks.processing_records, 1);
}

#[tokio::test]
async fn clear_batches_sends_empty_object() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/external/ai-batch/clear"))
        .and(body_json(json!({})))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(common::envelope(common::clear_result())),
        )
        .expect(1)
        .mount(&server)
        .await;

    client(&server)
        .clear_batches(&ClearRequest::default())
        .await
        .expect("clear succeeds");
}

#[tokio::test]
async fn reset_batches_sends_force() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/external/ai-batch/reset"))
        .and(body_json(json!({"force": true})))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(common::envelope(common::reset_result())),
        )
        .expect(1)
        .mount(&server)
        .await;

    let result = client(&server)
        .reset_batches(&ResetRequest { force: true })
        .await
        .expect("reset succeeds");
    assert_eq!(result.mode, "force");
    assert_eq!(result.stopped_workers, 1);
}

#[tokio::test]
async fn start_batch_sends_request_and_decodes_201() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/external/ai-batch/start"))
        .and(header("x-api-key", API_KEY))
        .and(header("content-type", "application/json"))
        .and(body_json(json!({"listIds": ["list-1"], "batchSize": 20})))
        .respond_with(
            ResponseTemplate::new(201).set_body_json(common::envelope(common::start_data())),
        )
        .expect(1)
        .mount(&server)
        .await;

    let request = StartBatchRequest {
        list_ids: Some(vec!["list-1".into()]),
        batch_size: Some(20),
        ..StartBatchRequest::default()
    };
    let started = client(&server)
        .start_batch(&request)
        .await
        .expect("start succeeds");
    assert_eq!(started.batch_id, BATCH_ID);
    assert_eq!(started.status, BatchStatus::Processing);
    assert_eq!(started.estimated_batches, 71);
}

#[tokio::test]
async fn continue_batch_posts_to_continue() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/external/ai-batch/continue"))
        .and(body_json(json!({"previousBatchId": "batch_1_aaaaaa"})))
        .respond_with(
            ResponseTemplate::new(201).set_body_json(common::envelope(common::start_data())),
        )
        .expect(1)
        .mount(&server)
        .await;

    let request = StartBatchRequest {
        previous_batch_id: Some("batch_1_aaaaaa".into()),
        ..StartBatchRequest::default()
    };
    let started = client(&server)
        .continue_batch(&request)
        .await
        .expect("continue succeeds");
    assert_eq!(started.batch_id, BATCH_ID);
}

#[tokio::test]
async fn get_global_status_decodes_current_batch() {
    let server = MockServer::start().await;
    mount_response(
        &server,
        "GET",
        "/api/external/ai-batch/status",
        200,
        common::envelope(common::global_status()),
    )
    .await;

    let status = client(&server)
        .get_global_status()
        .await
        .expect("status succeeds");
    assert!(status.has_global_task);
    assert_eq!(status.current_batch_id.as_deref(), Some(BATCH_ID));
    assert_eq!(status.pending_items, 700);
    let current = status.current_batch.expect("current batch present");
    assert_eq!(current.progress.processed, 10);
}

#[tokio::test]
async fn get_batch_status_puts_id_in_path() {
    let server = MockServer::start().await;
    let route = format!("/api/external/ai-batch/status/{BATCH_ID}");
    mount_response(
        &server,
        "GET",
        &route,
        200,
        common::envelope(common::batch_info()),
    )
    .await;

    let batch = client(&server)
        .get_batch_status(BATCH_ID)
        .await
        .expect("status succeeds");
    assert_eq!(batch.batch_id, BATCH_ID);
    assert!(batch.is_active);
}

#[tokio::test]
async fn list_batches_sends_query() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/external/ai-batch/batches"))
        .and(query_param("limit", "5"))
        .and(query_param("cursor", "c1"))
        .and(query_param("status", "completed"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(common::envelope(common::page(
                vec![common::batch_info()],
                Some("c2"),
            ))),
        )
        .expect(1)
        .mount(&server)
        .await;

    let query = ListBatchesQuery {
        limit: Some(5),
        cursor: Some("c1".into()),
        status: Some(BatchStatus::Completed),
    };
    let page = client(&server)
        .list_batches(&query)
        .await
        .expect("listing succeeds");
    assert_eq!(page.entries.len(), 1);
    assert_eq!(page.next_cursor.as_deref(), Some("c2"));
}

#[tokio::test]
async fn list_batches_omits_unset_query() {
    let server = MockServer::start().await;
    mount_response(
        &server,
        "GET",
        "/api/external/ai-batch/batches",
        200,
        common::envelope(common::page(vec![], None)),
    )
    .await;

    client(&server)
        .list_batches(&ListBatchesQuery::default())
        .await
        .expect("listing succeeds");

    let requests = server.received_requests().await.expect("recording is on");
    assert_eq!(requests[0].url.query(), None);
}

#[tokio::test]
async fn cancel_batch_posts_without_body() {
    let server = MockServer::start().await;
    let route = format!("/api/external/ai-batch/batches/{BATCH_ID}/cancel");
    mount_response(
        &server,
        "POST",
        &route,
        200,
        common::envelope(common::cancel_data()),
    )
    .await;

    let cancel = client(&server)
        .cancel_batch(BATCH_ID)
        .await
        .expect("cancel succeeds");
    assert!(cancel.cancelled);
    assert_eq!(cancel.status, BatchStatus::Cancelled);

    let requests = server.received_requests().await.expect("recording is on");
    assert!(requests[0].body.is_empty());
}

#[tokio::test]
async fn list_batch_results_sends_paging() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(format!(
            "/api/external/ai-batch/batches/{BATCH_ID}/results"
        )))
        .and(query_param("limit", "2"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(common::envelope(common::page(
                vec![common::batch_result(1), common::batch_result(2)],
                None,
            ))),
        )
        .expect(1)
        .mount(&server)
        .await;

    let query = ListBatchResultsQuery {
        limit: Some(2),
        cursor: None,
    };
    let page = client(&server)
        .list_batch_results(BATCH_ID, &query)
        .await
        .expect("listing succeeds");
    assert_eq!(page.entries[1].external_id, "tw-2");
    assert_eq!(page.entries[0].state, AnalysisState::Analyzed);
}

#[tokio::test]
async fn stream_batch_results_reads_lines() {
    let server = MockServer::start().await;
    let lines = format!("{}\n{}\n", common::batch_result(1), common::batch_result(2));
    Mock::given(method("GET"))
        .and(path(format!(
            "/api/external/ai-batch/batches/{BATCH_ID}/results"
        )))
        .and(query_param("format", "jsonl"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(lines, "application/x-ndjson"))
        .expect(1)
        .mount(&server)
        .await;

    let stream = client(&server)
        .stream_batch_results(BATCH_ID)
        .await
        .expect("stream opens");
    let results: Vec<_> = stream.collect().await;
    assert_eq!(results.len(), 2);
    let second = results[1].as_ref().expect("line decodes");
    assert_eq!(second.item_id, 2);
}

#[tokio::test]
async fn stream_batch_results_maps_404_before_streaming() {
    let server = MockServer::start().await;
    let route = format!("/api/external/ai-batch/batches/{BATCH_ID}/results");
    mount_response(
        &server,
        "GET",
        &route,
        404,
        common::error_body("批次不存在", None, None),
    )
    .await;

    let result = client(&server).stream_batch_results(BATCH_ID).await;
    assert!(matches!(result, Err(Error::NotFound(_))));
}

#[tokio::test]
async fn upsert_items_sends_items() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/external/items"))
        .and(body_json(json!({"items": [
            {"externalId": "tw-1", "content": "hello", "username": "alice", "listId": null}
        ]})))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(common::envelope(json!({"inserted": 1, "updated": 0}))),
        )
        .expect(1)
        .mount(&server)
        .await;

    let request = UpsertItemsRequest {
        items: vec![NewItem {
            external_id: "tw-1".into(),
            content: "hello".into(),
            username: Some("alice".into()),
            list_id: None,
            published_at: None,
        }],
    };
    let counts = client(&server)
        .upsert_items(&request)
        .await
        .expect("upsert succeeds");
    assert_eq!(counts.inserted, 1);
    assert_eq!(counts.updated, 0);
}

#[tokio::test]
async fn list_items_sends_filters() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/external/items"))
        .and(query_param("state", "failed"))
        .and(query_param("listId", "list-1"))
        .and(query_param("username", "alice"))
        .and(query_param("batchId", BATCH_ID))
        .and(query_param("limit", "10"))
        .and(query_param("cursor", "c1"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(common::envelope(common::page(vec![common::item(3)], None))),
        )
        .expect(1)
        .mount(&server)
        .await;

    let query = ListItemsQuery {
        state: Some(AnalysisState::Failed),
        list_id: Some("list-1".into()),
        username: Some("alice".into()),
        batch_id: Some(BATCH_ID.into()),
        limit: Some(10),
        cursor: Some("c1".into()),
    };
    let page = client(&server)
        .list_items(&query)
        .await
        .expect("listing succeeds");
    assert_eq!(page.entries[0].id, 3);
}

#[tokio::test]
async fn check_health_reports_both_probes_without_key() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/healthz"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"status": "ok"})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/readyz"))
        .respond_with(ResponseTemplate::new(503).set_body_json(json!({"status": "unavailable"})))
        .expect(1)
        .mount(&server)
        .await;

    let health = client(&server)
        .check_health()
        .await
        .expect("probes respond");
    assert!(health.is_live());
    assert!(!health.is_ready());
    assert_eq!(health.live.status_text(), Some("ok"));
    assert_eq!(health.ready.status, StatusCode::SERVICE_UNAVAILABLE);

    let requests = server.received_requests().await.expect("recording is on");
    for request in requests {
        assert!(
            request.headers.get("x-api-key").is_none(),
            "key sent to {}",
            request.url
        );
    }
}

// ---- headers and base URL ----

#[tokio::test]
async fn language_sets_accept_language() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/external/ai-batch/status"))
        .and(header("accept-language", "en"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(common::envelope(common::global_status())),
        )
        .expect(1)
        .mount(&server)
        .await;

    let client = Client::builder(server.uri(), API_KEY)
        .language(Language::English)
        .build()
        .expect("valid settings");
    client.get_global_status().await.expect("status succeeds");
}

#[tokio::test]
async fn default_sends_no_accept_language() {
    let server = MockServer::start().await;
    mount_response(
        &server,
        "GET",
        "/api/external/ai-batch/status",
        200,
        common::envelope(common::global_status()),
    )
    .await;

    client(&server)
        .get_global_status()
        .await
        .expect("status succeeds");
    let requests = server.received_requests().await.expect("recording is on");
    assert!(requests[0].headers.get("accept-language").is_none());
}

#[tokio::test]
async fn base_url_path_prefix_is_kept() {
    let server = MockServer::start().await;
    mount_response(
        &server,
        "GET",
        "/batch/api/external/ai-batch/status",
        200,
        common::envelope(common::global_status()),
    )
    .await;

    let client = Client::new(format!("{}/batch", server.uri()), API_KEY).expect("valid settings");
    client.get_global_status().await.expect("status succeeds");
}

#[tokio::test]
async fn caller_http_client_is_used() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/external/ai-batch/status"))
        .and(header("user-agent", "caller-agent"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(common::envelope(common::global_status())),
        )
        .expect(1)
        .mount(&server)
        .await;

    let http = reqwest::Client::builder()
        .user_agent("caller-agent")
        .build()
        .expect("reqwest client builds");
    let client = Client::builder(server.uri(), API_KEY)
        .http_client(http)
        .build()
        .expect("valid settings");
    client.get_global_status().await.expect("status succeeds");
}

// ---- error mapping ----

#[tokio::test]
async fn status_401_maps_to_unauthorized() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/external/ai-batch/status"))
        .respond_with(
            ResponseTemplate::new(401).set_body_json(json!({"error": UNAUTHORIZED_MESSAGE})),
        )
        .expect(1)
        .mount(&server)
        .await;

    let error = Client::new(server.uri(), "wrong-key")
        .expect("valid settings")
        .get_global_status()
        .await
        .expect_err("401 is an error");
    assert!(error.is_unauthorized(), "{error:?}");
    assert_eq!(error.status(), Some(StatusCode::UNAUTHORIZED));
    assert_eq!(error.message(), Some(UNAUTHORIZED_MESSAGE));
    assert!(error.error_body().is_none());
}

#[tokio::test]
async fn status_409_exposes_current_batch_id() {
    let server = MockServer::start().await;
    let body = common::error_body(
        "已有批处理任务正在运行",
        Some(json!("Wait for it to finish or cancel it")),
        Some(json!({"currentBatchId": BATCH_ID})),
    );
    mount_response(&server, "POST", "/api/external/ai-batch/start", 409, body).await;

    let error = client(&server)
        .start_batch(&StartBatchRequest::default())
        .await
        .expect_err("409 is an error");
    assert!(error.is_conflict(), "{error:?}");
    assert_eq!(error.status(), Some(StatusCode::CONFLICT));
    assert_eq!(error.current_batch_id(), Some(BATCH_ID));
    assert_eq!(error.details(), Some("Wait for it to finish or cancel it"));
    assert!(error.to_string().contains(BATCH_ID), "{error}");
}

#[tokio::test]
async fn status_409_on_clear_exposes_preview() {
    let server = MockServer::start().await;
    let body = common::error_body("批次已变化", None, Some(common::clear_preview()));
    mount_response(&server, "POST", "/api/external/ai-batch/clear", 409, body).await;

    let request = ClearRequest {
        expected_batch_ids: Some(vec!["batch_1_zzzzzz".into()]),
    };
    let error = client(&server)
        .clear_batches(&request)
        .await
        .expect_err("409 is an error");
    let preview = error.clear_preview().expect("preview in data");
    assert_eq!(preview.processing_records.count, 1);
    assert_eq!(error.current_batch_id(), None);
}

#[tokio::test]
async fn status_404_on_start_exposes_remaining_items() {
    let server = MockServer::start().await;
    let body = common::error_body("没有待处理的数据", None, Some(json!({"remainingItems": 0})));
    mount_response(&server, "POST", "/api/external/ai-batch/start", 404, body).await;

    let error = client(&server)
        .start_batch(&StartBatchRequest::default())
        .await
        .expect_err("404 is an error");
    assert!(error.is_not_found(), "{error:?}");
    assert_eq!(error.remaining_items(), Some(0));
}

#[tokio::test]
async fn status_404_on_batch_maps_to_not_found() {
    let server = MockServer::start().await;
    mount_response(
        &server,
        "GET",
        "/api/external/ai-batch/status/batch_0_none00",
        404,
        common::error_body("批次不存在", None, None),
    )
    .await;

    let error = client(&server)
        .get_batch_status("batch_0_none00")
        .await
        .expect_err("404 is an error");
    assert!(error.is_not_found(), "{error:?}");
    assert_eq!(error.remaining_items(), None);
}

#[tokio::test]
async fn status_400_maps_to_validation_fields() {
    let server = MockServer::start().await;
    let body = common::error_body(
        "参数验证失败",
        Some(json!([
            {"field": "batchSize", "message": "must be between 1 and 100"},
            {"field": "concurrency", "message": "must be between 1 and 32"},
        ])),
        None,
    );
    mount_response(&server, "POST", "/api/external/ai-batch/start", 400, body).await;

    let request = StartBatchRequest {
        batch_size: Some(0),
        concurrency: Some(99),
        ..StartBatchRequest::default()
    };
    let error = client(&server)
        .start_batch(&request)
        .await
        .expect_err("400 is an error");
    assert!(error.is_validation(), "{error:?}");
    let fields = error.field_errors();
    assert_eq!(fields.len(), 2);
    assert_eq!(fields[0].field, "batchSize");
    assert_eq!(fields[1].message, "must be between 1 and 32");
    assert_eq!(error.details(), None);
    let text = error.to_string();
    assert!(
        text.contains("batchSize: must be between 1 and 100"),
        "{text}"
    );
}

#[tokio::test]
async fn status_500_maps_to_server_error() {
    let server = MockServer::start().await;
    let body = common::error_body(
        "清除操作失败",
        Some(json!("connection reset by database")),
        None,
    );
    mount_response(&server, "POST", "/api/external/ai-batch/clear", 500, body).await;

    let error = client(&server)
        .clear_batches(&ClearRequest::default())
        .await
        .expect_err("500 is an error");
    assert!(error.is_server_error(), "{error:?}");
    assert_eq!(error.status(), Some(StatusCode::INTERNAL_SERVER_ERROR));
    assert_eq!(error.details(), Some("connection reset by database"));
    let body = error.error_body().expect("body decoded");
    assert_eq!(
        batch_client::types::time::format_millis(&body.timestamp),
        "2025-09-22T11:48:00.000Z"
    );
}

#[tokio::test]
async fn status_503_maps_to_unavailable_without_retry() {
    let server = MockServer::start().await;
    // expect(1): a GET that received a response is not retried, even a 503.
    mount_response(
        &server,
        "GET",
        "/api/external/ai-batch/status",
        503,
        common::error_body("数据库不可用", Some(json!("retry later")), None),
    )
    .await;

    let error = client(&server)
        .get_global_status()
        .await
        .expect_err("503 is an error");
    assert!(error.is_unavailable(), "{error:?}");
    assert_eq!(error.status(), Some(StatusCode::SERVICE_UNAVAILABLE));
}

#[tokio::test]
async fn other_status_maps_to_api() {
    let server = MockServer::start().await;
    mount_response(
        &server,
        "POST",
        "/api/external/items",
        413,
        common::error_body("请求体过大", None, None),
    )
    .await;

    let error = client(&server)
        .upsert_items(&UpsertItemsRequest { items: vec![] })
        .await
        .expect_err("413 is an error");
    assert!(matches!(error, Error::Api { status, .. } if status == StatusCode::PAYLOAD_TOO_LARGE));
}

#[tokio::test]
async fn non_json_body_maps_to_decode_truncated() {
    let server = MockServer::start().await;
    let page = format!("<html>{}</html>", "x".repeat(2000));
    Mock::given(method("GET"))
        .and(path("/api/external/ai-batch/status"))
        .respond_with(ResponseTemplate::new(502).set_body_raw(page, "text/html"))
        .expect(1)
        .mount(&server)
        .await;

    let error = client(&server)
        .get_global_status()
        .await
        .expect_err("HTML is an error");
    assert!(error.is_decode(), "{error:?}");
    assert_eq!(error.status(), Some(StatusCode::BAD_GATEWAY));
    let Error::Decode { body, .. } = &error else {
        panic!("expected Decode, got {error:?}");
    };
    assert!(body.starts_with("<html>xxx"), "{body}");
    assert_eq!(body.chars().count(), MAX_DECODE_BODY_CHARS + 1);
    assert!(body.ends_with('…'));
}

#[tokio::test]
async fn success_with_wrong_shape_maps_to_decode() {
    let server = MockServer::start().await;
    mount_response(
        &server,
        "GET",
        "/api/external/ai-batch/status",
        200,
        json!({"unexpected": true}),
    )
    .await;

    let error = client(&server)
        .get_global_status()
        .await
        .expect_err("wrong shape is an error");
    assert!(error.is_decode(), "{error:?}");
    assert_eq!(error.status(), Some(StatusCode::OK));
}

// ---- retries ----

/// Returns a loopback URL whose port refuses connections.
fn refused_url() -> String {
    let listener = StdTcpListener::bind("127.0.0.1:0").expect("bind a free port");
    let address = listener.local_addr().expect("bound address");
    drop(listener);
    format!("http://{address}")
}

#[tokio::test]
async fn refused_get_is_retried_then_transport() {
    let delay = Duration::from_millis(50);
    let client = Client::builder(refused_url(), API_KEY)
        .max_retries(3)
        .retry_delay(delay)
        .build()
        .expect("valid settings");

    let started = Instant::now();
    let error = client
        .get_global_status()
        .await
        .expect_err("nothing listens");
    let elapsed = started.elapsed();

    assert!(error.is_transport(), "{error:?}");
    assert_eq!(error.status(), None);
    let Error::Transport(source) = &error else {
        panic!("expected Transport, got {error:?}");
    };
    assert!(source.is_connect(), "{source:?}");
    // Three retries wait at least 50 + 100 + 200 ms (jitter only adds).
    assert!(
        elapsed >= Duration::from_millis(350),
        "gave up after {elapsed:?}"
    );
}

/// Accepts connections on loopback and closes each one at once, counting them.
async fn closing_server() -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a free port");
    let address = listener.local_addr().expect("bound address");
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&accepted);
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            drop(socket);
        }
    });
    (format!("http://{address}"), accepted)
}

#[tokio::test]
async fn closed_connection_get_is_retried() {
    let (url, accepted) = closing_server().await;
    let client = Client::builder(url, API_KEY)
        .max_retries(2)
        .retry_delay(Duration::from_millis(10))
        .build()
        .expect("valid settings");

    let error = client
        .get_global_status()
        .await
        .expect_err("connection closes");
    assert!(error.is_transport(), "{error:?}");
    assert_eq!(accepted.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn closed_connection_post_is_not_retried() {
    let (url, accepted) = closing_server().await;
    let client = Client::builder(url, API_KEY)
        .max_retries(2)
        .retry_delay(Duration::from_millis(10))
        .build()
        .expect("valid settings");

    let error = client
        .start_batch(&StartBatchRequest::default())
        .await
        .expect_err("connection closes");
    assert!(error.is_transport(), "{error:?}");
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn zero_retries_sends_once() {
    let (url, accepted) = closing_server().await;
    let client = Client::builder(url, API_KEY)
        .max_retries(0)
        .build()
        .expect("valid settings");

    client
        .get_global_status()
        .await
        .expect_err("connection closes");
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
}
