//! The `import` command: loads a JSONL file of items straight into the database.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

use indicatif::{ProgressBar, ProgressStyle};

use crate::db::DbConn;
use crate::db::items::{NewItemRow, upsert_items};
use crate::ingest::parse_item;

/// Items per upsert statement; large enough that a 25,000-line file takes a
/// handful of round trips.
const CHUNK: usize = 5_000;

/// Counts of an import.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ImportSummary {
    /// New items.
    pub inserted: u64,
    /// Existing items updated.
    pub updated: u64,
}

/// Imports every line of `path`. Validates the whole file first, so a bad
/// line stops the import before anything is written.
pub fn import_file(connection: &mut DbConn, path: &Path) -> anyhow::Result<ImportSummary> {
    let file = File::open(path)
        .map_err(|error| anyhow::anyhow!("cannot open {}: {error}", path.display()))?;
    let mut rows: Vec<NewItemRow> = Vec::new();
    let mut errors = Vec::new();
    let mut seen = std::collections::HashMap::new();
    for (index, line) in BufReader::new(file).lines().enumerate() {
        let number = index + 1;
        let line =
            line.map_err(|error| anyhow::anyhow!("reading line {number} failed: {error}"))?;
        if line.trim().is_empty() {
            continue;
        }
        let value: serde_json::Value = match serde_json::from_str(&line) {
            Ok(value) => value,
            Err(error) => {
                errors.push(format!("line {number}: not valid JSON ({error})"));
                continue;
            }
        };
        let mut line_errors = Vec::new();
        if let Some(row) = parse_item(&value, &format!("line {number}"), &mut line_errors) {
            // A later line with the same externalId replaces the earlier one.
            match seen.insert(row.external_id.clone(), rows.len()) {
                Some(earlier) => rows[earlier] = row,
                None => rows.push(row),
            }
        }
        errors.extend(
            line_errors
                .into_iter()
                // parse_item names fields `line N.field`; print `line N, field`.
                .map(|error| format!("{}: {}", error.field.replacen('.', ", ", 1), error.message)),
        );
    }
    if !errors.is_empty() {
        let shown: Vec<&str> = errors.iter().take(20).map(String::as_str).collect();
        anyhow::bail!(
            "{} invalid lines in {}; nothing was imported. Fix these and run again:\n{}",
            errors.len(),
            path.display(),
            shown.join("\n")
        );
    }

    let bar = ProgressBar::new(rows.len() as u64);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} importing [{bar:40}] {pos}/{len} items ({per_sec})",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut summary = ImportSummary::default();
    for chunk in rows.chunks(CHUNK) {
        let (inserted, updated) = upsert_items(connection, chunk)?;
        summary.inserted += inserted;
        summary.updated += updated;
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    Ok(summary)
}
