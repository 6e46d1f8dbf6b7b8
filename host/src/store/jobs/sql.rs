//! Jobs in storage: the SQL of claims, heartbeats and endings, and the fenced ending and
//! lease check other resources' transactions call (a refresh's members, a recomputation's
//! tiers land only while their job's claim holds).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::FromRow;

use super::{Connection, Db};
use crate::store::backend::{Backend, SqlStore, enum_text, parse_enum};
use crate::store::{
    Beat, Claim, Ending, Fence, JobFilter, JobRecord, JobRun, JobStore, NewJob, StoreError,
    StoreResult, capped,
};

const JOB_COLUMNS: &str = "id, kind, subject, period, arguments, state, processed, total, \
     attempts, lease_host, lease_expires_at, heartbeat_at, cancel_requested, result, error, \
     created_by, created_at, started_at, finished_at, updated_at";

#[derive(FromRow)]
struct JobRow {
    id: i64,
    kind: String,
    subject: String,
    period: Option<String>,
    arguments: String,
    state: String,
    processed: i64,
    total: Option<i64>,
    attempts: i64,
    lease_host: Option<String>,
    lease_expires_at: Option<DateTime<Utc>>,
    heartbeat_at: Option<DateTime<Utc>>,
    cancel_requested: bool,
    result: Option<String>,
    error: Option<String>,
    created_by: String,
    created_at: DateTime<Utc>,
    started_at: Option<DateTime<Utc>>,
    finished_at: Option<DateTime<Utc>>,
    updated_at: DateTime<Utc>,
}

impl TryFrom<JobRow> for JobRecord {
    type Error = StoreError;

    fn try_from(r: JobRow) -> StoreResult<Self> {
        let json = |text: &str| {
            serde_json::from_str(text)
                .map_err(|e| StoreError::Corrupt(format!("job {}: {e}", r.id)))
        };
        Ok(Self {
            id: r.id,
            arguments: json(&r.arguments)?,
            result: r.result.as_deref().map(json).transpose()?,
            state: parse_enum(&r.state)?,
            kind: r.kind,
            subject: r.subject,
            period: r.period,
            processed: r.processed,
            total: r.total,
            attempts: r.attempts,
            lease_host: r.lease_host,
            lease_expires_at: r.lease_expires_at,
            heartbeat_at: r.heartbeat_at,
            cancel_requested: r.cancel_requested,
            error: r.error,
            created_by: r.created_by,
            created_at: r.created_at,
            started_at: r.started_at,
            finished_at: r.finished_at,
            updated_at: r.updated_at,
        })
    }
}

#[derive(FromRow)]
struct RunRow {
    attempt: i64,
    host: String,
    claimed_at: DateTime<Utc>,
    last_heartbeat_at: DateTime<Utc>,
    ended_at: Option<DateTime<Utc>>,
    outcome: Option<String>,
}

impl From<RunRow> for JobRun {
    fn from(r: RunRow) -> Self {
        Self {
            attempt: r.attempt,
            host: r.host,
            claimed_at: r.claimed_at,
            last_heartbeat_at: r.last_heartbeat_at,
            ended_at: r.ended_at,
            outcome: r.outcome,
        }
    }
}

