//! The daily auto-renewal as a job: scheduled by the service once a day across all hosts,
//! renewing every auto-renew term that is due. Restarting it is safe: each renewal is an
//! order keyed by the term it continues, so a term is never renewed twice.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::NaiveDate;
use serde_json::json;

use super::ServiceResult;
use super::clock::Clock;
use super::jobs::{self, Done, JobError, JobKind, Recurring, Work};
use super::renewals::Circulation;
use crate::domain::Role;
use crate::store::{Actor, JobRecord, NewJob};

/// The kind of an auto-renewal job.
pub const AUTO_RENEWAL: &str = "auto_renewal";

pub struct AutoRenewals {
    circulation: Arc<Circulation>,
    clock: Arc<dyn Clock>,
    /// Terms ending within this many days are renewed.
    days: u32,
}

impl AutoRenewals {
    pub fn new(circulation: Arc<Circulation>, clock: Arc<dyn Clock>, days: u32) -> Self {
        Self {
            circulation,
            clock,
            days,
        }
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
            key_id: None,
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
