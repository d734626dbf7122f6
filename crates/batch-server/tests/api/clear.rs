//! The clear preview, the forced clear and the reset, exactly as the
//! contract describes them.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{AppOptions, FakeBehaviour, FakeProvider, TestApp, spawn_app, spawn_app_with};

const WAIT: Duration = Duration::from_secs(30);

/// Starts a batch whose provider responds after the fake's latency.
async fn start_slow_batch(app: &TestApp, fake: &FakeProvider, items: usize) -> String {
    app.seed(items, "slow").await;
    let (status, started) = app
        .post(
            "/api/external/ai-batch/start",
            json!({"batchSize": 5, "concurrency": 2, "aiConfig": fake.ai_config()}),
        )
        .await;
    assert_eq!(status, 201, "{started}");
    started["data"]["batchId"]
        .as_str()
        .expect("a batch id")
        .to_owned()
}

fn slow(latency_ms: u64) -> FakeBehaviour {
    FakeBehaviour {
        latency: Duration::from_millis(latency_ms),
        ..FakeBehaviour::default()
    }
}

fn is_millis_timestamp(value: &Value) -> bool {
    let text = value.as_str().unwrap_or_default();
    text.len() == 24
        && text.ends_with('Z')
        && text.as_bytes()[19] == b'.'
        && chrono::DateTime::parse_from_rfc3339(text).is_ok()
}

