//! Measures `claim_chunk` at the start, middle and end of a 1,000,000-item
//! batch against a plain `SELECT id ... ORDER BY id LIMIT 50` at the same
//! ids, and prints the query plans. The claim's cost should not grow with the
//! items already processed or still queued, so the end/start ratio should be
//! near 1.
//!
//! Run with `cargo bench -p batch-server --bench claim`.

mod common;

use std::time::Duration;

use batch_server::db::batches::{
    self, ItemFilter, NewBatch, StoredOutcome, WriteOutcome, claim_chunk, write_results,
};
use chrono::Utc;
use common::{ScratchDb, explain_analyze, median, micros, print_plan, ratio, timed};
use diesel::prelude::*;
use diesel::sql_types::BigInt;

/// Items in the table and in the batch.
const ITEMS: i64 = 1_000_000;
/// Items per claim, the batch size a typical run uses.
const CHUNK: i64 = 50;
/// Timed claims in each round at a position.
const CALLS: i64 = 200;
/// Rounds of claims at each position, see [`measure_position`].
const ROUNDS: i64 = 3;
/// Timed runs of the catch-up claim.
const CATCH_UP_CALLS: usize = 5;
/// The one item the bulk marking leaves pending, as if a concurrent upsert
/// held its row lock when the claims passed it. It is the end position's
/// cursor, so the catch-up claim scans almost the whole batch to find it.
const SKIPPED_ID: i64 = ITEMS - ROUNDS * CALLS * CHUNK;
const BATCH_ID: &str = "batch_1700000000000_bench0";
const PROVIDER: &str = "local";
const MODEL: &str = "local-keywords-v1";

/// A claim cursor value at which the rounds of claims start.
struct Position {
    label: &'static str,
    cursor: i64,
}

/// Medians of one round of claims.
struct Round {
    claim: Duration,
    write: Duration,
}

/// Medians measured at one position.
struct PositionResult {
    label: &'static str,
    cursor: i64,
    /// The round with the server's default `synchronous_commit = on`.
    flushed: Round,
    /// The round with `synchronous_commit = off`.
    unflushed: Round,
    /// The round with `synchronous_commit = off` and `enable_bitmapscan = off`.
    no_bitmap: Round,
    raw: Duration,
}

fn main() {
    let scratch = ScratchDb::create("claim");
    let mut connection = scratch.connect();
    let connection = &mut connection;

    let (_, load_time) = timed(|| load_items(connection));
    eprintln!("loaded {ITEMS} items in {:.1} s", load_time.as_secs_f64());
    vacuum_analyze(connection);
    insert_batch(connection);

    // The end position leaves room for exactly the rounds of claims.
    let positions = [
        Position {
            label: "start",
            cursor: 0,
        },
        Position {
            label: "middle",
            cursor: ITEMS / 2,
        },
        Position {
            label: "end",
            cursor: ITEMS - ROUNDS * CALLS * CHUNK,
        },
    ];
    let mut results = Vec::new();
    for position in &positions {
        let (marked, mark_time) = timed(|| mark_processed_up_to(connection, position.cursor));
        if marked > 0 {
            eprintln!(
                "marked {marked} items processed up to id {} in {:.1} s",
                position.cursor,
                mark_time.as_secs_f64()
            );
            vacuum_analyze(connection);
        }
        let plan = explain_analyze(
            connection,
            &lock_next_ids_sql(position.cursor, false, CHUNK),
        );
        print_plan(
            &format!(
                "plan of the claim's SELECT ... FOR UPDATE SKIP LOCKED at {} (cursor {}):",
                position.label, position.cursor
            ),
            &plan,
        );
        results.push(measure_position(connection, position));
    }

    // At the end of a batch the normal claim comes back empty and one
    // catch-up claim sweeps the range below the cursor for skipped items.
    // claim_chunk limits it to the one item of room left (total - processed).
    let cursor = ITEMS;
    let plan = explain_analyze(connection, &lock_next_ids_sql(cursor, true, 1));
    print_plan(
        &format!(
            "plan of the catch-up SELECT at the end (cursor {cursor}, item {SKIPPED_ID} skipped):"
        ),
        &plan,
    );
    let mut catch_up_samples: Vec<Duration> = (0..CATCH_UP_CALLS)
        .map(|_| {
            let (claimed, elapsed) = timed(|| {
                claim_chunk(connection, BATCH_ID, CHUNK, true)
                    .expect("the catch-up claim_chunk failed")
            });
            let ids: Vec<i64> = claimed.iter().map(|item| item.id).collect();
            assert_eq!(ids, [SKIPPED_ID], "the catch-up finds the skipped item");
            batches::release_chunk(connection, BATCH_ID, &ids).expect("release_chunk failed");
            elapsed
        })
        .collect();
    let catch_up = median(&mut catch_up_samples);

    print_results(&results, catch_up);
}

