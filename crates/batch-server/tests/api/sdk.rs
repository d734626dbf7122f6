//! The typed SDK (`batch_client`) and batchctl, run in-process, against the
//! real server: every operation, every error variant the server produces,
//! and the documented schema of the raw responses.

use std::ffi::OsString;
use std::time::Duration;

use batch_client::cli::{self, Console};
use batch_client::types::{
    AiConfig, AnalysisState, BatchStatus, ClearRequest, NewItem, ResetRequest, StartBatchRequest,
    UpsertItemsRequest,
};
use batch_client::{Client, ListBatchResultsQuery, ListBatchesQuery, ListItemsQuery};
use diesel::{Connection, PgConnection, RunQueryDsl};
use futures_util::StreamExt;
use serde_json::{Value, json};

use crate::helpers::{API_KEY, FakeBehaviour, FakeProvider, TestApp, spawn_app};

/// How long a test waits for a batch to finish.
const WAIT: Duration = Duration::from_secs(30);

/// A batch id in the server's format that no test creates.
const UNKNOWN_BATCH_ID: &str = "batch_1000000000000_aaaaaa";

/// Builds an SDK client for `app` with the test key.
fn client(app: &TestApp) -> Client {
    Client::new(&app.address, API_KEY).expect("the client settings are valid")
}

/// Builds `count` items of list `list`, with external ids `{list}-{index}`.
fn new_items(list: &str, count: usize) -> Vec<NewItem> {
    (0..count)
        .map(|index| NewItem {
            external_id: format!("{list}-{index}"),
            content: format!("Item {index} of {list} talks about #rust and databases"),
            username: Some("sdk-tester".to_owned()),
            list_id: Some(list.to_owned()),
            published_at: None,
        })
        .collect()
}

/// Returns the `aiConfig` that points a batch at `fake`.
fn fake_config(fake: &FakeProvider) -> AiConfig {
    serde_json::from_value(fake.ai_config()).expect("the fake provider's aiConfig decodes")
}

/// Starts a fake provider that responds to each request after `latency_ms`.
async fn slow_provider(latency_ms: u64) -> FakeProvider {
    FakeProvider::start(FakeBehaviour {
        latency: Duration::from_millis(latency_ms),
        ..FakeBehaviour::default()
    })
    .await
}

/// Items of a slow batch: two chunks of 5, both in flight at once.
const SLOW_BATCH_ITEMS: usize = 10;

/// Seeds [`SLOW_BATCH_ITEMS`] items, starts a batch on `fake` through the SDK
/// and returns its id once the batch has claimed every item, so that a
/// cancel or clear releases all of them.
async fn start_slow_batch(app: &TestApp, fake: &FakeProvider) -> String {
    app.seed(SLOW_BATCH_ITEMS, "slow").await;
    let request = StartBatchRequest {
        batch_size: Some(5),
        concurrency: Some(2),
        ai_config: Some(fake_config(fake)),
        ..StartBatchRequest::default()
    };
    let batch_id = client(app)
        .start_batch(&request)
        .await
        .expect("the slow batch starts")
        .batch_id;

    let deadline = tokio::time::Instant::now() + WAIT;
    while count(app, "items", "analysis_state = 'processing'") < SLOW_BATCH_ITEMS as i64
        && tokio::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    batch_id
}

