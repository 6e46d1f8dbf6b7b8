//! A real PostgreSQL primary and hot standby pair, started in a temp folder for one test and
//! stopped (`pg_ctl stop -m immediate`) when dropped, also when the test fails.
//!
//! The shared server refuses replication, so the pair is a cluster of its own: `initdb` run as
//! the `postgres` OS user, `wal_level=replica`, replication trusted from 127.0.0.1, then
//! `pg_basebackup -R` into a second folder started on another port.

use std::net::TcpListener;
use std::os::unix::fs::chown;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use sqlx::PgPool;

/// The database the service runs on, in both clusters.
const DATABASE: &str = "masthead";

pub struct StandbyPair {
    /// `postgres://` of the primary's and the standby's `masthead` database.
    pub primary_url: String,
    pub standby_url: String,
    bin: PathBuf,
    primary_dir: PathBuf,
    standby_dir: PathBuf,
    _root: tempfile::TempDir,
}

impl StandbyPair {
    /// Starts the primary, creates the `masthead` database, and starts a standby of it.
    pub async fn start() -> Self {
        tokio::task::spawn_blocking(Self::start_blocking)
            .await
            .expect("start the clusters")
    }

    fn start_blocking() -> Self {
        let bin = postgres_bin();
        let root = tempfile::tempdir().expect("temp dir");
        let (uid, gid) = postgres_user();
        chown(root.path(), Some(uid), Some(gid)).expect("hand the temp dir to postgres");
        let (primary_port, standby_port) = two_free_ports();
        let pair = StandbyPair {
            primary_url: url(primary_port),
            standby_url: url(standby_port),
            primary_dir: root.path().join("primary"),
            standby_dir: root.path().join("standby"),
            bin,
            _root: root,
        };
        let primary = pair.primary_dir.clone();
        pair.run(
            "initdb",
            &[
                "-D",
                path(&primary),
                "-U",
                "postgres",
                "-A",
                "trust",
                "--no-sync",
            ],
        );
        let sockets = pair._root.path().display().to_string();
        append(
            &primary.join("postgresql.conf"),
            &format!(
                "listen_addresses = '127.0.0.1'\nport = {primary_port}\n\
                 unix_socket_directories = '{sockets}'\nwal_level = replica\n\
                 max_wal_senders = 4\nhot_standby = on\nfsync = off\n\
                 shared_buffers = 16MB\nmax_connections = 80\n"
            ),
        );
        append(
            &primary.join("pg_hba.conf"),
            "host replication all 127.0.0.1/32 trust\n",
        );
        pair.pg_ctl(&primary, "start");
        let port = primary_port.to_string();
        pair.run(
            "createdb",
            &["-h", "127.0.0.1", "-p", &port, "-U", "postgres", DATABASE],
        );
        let standby = pair.standby_dir.clone();
        pair.run(
            "pg_basebackup",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "-U",
                "postgres",
                "-D",
                path(&standby),
                "-R",
                "-X",
                "stream",
                "--no-sync",
            ],
        );
        append(
            &standby.join("postgresql.conf"),
            &format!("port = {standby_port}\n"),
        );
        pair.pg_ctl(&standby, "start");
        pair
    }

    /// Stops the standby at once, as a crash would.
    pub async fn stop_standby(&self) {
        let (bin, dir) = (self.bin.clone(), self.standby_dir.clone());
        tokio::task::spawn_blocking(move || stop(&bin, &dir))
            .await
            .expect("stop the standby");
    }

    /// Waits until the standby has replayed everything the primary has written so far.
    pub async fn wait_for_replay(&self) {
        let primary = PgPool::connect(&self.primary_url).await.expect("primary");
        let standby = PgPool::connect(&self.standby_url).await.expect("standby");
        let (written,): (String,) = sqlx::query_as("SELECT pg_current_wal_lsn()::text")
            .fetch_one(&primary)
            .await
            .expect("primary position");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let (replayed,): (bool,) =
                sqlx::query_as("SELECT pg_last_wal_replay_lsn() >= $1::text::pg_lsn")
                    .bind(&written)
                    .fetch_one(&standby)
                    .await
                    .expect("standby position");
            if replayed {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the standby never replayed {written}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        primary.close().await;
        standby.close().await;
    }

    fn pg_ctl(&self, dir: &Path, action: &str) {
        let log = dir.with_extension("log");
        self.run(
            "pg_ctl",
            &["-D", path(dir), "-l", path(&log), "-w", "-t", "60", action],
        );
    }

    /// Runs a PostgreSQL program as the `postgres` OS user; panics with its output on failure.
    fn run(&self, program: &str, args: &[&str]) {
        let output = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(self.bin.join(program))
            .args(args)
            .current_dir(self._root.path())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
        assert!(
            output.status.success(),
            "{program} {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

impl Drop for StandbyPair {
    fn drop(&mut self) {
        stop(&self.bin, &self.standby_dir);
        stop(&self.bin, &self.primary_dir);
    }
}

/// `pg_ctl stop -m immediate`, quietly: the cluster may be stopped already or never started.
fn stop(bin: &Path, dir: &Path) {
    if !dir.join("postmaster.pid").exists() {
        return;
    }
    let _ = Command::new("runuser")
        .args(["-u", "postgres", "--"])
        .arg(bin.join("pg_ctl"))
        .args(["-D", path(dir), "-m", "immediate", "-w", "stop"])
        .output();
}

fn url(port: u16) -> String {
    format!("postgres://postgres@127.0.0.1:{port}/{DATABASE}")
}

fn path(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 path")
}

fn append(file: &Path, text: &str) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(file)
        .unwrap_or_else(|e| panic!("cannot open {}: {e}", file.display()));
    f.write_all(text.as_bytes()).expect("append");
}

/// The newest PostgreSQL under /usr/lib/postgresql/*/bin.
fn postgres_bin() -> PathBuf {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL is installed under /usr/lib/postgresql")
        .filter_map(Result::ok)
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("pg_basebackup").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions
        .pop()
        .map(|(_, bin)| bin)
        .expect("no /usr/lib/postgresql/*/bin with pg_basebackup")
}

/// The uid and gid of the `postgres` OS user.
fn postgres_user() -> (u32, u32) {
    let id = |flag: &str| {
        let out = Command::new("id")
            .args([flag, "postgres"])
            .output()
            .expect("run id");
        assert!(out.status.success(), "there is no `postgres` OS user");
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .expect("a numeric id")
    };
    (id("-u"), id("-g"))
}

/// Two ports nobody listens on now (both held while the second is found).
fn two_free_ports() -> (u16, u16) {
    let a = TcpListener::bind("127.0.0.1:0").expect("a free port");
    let b = TcpListener::bind("127.0.0.1:0").expect("a free port");
    let ports = (
        a.local_addr().expect("port").port(),
        b.local_addr().expect("port").port(),
    );
    drop((a, b));
    ports
}
