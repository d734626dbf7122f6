//! The test harness: a real server on port 0 against a PostgreSQL database
//! of its own, and a fake OpenAI-compatible provider.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use batch_server::config::Config;
use batch_server::db;
use batch_server::startup::Application;
use diesel::{Connection, PgConnection, RunQueryDsl};
use serde_json::{Value, json};

/// The API key every test server accepts.
pub const API_KEY: &str = "test-key-0123456789";

/// Where the test databases live: a server URL ending in a database that
/// exists (`postgres`), used to create and drop the per-test databases.
fn admin_url() -> &'static str {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| {
        for variable in ["TEST_DATABASE_URL", "DATABASE_URL"] {
            if let Ok(url) = std::env::var(variable)
                && !url.trim().is_empty()
            {
                return url;
            }
        }
        let local = "postgres://postgres@127.0.0.1:5432/postgres";
        if PgConnection::establish(local).is_ok() {
            return local.to_owned();
        }
        // NOTE: the throwaway cluster keeps running after the tests, so the
        // next run reuses it instead of paying for initdb again.
        let root = std::env::temp_dir().join("batch-test-postgres");
        let cluster = batch_server::embedded::EmbeddedPostgres::start(&root)
            .expect("no PostgreSQL reachable and no throwaway cluster could start");
        let url = cluster.url_for("postgres");
        std::mem::forget(cluster);
        url
    })
}

fn with_database(url: &str, database: &str) -> String {
    let mut parsed = url::Url::parse(url).expect("the admin URL is a valid URL");
    parsed.set_path(&format!("/{database}"));
    parsed.to_string()
}

/// A digest of the migrations, so a schema change gets a fresh template.
fn migrations_digest() -> String {
    use sha2::{Digest, Sha256};
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../migrations");
    let mut paths: Vec<_> = walk(&root);
    paths.sort();
    let mut hasher = Sha256::new();
    // Paths relative to the folder, so every checkout of the same schema
    // shares one template.
    for path in paths {
        let relative = path.strip_prefix(&root).unwrap_or(&path);
        hasher.update(relative.to_string_lossy().as_bytes());
        hasher.update(std::fs::read(&path).unwrap_or_default());
    }
    hex::encode(&hasher.finalize()[..6])
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

/// Creates the migrated template database once per schema version, and
/// sweeps databases left by test processes that died.
fn template() -> &'static str {
    static NAME: OnceLock<String> = OnceLock::new();
    NAME.get_or_init(|| {
        let name = format!("batch_test_template_{}", migrations_digest());
        let mut admin =
            PgConnection::establish(admin_url()).expect("the admin database is reachable");
        // Several test binaries may start at once; one builds the template.
        diesel::sql_query("SELECT pg_advisory_lock(72410001)")
            .execute(&mut admin)
            .expect("lock");
        sweep_leftovers(&mut admin);
        let exists = database_exists(&mut admin, &name);
        if !exists {
            let building = format!("{name}_building");
            diesel::sql_query(format!("DROP DATABASE IF EXISTS {building} WITH (FORCE)"))
                .execute(&mut admin)
                .expect("drop a half-built template");
            diesel::sql_query(format!("CREATE DATABASE {building}"))
                .execute(&mut admin)
                .expect("create template");
            {
                let mut connection =
                    PgConnection::establish(&with_database(admin_url(), &building))
                        .expect("connect to template");
                db::run_migrations(&mut connection).expect("migrations apply");
            }
            diesel::sql_query(format!("ALTER DATABASE {building} RENAME TO {name}"))
                .execute(&mut admin)
                .expect("publish template");
        }
        diesel::sql_query("SELECT pg_advisory_unlock(72410001)")
            .execute(&mut admin)
            .expect("unlock");
        name
    })
}

#[derive(diesel::QueryableByName)]
struct Name {
    #[diesel(sql_type = diesel::sql_types::Text)]
    datname: String,
}

fn database_exists(admin: &mut PgConnection, name: &str) -> bool {
    let rows: Vec<Name> = diesel::sql_query("SELECT datname FROM pg_database WHERE datname = $1")
        .bind::<diesel::sql_types::Text, _>(name)
        .load(admin)
        .expect("list databases");
    !rows.is_empty()
}

