//! The committed OpenAPI document matches the code and is valid OpenAPI.

use std::path::PathBuf;

fn committed_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../openapi/openapi.json")
}

#[test]
fn committed_spec_matches_the_code() {
    let generated = batch_server::startup::openapi()
        .to_pretty_json()
        .expect("the spec serializes");
    let committed = std::fs::read_to_string(committed_path()).expect("openapi/openapi.json exists");

    // Compared as JSON values so a trailing newline does not matter.
    let generated: serde_json::Value = serde_json::from_str(&generated).expect("generated JSON");
    let committed: serde_json::Value = serde_json::from_str(&committed).expect("committed JSON");
    assert!(
        generated == committed,
        "openapi/openapi.json is out of date; regenerate it with `just openapi` \
         (cargo run -p batch-server -- openapi > openapi/openapi.json)"
    );
}

#[test]
fn spec_is_valid_openapi() {
    let text = std::fs::read_to_string(committed_path()).expect("openapi/openapi.json exists");

    let spec = oas3::from_json(&text).expect("the document parses as OpenAPI 3.1");

    assert!(spec.openapi.starts_with("3.1"), "{}", spec.openapi);
    let paths = spec.paths.expect("the document has paths");
    for path in [
        "/api/external/ai-batch/clear",
        "/api/external/ai-batch/start",
        "/api/external/items",
    ] {
        assert!(paths.contains_key(path), "{path} is documented");
    }
    let components = spec.components.expect("the document has components");
    assert!(components.security_schemes.contains_key("api_key"));
    assert!(components.security_schemes.contains_key("bearer"));
}

#[test]
fn every_operation_documents_its_statuses() {
    let spec = batch_server::startup::openapi();
    let json = serde_json::to_value(&spec).expect("the spec serializes");

    for (path, item) in json["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("path item") {
            let responses = operation["responses"].as_object().expect("responses");
            assert!(
                responses.keys().any(|status| status.starts_with('2')),
                "{method} {path} has a success status"
            );
            if path.starts_with("/api/external") {
                assert!(
                    responses.contains_key("401"),
                    "{method} {path} documents 401"
                );
                assert!(
                    operation["security"].is_array(),
                    "{method} {path} names its security"
                );
            }
        }
    }
}
