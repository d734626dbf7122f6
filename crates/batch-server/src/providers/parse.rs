//! Parsing model output into per-item outcomes.
//!
//! Models wrap JSON in code fences or prose, rename keys, quote ids and skip
//! items. So the parser looks for the first JSON object or array in the
//! output and finds the list of result objects in it. It reads each field
//! under its camelCase or snake_case name. An item with no result fails, so
//! it never turns into an empty success.

use std::collections::HashMap;

use batch_types::Analysis;
use serde_json::{Map, Value};

use super::ItemOutcome;
use super::retry::truncate_chars;

/// The reason for every item when the output contains no JSON.
pub(super) const NOT_JSON: &str = "the model output is not valid JSON";

/// The reason for an item that the output has no result for.
pub(super) const NO_RESULT: &str = "the model returned no result for this item";

/// The reason for an item whose result has an `error` field.
pub(super) const MODEL_ERROR: &str =
    "the model reported an error for this item instead of an analysis";

/// The reason for an item whose result has none of the analysis fields.
pub(super) const EMPTY_RESULT: &str = "the model's result for this item has no analysis fields";

/// The maximum number of keywords, topic tags and content types kept for one item.
pub(super) const MAX_LIST_LEN: usize = 10;

/// The maximum summary length kept, in characters.
const MAX_SUMMARY_CHARS: usize = 300;

/// The maximum number of `{` or `[` positions tried as the start of the JSON.
const MAX_JSON_STARTS: usize = 64;

/// The maximum depth of single-field wrapper objects such as `{"result": {...}}` that are unwrapped.
const MAX_WRAPPER_DEPTH: usize = 3;

/// Keys under which a result's fields may appear, camelCase first.
const ID_KEYS: &[&str] = &["id", "itemId", "item_id"];
const KEYWORD_KEYS: &[&str] = &["keywords", "key_words", "keyWords"];
const TOPIC_KEYS: &[&str] = &["topicTags", "topic_tags", "topics", "tags", "hashtags"];
const TYPE_KEYS: &[&str] = &[
    "contentTypes",
    "content_types",
    "contentType",
    "content_type",
    "types",
];
const VALUELESS_KEYS: &[&str] = &["isValueless", "is_valueless", "valueless"];
const SUMMARY_KEYS: &[&str] = &["summary"];

/// Parses the output of one request into one outcome per id, in the order of `ids`.
///
/// Entries with unknown ids are ignored, the first entry wins for a repeated
/// id, and when exactly one item was sent a single entry without an id is
/// taken as its result.
pub(super) fn parse_outcomes(output: &str, ids: &[i64]) -> Vec<(i64, ItemOutcome)> {
    let Some(value) = find_json(output) else {
        return fail_all(ids, NOT_JSON);
    };
    let entries = result_objects(value, 0);
    let mut by_id: HashMap<i64, ItemOutcome> = HashMap::new();
    let mut without_id = Vec::new();
    for entry in &entries {
        match entry_id(entry) {
            Some(id) => {
                by_id.entry(id).or_insert_with(|| outcome_of(entry));
            }
            None => without_id.push(entry),
        }
    }
    if let ([id], [entry]) = (ids, without_id.as_slice()) {
        by_id.entry(*id).or_insert_with(|| outcome_of(entry));
    }
    ids.iter()
        .map(|id| {
            let outcome = by_id
                .remove(id)
                .unwrap_or_else(|| ItemOutcome::Failed(NO_RESULT.to_owned()));
            (*id, outcome)
        })
        .collect()
}

/// Reads one result entry. An entry that reports an error, or carries only
/// an id, is a failure: an empty analysis must never replace a stored one.
fn outcome_of(entry: &Map<String, Value>) -> ItemOutcome {
    if entry.get("error").is_some_and(|error| !error.is_null()) {
        return ItemOutcome::Failed(MODEL_ERROR.to_owned());
    }
    let has_analysis = [
        KEYWORD_KEYS,
        TOPIC_KEYS,
        TYPE_KEYS,
        VALUELESS_KEYS,
        SUMMARY_KEYS,
    ]
    .iter()
    .any(|keys| keys.iter().any(|key| entry.contains_key(*key)));
    if !has_analysis {
        return ItemOutcome::Failed(EMPTY_RESULT.to_owned());
    }
    ItemOutcome::Analyzed(read_analysis(entry))
}

