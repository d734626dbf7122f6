//! `batchctl import`: upsert items from a JSON Lines file in chunks.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::Client;
use crate::types::{NewItem, UpsertItemsRequest};

/// Counts of a finished import.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImportSummary {
    /// Items whose `externalId` was new.
    pub inserted: u64,
    /// Items whose `externalId` existed.
    pub updated: u64,
    /// Lines that were not a valid item and were skipped.
    pub invalid_lines: u64,
}

/// One item read from the file, with its 1-based line number.
struct NumberedItem {
    line: u64,
    item: NewItem,
}

/// Parses one line: `Ok(None)` for a blank line, otherwise the item or a
/// message that names the column of the error.
pub fn parse_line(line: &[u8]) -> Result<Option<NewItem>, String> {
    if line.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    serde_json::from_slice::<NewItem>(line)
        .map(Some)
        .map_err(|error| {
            // serde_json appends " at line 1 column N"; the line number is the
            // file's, so keep only the column.
            let text = error.to_string();
            let message = text
                .rsplit_once(" at line ")
                .map_or(text.as_str(), |(message, _)| message);
            format!("column {}: {message}", error.column())
        })
}

/// Reads `path` and upserts its items `chunk_size` at a time.
///
/// Invalid lines are reported on `stderr` and skipped. The import stops at
/// the first chunk the server rejects; the chunks before it stay stored. With
/// `show_progress`, a progress bar over the bytes read is drawn on the
/// process's stderr, which indicatif leaves blank when it is not a terminal.
pub async fn import_file(
    client: &Client,
    path: &Path,
    chunk_size: usize,
    stderr: &mut dyn Write,
    show_progress: bool,
) -> anyhow::Result<ImportSummary> {
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let total_bytes = file.metadata().map(|metadata| metadata.len()).unwrap_or(0);
    let mut reader = BufReader::new(file);

    let target = if show_progress {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    };
    let progress = ProgressBar::with_draw_target(Some(total_bytes), target);
    progress.set_style(
        ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );

    let mut summary = ImportSummary::default();
    let mut chunk: Vec<NumberedItem> = Vec::with_capacity(chunk_size);
    let mut line = Vec::new();
    let mut line_number = 0u64;

    loop {
        line.clear();
        let read = reader
            .read_until(b'\n', &mut line)
            .with_context(|| format!("cannot read {} after line {line_number}", path.display()))?;
        if read == 0 {
            break;
        }
        line_number += 1;
        progress.inc(read as u64);

        match parse_line(&line) {
            Ok(Some(item)) => chunk.push(NumberedItem {
                line: line_number,
                item,
            }),
            Ok(None) => {}
            Err(message) => {
                summary.invalid_lines += 1;
                progress
                    .suspend(|| writeln!(stderr, "line {line_number}: invalid item: {message}"))?;
            }
        }

        if chunk.len() >= chunk_size {
            upsert_chunk(client, &mut chunk, &mut summary, &progress, stderr).await?;
        }
    }
    if !chunk.is_empty() {
        upsert_chunk(client, &mut chunk, &mut summary, &progress, stderr).await?;
    }
    progress.finish_and_clear();
    Ok(summary)
}

/// Sends one chunk and adds its counts to `summary`. On a validation error the
/// field paths (`items[3].content`) are reported as file line numbers.
async fn upsert_chunk(
    client: &Client,
    chunk: &mut Vec<NumberedItem>,
    summary: &mut ImportSummary,
    progress: &ProgressBar,
    stderr: &mut dyn Write,
) -> anyhow::Result<()> {
    let first_line = chunk.first().map_or(0, |numbered| numbered.line);
    let last_line = chunk.last().map_or(0, |numbered| numbered.line);
    let lines: Vec<u64> = chunk.iter().map(|numbered| numbered.line).collect();
    let request = UpsertItemsRequest {
        items: chunk.drain(..).map(|numbered| numbered.item).collect(),
    };

    match client.upsert_items(&request).await {
        Ok(counts) => {
            summary.inserted += counts.inserted;
            summary.updated += counts.updated;
            progress.set_message(format!(
                "{} item(s) stored",
                summary.inserted + summary.updated
            ));
            Ok(())
        }
        Err(error) => {
            for field in error.field_errors() {
                let place = item_line(&field.field, &lines).map_or_else(
                    || field.field.clone(),
                    |(line, rest)| format!("line {line}: {rest}"),
                );
                progress.suspend(|| writeln!(stderr, "{place}: {}", field.message))?;
            }
            let stored = summary.inserted + summary.updated;
            Err(anyhow::Error::new(error).context(format!(
                "upsert of lines {first_line}-{last_line} failed; {stored} item(s) from earlier lines are stored"
            )))
        }
    }
}

/// Maps a field path such as `items[3].content` to the file line of item 3
/// and the rest of the path (`content`).
fn item_line(field: &str, lines: &[u64]) -> Option<(u64, String)> {
    let rest = field.strip_prefix("items[")?;
    let (index, rest) = rest.split_once(']')?;
    let line = *lines.get(index.parse::<usize>().ok()?)?;
    let rest = rest.trim_start_matches('.');
    Some((
        line,
        if rest.is_empty() {
            "item".to_owned()
        } else {
            rest.to_owned()
        },
    ))
}

/// Fails when `summary` counted invalid lines, so the exit code shows it.
pub fn check_invalid_lines(summary: &ImportSummary) -> anyhow::Result<()> {
    if summary.invalid_lines > 0 {
        bail!(
            "{} invalid line(s) skipped; fix them and import again (items are keyed by externalId)",
            summary.invalid_lines
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_line_reads_item() {
        let line = br#"{"externalId":"tw-1","content":"hi","username":"alice","listId":"l1","publishedAt":"2025-09-22T11:48:00Z"}"#;
        let item = parse_line(line).expect("valid line").expect("not blank");
        assert_eq!(item.external_id, "tw-1");
        assert_eq!(item.username.as_deref(), Some("alice"));
        assert!(item.published_at.is_some());
    }

    #[test]
    fn parse_line_skips_blank() {
        assert_eq!(parse_line(b"  \r\n"), Ok(None));
    }

    #[test]
    fn parse_line_names_missing_field() {
        let message = parse_line(br#"{"externalId":"tw-1"}"#).expect_err("content is missing");
        assert!(message.contains("missing field `content`"), "{message}");
        assert!(!message.contains("at line"), "{message}");
    }

    #[test]
    fn item_line_maps_index_to_line() {
        let lines = [3, 5, 9];
        assert_eq!(
            item_line("items[1].content", &lines),
            Some((5, "content".into()))
        );
        assert_eq!(item_line("items[2]", &lines), Some((9, "item".into())));
        assert_eq!(item_line("items[7].content", &lines), None);
        assert_eq!(item_line("items", &lines), None);
    }
}
