//! Queries on items: upsert, listing and batch results.

use chrono::{DateTime, Utc};
use diesel::dsl::{count_star, sql};
use diesel::pg::{Pg, upsert::excluded};
use diesel::prelude::*;
use diesel::sql_types::Bool;

use super::schema::items;

/// A row of `items`.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = items, check_for_backend(Pg))]
pub struct ItemRow {
    /// Server id.
    pub id: i64,
    /// Caller id.
    pub external_id: String,
    /// Text.
    pub content: String,
    /// Author.
    pub username: Option<String>,
    /// List.
    pub list_id: Option<String>,
    /// Publication time.
    pub published_at: Option<DateTime<Utc>>,
    /// Analysis state.
    pub analysis_state: String,
    /// Stored analysis.
    pub analysis: Option<serde_json::Value>,
    /// When the analysis was written.
    pub analysed_at: Option<DateTime<Utc>>,
    /// Provider of the last attempt.
    pub provider: Option<String>,
    /// Model of the last attempt.
    pub model: Option<String>,
    /// Batch of the last finished attempt.
    pub batch_id: Option<String>,
    /// Processing batch holding the item.
    pub claim_batch_id: Option<String>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// Claims so far.
    pub attempts: i32,
}

/// An item to insert or update.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = items)]
pub struct NewItemRow {
    /// Caller id, the upsert key.
    pub external_id: String,
    /// Text.
    pub content: String,
    /// Author.
    pub username: Option<String>,
    /// List.
    pub list_id: Option<String>,
    /// Publication time.
    pub published_at: Option<DateTime<Utc>>,
}

/// Inserts new items and updates existing ones by `external_id`; returns
/// (inserted, updated). The analysis and state of an updated item are kept.
///
/// The caller keeps one request's external ids unique, since PostgreSQL
/// cannot update one row twice in a statement.
pub fn upsert_items(connection: &mut PgConnection, rows: &[NewItemRow]) -> QueryResult<(u64, u64)> {
    // 5 binds a row and PostgreSQL allows 65,535 binds a statement.
    const ROWS_PER_STATEMENT: usize = 10_000;

    // Two requests that upsert the same items in different orders would lock
    // rows in different orders and deadlock; one order for everyone avoids it.
    let mut sorted: Vec<&NewItemRow> = rows.iter().collect();
    sorted.sort_by(|a, b| a.external_id.cmp(&b.external_id));

    connection.transaction(|connection| {
        let mut inserted = 0;
        let mut updated = 0;
        for chunk in sorted.chunks(ROWS_PER_STATEMENT) {
            // xmax is 0 on a row version this statement inserted.
            let fresh: Vec<bool> = diesel::insert_into(items::table)
                .values(chunk.to_vec())
                .on_conflict(items::external_id)
                .do_update()
                .set((
                    items::content.eq(excluded(items::content)),
                    items::username.eq(excluded(items::username)),
                    items::list_id.eq(excluded(items::list_id)),
                    items::published_at.eq(excluded(items::published_at)),
                    items::updated_at.eq(diesel::dsl::now),
                ))
                .returning(sql::<Bool>("xmax = 0"))
                .get_results(connection)?;
            let new = fresh.iter().filter(|fresh| **fresh).count() as u64;
            inserted += new;
            updated += fresh.len() as u64 - new;
        }
        Ok((inserted, updated))
    })
}

/// Filters of the item listing.
#[derive(Debug, Clone, Default)]
pub struct ItemQuery {
    /// Only this state.
    pub state: Option<String>,
    /// Only this list.
    pub list_id: Option<String>,
    /// Only this author.
    pub username: Option<String>,
    /// Only items whose last finished attempt belongs to this batch.
    pub batch_id: Option<String>,
    /// Only ids above this one.
    pub after_id: Option<i64>,
    /// Page size.
    pub limit: i64,
}

/// Lists items in id order.
pub fn list_items(connection: &mut PgConnection, query: &ItemQuery) -> QueryResult<Vec<ItemRow>> {
    let mut select = items::table.into_boxed();
    if let Some(state) = &query.state {
        select = select.filter(items::analysis_state.eq(state));
    }
    if let Some(list_id) = &query.list_id {
        select = select.filter(items::list_id.eq(list_id));
    }
    if let Some(username) = &query.username {
        select = select.filter(items::username.eq(username));
    }
    if let Some(batch_id) = &query.batch_id {
        select = select.filter(items::batch_id.eq(batch_id));
    }
    if let Some(after) = query.after_id {
        select = select.filter(items::id.gt(after));
    }
    select
        .order(items::id)
        .limit(query.limit)
        .select(ItemRow::as_select())
        .load(connection)
}

/// Items without an analysis that no batch holds.
pub fn count_pending(connection: &mut PgConnection) -> QueryResult<i64> {
    items::table
        .filter(items::analysis.is_null())
        .filter(items::claim_batch_id.is_null())
        .select(count_star())
        .first(connection)
}
