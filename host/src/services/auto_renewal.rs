//! The auto-renewal as a job: scheduled by the service once a day across all hosts, and
//! queued on demand (`POST /api/v1/renewals/auto`, `masthead renew-due`), renewing every
//! auto-renew term that is due. One runs at a time: a request while one is queued or running
//! follows that one. Restarting it is safe: each renewal is an order keyed by the term it
//! continues, so a term is never renewed twice.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::NaiveDate;
use serde_json::json;

use super::clock::Clock;
use super::jobs::{self, Done, JobError, JobKind, Jobs, Recurring, Runner, Work};
use super::renewals::{AutoRenewReport, Circulation};
use super::{ServiceError, ServiceResult};
use crate::domain::Role;
use crate::store::{Actor, JobRecord, JobState, NewJob};

/// The kind of an auto-renewal job.
pub const AUTO_RENEWAL: &str = "auto_renewal";

pub struct AutoRenewals {
    circulation: Arc<Circulation>,
    jobs: Arc<Jobs>,
    clock: Arc<dyn Clock>,
    /// Terms ending within this many days are renewed.
    days: u32,
}

impl AutoRenewals {
    pub fn new(
        circulation: Arc<Circulation>,
        jobs: Arc<Jobs>,
        clock: Arc<dyn Clock>,
        days: u32,
    ) -> Self {
        Self {
            circulation,
            jobs,
            clock,
            days,
        }
    }

    /// Queues an auto-renewal of the terms ending within `days`, or, when one is queued or
    /// running already (scheduled or asked for), answers that one: it renews what is due.
    pub async fn start(&self, actor: &Actor, days: u32) -> ServiceResult<JobRecord> {
        if let Some(job) = self.jobs.active(AUTO_RENEWAL, "").await? {
            return Ok(job);
        }
        let new = NewJob {
            kind: AUTO_RENEWAL.to_owned(),
            subject: String::new(),
            period: None,
            arguments: json!({ "days": days, "key_id": actor.key_id }),
            total: None,
            created_by: actor.name.clone(),
            at: self.clock.now(),
        };
        match self.jobs.enqueue(new).await {
            // Another request or host queued one at the same moment: that one it is.
            Err(ServiceError::Conflict(detail)) => self
                .jobs
                .active(AUTO_RENEWAL, "")
                .await?
                .ok_or(ServiceError::Conflict(detail)),
            other => other,
        }
    }

    /// Queues (or finds) an auto-renewal and runs it in this process, unless another host
    /// runs it already; then follows it to its end (a command run by hand).
    pub async fn run_here(self: &Arc<Self>, actor: &Actor, days: u32) -> ServiceResult<JobRecord> {
        let job = self.start(actor, days).await?;
        let runner = Runner::new(Arc::clone(&self.jobs), vec![Arc::clone(self) as _], vec![]);
        runner.run_here(job.id).await
    }

    /// The report of a succeeded auto-renewal job; `None` while it has not succeeded.
    pub fn report(job: &JobRecord) -> Option<AutoRenewReport> {
        if job.state != JobState::Succeeded {
            return None;
        }
        job.result
            .clone()
            .and_then(|r| serde_json::from_value(r).ok())
    }
}

#[async_trait]
impl JobKind for AutoRenewals {
    fn kind(&self) -> &'static str {
        AUTO_RENEWAL
    }

    async fn run(&self, job: &JobRecord, _: &Work) -> Result<Done, JobError> {
        let days = job.arguments["days"]
            .as_u64()
            .and_then(|d| u32::try_from(d).ok())
            .unwrap_or(self.days);
        let actor = Actor {
            key_id: job.arguments["key_id"].as_i64(),
            name: job.created_by.clone(),
            role: Role::Admin,
        };
        let report = self.circulation.auto_renew(actor, days).await?;
        Ok(Done::Result(json!(report)))
    }
}

#[async_trait]
impl Recurring for AutoRenewals {
    fn name(&self) -> &'static str {
        "daily auto-renewal"
    }

    async fn due(&self, day: NaiveDate) -> ServiceResult<Vec<NewJob>> {
        Ok(vec![NewJob {
            kind: AUTO_RENEWAL.to_owned(),
            subject: String::new(),
            period: Some(jobs::period(day)),
            arguments: json!({ "days": self.days }),
            total: None,
            created_by: "daily auto-renewal".to_owned(),
            at: self.clock.now(),
        }])
    }
}
