//! Queries on batches: start, claim, results, cancel, clear and the
//! snapshots the control routes report.

use chrono::{DateTime, Utc};
use diesel::dsl::{count_star, now, sql};
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Bool, Nullable, Text, Timestamptz};
use serde::{Deserialize, Serialize};

use super::schema::{ai_batches, items};

/// A row of `ai_batches`.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = ai_batches, check_for_backend(Pg))]
pub struct BatchRow {
    /// `batch_<unix-ms>_<6 of a-z0-9>`.
    pub batch_id: String,
    /// `processing`, `completed`, `failed` or `cancelled`.
    pub status: String,
    /// The item filter, an [`ItemFilter`].
    pub filter: serde_json::Value,
    /// Settings without secrets: system prompt presence, base URL.
    pub settings: serde_json::Value,
    /// Provider name.
    pub provider: String,
    /// Model name.
    pub model: String,
    /// `optimized` or `traditional`.
    pub mode: String,
    /// Items per chunk.
    pub batch_size: i32,
    /// Provider requests in flight at once.
    pub concurrency: i32,
    /// Highest item id in the batch's item set.
    pub max_item_id: i64,
    /// Highest item id claimed so far.
    pub claim_cursor: i64,
    /// Items in the batch.
    pub total: i64,
    /// Items finished.
    pub processed: i64,
    /// Items analysed.
    pub succeeded: i64,
    /// Items failed.
    pub failed: i64,
    /// Start time.
    pub started_at: DateTime<Utc>,
    /// Time of the final status.
    pub finished_at: Option<DateTime<Utc>>,
    /// Instance that works the batch.
    pub owner_instance_id: Option<String>,
    /// Last heartbeat of the owner.
    pub heartbeat_at: Option<DateTime<Utc>>,
    /// The reason the batch failed.
    pub error: Option<String>,
    /// The reason the batch was cancelled.
    pub cancel_reason: Option<String>,
    /// The batch this one continues.
    pub previous_batch_id: Option<String>,
}

/// The item filter of a batch, stored as its `filter` column.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ItemFilter {
    /// Only these lists.
    pub list_ids: Option<Vec<String>>,
    /// Only these authors.
    pub usernames: Option<Vec<String>>,
    /// Only items published at or after this time.
    pub published_after: Option<DateTime<Utc>>,
    /// `Some(false)`: items without an analysis; `Some(true)`: with one; `None`: all.
    pub has_analysis: Option<bool>,
    /// Skip items whose last finished attempt belongs to these batches (a
    /// `continue` chain).
    pub exclude_batch_ids: Vec<String>,
}

type BoxedItems<'a> = items::BoxedQuery<'a, Pg>;

impl ItemFilter {
    /// Applies the filter to a query on `items`. Items held by a batch never match.
    pub fn apply<'a>(&'a self, mut query: BoxedItems<'a>) -> BoxedItems<'a> {
        query = query.filter(items::claim_batch_id.is_null());
        if let Some(list_ids) = &self.list_ids {
            query = query.filter(items::list_id.eq_any(list_ids));
        }
        if let Some(usernames) = &self.usernames {
            query = query.filter(items::username.eq_any(usernames));
        }
        if let Some(after) = self.published_after {
            query = query.filter(items::published_at.ge(after));
        }
        match self.has_analysis {
            Some(true) => query = query.filter(items::analysis.is_not_null()),
            Some(false) => query = query.filter(items::analysis.is_null()),
            None => {}
        }
        if !self.exclude_batch_ids.is_empty() {
            query = query.filter(
                items::batch_id
                    .is_null()
                    .or(items::batch_id.ne_all(&self.exclude_batch_ids)),
            );
        }
        query
    }
}

/// The fixed item set of a new batch: every matching item up to `max_item_id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ItemSet {
    /// Number of items.
    pub total: i64,
    /// Highest id in the set.
    pub max_item_id: i64,
}

