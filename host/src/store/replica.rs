//! Read replicas: searches, card reads and population reads go to a PostgreSQL hot standby
//! once it has replayed what the reader must see; everything else goes to the primary.
//!
//! Positions are bytes of write-ahead log (WAL). A request carries a [`Session`] (set by the
//! HTTP layer): a writing request reads only from the primary; any other request of the same
//! caller reads from the standby only once it has replayed that caller's last write. A
//! population read outside a request (a segment refresh, a club recomputation) reads from the
//! standby once it has replayed everything committed when the read began, waiting briefly for
//! it. A standby that is unreachable, is no standby, or lags more than allowed is skipped.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use anyhow::Context;
use sqlx::pool::PoolConnection;
use sqlx::{Database, PgPool, Pool};

use super::{PoolSize, SqlStore, Store, redact};

/// How often the standby's health and lag are checked.
const CHECK_EVERY: Duration = Duration::from_millis(500);
/// Longest a health check may take before the standby counts as unreachable.
const CHECK_TIMEOUT: Duration = Duration::from_secs(1);
/// A replay position read this recently is not read again for a read that needs more.
const POSITION_FRESH: Duration = Duration::from_millis(2);
/// Longest a population read waits for the standby to catch up before using the primary.
const CATCH_UP_WAIT: Duration = Duration::from_millis(100);
/// Callers remembered before those whose writes the standby has replayed are forgotten.
const CALLERS_KEPT: usize = 4_096;

/// What a read must see, which decides whether the standby may serve it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// The caller's own earlier writes: searches and cards read by a request. Outside a
    /// request nobody tracks those writes, so such reads go to the primary.
    OwnWrites,
    /// Every write committed before the read began: the reader pipeline's population reads.
    Committed,
}

/// What one request may read from the standby, set around its handler.
#[derive(Debug, Clone, Copy, Default)]
pub struct Session {
    /// The request writes: all its reads go to the primary.
    writes: bool,
    /// The WAL position of the caller's last write through this process.
    after: u64,
}

tokio::task_local! {
    static SESSION: Session;
}

/// Runs `request` with `session` in force for every store read it makes.
pub async fn within<F: Future>(session: Session, request: F) -> F::Output {
    SESSION.scope(session, request).await
}

/// Where the standby is given: its URL and the lag past which it is skipped.
#[derive(Debug, Clone)]
pub struct StandbySettings {
    pub url: String,
    pub max_lag: Duration,
}

/// What the last check of the standby saw.
#[derive(Debug, Clone, PartialEq)]
pub enum StandbyHealth {
    /// Not checked yet.
    Unknown,
    /// Replaying, this far behind the primary (to the check interval).
    Replaying { lag: Duration },
    /// Replaying, but further behind than allowed: reads go to the primary.
    Lagging { lag: Duration, limit: Duration },
    /// Did not answer: reads go to the primary.
    Unreachable,
    /// Answers but is not in recovery (promoted, or a primary): reads go to the primary.
    NotAStandby,
}

impl StandbyHealth {
    fn serves(&self) -> bool {
        matches!(self, Self::Replaying { .. })
    }
}

impl std::fmt::Display for StandbyHealth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ms = |d: &Duration| d.as_millis();
        match self {
            Self::Unknown => write!(f, "not checked yet; reads go to the primary"),
            Self::Replaying { lag } => write!(f, "replaying, {} ms behind the primary", ms(lag)),
            Self::Lagging { lag, limit } => write!(
                f,
                "{} ms behind the primary (limit {} ms); reads go to the primary",
                ms(lag),
                ms(limit)
            ),
            Self::Unreachable => write!(f, "unreachable; reads go to the primary"),
            Self::NotAStandby => write!(f, "not in recovery; reads go to the primary"),
        }
    }
}

/// The standby of one store: its health, its replay position, and the callers' last writes.
pub struct Standby {
    standby: PgPool,
    primary: PgPool,
    max_lag: Duration,
    /// The last check allowed reads (mirrors `health`, read without a lock).
    serving: AtomicBool,
    health: Mutex<StandbyHealth>,
    /// The standby's replay position as last read, and when (µs since `epoch`).
    replayed: AtomicU64,
    replayed_at: AtomicU64,
    epoch: Instant,
    /// The primary's WAL page size (`wal_block_size`).
    wal_page: u64,
    /// One replay-position read at a time; the others use its answer.
    reading: tokio::sync::Mutex<()>,
    /// Per caller (a hash of its credentials), the primary's position after its last write.
    callers: Mutex<HashMap<u64, u64>>,
    hasher: RandomState,
}

