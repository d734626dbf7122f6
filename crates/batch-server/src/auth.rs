//! API-key authentication of the `/api/external` routes.

use actix_web::HttpMessage;
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::{ResponseError, web};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::config::DEMO_API_KEY;
use crate::errors::ApiError;

/// The accepted keys, stored as SHA-256 digests so every comparison takes the
/// same time whatever the key's length.
#[derive(Clone)]
pub struct ApiKeys {
    digests: Vec<[u8; 32]>,
}

impl std::fmt::Debug for ApiKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ApiKeys({} keys)", self.digests.len())
    }
}

impl ApiKeys {
    /// Builds the key set; with no non-empty key it holds only the demo key.
    pub fn new(keys: &[String]) -> Self {
        let mut keys: Vec<&str> = keys
            .iter()
            .map(|key| key.trim())
            .filter(|key| !key.is_empty())
            .collect();
        if keys.is_empty() {
            log::warn!(
                "BATCH_API_KEYS is unset, so the public demo key is accepted; set your own keys \
                 before exposing this server"
            );
            keys.push(DEMO_API_KEY);
        }
        Self {
            digests: keys.iter().map(|key| digest(key)).collect(),
        }
    }

    /// Whether `candidate` is one of the keys, in time independent of which
    /// key matches or how much of it does.
    pub fn accepts(&self, candidate: &str) -> bool {
        let candidate = digest(candidate);
        self.digests
            .iter()
            .fold(subtle::Choice::from(0), |found, key| {
                found | key.ct_eq(&candidate)
            })
            .into()
    }
}

fn digest(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// A short, stable name of an API key for the audit log: the first 16 hex
/// digits of its SHA-256. It identifies the key without revealing it.
#[derive(Debug, Clone)]
pub struct KeyFingerprint(pub String);

/// Reads the key from `x-api-key`, or else from `Authorization: Bearer`.
fn presented_key(request: &ServiceRequest) -> Option<&str> {
    let headers = request.headers();
    if let Some(value) = headers.get("x-api-key") {
        return value.to_str().ok();
    }
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Middleware that answers 401 unless the request carries an accepted key.
pub async fn require_api_key(
    request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let accepted = match (
        request.app_data::<web::Data<ApiKeys>>(),
        presented_key(&request),
    ) {
        (Some(keys), Some(key)) if keys.accepts(key) => Some(hex::encode(&digest(key)[..8])),
        _ => None,
    };
    match accepted {
        Some(fingerprint) => {
            request.extensions_mut().insert(KeyFingerprint(fingerprint));
            next.call(request)
                .await
                .map(ServiceResponse::map_into_left_body)
        }
        None => {
            let response = ApiError::Unauthorized.error_response();
            Ok(request.into_response(response).map_into_right_body())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_only_configured_keys() {
        let keys = ApiKeys::new(&["alpha".to_owned(), " beta ".to_owned()]);
        assert!(keys.accepts("alpha"));
        assert!(keys.accepts("beta"));
        assert!(!keys.accepts("gamma"));
        assert!(!keys.accepts(""));
        assert!(!keys.accepts(DEMO_API_KEY));
    }

    #[test]
    fn demo_key_works_without_configured_keys() {
        let keys = ApiKeys::new(&[" ".to_owned()]);
        assert!(keys.accepts(DEMO_API_KEY));
    }
}
