//! Serde round-trips of the wire bodies the client decodes.

mod common;

use batch_client::types::{
    ApiResponse, BatchInfo, BatchResult, CancelBatchData, ClearPreview, ClearRequest, ClearResult,
    ErrorBody, ErrorDetails, FieldError, GlobalStatus, Item, Page, ResetResult, StartBatchData,
    UNAUTHORIZED_MESSAGE, UnauthorizedBody,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

/// Decodes `value` as `T`, encodes it again and checks that nothing changed.
fn assert_round_trip<T: DeserializeOwned + Serialize>(value: Value) -> T {
    let decoded: T = serde_json::from_value(value.clone()).expect("fixture decodes");
    let encoded = serde_json::to_value(&decoded).expect("value encodes");
    assert_eq!(encoded, value);
    decoded
}

#[test]
fn success_envelopes_round_trip() {
    let started: ApiResponse<StartBatchData> =
        assert_round_trip(common::envelope(common::start_data()));
    assert!(started.success);
    assert_eq!(started.data.batch_id, common::BATCH_ID);

    assert_round_trip::<ApiResponse<GlobalStatus>>(common::envelope(common::global_status()));
    assert_round_trip::<ApiResponse<BatchInfo>>(common::envelope(common::batch_info()));
    assert_round_trip::<ApiResponse<ClearPreview>>(common::envelope(common::clear_preview()));
    assert_round_trip::<ApiResponse<ClearResult>>(common::envelope(common::clear_result()));
    assert_round_trip::<ApiResponse<ResetResult>>(common::envelope(common::reset_result()));
    assert_round_trip::<ApiResponse<CancelBatchData>>(common::envelope(common::cancel_data()));
}

#[test]
fn pages_round_trip() {
    let results: Page<BatchResult> = assert_round_trip(common::page(
        vec![common::batch_result(1), common::batch_result(2)],
        Some("cursor-2"),
    ));
    assert_eq!(results.entries.len(), 2);
    assert_eq!(results.next_cursor.as_deref(), Some("cursor-2"));

    let items: Page<Item> = assert_round_trip(common::page(vec![common::item(7)], None));
    assert_eq!(items.entries[0].external_id, "tw-7");
    assert_eq!(items.next_cursor, None);
}

#[test]
fn error_body_with_message_details() {
    let body: ErrorBody = assert_round_trip(common::error_body(
        "清除操作失败",
        Some(json!("database timeout")),
        None,
    ));
    assert!(!body.success);
    assert_eq!(
        body.details,
        Some(ErrorDetails::Message("database timeout".into()))
    );
}

#[test]
fn error_body_with_field_details() {
    let body: ErrorBody = assert_round_trip(common::error_body(
        "参数验证失败",
        Some(json!([{"field": "batchSize", "message": "must be between 1 and 100"}])),
        None,
    ));
    assert_eq!(
        body.details,
        Some(ErrorDetails::Fields(vec![FieldError::new(
            "batchSize",
            "must be between 1 and 100"
        )]))
    );
}

#[test]
fn error_body_with_recovery_data() {
    let body: ErrorBody = assert_round_trip(common::error_body(
        "已有批处理任务正在运行",
        None,
        Some(json!({"currentBatchId": common::BATCH_ID})),
    ));
    assert_eq!(body.details, None);
    assert_eq!(body.data, Some(json!({"currentBatchId": common::BATCH_ID})));
}

#[test]
fn unauthorized_body_is_exact() {
    let body: UnauthorizedBody = assert_round_trip(json!({"error": UNAUTHORIZED_MESSAGE}));
    assert_eq!(body.error, "Unauthorized: Invalid API Key");
}

#[test]
fn clear_request_encodes_as_wire_bodies() {
    let empty = serde_json::to_value(ClearRequest::default()).expect("request encodes");
    assert_eq!(empty, json!({}));

    let expected = ClearRequest {
        expected_batch_ids: Some(vec![common::BATCH_ID.into()]),
    };
    let encoded = serde_json::to_value(&expected).expect("request encodes");
    assert_eq!(encoded, json!({"expectedBatchIds": [common::BATCH_ID]}));
}
