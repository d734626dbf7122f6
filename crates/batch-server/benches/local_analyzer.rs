//! Measures the `local` provider's analysis (keywords, hashtags, content
//! types, summary) against splitting the same texts on whitespace, the
//! cheapest pass over every character. No database is used.
//!
//! The items come from the JSONL files listed in `BATCH_BENCH_DATA`
//! (separated by `:`), or from 25,000 generated posts when it is unset.
//!
//! Run with `cargo bench -p batch-server --bench local_analyzer`.

mod common;

use std::hint::black_box;
use std::time::Duration;

use batch_server::providers::{ItemOutcome, Provider, ProviderConfig, ProviderItem, ProviderKind};
use common::{Dataset, load_datasets, median, micros, per_second, ratio, timed};

/// Items per `analyze_chunk` call, the batch size a typical run uses.
const CHUNK: usize = 50;
/// Timed passes over each data set.
const REPEATS: usize = 3;

/// Median times of one data set.
struct Measured {
    name: String,
    items: usize,
    analyzer: Duration,
    split: Duration,
}

fn main() {
    let datasets = load_datasets();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a current-thread runtime starts");
    let provider = Provider::new(
        ProviderConfig::new(ProviderKind::Local, None),
        reqwest::Client::new(),
    )
    .expect("the local provider needs no key");

    // The first call loads jieba's dictionary, so it is timed on its own.
    let warm_up = [ProviderItem {
        id: 0,
        content: "今天天气很好 warm up".to_owned(),
    }];
    let (_, load_time) = timed(|| {
        runtime
            .block_on(provider.analyze_chunk(&warm_up))
            .expect("the local provider does not fail")
    });

    let results: Vec<Measured> = datasets
        .iter()
        .map(|dataset| measure(&runtime, &provider, dataset))
        .collect();

    println!();
    println!(
        "local analyzer (analyze_chunk, {CHUNK} items a call) vs whitespace split, \
         median of {REPEATS} passes"
    );
    println!(
        "first call, with the dictionary load: {:.0} ms",
        micros(load_time) / 1e3
    );
    println!(
        "{:<18} {:>7} {:>16} {:>14} {:>14} {:>16}",
        "data set", "items", "analyzer items/s", "µs per item", "split items/s", "analyzer/split"
    );
    for result in &results {
        println!(
            "{:<18} {:>7} {:>16.0} {:>14.1} {:>14.0} {:>16.0}",
            result.name,
            result.items,
            per_second(result.items, result.analyzer),
            micros(result.analyzer) / result.items as f64,
            per_second(result.items, result.split),
            ratio(result.analyzer, result.split)
        );
    }
    println!();
    for result in &results {
        println!(
            "ratio analyzer/split ({}): {:.0}",
            result.name,
            ratio(result.analyzer, result.split)
        );
    }
}

fn measure(runtime: &tokio::runtime::Runtime, provider: &Provider, dataset: &Dataset) -> Measured {
    let items: Vec<ProviderItem> = dataset
        .rows
        .iter()
        .enumerate()
        .map(|(index, row)| ProviderItem {
            id: index as i64,
            content: row.content.clone(),
        })
        .collect();

    let mut analyzer_samples = Vec::new();
    let mut split_samples = Vec::new();
    for _ in 0..REPEATS {
        let (analyzed, time) = timed(|| {
            let mut analyzed = 0;
            for chunk in items.chunks(CHUNK) {
                let outcomes = runtime
                    .block_on(provider.analyze_chunk(chunk))
                    .expect("the local provider does not fail");
                analyzed += outcomes
                    .iter()
                    .filter(|(_, outcome)| matches!(outcome, ItemOutcome::Analyzed(_)))
                    .count();
                black_box(outcomes);
            }
            analyzed
        });
        assert_eq!(
            analyzed,
            items.len(),
            "the local analyzer analyses every item"
        );
        analyzer_samples.push(time);

        let (words, time) = timed(|| {
            items
                .iter()
                .map(|item| black_box(item.content.as_str()).split_whitespace().count())
                .sum::<usize>()
        });
        black_box(words);
        split_samples.push(time);
    }
    Measured {
        name: dataset.name.clone(),
        items: items.len(),
        analyzer: median(&mut analyzer_samples),
        split: median(&mut split_samples),
    }
}