/// A digest of every row the API could change.
fn table_digest(app: &TestApp) -> String {
    #[derive(diesel::QueryableByName)]
    struct Digest {
        #[diesel(sql_type = diesel::sql_types::Text)]
        digest: String,
    }
    let mut connection = app.database.connect();
    let row: Digest = diesel::RunQueryDsl::get_result(
        diesel::sql_query(
            "SELECT md5(coalesce((SELECT string_agg(t::text, '|' ORDER BY batch_id) FROM ai_batches t), '') \
             || coalesce((SELECT string_agg(i::text, '|' ORDER BY id) FROM items i), '') \
             || coalesce((SELECT string_agg(e::text, '|' ORDER BY id) FROM control_events e), '')) AS digest",
        ),
        &mut connection,
    )
    .expect("digest query runs");
    row.digest
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preview_has_the_contract_shape() {
    let fake = FakeProvider::start(slow(5_000)).await;
    let app = spawn_app().await;
    let batch_id = start_slow_batch(&app, &fake, 20).await;
    tokio::time::sleep(Duration::from_millis(1_200)).await;

    let (status, body) = app.get("/api/external/ai-batch/clear").await;

    assert_eq!(status, 200, "{body}");
    assert_eq!(body["success"], true);
    assert_eq!(body["message"], "发现 1 个任务待清除");
    let data = &body["data"];
    assert_eq!(data["needsClear"], true);
    assert_eq!(data["currentStatus"]["hasGlobalTask"], true);
    assert_eq!(data["currentStatus"]["currentBatchId"], batch_id.as_str());
    assert_eq!(
        data["currentStatus"]["globalMessage"],
        "AI批处理任务正在运行中"
    );
    assert_eq!(
        data["activeProcesses"],
        json!({"count": 1, "batchIds": [batch_id]})
    );
    assert_eq!(data["processingRecords"]["count"], 1);
    let task = &data["processingRecords"]["tasks"][0];
    assert_eq!(task["batchId"], batch_id.as_str());
    assert!(is_millis_timestamp(&task["startedAt"]), "{task}");
    assert_eq!(task["progress"], "0/20");
    assert_eq!(task["aiProvider"], "openai");
    assert_eq!(task["aiModel"], "gpt-fake");
    let duration = task["duration"].as_str().expect("duration is text");
    assert!(duration == "1秒" || duration == "2秒", "{duration}");
    assert_eq!(
        data["estimation"],
        json!({"tasksToCancel": 1, "memoryToReset": 1, "globalStateToReset": true})
    );
    assert!(is_millis_timestamp(&data["timestamp"]), "{data}");
    let keys: Vec<&String> = data.as_object().expect("object").keys().collect();
    assert_eq!(keys.len(), 6, "{keys:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preview_changes_nothing() {
    let fake = FakeProvider::start(slow(3_000)).await;
    let app = spawn_app().await;
    start_slow_batch(&app, &fake, 10).await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    let before = table_digest(&app);
    for _ in 0..5 {
        let (status, _) = app.get("/api/external/ai-batch/clear").await;
        assert_eq!(status, 200);
    }
    let after = table_digest(&app);

    assert_eq!(before, after);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clear_during_request_cancels_and_releases() {
    let fake = FakeProvider::start(slow(3_000)).await;
    let app = spawn_app().await;
    let batch_id = start_slow_batch(&app, &fake, 20).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (_, preview) = app.get("/api/external/ai-batch/clear").await;

    let (status, body) = app.post("/api/external/ai-batch/clear", json!({})).await;
    let requests_after_clear = fake.request_count();
    tokio::time::sleep(Duration::from_secs(4)).await;

    assert_eq!(status, 200, "{body}");
    assert_eq!(body["success"], true);
    assert_eq!(body["message"], "所有AI批处理任务已成功清除");
    let data = &body["data"];
    assert!(is_millis_timestamp(&data["clearTime"]));
    assert_eq!(
        data["beforeClear"],
        json!({"hasGlobalTask": true, "currentBatchId": batch_id, "activeProcessesCount": 1, "processingRecordsCount": 1})
    );
    assert_eq!(
        data["afterClear"],
        json!({"hasGlobalTask": false, "currentBatchId": null, "activeProcessesCount": 0, "processingRecordsCount": 0})
    );
    assert_eq!(
        data["clearedTasks"],
        json!({"processingRecords": 1, "activeProcesses": 1, "databaseUpdates": 1})
    );
    assert_eq!(data["releasedItems"], 10);
    assert_eq!(
        preview["data"]["estimation"]["tasksToCancel"],
        data["clearedTasks"]["processingRecords"]
    );
    assert_eq!(
        fake.request_count(),
        requests_after_clear,
        "no provider request started after the clear"
    );
    assert_eq!(
        app.scalar("SELECT count(*) AS value FROM items WHERE analysis_state <> 'pending'"),
        0
    );
    assert_eq!(
        app.scalar("SELECT count(*) AS value FROM items WHERE analysis IS NOT NULL"),
        0
    );
    let done = app.wait_for_batch(&batch_id, WAIT).await;
    assert_eq!(done["status"], "cancelled");
    assert_eq!(done["progress"]["processed"], 0);
    assert_eq!(app.scalar("SELECT count(*) AS value FROM control_events WHERE action = 'clear' AND after_snapshot IS NOT NULL"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_clear_reports_zero() {
    let fake = FakeProvider::start(slow(2_000)).await;
    let app = spawn_app().await;
    start_slow_batch(&app, &fake, 10).await;

    let (_, first) = app.post("/api/external/ai-batch/clear", json!({})).await;
    let (status, second) = app.post("/api/external/ai-batch/clear", json!({})).await;

    assert_eq!(first["data"]["clearedTasks"]["processingRecords"], 1);
    assert_eq!(status, 200);
    assert_eq!(
        second["data"]["clearedTasks"],
        json!({"processingRecords": 0, "activeProcesses": 0, "databaseUpdates": 0})
    );
    assert_eq!(second["data"]["beforeClear"]["hasGlobalTask"], false);
    assert_eq!(second["message"], "没有需要清除的AI批处理任务");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clear_accepts_empty_and_untyped_bodies() {
    let app = spawn_app().await;

    let empty = app
        .http
        .post(app.url("/api/external/ai-batch/clear"))
        .header("x-api-key", crate::helpers::API_KEY)
        .send()
        .await
        .expect("sent");
    let untyped = app
        .http
        .post(app.url("/api/external/ai-batch/clear"))
        .header("x-api-key", crate::helpers::API_KEY)
        .body("{}")
        .send()
        .await
        .expect("sent");
    let null_body = app
        .http
        .post(app.url("/api/external/ai-batch/clear"))
        .header("x-api-key", crate::helpers::API_KEY)
        .header("content-type", "application/json")
        .body("null")
        .send()
        .await
        .expect("sent");
    let (unknown_field, body) = app
        .post("/api/external/ai-batch/clear", json!({"everything": true}))
        .await;

    assert_eq!(empty.status().as_u16(), 200);
    assert_eq!(untyped.status().as_u16(), 200);
    assert_eq!(
        null_body.status().as_u16(),
        200,
        "Swagger UI sends null for an untouched body"
    );
    assert_eq!(unknown_field, 400, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clear_keeps_stored_analyses() {
    let app = spawn_app().await;
    app.seed(10, "keep").await;
    let (_, first) = app.post("/api/external/ai-batch/start", json!({})).await;
    app.wait_for_batch(first["data"]["batchId"].as_str().expect("id"), WAIT)
        .await;
    let fake = FakeProvider::start(slow(3_000)).await;
    let (_, again) = app
        .post(
            "/api/external/ai-batch/start",
            json!({"isExtracted": "all", "batchSize": 5, "aiConfig": fake.ai_config()}),
        )
        .await;
    assert_eq!(again["data"]["totalItems"], 10, "{again}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        app.scalar("SELECT count(*) AS value FROM items WHERE analysis_state = 'processing'"),
        10
    );

    let (_, cleared) = app.post("/api/external/ai-batch/clear", json!({})).await;

    assert_eq!(cleared["data"]["releasedItems"], 10);
    assert_eq!(app.scalar("SELECT count(*) AS value FROM items WHERE analysis_state = 'analyzed' AND analysis IS NOT NULL"), 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clear_racing_commits_never_writes_after() {
    let app = spawn_app().await;
    app.seed(400, "race").await;
    for round in 0..15 {
        let fake = FakeProvider::start(slow(5 + round * 7)).await;
        let (status, started) = app
            .post("/api/external/ai-batch/start", json!({"isExtracted": "all", "batchSize": 3, "concurrency": 4, "aiConfig": fake.ai_config()}))
            .await;
        assert_eq!(status, 201, "round {round}: {started}");
        let batch_id = started["data"]["batchId"].as_str().expect("id").to_owned();
        tokio::time::sleep(Duration::from_millis(30 + round * 11)).await;

        let (_, cleared) = app.post("/api/external/ai-batch/clear", json!({})).await;
        let processed_at_clear =
            app.wait_for_batch(&batch_id, WAIT).await["progress"]["processed"].clone();
        tokio::time::sleep(Duration::from_millis(150)).await;

        let done = app.wait_for_batch(&batch_id, WAIT).await;
        assert_eq!(
            cleared["data"]["clearedTasks"]["processingRecords"], 1,
            "round {round}"
        );
        assert_eq!(done["status"], "cancelled", "round {round}");
        assert_eq!(
            done["progress"]["processed"], processed_at_clear,
            "round {round}: a result landed after the clear"
        );
        // Results and counters commit together, so every stored result of
        // the batch is counted in `processed`, which did not move.
        let stored = app.scalar(&format!(
            "SELECT count(*) AS value FROM items WHERE batch_id = '{batch_id}'"
        ));
        assert_eq!(
            Some(stored as u64),
            done["progress"]["processed"].as_u64(),
            "round {round}"
        );
        assert_eq!(
            app.scalar("SELECT count(*) AS value FROM items WHERE analysis_state = 'processing'"),
            0,
            "round {round}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expected_ids_mismatch_is_409_and_changes_nothing() {
    let fake = FakeProvider::start(slow(3_000)).await;
    let app = spawn_app().await;
    let batch_id = start_slow_batch(&app, &fake, 10).await;

    let (status, body) = app
        .post(
            "/api/external/ai-batch/clear",
            json!({"expectedBatchIds": ["batch_1000000000000_aaaaaa"]}),
        )
        .await;
    let (_, still) = app
        .get(&format!("/api/external/ai-batch/status/{batch_id}"))
        .await;
    let (matched, cleared) = app
        .post(
            "/api/external/ai-batch/clear",
            json!({"expectedBatchIds": [batch_id]}),
        )
        .await;

    assert_eq!(status, 409, "{body}");
    assert_eq!(body["success"], false);
    assert_eq!(
        body["data"]["processingRecords"]["tasks"][0]["batchId"],
        batch_id.as_str()
    );
    assert_eq!(still["data"]["status"], "processing");
    assert_eq!(matched, 200);
    assert_eq!(cleared["data"]["clearedTasks"]["processingRecords"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn english_on_request() {
    let fake = FakeProvider::start(slow(3_000)).await;
    let app = spawn_app().await;
    start_slow_batch(&app, &fake, 10).await;
    tokio::time::sleep(Duration::from_millis(1_100)).await;

    let response = app
        .http
        .get(app.url("/api/external/ai-batch/clear"))
        .header("x-api-key", crate::helpers::API_KEY)
        .header("accept-language", "en-US,en;q=0.9")
        .send()
        .await
        .expect("sent");
    let body: Value = response.json().await.expect("JSON");

    assert_eq!(body["message"], "found 1 task(s) to clear");
    let duration = body["data"]["processingRecords"]["tasks"][0]["duration"]
        .as_str()
        .expect("text");
    assert!(
        duration.ends_with('s') && !duration.contains('秒'),
        "{duration}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_validates_force() {
    let app = spawn_app().await;

    let (missing, missing_body) = app.post("/api/external/ai-batch/reset", json!({})).await;
    let (wrong, wrong_body) = app
        .post("/api/external/ai-batch/reset", json!({"force": "yes"}))
        .await;

    assert_eq!(missing, 400);
    assert_eq!(missing_body["details"][0]["field"], "force");
    assert_eq!(wrong, 400);
    assert_eq!(wrong_body["details"][0]["field"], "force");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gentle_reset_leaves_healthy_batch_running() {
    let fake = FakeProvider::start(slow(3_000)).await;
    let app = spawn_app().await;
    let batch_id = start_slow_batch(&app, &fake, 10).await;

    let (status, body) = app
        .post("/api/external/ai-batch/reset", json!({"force": false}))
        .await;
    let (_, after) = app
        .get(&format!("/api/external/ai-batch/status/{batch_id}"))
        .await;

    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["mode"], "gentle");
    assert_eq!(body["data"]["updatedRecords"], 0);
    assert_eq!(after["data"]["status"], "processing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_worker_spares_batch_after_reset() {
    let fake = FakeProvider::start(slow(1_000)).await;
    let owner = spawn_app().await;
    let other = spawn_app_with(AppOptions {
        database: Some(owner.database.clone()),
        ..AppOptions::default()
    })
    .await;
    let first = start_slow_batch(&owner, &fake, 10).await;
    tokio::time::sleep(Duration::from_millis(200)).await;

    // The reset goes to the other instance, so the owner learns of it only
    // through the database while its request is still in flight.
    let (status, reset) = other
        .post("/api/external/ai-batch/reset", json!({"force": true}))
        .await;
    let (_, started) = other
        .post(
            "/api/external/ai-batch/start",
            json!({"isExtracted": "all", "batchSize": 5, "aiConfig": fake.ai_config()}),
        )
        .await;
    let second = started["data"]["batchId"].as_str().expect("id").to_owned();
    tokio::time::sleep(Duration::from_millis(1_500)).await;

    assert_eq!(status, 200, "{reset}");
    assert_eq!(
        reset["data"]["previousStatus"]["currentBatchId"],
        first.as_str()
    );
    assert_eq!(reset["data"]["updatedRecords"], 1);
    let (_, status_second) = other
        .get(&format!("/api/external/ai-batch/status/{second}"))
        .await;
    assert!(
        matches!(
            status_second["data"]["status"].as_str(),
            Some("processing" | "completed")
        ),
        "{status_second}"
    );
    let (_, first_status) = owner
        .get(&format!("/api/external/ai-batch/status/{first}"))
        .await;
    assert_eq!(first_status["data"]["status"], "cancelled");
    assert_eq!(first_status["data"]["progress"]["processed"], 0);
    assert_eq!(
        owner.scalar(&format!(
            "SELECT count(*) AS value FROM items WHERE batch_id = '{first}'"
        )),
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clear_on_one_instance_stops_the_other() {
    let fake = FakeProvider::start(slow(600)).await;
    let worker = spawn_app().await;
    let control = spawn_app_with(AppOptions {
        database: Some(worker.database.clone()),
        ..AppOptions::default()
    })
    .await;
    let batch_id = start_slow_batch(&worker, &fake, 200).await;
    tokio::time::sleep(Duration::from_millis(800)).await;

    let (status, cleared) = control
        .post("/api/external/ai-batch/clear", json!({}))
        .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let settled = fake.request_count();
    tokio::time::sleep(Duration::from_millis(1_500)).await;

    assert_eq!(status, 200, "{cleared}");
    assert_eq!(
        cleared["data"]["beforeClear"]["currentBatchId"],
        batch_id.as_str()
    );
    assert_eq!(cleared["data"]["clearedTasks"]["activeProcesses"], 1);
    assert_eq!(
        fake.request_count(),
        settled,
        "the other instance kept calling the provider"
    );
    assert_eq!(
        worker.scalar("SELECT count(*) AS value FROM items WHERE analysis_state = 'processing'"),
        0
    );
    let (_, metrics) = (
        0,
        worker
            .http
            .get(worker.url("/metrics"))
            .send()
            .await
            .expect("sent")
            .text()
            .await
            .expect("text"),
    );
    assert!(metrics.contains("batch_local_workers 0"), "{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_lease_is_failed_by_watchdog() {
    let app = spawn_app_with(AppOptions {
        lease_secs: 3,
        ..AppOptions::default()
    })
    .await;
    app.seed(3, "lease").await;
    let mut connection = app.database.connect();
    // A batch whose owner died: processing, an old heartbeat, one claimed item.
    diesel::RunQueryDsl::execute(
        diesel::sql_query(
            "INSERT INTO ai_batches (batch_id, provider, model, mode, batch_size, concurrency, total, \
             max_item_id, owner_instance_id, heartbeat_at, started_at) VALUES \
             ('batch_1700000000000_dead01', 'local', 'm', 'optimized', 10, 1, 3, 1000000, 'gone', \
             now() - interval '1 hour', now() - interval '1 hour')",
        ),
        &mut connection,
    )
    .expect("insert batch");
    diesel::RunQueryDsl::execute(
        diesel::sql_query(
            "UPDATE items SET analysis_state = 'processing', claim_batch_id = 'batch_1700000000000_dead01' \
             WHERE id = (SELECT min(id) FROM items)",
        ),
        &mut connection,
    )
    .expect("claim an item");

    let (_, preview) = app.get("/api/external/ai-batch/clear").await;
    let (status, reset) = app
        .post("/api/external/ai-batch/reset", json!({"force": false}))
        .await;

    assert_eq!(
        preview["data"]["activeProcesses"]["count"], 0,
        "a dead owner is not a live worker"
    );
    assert_eq!(preview["data"]["processingRecords"]["count"], 1);
    assert_eq!(status, 200, "{reset}");
    let (_, batch) = app
        .get("/api/external/ai-batch/status/batch_1700000000000_dead01")
        .await;
    assert_eq!(batch["data"]["status"], "failed");
    assert!(
        batch["data"]["error"]
            .as_str()
            .unwrap_or_default()
            .contains("lease"),
        "{batch}"
    );
    assert_eq!(
        app.scalar("SELECT count(*) AS value FROM items WHERE analysis_state = 'processing'"),
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contract_typescript_snippet_runs_under_node() {
    if std::process::Command::new("node")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("node is not installed; skipping the TypeScript snippet check");
        return;
    }
    let app = spawn_app_with(AppOptions::default()).await;
    let script = format!(
        r#"
const base = {base:?};
const key = {key:?};
async function checkClearPreview() {{
  const response = await fetch(base + '/api/external/ai-batch/clear', {{ headers: {{ 'x-api-key': key }} }});
  return await response.json();
}}
async function clearAllTasks() {{
  const response = await fetch(base + '/api/external/ai-batch/clear', {{
    method: 'POST',
    headers: {{ 'x-api-key': key, 'Content-Type': 'application/json' }},
    body: JSON.stringify({{}})
  }});
  return await response.json();
}}
(async () => {{
  const preview = await checkClearPreview();
  const cleared = await clearAllTasks();
  console.log(JSON.stringify({{ preview: preview.success, cleared: cleared.success }}));
}})();
"#,
        base = app.address,
        key = crate::helpers::API_KEY,
    );

    let output = tokio::process::Command::new("node")
        .arg("-e")
        .arg(script)
        .output()
        .await
        .expect("node runs");

    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(stdout.trim(), r#"{"preview":true,"cleared":true}"#);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_outage_fails_fast_then_recovers() {
    let Some(proxy) = crate::helpers::DbProxy::start().await else {
        eprintln!("the test database is on a unix socket; skipping the outage test");
        return;
    };
    let direct = spawn_app().await;
    let url = proxy.url_for(&direct.database.url);
    let app = spawn_app_with(AppOptions {
        database: Some(direct.database.clone()),
        database_url: Some(url),
        ..AppOptions::default()
    })
    .await;
    let (healthy, _) = app.get("/api/external/ai-batch/clear").await;

    proxy.cut();
    let started = std::time::Instant::now();
    let (status, body) = app.post("/api/external/ai-batch/clear", json!({})).await;
    let elapsed = started.elapsed();
    let (preview_status, _) = app.get("/api/external/ai-batch/clear").await;
    let ready = app
        .http
        .get(app.url("/readyz"))
        .send()
        .await
        .expect("sent")
        .status()
        .as_u16();
    proxy.restore();
    let (after, recovered) = app.post("/api/external/ai-batch/clear", json!({})).await;

    assert_eq!(healthy, 200);
    assert_eq!(status, 500, "{body}");
    assert_eq!(body["success"], false);
    assert_eq!(body["error"], "清除操作失败");
    assert!(is_millis_timestamp(&body["timestamp"]), "{body}");
    let details = body["details"].as_str().expect("details is text");
    assert!(details.contains("数据库"), "{details}");
    assert!(
        !details.contains("127.0.0.1") && !details.to_lowercase().contains("select"),
        "{details}"
    );
    assert!(elapsed < Duration::from_secs(6), "answered in {elapsed:?}");
    assert_eq!(preview_status, 500);
    assert_eq!(ready, 503);
    assert_eq!(after, 200, "{recovered}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gentle_reset_spares_other_instances_batch() {
    let fake = FakeProvider::start(slow(3_000)).await;
    let owner = spawn_app().await;
    let other = spawn_app_with(AppOptions {
        database: Some(owner.database.clone()),
        ..AppOptions::default()
    })
    .await;
    let batch_id = start_slow_batch(&owner, &fake, 10).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let claimed =
        owner.scalar("SELECT count(*) AS value FROM items WHERE analysis_state = 'processing'");

    let (status, body) = other
        .post("/api/external/ai-batch/reset", json!({"force": false}))
        .await;

    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["updatedRecords"], 0);
    assert_eq!(body["data"]["releasedItems"], 0);
    let (_, batch) = other
        .get(&format!("/api/external/ai-batch/status/{batch_id}"))
        .await;
    assert_eq!(batch["data"]["status"], "processing");
    assert_eq!(
        owner.scalar("SELECT count(*) AS value FROM items WHERE analysis_state = 'processing'"),
        claimed
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clear_gives_up_on_a_stalled_lock() {
    let fake = FakeProvider::start(slow(10_000)).await;
    let app = spawn_app().await;
    let batch_id = start_slow_batch(&app, &fake, 10).await;
    // A stalled transaction holds the batch row, as a frozen worker would.
    let holder = crate::helpers::hold_row_lock(
        app.database.clone(),
        format!("SELECT 1 FROM ai_batches WHERE batch_id = '{batch_id}' FOR UPDATE"),
        Duration::from_secs(8),
    );

    let started = std::time::Instant::now();
    let (status, body) = app.post("/api/external/ai-batch/clear", json!({})).await;
    let elapsed = started.elapsed();
    holder.join().expect("the holder ends");
    let (after, cleared) = app.post("/api/external/ai-batch/clear", json!({})).await;

    assert_eq!(status, 500, "{body}");
    assert_eq!(body["error"], "清除操作失败");
    assert!(
        body["details"]
            .as_str()
            .unwrap_or_default()
            .contains("锁定"),
        "{body}"
    );
    assert!(
        elapsed < Duration::from_secs(7),
        "gave up after {elapsed:?}"
    );
    assert_eq!(after, 200);
    assert_eq!(
        cleared["data"]["clearedTasks"]["processingRecords"], 1,
        "{cleared}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conflict_preview_follows_language() {
    let fake = FakeProvider::start(slow(3_000)).await;
    let app = spawn_app().await;
    start_slow_batch(&app, &fake, 10).await;

    let response = app
        .http
        .post(app.url("/api/external/ai-batch/clear"))
        .header("x-api-key", crate::helpers::API_KEY)
        .header("accept-language", "en")
        .json(&json!({"expectedBatchIds": []}))
        .send()
        .await
        .expect("sent");
    let status = response.status().as_u16();
    let body: Value = response.json().await.expect("JSON");

    assert_eq!(status, 409, "{body}");
    assert_eq!(
        body["data"]["currentStatus"]["globalMessage"],
        "an AI batch is running"
    );
    let duration = body["data"]["processingRecords"]["tasks"][0]["duration"]
        .as_str()
        .expect("text");
    assert!(
        duration.ends_with('s') && !duration.contains('秒'),
        "{duration}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn owner_keeps_batch_with_stale_heartbeat() {
    let fake = FakeProvider::start(slow(3_000)).await;
    let app = spawn_app_with(AppOptions {
        lease_secs: 3,
        ..AppOptions::default()
    })
    .await;
    let batch_id = start_slow_batch(&app, &fake, 10).await;
    // As after a database outage: the owner is alive, its heartbeat is old.
    let mut connection = app.database.connect();
    diesel::RunQueryDsl::execute(
        diesel::sql_query(format!(
            "UPDATE ai_batches SET heartbeat_at = now() - interval '1 hour' WHERE batch_id = '{batch_id}'"
        )),
        &mut connection,
    )
    .expect("age the heartbeat");

    let (status, body) = app
        .post("/api/external/ai-batch/reset", json!({"force": false}))
        .await;
    let (_, batch) = app
        .get(&format!("/api/external/ai-batch/status/{batch_id}"))
        .await;

    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["updatedRecords"], 0);
    assert_eq!(batch["data"]["status"], "processing", "{batch}");
}
