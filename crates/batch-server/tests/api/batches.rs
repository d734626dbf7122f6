//! Starting and running batches against the local analyzer and a fake
//! OpenAI-compatible provider.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{AppOptions, FakeBehaviour, FakeProvider, spawn_app, spawn_app_with};

const WAIT: Duration = Duration::from_secs(30);

fn fixture(name: &str) -> Vec<Value> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read_to_string(path)
        .expect("the fixture exists")
        .lines()
        .map(|line| serde_json::from_str(line).expect("each fixture line is JSON"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_batch_analyses_both_languages() {
    let app = spawn_app().await;
    let mut items = fixture("tweets-en-sample.jsonl");
    items.extend(fixture("quotes-zh-sample.jsonl"));
    let (status, body) = app
        .post("/api/external/items", json!({ "items": items }))
        .await;
    assert_eq!(status, 200, "{body}");

    let (status, started) = app
        .post(
            "/api/external/ai-batch/start",
            json!({"batchSize": 25, "concurrency": 2}),
        )
        .await;
    assert_eq!(status, 201, "{started}");
    let batch_id = started["data"]["batchId"]
        .as_str()
        .expect("a batch id")
        .to_owned();
    let done = app.wait_for_batch(&batch_id, WAIT).await;

    assert_eq!(started["data"]["totalItems"], 250);
    assert_eq!(started["data"]["estimatedBatches"], 10);
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["progress"]["processed"], 250);
    assert_eq!(done["progress"]["succeeded"], 250);
    assert_eq!(
        app.scalar("SELECT count(*) AS value FROM items WHERE analysis_state <> 'analyzed'"),
        0
    );
    let (_, zh) = app
        .get("/api/external/items?listId=zh-chinese&limit=5")
        .await;
    for entry in zh["data"]["entries"].as_array().expect("entries") {
        let keywords: Vec<&str> = entry["analysis"]["keywords"]
            .as_array()
            .expect("keywords")
            .iter()
            .filter_map(|keyword| keyword.as_str())
            .collect();
        // Segmented words: Chinese keywords of two or more characters, not
        // single characters and not the whole sentence.
        let words = keywords
            .iter()
            .filter(|word| {
                word.chars().all(|c| !c.is_ascii()) && (2..=8).contains(&word.chars().count())
            })
            .count();
        assert!(words >= 1, "{keywords:?}");
    }
    let (_, en) = app.get("/api/external/items?listId=web&limit=20").await;
    for entry in en["data"]["entries"].as_array().expect("entries") {
        let keywords = &entry["analysis"]["keywords"];
        for stop_word in ["the", "and", "a", "to", "of"] {
            assert!(
                !keywords
                    .as_array()
                    .expect("keywords")
                    .contains(&json!(stop_word)),
                "{keywords}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_id_has_the_documented_form() {
    let app = spawn_app().await;
    app.seed(3, "form").await;

    let (_, started) = app.post("/api/external/ai-batch/start", json!({})).await;

    let id = started["data"]["batchId"].as_str().expect("a batch id");
    let parts: Vec<&str> = id.split('_').collect();
    assert_eq!(parts.len(), 3, "{id}");
    assert_eq!(parts[0], "batch");
    assert_eq!(parts[1].len(), 13, "{id}");
    assert!(parts[1].chars().all(|c| c.is_ascii_digit()), "{id}");
    assert_eq!(parts[2].len(), 6, "{id}");
    assert!(
        parts[2]
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()),
        "{id}"
    );
}

async fn run_fake_batch(
    behaviour: FakeBehaviour,
    mode: &str,
    items: usize,
    options: AppOptions,
) -> (Value, FakeProvider, crate::helpers::TestApp) {
    let fake = FakeProvider::start(behaviour).await;
    let app = spawn_app_with(options).await;
    app.seed(items, "fake").await;
    let (status, started) = app
        .post(
            "/api/external/ai-batch/start",
            json!({"batchSize": 5, "batchProcessingMode": mode, "concurrency": 2, "aiConfig": fake.ai_config()}),
        )
        .await;
    assert_eq!(status, 201, "{started}");
    let batch_id = started["data"]["batchId"]
        .as_str()
        .expect("a batch id")
        .to_owned();
    let done = app.wait_for_batch(&batch_id, WAIT).await;
    (done, fake, app)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn optimized_mode_sends_one_request_per_chunk() {
    let (done, fake, app) = run_fake_batch(
        FakeBehaviour::default(),
        "optimized",
        12,
        AppOptions::default(),
    )
    .await;

    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["progress"]["succeeded"], 12);
    assert_eq!(fake.request_count(), 3);
    let (_, items) = app.get("/api/external/items?limit=1").await;
    assert_eq!(
        items["data"]["entries"][0]["analysis"]["keywords"][0],
        "fake"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traditional_mode_sends_one_request_per_item() {
    let (done, fake, _app) = run_fake_batch(
        FakeBehaviour::default(),
        "traditional",
        7,
        AppOptions::default(),
    )
    .await;

    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["progress"]["succeeded"], 7);
    assert_eq!(fake.request_count(), 7);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_output_fails_items_not_batch() {
    let behaviour = FakeBehaviour {
        malformed: true,
        ..FakeBehaviour::default()
    };

    let (done, _fake, app) = run_fake_batch(behaviour, "optimized", 6, AppOptions::default()).await;

    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["progress"]["failed"], 6);
    assert_eq!(done["progress"]["succeeded"], 0);
    let (_, failed) = app.get("/api/external/items?state=failed&limit=1").await;
    let reason = failed["data"]["entries"][0]["lastError"]
        .as_str()
        .expect("a failure reason");
    assert!(!reason.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_answer_counts_as_failed() {
    let fake = FakeProvider::start(FakeBehaviour::default()).await;
    let app = spawn_app().await;
    app.seed(3, "gap").await;
    let first_id = app.scalar("SELECT min(id) AS value FROM items");
    drop(fake);
    let behaviour = FakeBehaviour {
        drop_id: Some(first_id),
        ..FakeBehaviour::default()
    };
    let fake = FakeProvider::start(behaviour).await;

    let (_, started) = app
        .post(
            "/api/external/ai-batch/start",
            json!({"batchSize": 3, "aiConfig": fake.ai_config()}),
        )
        .await;
    let done = app
        .wait_for_batch(started["data"]["batchId"].as_str().expect("id"), WAIT)
        .await;

    assert_eq!(done["progress"]["succeeded"], 2, "{done}");
    assert_eq!(done["progress"]["failed"], 1, "{done}");
    let state = app.scalar(&format!(
        "SELECT (analysis_state = 'failed')::int::bigint AS value FROM items WHERE id = {first_id}"
    ));
    assert_eq!(state, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_then_success_completes() {
    let behaviour = FakeBehaviour {
        leading_statuses: vec![429, 503],
        ..FakeBehaviour::default()
    };

    let (done, fake, _app) = run_fake_batch(behaviour, "optimized", 5, AppOptions::default()).await;

    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["progress"]["succeeded"], 5);
    assert_eq!(fake.request_count(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_401_fails_batch_fast() {
    let behaviour = FakeBehaviour {
        leading_statuses: vec![401; 50],
        ..FakeBehaviour::default()
    };

    let (done, fake, app) = run_fake_batch(behaviour, "optimized", 20, AppOptions::default()).await;

    assert_eq!(done["status"], "failed", "{done}");
    let error = done["error"].as_str().expect("a failure reason");
    assert!(
        error.contains("401") || error.to_lowercase().contains("key"),
        "{error}"
    );
    assert!(!error.contains("sk-fake-provider-key"), "{error}");
    assert!(
        fake.request_count() <= 2,
        "failed fast, not after every chunk"
    );
    assert_eq!(
        app.scalar("SELECT count(*) AS value FROM items WHERE analysis_state = 'processing'"),
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_timeout_fails_items_with_reason() {
    let behaviour = FakeBehaviour {
        latency: Duration::from_secs(3),
        ..FakeBehaviour::default()
    };
    let options = AppOptions {
        provider_timeout_secs: 1,
        provider_retries: 0,
        ..AppOptions::default()
    };

    let (done, _fake, app) = run_fake_batch(behaviour, "optimized", 5, options).await;

    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["progress"]["failed"], 5);
    let (_, failed) = app.get("/api/external/items?state=failed&limit=1").await;
    let reason = failed["data"]["entries"][0]["lastError"]
        .as_str()
        .unwrap_or_default()
        .to_lowercase();
    assert!(reason.contains("time"), "{reason}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_mid_request_writes_nothing() {
    let fake = FakeProvider::start(FakeBehaviour {
        latency: Duration::from_secs(2),
        ..FakeBehaviour::default()
    })
    .await;
    let app = spawn_app().await;
    app.seed(10, "slow").await;
    let (_, started) = app
        .post(
            "/api/external/ai-batch/start",
            json!({"batchSize": 5, "aiConfig": fake.ai_config()}),
        )
        .await;
    let batch_id = started["data"]["batchId"].as_str().expect("id").to_owned();
    tokio::time::sleep(Duration::from_millis(500)).await;

    let (status, cancelled) = app
        .post(
            &format!("/api/external/ai-batch/batches/{batch_id}/cancel"),
            json!({}),
        )
        .await;
    tokio::time::sleep(Duration::from_secs(3)).await;

    assert_eq!(status, 200, "{cancelled}");
    assert_eq!(cancelled["data"]["cancelled"], true);
    let done = app.wait_for_batch(&batch_id, WAIT).await;
    assert_eq!(done["status"], "cancelled");
    assert_eq!(done["progress"]["processed"], 0);
    assert_eq!(
        app.scalar("SELECT count(*) AS value FROM items WHERE analysis IS NOT NULL"),
        0
    );
    assert_eq!(
        app.scalar("SELECT count(*) AS value FROM items WHERE analysis_state <> 'pending'"),
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_of_finished_or_unknown_batch() {
    let app = spawn_app().await;
    app.seed(2, "done").await;
    let (_, started) = app.post("/api/external/ai-batch/start", json!({})).await;
    let batch_id = started["data"]["batchId"].as_str().expect("id").to_owned();
    app.wait_for_batch(&batch_id, WAIT).await;

    let (finished, body) = app
        .post(
            &format!("/api/external/ai-batch/batches/{batch_id}/cancel"),
            json!({}),
        )
        .await;
    let (unknown, _) = app
        .post(
            "/api/external/ai-batch/batches/batch_1000000000000_zzzzzz/cancel",
            json!({}),
        )
        .await;

    assert_eq!(finished, 200);
    assert_eq!(body["data"]["cancelled"], false);
    assert_eq!(body["data"]["status"], "completed");
    assert_eq!(unknown, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_starts_yield_one_201() {
    let fake = FakeProvider::start(FakeBehaviour {
        latency: Duration::from_secs(2),
        ..FakeBehaviour::default()
    })
    .await;
    let app = spawn_app().await;
    app.seed(20, "race").await;
    let body = json!({"aiConfig": fake.ai_config()});

    let starts = (0..50).map(|_| app.post("/api/external/ai-batch/start", body.clone()));
    let results = futures_util::future::join_all(starts).await;

    let created: Vec<&Value> = results
        .iter()
        .filter(|(status, _)| *status == 201)
        .map(|(_, body)| body)
        .collect();
    let conflicts: Vec<&Value> = results
        .iter()
        .filter(|(status, _)| *status == 409)
        .map(|(_, body)| body)
        .collect();
    assert_eq!(created.len(), 1, "{results:?}");
    assert_eq!(conflicts.len(), 49, "{results:?}");
    let winner = &created[0]["data"]["batchId"];
    assert!(
        conflicts
            .iter()
            .all(|body| &body["data"]["currentBatchId"] == winner),
        "{conflicts:?}"
    );
    assert_eq!(app.scalar("SELECT count(*) AS value FROM ai_batches"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_select_exactly_the_counted_items() {
    let app = spawn_app().await;
    let items = json!({"items": [
        {"externalId": "1", "content": "one", "username": "ann", "listId": "a", "publishedAt": "2024-01-01T00:00:00Z"},
        {"externalId": "2", "content": "two", "username": "bob", "listId": "a", "publishedAt": "2024-06-01T00:00:00Z"},
        {"externalId": "3", "content": "three", "username": "ann", "listId": "b", "publishedAt": "2024-06-01T00:00:00Z"},
        {"externalId": "4", "content": "four", "username": "cy", "listId": "c"},
        {"externalId": "5", "content": "five", "username": "ann", "listId": "a", "publishedAt": "2025-01-01T00:00:00Z"},
    ]});
    app.post("/api/external/items", items).await;
    let cases = [
        (json!({"listIds": ["a"]}), vec!["1", "2", "5"]),
        (json!({"usernames": ["ann"]}), vec!["1", "3", "5"]),
        (
            json!({"publishedAfter": "2024-05-01T00:00:00Z"}),
            vec!["2", "3", "5"],
        ),
        (
            json!({"listIds": ["a"], "usernames": ["ann"], "publishedAfter": "2024-05-01T00:00:00Z"}),
            vec!["5"],
        ),
        (json!({"maxItems": 2}), vec!["1", "2"]),
    ];

    for (filter, expected) in cases {
        let (status, started) = app
            .post("/api/external/ai-batch/start", filter.clone())
            .await;
        assert_eq!(status, 201, "{filter}: {started}");
        let batch_id = started["data"]["batchId"].as_str().expect("id").to_owned();
        assert_eq!(started["data"]["totalItems"], expected.len(), "{filter}");
        let done = app.wait_for_batch(&batch_id, WAIT).await;
        assert_eq!(
            done["progress"]["processed"],
            expected.len(),
            "{filter}: {done}"
        );
        let (_, results) = app
            .get(&format!(
                "/api/external/ai-batch/batches/{batch_id}/results"
            ))
            .await;
        let ids: Vec<&str> = results["data"]["entries"]
            .as_array()
            .expect("entries")
            .iter()
            .map(|entry| entry["externalId"].as_str().unwrap_or_default())
            .collect();
        assert_eq!(ids, expected, "{filter}");
        // Reset every analysis so the next case sees unanalysed items again.
        let mut connection = app.database.connect();
        diesel::RunQueryDsl::execute(
            diesel::sql_query(
                "UPDATE items SET analysis = NULL, analysis_state = 'pending', analysed_at = NULL",
            ),
            &mut connection,
        )
        .expect("reset items");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn is_extracted_selects_by_analysis() {
    let app = spawn_app().await;
    app.seed(4, "ex").await;
    let (_, first) = app
        .post("/api/external/ai-batch/start", json!({"maxItems": 3}))
        .await;
    app.wait_for_batch(first["data"]["batchId"].as_str().expect("id"), WAIT)
        .await;

    let (_, extracted) = app
        .post(
            "/api/external/ai-batch/start",
            json!({"isExtracted": "true"}),
        )
        .await;
    app.wait_for_batch(extracted["data"]["batchId"].as_str().expect("id"), WAIT)
        .await;
    let (_, rest) = app
        .post(
            "/api/external/ai-batch/start",
            json!({"isExtracted": "false"}),
        )
        .await;
    app.wait_for_batch(rest["data"]["batchId"].as_str().expect("id"), WAIT)
        .await;
    let (_, all) = app
        .post(
            "/api/external/ai-batch/start",
            json!({"isExtracted": "all"}),
        )
        .await;

    assert_eq!(extracted["data"]["totalItems"], 3);
    assert_eq!(rest["data"]["totalItems"], 1);
    assert_eq!(all["data"]["totalItems"], 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_to_process_is_404() {
    let app = spawn_app().await;

    let (status, body) = app.post("/api/external/ai-batch/start", json!({})).await;

    assert_eq!(status, 404, "{body}");
    assert_eq!(body["data"]["remainingItems"], 0);
    assert_eq!(body["success"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_start_names_each_field() {
    let app = spawn_app().await;
    app.seed(1, "v").await;
    let body = json!({
        "batchSize": 101,
        "batchProcessingMode": "turbo",
        "publishedAfter": "yesterday",
        "isExtracted": "maybe",
        "concurrency": 0,
        "aiConfig": {"provider": "skynet"},
    });

    let (status, error) = app.post("/api/external/ai-batch/start", body).await;
    let (url_status, url_error) = app
        .post(
            "/api/external/ai-batch/start",
            json!({"aiConfig": {"provider": "openai", "apiKey": "k", "baseURL": "ftp:/x"}}),
        )
        .await;
    let (type_status, type_error) = app
        .post("/api/external/ai-batch/start", json!({"batchSize": "ten"}))
        .await;

    assert_eq!(status, 400, "{error}");
    let fields: Vec<&str> = error["details"]
        .as_array()
        .expect("details")
        .iter()
        .filter_map(|d| d["field"].as_str())
        .collect();
    for field in [
        "batchSize",
        "batchProcessingMode",
        "publishedAfter",
        "isExtracted",
        "concurrency",
        "aiConfig.provider",
    ] {
        assert!(fields.contains(&field), "{field} missing from {fields:?}");
    }
    assert_eq!(url_status, 400);
    assert_eq!(url_error["details"][0]["field"], "aiConfig.baseURL");
    assert_eq!(type_status, 400);
    assert_eq!(type_error["details"][0]["field"], "batchSize");
    assert_eq!(app.scalar("SELECT count(*) AS value FROM ai_batches"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn continue_processes_what_the_chain_left() {
    let fake = FakeProvider::start(FakeBehaviour {
        latency: Duration::from_millis(300),
        ..FakeBehaviour::default()
    })
    .await;
    let app = spawn_app().await;
    app.seed(10, "chain").await;
    let (_, started) = app
        .post(
            "/api/external/ai-batch/start",
            json!({"batchSize": 2, "concurrency": 1, "aiConfig": fake.ai_config()}),
        )
        .await;
    let first = started["data"]["batchId"].as_str().expect("id").to_owned();
    tokio::time::sleep(Duration::from_millis(700)).await;
    app.post(
        &format!("/api/external/ai-batch/batches/{first}/cancel"),
        json!({}),
    )
    .await;
    let processed = app.wait_for_batch(&first, WAIT).await["progress"]["processed"]
        .as_u64()
        .expect("count");

    let (keyless, keyless_body) = app
        .post(
            "/api/external/ai-batch/continue",
            json!({"previousBatchId": first}),
        )
        .await;
    let (status, continued) = app
        .post(
            "/api/external/ai-batch/continue",
            json!({"previousBatchId": first, "batchSize": 5, "aiConfig": {"apiKey": "sk-fake-provider-key"}}),
        )
        .await;
    let second = continued["data"]["batchId"]
        .as_str()
        .expect("id")
        .to_owned();
    let done = app.wait_for_batch(&second, WAIT).await;
    let (missing, _) = app.post("/api/external/ai-batch/continue", json!({})).await;

    assert!(
        processed > 0 && processed < 10,
        "the first batch was cut short: {processed}"
    );
    assert_eq!(status, 201, "{continued}");
    assert_eq!(continued["data"]["previousBatchId"], first.as_str());
    assert_eq!(
        continued["data"]["provider"], "openai",
        "the provider is inherited"
    );
    assert_eq!(continued["data"]["model"], "gpt-fake");
    assert_eq!(
        continued["data"]["batchSize"], 5,
        "a field in the request wins"
    );
    assert_eq!(
        continued["data"]["concurrency"], 1,
        "other settings are inherited"
    );
    assert_eq!(keyless, 400, "{keyless_body}");
    assert_eq!(keyless_body["details"][0]["field"], "aiConfig.apiKey");
    assert_eq!(
        continued["data"]["totalItems"].as_u64(),
        Some(10 - processed)
    );
    assert_eq!(done["status"], "completed");
    assert_eq!(
        app.scalar("SELECT count(*) AS value FROM items WHERE analysis IS NULL"),
        0
    );
    assert_eq!(missing, 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_and_history_report_batches() {
    let app = spawn_app().await;
    app.seed(3, "hist").await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        let (_, started) = app
            .post(
                "/api/external/ai-batch/start",
                json!({"isExtracted": "all"}),
            )
            .await;
        let id = started["data"]["batchId"].as_str().expect("id").to_owned();
        app.wait_for_batch(&id, WAIT).await;
        ids.push(id);
    }

    let (_, page) = app.get("/api/external/ai-batch/batches?limit=2").await;
    let cursor = page["data"]["nextCursor"]
        .as_str()
        .expect("more pages")
        .to_owned();
    let (_, rest) = app
        .get(&format!(
            "/api/external/ai-batch/batches?limit=2&cursor={cursor}"
        ))
        .await;
    let (_, global) = app.get("/api/external/ai-batch/status").await;
    let (_, start_get) = app.get("/api/external/ai-batch/start").await;
    let (unknown, _) = app
        .get("/api/external/ai-batch/status/batch_1000000000000_zzzzzz")
        .await;

    assert_eq!(page["data"]["entries"][0]["batchId"], ids[2].as_str());
    assert_eq!(page["data"]["entries"][1]["batchId"], ids[1].as_str());
    assert_eq!(rest["data"]["entries"][0]["batchId"], ids[0].as_str());
    assert_eq!(global["data"]["hasGlobalTask"], false);
    assert_eq!(start_get["data"]["hasGlobalTask"], false);
    assert_eq!(unknown, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn results_stream_as_json_lines() {
    let app = spawn_app().await;
    app.seed(7, "lines").await;
    let (_, started) = app.post("/api/external/ai-batch/start", json!({})).await;
    let batch_id = started["data"]["batchId"].as_str().expect("id").to_owned();
    app.wait_for_batch(&batch_id, WAIT).await;

    let response = app
        .http
        .get(app.url(&format!(
            "/api/external/ai-batch/batches/{batch_id}/results?format=jsonl"
        )))
        .header("x-api-key", crate::helpers::API_KEY)
        .send()
        .await
        .expect("sent");
    let text = response.text().await.expect("body");
    let lines: Vec<Value> = text
        .lines()
        .map(|line| serde_json::from_str(line).expect("JSON line"))
        .collect();

    assert_eq!(lines.len(), 7);
    assert!(lines.iter().all(|line| line["state"] == "analyzed"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn locked_item_is_claimed_later() {
    let fake = FakeProvider::start(FakeBehaviour {
        latency: Duration::from_millis(400),
        ..FakeBehaviour::default()
    })
    .await;
    let app = spawn_app().await;
    app.seed(15, "locked").await;
    let locked_id = app.scalar("SELECT min(id) + 2 AS value FROM items");
    // Another transaction holds the third item, as an upsert of it would,
    // and keeps it past the point where the other chunks are done.
    let holder = crate::helpers::hold_row_lock(
        app.database.clone(),
        format!("SELECT id FROM items WHERE id = {locked_id} FOR UPDATE"),
        Duration::from_millis(2_000),
    );

    let (_, started) = app
        .post(
            "/api/external/ai-batch/start",
            json!({"batchSize": 5, "concurrency": 1, "aiConfig": fake.ai_config()}),
        )
        .await;
    let batch_id = started["data"]["batchId"].as_str().expect("id").to_owned();
    let first_claim = app.scalar(&format!("SELECT count(*) AS value FROM items WHERE claim_batch_id = '{batch_id}' AND id = {locked_id}"));
    holder.join().expect("the holder thread ends");
    let done = app.wait_for_batch(&batch_id, WAIT).await;

    assert_eq!(
        first_claim, 0,
        "the locked item was skipped, not waited for"
    );
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["progress"]["processed"], 15, "{done}");
    let state = app.scalar(&format!(
        "SELECT (analysis IS NOT NULL)::int::bigint AS value FROM items WHERE id = {locked_id}"
    ));
    assert_eq!(state, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn misspelt_and_odd_inputs_are_rejected() {
    let app = spawn_app().await;
    app.seed(2, "odd").await;
    let long_id = "x".repeat(5_000);

    let (misspelt, misspelt_body) = app
        .post("/api/external/ai-batch/start", json!({"batchsize": 5}))
        .await;
    let (nested, nested_body) = app
        .post(
            "/api/external/ai-batch/start",
            json!({"aiConfig": {"provider": "local", "baseUrl": "http://127.0.0.1:1"}}),
        )
        .await;
    let (array, _) = app.post("/api/external/ai-batch/clear", json!([])).await;
    let (nul, nul_body) = app
        .post(
            "/api/external/ai-batch/start",
            json!({"usernames": ["a\u{0}b"]}),
        )
        .await;
    let (cursor, _) = app
        .get("/api/external/ai-batch/batches?cursor=garbage")
        .await;
    let (limit, limit_body) = app.get("/api/external/ai-batch/batches?limit=ten").await;
    let (odd_id, odd_body) = app
        .get(&format!("/api/external/ai-batch/status/{long_id}"))
        .await;
    let (credentials, credentials_body) = app
        .post(
            "/api/external/ai-batch/start",
            json!({"aiConfig": {"provider": "openai", "apiKey": "k", "baseURL": "http://user:pass@127.0.0.1:1/v1"}}),
        )
        .await;
    let (reset_extra, _) = app
        .post(
            "/api/external/ai-batch/reset",
            json!({"force": false, "x": 1}),
        )
        .await;
    let (item_extra, item_extra_body) = app
        .post(
            "/api/external/items",
            json!({"items": [{"externalId": "e", "content": "c", "list_id": "x"}]}),
        )
        .await;
    let (odd_continue, _) = app
        .post(
            "/api/external/ai-batch/continue",
            json!({"previousBatchId": "a"}),
        )
        .await;

    assert_eq!(misspelt, 400, "{misspelt_body}");
    assert!(
        misspelt_body["details"][0]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("batchsize"),
        "{misspelt_body}"
    );
    assert_eq!(nested, 400, "{nested_body}");
    assert_eq!(nested_body["details"][0]["field"], "aiConfig.baseUrl");
    assert_eq!(array, 400);
    assert_eq!(nul, 400, "{nul_body}");
    assert_eq!(cursor, 400);
    assert_eq!(limit, 400);
    assert_eq!(limit_body["details"][0]["field"], "limit");
    assert_eq!(odd_id, 404);
    assert!(
        odd_body.to_string().len() < 1_000,
        "the 404 does not echo the whole id"
    );
    assert_eq!(odd_continue, 400);
    assert_eq!(credentials, 400, "{credentials_body}");
    assert_eq!(credentials_body["details"][0]["field"], "aiConfig.baseURL");
    assert_eq!(reset_extra, 400);
    assert_eq!(item_extra, 400, "{item_extra_body}");
    assert_eq!(item_extra_body["details"][0]["field"], "items[0].list_id");
    assert_eq!(app.scalar("SELECT count(*) AS value FROM ai_batches"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn continue_keeps_the_item_limit() {
    let fake = FakeProvider::start(FakeBehaviour {
        latency: Duration::from_millis(300),
        ..FakeBehaviour::default()
    })
    .await;
    let app = spawn_app().await;
    app.seed(30, "limit").await;
    let (_, started) = app
        .post(
            "/api/external/ai-batch/start",
            json!({"maxItems": 12, "batchSize": 2, "concurrency": 1, "aiConfig": fake.ai_config()}),
        )
        .await;
    let first = started["data"]["batchId"].as_str().expect("id").to_owned();
    tokio::time::sleep(Duration::from_millis(700)).await;
    app.post(
        &format!("/api/external/ai-batch/batches/{first}/cancel"),
        json!({}),
    )
    .await;
    let processed = app.wait_for_batch(&first, WAIT).await["progress"]["processed"]
        .as_u64()
        .expect("count");

    let (status, continued) = app
        .post(
            "/api/external/ai-batch/continue",
            json!({"previousBatchId": first, "aiConfig": {"apiKey": "sk-fake-provider-key"}}),
        )
        .await;
    let second = continued["data"]["batchId"]
        .as_str()
        .expect("id")
        .to_owned();
    app.wait_for_batch(&second, WAIT).await;
    let (used_up, used_up_body) = app
        .post(
            "/api/external/ai-batch/continue",
            json!({"previousBatchId": second, "aiConfig": {"apiKey": "sk-fake-provider-key"}}),
        )
        .await;

    assert!(processed < 12, "the first batch was cut short: {processed}");
    assert_eq!(status, 201, "{continued}");
    assert_eq!(
        continued["data"]["totalItems"].as_u64(),
        Some(12 - processed)
    );
    assert_eq!(
        app.scalar("SELECT count(*) AS value FROM items WHERE analysis IS NOT NULL"),
        12
    );
    assert_eq!(used_up, 404, "{used_up_body}");
    assert_eq!(used_up_body["data"]["remainingItems"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn id_only_answers_keep_stored_analyses() {
    let app = spawn_app().await;
    app.seed(4, "keep").await;
    let (_, first) = app.post("/api/external/ai-batch/start", json!({})).await;
    app.wait_for_batch(first["data"]["batchId"].as_str().expect("id"), WAIT)
        .await;
    let fake = FakeProvider::start(FakeBehaviour {
        ids_only: true,
        ..FakeBehaviour::default()
    })
    .await;

    let (_, second) = app
        .post(
            "/api/external/ai-batch/start",
            json!({"isExtracted": "all", "aiConfig": fake.ai_config()}),
        )
        .await;
    let done = app
        .wait_for_batch(second["data"]["batchId"].as_str().expect("id"), WAIT)
        .await;

    assert_eq!(done["progress"]["failed"], 4, "{done}");
    assert_eq!(done["progress"]["succeeded"], 0, "{done}");
    assert_eq!(app.scalar("SELECT count(*) AS value FROM items WHERE provider = 'local' AND analysis ? 'keywords' AND jsonb_array_length(analysis->'keywords') > 0"), 4);
}
