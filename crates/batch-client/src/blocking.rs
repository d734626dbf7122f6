//! A blocking client with the same methods as the async [`crate::Client`].
//!
//! It wraps the async client and runs each call to completion on its own
//! current-thread tokio runtime. Do not call it, or drop its last clone, from
//! inside an async runtime: tokio panics there. Use [`crate::Client`] instead.
//!
//! ```no_run
//! let client = batch_client::blocking::Client::new("http://127.0.0.1:8080", "unicatcher-api-key-demo")?;
//! let status = client.get_global_status()?;
//! println!("pending items: {}", status.pending_items);
//! # Ok::<(), batch_client::Error>(())
//! ```

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use batch_types::{
    BatchInfo, BatchResult, CancelBatchData, ClearPreview, ClearRequest, ClearResult, GlobalStatus,
    Item, Page, ResetRequest, ResetResult, StartBatchData, StartBatchRequest, UpsertItemsRequest,
    UpsertItemsResult,
};
use futures_util::StreamExt;
use reqwest::Url;
use tokio::runtime::Runtime;

use crate::{
    BatchResultStream, Error, Health, Language, ListBatchResultsQuery, ListBatchesQuery,
    ListItemsQuery, Result,
};

/// Settings for a blocking [`Client`]; the same options as [`crate::ClientBuilder`].
#[derive(Debug, Clone)]
#[must_use]
pub struct ClientBuilder {
    inner: crate::ClientBuilder,
}

impl ClientBuilder {
    /// Sets the time limit of one request; see [`crate::ClientBuilder::timeout`].
    pub fn timeout(self, timeout: Duration) -> Self {
        Self {
            inner: self.inner.timeout(timeout),
        }
    }

    /// Sets the time limit for opening a connection; see
    /// [`crate::ClientBuilder::connect_timeout`].
    pub fn connect_timeout(self, timeout: Duration) -> Self {
        Self {
            inner: self.inner.connect_timeout(timeout),
        }
    }

    /// Sends requests through an async reqwest client; see
    /// [`crate::ClientBuilder::http_client`].
    pub fn http_client(self, client: reqwest::Client) -> Self {
        Self {
            inner: self.inner.http_client(client),
        }
    }

    /// Asks the server to write messages in `language`; see
    /// [`crate::ClientBuilder::language`].
    pub fn language(self, language: Language) -> Self {
        Self {
            inner: self.inner.language(language),
        }
    }

    /// Sets how many times a GET is retried after a connection error; see
    /// [`crate::ClientBuilder::max_retries`].
    pub fn max_retries(self, retries: usize) -> Self {
        Self {
            inner: self.inner.max_retries(retries),
        }
    }

    /// Sets the delay before the first retry; see [`crate::ClientBuilder::retry_delay`].
    pub fn retry_delay(self, delay: Duration) -> Self {
        Self {
            inner: self.inner.retry_delay(delay),
        }
    }

    /// Validates the settings, starts the runtime and creates the client.
    ///
    /// # Errors
    ///
    /// The same as [`crate::ClientBuilder::build`], and [`Error::Runtime`]
    /// when the runtime cannot start.
    pub fn build(self) -> Result<Client> {
        let runtime = new_runtime()?;
        // reqwest's connector may need the runtime's context while it is built.
        let inner = {
            let _context = runtime.enter();
            self.inner.build()?
        };
        Ok(Client {
            inner,
            runtime: Arc::new(runtime),
        })
    }
}

/// Starts the current-thread runtime that runs every call of one client.
fn new_runtime() -> Result<Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(Error::Runtime)
}

/// A blocking client of the batch HTTP API.
///
/// Methods, arguments and errors are those of [`crate::Client`]. Each call
/// blocks the thread until the response is decoded. Clones share the runtime
/// and the connection pool.
#[derive(Clone)]
pub struct Client {
    inner: crate::Client,
    runtime: Arc<Runtime>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("blocking::Client")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Creates a client for the server at `base_url` with the default settings.
    ///
    /// # Errors
    ///
    /// The same as [`ClientBuilder::build`].
    ///
    /// ```no_run
    /// let client = batch_client::blocking::Client::new("http://127.0.0.1:8080", "unicatcher-api-key-demo")?;
    /// # Ok::<(), batch_client::Error>(())
    /// ```
    pub fn new(base_url: impl Into<String>, api_key: impl Into<String>) -> Result<Self> {
        Self::builder(base_url, api_key).build()
    }

