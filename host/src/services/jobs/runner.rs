//! The runner in every `serve` process: claims jobs (when woken by a local enqueue, and at
//! every poll), runs a bounded number at once, heartbeats their leases, stops them when they
//! are cancelled or taken over, and gives them back at shutdown.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use super::schedule::Schedule;
use super::{Done, JobError, JobKind, Jobs, Stop, Work, lease_until};
use crate::services::ServiceResult;
use crate::services::clock::{Clock, SystemClock};
use crate::store::{Beat, Claim, Ending, Fence, JobRecord};

/// Runs the jobs of the kinds it knows.
#[derive(Clone)]
pub struct Runner {
    jobs: Arc<Jobs>,
    kinds: Arc<HashMap<&'static str, Arc<dyn JobKind>>>,
    schedules: Arc<Vec<Schedule>>,
}

impl Runner {
    pub fn new(jobs: Arc<Jobs>, kinds: Vec<Arc<dyn JobKind>>, schedules: Vec<Schedule>) -> Self {
        Self {
            jobs,
            kinds: Arc::new(kinds.into_iter().map(|k| (k.kind(), k)).collect()),
            schedules: Arc::new(schedules),
        }
    }

    /// Claims and runs jobs until `shutdown` turns true, then stops the running ones, gives
    /// their leases back and returns.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let settings = self.jobs.settings().clone();
        // No slots: a host that only answers the API (it still queues scheduled work).
        let slots = Arc::new(Semaphore::new(settings.concurrency));
        let mut running = JoinSet::new();
        let mut last_schedule = tokio::time::Instant::now() - settings.poll;
        tracing::info!(host = self.jobs.host(), "job runner started");
        loop {
            if *shutdown.borrow() {
                break;
            }
            if last_schedule.elapsed() >= settings.poll.max(Duration::from_secs(1)) {
                for schedule in self.schedules.iter() {
                    schedule.tick(&self.jobs).await;
                }
                last_schedule = tokio::time::Instant::now();
            }
            // Claim while there are free slots and work to take.
            while let Ok(slot) = Arc::clone(&slots).try_acquire_owned() {
                match self.claim(None).await {
                    Ok(Some(job)) => {
                        let this = self.clone();
                        let stop = shutdown.clone();
                        running.spawn(async move {
                            this.execute(job, stop).await;
                            drop(slot);
                        });
                    }
                    Ok(None) => break,
                    Err(e) => {
                        tracing::warn!(error = %e, "could not claim a job");
                        break;
                    }
                }
            }
            while running.try_join_next().is_some() {}
            tokio::select! {
                () = self.jobs.wake.notified() => {}
                () = tokio::time::sleep(settings.poll) => {}
                changed = shutdown.changed() => {
                    // The switch is gone with its owner: nothing will run this host any more.
                    if changed.is_err() {
                        break;
                    }
                }
                Some(_) = running.join_next(), if !running.is_empty() => {}
            }
        }
        // Each running job sees the shutdown through its own receiver and gives its lease back.
        while running.join_next().await.is_some() {}
        tracing::info!(host = self.jobs.host(), "job runner stopped");
    }

    /// Runs one job in this process (a command run by hand): claims it unless another host
    /// already did, then follows it to its end.
    pub async fn run_here(&self, id: i64) -> ServiceResult<JobRecord> {
        let (_keep, stop) = watch::channel(false);
        if let Some(job) = self.claim(Some(id)).await? {
            self.execute(job, stop).await;
        }
        Ok(self
            .jobs
            .wait(id, Duration::from_secs(24 * 3600))
            .await?
            .job)
    }

    async fn claim(&self, only: Option<i64>) -> ServiceResult<Option<JobRecord>> {
        let settings = self.jobs.settings();
        let now = SystemClock.now();
        Ok(self
            .jobs
            .store()
            .claim_job(Claim {
                host: self.jobs.host(),
                now,
                lease_until: lease_until(now, settings.lease),
                max_attempts: settings.max_attempts,
                only,
            })
            .await?)
    }

    /// Runs a claimed job to its end, or until it must stop, and writes how it ended.
    async fn execute(&self, job: JobRecord, mut shutdown: watch::Receiver<bool>) {
        let fence = Fence {
            job: job.id,
            attempt: job.attempts,
            host: self.jobs.host().to_owned(),
        };
        tracing::info!(job = job.id, kind = %job.kind, attempt = job.attempts, "job claimed");
        let work = Work {
            fence: fence.clone(),
            store: Arc::clone(self.jobs.store()),
            lease: self.jobs.settings().lease,
            paced: std::sync::Mutex::new(None),
        };
        // The heartbeat lives and dies with the run: a host that stops running the job stops
        // extending its lease.
        let outcome = match self.kinds.get(job.kind.as_str()) {
            None => Err(JobError::Failed(format!(
                "this host does not know jobs of kind {}",
                job.kind
            ))),
            Some(kind) => tokio::select! {
                outcome = kind.run(&job, &work) => outcome,
                stop = heartbeat(&self.jobs, &fence) => Err(JobError::Stop(stop)),
                _ = shutdown.wait_for(|down| *down) => Err(JobError::Stop(Stop::Shutdown)),
            },
        };
        let ending = match outcome {
            Ok(Done::Result(result)) => Some(Ending::Succeeded(result)),
            Ok(Done::Recorded) | Err(JobError::Stop(Stop::Lost)) => None,
            Err(JobError::Failed(error)) => Some(Ending::Failed(error)),
            Err(JobError::Stop(Stop::Cancelled)) => Some(Ending::Cancelled),
            Err(JobError::Stop(Stop::Shutdown)) => Some(Ending::Released),
        };
        let Some(ending) = ending else {
            tracing::info!(
                job = job.id,
                "job ended (or taken over) with its own writes"
            );
            return;
        };
        let label = match &ending {
            Ending::Succeeded(_) => "succeeded",
            Ending::Failed(_) => "failed",
            Ending::Cancelled => "cancelled",
            Ending::Released => "released",
        };
        match self
            .jobs
            .store()
            .end_job(&fence, &ending, SystemClock.now())
            .await
        {
            Ok(true) => tracing::info!(job = job.id, kind = %job.kind, ending = label, "job ended"),
            Ok(false) => tracing::warn!(
                job = job.id,
                ending = label,
                "job ended here after another host took it over; its ending is not written"
            ),
            Err(e) => tracing::error!(job = job.id, error = %e, "could not record a job's end"),
        }
    }
}

