//! Jobs in storage: one table for every piece of background work, leased by hosts through the
//! database, with a row per claim.
//!
//! A host claims a queued job, or a running one whose lease ran out, and holds it by
//! heartbeats. The claim's number (`attempts` at the time) is the fencing token: every later
//! write of that host names it, and changes nothing once another host has claimed the job.
//! On PostgreSQL the claim skips rows other hosts are claiming (`FOR UPDATE SKIP LOCKED`); on
//! SQLite the single writer connection serialises claims. `sql.rs` holds the SQL both
//! backends run.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::StoreResult;

/// Where a job stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

impl JobState {
    /// Succeeded, failed or cancelled: nothing will change it again.
    pub fn is_finished(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::Cancelled)
    }
}

/// A job to queue.
#[derive(Debug, Clone)]
pub struct NewJob {
    pub kind: String,
    /// What it works on, e.g. `segment:12`; empty for the whole readership. One job of a kind
    /// per subject is queued or running at a time.
    pub subject: String,
    /// The period of a scheduled run: one job per kind, subject and period, ever.
    pub period: Option<String>,
    pub arguments: serde_json::Value,
    pub total: Option<i64>,
    pub created_by: String,
    pub at: DateTime<Utc>,
}

/// A job as stored.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct JobRecord {
    pub id: i64,
    /// `segment_refresh`, `club_recompute`, `auto_renewal` or `import`.
    pub kind: String,
    /// What it works on, e.g. `segment:12`; empty for the whole readership.
    pub subject: String,
    /// The period of a scheduled run, e.g. `2026-12-02`.
    pub period: Option<String>,
    #[schema(value_type = Object)]
    pub arguments: serde_json::Value,
    pub state: JobState,
    /// Items done in the current attempt.
    pub processed: i64,
    pub total: Option<i64>,
    /// Claims so far (a host that stopped mid-way makes a second one).
    pub attempts: i64,
    /// The host holding the lease while it runs.
    pub lease_host: Option<String>,
    pub lease_expires_at: Option<DateTime<Utc>>,
    pub heartbeat_at: Option<DateTime<Utc>>,
    /// Someone asked it to stop; it stops at its next progress write or heartbeat.
    pub cancel_requested: bool,
    /// What it did, when it succeeded.
    #[schema(value_type = Option<Object>)]
    pub result: Option<serde_json::Value>,
    pub error: Option<String>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
}

/// One claim of a job by a host.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct JobRun {
    pub attempt: i64,
    pub host: String,
    pub claimed_at: DateTime<Utc>,
    pub last_heartbeat_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
    /// `succeeded`, `failed`, `cancelled`, `released` (its host shut down) or `lapsed`
    /// (its host stopped heartbeating and another took the job over); null while it runs.
    pub outcome: Option<String>,
}

/// The claim a host holds: every write it makes for the job names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fence {
    pub job: i64,
    pub attempt: i64,
    pub host: String,
}

/// What a heartbeat found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Beat {
    /// The lease is extended; someone may have asked the job to stop.
    Held { cancel_requested: bool },
    /// Another host took the job over, or it ended: this host must stop.
    Lost,
}

/// A claim request: who claims, when, and until when the lease holds.
#[derive(Debug, Clone)]
pub struct Claim<'a> {
    pub host: &'a str,
    pub now: DateTime<Utc>,
    pub lease_until: DateTime<Utc>,
    /// A job claimed this many times already is failed instead of claimed again.
    pub max_attempts: i64,
    /// Only this job (a command running one job in its own process).
    pub only: Option<i64>,
}

/// How a job ended, as its holder writes it.
#[derive(Debug, Clone)]
pub enum Ending {
    Succeeded(serde_json::Value),
    Failed(String),
    Cancelled,
    /// Given back at shutdown, to be claimed again.
    Released,
}

/// Which jobs to list, newest first.
#[derive(Debug, Clone, Default)]
pub struct JobFilter {
    pub kind: Option<String>,
    pub subject: Option<String>,
    pub state: Option<JobState>,
    /// Only jobs with a smaller id (the page after the one that ended there).
    pub before: Option<i64>,
    pub limit: i64,
}

/// Jobs: queueing, claims, heartbeats, endings and cancellation.
#[async_trait]
pub trait JobStore: Send + Sync {
    /// Queues a job; one of the same kind and subject already queued or running is a conflict.
    async fn enqueue_job(&self, new: NewJob) -> StoreResult<JobRecord>;
    /// Queues a scheduled job unless its period (or the subject) already has one; `None` then.
    async fn enqueue_job_once(&self, new: NewJob) -> StoreResult<Option<JobRecord>>;
    /// Claims the oldest queued job, or a running one whose lease ran out (ending that run as
    /// `lapsed`), and records the claim.
    async fn claim_job(&self, claim: Claim<'_>) -> StoreResult<Option<JobRecord>>;
    /// Extends the lease and records progress, if the fence still holds.
    async fn beat_job(
        &self,
        fence: &Fence,
        processed: Option<i64>,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> StoreResult<Beat>;
    /// Writes the ending if the fence still holds; answers whether it did.
    async fn end_job(
        &self,
        fence: &Fence,
        ending: &Ending,
        now: DateTime<Utc>,
    ) -> StoreResult<bool>;
    /// Cancels a queued job at once, or asks a running one to stop. A finished job is a
    /// conflict; an unknown one `NotFound`.
    async fn cancel_job(&self, id: i64, now: DateTime<Utc>) -> StoreResult<JobRecord>;
    async fn get_job(&self, id: i64) -> StoreResult<Option<JobRecord>>;
    async fn list_jobs(&self, filter: &JobFilter) -> StoreResult<Vec<JobRecord>>;
    /// Every claim of the job, oldest first.
    async fn job_runs(&self, id: i64) -> StoreResult<Vec<JobRun>>;
}

/// The longest error text kept; the rest is cut, saying how much.
const MAX_ERROR_BYTES: usize = 4096;

/// The error text as kept: at most `MAX_ERROR_BYTES`, cut on a character boundary.
pub fn capped(text: &str) -> String {
    if text.len() <= MAX_ERROR_BYTES {
        return text.to_owned();
    }
    let mut end = MAX_ERROR_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{} ... ({} bytes cut)", &text[..end], text.len() - end)
}
