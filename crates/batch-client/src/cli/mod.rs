//! The `batchctl` command-line tool as a library function, so that tests and
//! other programs can run it in-process.
//!
//! [`run`] parses the arguments, sends the requests and writes to the streams
//! of a [`Console`]. The `batchctl` binary calls it with the process's own
//! standard streams and exits with the code it returns.
//!
//! ```no_run
//! use batch_client::cli::{self, Console};
//!
//! # async fn demo() {
//! let mut stdout = Vec::new();
//! let mut stderr = Vec::new();
//! let code = cli::run(
//!     ["batchctl", "--url", "http://127.0.0.1:8080", "--json", "preview"],
//!     Console {
//!         stdout: &mut stdout,
//!         stderr: &mut stderr,
//!         stdin: &mut std::io::empty(),
//!         stdin_is_terminal: false,
//!         show_progress: false,
//!     },
//! )
//! .await;
//! assert_eq!(code, cli::EXIT_SUCCESS);
//! # }
//! ```

mod args;
mod import;
mod output;

use std::ffi::OsString;
use std::io::{BufRead, Write};
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use futures_util::StreamExt;
use serde::Serialize;

use crate::types::{ClearRequest, ResetRequest};
use crate::{Client, ListBatchResultsQuery, ListBatchesQuery};
use args::{Cli, Command, PROVIDER_KEY_ENV};

/// Exit code of a command that succeeded, and of `--help` and `--version`.
pub const EXIT_SUCCESS: u8 = 0;

/// Exit code of a failed command: an error response, an unreachable server,
/// `health` on a server that is not ready, or `import` with invalid lines.
pub const EXIT_FAILURE: u8 = 1;

/// Exit code of invalid arguments, and of `clear` without `--yes` when stdin
/// is not a terminal (nothing is sent then).
pub const EXIT_USAGE: u8 = 2;

/// The standard streams of one [`run`].
pub struct Console<'a> {
    /// Receives results, as text or with `--json` as JSON.
    pub stdout: &'a mut dyn Write,
    /// Receives errors, skipped import lines and the confirmation prompt of `clear`.
    pub stderr: &'a mut dyn Write,
    /// Supplies the reply to the confirmation prompt of `clear`.
    pub stdin: &'a mut dyn BufRead,
    /// Whether stdin is a terminal. Without `--yes`, `clear` prompts only
    /// then, and otherwise exits with [`EXIT_USAGE`].
    pub stdin_is_terminal: bool,
    /// Whether `import` draws a progress bar on the process's stderr, which
    /// is not `stderr` above. Pass `false` unless `stderr` is the process's
    /// stderr.
    pub show_progress: bool,
}

/// Runs batchctl with `args` (the first one is the program name) and returns
/// its exit code: [`EXIT_SUCCESS`], [`EXIT_FAILURE`] or [`EXIT_USAGE`].
///
/// Errors are written to `console.stderr` as one line starting with
/// `batchctl: error:`. Like the binary, it reads `BATCH_URL`, `BATCH_API_KEY`,
/// `BATCH_LANG` and `BATCH_PROVIDER_API_KEY` from the process environment;
/// flags override the first three.
pub async fn run<I, T>(args: I, mut console: Console<'_>) -> u8
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(error) => return report_usage(&error, &mut console),
    };
    match run_command(cli, &mut console).await {
        Ok(code) => code,
        Err(error) => report(&error, console.stderr),
    }
}

/// Writes clap's help, version or usage error to the stream clap chose and
/// returns its exit code.
fn report_usage(error: &clap::Error, console: &mut Console<'_>) -> u8 {
    let (stream, code) = if error.use_stderr() {
        (&mut *console.stderr, EXIT_USAGE)
    } else {
        (&mut *console.stdout, EXIT_SUCCESS)
    };
    // NOTE: the text is plain, without clap's colors, because the streams
    // may not be terminals.
    let text = error.render().to_string();
    // A stream that cannot be written to has nowhere to report that either.
    let _ = stream
        .write_all(text.as_bytes())
        .and_then(|()| stream.flush());
    code
}

