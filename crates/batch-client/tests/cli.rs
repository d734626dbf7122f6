//! The batchctl binary, and `batch_client::cli::run` in-process, against a
//! local wiremock server.

mod common;

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use serde_json::{Value, json};
use wiremock::matchers::{body_json, body_partial_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use common::{API_KEY, BATCH_ID};

/// Runs batchctl against `url` with the test key, stdin closed.
fn batchctl(url: &str, args: &[&str], extra_env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_batchctl"));
    command
        .args(args)
        .env("BATCH_URL", url)
        .env("BATCH_API_KEY", API_KEY)
        .env_remove("BATCH_LANG")
        .env_remove("BATCH_PROVIDER_API_KEY")
        .stdin(Stdio::null());
    for (name, value) in extra_env {
        command.env(name, value);
    }
    command.output().expect("batchctl runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Writes `lines` to a fresh file in the target's temporary folder.
fn write_jsonl(name: &str, lines: &[&str]) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    let mut file = std::fs::File::create(&path).expect("create the JSONL file");
    for line in lines {
        writeln!(file, "{line}").expect("write the JSONL file");
    }
    path
}

#[tokio::test]
async fn clear_without_tty_exits_2() {
    // Nothing listens here: the refusal must come before any request.
    let output = batchctl("http://127.0.0.1:9", &["clear"], &[]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(stderr(&output).contains("--yes"), "{}", stderr(&output));
    assert!(stdout(&output).is_empty());
}

#[tokio::test]
async fn clear_yes_posts_plain_clear() {
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

    let output = batchctl(&server.uri(), &["clear", "--yes"], &[]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stdout(&output).contains("1 batch(es)"),
        "{}",
        stdout(&output)
    );
}

#[tokio::test]
async fn clear_yes_with_expect_sends_ids() {
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

    let output = batchctl(
        &server.uri(),
        &["clear", "--yes", "--expect", BATCH_ID],
        &[],
    );
    assert!(output.status.success(), "{}", stderr(&output));
}

#[tokio::test]
async fn status_json_prints_data() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/external/ai-batch/status"))
        .and(header("x-api-key", API_KEY))
        .and(header("accept-language", "en"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(common::envelope(common::global_status())),
        )
        .expect(1)
        .mount(&server)
        .await;

    let output = batchctl(&server.uri(), &["--json", "status"], &[]);
    assert!(output.status.success(), "{}", stderr(&output));
    let printed: Value = serde_json::from_slice(&output.stdout).expect("stdout is JSON");
    assert_eq!(printed, common::global_status());
}

#[tokio::test]
async fn status_text_is_aligned() {
    let server = MockServer::start().await;
    let route = format!("/api/external/ai-batch/status/{BATCH_ID}");
    Mock::given(method("GET"))
        .and(path(route))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(common::envelope(common::batch_info())),
        )
        .mount(&server)
        .await;

    let output = batchctl(&server.uri(), &["status", BATCH_ID], &[]);
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(text.contains(&format!("Batch     {BATCH_ID}\n")), "{text}");
    assert!(
        text.contains("Progress  10/710 (1.4%), 9 succeeded, 1 failed\n"),
        "{text}"
    );
}

#[tokio::test]
async fn api_error_prints_one_line() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/external/ai-batch/status"))
        .respond_with(
            ResponseTemplate::new(401)
                .set_body_json(json!({"error": batch_client::types::UNAUTHORIZED_MESSAGE})),
        )
        .mount(&server)
        .await;

    let output = batchctl(&server.uri(), &["status"], &[]);
    assert_eq!(output.status.code(), Some(1));
    let text = stderr(&output);
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(
        text.starts_with("batchctl: error: 401 Unauthorized: Invalid API Key; check the API key"),
        "{text}"
    );
    assert!(!text.contains(API_KEY), "{text}");
}

#[tokio::test]
async fn start_reads_provider_key_from_env() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/external/ai-batch/start"))
        .and(body_partial_json(json!({
            "batchSize": 20,
            "batchProcessingMode": "traditional",
            "aiConfig": {"provider": "openai", "apiKey": "provider-secret"},
        })))
        .respond_with(
            ResponseTemplate::new(201).set_body_json(common::envelope(common::start_data())),
        )
        .expect(1)
        .mount(&server)
        .await;

    let output = batchctl(
        &server.uri(),
        &[
            "start",
            "--provider",
            "openai",
            "--batch-size",
            "20",
            "--mode",
            "traditional",
        ],
        &[("BATCH_PROVIDER_API_KEY", "provider-secret")],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stdout(&output).contains(BATCH_ID), "{}", stdout(&output));
    assert!(!stdout(&output).contains("provider-secret"));
    assert!(!stderr(&output).contains("provider-secret"));
}

#[tokio::test]
async fn import_skips_invalid_lines_and_exits_1() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/external/items"))
        .and(body_json(json!({"items": [
            {"externalId": "tw-1", "content": "one", "username": "alice", "listId": "l1"},
            {"externalId": "tw-3", "content": "three", "username": null, "listId": null,
             "publishedAt": "2025-09-22T11:48:00.000Z"},
        ]})))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(common::envelope(json!({"inserted": 2, "updated": 0}))),
        )
        .expect(1)
        .mount(&server)
        .await;

    let file = write_jsonl(
        "import_invalid.jsonl",
        &[
            r#"{"externalId":"tw-1","content":"one","username":"alice","listId":"l1"}"#,
            r#"{"externalId":"tw-2"}"#,
            "",
            r#"{"externalId":"tw-3","content":"three","publishedAt":"2025-09-22T11:48:00Z"}"#,
        ],
    );
    let output = batchctl(
        &server.uri(),
        &["import", file.to_str().expect("UTF-8 path")],
        &[],
    );

    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let errors = stderr(&output);
    assert!(errors.contains("line 2: invalid item: column"), "{errors}");
    assert!(errors.contains("missing field `content`"), "{errors}");
    assert!(stdout(&output).contains("2 inserted, 0 updated, 1 invalid line(s) skipped"));
}

