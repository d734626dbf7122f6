//! The language of messages: Chinese by default, English on request.
//!
//! A middleware reads `Accept-Language` once per request and runs the rest of
//! the request inside a task-local scope, so handlers and error responses pick
//! the language with [`pick`] without passing it around.

use actix_web::HttpMessage;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;

/// A language messages are written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    /// Chinese, the wording of the clear API contract.
    #[default]
    Zh,
    /// English.
    En,
}

impl Lang {
    /// Parses a configured locale (`zh` or `en`).
    pub fn from_locale(locale: &str) -> Self {
        if locale.eq_ignore_ascii_case("en") {
            Self::En
        } else {
            Self::Zh
        }
    }

    /// Picks the first of `zh` and `en` that the `Accept-Language` value
    /// names, in order of appearance; other languages are skipped.
    pub fn from_accept_language(header: &str) -> Option<Self> {
        header.split(',').find_map(|part| {
            let tag = part
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            if tag.starts_with("en") {
                Some(Self::En)
            } else if tag.starts_with("zh") {
                Some(Self::Zh)
            } else {
                None
            }
        })
    }
}

tokio::task_local! {
    static CURRENT: Lang;
}

/// The language of the request being served; Chinese outside a request.
pub fn current() -> Lang {
    CURRENT.try_with(|lang| *lang).unwrap_or_default()
}

/// Returns `zh` or `en` in the language of the current request.
pub fn pick(zh: impl Into<String>, en: impl Into<String>) -> String {
    match current() {
        Lang::Zh => zh.into(),
        Lang::En => en.into(),
    }
}

/// The configured default language, stored as app data.
#[derive(Debug, Clone, Copy)]
pub struct DefaultLang(pub Lang);

/// Middleware that sets the language for the rest of the request.
pub async fn scope_language(
    request: ServiceRequest,
    next: Next<impl actix_web::body::MessageBody + 'static>,
) -> Result<ServiceResponse<impl actix_web::body::MessageBody>, actix_web::Error> {
    let default = request
        .app_data::<actix_web::web::Data<DefaultLang>>()
        .map(|lang| lang.0)
        .unwrap_or_default();
    let lang = request
        .headers()
        .get(actix_web::http::header::ACCEPT_LANGUAGE)
        .and_then(|value| value.to_str().ok())
        .and_then(Lang::from_accept_language)
        .unwrap_or(default);
    request.extensions_mut().insert(lang);
    CURRENT.scope(lang, next.call(request)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_language_prefers_first_known_tag() {
        assert_eq!(Lang::from_accept_language("en-US,en;q=0.9"), Some(Lang::En));
        assert_eq!(
            Lang::from_accept_language("fr, zh-CN;q=0.8, en;q=0.5"),
            Some(Lang::Zh)
        );
        assert_eq!(Lang::from_accept_language("fr"), None);
    }
}
