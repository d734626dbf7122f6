//! Text output for people: aligned `label  value` lines and simple tables.

use unicode_width::UnicodeWidthStr;

use crate::Health;
use crate::types::time::format_millis;
use crate::types::{
    BatchInfo, BatchResult, CancelBatchData, ClearPreview, ClearResult, GlobalStatus, Page,
    ResetResult, StartBatchData, StateSnapshot,
};

/// Formats `(label, value)` pairs with the values in one column.
pub fn fields(rows: &[(&str, String)]) -> String {
    let width = rows.iter().map(|(label, _)| label.len()).max().unwrap_or(0);
    let mut text = String::new();
    for (label, value) in rows {
        text.push_str(&format!("{label:<width$}  {value}\n"));
    }
    text
}

/// Formats rows under a header with every column left-aligned.
///
/// Widths are terminal columns, so Chinese text (two columns a character) aligns.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|header| header.width()).collect();
    for row in rows {
        for (column, cell) in row.iter().enumerate() {
            if let Some(width) = widths.get_mut(column) {
                *width = (*width).max(cell.width());
            }
        }
    }

    let header_row: Vec<String> = headers.iter().map(|header| header.to_string()).collect();
    let mut text = String::new();
    for row in std::iter::once(&header_row).chain(rows) {
        let mut line = String::new();
        for (column, cell) in row.iter().enumerate() {
            if column > 0 {
                line.push_str("  ");
            }
            line.push_str(cell);
            let padding = widths[column].saturating_sub(cell.width());
            line.push_str(&" ".repeat(padding));
        }
        text.push_str(line.trim_end());
        text.push('\n');
    }
    text
}

/// `-` for a missing value.
fn or_dash(value: Option<&str>) -> String {
    value.unwrap_or("-").to_owned()
}

/// `processed/total (percentage%)`.
fn progress_text(batch: &BatchInfo) -> String {
    let progress = &batch.progress;
    format!(
        "{}/{} ({:.1}%), {} succeeded, {} failed",
        progress.processed,
        progress.total,
        progress.percentage,
        progress.succeeded,
        progress.failed
    )
}

/// Formats the global state, with the processing batch when there is one.
pub fn global_status(status: &GlobalStatus) -> String {
    let mut text = fields(&[
        ("Global task", status.has_global_task.to_string()),
        ("Current batch", or_dash(status.current_batch_id.as_deref())),
        ("Message", status.global_message.clone()),
        ("Active workers", status.active_processes_count.to_string()),
        ("Pending items", status.pending_items.to_string()),
    ]);
    if let Some(batch) = &status.current_batch {
        text.push('\n');
        text.push_str(&batch_info(batch));
    }
    text
}

/// Formats one batch.
pub fn batch_info(batch: &BatchInfo) -> String {
    let mut rows = vec![
        ("Batch", batch.batch_id.clone()),
        ("Status", batch.status.as_str().to_owned()),
        ("Progress", progress_text(batch)),
        ("Provider", format!("{} / {}", batch.provider, batch.model)),
        (
            "Mode",
            format!(
                "{}, batch size {}, concurrency {}",
                batch.mode.as_str(),
                batch.batch_size,
                batch.concurrency
            ),
        ),
        ("Started", format_millis(&batch.started_at)),
        (
            "Finished",
            batch
                .finished_at
                .as_ref()
                .map_or_else(|| "-".to_owned(), format_millis),
        ),
    ];
    if let Some(previous) = &batch.previous_batch_id {
        rows.push(("Continues", previous.clone()));
    }
    if let Some(error) = &batch.error {
        rows.push(("Error", error.clone()));
    }
    if let Some(reason) = &batch.cancel_reason {
        rows.push(("Cancel reason", reason.clone()));
    }
    fields(&rows)
}

/// Formats the clear preview, one line per processing batch.
pub fn clear_preview(preview: &ClearPreview) -> String {
    let mut text = fields(&[
        ("Needs clear", preview.needs_clear.to_string()),
        (
            "Current batch",
            or_dash(preview.current_status.current_batch_id.as_deref()),
        ),
        ("Message", preview.current_status.global_message.clone()),
        ("Active workers", preview.active_processes.count.to_string()),
        (
            "Processing batches",
            preview.processing_records.count.to_string(),
        ),
        (
            "Would cancel",
            format!("{} batch(es)", preview.estimation.tasks_to_cancel),
        ),
        (
            "Would stop",
            format!("{} worker(s)", preview.estimation.memory_to_reset),
        ),
        ("Read at", format_millis(&preview.timestamp)),
    ]);
    if !preview.processing_records.tasks.is_empty() {
        let rows: Vec<Vec<String>> = preview
            .processing_records
            .tasks
            .iter()
            .map(|task| {
                vec![
                    task.batch_id.clone(),
                    task.progress.clone(),
                    format!("{} / {}", task.ai_provider, task.ai_model),
                    format_millis(&task.started_at),
                    task.duration.clone(),
                ]
            })
            .collect();
        text.push('\n');
        text.push_str(&table(
            &["BATCH", "PROGRESS", "PROVIDER", "STARTED", "RUNNING"],
            &rows,
        ));
    }
    text
}

/// `lock held by X, N worker(s), N processing`.
fn snapshot(state: &StateSnapshot) -> String {
    let lock = match &state.current_batch_id {
        Some(batch_id) => format!("lock held by {batch_id}"),
        None if state.has_global_task => "lock held".to_owned(),
        None => "lock free".to_owned(),
    };
    format!(
        "{lock}, {} worker(s), {} processing",
        state.active_processes_count, state.processing_records_count
    )
}

