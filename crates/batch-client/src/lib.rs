//! Typed client of the batch HTTP API: start, watch, list and cancel LLM
//! analysis batches over stored short texts, and upload those texts.
//!
//! [`Client`] has one async method per API operation, named after the
//! operation id (`start_batch`, `list_items`, ...). Each returns the `data` of
//! the server's success envelope as a [`batch_types`] type, re-exported as
//! [`types`]. Every failure is an [`Error`], whose variants separate 401, 409,
//! 404, validation, 5xx and 503 responses from transport and decode failures.
//!
//! ```no_run
//! use batch_client::{Client, Language};
//! use batch_client::types::StartBatchRequest;
//!
//! # async fn run() -> Result<(), batch_client::Error> {
//! let client = Client::builder("http://127.0.0.1:8080", "unicatcher-api-key-demo")
//!     .language(Language::English)
//!     .build()?;
//!
//! match client.start_batch(&StartBatchRequest::default()).await {
//!     Ok(started) => println!("started {}", started.batch_id),
//!     Err(error) if error.is_conflict() => {
//!         println!("batch {:?} is still processing", error.current_batch_id());
//!     }
//!     Err(error) => return Err(error),
//! }
//! # Ok(()) }
//! ```
//!
//! # Retries
//!
//! GET requests are idempotent, so they are retried after connection errors
//! (refused, reset, closed before the response) with exponential backoff; see
//! [`ClientBuilder::max_retries`]. POST requests are sent once. No request that
//! received a response is retried, whatever its status (5xx included).
//!
//! # Features
//!
//! - `blocking`: `blocking::Client`, the same methods without async.
//! - `cli`: the `batchctl` command-line tool, and [`cli::run`] to run it in-process.

/// Compiles the README's example as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

mod client;
mod error;
mod health;
mod jsonl;
mod operations;
mod query;

#[cfg(feature = "blocking")]
pub mod blocking;

#[cfg(feature = "cli")]
pub mod cli;

pub use batch_types as types;
pub use reqwest;

pub use client::{
    Client, ClientBuilder, DEFAULT_CONNECT_TIMEOUT, DEFAULT_MAX_RETRIES, DEFAULT_RETRY_DELAY,
    DEFAULT_TIMEOUT, Language,
};
pub use error::{Error, MAX_DECODE_BODY_CHARS, Result};
pub use health::{Health, Probe};
pub use jsonl::BatchResultStream;
pub use query::{ListBatchResultsQuery, ListBatchesQuery, ListItemsQuery};
