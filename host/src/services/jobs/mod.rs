//! Background work as rows of one jobs table: queued by any host, claimed and run by the
//! runner in every `serve` process, followed and cancelled through the API and the CLI.
//!
//! A kind of job (`JobKind`) is written by the service that owns the work; it gets a `Work`
//! handle whose progress writes hold the lease and tell it when to stop. Leases are measured
//! by the hosts' real clocks (kept in step by NTP), never by the service clock tests fix.

mod runner;
mod schedule;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::sync::Notify;
use utoipa::ToSchema;

use super::clock::{Clock, SystemClock};
use super::{ServiceError, ServiceResult};
use crate::store::{
    Beat, Fence, JobFilter, JobRecord, JobRun, JobState, NewJob, Store, StoreError,
};
pub use runner::Runner;
pub use schedule::{Recurring, Schedule, period};

/// How the runner of each host works: set from `[jobs]` in the configuration.
#[derive(Debug, Clone)]
pub struct JobSettings {
    /// Jobs one host runs at once; 0 for a host that only answers the API.
    pub concurrency: usize,
    /// How often an idle host looks for work (it also wakes when it queues a job itself).
    pub poll: Duration,
    /// How often a running job's host extends its lease.
    pub heartbeat: Duration,
    /// How long a lease holds without a heartbeat; then another host takes the job over.
    pub lease: Duration,
    /// Claims after which a job whose hosts keep stopping is failed.
    pub max_attempts: i64,
}

impl Default for JobSettings {
    fn default() -> Self {
        Self {
            concurrency: 2,
            poll: Duration::from_secs(1),
            heartbeat: Duration::from_secs(5),
            lease: Duration::from_secs(15),
            max_attempts: 5,
        }
    }
}

/// Why a running job must stop before it is done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// Someone cancelled it.
    Cancelled,
    /// Another host holds it now (this one was presumed dead): write nothing more.
    Lost,
    /// This host is shutting down: give the job back.
    Shutdown,
}

/// How a job's run ended, as its kind reports it.
#[derive(Debug)]
pub enum Done {
    /// Succeeded with this result, for the runner to write.
    Result(serde_json::Value),
    /// Succeeded, and the kind wrote the ending itself, with its own writes, in one
    /// transaction under the fence.
    Recorded,
}

#[derive(Debug)]
pub enum JobError {
    Stop(Stop),
    Failed(String),
}

impl From<Stop> for JobError {
    fn from(stop: Stop) -> Self {
        Self::Stop(stop)
    }
}

impl From<StoreError> for JobError {
    fn from(e: StoreError) -> Self {
        match e {
            // A refused write is how a host learns it was presumed dead: it stops, quietly.
            StoreError::Fenced(_) => Self::Stop(Stop::Lost),
            other => Self::Failed(other.to_string()),
        }
    }
}

impl From<ServiceError> for JobError {
    fn from(e: ServiceError) -> Self {
        Self::Failed(match e {
            ServiceError::Invalid(errors) => format!("invalid: {errors:?}"),
            other => other.to_string(),
        })
    }
}

/// One kind of background work.
#[async_trait]
pub trait JobKind: Send + Sync {
    /// The `kind` its jobs are stored with.
    fn kind(&self) -> &'static str;
    /// Runs the job from the start; a run that was stopped mid-way is started again from
    /// scratch, so it must be safe to restart.
    async fn run(&self, job: &JobRecord, work: &Work) -> Result<Done, JobError>;
}

/// Progress is written at most this often by [`Work::progress_paced`].
const PROGRESS_EVERY: Duration = Duration::from_millis(250);

/// What a running job holds: its fence, and the way to report progress.
pub struct Work {
    fence: Fence,
    store: Arc<dyn Store>,
    lease: Duration,
    /// When [`Work::progress_paced`] last wrote.
    paced: Mutex<Option<Instant>>,
}