/// The standby's pool in the store's own type, with the routing state beside it.
pub struct StandbyPool<DB: Database> {
    pool: Pool<DB>,
    standby: Arc<Standby>,
}

impl<DB: Database> StandbyPool<DB> {
    pub(super) fn handle(&self) -> Arc<Standby> {
        Arc::clone(&self.standby)
    }
}

impl<DB: Database> SqlStore<DB> {
    /// A connection for a read of the given freshness: the standby's when it may serve the
    /// read and answers, else the primary's.
    pub(super) async fn reader(
        &self,
        freshness: Freshness,
    ) -> Result<PoolConnection<DB>, sqlx::Error> {
        if let Some(StandbyPool { pool, standby }) = &self.standby
            && standby.serves(freshness).await
        {
            match pool.acquire().await {
                Ok(connection) => {
                    metrics::counter!("masthead_replica_reads_total", "served_by" => "standby")
                        .increment(1);
                    return Ok(connection);
                }
                Err(e) => standby.lost(&e),
            }
        }
        self.read.acquire().await
    }

    pub(super) async fn close_standby(&self) {
        if let Some(standby) = &self.standby {
            standby.pool.close().await;
        }
    }
}

/// Opens the database `url` names and, when given, its standby. A standby is a PostgreSQL
/// feature: with SQLite it is refused. A standby that does not answer yet is no reason not to
/// start (reads go to the primary until it does); one that answers but is not in recovery is.
pub async fn open_with_standby(
    url: &str,
    size: PoolSize,
    standby: Option<&StandbySettings>,
) -> anyhow::Result<Arc<dyn Store>> {
    let Some(settings) = standby else {
        return super::open_sized(url, size).await;
    };
    if !(url.starts_with("postgres:") || url.starts_with("postgresql:")) {
        anyhow::bail!("{}", sqlite_refusal());
    }
    let mut store = super::postgres::open(url, size).await?;
    // Unlike the primary's pool, this one checks every connection before lending it: a
    // standby that stopped is found at the next acquire, which then falls back to the primary
    // (`reader`), instead of failing the query the dead connection was lent for.
    let pool = sqlx::postgres::PgPoolOptions::new()
        .test_before_acquire(true)
        .max_connections(super::postgres::auto_size(size))
        .acquire_timeout(CHECK_TIMEOUT)
        .connect_lazy(&settings.url)
        .with_context(|| {
            format!(
                "database_read_url `{}` is not a PostgreSQL URL; write it as \
                 postgres://USER@HOST/DATABASE",
                redact(&settings.url)
            )
        })?;
    let standby = Arc::new(Standby {
        standby: pool.clone(),
        primary: store.write.clone(),
        max_lag: settings.max_lag,
        serving: AtomicBool::new(false),
        health: Mutex::new(StandbyHealth::Unknown),
        replayed: AtomicU64::new(0),
        replayed_at: AtomicU64::new(0),
        epoch: Instant::now(),
        wal_page: wal_page(&store.write).await?,
        reading: tokio::sync::Mutex::new(()),
        callers: Mutex::new(HashMap::new()),
        hasher: RandomState::new(),
    });
    let mut primary_positions = VecDeque::new();
    standby.check(&mut primary_positions).await;
    if standby.health() == StandbyHealth::NotAStandby {
        anyhow::bail!(
            "database_read_url `{}` names a server that is not in recovery: point it at a hot \
             standby of database_url (e.g. one made with pg_basebackup -R), or leave it unset",
            redact(&settings.url)
        );
    }
    tokio::spawn(watch(Arc::downgrade(&standby), primary_positions));
    store.standby = Some(StandbyPool { pool, standby });
    Ok(Arc::new(store))
}

async fn wal_page(primary: &PgPool) -> anyhow::Result<u64> {
    let size: String = sqlx::query_scalar("SHOW wal_block_size")
        .fetch_one(primary)
        .await
        .context("cannot read the primary's wal_block_size")?;
    size.parse()
        .with_context(|| format!("the primary's wal_block_size `{size}` is not a number"))
}

/// The position a standby reports once it has replayed the WAL up to the insert `position`.
///
/// An insert position just past a WAL page's header (24 bytes, 40 at a segment's start) follows
/// a record that ended at the page boundary, which the standby reports as the boundary, or one
/// that ran a few bytes past the header. No record ends between the boundary and the position,
/// so a standby that replayed up to the boundary replayed that record.
pub fn end_of_record(position: u64, wal_page: u64) -> u64 {
    const LONG_PAGE_HEADER: u64 = 40;
    let into_page = position % wal_page;
    if into_page <= LONG_PAGE_HEADER {
        position - into_page
    } else {
        position
    }
}

