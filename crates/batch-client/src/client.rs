//! The async client, its builder and the request plumbing shared by every operation.

use std::fmt;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use batch_types::ApiResponse;
use reqwest::header::{ACCEPT, ACCEPT_LANGUAGE, HeaderValue};
use reqwest::{Method, RequestBuilder, Response, StatusCode, Url};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Error, Result, decode_error, from_error_response};

/// The header that carries the API key.
const API_KEY_HEADER: &str = "x-api-key";

/// The media type of every envelope.
pub(crate) const JSON: &str = "application/json";

/// Default time limit of one request, from connecting until the body is read.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Default time limit for opening the TCP (and TLS) connection.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Default number of retries of an idempotent GET after a connection error.
pub const DEFAULT_MAX_RETRIES: usize = 3;

/// Default delay before the first retry. Each further retry doubles it.
pub const DEFAULT_RETRY_DELAY: Duration = Duration::from_millis(100);

/// The language the server writes messages in, sent as `Accept-Language`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Language {
    /// Chinese (`zh-CN`), the server's default.
    Chinese,
    /// English (`en`).
    English,
}

impl Language {
    /// Returns the `Accept-Language` value sent for this language.
    pub fn as_header_value(self) -> &'static str {
        match self {
            Self::Chinese => "zh-CN",
            Self::English => "en",
        }
    }
}

/// Settings for a [`Client`]; create it with [`Client::builder`].
#[derive(Clone)]
#[must_use]
pub struct ClientBuilder {
    base_url: String,
    api_key: String,
    timeout: Duration,
    connect_timeout: Duration,
    http_client: Option<reqwest::Client>,
    language: Option<Language>,
    max_retries: usize,
    retry_delay: Duration,
}

impl fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("base_url", &self.base_url)
            .field("api_key", &"<redacted>")
            .field("timeout", &self.timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("http_client", &self.http_client.is_some())
            .field("language", &self.language)
            .field("max_retries", &self.max_retries)
            .field("retry_delay", &self.retry_delay)
            .finish()
    }
}

impl ClientBuilder {
    /// Sets the time limit of one request, from connecting until the body is
    /// read. Default [`DEFAULT_TIMEOUT`]. For `stream_batch_results` it limits
    /// each read instead, so a long stream is not cut off. With
    /// [`ClientBuilder::http_client`] a stream has only that client's limits.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets the time limit for opening a connection. Default
    /// [`DEFAULT_CONNECT_TIMEOUT`]. Ignored with [`ClientBuilder::http_client`],
    /// whose own setting applies.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Sends requests through `client` instead of one built from these settings,
    /// to share its connection pool, proxy or TLS settings. The request timeout
    /// still applies to each request.
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.http_client = Some(client);
        self
    }

    /// Asks the server to write messages in `language`. Without it no
    /// `Accept-Language` is sent and the server writes Chinese.
    pub fn language(mut self, language: Language) -> Self {
        self.language = Some(language);
        self
    }

    /// Sets how many times an idempotent GET is retried after a connection
    /// error. Default [`DEFAULT_MAX_RETRIES`], and 0 turns retries off. A
    /// request that received a response is never retried, whatever its status.
    pub fn max_retries(mut self, retries: usize) -> Self {
        self.max_retries = retries;
        self
    }

    /// Sets the delay before the first retry. Each further retry doubles it,
    /// plus random jitter of up to the same amount. Default [`DEFAULT_RETRY_DELAY`].
    pub fn retry_delay(mut self, delay: Duration) -> Self {
        self.retry_delay = delay;
        self
    }

    /// Validates the settings and creates the client.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] when the base URL is not an absolute http(s)
    /// URL or the API key is not a valid header value, and
    /// [`Error::Transport`] when reqwest cannot build its client (TLS setup).
    pub fn build(self) -> Result<Client> {
        let base_url = parse_base_url(&self.base_url)?;

        let mut api_key = HeaderValue::from_str(&self.api_key).map_err(|_| {
            Error::InvalidConfig("the API key contains characters not allowed in a header".into())
        })?;
        api_key.set_sensitive(true);

        let http = match self.http_client {
            Some(client) => client,
            None => reqwest::Client::builder()
                .connect_timeout(self.connect_timeout)
                // The total limit goes on each request, so a stream can outlast
                // it. This read limit still ends a stream that stalls.
                .read_timeout(self.timeout)
                .user_agent(concat!("batch-client/", env!("CARGO_PKG_VERSION")))
                .build()?,
        };

        Ok(Client {
            http,
            base_url,
            api_key,
            language: self.language,
            timeout: self.timeout,
            max_retries: self.max_retries,
            retry_delay: self.retry_delay,
        })
    }
}

