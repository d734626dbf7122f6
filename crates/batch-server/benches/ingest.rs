//! Measures `upsert_items`, the write path of the import command and the
//! upsert route, against `COPY items (...) FROM STDIN` (binary) of the same
//! rows into the same empty table, with the same indexes and triggers.
//!
//! The items come from the JSONL files listed in `BATCH_BENCH_DATA`
//! (separated by `:`), or from 25,000 generated posts when it is unset.
//!
//! Run with `cargo bench -p batch-server --bench ingest`.

mod common;

use std::time::Duration;

use batch_server::db::items::{NewItemRow, upsert_items};
use batch_server::db::schema::items;
use chrono::{DateTime, Utc};
use common::{Dataset, ScratchDb, load_datasets, median, per_second, ratio, timed};
use diesel::prelude::*;

/// Rows per `upsert_items` call, the chunk size of `batch-server import`.
const IMPORT_CHUNK: usize = 5_000;
/// Timed runs of each method per data set.
const REPEATS: usize = 5;

/// A row for `COPY`. Every column is sent, so `None` is written as NULL.
#[derive(Insertable)]
#[diesel(table_name = items)]
#[diesel(treat_none_as_default_value = false)]
struct CopyRow<'a> {
    external_id: &'a str,
    content: &'a str,
    username: Option<&'a str>,
    list_id: Option<&'a str>,
    published_at: Option<DateTime<Utc>>,
}

/// Median times for one data set.
struct Measured {
    name: String,
    items: usize,
    insert: Duration,
    update: Duration,
    copy: Duration,
}

fn main() {
    let datasets = load_datasets();
    let scratch = ScratchDb::create("ingest");
    let mut connection = scratch.connect();
    let connection = &mut connection;

    let results: Vec<Measured> = datasets
        .iter()
        .map(|dataset| measure(connection, dataset))
        .collect();

    println!();
    println!(
        "upsert_items in chunks of {IMPORT_CHUNK} vs binary COPY into the same empty table, \
         median of {REPEATS} runs"
    );
    println!(
        "{:<18} {:>7} {:>14} {:>14} {:>14} {:>13}",
        "data set", "items", "insert items/s", "update items/s", "COPY items/s", "insert/COPY"
    );
    for result in &results {
        println!(
            "{:<18} {:>7} {:>14.0} {:>14.0} {:>14.0} {:>13.2}",
            result.name,
            result.items,
            per_second(result.items, result.insert),
            per_second(result.items, result.update),
            per_second(result.items, result.copy),
            ratio(result.insert, result.copy)
        );
    }
    println!();
    for result in &results {
        println!(
            "ratio upsert insert/COPY ({}): {:.2}",
            result.name,
            ratio(result.insert, result.copy)
        );
        println!(
            "ratio upsert update/COPY ({}): {:.2}",
            result.name,
            ratio(result.update, result.copy)
        );
    }
}

/// Times, on an empty table each time: the upsert of every row (all
/// inserts), the same upsert again (all updates), and the COPY.
fn measure(connection: &mut PgConnection, dataset: &Dataset) -> Measured {
    let rows = &dataset.rows;
    let copy_rows: Vec<CopyRow<'_>> = rows.iter().map(copy_row).collect();
    let mut insert_samples = Vec::new();
    let mut update_samples = Vec::new();
    let mut copy_samples = Vec::new();
    for _ in 0..REPEATS {
        truncate(connection);
        let ((inserted, updated), time) = timed(|| upsert_all(connection, rows));
        assert_eq!((inserted, updated), (rows.len() as u64, 0));
        insert_samples.push(time);

        let ((inserted, updated), time) = timed(|| upsert_all(connection, rows));
        assert_eq!((inserted, updated), (0, rows.len() as u64));
        update_samples.push(time);

        truncate(connection);
        let (copied, time) = timed(|| {
            diesel::copy_from(items::table)
                .from_insertable(&copy_rows)
                .execute(connection)
                .expect("COPY into items failed")
        });
        assert_eq!(copied, rows.len());
        copy_samples.push(time);
    }
    Measured {
        name: dataset.name.clone(),
        items: rows.len(),
        insert: median(&mut insert_samples),
        update: median(&mut update_samples),
        copy: median(&mut copy_samples),
    }
}

/// Upserts `rows` as `batch-server import` does: one call per chunk.
fn upsert_all(connection: &mut PgConnection, rows: &[NewItemRow]) -> (u64, u64) {
    let mut totals = (0, 0);
    for chunk in rows.chunks(IMPORT_CHUNK) {
        let (inserted, updated) = upsert_items(connection, chunk).expect("upsert_items failed");
        totals.0 += inserted;
        totals.1 += updated;
    }
    totals
}

/// Empties items and runs `VACUUM (ANALYZE)`, so each run starts from the
/// same empty table.
fn truncate(connection: &mut PgConnection) {
    diesel::sql_query("TRUNCATE items RESTART IDENTITY")
        .execute(connection)
        .expect("TRUNCATE failed");
    diesel::sql_query("VACUUM (ANALYZE) items")
        .execute(connection)
        .expect("VACUUM failed");
}

fn copy_row(row: &NewItemRow) -> CopyRow<'_> {
    CopyRow {
        external_id: &row.external_id,
        content: &row.content,
        username: row.username.as_deref(),
        list_id: row.list_id.as_deref(),
        published_at: row.published_at,
    }
}
