//! One method per operation of the batch HTTP API.

use batch_types::{
    BatchInfo, BatchResult, CancelBatchData, ClearPreview, ClearRequest, ClearResult, GlobalStatus,
    Item, Page, ResetRequest, ResetResult, StartBatchData, StartBatchRequest, UpsertItemsRequest,
    UpsertItemsResult,
};
use reqwest::Method;
use reqwest::header::ACCEPT;

use crate::client::{Client, Idempotency, JSON};
use crate::error::Result;
use crate::health::{Health, Probe};
use crate::jsonl::{BatchResultStream, decode_lines};
use crate::query::{ListBatchResultsQuery, ListBatchesQuery, ListItemsQuery};

/// Path segments of `/api/external/ai-batch`.
const AI_BATCH: [&str; 3] = ["api", "external", "ai-batch"];

/// Path segments of `/api/external/items`.
const ITEMS: [&str; 3] = ["api", "external", "items"];

/// Joins the `/api/external/ai-batch` prefix with `rest`.
fn ai_batch<'a>(rest: &[&'a str]) -> Vec<&'a str> {
    AI_BATCH
        .iter()
        .copied()
        .chain(rest.iter().copied())
        .collect()
}

/// A query type for requests without query parameters.
type NoQuery = [(&'static str, &'static str)];

impl Client {
    /// Reads what a clear would do now (`GET /api/external/ai-batch/clear`).
    ///
    /// # Errors
    ///
    /// See [`Error`](crate::Error); 503 when the database is unavailable.
    ///
    /// ```no_run
    /// # async fn run(client: batch_client::Client) -> Result<(), batch_client::Error> {
    /// let preview = client.preview_clear().await?;
    /// println!("{} batch(es) processing", preview.processing_records.count);
    /// # Ok(()) }
    /// ```
    pub async fn preview_clear(&self) -> Result<ClearPreview> {
        self.get(&ai_batch(&["clear"]), None::<&NoQuery>).await
    }

    /// Cancels every processing batch, stops their workers and releases the
    /// global task lock (`POST /api/external/ai-batch/clear`).
    ///
    /// With `expected_batch_ids` set, the server clears only if exactly those
    /// batches are processing.
    ///
    /// # Errors
    ///
    /// [`Error::Conflict`](crate::Error::Conflict) when `expected_batch_ids`
    /// does not match; [`Error::clear_preview`](crate::Error::clear_preview)
    /// returns the current preview. [`Error::Server`](crate::Error::Server)
    /// when the clear failed.
    ///
    /// ```no_run
    /// # async fn run(client: batch_client::Client) -> Result<(), batch_client::Error> {
    /// use batch_client::types::ClearRequest;
    ///
    /// let preview = client.preview_clear().await?;
    /// let expected = preview.processing_records.tasks.iter().map(|task| task.batch_id.clone());
    /// let request = ClearRequest { expected_batch_ids: Some(expected.collect()) };
    /// let result = client.clear_batches(&request).await?;
    /// println!("released {} item(s)", result.released_items);
    /// # Ok(()) }
    /// ```
    pub async fn clear_batches(&self, request: &ClearRequest) -> Result<ClearResult> {
        self.post(&ai_batch(&["clear"]), Some(request)).await
    }

    /// Repairs inconsistent batch state, or with `force` cancels every
    /// processing batch (`POST /api/external/ai-batch/reset`).
    ///
    /// # Errors
    ///
    /// See [`Error`](crate::Error).
    ///
    /// ```no_run
    /// # async fn run(client: batch_client::Client) -> Result<(), batch_client::Error> {
    /// use batch_client::types::ResetRequest;
    ///
    /// let result = client.reset_batches(&ResetRequest { force: false }).await?;
    /// println!("{} record(s) updated", result.updated_records);
    /// # Ok(()) }
    /// ```
    pub async fn reset_batches(&self, request: &ResetRequest) -> Result<ResetResult> {
        self.post(&ai_batch(&["reset"]), Some(request)).await
    }

    /// Starts a batch over the items that match the request's filters
    /// (`POST /api/external/ai-batch/start`).
    ///
    /// # Errors
    ///
    /// [`Error::Conflict`](crate::Error::Conflict) while another batch is
    /// processing, with [`Error::current_batch_id`](crate::Error::current_batch_id);
    /// [`Error::NotFound`](crate::Error::NotFound) when no item matches
    /// ([`Error::remaining_items`](crate::Error::remaining_items) is `Some(0)`);
    /// [`Error::Validation`](crate::Error::Validation) for invalid fields.
    ///
    /// ```no_run
    /// # async fn run(client: batch_client::Client) -> Result<(), batch_client::Error> {
    /// use batch_client::types::StartBatchRequest;
    ///
    /// let request = StartBatchRequest {
    ///     list_ids: Some(vec!["list-1".into()]),
    ///     batch_size: Some(20),
    ///     ..StartBatchRequest::default()
    /// };
    /// match client.start_batch(&request).await {
    ///     Ok(started) => println!("started {}", started.batch_id),
    ///     Err(error) if error.is_conflict() => {
    ///         println!("busy with {:?}", error.current_batch_id());
    ///     }
    ///     Err(error) => return Err(error),
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn start_batch(&self, request: &StartBatchRequest) -> Result<StartBatchData> {
        self.post(&ai_batch(&["start"]), Some(request)).await
    }