/// Parses the base URL and rejects URLs that cannot take path segments.
fn parse_base_url(text: &str) -> Result<Url> {
    let url = Url::parse(text)
        .map_err(|error| Error::InvalidConfig(format!("invalid base URL {text:?}: {error}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Error::InvalidConfig(format!(
            "invalid base URL {text:?}: the scheme must be http or https"
        )));
    }
    if url.cannot_be_a_base() || url.query().is_some() || url.fragment().is_some() {
        return Err(Error::InvalidConfig(format!(
            "invalid base URL {text:?}: expected scheme, host and an optional path prefix only"
        )));
    }
    Ok(url)
}

/// An async client of the batch HTTP API.
///
/// Every operation method returns the `data` of the success envelope
/// (`{"success": true, "message", "data"}`) and drops `message`, a sentence for
/// people that carries no fact absent from `data`. Cloning is cheap and shares
/// the connection pool.
///
/// ```no_run
/// # async fn run() -> Result<(), batch_client::Error> {
/// let client = batch_client::Client::new("http://127.0.0.1:8080", "unicatcher-api-key-demo")?;
/// let status = client.get_global_status().await?;
/// println!("pending items: {}", status.pending_items);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base_url: Url,
    api_key: HeaderValue,
    language: Option<Language>,
    timeout: Duration,
    max_retries: usize,
    retry_delay: Duration,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("base_url", &self.base_url.as_str())
            .field("api_key", &"<redacted>")
            .field("language", &self.language)
            .field("timeout", &self.timeout)
            .field("max_retries", &self.max_retries)
            .field("retry_delay", &self.retry_delay)
            .finish_non_exhaustive()
    }
}

/// Whether a request may be sent again after `error`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Idempotency {
    /// A GET: retried after connection errors.
    Retry,
    /// A POST: sent once, because the server may have acted on it.
    Once,
}

impl Client {
    /// Creates a client for the server at `base_url` (such as
    /// `http://127.0.0.1:8080`) with the default settings.
    ///
    /// # Errors
    ///
    /// The same as [`ClientBuilder::build`].
    ///
    /// ```no_run
    /// let client = batch_client::Client::new("http://127.0.0.1:8080", "unicatcher-api-key-demo")?;
    /// # Ok::<(), batch_client::Error>(())
    /// ```
    pub fn new(base_url: impl Into<String>, api_key: impl Into<String>) -> Result<Self> {
        Self::builder(base_url, api_key).build()
    }

    /// Starts a builder for the server at `base_url` with `api_key`.
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use batch_client::{Client, Language};
    ///
    /// let client = Client::builder("http://127.0.0.1:8080", "unicatcher-api-key-demo")
    ///     .timeout(Duration::from_secs(10))
    ///     .language(Language::English)
    ///     .build()?;
    /// # Ok::<(), batch_client::Error>(())
    /// ```
    pub fn builder(base_url: impl Into<String>, api_key: impl Into<String>) -> ClientBuilder {
        ClientBuilder {
            base_url: base_url.into(),
            api_key: api_key.into(),
            timeout: DEFAULT_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            http_client: None,
            language: None,
            max_retries: DEFAULT_MAX_RETRIES,
            retry_delay: DEFAULT_RETRY_DELAY,
        }
    }