/// Inserts ITEMS pending items with ids 1..=ITEMS.
fn load_items(connection: &mut PgConnection) {
    diesel::sql_query(format!(
        "INSERT INTO items (external_id, content, username, list_id) \
         SELECT 'bench-' || g, 'bench item ' || g || ' about rust and databases', \
                'user' || (g % 100), 'list' || (g % 10) \
         FROM generate_series(1, {ITEMS}) AS g"
    ))
    .execute(connection)
    .expect("loading the items failed");
    let highest: Option<i64> = batch_server::db::schema::items::table
        .select(diesel::dsl::max(batch_server::db::schema::items::id))
        .first(connection)
        .expect("reading the highest id failed");
    assert_eq!(highest, Some(ITEMS), "a fresh table numbers items from 1");
}

/// Runs `VACUUM (ANALYZE)` on items and a `CHECKPOINT`, so neither dead rows
/// from the bulk writes nor a checkpoint they triggered run into the timed
/// part. The analyze also gives the planner the statistics autovacuum would.
fn vacuum_analyze(connection: &mut PgConnection) {
    diesel::sql_query("VACUUM (ANALYZE) items")
        .execute(connection)
        .expect("VACUUM failed");
    diesel::sql_query("CHECKPOINT")
        .execute(connection)
        .expect("CHECKPOINT failed; the benches connect as a superuser or a pg_checkpoint member");
}

/// Inserts the processing batch over every item, with the filter a start
/// request without `isExtracted` gets: items without an analysis.
fn insert_batch(connection: &mut PgConnection) {
    let filter = ItemFilter {
        has_analysis: Some(false),
        ..ItemFilter::default()
    };
    let now = Utc::now();
    batches::insert_batch(
        connection,
        &NewBatch {
            batch_id: BATCH_ID.to_owned(),
            filter: serde_json::to_value(&filter).expect("the filter serializes"),
            settings: serde_json::json!({}),
            provider: PROVIDER.to_owned(),
            model: MODEL.to_owned(),
            mode: "optimized".to_owned(),
            batch_size: CHUNK as i32,
            concurrency: 1,
            max_item_id: ITEMS,
            total: ITEMS,
            owner_instance_id: "bench".to_owned(),
            heartbeat_at: now,
            started_at: now,
            previous_batch_id: None,
        },
    )
    .expect("inserting the batch failed");
}

/// Marks every unclaimed item from the claim cursor up to `cursor`, except
/// [`SKIPPED_ID`], as analysed by the batch and moves the cursor there, as if
/// the batch had processed them. Returns the items marked.
fn mark_processed_up_to(connection: &mut PgConnection, cursor: i64) -> usize {
    connection
        .transaction::<usize, diesel::result::Error, _>(|connection| {
            let marked = diesel::sql_query(format!(
                "UPDATE items SET analysis_state = 'analyzed', analysis = '{{\"bench\": true}}', \
                   analysed_at = now(), provider = '{PROVIDER}', model = '{MODEL}', \
                   batch_id = '{BATCH_ID}', attempts = attempts + 1, updated_at = now() \
                 WHERE id > (SELECT claim_cursor FROM ai_batches WHERE batch_id = '{BATCH_ID}') \
                   AND id <= {cursor} AND id <> {SKIPPED_ID} \
                   AND claim_batch_id IS NULL AND analysis IS NULL"
            ))
            .execute(connection)?;
            diesel::sql_query(format!(
                "UPDATE ai_batches SET claim_cursor = GREATEST(claim_cursor, {cursor}), \
                   processed = processed + {marked}, succeeded = succeeded + {marked} \
                 WHERE batch_id = '{BATCH_ID}'"
            ))
            .execute(connection)?;
            Ok(marked)
        })
        .expect("marking items processed failed")
}