/// Drops per-test databases whose test process is gone.
///
/// NOTE: templates of other schema versions are kept, because another
/// checkout with different migrations may be testing at the same time;
/// each schema change leaves one template behind.
fn sweep_leftovers(admin: &mut PgConnection) {
    let rows: Vec<Name> =
        diesel::sql_query("SELECT datname FROM pg_database WHERE datname LIKE 'batch_test_%'")
            .load(admin)
            .expect("list test databases");
    for row in rows {
        let name = row.datname;
        let stale = !name.starts_with("batch_test_template_") && {
            let pid = name
                .split('_')
                .nth(2)
                .and_then(|pid| pid.parse::<u32>().ok());
            pid.is_some_and(|pid| !std::path::Path::new(&format!("/proc/{pid}")).exists())
        };
        if stale {
            let _ = diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .execute(admin);
        }
    }
}

/// A database of one test, dropped when the test ends.
pub struct TestDatabase {
    name: String,
    /// Its URL.
    pub url: String,
}

impl TestDatabase {
    /// Clones the migrated template into a fresh database.
    pub fn create() -> Self {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let template = template();
        let name = format!(
            "batch_test_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        );
        let mut admin =
            PgConnection::establish(admin_url()).expect("the admin database is reachable");
        diesel::sql_query(format!("CREATE DATABASE {name} TEMPLATE {template}"))
            .execute(&mut admin)
            .expect("clone the template");
        let url = with_database(admin_url(), &name);
        Self { name, url }
    }

    /// A direct connection, for looking at rows the API does not show.
    pub fn connect(&self) -> PgConnection {
        PgConnection::establish(&self.url).expect("the test database is reachable")
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let Ok(mut admin) = PgConnection::establish(admin_url()) {
            let _ = diesel::sql_query(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .execute(&mut admin);
        }
    }
}

/// A running server and what a test needs to talk to it.
pub struct TestApp {
    /// `http://127.0.0.1:PORT`.
    pub address: String,
    /// Plain HTTP client.
    pub http: reqwest::Client,
    /// The database.
    pub database: Arc<TestDatabase>,
    handle: actix_web::dev::ServerHandle,
    background: tokio_util::sync::CancellationToken,
}

/// Settings of a test server.
pub struct AppOptions {
    /// Lease seconds; heartbeats every second.
    pub lease_secs: u64,
    /// Provider request timeout.
    pub provider_timeout_secs: u64,
    /// Provider retries.
    pub provider_retries: u32,
    /// Database to use; a fresh one when `None`.
    pub database: Option<Arc<TestDatabase>>,
    /// Connect through this URL instead of the database's own.
    pub database_url: Option<String>,
}

impl Default for AppOptions {
    fn default() -> Self {
        Self {
            lease_secs: 5,
            provider_timeout_secs: 5,
            provider_retries: 2,
            database: None,
            database_url: None,
        }
    }
}

/// Starts a server on port 0 with a fresh database.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(AppOptions::default()).await
}

/// Starts a server with `options`.
pub async fn spawn_app_with(options: AppOptions) -> TestApp {
    let _ = env_logger::builder().is_test(true).try_init();
    let database = match options.database {
        Some(database) => database,
        None => Arc::new(
            tokio::task::spawn_blocking(TestDatabase::create)
                .await
                .expect("create database"),
        ),
    };
    let config = Config {
        database_url: Some(options.database_url.unwrap_or_else(|| database.url.clone())),
        data_dir: std::env::temp_dir(),
        bind: "127.0.0.1:0".parse().expect("valid address"),
        api_keys: vec![API_KEY.to_owned()],
        pool_size: 10,
        db_timeout_secs: 2,
        heartbeat_secs: 1,
        lease_secs: options.lease_secs,
        provider_timeout_secs: options.provider_timeout_secs,
        provider_retries: options.provider_retries,
        provider_retry_delay_ms: 20,
        locale: "zh".to_owned(),
    };
    let app = Application::build(config).await.expect("the server starts");
    let address = format!("http://127.0.0.1:{}", app.port());
    let (handle, background) = app.spawn();
    TestApp {
        address,
        http: reqwest::Client::new(),
        database,
        handle,
        background,
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.background.cancel();
        // The stop command is sent at once; waiting for it is optional.
        drop(self.handle.stop(false));
    }
}

impl TestApp {
    /// A URL on the server.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// GET with the test key; returns status and JSON body.
    pub async fn get(&self, path: &str) -> (u16, Value) {
        let response = self
            .http
            .get(self.url(path))
            .header("x-api-key", API_KEY)
            .send()
            .await
            .expect("GET is sent");
        decode(response).await
    }

    /// POST JSON with the test key; returns status and JSON body.
    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let response = self
            .http
            .post(self.url(path))
            .header("x-api-key", API_KEY)
            .json(&body)
            .send()
            .await
            .expect("POST is sent");
        decode(response).await
    }