    /// Returns the base URL that request paths are appended to.
    ///
    /// ```no_run
    /// let client = batch_client::Client::new("http://127.0.0.1:8080", "unicatcher-api-key-demo")?;
    /// assert_eq!(client.base_url().as_str(), "http://127.0.0.1:8080/");
    /// # Ok::<(), batch_client::Error>(())
    /// ```
    pub fn base_url(&self) -> &Url {
        &self.base_url
    }

    /// Returns the language requested from the server, if any.
    ///
    /// ```no_run
    /// let client = batch_client::Client::new("http://127.0.0.1:8080", "unicatcher-api-key-demo")?;
    /// assert_eq!(client.language(), None);
    /// # Ok::<(), batch_client::Error>(())
    /// ```
    pub fn language(&self) -> Option<Language> {
        self.language
    }

    /// Builds the URL of `segments` under the base URL, percent-encoding each
    /// segment so a batch id cannot change the path.
    pub(crate) fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base_url.clone();
        // parse_base_url rejected cannot-be-a-base URLs, so this always succeeds.
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    /// Starts a request with the API key (unless the route is open) and the
    /// `Accept-Language` header.
    pub(crate) fn request(&self, method: Method, url: Url, authenticated: bool) -> RequestBuilder {
        let mut request = self.http.request(method, url);
        if authenticated {
            request = request.header(API_KEY_HEADER, self.api_key.clone());
        }
        if let Some(language) = self.language {
            request = request.header(ACCEPT_LANGUAGE, language.as_header_value());
        }
        request
    }

    /// Sends a request, retrying GETs after connection errors, and returns the
    /// response whatever its status.
    ///
    /// `make` builds the request afresh for every attempt. `total_timeout`
    /// puts the client's time limit on the whole request.
    pub(crate) async fn dispatch<F>(
        &self,
        idempotency: Idempotency,
        total_timeout: bool,
        make: F,
    ) -> Result<Response>
    where
        F: Fn() -> RequestBuilder,
    {
        let attempt = || async {
            let mut request = make();
            if total_timeout {
                request = request.timeout(self.timeout);
            }
            request.send().await
        };

        let sent = match idempotency {
            Idempotency::Once => attempt().await,
            Idempotency::Retry => {
                let backoff = ExponentialBuilder::default()
                    .with_min_delay(self.retry_delay)
                    .with_max_times(self.max_retries)
                    .with_jitter();
                attempt
                    .retry(backoff)
                    .when(is_retryable)
                    .notify(|error, delay| {
                        log::warn!("retrying in {delay:?} after a connection error: {error}");
                    })
                    .await
            }
        };
        Ok(sent?)
    }

    /// Sends a request like [`Client::dispatch`] and maps a non-success
    /// response to its [`Error`].
    pub(crate) async fn send<F>(
        &self,
        idempotency: Idempotency,
        total_timeout: bool,
        make: F,
    ) -> Result<Response>
    where
        F: Fn() -> RequestBuilder,
    {
        let response = self.dispatch(idempotency, total_timeout, make).await?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let body = response.bytes().await?;
        Err(from_error_response(status, &body))
    }

    /// Sends a request and decodes the `data` of its success envelope.
    pub(crate) async fn call<T, F>(&self, idempotency: Idempotency, make: F) -> Result<T>
    where
        T: DeserializeOwned,
        F: Fn() -> RequestBuilder,
    {
        let response = self.send(idempotency, true, make).await?;
        let status = response.status();
        let body = response.bytes().await?;
        decode_envelope(status, &body)
    }