    /// Starts a builder for the server at `base_url` with `api_key`.
    ///
    /// ```no_run
    /// use std::time::Duration;
    ///
    /// let client = batch_client::blocking::Client::builder("http://127.0.0.1:8080", "unicatcher-api-key-demo")
    ///     .timeout(Duration::from_secs(10))
    ///     .build()?;
    /// # Ok::<(), batch_client::Error>(())
    /// ```
    pub fn builder(base_url: impl Into<String>, api_key: impl Into<String>) -> ClientBuilder {
        ClientBuilder {
            inner: crate::Client::builder(base_url, api_key),
        }
    }

    /// Returns the base URL that request paths are appended to.
    ///
    /// ```no_run
    /// # let client = batch_client::blocking::Client::new("http://127.0.0.1:8080", "key")?;
    /// println!("{}", client.base_url());
    /// # Ok::<(), batch_client::Error>(())
    /// ```
    pub fn base_url(&self) -> &Url {
        self.inner.base_url()
    }

    /// Returns the language requested from the server, if any.
    ///
    /// ```no_run
    /// # let client = batch_client::blocking::Client::new("http://127.0.0.1:8080", "key")?;
    /// println!("{:?}", client.language());
    /// # Ok::<(), batch_client::Error>(())
    /// ```
    pub fn language(&self) -> Option<Language> {
        self.inner.language()
    }

    /// Returns the async client that this one wraps.
    ///
    /// ```no_run
    /// # let client = batch_client::blocking::Client::new("http://127.0.0.1:8080", "key")?;
    /// let async_client: &batch_client::Client = client.as_async();
    /// # Ok::<(), batch_client::Error>(())
    /// ```
    pub fn as_async(&self) -> &crate::Client {
        &self.inner
    }

    /// Reads what a clear would do now; see [`crate::Client::preview_clear`].
    ///
    /// # Errors
    ///
    /// See [`crate::Client::preview_clear`].
    ///
    /// ```no_run
    /// # let client = batch_client::blocking::Client::new("http://127.0.0.1:8080", "key")?;
    /// let preview = client.preview_clear()?;
    /// println!("{} batch(es) processing", preview.processing_records.count);
    /// # Ok::<(), batch_client::Error>(())
    /// ```
    pub fn preview_clear(&self) -> Result<ClearPreview> {
        self.runtime.block_on(self.inner.preview_clear())
    }

    /// Cancels every processing batch; see [`crate::Client::clear_batches`].
    ///
    /// # Errors
    ///
    /// See [`crate::Client::clear_batches`].
    ///
    /// ```no_run
    /// # let client = batch_client::blocking::Client::new("http://127.0.0.1:8080", "key")?;
    /// let result = client.clear_batches(&batch_client::types::ClearRequest::default())?;
    /// println!("released {} item(s)", result.released_items);
    /// # Ok::<(), batch_client::Error>(())
    /// ```
    pub fn clear_batches(&self, request: &ClearRequest) -> Result<ClearResult> {
        self.runtime.block_on(self.inner.clear_batches(request))
    }

    /// Repairs or force-resets batch state; see [`crate::Client::reset_batches`].
    ///
    /// # Errors
    ///
    /// See [`crate::Client::reset_batches`].
    ///
    /// ```no_run
    /// # let client = batch_client::blocking::Client::new("http://127.0.0.1:8080", "key")?;
    /// let result = client.reset_batches(&batch_client::types::ResetRequest { force: true })?;
    /// println!("{} record(s) updated", result.updated_records);
    /// # Ok::<(), batch_client::Error>(())
    /// ```
    pub fn reset_batches(&self, request: &ResetRequest) -> Result<ResetResult> {
        self.runtime.block_on(self.inner.reset_batches(request))
    }

