//! A private PostgreSQL cluster made from the machine's own binaries.
//!
//! Used when `DATABASE_URL` is unset: the server creates the cluster once
//! under its data folder, starts it listening on a unix socket only, and stops
//! it on shutdown. The test harness uses the same code for a throwaway
//! cluster when no PostgreSQL server is reachable.

use std::ffi::OsStr;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The user that runs initdb and postgres when this process is root, since
/// both refuse to run as root.
const SERVICE_USER: &str = "postgres";

/// The database the server uses inside the embedded cluster.
pub const DATABASE_NAME: &str = "batch";

/// The reasons the embedded cluster could not be used.
#[derive(Debug, thiserror::Error)]
pub enum EmbeddedError {
    /// No PostgreSQL server binaries were found.
    #[error(
        "no PostgreSQL server binaries (initdb, pg_ctl, postgres) were found on PATH, through \
         `pg_config --bindir`, or under /usr/lib/postgresql/*/bin. Install the PostgreSQL \
         server (for example `apt-get install postgresql`), or set DATABASE_URL to an \
         existing database"
    )]
    BinariesMissing,
    /// A PostgreSQL tool failed.
    #[error("`{command}` failed: {output}")]
    Command {
        /// The command that failed.
        command: String,
        /// The last lines of its output.
        output: String,
    },
    /// The data folder could not be prepared.
    #[error(
        "cannot prepare the data folder {path}: {reason}. Set BATCH_DATA_DIR to a folder \
             this user can write, or set DATABASE_URL"
    )]
    DataDir {
        /// The folder.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
}

/// A running cluster. A cluster this process started, or one whose
/// starter is gone (a server killed before it could stop it), is stopped by
/// [`EmbeddedPostgres::stop`] or on drop. One found running under a live
/// process (another server or an `import`) is left running.
#[derive(Debug)]
pub struct EmbeddedPostgres {
    bin_dir: PathBuf,
    data_dir: PathBuf,
    socket_dir: PathBuf,
    as_service_user: bool,
    stopped: bool,
}

impl EmbeddedPostgres {
    /// Creates the cluster under `root` if needed, starts it unless it already
    /// runs, and makes sure the `batch` database exists.
    pub fn start(root: &Path) -> Result<Self, EmbeddedError> {
        let bin_dir = find_bin_dir().ok_or(EmbeddedError::BinariesMissing)?;
        let as_service_user = is_root();
        fs::create_dir_all(root).map_err(|error| data_dir_error(root, error))?;
        let root = root
            .canonicalize()
            .map_err(|error| data_dir_error(root, error))?;
        let data_dir = root.join("data");
        let socket_dir = root.join("run");
        fs::create_dir_all(&socket_dir).map_err(|error| data_dir_error(&socket_dir, error))?;

        let cluster = Self {
            bin_dir,
            data_dir,
            socket_dir,
            as_service_user,
            stopped: false,
        };
        if as_service_user {
            cluster.hand_to_service_user(&root)?;
        }
        if !cluster.data_dir.join("PG_VERSION").exists() {
            log::info!(
                "creating embedded PostgreSQL cluster in {}",
                cluster.data_dir.display()
            );
            cluster.run_tool(
                "initdb",
                [
                    OsStr::new("-D"),
                    cluster.data_dir.as_os_str(),
                    OsStr::new("-U"),
                    OsStr::new("postgres"),
                    OsStr::new("--auth=trust"),
                    OsStr::new("--encoding=UTF8"),
                    OsStr::new("--no-locale"),
                ],
            )?;
        }
        let mut cluster = cluster;
        let owner_file = root.join("owner.pid");
        let owner = fs::read_to_string(&owner_file)
            .ok()
            .and_then(|text| text.trim().parse::<u32>().ok())
            .filter(|pid| *pid != std::process::id() && is_alive(*pid));
        if !cluster.is_running() {
            cluster.start_server()?;
        } else if let Some(pid) = owner {
            log::info!(
                "reusing the embedded PostgreSQL that process {pid} started in {}; it is left running at exit",
                cluster.data_dir.display()
            );
            cluster.stopped = true;
        } else {
            log::info!(
                "adopting the embedded PostgreSQL left running in {} by a process that is gone",
                cluster.data_dir.display()
            );
        }
        if !cluster.stopped {
            fs::write(&owner_file, std::process::id().to_string())
                .map_err(|error| data_dir_error(&owner_file, error))?;
        }
        cluster.create_database()?;
        Ok(cluster)
    }