    /// Starts a batch that continues the chain of `request.previous_batch_id`
    /// (`POST /api/external/ai-batch/continue`).
    ///
    /// # Errors
    ///
    /// The same as [`Client::start_batch`]. The server responds 400 when
    /// `previous_batch_id` is missing.
    ///
    /// ```no_run
    /// # async fn run(client: batch_client::Client) -> Result<(), batch_client::Error> {
    /// use batch_client::types::StartBatchRequest;
    ///
    /// let request = StartBatchRequest {
    ///     previous_batch_id: Some("batch_1758539874517_hyqk4w".into()),
    ///     ..StartBatchRequest::default()
    /// };
    /// let started = client.continue_batch(&request).await?;
    /// println!("continued as {}", started.batch_id);
    /// # Ok(()) }
    /// ```
    pub async fn continue_batch(&self, request: &StartBatchRequest) -> Result<StartBatchData> {
        self.post(&ai_batch(&["continue"]), Some(request)).await
    }

    /// Reads whether a batch is processing, and which
    /// (`GET /api/external/ai-batch/status`).
    ///
    /// # Errors
    ///
    /// See [`Error`](crate::Error).
    ///
    /// ```no_run
    /// # async fn run(client: batch_client::Client) -> Result<(), batch_client::Error> {
    /// let status = client.get_global_status().await?;
    /// if let Some(batch_id) = status.current_batch_id {
    ///     println!("processing {batch_id}");
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn get_global_status(&self) -> Result<GlobalStatus> {
        self.get(&ai_batch(&["status"]), None::<&NoQuery>).await
    }

    /// Reads one batch (`GET /api/external/ai-batch/status/{batchId}`).
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`](crate::Error::NotFound) when no batch has this id.
    ///
    /// ```no_run
    /// # async fn run(client: batch_client::Client) -> Result<(), batch_client::Error> {
    /// let batch = client.get_batch_status("batch_1758539874517_hyqk4w").await?;
    /// println!("{}: {}%", batch.batch_id, batch.progress.percentage);
    /// # Ok(()) }
    /// ```
    pub async fn get_batch_status(&self, batch_id: &str) -> Result<BatchInfo> {
        self.get(&ai_batch(&["status", batch_id]), None::<&NoQuery>)
            .await
    }

    /// Lists batches, newest first (`GET /api/external/ai-batch/batches`).
    ///
    /// # Errors
    ///
    /// [`Error::Validation`](crate::Error::Validation) for an invalid cursor
    /// or limit.
    ///
    /// ```no_run
    /// # async fn run(client: batch_client::Client) -> Result<(), batch_client::Error> {
    /// use batch_client::ListBatchesQuery;
    ///
    /// let mut query = ListBatchesQuery { limit: Some(50), ..ListBatchesQuery::default() };
    /// loop {
    ///     let page = client.list_batches(&query).await?;
    ///     for batch in &page.entries {
    ///         println!("{} {}", batch.batch_id, batch.status.as_str());
    ///     }
    ///     match page.next_cursor {
    ///         Some(cursor) => query.cursor = Some(cursor),
    ///         None => break,
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn list_batches(&self, query: &ListBatchesQuery) -> Result<Page<BatchInfo>> {
        self.get(&ai_batch(&["batches"]), Some(query)).await
    }

    /// Cancels a batch and hands its unfinished items back to the queue
    /// (`POST /api/external/ai-batch/batches/{batchId}/cancel`).
    ///
    /// Cancelling a finished batch succeeds with `cancelled: false`.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`](crate::Error::NotFound) when no batch has this id.
    ///
    /// ```no_run
    /// # async fn run(client: batch_client::Client) -> Result<(), batch_client::Error> {
    /// let cancel = client.cancel_batch("batch_1758539874517_hyqk4w").await?;
    /// println!("released {} item(s)", cancel.released_items);
    /// # Ok(()) }
    /// ```
    pub async fn cancel_batch(&self, batch_id: &str) -> Result<CancelBatchData> {
        self.post(&ai_batch(&["batches", batch_id, "cancel"]), None::<&()>)
            .await
    }

    /// Lists one page of a batch's per-item results
    /// (`GET /api/external/ai-batch/batches/{batchId}/results`).
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`](crate::Error::NotFound) when no batch has this id.
    ///
    /// ```no_run
    /// # async fn run(client: batch_client::Client) -> Result<(), batch_client::Error> {
    /// use batch_client::ListBatchResultsQuery;
    ///
    /// let query = ListBatchResultsQuery { limit: Some(100), cursor: None };
    /// let page = client.list_batch_results("batch_1758539874517_hyqk4w", &query).await?;
    /// for result in page.entries {
    ///     println!("{} {}", result.external_id, result.state.as_str());
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn list_batch_results(
        &self,
        batch_id: &str,
        query: &ListBatchResultsQuery,
    ) -> Result<Page<BatchResult>> {
        self.get(&ai_batch(&["batches", batch_id, "results"]), Some(query))
            .await
    }

