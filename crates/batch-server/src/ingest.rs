//! Validation of incoming items, shared by the upsert route and the import
//! command.

use std::collections::HashSet;

use batch_types::FieldError;
use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::db::items::NewItemRow;

/// Longest `externalId`, in characters.
pub const MAX_EXTERNAL_ID_CHARS: usize = 256;
/// Longest `content`, in characters; short texts are the service's input,
/// and this keeps one request's memory bounded.
pub const MAX_CONTENT_CHARS: usize = 20_000;

/// The fields an item may carry.
const ITEM_FIELDS: &[&str] = &["externalId", "content", "username", "listId", "publishedAt"];

/// Validates one item; `at` names it in errors (`items[3]`, `line 12`).
pub fn parse_item(value: &Value, at: &str, errors: &mut Vec<FieldError>) -> Option<NewItemRow> {
    let Some(object) = value.as_object() else {
        errors.push(FieldError::new(at, "each item must be a JSON object"));
        return None;
    };
    let before = errors.len();
    for key in object.keys() {
        if !ITEM_FIELDS.contains(&key.as_str()) {
            errors.push(FieldError::new(
                format!("{at}.{key}"),
                format!(
                    "unknown field {key:?}; an item has {}",
                    ITEM_FIELDS.join(", ")
                ),
            ));
        }
    }
    let external_id = match object.get("externalId") {
        Some(Value::String(id))
            if !id.trim().is_empty() && id.chars().count() <= MAX_EXTERNAL_ID_CHARS =>
        {
            Some(id.clone())
        }
        Some(Value::String(_)) => {
            errors.push(FieldError::new(
                format!("{at}.externalId"),
                format!("externalId must be 1 to {MAX_EXTERNAL_ID_CHARS} characters and not blank"),
            ));
            None
        }
        Some(_) => {
            errors.push(FieldError::new(
                format!("{at}.externalId"),
                "externalId must be a string",
            ));
            None
        }
        None => {
            errors.push(FieldError::new(
                format!("{at}.externalId"),
                "externalId is missing",
            ));
            None
        }
    };
    let content = match object.get("content") {
        Some(Value::String(text)) if text.chars().count() <= MAX_CONTENT_CHARS => {
            Some(text.clone())
        }
        Some(Value::String(_)) => {
            errors.push(FieldError::new(
                format!("{at}.content"),
                format!("content is longer than {MAX_CONTENT_CHARS} characters"),
            ));
            None
        }
        Some(_) => {
            errors.push(FieldError::new(
                format!("{at}.content"),
                "content must be a string",
            ));
            None
        }
        None => {
            errors.push(FieldError::new(
                format!("{at}.content"),
                "content is missing",
            ));
            None
        }
    };
    let username = optional_text(object.get("username"), &format!("{at}.username"), errors);
    let list_id = optional_text(object.get("listId"), &format!("{at}.listId"), errors);
    let published_at = match object.get("publishedAt") {
        None | Some(Value::Null) => None,
        Some(Value::String(text)) => match DateTime::parse_from_rfc3339(text) {
            Ok(at) => Some(at.with_timezone(&Utc)),
            Err(error) => {
                errors.push(FieldError::new(
                    format!("{at}.publishedAt"),
                    format!("{text:?} is not an RFC 3339 time ({error}); write it like 2024-01-31T08:00:00Z"),
                ));
                None
            }
        },
        Some(_) => {
            errors.push(FieldError::new(
                format!("{at}.publishedAt"),
                "publishedAt must be an RFC 3339 string",
            ));
            None
        }
    };
    for (field, value) in [
        ("externalId", &external_id),
        ("content", &content),
        ("username", &username),
        ("listId", &list_id),
    ] {
        if value.as_deref().is_some_and(|text| text.contains('\0')) {
            errors.push(FieldError::new(
                format!("{at}.{field}"),
                format!("{field} contains a NUL character, which text cannot store; remove it"),
            ));
        }
    }
    if errors.len() > before {
        return None;
    }
    Some(NewItemRow {
        external_id: external_id?,
        content: content?,
        username,
        list_id,
        published_at,
    })
}

fn optional_text(
    value: Option<&Value>,
    field: &str,
    errors: &mut Vec<FieldError>,
) -> Option<String> {
    match value {
        None | Some(Value::Null) => None,
        Some(Value::String(text)) => Some(text.clone()),
        Some(_) => {
            errors.push(FieldError::new(field, "must be a string or null"));
            None
        }
    }
}

/// Validates a whole request: every item valid and each `externalId` once.
pub fn parse_items(values: &[Value]) -> Result<Vec<NewItemRow>, Vec<FieldError>> {
    let mut errors = Vec::new();
    let mut rows = Vec::with_capacity(values.len());
    let mut seen = HashSet::with_capacity(values.len());
    for (index, value) in values.iter().enumerate() {
        let at = format!("items[{index}]");
        if let Some(row) = parse_item(value, &at, &mut errors) {
            if !seen.insert(row.external_id.clone()) {
                errors.push(FieldError::new(
                    format!("{at}.externalId"),
                    format!(
                        "externalId {:?} appears twice in this request; send each item once",
                        row.external_id
                    ),
                ));
            }
            rows.push(row);
        }
    }
    if errors.is_empty() {
        Ok(rows)
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn valid_items_parse() {
        let rows = parse_items(&[
            json!({"externalId": "a", "content": "hi", "publishedAt": "2024-01-01T00:00:00Z"}),
        ])
        .expect("the item is valid");
        assert_eq!(rows.len(), 1);
        assert!(rows[0].published_at.is_some());
    }

    #[test]
    fn errors_name_index_and_field() {
        let errors = parse_items(&[
            json!({"externalId": "a", "content": "ok"}),
            json!({"content": 5, "publishedAt": "yesterday"}),
        ])
        .expect_err("the second item is invalid");
        let fields: Vec<&str> = errors.iter().map(|error| error.field.as_str()).collect();
        assert!(fields.contains(&"items[1].externalId"), "{fields:?}");
        assert!(fields.contains(&"items[1].content"), "{fields:?}");
        assert!(fields.contains(&"items[1].publishedAt"), "{fields:?}");
    }

    #[test]
    fn duplicate_external_ids_are_rejected() {
        let errors = parse_items(&[
            json!({"externalId": "a", "content": "x"}),
            json!({"externalId": "a", "content": "y"}),
        ])
        .expect_err("duplicates are invalid");
        assert_eq!(errors[0].field, "items[1].externalId");
    }
}
