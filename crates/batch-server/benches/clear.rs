//! Measures `finish_batches` (cancel a batch and release its items) on a
//! batch of 10,000 items and on one of 1,000,000 items, each with 100 items
//! in flight. Releasing should cost in proportion to the items in flight, not
//! the batch size, so the large/small ratio should be near 1. A third run
//! with 1,000 items in flight checks that the measurement does see the work
//! it should scale with.
//!
//! Run with `cargo bench -p batch-server --bench clear`.

mod common;

use std::time::Duration;

use batch_server::db::batches::{self, ItemFilter, NewBatch, claim_chunk, finish_batches};
use chrono::Utc;
use common::{ScratchDb, explain_analyze, median, micros, print_plan, ratio, timed};
use diesel::prelude::*;

/// Items of the small batch.
const SMALL: i64 = 10_000;
/// Items of the large batch.
const LARGE: i64 = 1_000_000;
/// Items in flight in the size comparison.
const IN_FLIGHT: i64 = 100;
/// Items in flight in the sensitivity run.
const MORE_IN_FLIGHT: i64 = 1_000;
/// Timed cancels per case, each rolled back.
const REPEATS: usize = 50;
const BATCH_ID: &str = "batch_1700000000000_bench1";

/// The median time of one case.
struct Case {
    label: String,
    batch_items: i64,
    in_flight: i64,
    finish: Duration,
}

fn main() {
    let scratch = ScratchDb::create("clear");
    let mut connection = scratch.connect();
    let connection = &mut connection;

    // Each case starts from a vacuumed table, so the dead row versions the
    // claims leave behind do not weigh on one case more than another.
    load_pending(connection, 1, SMALL);
    insert_batch(connection);
    claim(connection, IN_FLIGHT);
    vacuum_analyze(connection);
    let small = measure(connection, "small batch", SMALL, IN_FLIGHT);

    // Grow the same batch to LARGE items: half of the new ones already
    // analysed by it, half still pending, as in a batch that is half done.
    let (_, grow_time) = timed(|| grow_batch(connection));
    eprintln!(
        "grew the batch to {LARGE} items in {:.1} s",
        grow_time.as_secs_f64()
    );
    vacuum_analyze(connection);
    let large = measure(connection, "large batch", LARGE, IN_FLIGHT);

    let plan = explain_analyze(connection, &release_sql());
    print_plan(
        &format!("plan of release_items' UPDATE on the large batch ({IN_FLIGHT} in flight):"),
        &plan,
    );

    claim(connection, MORE_IN_FLIGHT - IN_FLIGHT);
    vacuum_analyze(connection);
    let more = measure(connection, "large batch", LARGE, MORE_IN_FLIGHT);

    println!();
    println!("finish_batches(cancelled) + deferred checks, rolled back, median of {REPEATS} runs");
    println!(
        "{:<12} {:>12} {:>10} {:>12}",
        "case", "batch items", "in flight", "finish µs"
    );
    for case in [&small, &large, &more] {
        println!(
            "{:<12} {:>12} {:>10} {:>12.0}",
            case.label,
            case.batch_items,
            case.in_flight,
            micros(case.finish)
        );
    }
    println!();
    println!(
        "ratio finish large/small batch ({IN_FLIGHT} in flight): {:.2}",
        ratio(large.finish, small.finish)
    );
    println!(
        "ratio finish {MORE_IN_FLIGHT}/{IN_FLIGHT} in flight (large batch): {:.2}",
        ratio(more.finish, large.finish)
    );
}

/// Inserts pending items with ids `first..=last`.
fn load_pending(connection: &mut PgConnection, first: i64, last: i64) {
    diesel::sql_query(format!(
        "INSERT INTO items (id, external_id, content, username, list_id) \
         SELECT g, 'bench-' || g, 'bench item ' || g || ' about rust and databases', \
                'user' || (g % 100), 'list' || (g % 10) \
         FROM generate_series({first}, {last}) AS g"
    ))
    .execute(connection)
    .expect("loading the items failed");
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

/// Inserts the processing batch over the SMALL items.
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
            provider: "local".to_owned(),
            model: "local-keywords-v1".to_owned(),
            mode: "optimized".to_owned(),
            batch_size: 50,
            concurrency: 1,
            max_item_id: SMALL,
            total: SMALL,
            owner_instance_id: "bench".to_owned(),
            heartbeat_at: now,
            started_at: now,
            previous_batch_id: None,
        },
    )
    .expect("inserting the batch failed");
}

