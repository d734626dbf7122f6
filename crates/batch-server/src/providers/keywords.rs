//! Keyword extraction for the local analyzer.
//!
//! Chinese runs are segmented by jieba and scored by its TF-IDF extractor,
//! which uses jieba's IDF table. Other text is split into words on letters
//! and digits, so that accented Latin words stay whole. Those words have no
//! IDF table, so each gets jieba's median IDF, which puts both scores on the
//! same scale: term frequency times IDF over the terms of that language.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::LazyLock;

use jieba_rs::{Jieba, KeywordExtract, KeywordExtractConfig, TfIdf};

/// The segmenter, loaded once per process because building its dictionary
/// and the IDF table took about 150 ms in a release build on a 2-core machine.
static JIEBA: LazyLock<Jieba> = LazyLock::new(Jieba::new);

static TF_IDF: LazyLock<TfIdf> = LazyLock::new(|| {
    let config = KeywordExtractConfig::builder()
        .set_stop_words(
            STOP_WORDS
                .iter()
                .map(|word| (*word).to_owned())
                .collect::<BTreeSet<_>>(),
        )
        .min_keyword_length(2)
        .use_hmm(true)
        .build();
    let mut tf_idf = TfIdf::default();
    *tf_idf.config_mut() = config;
    tf_idf
});

/// The IDF that jieba gives a word missing from its table, read by scoring
/// a text of one such word, whose TF is 1.
static MEDIAN_IDF: LazyLock<f64> = LazyLock::new(|| {
    TF_IDF
        .extract_keywords(&JIEBA, "qzxv", 1, Vec::new())
        .first()
        .map_or(1.0, |keyword| keyword.weight)
});

/// NLTK's English and Chinese stop words, plus social-media noise.
static STOP_WORDS: LazyLock<HashSet<&'static str>> = LazyLock::new(|| {
    let english = stop_words::get("en").iter();
    let chinese = stop_words::get("zh").iter();
    english
        .chain(chinese)
        .copied()
        .chain(EXTRA_STOP_WORDS.iter().copied())
        .collect()
});

/// Words NLTK's lists lack that carry nothing in posts: retweet markers,
/// HTML entity leftovers, contraction stems and Weibo boilerplate.
const EXTRA_STOP_WORDS: &[&str] = &[
    "rt",
    "via",
    "amp",
    "http",
    "https",
    "www",
    "also",
    "would",
    "could",
    "get",
    "got",
    "let",
    "us",
    "im",
    "ive",
    "dont",
    "cant",
    "wont",
    "thats",
    "youre",
    "转发",
    "转发微博",
    "回复",
    "微博",
    "图片",
    "视频",
    "链接",
    "网页链接",
];

/// Part-of-speech tags of Chinese words worth keeping: nouns, verbs,
/// adjectives, idioms, abbreviations and words jieba did not know (`x`).
const CHINESE_TAGS: &[&str] = &[
    "n", "nr", "nrfg", "nrt", "ns", "nt", "nz", "ng", "nw", "v", "vn", "vd", "vi", "vg", "a", "an",
    "i", "l", "j",
];

/// How many Chinese candidates to score before merging with the other words.
const CHINESE_CANDIDATES: usize = 40;

/// The score factor of a Chinese word missing from jieba's dictionary.
const GUESSED_WORD_FACTOR: f64 = 0.5;

/// The maximum keyword length, in characters. Longer tokens are hashes or junk.
const MAX_WORD_CHARS: usize = 40;

/// One candidate keyword with its score and where it first occurs.
struct Candidate {
    word: String,
    score: f64,
    position: usize,
}

/// Extracts up to [`super::parse::MAX_LIST_LEN`] keywords from text already stripped of URLs and @mentions.
///
/// Ties in score go to the word that occurs first.
pub(super) fn extract(text: &str) -> Vec<String> {
    let lowered = text.to_lowercase();
    let mut candidates = chinese_candidates(&lowered);
    candidates.extend(word_candidates(&lowered));
    candidates.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then_with(|| a.position.cmp(&b.position))
    });
    let words = candidates
        .into_iter()
        .map(|candidate| candidate.word)
        .collect();
    super::parse::normalize_list(words)
}

