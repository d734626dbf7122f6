//! Decoding of a JSON Lines body into a stream of values.

use std::pin::Pin;

use batch_types::BatchResult;
use futures_util::stream::{self, Stream, StreamExt};
use reqwest::{Response, StatusCode};
use serde::de::DeserializeOwned;

use crate::error::{Error, Result, decode_error};

/// The results of a batch, decoded one JSON line at a time.
///
/// A line that does not decode yields [`Error::Decode`] and the stream goes on
/// with the next line. A read error yields [`Error::Transport`] and ends it.
pub type BatchResultStream = Pin<Box<dyn Stream<Item = Result<BatchResult>> + Send>>;

/// Splits a response body on `\n` and decodes every non-blank line as `T`.
pub(crate) fn decode_lines<T>(response: Response) -> Pin<Box<dyn Stream<Item = Result<T>> + Send>>
where
    T: DeserializeOwned + Send + 'static,
{
    let status = response.status();
    decode_chunks(status, response.bytes_stream())
}

/// Splits a stream of body chunks on `\n` and decodes every non-blank line as `T`.
fn decode_chunks<T, S, B>(
    status: StatusCode,
    chunks: S,
) -> Pin<Box<dyn Stream<Item = Result<T>> + Send>>
where
    T: DeserializeOwned + Send + 'static,
    S: Stream<Item = reqwest::Result<B>> + Send + 'static,
    B: AsRef<[u8]>,
{
    let state = LineReader {
        status,
        chunks: Box::pin(chunks),
        buffer: Vec::new(),
        finished: false,
    };
    stream::unfold(state, |mut state| async move {
        loop {
            if let Some(line) = state.next_line() {
                let decoded = serde_json::from_slice::<T>(&line)
                    .map_err(|source| decode_error(state.status, &line, source));
                return Some((decoded, state));
            }
            if state.finished {
                return None;
            }
            match state.chunks.next().await {
                Some(Ok(chunk)) => state.buffer.extend_from_slice(chunk.as_ref()),
                Some(Err(error)) => {
                    state.finished = true;
                    state.buffer.clear();
                    return Some((Err(Error::Transport(error)), state));
                }
                None => state.finished = true,
            }
        }
    })
    .boxed()
}

/// The body read so far and the part of it not yet split into lines.
struct LineReader<S> {
    status: StatusCode,
    chunks: Pin<Box<S>>,
    buffer: Vec<u8>,
    finished: bool,
}

impl<S> LineReader<S> {
    /// Removes the next complete non-blank line from the buffer. After the
    /// body ended, a last line without `\n` counts as complete.
    fn next_line(&mut self) -> Option<Vec<u8>> {
        loop {
            let line = match self.buffer.iter().position(|&byte| byte == b'\n') {
                Some(end) => {
                    let mut line: Vec<u8> = self.buffer.drain(..=end).collect();
                    line.pop();
                    line
                }
                None if self.finished && !self.buffer.is_empty() => {
                    std::mem::take(&mut self.buffer)
                }
                None => return None,
            };
            if !line.iter().all(u8::is_ascii_whitespace) {
                return Some(line);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use serde_json::Value;

    async fn decode(chunks: &[&'static str]) -> Vec<Result<Value>> {
        let chunks: Vec<reqwest::Result<&'static [u8]>> =
            chunks.iter().map(|chunk| Ok(chunk.as_bytes())).collect();
        decode_chunks::<Value, _, _>(StatusCode::OK, stream::iter(chunks))
            .collect()
            .await
    }

    #[tokio::test]
    async fn lines_split_across_chunks() {
        let values = decode(&["{\"a\":", "1}\n{\"a\"", ":2}\r\n"]).await;
        let values: Vec<Value> = values
            .into_iter()
            .map(|value| value.expect("valid line"))
            .collect();
        assert_eq!(
            values,
            vec![serde_json::json!({"a": 1}), serde_json::json!({"a": 2})]
        );
    }

    #[tokio::test]
    async fn last_line_without_newline_decodes() {
        let values = decode(&["{\"a\":1}\n\n  \n{\"a\":2}"]).await;
        assert_eq!(values.len(), 2);
        assert!(values.iter().all(Result::is_ok));
    }

    #[tokio::test]
    async fn bad_line_yields_decode_and_continues() {
        let values = decode(&["not json\n{\"a\":3}\n"]).await;
        assert_eq!(values.len(), 2);
        assert!(matches!(&values[0], Err(Error::Decode { body, .. }) if body == "not json"));
        assert!(values[1].is_ok());
    }
}