/// Claims `count` more items for the batch with the server's claim query.
fn claim(connection: &mut PgConnection, count: i64) {
    let claimed = claim_chunk(connection, BATCH_ID, count, false).expect("claim_chunk failed");
    assert_eq!(claimed.len(), count as usize, "enough items are pending");
}

/// Adds items SMALL+1..=LARGE to the batch: even ids analysed by the batch,
/// odd ids pending. The batch's total and counters follow.
fn grow_batch(connection: &mut PgConnection) {
    connection
        .transaction::<(), diesel::result::Error, _>(|connection| {
            let first = SMALL + 1;
            diesel::sql_query(format!(
                "INSERT INTO items (id, external_id, content, username, list_id, \
                   analysis_state, analysis, analysed_at, provider, model, batch_id, attempts) \
                 SELECT g, 'bench-' || g, 'bench item ' || g || ' about rust and databases', \
                        'user' || (g % 100), 'list' || (g % 10), \
                        CASE WHEN g % 2 = 0 THEN 'analyzed' ELSE 'pending' END, \
                        CASE WHEN g % 2 = 0 THEN '{{\"bench\": true}}'::jsonb END, \
                        CASE WHEN g % 2 = 0 THEN now() END, \
                        CASE WHEN g % 2 = 0 THEN 'local' END, \
                        CASE WHEN g % 2 = 0 THEN 'local-keywords-v1' END, \
                        CASE WHEN g % 2 = 0 THEN '{BATCH_ID}' END, \
                        CASE WHEN g % 2 = 0 THEN 1 ELSE 0 END \
                 FROM generate_series({first}, {LARGE}) AS g"
            ))
            .execute(connection)?;
            diesel::sql_query(format!(
                "UPDATE ai_batches SET total = {LARGE}, max_item_id = {LARGE}, \
                   processed = (SELECT count(*) FROM items WHERE batch_id = '{BATCH_ID}'), \
                   succeeded = (SELECT count(*) FROM items WHERE batch_id = '{BATCH_ID}') \
                 WHERE batch_id = '{BATCH_ID}'"
            ))
            .execute(connection)?;
            Ok(())
        })
        .expect("growing the batch failed");
}

/// Times `finish_batches(.., "cancelled", ..)` followed by
/// `SET CONSTRAINTS ALL IMMEDIATE`, which runs the deferred trigger checks a
/// commit would run, and rolls each run back so the batch stays processing.
fn measure(connection: &mut PgConnection, label: &str, batch_items: i64, in_flight: i64) -> Case {
    let ids = [BATCH_ID.to_owned()];
    let mut samples = Vec::with_capacity(REPEATS);
    for _ in 0..REPEATS {
        let mut elapsed = Duration::ZERO;
        let outcome = connection.transaction::<(), diesel::result::Error, _>(|connection| {
            let (result, time) = timed(|| -> QueryResult<(Vec<String>, usize)> {
                let result = finish_batches(connection, &ids, "cancelled", "bench")?;
                diesel::sql_query("SET CONSTRAINTS ALL IMMEDIATE").execute(connection)?;
                Ok(result)
            });
            let (changed, released) = result?;
            assert_eq!(changed, ids, "the batch was processing");
            assert_eq!(
                released, in_flight as usize,
                "every claimed item is released"
            );
            elapsed = time;
            Err(diesel::result::Error::RollbackTransaction)
        });
        match outcome {
            Err(diesel::result::Error::RollbackTransaction) => samples.push(elapsed),
            Err(error) => panic!("cancelling the batch failed: {error}"),
            Ok(()) => unreachable!("every run rolls back"),
        }
    }
    Case {
        label: label.to_owned(),
        batch_items,
        in_flight,
        finish: median(&mut samples),
    }
}

/// Builds the UPDATE that `release_items` sends, with the batch id as a literal.
fn release_sql() -> String {
    format!(
        "UPDATE items SET analysis_state = CASE WHEN analysis IS NOT NULL THEN 'analyzed' \
           WHEN last_error IS NOT NULL THEN 'failed' ELSE 'pending' END, \
           claim_batch_id = NULL, updated_at = now() \
         WHERE claim_batch_id = ANY(ARRAY['{BATCH_ID}'])"
    )
}