/// Counts the items a batch with `filter` would cover, at most `max_items`.
pub fn select_item_set(
    connection: &mut PgConnection,
    filter: &ItemFilter,
    max_items: Option<i64>,
) -> QueryResult<ItemSet> {
    let max_id: Option<i64> = items::table
        .select(diesel::dsl::max(items::id))
        .first(connection)?;
    let Some(max_id) = max_id else {
        return Ok(ItemSet {
            total: 0,
            max_item_id: 0,
        });
    };
    let total: i64 = filter
        .apply(items::table.into_boxed())
        .filter(items::id.le(max_id))
        .select(count_star())
        .first(connection)?;
    match max_items {
        Some(limit) if limit < total => {
            // The item set is the first `limit` matching items by id, so the
            // batch's bound is the id of the last of them.
            let bound: i64 = filter
                .apply(items::table.into_boxed())
                .filter(items::id.le(max_id))
                .order(items::id)
                .offset(limit - 1)
                .select(items::id)
                .first(connection)?;
            Ok(ItemSet {
                total: limit,
                max_item_id: bound,
            })
        }
        _ => Ok(ItemSet {
            total,
            max_item_id: max_id,
        }),
    }
}

/// A batch to insert.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = ai_batches)]
pub struct NewBatch {
    /// The new id.
    pub batch_id: String,
    /// The item filter.
    pub filter: serde_json::Value,
    /// Settings without secrets.
    pub settings: serde_json::Value,
    /// Provider name.
    pub provider: String,
    /// Model name.
    pub model: String,
    /// `optimized` or `traditional`.
    pub mode: String,
    /// Items per chunk.
    pub batch_size: i32,
    /// Provider requests at once.
    pub concurrency: i32,
    /// Highest item id in the set.
    pub max_item_id: i64,
    /// Items in the set.
    pub total: i64,
    /// The instance that works the batch.
    pub owner_instance_id: String,
    /// Set to the start time.
    pub heartbeat_at: DateTime<Utc>,
    /// Start time.
    pub started_at: DateTime<Utc>,
    /// The batch this one continues.
    pub previous_batch_id: Option<String>,
}

/// Inserts a processing batch. Fails with a unique violation on
/// `ai_batches_one_processing` when another batch is processing.
pub fn insert_batch(connection: &mut PgConnection, batch: &NewBatch) -> QueryResult<BatchRow> {
    diesel::insert_into(ai_batches::table)
        .values(batch)
        .returning(BatchRow::as_returning())
        .get_result(connection)
}

/// Loads one batch.
pub fn find_batch(connection: &mut PgConnection, batch_id: &str) -> QueryResult<Option<BatchRow>> {
    ai_batches::table
        .find(batch_id)
        .select(BatchRow::as_select())
        .first(connection)
        .optional()
}

/// Loads every processing batch (at most one, by the unique index).
pub fn processing_batches(connection: &mut PgConnection) -> QueryResult<Vec<BatchRow>> {
    ai_batches::table
        .filter(ai_batches::status.eq("processing"))
        .order(ai_batches::started_at)
        .select(BatchRow::as_select())
        .load(connection)
}

/// Lists batches newest first, after the `before` batch id when given.
pub fn list_batches(
    connection: &mut PgConnection,
    status: Option<&str>,
    before: Option<&str>,
    limit: i64,
) -> QueryResult<Vec<BatchRow>> {
    let mut query = ai_batches::table.into_boxed();
    if let Some(status) = status {
        query = query.filter(ai_batches::status.eq(status));
    }
    // Batch ids start with the start time in unix milliseconds, so their
    // order is the start order.
    if let Some(before) = before {
        query = query.filter(ai_batches::batch_id.lt(before));
    }
    query
        .order(ai_batches::batch_id.desc())
        .limit(limit)
        .select(BatchRow::as_select())
        .load(connection)
}

/// The ids of a `continue` chain: `batch_id` and every batch before it.
pub fn chain_ids(connection: &mut PgConnection, batch_id: &str) -> QueryResult<Vec<String>> {
    #[derive(QueryableByName)]
    struct ChainId {
        #[diesel(sql_type = Text)]
        batch_id: String,
    }
    let rows: Vec<ChainId> = diesel::sql_query(
        "WITH RECURSIVE chain(batch_id, previous_batch_id, depth) AS ( \
           SELECT batch_id, previous_batch_id, 0 FROM ai_batches WHERE batch_id = $1 \
           UNION ALL \
           SELECT b.batch_id, b.previous_batch_id, c.depth + 1 FROM ai_batches b \
             JOIN chain c ON b.batch_id = c.previous_batch_id WHERE c.depth < 10000 \
         ) SELECT batch_id FROM chain",
    )
    .bind::<Text, _>(batch_id)
    .load(connection)?;
    Ok(rows.into_iter().map(|row| row.batch_id).collect())
}