/// Parses the output of a one-item request.
pub(super) fn parse_outcome(output: &str, id: i64) -> ItemOutcome {
    match parse_outcomes(output, &[id]).pop() {
        Some((_, outcome)) => outcome,
        None => ItemOutcome::Failed(NO_RESULT.to_owned()),
    }
}

fn fail_all(ids: &[i64], reason: &str) -> Vec<(i64, ItemOutcome)> {
    ids.iter()
        .map(|id| (*id, ItemOutcome::Failed(reason.to_owned())))
        .collect()
}

/// Finds the JSON value in the output: the content of a code fence if there
/// is one, else the whole text, else the first object or array that parses
/// at a `{` or `[`, ignoring any text after it.
fn find_json(output: &str) -> Option<Value> {
    if let Some(fenced) = fenced_block(output)
        && let Some(value) = first_json_value(fenced)
    {
        return Some(value);
    }
    first_json_value(output)
}

fn first_json_value(text: &str) -> Option<Value> {
    if let Ok(value) = serde_json::from_str::<Value>(text.trim())
        && is_structured(&value)
    {
        return Some(value);
    }
    text.char_indices()
        .filter(|(_, c)| matches!(c, '{' | '['))
        .take(MAX_JSON_STARTS)
        .find_map(|(start, _)| {
            let mut values =
                serde_json::Deserializer::from_str(&text[start..]).into_iter::<Value>();
            values.next()?.ok().filter(is_structured)
        })
}

/// Returns whether a value can contain results: an object, or an array of objects only,
/// so that prose such as "see [1]" is not taken for the output.
fn is_structured(value: &Value) -> bool {
    match value {
        Value::Object(_) => true,
        Value::Array(items) => items.iter().all(Value::is_object),
        _ => false,
    }
}

/// Returns the text between the first ```` ``` ```` line (with or without a
/// language tag) and the next ```` ``` ````, or to the end if it is not closed.
fn fenced_block(output: &str) -> Option<&str> {
    let start = output.find("```")?;
    let after_fence = &output[start + 3..];
    let body_start = after_fence
        .find('\n')
        .map_or(after_fence.len(), |newline| newline + 1);
    let body = &after_fence[body_start..];
    Some(body.find("```").map_or(body, |end| &body[..end]))
}

/// Collects the result objects in a parsed value: the elements of an array, an
/// object that is itself a result, the first array of objects among an
/// object's fields (`{"results": [...]}`), or objects keyed by item id.
fn result_objects(value: Value, depth: usize) -> Vec<Map<String, Value>> {
    let object = match value {
        Value::Array(items) => return objects_of(items),
        Value::Object(object) => object,
        _ => return Vec::new(),
    };
    if looks_like_result(&object) {
        return vec![object];
    }
    if let Some(items) = object.values().find_map(array_of_objects) {
        return objects_of(items.clone());
    }
    if let Some(entries) = keyed_by_id(&object) {
        return entries;
    }
    match single_object_field(object) {
        Some(inner) if depth < MAX_WRAPPER_DEPTH => result_objects(inner, depth + 1),
        _ => Vec::new(),
    }
}

fn objects_of(items: Vec<Value>) -> Vec<Map<String, Value>> {
    items
        .into_iter()
        .filter_map(|item| match item {
            Value::Object(object) => Some(object),
            _ => None,
        })
        .collect()
}

fn looks_like_result(object: &Map<String, Value>) -> bool {
    [
        ID_KEYS,
        KEYWORD_KEYS,
        TOPIC_KEYS,
        TYPE_KEYS,
        VALUELESS_KEYS,
        SUMMARY_KEYS,
    ]
    .iter()
    .flat_map(|keys| keys.iter())
    .any(|key| object.contains_key(*key))
}

fn array_of_objects(value: &Value) -> Option<&Vec<Value>> {
    let items = value.as_array()?;
    (!items.is_empty() && items.iter().all(Value::is_object)).then_some(items)
}

/// Reads `{"12": {...}, "13": {...}}`, adding each key as the entry's id.
fn keyed_by_id(object: &Map<String, Value>) -> Option<Vec<Map<String, Value>>> {
    if object.is_empty() {
        return None;
    }
    object
        .iter()
        .map(|(key, value)| {
            let id = key.trim().parse::<i64>().ok()?;
            let mut entry = value.as_object()?.clone();
            entry.entry("id").or_insert(Value::from(id));
            Some(entry)
        })
        .collect()
}