/// Polls the batch through the SDK until it leaves `processing` or [`WAIT`] passes.
async fn wait_until_finished(client: &Client, batch_id: &str) -> BatchStatus {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let batch = client
            .get_batch_status(batch_id)
            .await
            .expect("the batch status is readable");
        if batch.status != BatchStatus::Processing || tokio::time::Instant::now() > deadline {
            return batch.status;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Counts the rows of `table` (plus an optional `WHERE` clause) in the test database.
fn count(app: &TestApp, table: &str, condition: &str) -> i64 {
    let sql = if condition.is_empty() {
        format!("SELECT count(*) AS value FROM {table}")
    } else {
        format!("SELECT count(*) AS value FROM {table} WHERE {condition}")
    };
    app.scalar(&sql)
}

/// Exit code, stdout and stderr of one in-process batchctl run.
struct CliOutput {
    code: u8,
    stdout: String,
    stderr: String,
}

/// Runs batchctl in-process against `app` with the test key, English
/// messages and an empty stdin that is not a terminal.
async fn batchctl(app: &TestApp, args: &[&str]) -> CliOutput {
    let prefix = [
        "batchctl",
        "--url",
        app.address.as_str(),
        "--api-key",
        API_KEY,
        "--lang",
        "en",
    ];
    let argv: Vec<OsString> = prefix.iter().chain(args).map(OsString::from).collect();
    let mut stdout = Vec::new();
    let mut stderr = Vec::new();
    let code = cli::run(
        argv,
        Console {
            stdout: &mut stdout,
            stderr: &mut stderr,
            stdin: &mut std::io::empty(),
            stdin_is_terminal: false,
            show_progress: false,
        },
    )
    .await;
    CliOutput {
        code,
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    }
}

/// Writes `lines` to a JSON Lines file named after `name` and this process,
/// in the target's temporary folder.
fn write_jsonl(name: &str, lines: &[&str]) -> std::path::PathBuf {
    let path = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("sdk-{name}-{}.jsonl", std::process::id()));
    let mut text = lines.join("\n");
    text.push('\n');
    std::fs::write(&path, text).expect("the JSONL file is written");
    path
}

// Operations

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upsert_items_inserts_then_updates() {
    let app = spawn_app().await;
    let client = client(&app);
    let mut items = new_items("sdk", 3);

    let first = client
        .upsert_items(&UpsertItemsRequest {
            items: items.clone(),
        })
        .await
        .expect("the first upsert succeeds");
    items[0].content = "edited text".to_owned();
    let second = client
        .upsert_items(&UpsertItemsRequest {
            items: items[..1].to_vec(),
        })
        .await
        .expect("the second upsert succeeds");

    assert_eq!(first.inserted, 3);
    assert_eq!(first.updated, 0);
    assert_eq!(second.inserted, 0);
    assert_eq!(second.updated, 1);
    assert_eq!(count(&app, "items", "content = 'edited text'"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_items_filters_and_pages() {
    let app = spawn_app().await;
    let client = client(&app);
    let mut items = new_items("wanted", 3);
    items.extend(new_items("other", 2));
    client
        .upsert_items(&UpsertItemsRequest { items })
        .await
        .expect("the upsert succeeds");

    let mut query = ListItemsQuery {
        list_id: Some("wanted".to_owned()),
        state: Some(AnalysisState::Pending),
        limit: Some(2),
        ..ListItemsQuery::default()
    };
    let first = client.list_items(&query).await.expect("page 1 lists");
    query.cursor = first.next_cursor.clone();
    let second = client.list_items(&query).await.expect("page 2 lists");

    let first_ids: Vec<&str> = first
        .entries
        .iter()
        .map(|item| item.external_id.as_str())
        .collect();
    let second_ids: Vec<&str> = second
        .entries
        .iter()
        .map(|item| item.external_id.as_str())
        .collect();
    assert_eq!(first_ids, ["wanted-0", "wanted-1"]);
    assert!(first.next_cursor.is_some());
    assert_eq!(second_ids, ["wanted-2"]);
    assert_eq!(second.next_cursor, None);
    assert_eq!(second.entries[0].analysis_state, AnalysisState::Pending);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finished_batch_is_visible_in_every_read() {
    let app = spawn_app().await;
    let client = client(&app);
    app.seed(6, "reads").await;

    let started = client
        .start_batch(&StartBatchRequest {
            batch_size: Some(2),
            ..StartBatchRequest::default()
        })
        .await
        .expect("the local batch starts");
    let final_status = wait_until_finished(&client, &started.batch_id).await;
    let global = client
        .get_global_status()
        .await
        .expect("the global status reads");
    let batches = client
        .list_batches(&ListBatchesQuery {
            status: Some(BatchStatus::Completed),
            ..ListBatchesQuery::default()
        })
        .await
        .expect("the batches list");
    let page = client
        .list_batch_results(
            &started.batch_id,
            &ListBatchResultsQuery {
                limit: Some(4),
                cursor: None,
            },
        )
        .await
        .expect("the first results page lists");
    let mut stream = client
        .stream_batch_results(&started.batch_id)
        .await
        .expect("the results stream opens");
    let mut streamed = Vec::new();
    while let Some(result) = stream.next().await {
        streamed.push(result.expect("each streamed line decodes"));
    }

    assert_eq!(started.total_items, 6);
    assert_eq!(started.estimated_batches, 3);
    assert_eq!(started.status, BatchStatus::Processing);
    assert_eq!(final_status, BatchStatus::Completed);
    assert!(!global.has_global_task);
    assert_eq!(global.current_batch_id, None);
    assert_eq!(global.pending_items, 0);
    assert_eq!(batches.entries.len(), 1);
    assert_eq!(batches.entries[0].batch_id, started.batch_id);
    assert_eq!(batches.entries[0].progress.succeeded, 6);
    assert_eq!(page.entries.len(), 4);
    assert!(page.next_cursor.is_some());
    assert_eq!(streamed.len(), 6);
    assert!(
        streamed
            .iter()
            .all(|result| result.state == AnalysisState::Analyzed),
        "{streamed:?}"
    );
    assert!(
        streamed.iter().all(|result| result.analysis.is_some()),
        "{streamed:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn continue_batch_links_the_previous_batch() {
    let app = spawn_app().await;
    let client = client(&app);
    app.seed(3, "first").await;
    let first = client
        .start_batch(&StartBatchRequest::default())
        .await
        .expect("the first batch starts");
    wait_until_finished(&client, &first.batch_id).await;
    app.seed(2, "second").await;

    let continued = client
        .continue_batch(&StartBatchRequest {
            previous_batch_id: Some(first.batch_id.clone()),
            ..StartBatchRequest::default()
        })
        .await
        .expect("the continuation starts");
    let final_status = wait_until_finished(&client, &continued.batch_id).await;
    let info = client
        .get_batch_status(&continued.batch_id)
        .await
        .expect("the continuation reads");

    assert_ne!(continued.batch_id, first.batch_id);
    assert_eq!(
        continued.previous_batch_id.as_deref(),
        Some(first.batch_id.as_str())
    );
    assert_eq!(continued.total_items, 2);
    assert_eq!(final_status, BatchStatus::Completed);
    assert_eq!(
        info.previous_batch_id.as_deref(),
        Some(first.batch_id.as_str())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_batch_stops_a_running_batch() {
    let fake = slow_provider(5_000).await;
    let app = spawn_app().await;
    let client = client(&app);
    let batch_id = start_slow_batch(&app, &fake).await;

    let cancelled = client
        .cancel_batch(&batch_id)
        .await
        .expect("the cancel succeeds");
    let again = client
        .cancel_batch(&batch_id)
        .await
        .expect("a second cancel succeeds");

    assert_eq!(cancelled.batch_id, batch_id);
    assert!(cancelled.cancelled);
    assert_eq!(cancelled.status, BatchStatus::Cancelled);
    assert_eq!(cancelled.released_items, SLOW_BATCH_ITEMS as u64);
    assert!(!again.cancelled);
    assert_eq!(count(&app, "items", "analysis_state = 'processing'"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preview_then_clear_with_expected_ids() {
    let fake = slow_provider(5_000).await;
    let app = spawn_app().await;
    let client = client(&app);
    let batch_id = start_slow_batch(&app, &fake).await;

    let preview = client.preview_clear().await.expect("the preview reads");
    let expected: Vec<String> = preview
        .processing_records
        .tasks
        .iter()
        .map(|task| task.batch_id.clone())
        .collect();
    let cleared = client
        .clear_batches(&ClearRequest {
            expected_batch_ids: Some(expected.clone()),
        })
        .await
        .expect("the clear succeeds");
    let after = client
        .preview_clear()
        .await
        .expect("the second preview reads");

    assert!(preview.needs_clear);
    assert_eq!(expected, std::slice::from_ref(&batch_id));
    assert_eq!(
        preview.current_status.current_batch_id.as_deref(),
        Some(batch_id.as_str())
    );
    assert_eq!(cleared.cleared_tasks.processing_records, 1);
    assert_eq!(
        cleared.before_clear.current_batch_id.as_deref(),
        Some(batch_id.as_str())
    );
    assert!(!cleared.after_clear.has_global_task);
    assert_eq!(cleared.released_items, SLOW_BATCH_ITEMS as u64);
    assert!(!after.needs_clear);
    assert_eq!(
        count(
            &app,
            "ai_batches",
            &format!("batch_id = '{batch_id}' AND status = 'cancelled'")
        ),
        1
    );
    assert_eq!(count(&app, "items", "analysis_state = 'processing'"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clear_without_expected_ids_cancels_everything() {
    let fake = slow_provider(5_000).await;
    let app = spawn_app().await;
    let client = client(&app);
    let batch_id = start_slow_batch(&app, &fake).await;

    let cleared = client
        .clear_batches(&ClearRequest::default())
        .await
        .expect("the clear succeeds");
    let second = client
        .clear_batches(&ClearRequest::default())
        .await
        .expect("a second clear succeeds");

    assert_eq!(cleared.cleared_tasks.processing_records, 1);
    assert_eq!(
        cleared.before_clear.current_batch_id.as_deref(),
        Some(batch_id.as_str())
    );
    assert_eq!(second.cleared_tasks.processing_records, 0);
    assert_eq!(count(&app, "ai_batches", "status = 'processing'"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gentle_reset_keeps_and_force_reset_cancels() {
    let fake = slow_provider(5_000).await;
    let app = spawn_app().await;
    let client = client(&app);
    let batch_id = start_slow_batch(&app, &fake).await;

    let gentle = client
        .reset_batches(&ResetRequest { force: false })
        .await
        .expect("the gentle reset succeeds");
    let after_gentle = client
        .get_batch_status(&batch_id)
        .await
        .expect("the batch reads");
    let forced = client
        .reset_batches(&ResetRequest { force: true })
        .await
        .expect("the forced reset succeeds");
    let after_force = client
        .get_batch_status(&batch_id)
        .await
        .expect("the batch reads");

    assert_eq!(gentle.mode, "gentle");
    assert_eq!(gentle.updated_records, 0);
    assert_eq!(after_gentle.status, BatchStatus::Processing);
    assert_eq!(forced.mode, "force");
    assert_eq!(forced.updated_records, 1);
    assert_eq!(
        forced.previous_status.current_batch_id.as_deref(),
        Some(batch_id.as_str())
    );
    assert_eq!(after_force.status, BatchStatus::Cancelled);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_health_reports_live_and_ready() {
    let app = spawn_app().await;

    let health = client(&app)
        .check_health()
        .await
        .expect("the probes answer");

    assert!(health.is_live(), "{health:?}");
    assert!(health.is_ready(), "{health:?}");
    assert_eq!(health.live.status_text(), Some("ok"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocking_client_reads_global_status() {
    let app = spawn_app().await;
    app.seed(4, "blocking").await;
    let address = app.address.clone();

    // The blocking client runs its own runtime, so it needs a thread outside tokio's.
    let status = tokio::task::spawn_blocking(move || {
        batch_client::blocking::Client::new(address, API_KEY)?.get_global_status()
    })
    .await
    .expect("the blocking task ends")
    .expect("the blocking GET succeeds");

    assert!(!status.has_global_task);
    assert_eq!(status.pending_items, 4);
}

// Error variants

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_key_is_unauthorized() {
    let app = spawn_app().await;
    let client = Client::new(&app.address, "not-the-key").expect("valid settings");

    let error = client
        .get_global_status()
        .await
        .expect_err("a wrong key is rejected");

    assert!(error.is_unauthorized(), "{error:?}");
    assert_eq!(error.status().map(|status| status.as_u16()), Some(401));
    assert_eq!(
        error.message(),
        Some(batch_client::types::UNAUTHORIZED_MESSAGE)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_while_running_is_conflict_with_current_batch() {
    let fake = slow_provider(5_000).await;
    let app = spawn_app().await;
    let batch_id = start_slow_batch(&app, &fake).await;

    let error = client(&app)
        .start_batch(&StartBatchRequest {
            is_extracted: Some("all".to_owned()),
            ..StartBatchRequest::default()
        })
        .await
        .expect_err("a second start is rejected");

    assert!(error.is_conflict(), "{error:?}");
    assert_eq!(error.current_batch_id(), Some(batch_id.as_str()));
    assert_eq!(count(&app, "ai_batches", ""), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_batch_is_not_found_everywhere() {
    let app = spawn_app().await;
    let client = client(&app);

    let status = client.get_batch_status(UNKNOWN_BATCH_ID).await;
    let cancel = client.cancel_batch(UNKNOWN_BATCH_ID).await;
    let results = client
        .list_batch_results(UNKNOWN_BATCH_ID, &ListBatchResultsQuery::default())
        .await;
    let stream = client.stream_batch_results(UNKNOWN_BATCH_ID).await;

    assert!(
        status.as_ref().is_err_and(|error| error.is_not_found()),
        "{status:?}"
    );
    assert!(
        cancel.as_ref().is_err_and(|error| error.is_not_found()),
        "{cancel:?}"
    );
    assert!(
        results.as_ref().is_err_and(|error| error.is_not_found()),
        "{results:?}"
    );
    assert!(
        stream.as_ref().is_err_and(|error| error.is_not_found()),
        "stream of an unknown batch was not a 404"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_without_items_is_not_found() {
    let app = spawn_app().await;

    let error = client(&app)
        .start_batch(&StartBatchRequest::default())
        .await
        .expect_err("a start without items is rejected");

    assert!(error.is_not_found(), "{error:?}");
    assert_eq!(error.remaining_items(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_batch_size_is_validation_naming_the_field() {
    let app = spawn_app().await;
    app.seed(2, "valid").await;

    let error = client(&app)
        .start_batch(&StartBatchRequest {
            batch_size: Some(0),
            ..StartBatchRequest::default()
        })
        .await
        .expect_err("batchSize 0 is rejected");

    assert!(error.is_validation(), "{error:?}");
    assert_eq!(error.status().map(|status| status.as_u16()), Some(400));
    let fields: Vec<&str> = error
        .field_errors()
        .iter()
        .map(|field| field.field.as_str())
        .collect();
    assert_eq!(fields, ["batchSize"]);
    assert_eq!(count(&app, "ai_batches", ""), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_expected_ids_are_conflict_with_preview() {
    let fake = slow_provider(5_000).await;
    let app = spawn_app().await;
    let batch_id = start_slow_batch(&app, &fake).await;

    let error = client(&app)
        .clear_batches(&ClearRequest {
            expected_batch_ids: Some(vec![UNKNOWN_BATCH_ID.to_owned()]),
        })
        .await
        .expect_err("a clear with stale ids is rejected");

    assert!(error.is_conflict(), "{error:?}");
    let preview = error.clear_preview().expect("the 409 carries the preview");
    assert_eq!(preview.processing_records.tasks.len(), 1);
    assert_eq!(preview.processing_records.tasks[0].batch_id, batch_id);
    assert_eq!(count(&app, "ai_batches", "status = 'processing'"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_start_body_is_api_error_413() {
    let app = spawn_app().await;
    // 300,000 bytes of list ids, past the 256 KiB limit of control routes.
    let list_ids = vec!["x".repeat(1_000); 300];

    let error = client(&app)
        .start_batch(&StartBatchRequest {
            list_ids: Some(list_ids),
            ..StartBatchRequest::default()
        })
        .await
        .expect_err("an oversized body is rejected");

    assert!(
        matches!(error, batch_client::Error::Api { .. }),
        "{error:?}"
    );
    assert_eq!(error.status().map(|status| status.as_u16()), Some(413));
    assert!(error.details().is_some(), "{error:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_port_is_transport_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    let port = listener.local_addr().expect("an address").port();
    drop(listener);
    let client = Client::builder(format!("http://127.0.0.1:{port}"), API_KEY)
        .max_retries(0)
        .build()
        .expect("valid settings");

    let error = client
        .get_global_status()
        .await
        .expect_err("nothing listens on the port");

    assert!(error.is_transport(), "{error:?}");
    assert_eq!(error.status(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_json_success_is_decode_error() {
    let server = wiremock::MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::method("GET"))
        .and(wiremock::matchers::path("/api/external/ai-batch/status"))
        .respond_with(
            wiremock::ResponseTemplate::new(200)
                .insert_header("content-type", "text/html")
                .set_body_string("<html>not the batch server</html>"),
        )
        .mount(&server)
        .await;
    let client = Client::new(server.uri(), API_KEY).expect("valid settings");

    let error = client
        .get_global_status()
        .await
        .expect_err("an HTML body does not decode");

    assert!(error.is_decode(), "{error:?}");
    assert_eq!(error.status().map(|status| status.as_u16()), Some(200));
    assert!(
        matches!(&error, batch_client::Error::Decode { body, .. } if body.contains("not the batch server")),
        "{error:?}"
    );
}

/// Stops the test database from accepting connections and closes the
/// server's open ones, so its pool times out. The database is the test's own
/// and is dropped when the test ends.
fn refuse_database_connections(app: &TestApp) {
    let mut url = url::Url::parse(&app.database.url).expect("the database URL is valid");
    let name = url.path().trim_start_matches('/').to_owned();
    // PostgreSQL rejects this change from a session on the database itself,
    // so it is made from the server's maintenance database.
    url.set_path("/postgres");
    let mut connection =
        PgConnection::establish(url.as_str()).expect("the maintenance database is reachable");
    for sql in [
        format!("ALTER DATABASE {name} ALLOW_CONNECTIONS false"),
        format!("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"),
    ] {
        diesel::sql_query(&sql)
            .execute(&mut connection)
            .unwrap_or_else(|error| panic!("{sql} failed: {error}"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_database_is_unavailable_and_server_error() {
    let app = spawn_app().await;
    let client = client(&app);
    client
        .get_global_status()
        .await
        .expect("the status reads while the database is up");
    refuse_database_connections(&app);

    let status = client
        .get_global_status()
        .await
        .expect_err("the status needs the database");
    let preview = client
        .preview_clear()
        .await
        .expect_err("the preview needs the database");
    let health = client.check_health().await.expect("the probes answer");

    assert!(status.is_unavailable(), "{status:?}");
    assert!(status.details().is_some(), "{status:?}");
    assert!(preview.is_server_error(), "{preview:?}");
    assert_eq!(preview.status().map(|status| status.as_u16()), Some(500));
    assert!(health.is_live(), "{health:?}");
    assert!(!health.is_ready(), "{health:?}");
}

// batchctl in-process

/// Items of the batch that batchctl starts. batchctl reads a provider key
/// only from the environment, which a test cannot set safely, so the batch
/// runs on the local analyzer and only its size keeps it processing. With one
/// item of 17,600 characters per chunk it took about 7 s (debug build, 2
/// cores, measured once), while preview and clear took about 1 s.
// NOTE: a much faster machine could finish the batch before the clear; the
// test then fails on `needsClear`, and this count needs raising.
const CLI_BATCH_ITEMS: usize = 300;

/// Stores items whose local analysis, one item per chunk, keeps a batch
/// processing for seconds.
async fn seed_slow_local_items(app: &TestApp) {
    let items: Vec<NewItem> = (0..CLI_BATCH_ITEMS)
        .map(|index| NewItem {
            external_id: format!("cli-{index}"),
            content: format!("{index} ")
                + &"Rust and PostgreSQL talk about #batch work. ".repeat(400),
            username: None,
            list_id: Some("cli".to_owned()),
            published_at: None,
        })
        .collect();
    client(app)
        .upsert_items(&UpsertItemsRequest { items })
        .await
        .expect("the items are stored");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batchctl_start_preview_clear_cycle() {
    let app = spawn_app().await;
    seed_slow_local_items(&app).await;

    let started = batchctl(
        &app,
        &["--json", "start", "--batch-size", "1", "--concurrency", "1"],
    )
    .await;
    let preview = batchctl(&app, &["--json", "preview"]).await;
    let cleared = batchctl(&app, &["clear", "--yes"]).await;

    assert_eq!(started.code, cli::EXIT_SUCCESS, "{}", started.stderr);
    let started: Value = serde_json::from_str(&started.stdout).expect("start prints JSON");
    let batch_id = started["batchId"].as_str().expect("a batch id").to_owned();
    assert_eq!(preview.code, cli::EXIT_SUCCESS, "{}", preview.stderr);
    let preview: Value = serde_json::from_str(&preview.stdout).expect("preview prints JSON");
    assert_eq!(preview["needsClear"], true, "{preview}");
    assert_eq!(
        preview["processingRecords"]["tasks"][0]["batchId"],
        batch_id.as_str()
    );
    assert_eq!(cleared.code, cli::EXIT_SUCCESS, "{}", cleared.stderr);
    assert!(
        cleared
            .stdout
            .lines()
            .any(|line| line.starts_with("Cancelled") && line.ends_with(" 1 batch(es)")),
        "{}",
        cleared.stdout
    );
    assert_eq!(
        count(
            &app,
            "ai_batches",
            &format!("batch_id = '{batch_id}' AND status = 'cancelled'")
        ),
        1
    );
    assert_eq!(count(&app, "items", "analysis_state = 'processing'"), 0);
    assert_eq!(count(&app, "control_events", "action = 'clear'"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batchctl_import_stores_jsonl_items() {
    let app = spawn_app().await;
    let file = write_jsonl(
        "import",
        &[
            r#"{"externalId":"jsonl-1","content":"first line","username":"ann","listId":"jsonl"}"#,
            "",
            r#"{"externalId":"jsonl-2","content":"second line","publishedAt":"2025-09-22T11:48:00Z"}"#,
            r#"{"externalId":"jsonl-3","content":"third line","listId":"jsonl"}"#,
        ],
    );

    let output = batchctl(&app, &["import", file.to_str().expect("a UTF-8 path")]).await;
    std::fs::remove_file(&file).expect("the JSONL file is removed");

    assert_eq!(output.code, cli::EXIT_SUCCESS, "{}", output.stderr);
    assert_eq!(
        output.stdout,
        "3 inserted, 0 updated, 0 invalid line(s) skipped\n"
    );
    assert_eq!(count(&app, "items", "external_id LIKE 'jsonl-%'"), 3);
    assert_eq!(count(&app, "items", "list_id = 'jsonl'"), 2);
    assert_eq!(count(&app, "items", "published_at IS NOT NULL"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batchctl_import_skips_invalid_lines_and_fails() {
    let app = spawn_app().await;
    let file = write_jsonl(
        "import-invalid",
        &[
            r#"{"externalId":"ok-1","content":"kept"}"#,
            r#"{"externalId":"bad-1"}"#,
        ],
    );

    let output = batchctl(&app, &["import", file.to_str().expect("a UTF-8 path")]).await;
    std::fs::remove_file(&file).expect("the JSONL file is removed");

    assert_eq!(output.code, cli::EXIT_FAILURE, "{}", output.stderr);
    assert!(
        output.stderr.contains("line 2: invalid item"),
        "{}",
        output.stderr
    );
    assert_eq!(count(&app, "items", "external_id = 'ok-1'"), 1);
    assert_eq!(count(&app, "items", "external_id = 'bad-1'"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batchctl_clear_without_terminal_clears_nothing() {
    let fake = slow_provider(5_000).await;
    let app = spawn_app().await;
    let batch_id = start_slow_batch(&app, &fake).await;

    let output = batchctl(&app, &["clear"]).await;

    assert_eq!(output.code, cli::EXIT_USAGE);
    assert!(output.stderr.contains("--yes"), "{}", output.stderr);
    assert!(output.stdout.is_empty(), "{}", output.stdout);
    assert_eq!(
        count(
            &app,
            "ai_batches",
            &format!("batch_id = '{batch_id}' AND status = 'processing'")
        ),
        1
    );
    assert_eq!(count(&app, "control_events", "action = 'clear'"), 0);
}

// Responses against the OpenAPI document

/// Returns the messages of every way `body` breaks the documented schema of
/// `status` for `method path` in `document`.
fn schema_violations(
    document: &Value,
    method: &str,
    path: &str,
    status: u16,
    body: &Value,
) -> Vec<String> {
    let documented = &document["paths"][path][method]["responses"][status.to_string()]["content"]["application/json"]
        ["schema"];
    if !documented.is_object() {
        return vec![format!("no JSON schema is documented for {status}")];
    }
    // The schema refers to `#/components/schemas/...`, so the components go
    // under its root, where those pointers resolve.
    let mut schema = documented.clone();
    schema["components"] = document["components"].clone();
    let validator = jsonschema::options()
        .with_draft(jsonschema::Draft::Draft202012)
        .should_validate_formats(true)
        .build(&schema)
        .expect("the documented schema compiles");
    validator
        .iter_errors(body)
        .map(|error| format!("{} at {}", error, error.instance_path()))
        .collect()
}

/// Sends `method path` with `key` and an optional JSON body, and returns the
/// status and the JSON body.
async fn raw(
    app: &TestApp,
    method: &str,
    path: &str,
    key: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = match method {
        "get" => app.http.get(app.url(path)),
        _ => app.http.post(app.url(path)),
    };
    request = request.header("x-api-key", key);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("the request is sent");
    let status = response.status().as_u16();
    let text = response.text().await.expect("the body is readable");
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn responses_match_openapi_schemas() {
    let fake = slow_provider(5_000).await;
    let app = spawn_app().await;
    let document: Value = app
        .http
        .get(app.url("/api-docs/openapi.json"))
        .send()
        .await
        .expect("the document is served")
        .json()
        .await
        .expect("the document is JSON");
    app.seed(10, "schema").await;
    let start = "/api/external/ai-batch/start";
    let clear = "/api/external/ai-batch/clear";
    let mut responses = Vec::new();

    let invalid = json!({"batchSize": 0});
    let (status, body) = raw(&app, "post", start, API_KEY, Some(invalid)).await;
    responses.push(("post", start.to_owned(), status, body));
    let valid = json!({"batchSize": 5, "concurrency": 2, "aiConfig": fake.ai_config()});
    let (status, started) = raw(&app, "post", start, API_KEY, Some(valid)).await;
    let batch_id = started["data"]["batchId"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    responses.push(("post", start.to_owned(), status, started));
    let requests: [(&str, String, &str, Option<Value>); 8] = [
        ("get", clear.to_owned(), API_KEY, None),
        (
            "get",
            format!("/api/external/ai-batch/status/{batch_id}"),
            API_KEY,
            None,
        ),
        (
            "get",
            "/api/external/items?listId=schema&limit=3".to_owned(),
            API_KEY,
            None,
        ),
        (
            "get",
            "/api/external/ai-batch/status".to_owned(),
            "not-the-key",
            None,
        ),
        (
            "get",
            format!("/api/external/ai-batch/status/{UNKNOWN_BATCH_ID}"),
            API_KEY,
            None,
        ),
        (
            "post",
            start.to_owned(),
            API_KEY,
            Some(json!({"isExtracted": "all"})),
        ),
        (
            "post",
            clear.to_owned(),
            API_KEY,
            Some(json!({"expectedBatchIds": [UNKNOWN_BATCH_ID]})),
        ),
        (
            "post",
            clear.to_owned(),
            API_KEY,
            Some(json!({"expectedBatchIds": [batch_id]})),
        ),
    ];
    for (method, path, key, body) in requests {
        let (status, body) = raw(&app, method, &path, key, body).await;
        responses.push((method, path, status, body));
    }

    let statuses: Vec<u16> = responses.iter().map(|(_, _, status, _)| *status).collect();
    assert_eq!(
        statuses,
        [400, 201, 200, 200, 200, 401, 404, 409, 409, 200],
        "{responses:#?}"
    );
    for (method, path, status, body) in &responses {
        let template = documented_path(&document, path);
        let violations = schema_violations(&document, method, &template, *status, body);
        assert!(
            violations.is_empty(),
            "{method} {path} {status}: {violations:#?}\n{body:#}"
        );
    }
}

#[test]
fn schema_check_reports_wrong_bodies() {
    let document =
        serde_json::to_value(batch_server::startup::openapi()).expect("the document serializes");
    let start = "/api/external/ai-batch/start";
    let error_body = json!({
        "success": false,
        "error": "the request is invalid",
        "timestamp": "2025-09-22T11:48:00.000Z",
    });
    let mut bad_timestamp = error_body.clone();
    bad_timestamp["timestamp"] = json!("yesterday");
    let mut bad_details = error_body.clone();
    bad_details["details"] = json!([{"message": "no field name"}]);

    let valid = schema_violations(&document, "post", start, 400, &error_body);
    let without_data = schema_violations(
        &document,
        "post",
        start,
        201,
        &json!({"success": true, "message": "ok"}),
    );
    let timestamp = schema_violations(&document, "post", start, 400, &bad_timestamp);
    let details = schema_violations(&document, "post", start, 400, &bad_details);
    let undocumented = schema_violations(&document, "post", start, 418, &error_body);

    assert!(valid.is_empty(), "{valid:#?}");
    assert!(!without_data.is_empty());
    assert!(!timestamp.is_empty());
    assert!(!details.is_empty());
    assert!(!undocumented.is_empty());
}

/// Finds the documented path template, such as `/status/{batchId}`, that
/// `path` (without its query string) matches.
fn documented_path(document: &Value, path: &str) -> String {
    let path = path.split('?').next().unwrap_or(path);
    let paths = document["paths"]
        .as_object()
        .expect("the document has paths");
    if paths.contains_key(path) {
        return path.to_owned();
    }
    let segments: Vec<&str> = path.split('/').collect();
    paths
        .keys()
        .find(|template| {
            let parts: Vec<&str> = template.split('/').collect();
            parts.len() == segments.len()
                && parts
                    .iter()
                    .zip(&segments)
                    .all(|(part, segment)| part.starts_with('{') || part == segment)
        })
        .cloned()
        .unwrap_or_else(|| path.to_owned())
}
