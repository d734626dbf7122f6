//! Parts shared by the bench programs: scratch databases, timing helpers and
//! the item data sets.

#![allow(
    dead_code,
    reason = "each bench program uses a different part of this module"
)]

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::time::{Duration, Instant};

use batch_server::db;
use batch_server::db::items::NewItemRow;
use batch_server::ingest::parse_item;
use chrono::{DateTime, TimeZone, Utc};
use diesel::prelude::*;
use diesel::sql_types::Text;

/// The server used when neither `TEST_DATABASE_URL` nor `DATABASE_URL` is set.
const LOCAL_SERVER_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// Prefix of every scratch database name, followed by `<bench>_<pid>`.
const SCRATCH_PREFIX: &str = "batch_bench_";

/// The environment variable with the JSONL files to load, separated like
/// `PATH` entries (`:` on Unix).
pub const DATA_VARIABLE: &str = "BATCH_BENCH_DATA";

/// Items in the synthetic data set used when [`DATA_VARIABLE`] is unset.
const SYNTHETIC_ITEMS: usize = 25_000;

/// A database created for one bench run and dropped when this value drops.
pub struct ScratchDb {
    admin_url: String,
    name: String,
    url: String,
}

impl ScratchDb {
    /// Creates `batch_bench_<label>_<pid>` on the server of
    /// `TEST_DATABASE_URL`, `DATABASE_URL` or the local default, and applies
    /// the migrations. The server's `postgres` database is used to create and
    /// drop it, never the database the URL names.
    pub fn create(label: &str) -> Self {
        let server = server_url();
        let admin_url = with_database(&server, "postgres");
        let mut admin = PgConnection::establish(&admin_url).unwrap_or_else(|error| {
            panic!(
                "connecting to {} failed: {error}; start PostgreSQL or set TEST_DATABASE_URL",
                db::redact_url(&admin_url)
            )
        });
        drop_stale_databases(&mut admin);

        let name = format!("{SCRATCH_PREFIX}{label}_{}", std::process::id());
        diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .execute(&mut admin)
            .expect("dropping an earlier scratch database of this pid failed");
        diesel::sql_query(format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .expect("creating the scratch database failed");
        let scratch = Self {
            admin_url,
            url: with_database(&server, &name),
            name,
        };
        let mut connection = scratch.connect();
        db::run_migrations(&mut connection).expect("the migrations apply to an empty database");
        eprintln!("scratch database {} created", scratch.name);
        scratch
    }

    /// Opens a new connection to the scratch database.
    pub fn connect(&self) -> PgConnection {
        PgConnection::establish(&self.url).unwrap_or_else(|error| {
            panic!(
                "connecting to {} failed: {error}",
                db::redact_url(&self.url)
            )
        })
    }
}

impl Drop for ScratchDb {
    fn drop(&mut self) {
        let dropped = PgConnection::establish(&self.admin_url).and_then(|mut admin| {
            diesel::sql_query(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .execute(&mut admin)
            .map_err(|error| diesel::ConnectionError::BadConnection(error.to_string()))
        });
        match dropped {
            Ok(_) => eprintln!("scratch database {} dropped", self.name),
            Err(error) => eprintln!(
                "dropping scratch database {} failed: {error}; drop it by hand",
                self.name
            ),
        }
    }
}

fn server_url() -> String {
    for variable in ["TEST_DATABASE_URL", "DATABASE_URL"] {
        if let Ok(url) = std::env::var(variable)
            && !url.trim().is_empty()
        {
            return url;
        }
    }
    LOCAL_SERVER_URL.to_owned()
}

fn with_database(url: &str, database: &str) -> String {
    let mut parsed =
        url::Url::parse(url).unwrap_or_else(|error| panic!("the database URL is invalid: {error}"));
    parsed.set_path(&format!("/{database}"));
    parsed.to_string()
}

/// Drops scratch databases whose bench process no longer runs, such as after
/// Ctrl-C, which skips [`ScratchDb`]'s `Drop`.
// NOTE: the check reads /proc of this machine, so it assumes the database
// server and every bench run share one machine (the URLs are loopback).
fn drop_stale_databases(admin: &mut PgConnection) {
    #[derive(QueryableByName)]
    struct Name {
        #[diesel(sql_type = Text)]
        datname: String,
    }
    if !Path::new("/proc/self").exists() {
        return;
    }
    let pattern = format!("{}%", SCRATCH_PREFIX.replace('_', "\\_"));
    let names: Vec<Name> =
        match diesel::sql_query("SELECT datname FROM pg_database WHERE datname LIKE $1")
            .bind::<Text, _>(&pattern)
            .load(admin)
        {
            Ok(names) => names,
            Err(error) => {
                eprintln!("listing stale scratch databases failed: {error}");
                return;
            }
        };
    for Name { datname } in names {
        let Some(pid) = datname
            .rsplit('_')
            .next()
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        match diesel::sql_query(format!("DROP DATABASE IF EXISTS {datname} WITH (FORCE)"))
            .execute(admin)
        {
            Ok(_) => eprintln!("dropped stale scratch database {datname}"),
            Err(error) => eprintln!("dropping stale scratch database {datname} failed: {error}"),
        }
    }
}

/// Runs `operation` and returns its result with the wall time it took.
pub fn timed<T>(operation: impl FnOnce() -> T) -> (T, Duration) {
    let start = Instant::now();
    let value = operation();
    (value, start.elapsed())
}

/// Returns the median of `samples`, sorting them in place.
pub fn median(samples: &mut [Duration]) -> Duration {
    assert!(!samples.is_empty(), "median of no samples");
    samples.sort_unstable();
    samples[samples.len() / 2]
}

/// Returns a duration in milliseconds.
pub fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}

/// Returns a duration in microseconds.
pub fn micros(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e6
}

/// Returns `count` items per second of `duration`.
pub fn per_second(count: usize, duration: Duration) -> f64 {
    count as f64 / duration.as_secs_f64()
}

/// Returns `measured / baseline`.
pub fn ratio(measured: Duration, baseline: Duration) -> f64 {
    measured.as_secs_f64() / baseline.as_secs_f64()
}

/// Rows of one input, validated and deduplicated as `batch-server import` does.
pub struct Dataset {
    /// The file name, or `synthetic`.
    pub name: String,
    /// The items.
    pub rows: Vec<NewItemRow>,
}

/// Loads the files listed in [`DATA_VARIABLE`], or generates the synthetic
/// set when it is unset or empty.
pub fn load_datasets() -> Vec<Dataset> {
    match std::env::var_os(DATA_VARIABLE) {
        Some(paths) if !paths.is_empty() => std::env::split_paths(&paths)
            .map(|path| load_jsonl(&path))
            .collect(),
        _ => vec![synthetic_dataset(SYNTHETIC_ITEMS)],
    }
}

/// Reads a JSONL file of items with the import command's validation. A later
/// line with the same `externalId` replaces the earlier one, as in the import.
fn load_jsonl(path: &Path) -> Dataset {
    let file =
        File::open(path).unwrap_or_else(|error| panic!("cannot open {}: {error}", path.display()));
    let mut rows: Vec<NewItemRow> = Vec::new();
    let mut positions: HashMap<String, usize> = HashMap::new();
    for (index, line) in BufReader::new(file).lines().enumerate() {
        let number = index + 1;
        let line = line.unwrap_or_else(|error| {
            panic!(
                "reading line {number} of {} failed: {error}",
                path.display()
            )
        });
        if line.trim().is_empty() {
            continue;
        }
        let value: serde_json::Value = serde_json::from_str(&line).unwrap_or_else(|error| {
            panic!(
                "line {number} of {} is not valid JSON: {error}",
                path.display()
            )
        });
        let mut errors = Vec::new();
        let Some(row) = parse_item(&value, &format!("line {number}"), &mut errors) else {
            let messages: Vec<String> = errors
                .iter()
                .map(|error| format!("{}: {}", error.field, error.message))
                .collect();
            panic!("{} is invalid: {}", path.display(), messages.join("; "));
        };
        match positions.insert(row.external_id.clone(), rows.len()) {
            Some(earlier) => rows[earlier] = row,
            None => rows.push(row),
        }
    }
    let name = path.file_name().map_or_else(
        || path.display().to_string(),
        |name| name.to_string_lossy().into_owned(),
    );
    Dataset { name, rows }
}

const ENGLISH_WORDS: &[&str] = &[
    "the",
    "new",
    "release",
    "of",
    "rust",
    "makes",
    "async",
    "code",
    "easier",
    "to",
    "read",
    "great",
    "talk",
    "about",
    "databases",
    "and",
    "query",
    "plans",
    "today",
    "we",
    "shipped",
    "a",
    "faster",
    "parser",
    "for",
    "json",
    "lines",
    "thanks",
    "everyone",
    "who",
    "helped",
    "weekend",
    "coffee",
    "with",
    "friends",
    "in",
    "the",
    "park",
    "was",
    "lovely",
];

const CHINESE_PHRASES: &[&str] = &[
    "今天天气很好",
    "我们一起去公园散步",
    "这个项目的代码写得很清楚",
    "数据库的查询计划",
    "新版本已经发布",
    "感谢大家的帮助",
    "周末和朋友喝咖啡",
    "学习编程需要耐心",
    "社区的氛围很友好",
    "请保持礼貌",
];

/// Generates `count` short posts: three in four English with hashtags,
/// mentions and links, one in four Chinese. The generator is seeded, so
/// every run gets the same set.
fn synthetic_dataset(count: usize) -> Dataset {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move |bound: usize| -> usize {
        // xorshift64: enough to vary lengths and words, and deterministic.
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % bound as u64) as usize
    };
    let epoch: DateTime<Utc> = Utc
        .with_ymd_and_hms(2024, 1, 1, 0, 0, 0)
        .single()
        .expect("a valid fixed date");
    let rows = (0..count)
        .map(|index| {
            let content = if index % 4 == 3 {
                let phrases: Vec<&str> = (0..2 + next(5))
                    .map(|_| CHINESE_PHRASES[next(CHINESE_PHRASES.len())])
                    .collect();
                format!("{}。", phrases.join("，"))
            } else {
                let mut words: Vec<String> = (0..8 + next(18))
                    .map(|_| ENGLISH_WORDS[next(ENGLISH_WORDS.len())].to_owned())
                    .collect();
                if next(3) == 0 {
                    words.push(format!("#topic{}", next(20)));
                }
                if next(4) == 0 {
                    words.insert(0, format!("@user{}", next(50)));
                }
                if next(5) == 0 {
                    words.push(format!("https://example.com/post/{index}"));
                }
                words.join(" ")
            };
            NewItemRow {
                external_id: format!("synthetic-{index}"),
                content,
                username: Some(format!("user{}", index % 50)),
                list_id: Some(format!("list{}", index % 5)),
                published_at: Some(epoch + chrono::Duration::minutes(index as i64)),
            }
        })
        .collect();
    Dataset {
        name: "synthetic".to_owned(),
        rows,
    }
}

