//! The instructions and user messages sent to remote models.

use serde_json::json;

use super::ProviderItem;

/// Whether a request carries a whole chunk or one item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    /// Optimized mode: many items, one result each.
    Chunk,
    /// Traditional mode: one item, one result.
    Item,
}

/// The built-in analysis instructions. A custom system prompt replaces them but not the output format.
const ANALYSIS_INSTRUCTIONS: &str = "\
You analyse short social-media texts such as tweets, posts and comments. \
For each text, find:
- keywords: up to 10 of its most telling words or short phrases, in the text's own language, \
without stop words, @mentions or URLs;
- topicTags: its topics, including its hashtags without the '#';
- contentTypes: every kind that applies from link, question, reply, retweet, media, text;
- isValueless: true when the text carries nothing worth keeping, for example when it is empty \
or only links or @mentions;
- summary: one short sentence in the text's language.";

/// The output format; always sent, so that custom instructions still yield parsable output.
///
/// The chunk format wraps the array in an object because OpenAI's JSON mode
/// (`response_format: json_object`) only produces objects.
const CHUNK_FORMAT: &str = "\
The user message is a JSON array of items, each with an \"id\" and a \"text\". \
Reply with JSON only, with no prose and no code fences, in exactly this form: \
{\"results\": [{\"id\": <the item's id>, \"keywords\": [\"...\"], \"topicTags\": [\"...\"], \
\"contentTypes\": [\"...\"], \"isValueless\": false, \"summary\": \"...\"}]} \
with exactly one object per item, each carrying its item's id.";

/// The output format for one item.
const ITEM_FORMAT: &str = "\
The user message is one JSON item with an \"id\" and a \"text\". \
Reply with JSON only, with no prose and no code fences, in exactly this form: \
{\"id\": <the item's id>, \"keywords\": [\"...\"], \"topicTags\": [\"...\"], \
\"contentTypes\": [\"...\"], \"isValueless\": false, \"summary\": \"...\"}";

/// Builds the system prompt: the custom or built-in instructions, then the output format.
pub(super) fn system_prompt(custom: Option<&str>, mode: Mode) -> String {
    let instructions = custom
        .map(str::trim)
        .filter(|text| !text.is_empty())
        .unwrap_or(ANALYSIS_INSTRUCTIONS);
    let format = match mode {
        Mode::Chunk => CHUNK_FORMAT,
        Mode::Item => ITEM_FORMAT,
    };
    format!("{instructions}\n\n{format}")
}

/// Builds the user message of a chunk: a JSON array, so that quotes or
/// newlines in a text cannot blur the boundary between items.
pub(super) fn chunk_user_message(items: &[ProviderItem]) -> String {
    let items: Vec<serde_json::Value> = items.iter().map(item_json).collect();
    serde_json::Value::Array(items).to_string()
}

/// Builds the user message of one item.
pub(super) fn item_user_message(item: &ProviderItem) -> String {
    item_json(item).to_string()
}

fn item_json(item: &ProviderItem) -> serde_json::Value {
    json!({ "id": item.id, "text": item.content })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn custom_prompt_keeps_output_format() {
        let prompt = system_prompt(Some("Focus on sports."), Mode::Chunk);
        assert!(prompt.starts_with("Focus on sports."), "{prompt}");
        assert!(prompt.contains("\"results\""), "{prompt}");
        assert!(!prompt.contains("social-media"), "{prompt}");
    }

    #[test]
    fn blank_custom_prompt_uses_built_in() {
        let prompt = system_prompt(Some("  "), Mode::Item);
        assert!(prompt.starts_with(ANALYSIS_INSTRUCTIONS), "{prompt}");
    }

    #[test]
    fn chunk_message_lists_ids_and_texts() {
        let items = [
            ProviderItem {
                id: 41,
                content: "say \"hi\"\nthen leave".to_owned(),
            },
            ProviderItem {
                id: 42,
                content: "second".to_owned(),
            },
        ];
        let message: serde_json::Value =
            serde_json::from_str(&chunk_user_message(&items)).expect("the message is JSON");
        assert_eq!(message[0]["id"], 41);
        assert_eq!(message[0]["text"], "say \"hi\"\nthen leave");
        assert_eq!(message[1]["id"], 42);
    }
}
