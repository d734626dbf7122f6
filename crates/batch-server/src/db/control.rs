//! The audit log of clears, resets and cancels.

use diesel::prelude::*;

use super::schema::control_events;

/// A control event to record.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = control_events)]
pub struct NewControlEvent {
    /// `clear`, `reset_force`, `reset_gentle` or `cancel`.
    pub action: String,
    /// Fingerprint of the API key, never the key.
    pub key_fingerprint: String,
    /// The caller's address.
    pub client_addr: Option<String>,
    /// The instance that served the request.
    pub instance_id: String,
    /// State before the action.
    pub before_snapshot: serde_json::Value,
    /// Counts of what changed.
    pub counts: serde_json::Value,
    /// The batches the action changed.
    pub batch_ids: Vec<String>,
}

/// Records an event and returns its id.
pub fn insert_event(connection: &mut PgConnection, event: &NewControlEvent) -> QueryResult<i64> {
    diesel::insert_into(control_events::table)
        .values(event)
        .returning(control_events::id)
        .get_result(connection)
}

/// Adds the measured after-snapshot and final counts to an event.
pub fn complete_event(
    connection: &mut PgConnection,
    event_id: i64,
    after: &serde_json::Value,
    counts: &serde_json::Value,
) -> QueryResult<()> {
    diesel::update(control_events::table.find(event_id))
        .set((
            control_events::after_snapshot.eq(after),
            control_events::counts.eq(counts),
        ))
        .execute(connection)
        .map(|_| ())
}