    /// Upserts items built from `(externalId, content, username, listId)`.
    pub async fn upsert(&self, items: &[(&str, &str, &str, &str)]) -> Value {
        let items: Vec<Value> = items
            .iter()
            .map(|(id, content, user, list)| json!({"externalId": id, "content": content, "username": user, "listId": list}))
            .collect();
        let (status, body) = self
            .post("/api/external/items", json!({ "items": items }))
            .await;
        assert_eq!(status, 200, "{body}");
        body
    }

    /// Upserts `count` simple English items in list `list`.
    pub async fn seed(&self, count: usize, list: &str) {
        let items: Vec<Value> = (0..count)
            .map(|index| {
                json!({
                    "externalId": format!("{list}-{index}"),
                    "content": format!("Item number {index} talks about #rust and databases https://example.org/{index}"),
                    "username": "tester",
                    "listId": list,
                })
            })
            .collect();
        for chunk in items.chunks(5_000) {
            let (status, body) = self
                .post("/api/external/items", json!({ "items": chunk }))
                .await;
            assert_eq!(status, 200, "{body}");
        }
    }

    /// Polls a batch until it leaves `processing` or `timeout` passes.
    pub async fn wait_for_batch(&self, batch_id: &str, timeout: Duration) -> Value {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let (status, body) = self
                .get(&format!("/api/external/ai-batch/status/{batch_id}"))
                .await;
            assert_eq!(status, 200, "{body}");
            if body["data"]["status"] != "processing" || tokio::time::Instant::now() > deadline {
                return body["data"].clone();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Runs a query returning one bigint, such as a count.
    pub fn scalar(&self, sql: &str) -> i64 {
        #[derive(diesel::QueryableByName)]
        struct Scalar {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            value: i64,
        }
        let mut connection = self.database.connect();
        let row: Scalar = diesel::sql_query(sql)
            .get_result(&mut connection)
            .expect("the query runs");
        row.value
    }
}

async fn decode(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let text = response.text().await.expect("the body is readable");
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, body)
}

/// How the fake provider answers.
#[derive(Clone, Default)]
pub struct FakeBehaviour {
    /// Delay before each answer.
    pub latency: Duration,
    /// Statuses to answer with first, one per request, before answering 200.
    pub leading_statuses: Vec<u16>,
    /// Answer 200 with text that is not JSON.
    pub malformed: bool,
    /// Leave this item id out of chunk answers.
    pub drop_id: Option<i64>,
    /// Answer every item with its id alone, no analysis fields.
    pub ids_only: bool,
}

/// A fake OpenAI-compatible chat-completions server on 127.0.0.1.
pub struct FakeProvider {
    /// The server.
    pub server: wiremock::MockServer,
    /// Requests received so far.
    pub requests: Arc<AtomicU32>,
}

struct Responder {
    behaviour: FakeBehaviour,
    requests: Arc<AtomicU32>,
    statuses: Mutex<Vec<u16>>,
}

impl wiremock::Respond for Responder {
    fn respond(&self, request: &wiremock::Request) -> wiremock::ResponseTemplate {
        self.requests.fetch_add(1, Ordering::SeqCst);
        let latency = self.behaviour.latency;
        let leading = {
            let mut statuses = self.statuses.lock().expect("lock");
            if statuses.is_empty() {
                None
            } else {
                Some(statuses.remove(0))
            }
        };
        if let Some(status) = leading {
            let mut template = wiremock::ResponseTemplate::new(status)
                .set_body_json(json!({"error": {"message": "fake failure", "type": "fake"}}))
                .set_delay(latency);
            if status == 429 {
                template = template.insert_header("retry-after", "0");
            }
            return template;
        }
        if self.behaviour.malformed {
            return chat_reply("Sorry, I cannot help with that.").set_delay(latency);
        }
        let body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
        let user = body["messages"]
            .as_array()
            .and_then(|messages| {
                messages
                    .iter()
                    .rev()
                    .find(|message| message["role"] == "user")
            })
            .and_then(|message| message["content"].as_str())
            .unwrap_or("[]");
        let items: Value = serde_json::from_str(user).unwrap_or(Value::Null);
        let ids_only = self.behaviour.ids_only;
        let analysis = |item: &Value| {
            if ids_only {
                return json!({ "id": item["id"] });
            }
            json!({
                "id": item["id"],
                "keywords": ["fake", format!("item{}", item["id"])],
                "topicTags": ["testing"],
                "contentTypes": ["text"],
                "isValueless": false,
                "summary": "a fake analysis"
            })
        };
        let content = match &items {
            Value::Array(list) => {
                let results: Vec<Value> = list
                    .iter()
                    .filter(|item| {
                        self.behaviour
                            .drop_id
                            .is_none_or(|drop| item["id"] != json!(drop))
                    })
                    .map(analysis)
                    .collect();
                json!({ "results": results }).to_string()
            }
            item => analysis(item).to_string(),
        };
        chat_reply(&content).set_delay(latency)
    }
}

fn chat_reply(content: &str) -> wiremock::ResponseTemplate {
    wiremock::ResponseTemplate::new(200).set_body_json(json!({
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
    }))
}

impl FakeProvider {
    /// Starts the fake provider.
    pub async fn start(behaviour: FakeBehaviour) -> Self {
        let server = wiremock::MockServer::start().await;
        let requests = Arc::new(AtomicU32::new(0));
        wiremock::Mock::given(wiremock::matchers::method("POST"))
            .and(wiremock::matchers::path("/v1/chat/completions"))
            .respond_with(Responder {
                statuses: Mutex::new(behaviour.leading_statuses.clone()),
                behaviour,
                requests: requests.clone(),
            })
            .mount(&server)
            .await;
        Self { server, requests }
    }

