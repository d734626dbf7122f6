//! batchctl: the command-line client of the batch service.

mod args;
mod import;
mod output;

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use batch_client::types::{ClearRequest, ResetRequest};
use batch_client::{Client, ListBatchResultsQuery, ListBatchesQuery};
use clap::Parser;
use futures_util::StreamExt;
use serde::Serialize;

use crate::args::{Cli, Command, PROVIDER_KEY_ENV};

/// Exit code when `clear` needs confirmation but stdin is not a terminal.
const EXIT_NOT_CONFIRMED: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            return report(&anyhow::Error::new(error).context("cannot start the tokio runtime"));
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(error) => report(&error),
    }
}

/// Prints `error` and its causes as one line on stderr and returns exit code 1.
fn report(error: &anyhow::Error) -> ExitCode {
    let line = error
        .chain()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(": ")
        .replace(['\n', '\r'], " ");
    eprintln!("batchctl: error: {line}");
    ExitCode::FAILURE
}

/// Runs one command and returns the exit code.
async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let client = Client::builder(&cli.url, &cli.api_key)
        .timeout(Duration::from_secs(cli.timeout))
        .language(cli.lang.to_language())
        .build()?;
    let json = cli.json;

    match cli.command {
        Command::Status { batch_id: None } => {
            let status = client.get_global_status().await?;
            print(json, &status, output::global_status)?;
        }
        Command::Status {
            batch_id: Some(batch_id),
        } => {
            let batch = client.get_batch_status(&batch_id).await?;
            print(json, &batch, output::batch_info)?;
        }
        Command::Preview => {
            let preview = client.preview_clear().await?;
            print(json, &preview, output::clear_preview)?;
        }
        Command::Clear { expect, yes } => return clear(&client, json, expect, yes).await,
        Command::Reset { force } => {
            let result = client.reset_batches(&ResetRequest { force }).await?;
            print(json, &result, output::reset_result)?;
        }
        Command::Start(start) => {
            let request = start.to_request(provider_key(), None);
            let started = client.start_batch(&request).await?;
            print(json, &started, output::started)?;
        }
        Command::Continue {
            previous_batch_id,
            start,
        } => {
            let request = start.to_request(provider_key(), Some(previous_batch_id));
            let started = client.continue_batch(&request).await?;
            print(json, &started, output::started)?;
        }
        Command::Cancel { batch_id } => {
            let cancelled = client.cancel_batch(&batch_id).await?;
            print(json, &cancelled, output::cancelled)?;
        }
        Command::Import { file, chunk_size } => {
            let summary = import::import_file(&client, &file, chunk_size as usize).await?;
            print(json, &summary, |summary| {
                format!(
                    "{} inserted, {} updated, {} invalid line(s) skipped\n",
                    summary.inserted, summary.updated, summary.invalid_lines
                )
            })?;
            import::check_invalid_lines(&summary)?;
        }
        Command::Batches {
            limit,
            cursor,
            status,
        } => {
            let query = ListBatchesQuery {
                limit,
                cursor,
                status: status.map(|status| status.to_status()),
            };
            let page = client.list_batches(&query).await?;
            print(json, &page, output::batches)?;
        }
        Command::Results {
            batch_id,
            all: true,
            ..
        } => stream_results(&client, json, &batch_id).await?,
        Command::Results {
            batch_id,
            limit,
            cursor,
            all: false,
        } => {
            let query = ListBatchResultsQuery { limit, cursor };
            let page = client.list_batch_results(&batch_id, &query).await?;
            print(json, &page, output::results)?;
        }
        Command::Health => {
            let health = client.check_health().await?;
            let ready = health.is_live() && health.is_ready();
            print(
                json,
                &serde_json::json!({
                    "live": {"status": health.live.status.as_u16(), "body": health.live.body},
                    "ready": {"status": health.ready.status.as_u16(), "body": health.ready.body},
                }),
                |_| output::health(&health),
            )?;
            if !ready {
                return Ok(ExitCode::FAILURE);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints `data` as pretty JSON with `--json`, otherwise as `human` formats it.
fn print<T: Serialize>(
    json: bool,
    data: &T,
    human: impl FnOnce(&T) -> String,
) -> anyhow::Result<()> {
    let text = if json {
        let mut text = serde_json::to_string_pretty(data)?;
        text.push('\n');
        text
    } else {
        human(data)
    };
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(text.as_bytes())?;
    stdout.flush()?;
    Ok(())
}

/// Reads the provider key from the environment. An empty value counts as unset.
fn provider_key() -> Option<String> {
    std::env::var(PROVIDER_KEY_ENV)
        .ok()
        .filter(|key| !key.is_empty())
}

/// Runs `clear`: with `--yes` at once, otherwise after showing the preview and
/// reading a confirmation from the terminal.
async fn clear(
    client: &Client,
    json: bool,
    expect: Vec<String>,
    yes: bool,
) -> anyhow::Result<ExitCode> {
    let mut expected = expect;
    if !yes {
        if !std::io::stdin().is_terminal() {
            eprintln!(
                "batchctl: clear needs confirmation, but stdin is not a terminal; pass --yes to clear without asking"
            );
            return Ok(ExitCode::from(EXIT_NOT_CONFIRMED));
        }

        let preview = client.preview_clear().await?;
        print(json, &preview, output::clear_preview)?;
        if !confirm(&format!(
            "Clear {} batch(es)? [y/N] ",
            preview.processing_records.count
        ))? {
            eprintln!("Nothing cleared.");
            return Ok(ExitCode::SUCCESS);
        }
        // Clear only what the user saw. If another batch started since the
        // preview, the server responds 409 instead of cancelling it unseen.
        if expected.is_empty() {
            expected = preview
                .processing_records
                .tasks
                .iter()
                .map(|task| task.batch_id.clone())
                .collect();
        }
    }

    // After a confirmed preview the list is sent even when empty, so the
    // server clears only if still no batch is processing.
    let expected_batch_ids = if yes && expected.is_empty() {
        None
    } else {
        Some(expected)
    };
    let request = ClearRequest { expected_batch_ids };
    match client.clear_batches(&request).await {
        Ok(result) => {
            print(json, &result, output::clear_result)?;
            Ok(ExitCode::SUCCESS)
        }
        Err(error) if error.is_conflict() => {
            if let Some(current) = error.clear_preview() {
                eprint!("{}", output::clear_preview(&current));
            }
            Err(anyhow::Error::new(error)
                .context("the processing batches changed since the preview; nothing was cleared"))
        }
        Err(error) => Err(error.into()),
    }
}

/// Writes `question` to stderr and returns whether the reply on stdin is y or yes.
fn confirm(question: &str) -> anyhow::Result<bool> {
    let mut stderr = std::io::stderr().lock();
    stderr.write_all(question.as_bytes())?;
    stderr.flush()?;

    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .context("failed to read the confirmation from stdin")?;
    let answer = answer.trim().to_ascii_lowercase();
    Ok(answer == "y" || answer == "yes")
}

/// Prints every result of a batch as it streams in: a table for people, or
/// one JSON object per line with `--json`.
async fn stream_results(client: &Client, json: bool, batch_id: &str) -> anyhow::Result<()> {
    let mut results = client.stream_batch_results(batch_id).await?;
    let mut rows = Vec::new();
    let mut stdout = std::io::stdout().lock();
    while let Some(result) = results.next().await {
        let result = result?;
        if json {
            serde_json::to_writer(&mut stdout, &result)?;
            stdout.write_all(b"\n")?;
        } else {
            rows.push(output::result_row(&result));
        }
    }
    if !json {
        // The table needs every row to size its columns.
        stdout.write_all(output::table(&output::RESULT_HEADERS, &rows).as_bytes())?;
    }
    stdout.flush()?;
    Ok(())
}