/// An item handed to a worker.
#[derive(Debug, Clone, Queryable)]
pub struct ClaimedItem {
    /// Item id.
    pub id: i64,
    /// The text to analyse.
    pub content: String,
}

/// Locks the batch row if the batch is still processing. Every writer of a
/// batch's items takes this lock first, so a clear and a worker's commit are
/// ordered: whichever comes second sees the other's result.
pub fn lock_if_processing(
    connection: &mut PgConnection,
    batch_id: &str,
) -> QueryResult<Option<BatchRow>> {
    ai_batches::table
        .find(batch_id)
        .filter(ai_batches::status.eq("processing"))
        .select(BatchRow::as_select())
        .for_update()
        .first(connection)
        .optional()
}

/// Claims the next chunk of at most `limit` items for a processing batch.
///
/// The scan starts after the batch's claim cursor and reads one id window at
/// a time, so its cost grows with the chunk, not with the items already
/// processed or still queued. Rows locked by another transaction (an upsert
/// of the same item) are skipped rather than waited for. With `catch_up`
/// the claim sweeps the range below the cursor for such skipped items
/// instead, waiting up to [`CATCH_UP_LOCK_TIMEOUT`] for each held row, so
/// a batch never completes past an item it skipped. The sweep reads the
/// whole range and is meant for the end of a batch.
pub fn claim_chunk(
    connection: &mut PgConnection,
    batch_id: &str,
    limit: i64,
    catch_up: bool,
) -> QueryResult<Vec<ClaimedItem>> {
    connection.transaction(|connection| {
        let Some(batch) = lock_if_processing(connection, batch_id)? else {
            return Ok(Vec::new());
        };
        let in_flight: i64 = items::table
            .filter(items::claim_batch_id.eq(batch_id))
            .select(count_star())
            .first(connection)?;
        // Keep processed <= total even when items drift into the filter.
        let room = batch.total - batch.processed - in_flight;
        let limit = limit.min(room);
        if limit <= 0 {
            return Ok(Vec::new());
        }

        let filter: ItemFilter = serde_json::from_value(batch.filter.clone()).unwrap_or_default();
        let (ids, cursor) = if catch_up {
            diesel::sql_query(format!(
                "SET LOCAL lock_timeout = '{CATCH_UP_LOCK_TIMEOUT}'"
            ))
            .execute(connection)?;
            let ids = lock_ids(
                connection,
                &batch,
                &filter,
                limit,
                0,
                batch.claim_cursor,
                "",
            )?;
            (ids, batch.claim_cursor)
        } else {
            next_ids_after_cursor(connection, &batch, &filter, limit)?
        };
        if cursor > batch.claim_cursor {
            diesel::update(ai_batches::table.find(batch_id))
                .set(ai_batches::claim_cursor.eq(cursor))
                .execute(connection)?;
        }
        if ids.is_empty() {
            return Ok(Vec::new());
        }

        let claimed: Vec<ClaimedItem> = diesel::update(items::table.filter(items::id.eq_any(&ids)))
            .set((
                items::analysis_state.eq("processing"),
                items::claim_batch_id.eq(batch_id),
                items::attempts.eq(items::attempts + 1),
                items::updated_at.eq(now),
            ))
            .returning((items::id, items::content))
            .get_results(connection)?;
        let mut claimed = claimed;
        claimed.sort_by_key(|item| item.id);
        Ok(claimed)
    })
}

/// Ids a claim looks at in one step. The claim query's filters (no analysis
/// yet, not processed by this batch) match the same rows, so PostgreSQL
/// underestimates how many match near the end of a batch and may read
/// every remaining row. Bounding each step to a window of ids keeps a
/// claim's cost to about this many index entries whatever plan it picks.
const CLAIM_WINDOW: i64 = 2_048;

/// Finds the next chunk after the claim cursor, one id window at a time,
/// and returns it with the cursor to store. A window that yields fewer
/// than `limit` items holds no other claimable item, so the cursor moves
/// to its end.
fn next_ids_after_cursor(
    connection: &mut PgConnection,
    batch: &BatchRow,
    filter: &ItemFilter,
    limit: i64,
) -> QueryResult<(Vec<i64>, i64)> {
    let mut after = batch.claim_cursor;
    while after < batch.max_item_id {
        let up_to = after
            .saturating_add(CLAIM_WINDOW.max(limit))
            .min(batch.max_item_id);
        let ids = lock_ids(
            connection,
            batch,
            filter,
            limit,
            after,
            up_to,
            "SKIP LOCKED",
        )?;
        if ids.len() as i64 == limit {
            let highest = ids.iter().copied().max().unwrap_or(up_to);
            return Ok((ids, highest));
        }
        after = up_to;
        if !ids.is_empty() {
            return Ok((ids, after));
        }
    }
    Ok((Vec::new(), after))
}

