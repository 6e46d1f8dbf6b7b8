//! Recurring work the service schedules itself: once a day, from a time of day (UTC), each
//! host queues the day's jobs; the jobs table keeps one per kind, subject and day, so the
//! hosts that come second queue nothing and each period runs exactly once.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{NaiveDate, NaiveTime};

use super::Jobs;
use crate::services::ServiceResult;
use crate::services::clock::Clock;
use crate::store::NewJob;

/// Work that recurs daily: the jobs of one day.
#[async_trait]
pub trait Recurring: Send + Sync {
    /// What the schedule is called in logs.
    fn name(&self) -> &'static str;
    /// The jobs of `day`, each with `period` set to the day.
    async fn due(&self, day: NaiveDate) -> ServiceResult<Vec<NewJob>>;
}

/// A daily schedule: from `at` each day, the day's jobs are queued once across all hosts.
pub struct Schedule {
    work: Arc<dyn Recurring>,
    at: NaiveTime,
    clock: Arc<dyn Clock>,
    /// The last day this host queued (or found queued) the jobs of.
    done: Mutex<Option<NaiveDate>>,
}

impl Schedule {
    pub fn daily(work: Arc<dyn Recurring>, at: NaiveTime, clock: Arc<dyn Clock>) -> Self {
        Self {
            work,
            at,
            clock,
            done: Mutex::new(None),
        }
    }

    /// Queues today's jobs if their time has come and this host has not queued them yet.
    pub(super) async fn tick(&self, jobs: &Jobs) {
        let now = self.clock.now();
        let today = now.date_naive();
        if now.time() < self.at || self.done.lock().is_ok_and(|d| *d == Some(today)) {
            return;
        }
        match self.queue(jobs, today).await {
            Ok(queued) => {
                if let Ok(mut done) = self.done.lock() {
                    *done = Some(today);
                }
                if queued > 0 {
                    tracing::info!(schedule = self.work.name(), day = %today, queued,
                        "scheduled jobs queued");
                }
            }
            Err(e) => tracing::warn!(schedule = self.work.name(), error = %e,
                "could not queue scheduled jobs; trying again at the next poll"),
        }
    }

    async fn queue(&self, jobs: &Jobs, day: NaiveDate) -> ServiceResult<usize> {
        let mut queued = 0;
        for job in self.work.due(day).await? {
            if jobs.enqueue_once(job).await?.is_some() {
                queued += 1;
            }
        }
        Ok(queued)
    }
}

/// The period a daily job is stored with.
pub fn period(day: NaiveDate) -> String {
    day.format("%Y-%m-%d").to_string()
}