/// Measures one position in three rounds of CALLS claims. The first uses the
/// server's default commit, which waits for the WAL flush. The second sets
/// `synchronous_commit = off`, which leaves the work of the queries. The
/// third also sets `enable_bitmapscan = off`, to show what the plan choice
/// costs. Then it times the keyset SELECT at every id a claim started from.
fn measure_position(connection: &mut PgConnection, position: &Position) -> PositionResult {
    let mut next_start = position.cursor;
    let mut starts = Vec::new();
    let flushed = measure_round(connection, &mut next_start, &mut starts);
    set_setting(connection, "synchronous_commit", "off");
    let unflushed = measure_round(connection, &mut next_start, &mut starts);
    set_setting(connection, "enable_bitmapscan", "off");
    let no_bitmap = measure_round(connection, &mut next_start, &mut starts);
    set_setting(connection, "enable_bitmapscan", "on");
    set_setting(connection, "synchronous_commit", "on");

    let mut raw_samples: Vec<Duration> = starts
        .iter()
        .map(|start| timed(|| raw_keyset_select(connection, *start)).1)
        .collect();
    PositionResult {
        label: position.label,
        cursor: position.cursor,
        flushed,
        unflushed,
        no_bitmap,
        raw: median(&mut raw_samples),
    }
}

fn set_setting(connection: &mut PgConnection, name: &str, value: &str) {
    diesel::sql_query(format!("SET {name} = {value}"))
        .execute(connection)
        .unwrap_or_else(|error| panic!("setting {name} to {value} failed: {error}"));
}

/// Times CALLS claims, completing each chunk with `write_results` as a
/// worker does. `next_start` is the id the next claim starts after, and
/// every start is appended to `starts`.
fn measure_round(
    connection: &mut PgConnection,
    next_start: &mut i64,
    starts: &mut Vec<i64>,
) -> Round {
    let mut claim_samples = Vec::new();
    let mut write_samples = Vec::new();
    for _ in 0..CALLS {
        let (claimed, claim_time) =
            timed(|| claim_chunk(connection, BATCH_ID, CHUNK, false).expect("claim_chunk failed"));
        assert_eq!(claimed.len(), CHUNK as usize, "a full chunk is left");
        assert_eq!(claimed[0].id, *next_start + 1, "claims follow the cursor");
        starts.push(*next_start);
        *next_start = claimed[claimed.len() - 1].id;
        claim_samples.push(claim_time);

        let outcomes: Vec<StoredOutcome> = claimed
            .iter()
            .map(|item| StoredOutcome {
                item_id: item.id,
                analysis: Some(serde_json::json!({"bench": true})),
                error: None,
            })
            .collect();
        let (written, write_time) = timed(|| {
            write_results(connection, BATCH_ID, PROVIDER, MODEL, &outcomes)
                .expect("write_results failed")
        });
        assert_eq!(
            written,
            WriteOutcome::Written {
                succeeded: CHUNK,
                failed: 0
            }
        );
        write_samples.push(write_time);
    }
    Round {
        claim: median(&mut claim_samples),
        write: median(&mut write_samples),
    }
}

/// Selects the next CHUNK ids after `after`, with no filter and no lock: the
/// baseline.
fn raw_keyset_select(connection: &mut PgConnection, after: i64) {
    #[derive(QueryableByName)]
    struct Id {
        #[diesel(sql_type = BigInt)]
        #[allow(dead_code, reason = "the row is read only to time the query")]
        id: i64,
    }
    let rows: Vec<Id> = diesel::sql_query(format!(
        "SELECT id FROM items WHERE id > {after} ORDER BY id LIMIT {CHUNK}"
    ))
    .load(connection)
    .expect("the keyset SELECT failed");
    assert_eq!(rows.len(), CHUNK as usize);
}