/// How long the end-of-batch sweep waits for a row another transaction
/// holds. An upsert holds its rows for one statement, well under this; on a
/// timeout the claim fails and the worker retries after a pause.
pub const CATCH_UP_LOCK_TIMEOUT: &str = "5s";

/// Selects and locks up to `limit` claimable ids in `(after, up_to]`, with
/// `wait` either `SKIP LOCKED` or empty to wait for held rows. The filter
/// mirrors [`ItemFilter::apply`]; it is SQL text because diesel cannot lock
/// rows of a boxed query.
#[allow(
    clippy::too_many_arguments,
    reason = "one bind per placeholder of the claim query"
)]
fn lock_ids(
    connection: &mut PgConnection,
    batch: &BatchRow,
    filter: &ItemFilter,
    limit: i64,
    after: i64,
    up_to: i64,
    wait: &str,
) -> QueryResult<Vec<i64>> {
    #[derive(QueryableByName)]
    struct Id {
        #[diesel(sql_type = BigInt)]
        id: i64,
    }
    let query = format!(
        "SELECT id FROM items \
         WHERE claim_batch_id IS NULL AND id > $2 AND id <= $3 \
           AND batch_id IS DISTINCT FROM $1 \
           AND ($4::text[] IS NULL OR list_id = ANY($4)) \
           AND ($5::text[] IS NULL OR username = ANY($5)) \
           AND ($6::timestamptz IS NULL OR published_at >= $6) \
           AND ($7::bool IS NULL OR (analysis IS NOT NULL) = $7) \
           AND (cardinality($8::text[]) = 0 OR batch_id IS NULL OR batch_id <> ALL($8)) \
         ORDER BY id LIMIT $9 \
         FOR UPDATE {wait}"
    );
    let rows: Vec<Id> = diesel::sql_query(query)
        .bind::<Text, _>(&batch.batch_id)
        .bind::<BigInt, _>(after)
        .bind::<BigInt, _>(up_to)
        .bind::<Nullable<Array<Text>>, _>(&filter.list_ids)
        .bind::<Nullable<Array<Text>>, _>(&filter.usernames)
        .bind::<Nullable<Timestamptz>, _>(filter.published_after)
        .bind::<Nullable<Bool>, _>(filter.has_analysis)
        .bind::<Array<Text>, _>(&filter.exclude_batch_ids)
        .bind::<BigInt, _>(limit)
        .load(connection)?;
    Ok(rows.into_iter().map(|row| row.id).collect())
}

/// The outcome of one item, ready to store.
#[derive(Debug, Clone)]
pub struct StoredOutcome {
    /// Item id.
    pub item_id: i64,
    /// The analysis, when it succeeded.
    pub analysis: Option<serde_json::Value>,
    /// The failure reason, when it failed.
    pub error: Option<String>,
}

/// The fate of a chunk's results.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteOutcome {
    /// The results and counters were written.
    Written {
        /// Items analysed.
        succeeded: i64,
        /// Items failed.
        failed: i64,
    },
    /// The batch is no longer processing, so nothing was written.
    BatchNotProcessing,
}