/// Formats what a clear changed.
pub fn clear_result(result: &ClearResult) -> String {
    fields(&[
        ("Cleared at", format_millis(&result.clear_time)),
        (
            "Cancelled",
            format!("{} batch(es)", result.cleared_tasks.processing_records),
        ),
        (
            "Stopped",
            format!("{} worker(s)", result.cleared_tasks.active_processes),
        ),
        ("Released", format!("{} item(s)", result.released_items)),
        ("Before", snapshot(&result.before_clear)),
        ("After", snapshot(&result.after_clear)),
    ])
}

/// Formats what a reset changed.
pub fn reset_result(result: &ResetResult) -> String {
    fields(&[
        ("Reset at", format_millis(&result.reset_at)),
        ("Mode", result.mode.clone()),
        ("Updated", format!("{} record(s)", result.updated_records)),
        ("Stopped", format!("{} worker(s)", result.stopped_workers)),
        ("Released", format!("{} item(s)", result.released_items)),
        ("Before", snapshot(&result.previous_status)),
        ("After", snapshot(&result.current_status)),
    ])
}

/// Formats a started batch.
pub fn started(data: &StartBatchData) -> String {
    let mut rows = vec![
        ("Batch", data.batch_id.clone()),
        ("Status", data.status.as_str().to_owned()),
        ("Items", data.total_items.to_string()),
        (
            "Chunks",
            format!("{} of {} item(s)", data.estimated_batches, data.batch_size),
        ),
        (
            "Mode",
            format!("{}, concurrency {}", data.mode.as_str(), data.concurrency),
        ),
        ("Provider", format!("{} / {}", data.provider, data.model)),
        ("Started", format_millis(&data.started_at)),
    ];
    if let Some(previous) = &data.previous_batch_id {
        rows.push(("Continues", previous.clone()));
    }
    fields(&rows)
}

/// Formats the outcome of a cancel.
pub fn cancelled(data: &CancelBatchData) -> String {
    let outcome = if data.cancelled {
        "cancelled"
    } else {
        "already finished, nothing changed"
    };
    fields(&[
        ("Batch", data.batch_id.clone()),
        ("Outcome", outcome.to_owned()),
        ("Status", data.status.as_str().to_owned()),
        ("Released", format!("{} item(s)", data.released_items)),
    ])
}

/// Formats a page of batches, with the cursor of the next page.
pub fn batches(page: &Page<BatchInfo>) -> String {
    let rows: Vec<Vec<String>> = page
        .entries
        .iter()
        .map(|batch| {
            vec![
                batch.batch_id.clone(),
                batch.status.as_str().to_owned(),
                format!(
                    "{}/{} ({:.1}%)",
                    batch.progress.processed, batch.progress.total, batch.progress.percentage
                ),
                format!("{} / {}", batch.provider, batch.model),
                format_millis(&batch.started_at),
            ]
        })
        .collect();
    let mut text = table(
        &["BATCH", "STATUS", "PROGRESS", "PROVIDER", "STARTED"],
        &rows,
    );
    text.push_str(&next_cursor(page.next_cursor.as_deref()));
    text
}

/// Builds the table row of one result: id, external id, state, then keywords or error.
pub fn result_row(result: &BatchResult) -> Vec<String> {
    let outcome = match (&result.analysis, &result.error) {
        (Some(analysis), _) if analysis.is_valueless => "(valueless)".to_owned(),
        (Some(analysis), _) => analysis.keywords.join(", "),
        (None, Some(error)) => error.clone(),
        (None, None) => "-".to_owned(),
    };
    vec![
        result.item_id.to_string(),
        result.external_id.clone(),
        result.state.as_str().to_owned(),
        outcome,
    ]
}

/// The header of the results table.
pub const RESULT_HEADERS: [&str; 4] = ["ITEM", "EXTERNAL ID", "STATE", "KEYWORDS / ERROR"];

/// Formats a page of results, with the cursor of the next page.
pub fn results(page: &Page<BatchResult>) -> String {
    let rows: Vec<Vec<String>> = page.entries.iter().map(result_row).collect();
    let mut text = table(&RESULT_HEADERS, &rows);
    text.push_str(&next_cursor(page.next_cursor.as_deref()));
    text
}

/// Formats the hint for the next page, or nothing on the last page.
fn next_cursor(cursor: Option<&str>) -> String {
    match cursor {
        Some(cursor) => format!("\nMore: pass --cursor {cursor}\n"),
        None => String::new(),
    }
}

/// Formats the responses of the two probes.
pub fn health(health: &Health) -> String {
    let describe = |probe: &crate::Probe| {
        let text = probe
            .status_text()
            .map(str::to_owned)
            .unwrap_or_else(|| probe.body.to_string());
        format!("{} ({})", probe.status, text)
    };
    fields(&[
        ("Live", describe(&health.live)),
        ("Ready", describe(&health.ready)),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_align_values() {
        let text = fields(&[("A", "1".into()), ("Longer", "2".into())]);
        assert_eq!(text, "A       1\nLonger  2\n");
    }

    #[test]
    fn table_aligns_columns_and_trims_ends() {
        let rows = vec![
            vec!["batch_1".to_owned(), "ok".to_owned()],
            vec!["b".to_owned(), "processing".to_owned()],
        ];
        let text = table(&["BATCH", "STATUS"], &rows);
        assert_eq!(text, "BATCH    STATUS\nbatch_1  ok\nb        processing\n");
    }

    #[test]
    fn table_counts_terminal_columns() {
        let rows = vec![vec!["错误".to_owned(), "x".to_owned()]];
        let text = table(&["AB", "C"], &rows);
        assert_eq!(text, "AB    C\n错误  x\n");
    }
}
