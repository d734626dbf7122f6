//! The open liveness and readiness probes.

use reqwest::StatusCode;
use serde_json::Value;

/// The responses of `GET /healthz` (liveness) and `GET /readyz` (readiness).
#[derive(Debug, Clone, PartialEq)]
pub struct Health {
    /// The response of `/healthz`, 200 while the process serves requests.
    pub live: Probe,
    /// The response of `/readyz`, 200 when the server can reach its database and 503 otherwise.
    pub ready: Probe,
}

impl Health {
    /// Returns whether `/healthz` responded 200.
    pub fn is_live(&self) -> bool {
        self.live.is_ok()
    }

    /// Returns whether `/readyz` responded 200.
    pub fn is_ready(&self) -> bool {
        self.ready.is_ok()
    }
}

/// The response of one probe.
#[derive(Debug, Clone, PartialEq)]
pub struct Probe {
    /// The HTTP status.
    pub status: StatusCode,
    /// The JSON body, such as `{"status": "ok"}`. A body that is not JSON is
    /// kept as a JSON string, and an empty body as `null`.
    pub body: Value,
}

impl Probe {
    /// Returns whether the probe responded 200.
    pub fn is_ok(&self) -> bool {
        self.status == StatusCode::OK
    }

    /// Returns the `status` field of the body, such as `ok`.
    pub fn status_text(&self) -> Option<&str> {
        self.body.get("status")?.as_str()
    }

    /// Builds a probe from a status and a raw body.
    pub(crate) fn from_response(status: StatusCode, body: &[u8]) -> Self {
        let body = if body.iter().all(u8::is_ascii_whitespace) {
            Value::Null
        } else {
            serde_json::from_slice(body)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()))
        };
        Self { status, body }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_reads_json_status() {
        let probe = Probe::from_response(StatusCode::OK, br#"{"status": "ok"}"#);
        assert!(probe.is_ok());
        assert_eq!(probe.status_text(), Some("ok"));
    }

    #[test]
    fn probe_keeps_text_body() {
        let probe = Probe::from_response(StatusCode::SERVICE_UNAVAILABLE, b"database down");
        assert!(!probe.is_ok());
        assert_eq!(probe.body, Value::String("database down".into()));
        assert_eq!(probe.status_text(), None);
    }

    #[test]
    fn probe_maps_empty_body_to_null() {
        let probe = Probe::from_response(StatusCode::OK, b"");
        assert_eq!(probe.body, Value::Null);
    }
}