    /// The libpq URL of the `batch` database over the unix socket.
    pub fn database_url(&self) -> String {
        self.url_for(DATABASE_NAME)
    }

    /// The libpq URL of `database` over the unix socket.
    pub fn url_for(&self, database: &str) -> String {
        format!(
            "postgres://postgres@/{database}?host={}",
            self.socket_dir.display()
        )
    }

    /// Stops the cluster with a fast shutdown, which rolls back open
    /// transactions but keeps every committed row.
    pub fn stop(&mut self) {
        if self.stopped {
            return;
        }
        self.stopped = true;
        if let Some(root) = self.data_dir.parent() {
            let _ = fs::remove_file(root.join("owner.pid"));
        }
        let data_dir = self.data_dir.clone();
        match self.run_tool(
            "pg_ctl",
            [
                OsStr::new("-D"),
                data_dir.as_os_str(),
                OsStr::new("-m"),
                OsStr::new("fast"),
                OsStr::new("-w"),
                OsStr::new("stop"),
            ],
        ) {
            Ok(_) => log::info!("stopped embedded PostgreSQL"),
            Err(error) => log::error!("stopping embedded PostgreSQL failed: {error}"),
        }
    }

    fn is_running(&self) -> bool {
        let data_dir = self.data_dir.clone();
        self.run_tool(
            "pg_ctl",
            [OsStr::new("-D"), data_dir.as_os_str(), OsStr::new("status")],
        )
        .is_ok()
    }

    fn start_server(&self) -> Result<(), EmbeddedError> {
        // Unix socket only: no TCP port to collide with or expose.
        let options = format!(
            "-c listen_addresses='' -c unix_socket_directories='{}' -c max_connections=200 \
             -c fsync=on",
            self.socket_dir.display()
        );
        let log_file = self.data_dir.join("server.log");
        let data_dir = self.data_dir.clone();
        self.run_tool(
            "pg_ctl",
            [
                OsStr::new("-D"),
                data_dir.as_os_str(),
                OsStr::new("-o"),
                OsStr::new(&options),
                OsStr::new("-l"),
                log_file.as_os_str(),
                OsStr::new("-w"),
                OsStr::new("-t"),
                OsStr::new("60"),
                OsStr::new("start"),
            ],
        )?;
        log::info!(
            "started embedded PostgreSQL on socket folder {}",
            self.socket_dir.display()
        );
        Ok(())
    }

    fn create_database(&self) -> Result<(), EmbeddedError> {
        use diesel::{Connection, PgConnection, RunQueryDsl};

        let mut connection =
            PgConnection::establish(&self.url_for("postgres")).map_err(|error| {
                EmbeddedError::Command {
                    command: "connect to the embedded cluster".into(),
                    output: error.to_string(),
                }
            })?;
        let exists: bool = diesel::select(diesel::dsl::sql::<diesel::sql_types::Bool>(&format!(
            "EXISTS (SELECT 1 FROM pg_database WHERE datname = '{DATABASE_NAME}')"
        )))
        .get_result(&mut connection)
        .map_err(|error| EmbeddedError::Command {
            command: "look up the batch database".into(),
            output: error.to_string(),
        })?;
        if !exists {
            diesel::sql_query(format!("CREATE DATABASE {DATABASE_NAME}"))
                .execute(&mut connection)
                .map_err(|error| EmbeddedError::Command {
                    command: format!("CREATE DATABASE {DATABASE_NAME}"),
                    output: error.to_string(),
                })?;
        }
        Ok(())
    }

