//! Request and response types shared by the batch server and its clients.
//!
//! Every type serializes with camelCase field names, the wire format of the
//! `/api/external` routes. With the `openapi` feature the types also derive
//! `utoipa::ToSchema`, so the server documents exactly what it sends.

mod batch;
mod clear;
mod envelope;
mod item;
pub mod time;

pub use batch::*;
pub use clear::*;
pub use envelope::*;
pub use item::*;