/// Extends the lease every heartbeat; answers when the job must stop: it was cancelled or
/// taken over, or a heartbeat failed and the lease would run out before the next one (when
/// another host may claim the job).
async fn heartbeat(jobs: &Jobs, fence: &Fence) -> Stop {
    let settings = jobs.settings();
    let mut ticks = tokio::time::interval(settings.heartbeat);
    // A slow beat delays the next one; it does not bring a burst of catching up.
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.tick().await;
    // When the lease last ran from: the claim, then each beat that held, timed from before it
    // was sent (the lease it asked for runs from then, however long its answer took).
    let mut extended = tokio::time::Instant::now();
    loop {
        ticks.tick().await;
        let sent = tokio::time::Instant::now();
        let now = SystemClock.now();
        match jobs
            .store()
            .beat_job(fence, None, now, lease_until(now, settings.lease))
            .await
        {
            Ok(Beat::Held {
                cancel_requested: false,
            }) => extended = sent,
            Ok(Beat::Held {
                cancel_requested: true,
            }) => return Stop::Cancelled,
            Ok(Beat::Lost) => {
                tracing::warn!(
                    job = fence.job,
                    "lost the lease of a running job; stopping it"
                );
                return Stop::Lost;
            }
            Err(e) => {
                tracing::warn!(job = fence.job, error = %e, "could not extend a lease");
                if extended.elapsed() + settings.heartbeat >= settings.lease {
                    tracing::warn!(
                        job = fence.job,
                        "the lease runs out before the next heartbeat; stopping"
                    );
                    return Stop::Lost;
                }
            }
        }
    }
}
