//! The offline analyzer behind the `local` provider: keywords, hashtags,
//! content types and a summary from rules, with no key and no network.
//!
//! The summary is the text's first sentence or first line, without URLs and
//! without the @mentions that open a reply or retweet. It is cut to
//! [`MAX_SUMMARY_CHARS`] characters, and valueless texts get none.

use std::sync::{LazyLock, OnceLock};

use batch_types::Analysis;
use regex::Regex;
use tokio::runtime::RuntimeFlavor;

use super::keywords::{self, is_han};
use super::parse::normalize_list;
use super::retry::truncate_chars;
use super::{ItemOutcome, ProviderItem};

/// The model name reported for local analyses.
pub(super) const MODEL: &str = "local-keywords-v1";

/// The maximum summary length, in characters.
const MAX_SUMMARY_CHARS: usize = 80;

/// Builds a regex from a pattern literal that the tests in this module compile.
fn pattern(source: &str) -> Regex {
    Regex::new(source).expect("the pattern literal is valid")
}

/// URLs with a scheme or `www.`, and Twitter's scheme-less image links.
/// URLs are ASCII here, so a Chinese character right after one ends it.
static URL: LazyLock<Regex> =
    LazyLock::new(|| pattern(r"(?i)\b(?:https?://|www\.)[!-~]+|\bpic\.twitter\.com/[!-~]+"));

/// `@name` not preceded by an ASCII word character, so e-mail addresses do
/// not count; Chinese text may run straight into a mention.
static MENTION: LazyLock<Regex> = LazyLock::new(|| pattern(r"(^|[^A-Za-z0-9_.@])@([\w-]{1,30})"));

/// `#tag` not preceded by an ASCII word character, `&` or `#`, so "C#" and
/// HTML entities do not count.
static HASHTAG: LazyLock<Regex> =
    LazyLock::new(|| pattern(r"(^|[^A-Za-z0-9_&#])#([\p{L}\p{N}_]+)"));

/// Weibo-style `#话题#` topics, which may contain spaces and punctuation.
static PAIRED_HASHTAG: LazyLock<Regex> = LazyLock::new(|| pattern(r"#([^#\n]{1,50}?)#"));

/// Weibo emoticons and media markers such as `[哈哈]` or `[图片]`.
static BRACKET_MARKER: LazyLock<Regex> = LazyLock::new(|| pattern(r"\[[\w]{1,8}\]"));

/// A leading retweet marker: `RT`, or `rt @`.
static RETWEET_PREFIX: LazyLock<Regex> = LazyLock::new(|| pattern(r"^\s*(?:RT\b|(?i:rt)\s*@)"));

