//! Health routes and API-key authentication.

use serde_json::json;

use crate::helpers::{API_KEY, spawn_app};

/// Every route under /api/external, as (method, path).
const EXTERNAL_ROUTES: &[(&str, &str)] = &[
    ("GET", "/api/external/ai-batch/clear"),
    ("POST", "/api/external/ai-batch/clear"),
    ("POST", "/api/external/ai-batch/reset"),
    ("POST", "/api/external/ai-batch/start"),
    ("GET", "/api/external/ai-batch/start"),
    ("POST", "/api/external/ai-batch/continue"),
    ("GET", "/api/external/ai-batch/status"),
    (
        "GET",
        "/api/external/ai-batch/status/batch_1758539874517_hyqk4w",
    ),
    ("GET", "/api/external/ai-batch/batches"),
    (
        "POST",
        "/api/external/ai-batch/batches/batch_1758539874517_hyqk4w/cancel",
    ),
    (
        "GET",
        "/api/external/ai-batch/batches/batch_1758539874517_hyqk4w/results",
    ),
    ("POST", "/api/external/items"),
    ("GET", "/api/external/items"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_routes_need_no_key() {
    let app = spawn_app().await;

    for path in ["/healthz", "/readyz"] {
        let response = app.http.get(app.url(path)).send().await.expect("sent");
        assert_eq!(response.status().as_u16(), 200, "{path}");
    }
    let metrics = app
        .http
        .get(app.url("/metrics"))
        .send()
        .await
        .expect("sent");
    assert_eq!(metrics.status().as_u16(), 200);
    let text = metrics.text().await.expect("body");
    assert!(text.contains("batch_local_workers"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_keys_get_the_exact_401_body() {
    let app = spawn_app().await;
    let cases: [(&str, Option<(&str, &str)>); 5] = [
        ("missing", None),
        ("empty", Some(("x-api-key", ""))),
        ("wrong", Some(("x-api-key", "not-the-key"))),
        (
            "demo key when keys are configured",
            Some(("x-api-key", "unicatcher-api-key-demo")),
        ),
        ("wrong bearer", Some(("authorization", "Bearer nope"))),
    ];

    for (method, path) in EXTERNAL_ROUTES {
        for (case, header) in &cases {
            let mut request = match *method {
                "GET" => app.http.get(app.url(path)),
                _ => app.http.post(app.url(path)).json(&json!({})),
            };
            if let Some((name, value)) = header {
                request = request.header(*name, *value);
            }
            let response = request.send().await.expect("sent");
            assert_eq!(
                response.status().as_u16(),
                401,
                "{method} {path} with a {case} key"
            );
            let body: serde_json::Value = response.json().await.expect("a JSON body");
            assert_eq!(
                body,
                json!({"error": "Unauthorized: Invalid API Key"}),
                "{method} {path} ({case})"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bearer_and_header_keys_both_work() {
    let app = spawn_app().await;

    let header = app
        .http
        .get(app.url("/api/external/ai-batch/status"))
        .header("x-api-key", API_KEY)
        .send()
        .await
        .expect("sent");
    let bearer = app
        .http
        .get(app.url("/api/external/ai-batch/status"))
        .header("authorization", format!("Bearer {API_KEY}"))
        .send()
        .await
        .expect("sent");

    assert_eq!(header.status().as_u16(), 200);
    assert_eq!(bearer.status().as_u16(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swagger_and_spec_are_served() {
    let app = spawn_app().await;

    let spec = app
        .http
        .get(app.url("/api-docs/openapi.json"))
        .send()
        .await
        .expect("sent");
    assert_eq!(spec.status().as_u16(), 200);
    let spec: serde_json::Value = spec.json().await.expect("JSON");
    assert!(
        spec["paths"]["/api/external/ai-batch/clear"]["get"].is_object(),
        "{spec}"
    );
    let ui = app
        .http
        .get(app.url("/swagger-ui/"))
        .send()
        .await
        .expect("sent");
    assert_eq!(ui.status().as_u16(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_method_is_405_unknown_path_404() {
    let app = spawn_app().await;

    let wrong = app
        .http
        .delete(app.url("/api/external/ai-batch/clear"))
        .header("x-api-key", API_KEY)
        .send()
        .await
        .expect("sent");
    let allow = wrong
        .headers()
        .get("allow")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let wrong_status = wrong.status().as_u16();
    let wrong_body: serde_json::Value = wrong.json().await.expect("a JSON body");
    let unknown = app
        .http
        .get(app.url("/api/external/nothing-here"))
        .header("x-api-key", API_KEY)
        .send()
        .await
        .expect("sent");
    let swagger = app
        .http
        .get(app.url("/swagger-ui"))
        .send()
        .await
        .expect("sent");

    assert_eq!(wrong_status, 405, "{wrong_body}");
    assert!(allow.contains("GET") && allow.contains("POST"), "{allow}");
    assert_eq!(wrong_body["success"], false);
    assert_eq!(unknown.status().as_u16(), 404);
    assert_eq!(
        swagger.status().as_u16(),
        200,
        "the redirect to /swagger-ui/ is followed"
    );
}