#[async_trait]
impl JobStore for SqlStore<Db> {
    #[tracing::instrument(level = "debug", skip_all)]
    async fn enqueue_job(&self, new: NewJob) -> StoreResult<JobRecord> {
        let mut conn = self.write.acquire().await?;
        enqueue_in(&mut conn, &new).await
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn enqueue_job_once(&self, new: NewJob) -> StoreResult<Option<JobRecord>> {
        let sql = insert_sql(" ON CONFLICT DO NOTHING");
        let row: Option<JobRow> = bind_new(sqlx::query_as(&sql), &new)
            .fetch_optional(&self.write)
            .await?;
        row.map(TryInto::try_into).transpose()
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn claim_job(&self, claim: Claim<'_>) -> StoreResult<Option<JobRecord>> {
        let mut tx = self.write.begin().await?;
        // A job whose hosts keep stopping is not handed to another one forever.
        sqlx::query(
            "UPDATE jobs SET state = 'failed', finished_at = $1, updated_at = $1, \
             lease_host = NULL, lease_expires_at = NULL, \
             error = 'abandoned: its host stopped during every attempt' \
             WHERE state = 'running' AND lease_expires_at < $1 AND attempts >= $2",
        )
        .bind(claim.now)
        .bind(claim.max_attempts)
        .execute(&mut *tx)
        .await?;
        // Rows another host is claiming right now are skipped rather than waited for.
        let skip = if Db::LOCK_ROW.is_empty() {
            String::new()
        } else {
            format!("{} SKIP LOCKED", Db::LOCK_ROW)
        };
        let only = if claim.only.is_some() {
            "AND id = $5"
        } else {
            "AND $5 IS NULL"
        };
        let sql = format!(
            "UPDATE jobs SET state = 'running', attempts = attempts + 1, lease_host = $1, \
             lease_expires_at = $3, heartbeat_at = $2, processed = 0, \
             started_at = COALESCE(started_at, $2), updated_at = $2 \
             WHERE id = (SELECT id FROM jobs WHERE (state = 'queued' \
                 OR (state = 'running' AND lease_expires_at < $2 AND attempts < $4)) {only} \
                 ORDER BY id LIMIT 1{skip}) \
             RETURNING {JOB_COLUMNS}"
        );
        let row: Option<JobRow> = sqlx::query_as(&sql)
            .bind(claim.host)
            .bind(claim.now)
            .bind(claim.lease_until)
            .bind(claim.max_attempts)
            .bind(claim.only)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(row) = row else {
            tx.commit().await?;
            return Ok(None);
        };
        sqlx::query(
            "UPDATE job_runs SET ended_at = $2, outcome = 'lapsed' \
             WHERE job_id = $1 AND ended_at IS NULL",
        )
        .bind(row.id)
        .bind(claim.now)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO job_runs (job_id, attempt, host, claimed_at, last_heartbeat_at) \
             VALUES ($1, $2, $3, $4, $4)",
        )
        .bind(row.id)
        .bind(row.attempts)
        .bind(claim.host)
        .bind(claim.now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        row.try_into().map(Some)
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn beat_job(
        &self,
        fence: &Fence,
        processed: Option<i64>,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> StoreResult<Beat> {
        let mut tx = self.write.begin().await?;
        let cancel: Option<bool> = sqlx::query_scalar(
            "UPDATE jobs SET lease_expires_at = $4, heartbeat_at = $5, updated_at = $5, \
             processed = COALESCE($6, processed) \
             WHERE id = $1 AND attempts = $2 AND lease_host = $3 AND state = 'running' \
             RETURNING cancel_requested",
        )
        .bind(fence.job)
        .bind(fence.attempt)
        .bind(fence.host.as_str())
        .bind(lease_until)
        .bind(now)
        .bind(processed)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(cancel_requested) = cancel else {
            tx.commit().await?;
            return Ok(Beat::Lost);
        };
        sqlx::query(
            "UPDATE job_runs SET last_heartbeat_at = $3 WHERE job_id = $1 AND attempt = $2",
        )
        .bind(fence.job)
        .bind(fence.attempt)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Beat::Held { cancel_requested })
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn end_job(
        &self,
        fence: &Fence,
        ending: &Ending,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let mut tx = self.write.begin().await?;
        let ended = end_in(&mut tx, fence, ending, now).await?;
        tx.commit().await?;
        Ok(ended)
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn cancel_job(&self, id: i64, now: DateTime<Utc>) -> StoreResult<JobRecord> {
        let sql = format!(
            "UPDATE jobs SET cancel_requested = TRUE, updated_at = $2, \
             state = CASE state WHEN 'queued' THEN 'cancelled' ELSE state END, \
             finished_at = CASE state WHEN 'queued' THEN $2 ELSE finished_at END \
             WHERE id = $1 AND state IN ('queued', 'running') RETURNING {JOB_COLUMNS}"
        );
        let row: Option<JobRow> = sqlx::query_as(&sql)
            .bind(id)
            .bind(now)
            .fetch_optional(&self.write)
            .await?;
        match row {
            Some(row) => row.try_into(),
            None => match self.get_job(id).await? {
                Some(job) => Err(StoreError::Conflict(format!(
                    "job {id} has {} already; there is nothing to cancel",
                    enum_text(&job.state)
                ))),
                None => Err(StoreError::NotFound),
            },
        }
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn get_job(&self, id: i64) -> StoreResult<Option<JobRecord>> {
        let sql = format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = $1");
        let row: Option<JobRow> = sqlx::query_as(&sql)
            .bind(id)
            .fetch_optional(&self.read)
            .await?;
        row.map(TryInto::try_into).transpose()
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn list_jobs(&self, filter: &JobFilter) -> StoreResult<Vec<JobRecord>> {
        let sql = format!(
            "SELECT {JOB_COLUMNS} FROM jobs WHERE ($1 IS NULL OR kind = $1) \
             AND ($2 IS NULL OR subject = $2) AND ($3 IS NULL OR state = $3) \
             AND ($4 IS NULL OR id < $4) ORDER BY id DESC LIMIT $5"
        );
        let rows: Vec<JobRow> = sqlx::query_as(&sql)
            .bind(filter.kind.clone())
            .bind(filter.subject.clone())
            .bind(filter.state.map(|s| enum_text(&s)))
            .bind(filter.before)
            .bind(filter.limit)
            .fetch_all(&self.read)
            .await?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn job_runs(&self, id: i64) -> StoreResult<Vec<JobRun>> {
        let rows: Vec<RunRow> = sqlx::query_as(
            "SELECT attempt, host, claimed_at, last_heartbeat_at, ended_at, outcome \
             FROM job_runs WHERE job_id = $1 ORDER BY attempt",
        )
        .bind(id)
        .fetch_all(&self.read)
        .await?;
        Ok(rows.into_iter().map(Into::into).collect())
    }
}

/// Queues a job inside the caller's transaction, so that what the job needs (an import's
/// file) lands with it; one of the same kind and subject queued or running is a conflict.
pub(super) async fn enqueue_in(conn: &mut Connection, new: &NewJob) -> StoreResult<JobRecord> {
    let sql = insert_sql("");
    let row: JobRow = bind_new(sqlx::query_as(&sql), new)
        .fetch_one(&mut *conn)
        .await
        .map_err(|e| match StoreError::from(e) {
            StoreError::Conflict(_) => StoreError::Conflict(format!(
                "a {} job for this is already queued or running; wait for it to finish",
                new.kind
            )),
            other => other,
        })?;
    row.try_into()
}

fn insert_sql(on_conflict: &str) -> String {
    format!(
        "INSERT INTO jobs (kind, subject, period, arguments, state, total, created_by, \
         created_at, updated_at) VALUES ($1, $2, $3, $4, 'queued', $5, $6, $7, $7)\
         {on_conflict} RETURNING {JOB_COLUMNS}"
    )
}

fn bind_new<'q, O>(
    query: sqlx::query::QueryAs<'q, Db, O, <Db as sqlx::Database>::Arguments<'q>>,
    new: &NewJob,
) -> sqlx::query::QueryAs<'q, Db, O, <Db as sqlx::Database>::Arguments<'q>> {
    query
        .bind(new.kind.clone())
        .bind(new.subject.clone())
        .bind(new.period.clone())
        .bind(new.arguments.to_string())
        .bind(new.total)
        .bind(new.created_by.clone())
        .bind(new.at)
}

/// Writes the ending inside the caller's transaction if the fence still holds, so that the
/// job's own writes in that transaction land only with it. The checking update locks the
/// job's row until the transaction ends: no other host can claim it in between.
pub(super) async fn end_in(
    conn: &mut Connection,
    fence: &Fence,
    ending: &Ending,
    now: DateTime<Utc>,
) -> StoreResult<bool> {
    let (state, outcome, result, error) = match ending {
        Ending::Succeeded(result) => ("succeeded", "succeeded", Some(result.to_string()), None),
        Ending::Failed(error) => ("failed", "failed", None, Some(capped(error))),
        Ending::Cancelled => ("cancelled", "cancelled", None, None),
        Ending::Released => ("queued", "released", None, None),
    };
    let finished = if matches!(ending, Ending::Released) {
        "NULL"
    } else {
        "$4"
    };
    let sql = format!(
        "UPDATE jobs SET state = $5, result = $6, error = $7, finished_at = {finished}, \
         updated_at = $4, lease_host = NULL, lease_expires_at = NULL \
         WHERE id = $1 AND attempts = $2 AND lease_host = $3 AND state = 'running' RETURNING id"
    );
    let done: Option<i64> = sqlx::query_scalar(&sql)
        .bind(fence.job)
        .bind(fence.attempt)
        .bind(fence.host.as_str())
        .bind(now)
        .bind(state)
        .bind(result)
        .bind(error)
        .fetch_optional(&mut *conn)
        .await?;
    if done.is_none() {
        return Ok(false);
    }
    sqlx::query(
        "UPDATE job_runs SET ended_at = $3, last_heartbeat_at = $3, outcome = $4 \
         WHERE job_id = $1 AND attempt = $2",
    )
    .bind(fence.job)
    .bind(fence.attempt)
    .bind(now)
    .bind(outcome)
    .execute(&mut *conn)
    .await?;
    Ok(true)
}

/// Whether the fence still holds, checked inside the caller's transaction; the checking update
/// locks the job's row until the transaction ends, so the caller's writes land only while
/// this host holds the job.
pub(super) async fn hold_in(conn: &mut Connection, fence: &Fence) -> StoreResult<bool> {
    let held: Option<i64> = sqlx::query_scalar(
        "UPDATE jobs SET attempts = attempts \
         WHERE id = $1 AND attempts = $2 AND lease_host = $3 AND state = 'running' RETURNING id",
    )
    .bind(fence.job)
    .bind(fence.attempt)
    .bind(fence.host.as_str())
    .fetch_optional(&mut *conn)
    .await?;
    Ok(held.is_some())
}

/// Refuses the caller's writes (`StoreError::Fenced`) unless the fence holds; see `hold_in`.
pub(super) async fn fenced_in(conn: &mut Connection, fence: &Fence) -> StoreResult<()> {
    if hold_in(conn, fence).await? {
        Ok(())
    } else {
        Err(StoreError::Fenced(fence.job))
    }
}