/// Writes `error` and its causes as one line to `stderr` and returns [`EXIT_FAILURE`].
fn report(error: &anyhow::Error, stderr: &mut dyn Write) -> u8 {
    let line = error
        .chain()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(": ")
        .replace(['\n', '\r'], " ");
    // A stream that cannot be written to has nowhere to report that either.
    let _ = writeln!(stderr, "batchctl: error: {line}").and_then(|()| stderr.flush());
    EXIT_FAILURE
}

/// Runs one parsed command and returns the exit code.
async fn run_command(cli: Cli, console: &mut Console<'_>) -> anyhow::Result<u8> {
    let client = Client::builder(&cli.url, &cli.api_key)
        .timeout(Duration::from_secs(cli.timeout))
        .language(cli.lang.to_language())
        .build()?;
    let json = cli.json;
    let stdout = &mut *console.stdout;

    match cli.command {
        Command::Status { batch_id: None } => {
            let status = client.get_global_status().await?;
            print(stdout, json, &status, output::global_status)?;
        }
        Command::Status {
            batch_id: Some(batch_id),
        } => {
            let batch = client.get_batch_status(&batch_id).await?;
            print(stdout, json, &batch, output::batch_info)?;
        }
        Command::Preview => {
            let preview = client.preview_clear().await?;
            print(stdout, json, &preview, output::clear_preview)?;
        }
        Command::Clear { expect, yes } => return clear(&client, console, json, expect, yes).await,
        Command::Reset { force } => {
            let result = client.reset_batches(&ResetRequest { force }).await?;
            print(stdout, json, &result, output::reset_result)?;
        }
        Command::Start(start) => {
            let request = start.to_request(provider_key(), None);
            let started = client.start_batch(&request).await?;
            print(stdout, json, &started, output::started)?;
        }
        Command::Continue {
            previous_batch_id,
            start,
        } => {
            let request = start.to_request(provider_key(), Some(previous_batch_id));
            let started = client.continue_batch(&request).await?;
            print(stdout, json, &started, output::started)?;
        }
        Command::Cancel { batch_id } => {
            let cancelled = client.cancel_batch(&batch_id).await?;
            print(stdout, json, &cancelled, output::cancelled)?;
        }
        Command::Import { file, chunk_size } => {
            let summary = import::import_file(
                &client,
                &file,
                chunk_size as usize,
                console.stderr,
                console.show_progress,
            )
            .await?;
            print(console.stdout, json, &summary, |summary| {
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
            print(stdout, json, &page, output::batches)?;
        }
        Command::Results {
            batch_id,
            all: true,
            ..
        } => stream_results(&client, stdout, json, &batch_id).await?,
        Command::Results {
            batch_id,
            limit,
            cursor,
            all: false,
        } => {
            let query = ListBatchResultsQuery { limit, cursor };
            let page = client.list_batch_results(&batch_id, &query).await?;
            print(stdout, json, &page, output::results)?;
        }
        Command::Health => {
            let health = client.check_health().await?;
            let ready = health.is_live() && health.is_ready();
            print(
                stdout,
                json,
                &serde_json::json!({
                    "live": {"status": health.live.status.as_u16(), "body": health.live.body},
                    "ready": {"status": health.ready.status.as_u16(), "body": health.ready.body},
                }),
                |_| output::health(&health),
            )?;
            if !ready {
                return Ok(EXIT_FAILURE);
            }
        }
    }
    Ok(EXIT_SUCCESS)
}

/// Writes `data` to `stdout` as pretty JSON with `--json`, otherwise as `human` formats it.
fn print<T: Serialize>(
    stdout: &mut dyn Write,
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
    console: &mut Console<'_>,
    json: bool,
    expect: Vec<String>,
    yes: bool,
) -> anyhow::Result<u8> {
    let mut expected = expect;
    if !yes {
        if !console.stdin_is_terminal {
            writeln!(
                console.stderr,
                "batchctl: clear needs confirmation, but stdin is not a terminal; pass --yes to clear without asking"
            )?;
            return Ok(EXIT_USAGE);
        }

        let preview = client.preview_clear().await?;
        print(console.stdout, json, &preview, output::clear_preview)?;
        let question = format!(
            "Clear {} batch(es)? [y/N] ",
            preview.processing_records.count
        );
        if !confirm(console, &question)? {
            writeln!(console.stderr, "Nothing cleared.")?;
            return Ok(EXIT_SUCCESS);
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
            print(console.stdout, json, &result, output::clear_result)?;
            Ok(EXIT_SUCCESS)
        }
        Err(error) if error.is_conflict() => {
            if let Some(current) = error.clear_preview() {
                console
                    .stderr
                    .write_all(output::clear_preview(&current).as_bytes())?;
            }
            Err(anyhow::Error::new(error)
                .context("the processing batches changed since the preview; nothing was cleared"))
        }
        Err(error) => Err(error.into()),
    }
}

/// Writes `question` to stderr and returns whether the reply on stdin is y or yes.
fn confirm(console: &mut Console<'_>, question: &str) -> anyhow::Result<bool> {
    console.stderr.write_all(question.as_bytes())?;
    console.stderr.flush()?;

    let mut answer = String::new();
    console
        .stdin
        .read_line(&mut answer)
        .context("failed to read the confirmation from stdin")?;
    let answer = answer.trim().to_ascii_lowercase();
    Ok(answer == "y" || answer == "yes")
}

/// Writes every result of a batch as it streams in: a table for people, or
/// one JSON object per line with `--json`.
async fn stream_results(
    client: &Client,
    stdout: &mut dyn Write,
    json: bool,
    batch_id: &str,
) -> anyhow::Result<()> {
    let mut results = client.stream_batch_results(batch_id).await?;
    let mut rows = Vec::new();
    while let Some(result) = results.next().await {
        let result = result?;
        if json {
            serde_json::to_writer(&mut *stdout, &result)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs batchctl in-process with `stdin` as its input and returns the
    /// exit code, stdout and stderr. Nothing listens at the URL, so any
    /// request fails.
    async fn run_offline(
        args: &[&str],
        stdin: &str,
        stdin_is_terminal: bool,
    ) -> (u8, String, String) {
        let mut argv = vec!["batchctl", "--url", "http://127.0.0.1:9"];
        argv.extend_from_slice(args);
        let mut stdout = Vec::new();
        let mut stderr = Vec::new();
        let code = run(
            argv,
            Console {
                stdout: &mut stdout,
                stderr: &mut stderr,
                stdin: &mut stdin.as_bytes(),
                stdin_is_terminal,
                show_progress: false,
            },
        )
        .await;
        (
            code,
            String::from_utf8_lossy(&stdout).into_owned(),
            String::from_utf8_lossy(&stderr).into_owned(),
        )
    }

    #[tokio::test]
    async fn help_goes_to_stdout() {
        let (code, stdout, stderr) = run_offline(&["--help"], "", false).await;
        assert_eq!(code, EXIT_SUCCESS);
        assert!(stdout.contains("Usage: batchctl"), "{stdout}");
        assert!(stderr.is_empty(), "{stderr}");
    }

    #[tokio::test]
    async fn unknown_flag_exits_with_usage_code() {
        let (code, stdout, stderr) = run_offline(&["status", "--bogus"], "", false).await;
        assert_eq!(code, EXIT_USAGE);
        assert!(stderr.contains("--bogus"), "{stderr}");
        assert!(stdout.is_empty(), "{stdout}");
    }

    #[tokio::test]
    async fn clear_without_terminal_exits_before_any_request() {
        let (code, _, stderr) = run_offline(&["clear"], "y\n", false).await;
        assert_eq!(code, EXIT_USAGE);
        assert!(stderr.contains("--yes"), "{stderr}");
        assert!(!stderr.contains("batchctl: error:"), "{stderr}");
    }

    #[tokio::test]
    async fn unreachable_server_prints_one_error_line() {
        let (code, stdout, stderr) = run_offline(&["--timeout", "2", "status"], "", false).await;
        assert_eq!(code, EXIT_FAILURE);
        assert!(stdout.is_empty(), "{stdout}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.starts_with("batchctl: error: "), "{stderr}");
    }
}