    /// Gives the cluster folders to the service user, which must be able to
    /// reach them through every parent folder.
    fn hand_to_service_user(&self, root: &Path) -> Result<(), EmbeddedError> {
        let status = Command::new("chown")
            .args(["-R", &format!("{SERVICE_USER}:{SERVICE_USER}")])
            .arg(root)
            .status()
            .map_err(|error| data_dir_error(root, error))?;
        if !status.success() {
            return Err(EmbeddedError::DataDir {
                path: root.to_path_buf(),
                reason: format!("chown to the {SERVICE_USER} user failed; does that user exist?"),
            });
        }
        fs::set_permissions(root, fs::Permissions::from_mode(0o700))
            .map_err(|error| data_dir_error(root, error))?;
        let reachable = Command::new("runuser")
            .args(["-u", SERVICE_USER, "--", "test", "-w"])
            .arg(root)
            .status()
            .map(|status| status.success())
            .unwrap_or(false);
        if !reachable {
            return Err(EmbeddedError::DataDir {
                path: root.to_path_buf(),
                reason: format!(
                    "initdb and postgres refuse to run as root, so they run as the {SERVICE_USER} \
                     user, which cannot reach this folder through its parent folders"
                ),
            });
        }
        Ok(())
    }

    fn run_tool<I, S>(&self, tool: &str, args: I) -> Result<Output, EmbeddedError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let program = self.bin_dir.join(tool);
        let mut command = if self.as_service_user {
            let mut command = Command::new("runuser");
            command.args(["-u", SERVICE_USER, "--"]).arg(&program);
            command
        } else {
            Command::new(&program)
        };
        command.args(args);
        // A cluster started from a folder the service user cannot enter
        // would fail on its first relative path.
        command.current_dir(self.data_dir.parent().unwrap_or(Path::new("/")));
        let output = command.output().map_err(|error| EmbeddedError::Command {
            command: program.display().to_string(),
            output: error.to_string(),
        })?;
        if output.status.success() {
            Ok(output)
        } else {
            Err(EmbeddedError::Command {
                command: format!("{} {tool}", program.display()),
                output: tail_of(&output),
            })
        }
    }
}

impl Drop for EmbeddedPostgres {
    fn drop(&mut self) {
        self.stop();
    }
}

fn data_dir_error(path: &Path, error: std::io::Error) -> EmbeddedError {
    EmbeddedError::DataDir {
        path: path.to_path_buf(),
        reason: error.to_string(),
    }
}

fn tail_of(output: &Output) -> String {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let lines: Vec<&str> = text
        .lines()
        .filter(|line| !line.trim().is_empty())
        .collect();
    lines[lines.len().saturating_sub(5)..].join(" | ")
}

/// Whether `pid` is a running process, not a zombie left by a kill.
fn is_alive(pid: u32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            // The state follows the command name, which is in parentheses.
            let after_name = stat.rsplit_once(')')?.1;
            after_name
                .split_whitespace()
                .next()
                .map(|state| state != "Z" && state != "X")
        })
        .unwrap_or(false)
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|output| String::from_utf8_lossy(&output.stdout).trim() == "0")
        .unwrap_or(false)
}

/// Finds the folder holding initdb, pg_ctl and postgres.
pub fn find_bin_dir() -> Option<PathBuf> {
    let has_tools = |dir: &Path| {
        ["initdb", "pg_ctl", "postgres"]
            .iter()
            .all(|tool| dir.join(tool).is_file())
    };

    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|path| std::env::split_paths(&path).collect::<Vec<_>>());
    let from_pg_config = Command::new("pg_config")
        .arg("--bindir")
        .output()
        .ok()
        .filter(|output| output.status.success())
        .map(|output| PathBuf::from(String::from_utf8_lossy(&output.stdout).trim()));
    let mut versioned: Vec<PathBuf> = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path().join("bin"))
        .collect();
    // Newest major version first.
    versioned.sort_by_key(|path| {
        std::cmp::Reverse(
            path.parent()
                .and_then(|version| version.file_name())
                .and_then(|name| name.to_str())
                .and_then(|name| name.parse::<u32>().ok())
                .unwrap_or(0),
        )
    });

    on_path
        .chain(from_pg_config)
        .chain(versioned)
        .find(|dir| has_tools(dir))
}
