//! The batch server: an HTTP service that runs LLM analysis over stored short
//! texts in batches, and lets operators preview and force-clear that work.

pub mod auth;
pub mod config;
pub mod db;
pub mod embedded;
pub mod engine;
pub mod errors;
pub mod i18n;
pub mod import;
pub mod ingest;
pub mod metrics;
pub mod providers;
pub mod routes;
pub mod startup;
