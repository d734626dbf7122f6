//! Integration tests: the real server on port 0, a real PostgreSQL database
//! per test, and a fake AI provider on 127.0.0.1.

mod batches;
mod clear;
mod health_auth;
mod helpers;
mod items;
mod openapi;
mod sdk;