fn single_object_field(object: Map<String, Value>) -> Option<Value> {
    if object.len() != 1 {
        return None;
    }
    object
        .into_iter()
        .next()
        .map(|(_, value)| value)
        .filter(Value::is_object)
}

fn field<'a>(entry: &'a Map<String, Value>, keys: &[&str]) -> Option<&'a Value> {
    keys.iter().find_map(|key| entry.get(*key))
}

/// Reads an id given as a number (`7`, `7.0`) or a string (`"7"`).
fn entry_id(entry: &Map<String, Value>) -> Option<i64> {
    match field(entry, ID_KEYS)? {
        Value::Number(number) => number.as_i64().or_else(|| {
            let float = number.as_f64()?;
            // Whole numbers below 2^53 convert exactly.
            let exact = float.fract() == 0.0 && float.abs() < 9.0e15;
            exact.then_some(float as i64)
        }),
        Value::String(text) => text.trim().trim_start_matches('#').parse().ok(),
        _ => None,
    }
}

fn read_analysis(entry: &Map<String, Value>) -> Analysis {
    let topic_tags = string_list(field(entry, TOPIC_KEYS))
        .into_iter()
        .map(|tag| tag.trim().trim_matches('#').to_owned())
        .collect();
    let content_types = string_list(field(entry, TYPE_KEYS))
        .into_iter()
        .map(|kind| kind.trim().to_lowercase())
        .collect();
    Analysis {
        keywords: normalize_list(string_list(field(entry, KEYWORD_KEYS))),
        topic_tags: normalize_list(topic_tags),
        content_types: normalize_list(content_types),
        is_valueless: field(entry, VALUELESS_KEYS).is_some_and(truthy),
        summary: field(entry, SUMMARY_KEYS).and_then(summary_text),
    }
}

/// Reads a list given as an array (non-string scalars are stringified) or as
/// one comma-separated string.
fn string_list(value: Option<&Value>) -> Vec<String> {
    match value {
        Some(Value::Array(items)) => items.iter().filter_map(scalar_text).collect(),
        Some(Value::String(text)) => text.split([',', '，', '、']).map(str::to_owned).collect(),
        _ => Vec::new(),
    }
}

fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        Value::Bool(flag) => Some(flag.to_string()),
        _ => None,
    }
}

fn truthy(value: &Value) -> bool {
    match value {
        Value::Bool(flag) => *flag,
        Value::Number(number) => number.as_f64().is_some_and(|n| n != 0.0),
        Value::String(text) => matches!(text.trim().to_lowercase().as_str(), "true" | "yes" | "1"),
        _ => false,
    }
}

fn summary_text(value: &Value) -> Option<String> {
    let text = value.as_str()?.trim();
    (!text.is_empty()).then(|| truncate_chars(text, MAX_SUMMARY_CHARS))
}