    /// The `aiConfig` of a start request that uses this provider.
    pub fn ai_config(&self) -> Value {
        json!({
            "provider": "openai",
            "model": "gpt-fake",
            "apiKey": "sk-fake-provider-key",
            "baseURL": format!("{}/v1", self.server.uri()),
        })
    }

    /// Requests received so far.
    pub fn request_count(&self) -> u32 {
        self.requests.load(Ordering::SeqCst)
    }
}

/// A TCP proxy in front of PostgreSQL that a test can cut and restore, to
/// see how the server behaves while the database is unreachable.
pub struct DbProxy {
    /// The port the proxy listens on.
    pub port: u16,
    state: Arc<ProxyState>,
}

struct ProxyState {
    up: std::sync::atomic::AtomicBool,
    /// Cancelled on cut; every forwarded connection watches it.
    cut: Mutex<tokio_util::sync::CancellationToken>,
}

impl DbProxy {
    /// Starts a proxy to the test PostgreSQL server, or `None` when that
    /// server is reached over a unix socket.
    pub async fn start() -> Option<Self> {
        let parsed = url::Url::parse(admin_url()).ok()?;
        let host = parsed
            .host_str()
            .filter(|host| !host.is_empty())?
            .to_owned();
        let target = format!("{host}:{}", parsed.port().unwrap_or(5432));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.ok()?;
        let port = listener.local_addr().ok()?.port();
        let state = Arc::new(ProxyState {
            up: std::sync::atomic::AtomicBool::new(true),
            cut: Mutex::new(tokio_util::sync::CancellationToken::new()),
        });
        let shared = state.clone();
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if !shared.up.load(Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                let token = shared.cut.lock().expect("lock").clone();
                let target = target.clone();
                tokio::spawn(async move {
                    let Ok(mut outbound) = tokio::net::TcpStream::connect(&target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = token.cancelled() => {}
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                    }
                });
            }
        });
        Some(Self { port, state })
    }

    /// The URL of `database` through the proxy.
    pub fn url_for(&self, database_url: &str) -> String {
        let mut parsed = url::Url::parse(database_url).expect("a database URL");
        parsed.set_host(Some("127.0.0.1")).expect("host");
        parsed.set_port(Some(self.port)).expect("port");
        parsed.to_string()
    }

    /// Closes every open connection and refuses new ones.
    pub fn cut(&self) {
        self.state.up.store(false, Ordering::SeqCst);
        let mut token = self.state.cut.lock().expect("lock");
        token.cancel();
        *token = tokio_util::sync::CancellationToken::new();
    }

    /// Accepts connections again.
    pub fn restore(&self) {
        self.state.up.store(true, Ordering::SeqCst);
    }
}

/// Holds the rows `select_for_update` locks from another connection for
/// `hold`, as a stalled transaction would. Returns once the lock is taken;
/// join the handle to wait for its release.
pub fn hold_row_lock(
    database: Arc<TestDatabase>,
    select_for_update: String,
    hold: Duration,
) -> std::thread::JoinHandle<()> {
    let (held, acquired) = std::sync::mpsc::channel();
    let holder = std::thread::spawn(move || {
        let mut connection = database.connect();
        connection
            .transaction::<_, diesel::result::Error, _>(|connection| {
                diesel::sql_query(select_for_update).execute(connection)?;
                held.send(()).expect("the test waits for the lock");
                std::thread::sleep(hold);
                Ok(())
            })
            .expect("the lock is held and released");
    });
    acquired.recv().expect("the lock is taken");
    holder
}