    /// Sends a GET to `segments` with `query` and decodes the `data`.
    pub(crate) async fn get<T, Q>(&self, segments: &[&str], query: Option<&Q>) -> Result<T>
    where
        T: DeserializeOwned,
        Q: Serialize + ?Sized,
    {
        let url = self.url(segments);
        self.call(Idempotency::Retry, || {
            let request = self
                .request(Method::GET, url.clone(), true)
                .header(ACCEPT, JSON);
            match query {
                Some(query) => request.query(query),
                None => request,
            }
        })
        .await
    }

    /// Sends a POST to `segments` with an optional JSON body and decodes the `data`.
    pub(crate) async fn post<T, B>(&self, segments: &[&str], body: Option<&B>) -> Result<T>
    where
        T: DeserializeOwned,
        B: Serialize + ?Sized,
    {
        let url = self.url(segments);
        self.call(Idempotency::Once, || {
            let request = self
                .request(Method::POST, url.clone(), true)
                .header(ACCEPT, JSON);
            match body {
                Some(body) => request.json(body),
                None => request,
            }
        })
        .await
    }
}

/// Returns whether a failed attempt may be retried. Connection errors and
/// requests that failed before a response arrived (such as on a pooled
/// connection that the server had closed) qualify, timeouts do not.
fn is_retryable(error: &reqwest::Error) -> bool {
    error.is_connect() || (error.is_request() && !error.is_timeout())
}

/// Decodes a success envelope and returns its `data`.
pub(crate) fn decode_envelope<T: DeserializeOwned>(status: StatusCode, body: &[u8]) -> Result<T> {
    serde_json::from_slice::<ApiResponse<T>>(body)
        .map(|envelope| envelope.data)
        .map_err(|source| decode_error(status, body, source))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(base_url: &str) -> Client {
        Client::new(base_url, "secret-key").expect("valid settings")
    }

    #[test]
    fn url_appends_segments_to_root() {
        let url = client("http://127.0.0.1:8080").url(&["api", "external", "items"]);
        assert_eq!(url.as_str(), "http://127.0.0.1:8080/api/external/items");
    }

    #[test]
    fn url_keeps_path_prefix() {
        let url = client("http://127.0.0.1:8080/batch/").url(&["healthz"]);
        assert_eq!(url.as_str(), "http://127.0.0.1:8080/batch/healthz");
        let url = client("http://127.0.0.1:8080/batch").url(&["healthz"]);
        assert_eq!(url.as_str(), "http://127.0.0.1:8080/batch/healthz");
    }

    #[test]
    fn url_encodes_batch_id() {
        let url = client("http://127.0.0.1:8080").url(&["status", "../x?y"]);
        assert_eq!(url.as_str(), "http://127.0.0.1:8080/status/..%2Fx%3Fy");
    }

    #[test]
    fn build_rejects_bad_base_urls() {
        for base_url in [
            "127.0.0.1:8080",
            "ftp://127.0.0.1",
            "http://h/?q=1",
            "not a url",
        ] {
            let result = Client::new(base_url, "key");
            assert!(
                matches!(result, Err(Error::InvalidConfig(_))),
                "{base_url} was accepted"
            );
        }
    }

    #[test]
    fn build_rejects_key_with_newline() {
        let result = Client::new("http://127.0.0.1:8080", "key\nx-other: 1");
        assert!(matches!(result, Err(Error::InvalidConfig(_))));
    }

    #[test]
    fn client_and_error_are_send_sync() {
        fn assert_send_sync<T: Send + Sync + 'static>() {}
        assert_send_sync::<Client>();
        assert_send_sync::<ClientBuilder>();
        assert_send_sync::<Error>();
    }

    #[test]
    fn debug_redacts_api_key() {
        let builder = Client::builder("http://127.0.0.1:8080", "secret-key");
        let text = format!("{builder:?}");
        assert!(!text.contains("secret-key"), "{text}");
        assert!(text.contains("<redacted>"), "{text}");

        let text = format!("{:?}", client("http://127.0.0.1:8080"));
        assert!(!text.contains("secret-key"), "{text}");
        assert!(text.contains("<redacted>"), "{text}");
    }
}
