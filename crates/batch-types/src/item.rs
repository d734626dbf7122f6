//! Items: the stored short texts that batches analyse.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The maximum number of items in one upsert request.
pub const MAX_ITEMS_PER_UPSERT: usize = 10_000;

/// One item to insert or update, keyed by `externalId`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct NewItem {
    /// The caller's id for the item; a second upsert with it updates the item.
    #[cfg_attr(feature = "openapi", schema(example = "tw-6971079756"))]
    pub external_id: String,
    /// The text to analyse.
    pub content: String,
    /// Author of the text.
    #[serde(default)]
    pub username: Option<String>,
    /// The list or collection the item belongs to.
    #[serde(default)]
    pub list_id: Option<String>,
    /// When the text was published.
    #[serde(
        default,
        with = "crate::time::option",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub published_at: Option<DateTime<Utc>>,
}

/// The body of `POST /api/external/items`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct UpsertItemsRequest {
    /// Between 1 and 10,000 items.
    pub items: Vec<NewItem>,
}

/// Counts of an item upsert.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct UpsertItemsResult {
    /// Items whose `externalId` was new.
    pub inserted: u64,
    /// Items whose `externalId` existed and were updated.
    pub updated: u64,
}

/// The stage of an item in its analysis.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum AnalysisState {
    /// Not analysed yet; a batch may claim it.
    Pending,
    /// Claimed by the processing batch named in `claimBatchId`.
    Processing,
    /// Holds an analysis.
    Analyzed,
    /// The last attempt failed; `lastError` gives the reason.
    Failed,
}

impl AnalysisState {
    /// The name stored in the database and used on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Processing => "processing",
            Self::Analyzed => "analyzed",
            Self::Failed => "failed",
        }
    }

    /// Parses a stored or query-string name.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "pending" => Some(Self::Pending),
            "processing" => Some(Self::Processing),
            "analyzed" => Some(Self::Analyzed),
            "failed" => Some(Self::Failed),
            _ => None,
        }
    }
}

/// The analysis a provider produced for one item.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Analysis {
    /// The most telling words of the text.
    pub keywords: Vec<String>,
    /// Topics, such as the text's hashtags.
    pub topic_tags: Vec<String>,
    /// Kinds of content, such as `link`, `question`, `reply`, `retweet`, `media`, `text`.
    pub content_types: Vec<String>,
    /// Whether the text carries nothing worth keeping (empty or link-only).
    pub is_valueless: bool,
    /// A one-sentence summary, when the provider writes one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
}

/// A stored item as the listing returns it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Item {
    /// The server's id of the item.
    pub id: i64,
    /// The caller's id of the item.
    pub external_id: String,
    /// The text.
    pub content: String,
    /// Author of the text.
    pub username: Option<String>,
    /// The list or collection of the item.
    pub list_id: Option<String>,
    /// When the text was published.
    #[serde(with = "crate::time::option")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub published_at: Option<DateTime<Utc>>,
    /// The stage of the item in its analysis.
    pub analysis_state: AnalysisState,
    /// The stored analysis, kept until a newer one replaces it.
    pub analysis: Option<Analysis>,
    /// When the stored analysis was written.
    #[serde(with = "crate::time::option")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub analysed_at: Option<DateTime<Utc>>,
    /// Provider of the last attempt.
    pub provider: Option<String>,
    /// Model of the last attempt.
    pub model: Option<String>,
    /// The batch of the last finished attempt.
    pub batch_id: Option<String>,
    /// The processing batch that holds the item now.
    pub claim_batch_id: Option<String>,
    /// The reason the last attempt failed.
    pub last_error: Option<String>,
    /// How many times a batch claimed the item.
    pub attempts: i32,
}