/// A manual retweet that quotes its author: `"@name: ...`.
static QUOTED_RETWEET: LazyLock<Regex> = LazyLock::new(|| pattern(r#"^\s*["“]@[\w-]+\s*:"#));

static REPLY_PREFIX: LazyLock<Regex> = LazyLock::new(|| pattern(r"^\s*@[\w-]+"));

/// The opening of a reply or a retweet: `RT`, then @mentions, each
/// optionally quoted or followed by a colon. Summaries start after it.
static LEADING_MENTIONS: LazyLock<Regex> =
    LazyLock::new(|| pattern(r#"^\s*(?:RT\b\s*:?\s*)?(?:["“]?@[\w-]+\s*:?\s*)+"#));

/// Set once jieba's dictionary and IDF table are loaded.
static LOADED: OnceLock<()> = OnceLock::new();

/// Analyses every item; the local analyzer does not fail.
pub(super) fn analyze_items(items: &[ProviderItem]) -> Vec<(i64, ItemOutcome)> {
    ensure_loaded();
    items
        .iter()
        .map(|item| (item.id, ItemOutcome::Analyzed(analyze(&item.content))))
        .collect()
}

/// Analyses one item.
pub(super) fn analyze_item(item: &ProviderItem) -> ItemOutcome {
    ensure_loaded();
    ItemOutcome::Analyzed(analyze(&item.content))
}

/// Loads jieba's data on first use. The load took about 150 ms in a release
/// build and 700 ms in a debug build on a 2-core machine. So on a
/// multi-threaded runtime it runs under `block_in_place`, which lets the
/// worker's other tasks move to another thread. Analysing one post
/// afterwards took about 0.1 ms in a debug build, so it runs inline.
fn ensure_loaded() {
    if LOADED.get().is_some() {
        return;
    }
    let multi_threaded = tokio::runtime::Handle::try_current()
        .is_ok_and(|handle| handle.runtime_flavor() == RuntimeFlavor::MultiThread);
    if multi_threaded {
        tokio::task::block_in_place(keywords::warm_up);
    } else {
        keywords::warm_up();
    }
    // Another thread may have set it first; either way the data is loaded.
    let _ = LOADED.set(());
}

/// Analyses one text.
pub(super) fn analyze(text: &str) -> Analysis {
    let scan = Scan::new(text);
    let has_words = scan.prose.chars().any(char::is_alphabetic);
    Analysis {
        keywords: if has_words {
            keywords::extract(&scan.prose)
        } else {
            Vec::new()
        },
        topic_tags: scan.hashtags.clone(),
        content_types: content_types(text, &scan, has_words),
        is_valueless: !has_words,
        summary: if has_words {
            summary(&scan.summary_source)
        } else {
            None
        },
    }
}

/// The parts of a text that the rules look at.
struct Scan<'a> {
    urls: Vec<&'a str>,
    hashtags: Vec<String>,
    /// The text without URLs, @mentions, retweet markers, bracket markers
    /// and `#` signs, with spaces collapsed and empty lines dropped.
    prose: String,
    /// The text without URLs, bracket markers and the mentions that open a
    /// reply or retweet; mentions inside a sentence stay, so it reads whole.
    summary_source: String,
}

impl<'a> Scan<'a> {
    fn new(text: &'a str) -> Self {
        let urls: Vec<&str> = URL.find_iter(text).map(|m| m.as_str()).collect();
        let without_urls = URL.replace_all(text, " ");
        let hashtags = hashtags(&without_urls);
        let without_mentions = MENTION.replace_all(&without_urls, "$1 ");
        let without_marker = RETWEET_PREFIX.replace(&without_mentions, " ");
        let without_brackets = BRACKET_MARKER.replace_all(&without_marker, " ");
        let prose = collapse_spaces(&without_brackets.replace('#', " "));
        let without_opening = LEADING_MENTIONS.replace(&without_urls, "");
        let summary_source = collapse_spaces(&BRACKET_MARKER.replace_all(&without_opening, " "));
        Self {
            urls,
            hashtags,
            prose,
            summary_source,
        }
    }
}

/// Collects `#话题#` topics that contain Chinese, then `#tag`s outside them.
fn hashtags(text: &str) -> Vec<String> {
    let mut tags = Vec::new();
    let mut paired_spans = Vec::new();
    for captures in PAIRED_HASHTAG.captures_iter(text) {
        let (Some(whole), Some(inner)) = (captures.get(0), captures.get(1)) else {
            continue;
        };
        let topic = inner.as_str();
        if topic.chars().any(is_han) && topic.trim() == topic {
            tags.push(topic.to_owned());
            paired_spans.push(whole.range());
        }
    }
    for captures in HASHTAG.captures_iter(text) {
        let Some(tag) = captures.get(2) else {
            continue;
        };
        // The `#` sign, one byte before the tag, may close a `#话题#` topic.
        let sign = tag.start().saturating_sub(1);
        let inside_paired = paired_spans.iter().any(|span| span.contains(&sign));
        if !inside_paired && tag.as_str().chars().any(char::is_alphabetic) {
            tags.push(tag.as_str().to_owned());
        }
    }
    normalize_list(tags)
}

/// Collapses runs of spaces and tabs, trims each line and drops empty lines.
fn collapse_spaces(text: &str) -> String {
    text.lines()
        .map(|line| line.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Lists the content types, most specific first, with `text` last when the text has words.
fn content_types(text: &str, scan: &Scan<'_>, has_words: bool) -> Vec<String> {
    let checks = [
        ("link", !scan.urls.is_empty()),
        ("media", is_media(text, &scan.urls)),
        ("question", has_words && is_question(&scan.prose)),
        ("reply", REPLY_PREFIX.is_match(text)),
        ("retweet", is_retweet(text)),
        ("text", has_words),
    ];
    checks
        .into_iter()
        .filter(|(_, applies)| *applies)
        .map(|(name, _)| name.to_owned())
        .collect()
}

fn is_retweet(text: &str) -> bool {
    RETWEET_PREFIX.is_match(text)
        || QUOTED_RETWEET.is_match(text)
        || text.contains("转发")
        || text.contains("//@")
}

/// Media: image or video links, or Weibo's media markers.
fn is_media(text: &str, urls: &[&str]) -> bool {
    const MARKERS: &[&str] = &["[图片]", "[组图]", "[视频]"];
    MARKERS.iter().any(|marker| text.contains(marker)) || urls.iter().any(|url| is_media_url(url))
}

fn is_media_url(url: &str) -> bool {
    const HOSTS: &[&str] = &[
        "pic.twitter.com",
        "youtube.com",
        "youtu.be",
        "instagram.com",
        "imgur.com",
        "vimeo.com",
        "flickr.com",
        "tiktok.com",
    ];
    const EXTENSIONS: &[&str] = &[
        ".jpg", ".jpeg", ".png", ".gif", ".webp", ".mp4", ".mov", ".webm",
    ];
    let url = url.to_ascii_lowercase();
    let path = url.split(['?', '#']).next().unwrap_or_default();
    let path = path.trim_end_matches(|c: char| ".,;:!)]}'\"".contains(c));
    HOSTS.iter().any(|host| url.contains(host))
        || EXTENSIONS.iter().any(|extension| path.ends_with(extension))
        || url.contains("/photo/")
        || url.contains("/video/")
}

/// English words that open a question when the sentence has no closing `.` or `!`.
const QUESTION_WORDS: &[&str] = &[
    "what", "why", "how", "who", "whom", "whose", "where", "which",
];

/// Auxiliaries that open a question when a subject follows, as in "do you".
const AUXILIARIES: &[&str] = &[
    "do", "does", "did", "is", "are", "was", "were", "can", "could", "should", "would", "will",
    "has", "have",
];
const SUBJECTS: &[&str] = &[
    "you", "i", "we", "they", "he", "she", "it", "this", "that", "anyone", "anybody", "someone",
    "somebody", "there",
];

/// Chinese words that make a sentence a question unless it ends with `！`.
const CHINESE_QUESTION_WORDS: &[&str] = &[
    "为什么",
    "为何",
    "怎么办",
    "怎么样",
    "难道",
    "是不是",
    "有没有",
    "能不能",
    "是否",
];

/// Returns whether the prose has a question mark or a sentence shaped like a question.
fn is_question(prose: &str) -> bool {
    if prose.contains(['?', '？']) {
        return true;
    }
    sentences(prose).any(sentence_is_question)
}

/// Splits text after `.`, `!`, `。`, `！` and newlines, keeping the terminators.
fn sentences(text: &str) -> impl Iterator<Item = &str> {
    text.split_inclusive(['.', '!', '。', '！', '\n'])
        .map(str::trim)
        .filter(|sentence| !sentence.is_empty())
}

fn sentence_is_question(sentence: &str) -> bool {
    let exclaimed = sentence.ends_with(['!', '！']);
    let closed = exclaimed || sentence.ends_with(['.', '。']);
    let body = sentence.trim_end_matches(['.', '!', '。', '！', '…', '~', '～', ' ']);
    if body.ends_with(['吗', '呢']) {
        return true;
    }
    if !exclaimed
        && CHINESE_QUESTION_WORDS
            .iter()
            .any(|word| body.contains(word))
    {
        return true;
    }
    if closed {
        return false;
    }
    let lowered = body.to_lowercase();
    let mut words = lowered.split_whitespace();
    let (Some(first), second) = (words.next(), words.next()) else {
        return false;
    };
    QUESTION_WORDS.contains(&first)
        || (AUXILIARIES.contains(&first) && second.is_some_and(|word| SUBJECTS.contains(&word)))
}

/// Returns the first sentence or line of the prose, cut to [`MAX_SUMMARY_CHARS`].
/// A `.` ends a sentence only before whitespace or the end, so "2.0" and
/// "example.com" do not.
fn summary(prose: &str) -> Option<String> {
    let mut end = prose.len();
    let mut chars = prose.char_indices().peekable();
    while let Some((index, c)) = chars.next() {
        let next_is_space = chars.peek().is_none_or(|(_, next)| next.is_whitespace());
        let ends_sentence = match c {
            '\n' => true,
            '。' | '！' | '？' | '!' | '?' => true,
            '.' => next_is_space,
            _ => false,
        };
        if ends_sentence {
            end = if c == '\n' {
                index
            } else {
                index + c.len_utf8()
            };
            break;
        }
    }
    let sentence = prose[..end].trim();
    (!sentence.is_empty()).then(|| truncate_chars(sentence, MAX_SUMMARY_CHARS))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn has(list: &[String], value: &str) -> bool {
        list.iter().any(|item| item == value)
    }

    #[test]
    fn patterns_compile() {
        for regex in [
            &URL,
            &MENTION,
            &HASHTAG,
            &PAIRED_HASHTAG,
            &BRACKET_MARKER,
            &RETWEET_PREFIX,
            &QUOTED_RETWEET,
            &REPLY_PREFIX,
            &LEADING_MENTIONS,
        ] {
            LazyLock::force(regex);
        }
    }

    const ENGLISH_TWEET: &str = "Trump International Tower in Chicago ranked 6th tallest \
                                 building in the world #architecture #Chicago http://bit.ly/sqvQq";

    #[test]
    fn english_tweet_keywords() {
        let analysis = analyze(ENGLISH_TWEET);
        assert!(has(&analysis.keywords, "tower"), "{:?}", analysis.keywords);
        assert!(
            has(&analysis.keywords, "tallest"),
            "{:?}",
            analysis.keywords
        );
        for noise in ["the", "in", "6th", "http", "bit", "sqvqq"] {
            assert!(
                !has(&analysis.keywords, noise),
                "{noise} in {:?}",
                analysis.keywords
            );
        }
    }

    #[test]
    fn english_tweet_hashtags_become_topics() {
        let analysis = analyze(ENGLISH_TWEET);
        assert_eq!(analysis.topic_tags, vec!["architecture", "Chicago"]);
    }

    #[test]
    fn english_tweet_has_link_type() {
        let analysis = analyze(ENGLISH_TWEET);
        assert_eq!(analysis.content_types, vec!["link", "text"]);
        assert!(!analysis.is_valueless);
    }

    #[test]
    fn mentions_are_not_keywords() {
        let analysis = analyze("Great dinner with @JaredKushner and @IvankaTrump tonight");
        assert!(
            !analysis.keywords.iter().any(|k| k.contains("jared")),
            "{:?}",
            analysis.keywords
        );
        assert!(
            !analysis.keywords.iter().any(|k| k.contains("ivanka")),
            "{:?}",
            analysis.keywords
        );
        assert!(has(&analysis.keywords, "dinner"), "{:?}", analysis.keywords);
    }

    #[test]
    fn chinese_text_is_segmented() {
        let analysis = analyze("今天天气很好，我们一起去公园散步吧。");
        assert!(has(&analysis.keywords, "公园"), "{:?}", analysis.keywords);
        assert!(has(&analysis.keywords, "散步"), "{:?}", analysis.keywords);
        let sentence_chars = "今天天气很好我们一起去公园散步吧".chars().count();
        for keyword in &analysis.keywords {
            let length = keyword.chars().count();
            assert!(length >= 2, "single character {keyword}");
            assert!(length < sentence_chars, "whole sentence {keyword}");
        }
    }

    #[test]
    fn chinese_summary_is_first_sentence() {
        let analysis = analyze("今天天气很好，我们一起去公园散步吧。明天再说。");
        assert_eq!(
            analysis.summary.as_deref(),
            Some("今天天气很好，我们一起去公园散步吧。")
        );
    }

    #[test]
    fn chinese_paired_hashtag_becomes_topic() {
        let analysis = analyze("#北京 冬奥会#开幕了，#体育# 太精彩");
        assert_eq!(analysis.topic_tags, vec!["北京 冬奥会", "体育"]);
    }

    #[test]
    fn link_only_is_valueless() {
        let analysis = analyze("  https://example.com/page?id=1  ");
        assert!(analysis.is_valueless);
        assert!(analysis.keywords.is_empty(), "{:?}", analysis.keywords);
        assert_eq!(analysis.content_types, vec!["link"]);
        assert_eq!(analysis.summary, None);
    }

    #[test]
    fn mention_only_is_valueless() {
        assert!(analyze("@someone @other").is_valueless);
    }

    #[test]
    fn empty_is_valueless() {
        let analysis = analyze(" \n\t ");
        assert!(analysis.is_valueless);
        assert!(
            analysis.content_types.is_empty(),
            "{:?}",
            analysis.content_types
        );
    }

    #[test]
    fn question_mark_is_question() {
        assert!(has(
            &analyze("Is anyone watching the game tonight?").content_types,
            "question"
        ));
        assert!(has(&analyze("你今天去哪里了？").content_types, "question"));
    }

    #[test]
    fn question_words_are_question() {
        assert!(has(
            &analyze("Why would anyone buy that").content_types,
            "question"
        ));
        assert!(has(
            &analyze("do you like the new design").content_types,
            "question"
        ));
        assert!(has(&analyze("你吃饭了吗").content_types, "question"));
        assert!(has(
            &analyze("为什么天空是蓝色的").content_types,
            "question"
        ));
    }

    #[test]
    fn statement_is_not_question() {
        assert!(!has(
            &analyze("What a great day!").content_types,
            "question"
        ));
        assert!(!has(
            &analyze("The tower opens today.").content_types,
            "question"
        ));
        assert!(!has(&analyze("今天天气很好。").content_types, "question"));
    }

    #[test]
    fn retweet_is_detected() {
        assert!(has(
            &analyze("RT @nytimes: Markets rally").content_types,
            "retweet"
        ));
        assert!(has(&analyze("转发微博：好消息").content_types, "retweet"));
        assert!(has(
            &analyze("“@fan: You are great!” Thanks").content_types,
            "retweet"
        ));
        assert!(!has(&analyze("Art is long").content_types, "retweet"));
    }

    #[test]
    fn retweet_marker_is_not_keyword() {
        let analysis = analyze("RT @nytimes: Markets rally");
        assert!(!has(&analysis.keywords, "rt"), "{:?}", analysis.keywords);
        assert!(
            !has(&analysis.keywords, "nytimes"),
            "{:?}",
            analysis.keywords
        );
    }

    #[test]
    fn reply_is_detected() {
        assert!(has(
            &analyze("@bob thanks for the tip").content_types,
            "reply"
        ));
        assert!(!has(
            &analyze("Thanks @bob for the tip").content_types,
            "reply"
        ));
    }

    #[test]
    fn email_is_not_mention() {
        let analysis = analyze("Write to press@example.org");
        assert!(!has(&analysis.content_types, "reply"));
        assert!(!analysis.is_valueless);
    }

    #[test]
    fn media_is_detected() {
        assert!(has(
            &analyze("Look pic.twitter.com/abc123").content_types,
            "media"
        ));
        assert!(has(
            &analyze("photo https://example.com/a.JPG").content_types,
            "media"
        ));
        assert!(has(&analyze("好看[图片]").content_types, "media"));
        assert!(!has(
            &analyze("read https://example.com/a.html").content_types,
            "media"
        ));
    }

    #[test]
    fn csharp_is_not_hashtag() {
        assert!(analyze("I write C# daily").topic_tags.is_empty());
    }

    #[test]
    fn summary_cuts_first_sentence() {
        let analysis = analyze("Version 2.0 is out. Download it now!");
        assert_eq!(analysis.summary.as_deref(), Some("Version 2.0 is out."));
    }

    #[test]
    fn summary_skips_opening_mentions() {
        let analysis = analyze("“@fan: You are great!” Thanks");
        assert_eq!(analysis.summary.as_deref(), Some("You are great!"));
        let analysis = analyze("@alice @bob  Sounds interesting. More later");
        assert_eq!(analysis.summary.as_deref(), Some("Sounds interesting."));
    }

    #[test]
    fn summary_keeps_inline_mentions() {
        let analysis = analyze("Thanks @bob for the tip.");
        assert_eq!(
            analysis.summary.as_deref(),
            Some("Thanks @bob for the tip.")
        );
    }

    #[test]
    fn summary_is_truncated() {
        let long = "word ".repeat(40);
        let summary = analyze(&long).summary.unwrap_or_default();
        assert_eq!(summary.chars().count(), MAX_SUMMARY_CHARS + 1);
        assert!(summary.ends_with('…'), "{summary}");
    }
}