impl Work {
    /// The claim this host holds; fenced writes name it.
    pub fn fence(&self) -> &Fence {
        &self.fence
    }

    /// Like [`Work::progress`], but written only when the last paced write is at least
    /// `PROGRESS_EVERY` old: for a job that would otherwise write after every small step.
    /// The job writes its last figure with `progress` when it ends.
    pub async fn progress_paced(&self, processed: i64) -> Result<(), Stop> {
        {
            let mut paced = self.paced.lock().unwrap_or_else(|e| e.into_inner());
            if paced.is_some_and(|at| at.elapsed() < PROGRESS_EVERY) {
                return Ok(());
            }
            *paced = Some(Instant::now());
        }
        self.progress(processed).await
    }

    /// Records how many items are done, extending the lease; tells the job to stop when it
    /// was cancelled or taken over.
    pub async fn progress(&self, processed: i64) -> Result<(), Stop> {
        let now = SystemClock.now();
        match self
            .store
            .beat_job(
                &self.fence,
                Some(processed),
                now,
                lease_until(now, self.lease),
            )
            .await
        {
            Ok(Beat::Held {
                cancel_requested: false,
            }) => Ok(()),
            Ok(Beat::Held {
                cancel_requested: true,
            }) => Err(Stop::Cancelled),
            Ok(Beat::Lost) => Err(Stop::Lost),
            Err(e) => {
                // The heartbeat keeps the lease; a lost progress write only delays the figure.
                tracing::warn!(job = self.fence.job, error = %e, "could not record job progress");
                Ok(())
            }
        }
    }
}

fn lease_until(now: DateTime<Utc>, lease: Duration) -> DateTime<Utc> {
    now + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::seconds(15))
}

/// A job with every claim made of it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct JobView {
    #[serde(flatten)]
    pub job: JobRecord,
    /// Every claim, oldest first: which host ran it, from when until when, and how it ended.
    pub runs: Vec<JobRun>,
}

/// Queueing, reading, following and cancelling jobs.
pub struct Jobs {
    store: Arc<dyn Store>,
    /// Real time, for leases and the jobs' own timestamps.
    wall: SystemClock,
    host: String,
    wake: Notify,
    settings: JobSettings,
}

impl Jobs {
    pub fn new(store: Arc<dyn Store>, settings: JobSettings) -> Self {
        Self {
            store,
            wall: SystemClock,
            host: host_id(),
            wake: Notify::new(),
            settings,
        }
    }

    /// This process's name in leases: the machine, the process id and a random tail, so a
    /// restarted process never passes for the one before it.
    pub fn host(&self) -> &str {
        &self.host
    }

    pub fn settings(&self) -> &JobSettings {
        &self.settings
    }

    pub(crate) fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Queues a job and wakes this host's runner; one of the same kind and subject queued or
    /// running already is a conflict.
    pub async fn enqueue(&self, new: NewJob) -> ServiceResult<JobRecord> {
        self.enqueue_with(
            new,
            |store, new| async move { store.enqueue_job(new).await },
        )
        .await
    }

    /// Queues a job through `queue`, which stores it with what it needs in one transaction
    /// (an import's file); otherwise as `enqueue`.
    pub async fn enqueue_with<F, Queued>(
        &self,
        mut new: NewJob,
        queue: F,
    ) -> ServiceResult<JobRecord>
    where
        F: FnOnce(Arc<dyn Store>, NewJob) -> Queued,
        Queued: Future<Output = Result<JobRecord, StoreError>>,
    {
        new.at = self.wall.now();
        let job = queue(Arc::clone(&self.store), new)
            .await
            .map_err(|e| match e {
                StoreError::Conflict(detail) => ServiceError::Conflict(detail),
                other => other.into(),
            })?;
        self.wake.notify_one();
        Ok(job)
    }