/// Why a SQLite database cannot have `database_read_url`.
pub fn sqlite_refusal() -> &'static str {
    "database_read_url names a PostgreSQL hot standby, and read replicas are a PostgreSQL \
     feature: set database_url to the primary's postgres:// URL too, or leave \
     database_read_url unset with SQLite"
}

/// Checks the standby every `CHECK_EVERY` until its store is gone.
async fn watch(standby: Weak<Standby>, mut primary_positions: VecDeque<(Instant, u64)>) {
    let mut ticks = tokio::time::interval(CHECK_EVERY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let Some(standby) = standby.upgrade() else {
            return;
        };
        if standby.primary.is_closed() {
            return;
        }
        standby.check(&mut primary_positions).await;
    }
}

impl Standby {
    /// What the last check saw.
    pub fn health(&self) -> StandbyHealth {
        self.health.lock().expect("standby health").clone()
    }

    /// The session of a request by `caller` (a hash of its credentials, if it sent any).
    pub fn session(&self, caller: Option<u64>, writes: bool) -> Session {
        let after = caller
            .and_then(|c| self.callers.lock().expect("callers").get(&c).copied())
            .unwrap_or(0);
        Session { writes, after }
    }

    /// Names a caller by its credentials without keeping them.
    pub fn caller(&self, credentials: &[u8]) -> u64 {
        self.hasher.hash_one(credentials)
    }

    /// Remembers the primary's position after a writing request of `caller`, so that its
    /// next reads wait for the standby to replay it.
    pub async fn wrote(&self, caller: u64) {
        let position = match self.primary_position().await {
            Ok(position) => position,
            Err(e) => {
                // Then the primary is in trouble, and the caller's next read with it.
                tracing::warn!(error = %e, "cannot read the primary's WAL position after a write");
                return;
            }
        };
        let replayed = self.replayed.load(Ordering::Acquire);
        let mut callers = self.callers.lock().expect("callers");
        let last = callers.entry(caller).or_default();
        *last = (*last).max(position);
        if callers.len() > CALLERS_KEPT {
            callers.retain(|_, position| *position > replayed);
        }
    }

    /// Whether a read of `freshness` in the current session may go to the standby.
    async fn serves(&self, freshness: Freshness) -> bool {
        let session = SESSION.try_with(|s| *s);
        let needed = match (freshness, session) {
            (_, Ok(Session { writes: true, .. })) => return self.primary_serves("writer"),
            (Freshness::OwnWrites, Err(_)) => return self.primary_serves("outside_request"),
            _ if !self.serving.load(Ordering::Acquire) => {
                return self.primary_serves("unavailable");
            }
            (Freshness::OwnWrites, Ok(session)) => session.after,
            (Freshness::Committed, _) => match self.primary_position().await {
                Ok(position) => position,
                Err(_) => return self.primary_serves("unavailable"),
            },
        };
        let wait = match freshness {
            Freshness::OwnWrites => Duration::ZERO,
            Freshness::Committed => CATCH_UP_WAIT,
        };
        if self.replayed_past(needed, wait).await {
            true
        } else {
            self.primary_serves("behind")
        }
    }

    fn primary_serves(&self, reason: &'static str) -> bool {
        metrics::counter!("masthead_replica_reads_total", "served_by" => "primary", "reason" => reason)
            .increment(1);
        false
    }

    /// Whether the standby has replayed `needed`, reading its position again (at most every
    /// `POSITION_FRESH`) until `wait` is up.
    async fn replayed_past(&self, needed: u64, wait: Duration) -> bool {
        let until = Instant::now() + wait;
        loop {
            if self.replayed.load(Ordering::Acquire) >= needed {
                return true;
            }
            self.read_replay_position().await;
            if self.replayed.load(Ordering::Acquire) >= needed {
                return true;
            }
            if Instant::now() >= until || !self.serving.load(Ordering::Acquire) {
                return false;
            }
            tokio::time::sleep(POSITION_FRESH).await;
        }
    }

    async fn read_replay_position(&self) {
        let _only_one = self.reading.lock().await;
        let read_at = self.replayed_at.load(Ordering::Acquire);
        if self.micros_now().saturating_sub(read_at) < POSITION_FRESH.as_micros() as u64 {
            return;
        }
        let sql = "SELECT pg_wal_lsn_diff(pg_last_wal_replay_lsn(), '0/0')::bigint";
        let read_at = self.micros_now();
        match tokio::time::timeout(
            CHECK_TIMEOUT,
            sqlx::query_scalar::<_, Option<i64>>(sql).fetch_one(&self.standby),
        )
        .await
        {
            Ok(Ok(Some(position))) => self.replayed_to(position, read_at),
            Ok(Ok(None)) => self.set_health(StandbyHealth::NotAStandby),
            Ok(Err(e)) => self.lost(&e),
            Err(_) => self.set_health(StandbyHealth::Unreachable),
        }
    }