    /// Streams every result of a batch as JSON Lines
    /// (`GET /api/external/ai-batch/batches/{batchId}/results?format=jsonl`),
    /// without paging.
    ///
    /// The returned future resolves once the response headers arrived, so
    /// HTTP errors are returned here. The stream then yields one result per
    /// line. The client's timeout limits each read, not the whole stream
    /// (see [`ClientBuilder::timeout`](crate::ClientBuilder::timeout)).
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`](crate::Error::NotFound) when no batch has this id.
    /// Items of the stream fail as described at [`BatchResultStream`].
    ///
    /// ```no_run
    /// # async fn run(client: batch_client::Client) -> Result<(), batch_client::Error> {
    /// use futures_util::StreamExt;
    ///
    /// let mut results = client.stream_batch_results("batch_1758539874517_hyqk4w").await?;
    /// while let Some(result) = results.next().await {
    ///     let result = result?;
    ///     println!("{} {}", result.external_id, result.state.as_str());
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn stream_batch_results(&self, batch_id: &str) -> Result<BatchResultStream> {
        let url = self.url(&ai_batch(&["batches", batch_id, "results"]));
        let response = self
            .send(Idempotency::Retry, false, || {
                self.request(Method::GET, url.clone(), true)
                    .header(ACCEPT, "application/x-ndjson")
                    .query(&[("format", "jsonl")])
            })
            .await?;
        Ok(decode_lines(response))
    }

    /// Inserts new items and updates those whose `externalId` exists
    /// (`POST /api/external/items`). One request carries at most
    /// [`MAX_ITEMS_PER_UPSERT`](batch_types::MAX_ITEMS_PER_UPSERT) items.
    ///
    /// # Errors
    ///
    /// [`Error::Validation`](crate::Error::Validation) with one field error per
    /// invalid item, such as `items[3].externalId`.
    ///
    /// ```no_run
    /// # async fn run(client: batch_client::Client) -> Result<(), batch_client::Error> {
    /// use batch_client::types::{NewItem, UpsertItemsRequest};
    ///
    /// let item = NewItem {
    ///     external_id: "tw-6971079756".into(),
    ///     content: "Rust 2024 edition is out".into(),
    ///     username: Some("alice".into()),
    ///     list_id: Some("list-1".into()),
    ///     published_at: None,
    /// };
    /// let counts = client.upsert_items(&UpsertItemsRequest { items: vec![item] }).await?;
    /// println!("{} inserted, {} updated", counts.inserted, counts.updated);
    /// # Ok(()) }
    /// ```
    pub async fn upsert_items(&self, request: &UpsertItemsRequest) -> Result<UpsertItemsResult> {
        self.post(&ITEMS, Some(request)).await
    }

    /// Lists one page of stored items (`GET /api/external/items`).
    ///
    /// # Errors
    ///
    /// [`Error::Validation`](crate::Error::Validation) for an invalid filter,
    /// cursor or limit.
    ///
    /// ```no_run
    /// # async fn run(client: batch_client::Client) -> Result<(), batch_client::Error> {
    /// use batch_client::ListItemsQuery;
    /// use batch_client::types::AnalysisState;
    ///
    /// let query = ListItemsQuery {
    ///     state: Some(AnalysisState::Failed),
    ///     limit: Some(20),
    ///     ..ListItemsQuery::default()
    /// };
    /// for item in client.list_items(&query).await?.entries {
    ///     println!("{}: {:?}", item.external_id, item.last_error);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn list_items(&self, query: &ListItemsQuery) -> Result<Page<Item>> {
        self.get(&ITEMS, Some(query)).await
    }

    /// Calls the open probes `GET /healthz` and `GET /readyz`, without the API key.
    ///
    /// A 503 from `/readyz` is not an error here, so check
    /// [`Health::is_ready`].
    ///
    /// # Errors
    ///
    /// [`Error::Transport`](crate::Error::Transport) when the server cannot
    /// be reached.
    ///
    /// ```no_run
    /// # async fn run(client: batch_client::Client) -> Result<(), batch_client::Error> {
    /// let health = client.check_health().await?;
    /// println!("live: {}, ready: {}", health.is_live(), health.is_ready());
    /// # Ok(()) }
    /// ```
    pub async fn check_health(&self) -> Result<Health> {
        let live = self.probe("healthz").await?;
        let ready = self.probe("readyz").await?;
        Ok(Health { live, ready })
    }

    /// Calls one open probe and keeps its response, whatever the status.
    async fn probe(&self, name: &str) -> Result<Probe> {
        let url = self.url(&[name]);
        let response = self
            .dispatch(Idempotency::Retry, true, || {
                self.request(Method::GET, url.clone(), false)
                    .header(ACCEPT, JSON)
            })
            .await?;
        let status = response.status();
        let body = response.bytes().await?;
        Ok(Probe::from_response(status, &body))
    }
}