/// Trims each entry, drops empty ones, drops repeats ignoring case (the
/// first spelling wins) and keeps at most [`MAX_LIST_LEN`].
pub(super) fn normalize_list(items: Vec<String>) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    items
        .into_iter()
        .map(|item| item.trim().to_owned())
        .filter(|item| !item.is_empty())
        .filter(|item| seen.insert(item.to_lowercase()))
        .take(MAX_LIST_LEN)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn analyzed(outcome: &ItemOutcome) -> &Analysis {
        match outcome {
            ItemOutcome::Analyzed(analysis) => analysis,
            ItemOutcome::Failed(reason) => panic!("expected an analysis, got failure: {reason}"),
        }
    }

    const TWO_RESULTS: &str = r#"[
        {"id": 1, "keywords": ["rust", "async"], "topicTags": ["programming"],
         "contentTypes": ["text"], "isValueless": false, "summary": "About Rust."},
        {"id": 2, "keywords": [], "topicTags": [], "contentTypes": ["link"],
         "isValueless": true}
    ]"#;

    #[test]
    fn plain_array_parses() {
        let outcomes = parse_outcomes(TWO_RESULTS, &[1, 2]);
        assert_eq!(analyzed(&outcomes[0].1).keywords, vec!["rust", "async"]);
        assert!(analyzed(&outcomes[1].1).is_valueless);
        assert_eq!(
            analyzed(&outcomes[0].1).summary.as_deref(),
            Some("About Rust.")
        );
        assert_eq!(analyzed(&outcomes[1].1).summary, None);
    }

    #[test]
    fn fenced_json_parses() {
        let output = format!("```json\n{TWO_RESULTS}\n```");
        let outcomes = parse_outcomes(&output, &[1, 2]);
        assert_eq!(analyzed(&outcomes[0].1).topic_tags, vec!["programming"]);
        assert_eq!(analyzed(&outcomes[1].1).content_types, vec!["link"]);
    }

    #[test]
    fn prose_around_json_is_ignored() {
        let output =
            format!("Sure! Here are the results [as requested]:\n{TWO_RESULTS}\nHope this helps.");
        let outcomes = parse_outcomes(&output, &[1, 2]);
        assert_eq!(analyzed(&outcomes[0].1).keywords, vec!["rust", "async"]);
        assert!(analyzed(&outcomes[1].1).is_valueless);
    }

    #[test]
    fn wrapped_array_parses() {
        let output = format!(r#"{{"results": {TWO_RESULTS}}}"#);
        let outcomes = parse_outcomes(&output, &[1, 2]);
        assert_eq!(analyzed(&outcomes[0].1).keywords, vec!["rust", "async"]);
        assert!(analyzed(&outcomes[1].1).is_valueless);
    }

    #[test]
    fn object_keyed_by_id_parses() {
        let output = r#"{"5": {"keywords": ["five"]}, "6": {"keywords": ["six"]}}"#;
        let outcomes = parse_outcomes(output, &[6, 5]);
        assert_eq!(analyzed(&outcomes[0].1).keywords, vec!["six"]);
        assert_eq!(analyzed(&outcomes[1].1).keywords, vec!["five"]);
    }

    #[test]
    fn missing_entry_fails_item() {
        let outcomes = parse_outcomes(TWO_RESULTS, &[1, 2, 3]);
        assert_eq!(outcomes[2], (3, ItemOutcome::Failed(NO_RESULT.to_owned())));
        assert!(matches!(outcomes[0].1, ItemOutcome::Analyzed(_)));
    }

    #[test]
    fn outcomes_follow_input_order() {
        let outcomes = parse_outcomes(TWO_RESULTS, &[2, 1]);
        let ids: Vec<i64> = outcomes.iter().map(|(id, _)| *id).collect();
        assert_eq!(ids, vec![2, 1]);
    }

    #[test]
    fn unknown_ids_are_ignored() {
        let output = r#"[{"id": 99, "keywords": ["stray"]}, {"id": 1, "keywords": ["mine"]}]"#;
        let outcomes = parse_outcomes(output, &[1]);
        assert_eq!(outcomes.len(), 1);
        assert_eq!(analyzed(&outcomes[0].1).keywords, vec!["mine"]);
    }

    #[test]
    fn duplicate_ids_keep_first() {
        let output = r#"[{"id": 1, "keywords": ["first"]}, {"id": 1, "keywords": ["second"]}]"#;
        let outcomes = parse_outcomes(output, &[1]);
        assert_eq!(analyzed(&outcomes[0].1).keywords, vec!["first"]);
    }

    #[test]
    fn string_ids_match() {
        let output = r#"[{"id": "1", "keywords": ["one"]}, {"id": " 2 ", "keywords": ["two"]}]"#;
        let outcomes = parse_outcomes(output, &[1, 2]);
        assert_eq!(analyzed(&outcomes[0].1).keywords, vec!["one"]);
        assert_eq!(analyzed(&outcomes[1].1).keywords, vec!["two"]);
    }

    #[test]
    fn float_ids_match() {
        let outcomes = parse_outcomes(r#"[{"id": 3.0, "keywords": ["three"]}]"#, &[3]);
        assert_eq!(analyzed(&outcomes[0].1).keywords, vec!["three"]);
    }

    #[test]
    fn snake_case_keys_parse() {
        let output = r#"[{"id": 1, "keywords": ["k"], "topic_tags": ["t"],
            "content_types": ["question"], "is_valueless": true}]"#;
        let analysis = analyzed(&parse_outcomes(output, &[1])[0].1).clone();
        assert_eq!(analysis.topic_tags, vec!["t"]);
        assert_eq!(analysis.content_types, vec!["question"]);
        assert!(analysis.is_valueless);
    }

    #[test]
    fn missing_fields_default_empty() {
        let analysis =
            analyzed(&parse_outcomes(r#"[{"id": 1, "keywords": ["a"]}]"#, &[1])[0].1).clone();
        let expected = Analysis {
            keywords: vec!["a".to_owned()],
            ..Analysis::default()
        };
        assert_eq!(analysis, expected);
    }

    #[test]
    fn not_json_fails_every_item() {
        let outcomes = parse_outcomes("I cannot analyse these texts.", &[1, 2]);
        let expected = ItemOutcome::Failed(NOT_JSON.to_owned());
        assert_eq!(outcomes, vec![(1, expected.clone()), (2, expected)]);
    }

    #[test]
    fn array_of_numbers_is_not_output() {
        let outcomes = parse_outcomes("see [1, 2]", &[1]);
        assert_eq!(outcomes[0].1, ItemOutcome::Failed(NOT_JSON.to_owned()));
    }

    #[test]
    fn keywords_are_normalized() {
        let output = r##"[{"id": 1, "keywords": [" Rust ", "rust", "", "a", "b", "c", "d",
            "e", "f", "g", "h", "i", "j", "k"], "topicTags": ["#RustLang", "话题#"]}]"##;
        let analysis = analyzed(&parse_outcomes(output, &[1])[0].1).clone();
        assert_eq!(analysis.keywords.first().map(String::as_str), Some("Rust"));
        assert_eq!(analysis.keywords.len(), MAX_LIST_LEN);
        assert_eq!(
            analysis
                .keywords
                .iter()
                .filter(|k| k.eq_ignore_ascii_case("rust"))
                .count(),
            1
        );
        assert_eq!(analysis.topic_tags, vec!["RustLang", "话题"]);
    }

    #[test]
    fn comma_separated_keywords_parse() {
        let analysis =
            analyzed(&parse_outcomes(r#"{"id": 1, "keywords": "天气, 公园，散步"}"#, &[1])[0].1)
                .clone();
        assert_eq!(analysis.keywords, vec!["天气", "公园", "散步"]);
    }

    #[test]
    fn single_object_for_item() {
        let outcome = parse_outcome(r#"{"id": 8, "keywords": ["solo"]}"#, 8);
        assert_eq!(analyzed(&outcome).keywords, vec!["solo"]);
    }

    #[test]
    fn single_object_without_id_for_item() {
        let outcome = parse_outcome(
            r#"{"result": {"keywords": ["solo"], "isValueless": "false"}}"#,
            8,
        );
        assert_eq!(analyzed(&outcome).keywords, vec!["solo"]);
        assert!(!analyzed(&outcome).is_valueless);
    }

    #[test]
    fn one_element_array_for_item() {
        let outcome = parse_outcome(r#"[{"id": "8", "keywords": ["solo"]}]"#, 8);
        assert_eq!(analyzed(&outcome).keywords, vec!["solo"]);
    }

    #[test]
    fn other_id_for_item_fails() {
        let outcome = parse_outcome(r#"{"id": 9, "keywords": ["other"]}"#, 8);
        assert_eq!(outcome, ItemOutcome::Failed(NO_RESULT.to_owned()));
    }

    #[test]
    fn unclosed_fence_parses() {
        let outcome = parse_outcome("```json\n{\"id\": 8, \"keywords\": [\"open\"]}", 8);
        assert_eq!(analyzed(&outcome).keywords, vec!["open"]);
    }

    #[test]
    fn id_only_entry_fails() {
        let outcomes = parse_outcomes(r#"{"results": [{"id": 7}]}"#, &[7]);
        assert_eq!(
            outcomes,
            vec![(7, ItemOutcome::Failed(EMPTY_RESULT.to_owned()))]
        );
    }

    #[test]
    fn error_entry_fails() {
        let outcomes = parse_outcomes(
            r#"{"results": [{"id": 7, "error": "cannot analyse", "keywords": []}]}"#,
            &[7],
        );
        assert_eq!(
            outcomes,
            vec![(7, ItemOutcome::Failed(MODEL_ERROR.to_owned()))]
        );
    }

    #[test]
    fn entry_with_empty_lists_is_an_analysis() {
        let outcomes = parse_outcomes(
            r#"{"results": [{"id": 7, "keywords": [], "isValueless": true}]}"#,
            &[7],
        );
        assert!(
            matches!(outcomes[0].1, ItemOutcome::Analyzed(_)),
            "{outcomes:?}"
        );
    }
}