    fn replayed_to(&self, position: i64, read_at: u64) {
        self.replayed
            .fetch_max(u64::try_from(position).unwrap_or(0), Ordering::AcqRel);
        self.replayed_at.store(read_at, Ordering::Release);
    }

    fn micros_now(&self) -> u64 {
        self.epoch.elapsed().as_micros() as u64
    }

    /// The primary's WAL insert position: past the commit of every transaction that has
    /// committed, whatever `synchronous_commit` says.
    async fn primary_position(&self) -> Result<u64, sqlx::Error> {
        let sql = "SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), '0/0')::bigint";
        let position: i64 = sqlx::query_scalar(sql).fetch_one(&self.primary).await?;
        Ok(end_of_record(
            u64::try_from(position).unwrap_or(0),
            self.wal_page,
        ))
    }

    /// A read could not reach the standby: skip it until a check finds it well again.
    fn lost(&self, error: &sqlx::Error) {
        if self.serving.load(Ordering::Acquire) {
            tracing::warn!(error = %error, "the standby did not answer a read");
        }
        self.set_health(StandbyHealth::Unreachable);
    }

    /// Reads the standby's state and the primary's position; the lag is the age of the oldest
    /// primary position (sampled once a check) that the standby has not replayed yet.
    async fn check(&self, primary_positions: &mut VecDeque<(Instant, u64)>) {
        let now = Instant::now();
        if let Ok(position) = self.primary_position().await
            && primary_positions.len() < 10_000
        {
            primary_positions.push_back((now, position));
        }
        let sql = "SELECT pg_is_in_recovery(), \
                   pg_wal_lsn_diff(pg_last_wal_replay_lsn(), '0/0')::bigint";
        let read_at = self.micros_now();
        let seen = tokio::time::timeout(
            CHECK_TIMEOUT,
            sqlx::query_as::<_, (bool, Option<i64>)>(sql).fetch_one(&self.standby),
        )
        .await;
        let health = match seen {
            Ok(Ok((true, Some(position)))) => {
                self.replayed_to(position, read_at);
                let replayed = self.replayed.load(Ordering::Acquire);
                while primary_positions
                    .front()
                    .is_some_and(|(_, p)| *p <= replayed)
                {
                    primary_positions.pop_front();
                }
                let lag = primary_positions
                    .front()
                    .map_or(Duration::ZERO, |(at, _)| now.duration_since(*at));
                if lag <= self.max_lag {
                    StandbyHealth::Replaying { lag }
                } else {
                    StandbyHealth::Lagging {
                        lag,
                        limit: self.max_lag,
                    }
                }
            }
            Ok(Ok(_)) => StandbyHealth::NotAStandby,
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "standby check failed");
                StandbyHealth::Unreachable
            }
            Err(_) => StandbyHealth::Unreachable,
        };
        if let StandbyHealth::Replaying { lag } | StandbyHealth::Lagging { lag, .. } = &health {
            metrics::gauge!("masthead_standby_lag_seconds").set(lag.as_secs_f64());
        }
        self.set_health(health);
    }

    fn set_health(&self, health: StandbyHealth) {
        let serves = health.serves();
        let mut current = self.health.lock().expect("standby health");
        let was = std::mem::discriminant(&*current);
        *current = health;
        if was != std::mem::discriminant(&*current) {
            if serves {
                tracing::info!(standby = %*current, "the standby serves reads");
            } else {
                tracing::warn!(standby = %*current, "the standby is skipped");
            }
        }
        self.serving.store(serves, Ordering::Release);
        metrics::gauge!("masthead_standby_serving").set(if serves { 1.0 } else { 0.0 });
    }
}

#[cfg(test)]
mod tests {
    use super::end_of_record;

    #[test]
    fn an_insert_position_past_a_page_header_ends_at_the_page_boundary() {
        let page = 8_192;
        assert_eq!(end_of_record(3 * page + 24, page), 3 * page);
        assert_eq!(end_of_record(2048 * page + 40, page), 2048 * page);
        assert_eq!(end_of_record(3 * page + 4_000, page), 3 * page + 4_000);
        assert_eq!(end_of_record(3 * page + 48, page), 3 * page + 48);
    }
}
