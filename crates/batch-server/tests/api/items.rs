//! Item upsert and listing.

use serde_json::json;

use crate::helpers::spawn_app;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upsert_inserts_then_updates() {
    let app = spawn_app().await;

    let first = app
        .upsert(&[
            ("a", "first text", "ann", "l1"),
            ("b", "second", "bob", "l1"),
        ])
        .await;
    let second = app
        .upsert(&[
            ("a", "first text, edited", "ann", "l2"),
            ("c", "third", "cy", "l1"),
        ])
        .await;

    assert_eq!(first["data"], json!({"inserted": 2, "updated": 0}));
    assert_eq!(second["data"], json!({"inserted": 1, "updated": 1}));
    let (_, list) = app.get("/api/external/items?listId=l2").await;
    assert_eq!(list["data"]["entries"][0]["content"], "first text, edited");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_item_rejects_whole_request() {
    let app = spawn_app().await;
    let body = json!({"items": [
        {"externalId": "ok-1", "content": "fine"},
        {"externalId": "", "content": "blank id"},
        {"externalId": "ok-2", "content": 42, "publishedAt": "last tuesday"},
    ]});

    let (status, error) = app.post("/api/external/items", body).await;

    assert_eq!(status, 400, "{error}");
    assert_eq!(error["success"], false);
    let fields: Vec<String> = error["details"]
        .as_array()
        .expect("details lists fields")
        .iter()
        .map(|detail| detail["field"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert!(
        fields.contains(&"items[1].externalId".to_owned()),
        "{fields:?}"
    );
    assert!(
        fields.contains(&"items[2].content".to_owned()),
        "{fields:?}"
    );
    assert!(
        fields.contains(&"items[2].publishedAt".to_owned()),
        "{fields:?}"
    );
    assert_eq!(app.scalar("SELECT count(*) AS value FROM items"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upsert_rejects_empty_and_oversized_requests() {
    let app = spawn_app().await;
    let too_many: Vec<_> = (0..10_001)
        .map(|index| json!({"externalId": format!("x{index}"), "content": "x"}))
        .collect();

    let (empty, _) = app.post("/api/external/items", json!({"items": []})).await;
    let (large, body) = app
        .post("/api/external/items", json!({"items": too_many}))
        .await;
    let (missing, missing_body) = app.post("/api/external/items", json!({})).await;

    assert_eq!(empty, 400);
    assert_eq!(large, 400);
    assert_eq!(body["details"][0]["field"], "items");
    assert_eq!(missing, 400);
    assert_eq!(missing_body["details"][0]["field"], "items");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listing_pages_with_cursor_and_filters() {
    let app = spawn_app().await;
    app.seed(25, "alpha").await;
    app.seed(5, "beta").await;

    let (_, first) = app.get("/api/external/items?listId=alpha&limit=10").await;
    let cursor = first["data"]["nextCursor"]
        .as_str()
        .expect("a next page")
        .to_owned();
    let (_, second) = app
        .get(&format!(
            "/api/external/items?listId=alpha&limit=10&cursor={cursor}"
        ))
        .await;
    let (_, last) = app
        .get("/api/external/items?listId=alpha&limit=10&cursor=999999")
        .await;
    let (bad, _) = app.get("/api/external/items?state=sleeping").await;

    assert_eq!(first["data"]["entries"].as_array().map(Vec::len), Some(10));
    let first_ids: Vec<i64> = first["data"]["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter_map(|e| e["id"].as_i64())
        .collect();
    let second_ids: Vec<i64> = second["data"]["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter_map(|e| e["id"].as_i64())
        .collect();
    assert_eq!(second_ids.len(), 10);
    assert!(
        first_ids.iter().max() < second_ids.iter().min(),
        "{first_ids:?} then {second_ids:?}"
    );
    assert_eq!(last["data"]["entries"].as_array().map(Vec::len), Some(0));
    assert!(last["data"]["nextCursor"].is_null());
    assert_eq!(bad, 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_upserts_do_not_deadlock() {
    let app = spawn_app().await;
    let items: Vec<_> = (0..3_000)
        .map(|index| json!({"externalId": format!("dl-{index:05}"), "content": format!("text {index}")}))
        .collect();
    let reversed: Vec<_> = items.iter().rev().cloned().collect();

    for round in 0..3 {
        let (forward, backward) = tokio::join!(
            app.post("/api/external/items", json!({ "items": items })),
            app.post("/api/external/items", json!({ "items": reversed })),
        );
        assert_eq!(forward.0, 200, "round {round}: {}", forward.1);
        assert_eq!(backward.0, 200, "round {round}: {}", backward.1);
    }
    assert_eq!(app.scalar("SELECT count(*) AS value FROM items"), 3_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nul_characters_are_rejected_not_500() {
    let app = spawn_app().await;

    let (body_status, _) = app
        .post(
            "/api/external/items",
            json!({"items": [{"externalId": "n", "content": "a\u{0}b"}]}),
        )
        .await;
    let (query_status, query_body) = app.get("/api/external/items?username=%00").await;
    let (number_status, _) = app
        .post(
            "/api/external/items",
            json!({"items": [{"externalId": 15, "content": "x"}]}),
        )
        .await;

    assert_eq!(body_status, 400);
    assert_eq!(query_status, 400);
    assert_eq!(query_body["details"][0]["field"], "username");
    assert_eq!(number_status, 400);
    assert_eq!(app.scalar("SELECT count(*) AS value FROM items"), 0);
}
