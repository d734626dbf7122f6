//! Query parameters of the listing operations.

use batch_types::{AnalysisState, BatchStatus};
use serde::Serialize;

/// Filters and paging of `list_items` (`GET /api/external/items`).
///
/// Unset fields are left out of the query string, so the server's defaults apply.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListItemsQuery {
    /// Only items in this analysis state.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<AnalysisState>,
    /// Only items of this list.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub list_id: Option<String>,
    /// Only items of this author.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Only items whose last finished attempt was in this batch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batch_id: Option<String>,
    /// Maximum number of items in the page; the server caps it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    /// The `nextCursor` of the previous page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
}

/// Filters and paging of `list_batches` (`GET /api/external/ai-batch/batches`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListBatchesQuery {
    /// Maximum number of batches in the page; the server caps it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    /// The `nextCursor` of the previous page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
    /// Only batches in this status.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<BatchStatus>,
}

/// Paging of `list_batch_results`
/// (`GET /api/external/ai-batch/batches/{batchId}/results`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListBatchResultsQuery {
    /// Maximum number of results in the page; the server caps it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    /// The `nextCursor` of the previous page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode<T: Serialize>(query: &T) -> String {
        // reqwest's form encoder uses the same serde field names, so the JSON
        // keys are the query keys. The wiremock tests check the real query string.
        serde_json::to_string(query).expect("query serializes")
    }

    #[test]
    fn empty_queries_serialize_empty() {
        assert_eq!(encode(&ListItemsQuery::default()), "{}");
        assert_eq!(encode(&ListBatchesQuery::default()), "{}");
        assert_eq!(encode(&ListBatchResultsQuery::default()), "{}");
    }

    #[test]
    fn items_query_uses_wire_names() {
        let query = ListItemsQuery {
            state: Some(AnalysisState::Analyzed),
            list_id: Some("list-1".into()),
            username: Some("alice".into()),
            batch_id: Some("batch_1_abcdef".into()),
            limit: Some(50),
            cursor: Some("c1".into()),
        };
        assert_eq!(
            encode(&query),
            r#"{"state":"analyzed","listId":"list-1","username":"alice","batchId":"batch_1_abcdef","limit":50,"cursor":"c1"}"#
        );
    }

    #[test]
    fn batches_query_uses_lowercase_status() {
        let query = ListBatchesQuery {
            status: Some(BatchStatus::Cancelled),
            ..ListBatchesQuery::default()
        };
        assert_eq!(encode(&query), r#"{"status":"cancelled"}"#);
    }
}