/// One line of `EXPLAIN` output.
#[derive(QueryableByName)]
struct PlanLine {
    #[diesel(sql_type = Text)]
    #[diesel(column_name = "QUERY PLAN")]
    line: String,
}

/// Runs `EXPLAIN (ANALYZE, BUFFERS) <statement>` in a transaction that is
/// rolled back, so a locking or writing statement changes nothing, and
/// returns the plan lines.
pub fn explain_analyze(connection: &mut PgConnection, statement: &str) -> Vec<String> {
    let mut plan = Vec::new();
    let outcome = connection.transaction::<(), diesel::result::Error, _>(|connection| {
        let lines: Vec<PlanLine> =
            diesel::sql_query(format!("EXPLAIN (ANALYZE, BUFFERS) {statement}"))
                .load(connection)?;
        plan = lines.into_iter().map(|line| line.line).collect();
        Err(diesel::result::Error::RollbackTransaction)
    });
    match outcome {
        Err(diesel::result::Error::RollbackTransaction) => plan,
        Err(error) => panic!("EXPLAIN failed: {error}\n{statement}"),
        Ok(()) => unreachable!("the closure always rolls back"),
    }
}

/// Prints plan lines indented under a heading.
pub fn print_plan(heading: &str, plan: &[String]) {
    println!("{heading}");
    for line in plan {
        println!("    {line}");
    }
}