    /// The job of a kind queued or running about the subject, if there is one.
    pub async fn active(&self, kind: &str, subject: &str) -> ServiceResult<Option<JobRecord>> {
        Ok(self
            .of_subject(kind, subject, 5)
            .await?
            .into_iter()
            .find(|job| !job.state.is_finished()))
    }

    /// Queues a scheduled job unless its period has one; `None` then.
    pub async fn enqueue_once(&self, mut new: NewJob) -> ServiceResult<Option<JobRecord>> {
        new.at = self.wall.now();
        let job = self.store.enqueue_job_once(new).await?;
        if job.is_some() {
            self.wake.notify_one();
        }
        Ok(job)
    }

    pub async fn get(&self, id: i64) -> ServiceResult<JobView> {
        let job = self.find(id).await?;
        let runs = self.store.job_runs(id).await?;
        Ok(JobView { job, runs })
    }

    /// The job once it has finished, or as it stands after `wait`, whichever comes first.
    pub async fn wait(&self, id: i64, wait: Duration) -> ServiceResult<JobView> {
        let until = tokio::time::Instant::now() + wait;
        loop {
            let job = self.find(id).await?;
            if job.state.is_finished() || tokio::time::Instant::now() >= until {
                let runs = self.store.job_runs(id).await?;
                return Ok(JobView { job, runs });
            }
            tokio::time::sleep_until(until.min(tokio::time::Instant::now() + POLL_WAIT)).await;
        }
    }

    /// Newest first.
    pub async fn list(&self, filter: &JobFilter) -> ServiceResult<Vec<JobRecord>> {
        Ok(self.store.list_jobs(filter).await?)
    }

    /// The latest jobs of a kind about one subject, newest first.
    pub async fn of_subject(
        &self,
        kind: &str,
        subject: &str,
        limit: i64,
    ) -> ServiceResult<Vec<JobRecord>> {
        self.list(&JobFilter {
            kind: Some(kind.to_owned()),
            subject: Some(subject.to_owned()),
            limit,
            ..JobFilter::default()
        })
        .await
    }

    /// Cancels a queued job at once; a running one stops at its next progress write or
    /// heartbeat. A finished job is a conflict.
    pub async fn cancel(&self, id: i64) -> ServiceResult<JobRecord> {
        match self.store.cancel_job(id, self.wall.now()).await {
            Ok(job) => Ok(job),
            Err(StoreError::NotFound) => Err(not_found(id)),
            Err(StoreError::Conflict(detail)) => Err(ServiceError::Conflict(detail)),
            Err(e) => Err(e.into()),
        }
    }

    /// Cancels whatever job of the kind is queued or running about the subject.
    pub async fn cancel_subject(&self, kind: &str, subject: &str) -> ServiceResult<()> {
        if let Some(job) = self.active(kind, subject).await? {
            match self.cancel(job.id).await {
                Ok(_) | Err(ServiceError::Conflict(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    async fn find(&self, id: i64) -> ServiceResult<JobRecord> {
        self.store.get_job(id).await?.ok_or_else(|| not_found(id))
    }
}

/// How often a follower reads a job it waits for.
const POLL_WAIT: Duration = Duration::from_millis(200);

fn not_found(id: i64) -> ServiceError {
    ServiceError::NotFound(format!("there is no job {id}"))
}

/// The API's link to a job.
pub fn link(id: i64) -> String {
    format!("/api/v1/jobs/{id}")
}

/// A state as the older job records of refreshes and recomputations name it: `running`
/// (queued or running), `done`, `failed` or `cancelled`.
pub fn legacy_state(state: JobState) -> &'static str {
    match state {
        JobState::Queued | JobState::Running => "running",
        JobState::Succeeded => "done",
        JobState::Failed => "failed",
        JobState::Cancelled => "cancelled",
    }
}

fn host_id() -> String {
    let machine = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "host".to_owned());
    let tail = uuid::Uuid::new_v4().simple().to_string();
    format!("{machine}:{}:{}", std::process::id(), &tail[..8])
}