/// Writes a chunk's results and the batch counters in one transaction that
/// first checks, under the batch row lock, that the batch is still
/// processing. A result for a cleared or cancelled batch is never written.
pub fn write_results(
    connection: &mut PgConnection,
    batch_id: &str,
    provider: &str,
    model: &str,
    outcomes: &[StoredOutcome],
) -> QueryResult<WriteOutcome> {
    #[derive(QueryableByName)]
    struct Written {
        #[diesel(sql_type = Bool)]
        ok: bool,
    }

    connection.transaction(|connection| {
        if lock_if_processing(connection, batch_id)?.is_none() {
            return Ok(WriteOutcome::BatchNotProcessing);
        }
        let ids: Vec<i64> = outcomes.iter().map(|outcome| outcome.item_id).collect();
        let analyses: Vec<Option<serde_json::Value>> = outcomes
            .iter()
            .map(|outcome| outcome.analysis.clone())
            .collect();
        let errors: Vec<Option<String>> = outcomes
            .iter()
            .map(|outcome| outcome.error.clone())
            .collect();
        // A failed attempt keeps an analysis the item already held, with the
        // provider and model that wrote it, so nothing stored is lost; such
        // an item stays 'analyzed' and carries the failure in last_error.
        let written: Vec<Written> = diesel::sql_query(
            "UPDATE items AS i SET \
               analysis_state = CASE WHEN r.analysis IS NOT NULL OR i.analysis IS NOT NULL \
                                     THEN 'analyzed' ELSE 'failed' END, \
               analysis = COALESCE(r.analysis, i.analysis), \
               analysed_at = CASE WHEN r.analysis IS NOT NULL THEN now() ELSE i.analysed_at END, \
               provider = CASE WHEN r.analysis IS NOT NULL OR i.analysis IS NULL \
                               THEN $2 ELSE i.provider END, \
               model = CASE WHEN r.analysis IS NOT NULL OR i.analysis IS NULL \
                            THEN $3 ELSE i.model END, \
               batch_id = $1, claim_batch_id = NULL, \
               last_error = r.error, updated_at = now() \
             FROM unnest($4::bigint[], $5::jsonb[], $6::text[]) AS r(id, analysis, error) \
             WHERE i.id = r.id AND i.claim_batch_id = $1 \
             RETURNING r.analysis IS NOT NULL AS ok",
        )
        .bind::<Text, _>(batch_id)
        .bind::<Text, _>(provider)
        .bind::<Text, _>(model)
        .bind::<Array<BigInt>, _>(&ids)
        .bind::<Array<Nullable<diesel::sql_types::Jsonb>>, _>(&analyses)
        .bind::<Array<Nullable<Text>>, _>(&errors)
        .load(connection)?;
        let succeeded = written.iter().filter(|row| row.ok).count() as i64;
        let failed = written.len() as i64 - succeeded;
        diesel::update(ai_batches::table.find(batch_id))
            .set((
                ai_batches::processed.eq(ai_batches::processed + succeeded + failed),
                ai_batches::succeeded.eq(ai_batches::succeeded + succeeded),
                ai_batches::failed.eq(ai_batches::failed + failed),
            ))
            .execute(connection)?;
        Ok(WriteOutcome::Written { succeeded, failed })
    })
}

/// The state an item returns to when a batch lets go of it: `analyzed` when
/// it holds an analysis, `failed` when its last attempt failed, else `pending`.
pub const RELEASED_STATE_SQL: &str = "CASE WHEN analysis IS NOT NULL THEN 'analyzed' \
     WHEN last_error IS NOT NULL THEN 'failed' ELSE 'pending' END";

/// Hands items claimed by `batch_ids` back to the queue, in the state
/// [`RELEASED_STATE_SQL`] picks.
pub fn release_items(connection: &mut PgConnection, batch_ids: &[String]) -> QueryResult<usize> {
    if batch_ids.is_empty() {
        return Ok(0);
    }
    diesel::update(items::table.filter(items::claim_batch_id.eq_any(batch_ids)))
        .set(released_columns())
        .execute(connection)
}

/// Hands back a worker's chunk that will not be processed, such as on shutdown.
pub fn release_chunk(
    connection: &mut PgConnection,
    batch_id: &str,
    item_ids: &[i64],
) -> QueryResult<usize> {
    connection.transaction(|connection| {
        lock_if_processing(connection, batch_id)?;
        diesel::update(
            items::table
                .filter(items::claim_batch_id.eq(batch_id))
                .filter(items::id.eq_any(item_ids)),
        )
        .set(released_columns())
        .execute(connection)
    })
}

#[allow(
    clippy::type_complexity,
    reason = "diesel's assignment tuple type is long but plain"
)]
fn released_columns() -> (
    diesel::dsl::Eq<items::analysis_state, diesel::expression::SqlLiteral<Text>>,
    diesel::dsl::Eq<items::claim_batch_id, Option<String>>,
    diesel::dsl::Eq<items::updated_at, now>,
) {
    (
        items::analysis_state.eq(sql::<Text>(RELEASED_STATE_SQL)),
        items::claim_batch_id.eq(None::<String>),
        items::updated_at.eq(now),
    )
}