    /// Starts a batch; see [`crate::Client::start_batch`].
    ///
    /// # Errors
    ///
    /// See [`crate::Client::start_batch`].
    ///
    /// ```no_run
    /// # let client = batch_client::blocking::Client::new("http://127.0.0.1:8080", "key")?;
    /// let started = client.start_batch(&batch_client::types::StartBatchRequest::default())?;
    /// println!("started {}", started.batch_id);
    /// # Ok::<(), batch_client::Error>(())
    /// ```
    pub fn start_batch(&self, request: &StartBatchRequest) -> Result<StartBatchData> {
        self.runtime.block_on(self.inner.start_batch(request))
    }

    /// Starts a batch that continues a previous one; see
    /// [`crate::Client::continue_batch`].
    ///
    /// # Errors
    ///
    /// See [`crate::Client::continue_batch`].
    ///
    /// ```no_run
    /// # let client = batch_client::blocking::Client::new("http://127.0.0.1:8080", "key")?;
    /// let request = batch_client::types::StartBatchRequest {
    ///     previous_batch_id: Some("batch_1758539874517_hyqk4w".into()),
    ///     ..Default::default()
    /// };
    /// let started = client.continue_batch(&request)?;
    /// # Ok::<(), batch_client::Error>(())
    /// ```
    pub fn continue_batch(&self, request: &StartBatchRequest) -> Result<StartBatchData> {
        self.runtime.block_on(self.inner.continue_batch(request))
    }

    /// Reads the global state; see [`crate::Client::get_global_status`].
    ///
    /// # Errors
    ///
    /// See [`crate::Client::get_global_status`].
    ///
    /// ```no_run
    /// # let client = batch_client::blocking::Client::new("http://127.0.0.1:8080", "key")?;
    /// let status = client.get_global_status()?;
    /// println!("{}", status.global_message);
    /// # Ok::<(), batch_client::Error>(())
    /// ```
    pub fn get_global_status(&self) -> Result<GlobalStatus> {
        self.runtime.block_on(self.inner.get_global_status())
    }

    /// Reads one batch; see [`crate::Client::get_batch_status`].
    ///
    /// # Errors
    ///
    /// See [`crate::Client::get_batch_status`].
    ///
    /// ```no_run
    /// # let client = batch_client::blocking::Client::new("http://127.0.0.1:8080", "key")?;
    /// let batch = client.get_batch_status("batch_1758539874517_hyqk4w")?;
    /// println!("{}%", batch.progress.percentage);
    /// # Ok::<(), batch_client::Error>(())
    /// ```
    pub fn get_batch_status(&self, batch_id: &str) -> Result<BatchInfo> {
        self.runtime.block_on(self.inner.get_batch_status(batch_id))
    }

    /// Lists batches; see [`crate::Client::list_batches`].
    ///
    /// # Errors
    ///
    /// See [`crate::Client::list_batches`].
    ///
    /// ```no_run
    /// # let client = batch_client::blocking::Client::new("http://127.0.0.1:8080", "key")?;
    /// let page = client.list_batches(&batch_client::ListBatchesQuery::default())?;
    /// println!("{} batch(es)", page.entries.len());
    /// # Ok::<(), batch_client::Error>(())
    /// ```
    pub fn list_batches(&self, query: &ListBatchesQuery) -> Result<Page<BatchInfo>> {
        self.runtime.block_on(self.inner.list_batches(query))
    }

    /// Cancels a batch; see [`crate::Client::cancel_batch`].
    ///
    /// # Errors
    ///
    /// See [`crate::Client::cancel_batch`].
    ///
    /// ```no_run
    /// # let client = batch_client::blocking::Client::new("http://127.0.0.1:8080", "key")?;
    /// let cancel = client.cancel_batch("batch_1758539874517_hyqk4w")?;
    /// println!("cancelled: {}", cancel.cancelled);
    /// # Ok::<(), batch_client::Error>(())
    /// ```
    pub fn cancel_batch(&self, batch_id: &str) -> Result<CancelBatchData> {
        self.runtime.block_on(self.inner.cancel_batch(batch_id))
    }