/// Builds the SELECT of `lock_next_ids` in `db/batches.rs` with the batch's values
/// as literals: no list, username or time filter, `has_analysis = false`, no
/// excluded batches. Keep the text in step with that function.
/// A normal claim reads one window of 2,048 ids past the cursor, as
/// `CLAIM_WINDOW` in that file does; the catch-up reads everything up to it.
fn lock_next_ids_sql(cursor: i64, catch_up: bool, limit: i64) -> String {
    let range = if catch_up {
        format!("id > 0 AND id <= {cursor}")
    } else {
        format!("id > {cursor} AND id <= {}", (cursor + 2_048).min(ITEMS))
    };
    format!(
        "SELECT id FROM items \
         WHERE claim_batch_id IS NULL AND {range} \
           AND batch_id IS DISTINCT FROM '{BATCH_ID}' \
           AND (NULL::text[] IS NULL OR list_id = ANY(NULL::text[])) \
           AND (NULL::text[] IS NULL OR username = ANY(NULL::text[])) \
           AND (NULL::timestamptz IS NULL OR published_at >= NULL::timestamptz) \
           AND (false::bool IS NULL OR (analysis IS NOT NULL) = false) \
           AND (cardinality('{{}}'::text[]) = 0 OR batch_id IS NULL \
                OR batch_id <> ALL('{{}}'::text[])) \
         ORDER BY id LIMIT {limit} \
         FOR UPDATE SKIP LOCKED"
    )
}

fn print_results(results: &[PositionResult], catch_up: Duration) {
    println!();
    println!(
        "claim_chunk({CHUNK} items) over a batch of {ITEMS} items, median of {CALLS} calls a column"
    );
    println!(
        "flush: synchronous_commit on (server default); no flush: off; \
         no bitmap: off and enable_bitmapscan off"
    );
    println!(
        "{:<8} {:>7} {:>9} {:>9} {:>9} {:>9} {:>9} {:>7} {:>10} {:>10}",
        "position",
        "cursor",
        "claim µs",
        "write µs",
        "claim µs",
        "write µs",
        "claim µs",
        "raw µs",
        "claim/raw",
        "claim/raw"
    );
    println!(
        "{:<8} {:>7} {:>9} {:>9} {:>9} {:>9} {:>9} {:>7} {:>10} {:>10}",
        "", "", "flush", "flush", "no flush", "no flush", "no bitmap", "", "flush", "no flush"
    );
    for result in results {
        println!(
            "{:<8} {:>7} {:>9.0} {:>9.0} {:>9.0} {:>9.0} {:>9.0} {:>7.0} {:>10.1} {:>10.1}",
            result.label,
            result.cursor,
            micros(result.flushed.claim),
            micros(result.flushed.write),
            micros(result.unflushed.claim),
            micros(result.unflushed.write),
            micros(result.no_bitmap.claim),
            micros(result.raw),
            ratio(result.flushed.claim, result.raw),
            ratio(result.unflushed.claim, result.raw)
        );
    }
    println!(
        "catch-up claim at the end (one skipped item at id {SKIPPED_ID}), \
         median of {CATCH_UP_CALLS}: {:.0} µs",
        micros(catch_up)
    );
    println!();
    let start = &results[0];
    for result in &results[1..] {
        let label = result.label;
        println!(
            "ratio claim {label}/start, flush: {:.2}",
            ratio(result.flushed.claim, start.flushed.claim)
        );
        println!(
            "ratio claim {label}/start, no flush: {:.2}",
            ratio(result.unflushed.claim, start.unflushed.claim)
        );
        println!(
            "ratio claim {label}/start, no bitmap: {:.2}",
            ratio(result.no_bitmap.claim, start.no_bitmap.claim)
        );
        println!(
            "ratio raw {label}/start: {:.2}",
            ratio(result.raw, start.raw)
        );
    }
    println!(
        "ratio catch-up/claim at start, flush: {:.1}",
        ratio(catch_up, start.flushed.claim)
    );
}