#[tokio::test]
async fn import_sends_chunks() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/external/items"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(common::envelope(json!({"inserted": 1, "updated": 1}))),
        )
        .expect(3)
        .mount(&server)
        .await;

    let lines: Vec<String> = (1..=5)
        .map(|id| format!(r#"{{"externalId":"tw-{id}","content":"text {id}"}}"#))
        .collect();
    let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
    let file = write_jsonl("import_chunks.jsonl", &lines);
    let output = batchctl(
        &server.uri(),
        &[
            "--json",
            "import",
            file.to_str().expect("UTF-8 path"),
            "--chunk-size",
            "2",
        ],
        &[],
    );

    assert!(output.status.success(), "{}", stderr(&output));
    let summary: Value = serde_json::from_slice(&output.stdout).expect("stdout is JSON");
    assert_eq!(
        summary,
        json!({"inserted": 3, "updated": 3, "invalidLines": 0})
    );
}

#[tokio::test]
async fn import_maps_field_errors_to_lines() {
    let server = MockServer::start().await;
    let body = common::error_body(
        "参数验证失败",
        Some(json!([{"field": "items[1].content", "message": "must not be empty"}])),
        None,
    );
    Mock::given(method("POST"))
        .and(path("/api/external/items"))
        .respond_with(ResponseTemplate::new(400).set_body_json(body))
        .expect(1)
        .mount(&server)
        .await;

    let file = write_jsonl(
        "import_rejected.jsonl",
        &[
            r#"{"externalId":"tw-1","content":"one"}"#,
            "",
            r#"{"externalId":"tw-2","content":""}"#,
        ],
    );
    let output = batchctl(
        &server.uri(),
        &["import", file.to_str().expect("UTF-8 path")],
        &[],
    );

    assert_eq!(output.status.code(), Some(1));
    let errors = stderr(&output);
    assert!(
        errors.contains("line 3: content: must not be empty"),
        "{errors}"
    );
    assert!(errors.contains("upsert of lines 1-3 failed"), "{errors}");
}

/// Runs `batch_client::cli::run` in-process against `url` with a terminal
/// stdin that contains `reply`, and returns the exit code, stdout and stderr.
async fn run_in_process(url: &str, args: &[&str], reply: &str) -> (u8, String, String) {
    let mut argv = vec!["batchctl", "--url", url, "--api-key", API_KEY];
    argv.extend_from_slice(args);
    let mut stdout = Vec::new();
    let mut stderr = Vec::new();
    let code = batch_client::cli::run(
        argv,
        batch_client::cli::Console {
            stdout: &mut stdout,
            stderr: &mut stderr,
            stdin: &mut reply.as_bytes(),
            stdin_is_terminal: true,
            show_progress: false,
        },
    )
    .await;
    (
        code,
        String::from_utf8_lossy(&stdout).into_owned(),
        String::from_utf8_lossy(&stderr).into_owned(),
    )
}

/// Mounts the clear preview of `common::clear_preview`.
async fn mount_preview(server: &MockServer) {
    Mock::given(method("GET"))
        .and(path("/api/external/ai-batch/clear"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(common::envelope(common::clear_preview())),
        )
        .expect(1)
        .mount(server)
        .await;
}

#[tokio::test]
async fn clear_declined_sends_no_clear() {
    let server = MockServer::start().await;
    mount_preview(&server).await;
    Mock::given(method("POST"))
        .and(path("/api/external/ai-batch/clear"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(common::envelope(common::clear_result())),
        )
        .expect(0)
        .mount(&server)
        .await;

    let (code, stdout, stderr) = run_in_process(&server.uri(), &["clear"], "n\n").await;

    assert_eq!(code, batch_client::cli::EXIT_SUCCESS, "{stderr}");
    assert!(stdout.contains(BATCH_ID), "{stdout}");
    assert!(stderr.contains("Clear 1 batch(es)? [y/N] "), "{stderr}");
    assert!(stderr.contains("Nothing cleared."), "{stderr}");
}

#[tokio::test]
async fn clear_confirmed_sends_previewed_ids() {
    let server = MockServer::start().await;
    mount_preview(&server).await;
    Mock::given(method("POST"))
        .and(path("/api/external/ai-batch/clear"))
        .and(body_json(json!({"expectedBatchIds": [BATCH_ID]})))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(common::envelope(common::clear_result())),
        )
        .expect(1)
        .mount(&server)
        .await;

    let (code, stdout, stderr) = run_in_process(&server.uri(), &["clear"], "yes\n").await;

    assert_eq!(code, batch_client::cli::EXIT_SUCCESS, "{stderr}");
    assert!(
        stdout
            .lines()
            .any(|line| line.starts_with("Released") && line.ends_with(" 700 item(s)")),
        "{stdout}"
    );
}