    /// Lists one page of a batch's results; see
    /// [`crate::Client::list_batch_results`].
    ///
    /// # Errors
    ///
    /// See [`crate::Client::list_batch_results`].
    ///
    /// ```no_run
    /// # let client = batch_client::blocking::Client::new("http://127.0.0.1:8080", "key")?;
    /// let query = batch_client::ListBatchResultsQuery::default();
    /// let page = client.list_batch_results("batch_1758539874517_hyqk4w", &query)?;
    /// # Ok::<(), batch_client::Error>(())
    /// ```
    pub fn list_batch_results(
        &self,
        batch_id: &str,
        query: &ListBatchResultsQuery,
    ) -> Result<Page<BatchResult>> {
        self.runtime
            .block_on(self.inner.list_batch_results(batch_id, query))
    }

    /// Iterates over every result of a batch, read as JSON Lines; see
    /// [`crate::Client::stream_batch_results`].
    ///
    /// # Errors
    ///
    /// See [`crate::Client::stream_batch_results`].
    ///
    /// ```no_run
    /// # let client = batch_client::blocking::Client::new("http://127.0.0.1:8080", "key")?;
    /// for result in client.stream_batch_results("batch_1758539874517_hyqk4w")? {
    ///     let result = result?;
    ///     println!("{} {}", result.external_id, result.state.as_str());
    /// }
    /// # Ok::<(), batch_client::Error>(())
    /// ```
    pub fn stream_batch_results(&self, batch_id: &str) -> Result<BatchResultIter> {
        let stream = self
            .runtime
            .block_on(self.inner.stream_batch_results(batch_id))?;
        Ok(BatchResultIter {
            stream,
            runtime: Arc::clone(&self.runtime),
        })
    }

    /// Inserts or updates items; see [`crate::Client::upsert_items`].
    ///
    /// # Errors
    ///
    /// See [`crate::Client::upsert_items`].
    ///
    /// ```no_run
    /// # let client = batch_client::blocking::Client::new("http://127.0.0.1:8080", "key")?;
    /// use batch_client::types::{NewItem, UpsertItemsRequest};
    ///
    /// let item = NewItem {
    ///     external_id: "tw-1".into(),
    ///     content: "hello".into(),
    ///     username: None,
    ///     list_id: None,
    ///     published_at: None,
    /// };
    /// let counts = client.upsert_items(&UpsertItemsRequest { items: vec![item] })?;
    /// # Ok::<(), batch_client::Error>(())
    /// ```
    pub fn upsert_items(&self, request: &UpsertItemsRequest) -> Result<UpsertItemsResult> {
        self.runtime.block_on(self.inner.upsert_items(request))
    }

    /// Lists one page of stored items; see [`crate::Client::list_items`].
    ///
    /// # Errors
    ///
    /// See [`crate::Client::list_items`].
    ///
    /// ```no_run
    /// # let client = batch_client::blocking::Client::new("http://127.0.0.1:8080", "key")?;
    /// let page = client.list_items(&batch_client::ListItemsQuery::default())?;
    /// println!("{} item(s)", page.entries.len());
    /// # Ok::<(), batch_client::Error>(())
    /// ```
    pub fn list_items(&self, query: &ListItemsQuery) -> Result<Page<Item>> {
        self.runtime.block_on(self.inner.list_items(query))
    }

    /// Calls the liveness and readiness probes; see [`crate::Client::check_health`].
    ///
    /// # Errors
    ///
    /// See [`crate::Client::check_health`].
    ///
    /// ```no_run
    /// # let client = batch_client::blocking::Client::new("http://127.0.0.1:8080", "key")?;
    /// let health = client.check_health()?;
    /// println!("ready: {}", health.is_ready());
    /// # Ok::<(), batch_client::Error>(())
    /// ```
    pub fn check_health(&self) -> Result<Health> {
        self.runtime.block_on(self.inner.check_health())
    }
}

/// An iterator over a batch's results, reading the JSON Lines body as it goes.
///
/// Items fail as described at [`BatchResultStream`].
pub struct BatchResultIter {
    stream: BatchResultStream,
    runtime: Arc<Runtime>,
}

impl fmt::Debug for BatchResultIter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BatchResultIter").finish_non_exhaustive()
    }
}

impl Iterator for BatchResultIter {
    type Item = Result<BatchResult>;

    fn next(&mut self) -> Option<Self::Item> {
        self.runtime.block_on(self.stream.next())
    }
}