/// Marks a processing batch completed if it holds no items and has nothing
/// left to claim. Returns whether it did.
pub fn complete_if_done(connection: &mut PgConnection, batch_id: &str) -> QueryResult<bool> {
    connection.transaction(|connection| {
        if lock_if_processing(connection, batch_id)?.is_none() {
            return Ok(false);
        }
        let in_flight: i64 = items::table
            .filter(items::claim_batch_id.eq(batch_id))
            .select(count_star())
            .first(connection)?;
        if in_flight > 0 {
            return Ok(false);
        }
        // Items that left the filter after the start (an upsert changed
        // their list) leave processed below total. The batch is still done
        // when nothing claimable remains.
        let changed = diesel::update(ai_batches::table.find(batch_id))
            .set((
                ai_batches::status.eq("completed"),
                ai_batches::finished_at.eq(now),
            ))
            .execute(connection)?;
        Ok(changed == 1)
    })
}

/// Moves processing batches to a final status and releases their items, in
/// one transaction. Returns the ids that changed and the items released.
pub fn finish_batches(
    connection: &mut PgConnection,
    batch_ids: &[String],
    status: &str,
    reason: &str,
) -> QueryResult<(Vec<String>, usize)> {
    connection.transaction(|connection| finish_batches_in(connection, batch_ids, status, reason))
}

/// [`finish_batches`] inside a transaction the caller holds.
pub fn finish_batches_in(
    connection: &mut PgConnection,
    batch_ids: &[String],
    status: &str,
    reason: &str,
) -> QueryResult<(Vec<String>, usize)> {
    let target = ai_batches::table
        .filter(ai_batches::batch_id.eq_any(batch_ids))
        .filter(ai_batches::status.eq("processing"));
    let changed: Vec<String> = if status == "cancelled" {
        diesel::update(target)
            .set((
                ai_batches::status.eq(status),
                ai_batches::finished_at.eq(now),
                ai_batches::cancel_reason.eq(reason),
            ))
            .returning(ai_batches::batch_id)
            .get_results(connection)?
    } else {
        diesel::update(target)
            .set((
                ai_batches::status.eq(status),
                ai_batches::finished_at.eq(now),
                ai_batches::error.eq(reason),
            ))
            .returning(ai_batches::batch_id)
            .get_results(connection)?
    };
    let released = release_items(connection, &changed)?;
    Ok((changed, released))
}

/// Records a heartbeat of a batch this instance owns. Returns false when the
/// batch is no longer processing or no longer ours.
pub fn heartbeat(
    connection: &mut PgConnection,
    batch_id: &str,
    instance_id: &str,
) -> QueryResult<bool> {
    let changed = diesel::update(
        ai_batches::table
            .find(batch_id)
            .filter(ai_batches::status.eq("processing"))
            .filter(ai_batches::owner_instance_id.eq(instance_id)),
    )
    .set(ai_batches::heartbeat_at.eq(now))
    .execute(connection)?;
    Ok(changed == 1)
}

/// Of `batch_ids`, the ones that are no longer processing.
pub fn stopped_among(
    connection: &mut PgConnection,
    batch_ids: &[String],
) -> QueryResult<Vec<String>> {
    let processing: Vec<String> = ai_batches::table
        .filter(ai_batches::batch_id.eq_any(batch_ids))
        .filter(ai_batches::status.eq("processing"))
        .select(ai_batches::batch_id)
        .load(connection)?;
    Ok(batch_ids
        .iter()
        .filter(|id| !processing.contains(id))
        .cloned()
        .collect())
}

/// Processing batches whose owner has not heartbeated within `lease_secs`.
pub fn expired_batches(
    connection: &mut PgConnection,
    lease_secs: i64,
) -> QueryResult<Vec<BatchRow>> {
    ai_batches::table
        .filter(ai_batches::status.eq("processing"))
        .filter(
            ai_batches::heartbeat_at
                .is_null()
                .or(
                    ai_batches::heartbeat_at.lt(sql::<Nullable<Timestamptz>>(&format!(
                        "now() - interval '{} seconds'",
                        lease_secs.max(1)
                    ))),
                ),
        )
        .select(BatchRow::as_select())
        .load(connection)
}

/// Whether the batch's owner heartbeated within `lease_secs` of `at`.
pub fn is_live(batch: &BatchRow, at: DateTime<Utc>, lease_secs: i64) -> bool {
    batch
        .heartbeat_at
        .is_some_and(|beat| (at - beat).num_seconds() < lease_secs)
}