/// Makes sure the dictionary and IDF table are loaded.
pub(super) fn warm_up() {
    LazyLock::force(&MEDIAN_IDF);
}

fn chinese_candidates(text: &str) -> Vec<Candidate> {
    let han_text = han_runs(text).join("\n");
    if han_text.is_empty() {
        return Vec::new();
    }
    let allowed = CHINESE_TAGS.iter().map(|tag| (*tag).to_owned()).collect();
    TF_IDF
        .extract_keywords(&JIEBA, &han_text, CHINESE_CANDIDATES, allowed)
        .into_iter()
        .filter(|keyword| keyword.keyword.chars().any(char::is_alphabetic))
        .map(|keyword| Candidate {
            position: text.find(&keyword.keyword).unwrap_or(usize::MAX),
            score: keyword.weight * dictionary_factor(&keyword.keyword),
            word: keyword.keyword,
        })
        .collect()
}

/// Halves the score of words that jieba's HMM guessed rather than found in
/// its dictionary. Such words get the high median IDF, and in classical or
/// unusual text many are fragments ("花溅" from "感时花溅泪"), so without
/// this they outrank real words.
fn dictionary_factor(word: &str) -> f64 {
    if JIEBA.has_word(word) {
        1.0
    } else {
        GUESSED_WORD_FACTOR
    }
}

fn word_candidates(text: &str) -> Vec<Candidate> {
    let mut counts: HashMap<String, (usize, usize)> = HashMap::new();
    let mut total = 0usize;
    for (position, word) in latin_words(text) {
        total += 1;
        counts.entry(word).or_insert((0, position)).0 += 1;
    }
    let median_idf = *MEDIAN_IDF;
    counts
        .into_iter()
        .map(|(word, (count, position))| Candidate {
            word,
            // Counts are tiny, so the conversion to f64 is exact.
            score: count as f64 * median_idf / total as f64,
            position,
        })
        .collect()
}

/// Returns the maximal runs of Han characters.
fn han_runs(text: &str) -> Vec<&str> {
    text.split(|c: char| !is_han(c))
        .filter(|run| !run.is_empty())
        .collect()
}

/// Splits the non-Han parts of lowercased text into keyword-worthy words
/// with their byte positions. Apostrophes and hyphens inside a word are kept
/// long enough to match contractions such as "don't" in the stop list.
fn latin_words(text: &str) -> Vec<(usize, String)> {
    let is_word_char =
        |c: char| (c.is_alphanumeric() && !is_han(c)) || matches!(c, '\'' | '’' | '-');
    let mut words = Vec::new();
    let mut start = None;
    for (index, c) in text.char_indices().chain([(text.len(), ' ')]) {
        match (is_word_char(c), start) {
            (true, None) => start = Some(index),
            (false, Some(begin)) => {
                if let Some(word) = clean_word(&text[begin..index]) {
                    words.push((begin, word));
                }
                start = None;
            }
            _ => {}
        }
    }
    words
}

/// Normalises one token, or returns `None` for stop words and non-words.
fn clean_word(token: &str) -> Option<String> {
    let token = token.replace('’', "'");
    let token = token.trim_matches(|c| c == '\'' || c == '-');
    if STOP_WORDS.contains(token) {
        return None;
    }
    // "trump's" → "trump", "couldn't" → "couldn", which the stop list has.
    let stem = token.split('\'').next().unwrap_or(token);
    let char_count = stem.chars().count();
    let keep = !STOP_WORDS.contains(stem)
        && (2..=MAX_WORD_CHARS).contains(&char_count)
        && stem.chars().any(char::is_alphabetic)
        && !is_ordinal(stem);
    keep.then(|| stem.to_owned())
}

/// Returns whether a token is a number with an ordinal suffix, such as "6th".
fn is_ordinal(token: &str) -> bool {
    let digits = token.trim_end_matches(char::is_alphabetic);
    let suffix = &token[digits.len()..];
    !digits.is_empty()
        && digits.chars().all(|c| c.is_ascii_digit())
        && matches!(suffix, "st" | "nd" | "rd" | "th")
}

/// Returns whether a character is a Han ideograph (the CJK blocks jieba segments).
pub(super) fn is_han(c: char) -> bool {
    matches!(c,
        '\u{3400}'..='\u{4DBF}'
        | '\u{4E00}'..='\u{9FFF}'
        | '\u{F900}'..='\u{FAFF}'
        | '\u{20000}'..='\u{2EBEF}')
}

#[cfg(test)]
mod tests {
    use super::super::parse::MAX_LIST_LEN;
    use super::*;

    #[test]
    fn chinese_sentence_segments_into_words() {
        let keywords = extract("今天天气很好，我们一起去公园散步吧。");
        assert!(keywords.iter().any(|k| k == "公园"), "{keywords:?}");
        assert!(keywords.iter().any(|k| k == "散步"), "{keywords:?}");
        assert!(
            keywords.iter().all(|k| k.chars().count() >= 2),
            "{keywords:?}"
        );
        assert!(
            keywords.iter().all(|k| k.chars().count() <= 4),
            "{keywords:?}"
        );
    }

    #[test]
    fn chinese_stop_words_are_dropped() {
        let keywords = extract("今天天气很好，我们一起去公园散步吧。");
        assert!(!keywords.iter().any(|k| k == "我们"), "{keywords:?}");
        assert!(!keywords.iter().any(|k| k == "一起"), "{keywords:?}");
    }

    #[test]
    fn english_stop_words_are_dropped() {
        let keywords = extract("The committee is meeting with the mayor about the new stadium");
        for stop_word in ["the", "is", "with", "about"] {
            assert!(
                !keywords.iter().any(|k| k == stop_word),
                "{stop_word} in {keywords:?}"
            );
        }
        assert!(keywords.iter().any(|k| k == "stadium"), "{keywords:?}");
    }

    #[test]
    fn repeated_word_ranks_first() {
        let keywords = extract("Golf is great. I love golf, and golf courses in Scotland.");
        assert_eq!(keywords.first().map(String::as_str), Some("golf"));
    }

    #[test]
    fn contractions_and_possessives_reduce() {
        let keywords = extract("Don't miss Omarosa's show, it's great");
        assert!(keywords.iter().any(|k| k == "omarosa"), "{keywords:?}");
        assert!(
            !keywords.iter().any(|k| k.starts_with("don")),
            "{keywords:?}"
        );
        assert!(!keywords.iter().any(|k| k == "it"), "{keywords:?}");
    }

    #[test]
    fn accented_words_stay_whole() {
        let keywords = extract("Un café crème à Paris");
        assert!(keywords.iter().any(|k| k == "café"), "{keywords:?}");
        assert!(keywords.iter().any(|k| k == "crème"), "{keywords:?}");
    }

    #[test]
    fn numbers_are_not_keywords() {
        let keywords = extract("ranked 6th in 2010 with 100 votes");
        assert_eq!(keywords, vec!["ranked", "votes"]);
    }

    #[test]
    fn mixed_text_keeps_both_languages() {
        let keywords = extract("Debian 是一个庞大而复杂的项目");
        assert!(keywords.iter().any(|k| k == "debian"), "{keywords:?}");
        assert!(keywords.iter().any(|k| k == "项目"), "{keywords:?}");
    }

    #[test]
    fn keywords_are_capped() {
        let text = "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike";
        assert_eq!(extract(text).len(), MAX_LIST_LEN);
    }
}
