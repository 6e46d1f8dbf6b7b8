//! Recomputing tiers: one reader in every club after a change, and every reader of a club in
//! a job (see `services::jobs`), batch by batch, writing only what changed, each batch under
//! the job's fence. A recomputation stopped mid-way starts again from the first reader: the
//! batches it wrote are unchanged standings the second time, so nothing is written twice.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use futures::StreamExt;
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;

use super::Clubs;
use super::standing::{self, Judge, Run};
use crate::domain::{Role, SubscriberNumber};
use crate::services::jobs::{self, Done, JobError, JobKind, Recurring, Runner, Work};
use crate::services::pipeline::Pipeline;
use crate::services::subscribers::Caller;
use crate::services::{ServiceError, ServiceResult};
use crate::store::{Actor, ClubRecord, JobRecord, NewJob, Publication, RecomputeCounts};

/// The kind of a club recomputation job.
pub const RECOMPUTE: &str = "club_recompute";
/// Readers decided per page of a recomputation whose rules ask a plugin.
const BATCH: i64 = 2_000;
/// Readers judged at least per page when no plugin is asked: four kept chunks, judged
/// borrowed on the blocking pool, two pages at once.
const GATHERED: i64 = 4 * 1024;

/// A recomputation of one club, read from its job.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Recomputation {
    /// The job's id.
    pub id: i64,
    pub club: String,
    /// `running` (queued or running), `done`, `failed` or `cancelled`.
    pub state: String,
    pub total: i64,
    /// What it changed (while it runs: how many readers it has been through).
    #[serde(flatten)]
    pub counts: RecomputeCounts,
    pub error: Option<String>,
    pub started_by: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    /// The job: its attempts, the hosts that ran it, and how to follow or cancel it.
    pub job: String,
}

impl From<&JobRecord> for Recomputation {
    fn from(job: &JobRecord) -> Self {
        let counts = job
            .result
            .clone()
            .and_then(|r| serde_json::from_value(r).ok())
            .unwrap_or(RecomputeCounts {
                processed: job.processed,
                ..RecomputeCounts::default()
            });
        Self {
            id: job.id,
            club: job.arguments["club"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            state: jobs::legacy_state(job.state).to_owned(),
            total: job.total.unwrap_or(0),
            counts,
            error: job.error.clone(),
            started_by: job.created_by.clone(),
            started_at: job.started_at.unwrap_or(job.created_at),
            finished_at: job.finished_at,
            job: jobs::link(job.id),
        }
    }
}

impl Clubs {
    /// Recomputes the reader's standing in every club, after a renewal, cancellation or
    /// other change. A failure is logged, never passed on: the change itself stands, and the
    /// nightly recomputation catches up. Clubs whose rules ask a plugin are recomputed in the
    /// background: the request that wrote answers without waiting on a plugin, which may take
    /// its whole deadline (and a failing one is recorded against the plugin all the same).
    pub async fn after_change(self: &Arc<Self>, actor: &Actor, number: SubscriberNumber) {
        let clubs = match self.store.list_clubs().await {
            Ok(clubs) => clubs,
            Err(e) => {
                tracing::error!(error = %e, "could not read the clubs to recompute a reader");
                return;
            }
        };
        let (asking, plain): (Vec<_>, Vec<_>) = clubs
            .into_iter()
            .partition(|club| !club.definition.plugins().is_empty());
        for club in plain {
            self.recompute_reader(actor, &club, number).await;
        }
        if asking.is_empty() {
            return;
        }
        let (this, actor) = (Arc::clone(self), actor.clone());
        tokio::spawn(async move {
            for club in asking {
                this.recompute_reader(&actor, &club, number).await;
            }
        });
    }

    async fn recompute_reader(&self, actor: &Actor, club: &ClubRecord, number: SubscriberNumber) {
        if let Err(e) = self.recompute_club(actor, club, number).await {
            tracing::error!(club = %club.definition.code, error = %e,
                "could not recompute a reader's tier");
        }
    }

    pub(super) async fn recompute_club(
        &self,
        actor: &Actor,
        club: &ClubRecord,
        number: SubscriberNumber,
    ) -> ServiceResult<RecomputeCounts> {
        let sequence = number.sequence();
        let now = self.clock.now();
        let mut readers = Pipeline::new(Arc::clone(&self.store))
            .range(standing::needs(), sequence, sequence, now)
            .await?;
        let publications = self.store.list_publications().await?;
        let run = self.run(club, &publications, now);
        let decided = run.decide(self.store.as_ref(), &mut readers).await?;
        self.store
            .apply_tiers(
                club.id,
                &decided.updates,
                &decided.expired,
                &actor.name,
                now,
                None,
            )
            .await?;
        Ok(decided.counts)
    }

    /// Queues a recomputation of every reader's tier; any host's runner takes it. One runs
    /// per club at a time across all hosts: a second start while it runs is a conflict.
    pub async fn start_recompute(
        &self,
        caller: &Caller,
        code: &str,
    ) -> ServiceResult<Recomputation> {
        let club = self.find(code).await?;
        let job = self
            .jobs
            .enqueue(self.job_of(&club, &caller.actor.name, None).await?)
            .await?;
        Ok(Recomputation::from(&job))
    }

    /// Recomputes every reader's tier in this process and returns the finished job (a
    /// command run by hand; the service schedules the nightly one itself).
    pub async fn recompute(
        self: &Arc<Self>,
        actor: &Actor,
        code: &str,
    ) -> ServiceResult<Recomputation> {
        let club = self.find(code).await?;
        let job = self
            .jobs
            .enqueue(self.job_of(&club, &actor.name, None).await?)
            .await?;
        let runner = Runner::new(Arc::clone(&self.jobs), vec![Arc::clone(self) as _], vec![]);
        let done = runner.run_here(job.id).await?;
        Ok(Recomputation::from(&done))
    }

    pub async fn recompute_status(&self, code: &str, id: i64) -> ServiceResult<Recomputation> {
        let club = self.find(code).await?;
        match self.jobs.get(id).await {
            Ok(view) if view.job.kind == RECOMPUTE && view.job.subject == subject(club.id) => {
                Ok(Recomputation::from(&view.job))
            }
            Ok(_) | Err(ServiceError::NotFound(_)) => Err(ServiceError::NotFound(format!(
                "club {code} has no recomputation {id}"
            ))),
            Err(e) => Err(e),
        }
    }

    pub async fn recomputes(&self, code: &str) -> ServiceResult<Vec<Recomputation>> {
        let club = self.find(code).await?;
        let jobs = self
            .jobs
            .of_subject(RECOMPUTE, &subject(club.id), 20)
            .await?;
        Ok(jobs.iter().map(Recomputation::from).collect())
    }

    async fn job_of(
        &self,
        club: &ClubRecord,
        by: &str,
        day: Option<NaiveDate>,
    ) -> ServiceResult<NewJob> {
        Ok(NewJob {
            kind: RECOMPUTE.to_owned(),
            subject: subject(club.id),
            period: day.map(jobs::period),
            arguments: json!({ "club_id": club.id, "club": club.definition.code }),
            total: Some(self.store.count_readers().await?),
            created_by: by.to_owned(),
            at: self.clock.now(),
        })
    }

    /// Every live reader, batch by batch; each batch's changes land in one transaction,
    /// under the job's fence.
    async fn sweep(
        &self,
        actor: &Actor,
        club: &ClubRecord,
        work: &Work,
    ) -> Result<RecomputeCounts, JobError> {
        let mut counts = RecomputeCounts::default();
        let publications = self.store.list_publications().await?;
        let now = self.clock.now();
        let run = self.run(club, &publications, now);
        let pipeline = Pipeline::new(Arc::clone(&self.store));
        let mut pages = if run.asks_plugins() {
            let store = Arc::clone(&self.store);
            let run = &run;
            pipeline
                .pages(standing::needs(), BATCH, now)
                .then(move |page| {
                    let store = Arc::clone(&store);
                    async move { run.decide(store.as_ref(), &mut page?).await }
                })
                .boxed()
        } else {
            let store = Arc::clone(&self.store);
            let facts_of = pipeline.clone();
            let run = &run;
            pipeline
                .gathered(standing::needs(), GATHERED)
                .map(move |gathered| {
                    let (store, pipeline) = (Arc::clone(&store), facts_of.clone());
                    async move {
                        let gathered = gathered?;
                        let last = gathered.last.unwrap_or(0);
                        let fields = standing::needs().fields;
                        let facts = pipeline.facts(fields, gathered.first(), last, now).await?;
                        run.decide_gathered(store.as_ref(), gathered, facts).await
                    }
                })
                .buffered(2)
                .boxed()
        };
        while let Some(decided) = pages.next().await {
            let decided = decided?;
            // A page where no standing changed writes nothing (and so waits for no writer).
            if !decided.updates.is_empty() || !decided.expired.is_empty() {
                self.store
                    .apply_tiers(
                        club.id,
                        &decided.updates,
                        &decided.expired,
                        &actor.name,
                        now,
                        Some(work.fence()),
                    )
                    .await?;
            }
            counts.add(decided.counts);
            work.progress_paced(counts.processed).await?;
        }
        work.progress(counts.processed).await?;
        Ok(counts)
    }

    fn run<'a>(
        &'a self,
        club: &'a ClubRecord,
        publications: &'a [Publication],
        now: chrono::DateTime<chrono::Utc>,
    ) -> Run<'a> {
        Run {
            club_id: club.id,
            judge: Judge {
                club: Arc::new(club.definition.clone()),
                now,
                grace_days: self.grace_days,
                currency: self.currency,
            },
            publications,
            plugins: &self.plugins,
        }
    }
}

#[async_trait]
impl JobKind for Clubs {
    fn kind(&self) -> &'static str {
        RECOMPUTE
    }

    async fn run(&self, job: &JobRecord, work: &Work) -> Result<Done, JobError> {
        let code = job.arguments["club"].as_str().unwrap_or_default();
        let club = self
            .store
            .get_club(code)
            .await?
            .filter(|c| job.subject == subject(c.id))
            .ok_or_else(|| JobError::Failed(format!("there is no club {code} any more")))?;
        let actor = Actor {
            key_id: None,
            name: job.created_by.clone(),
            role: Role::Admin,
        };
        let counts = self.sweep(&actor, &club, work).await?;
        tracing::info!(club = %club.definition.code, processed = counts.processed,
            joined = counts.joined, promoted = counts.promoted, demoted = counts.demoted,
            left = counts.left, undecided = counts.undecided, "tier recomputation finished");
        Ok(Done::Result(json!(counts)))
    }
}

/// The nightly recomputation: a job per club, catching lapses and expired overrides.
#[async_trait]
impl Recurring for Clubs {
    fn name(&self) -> &'static str {
        "nightly tier recomputation"
    }

    async fn due(&self, day: NaiveDate) -> ServiceResult<Vec<NewJob>> {
        let mut due = Vec::new();
        for club in self.store.list_clubs().await? {
            due.push(
                self.job_of(&club, "nightly recomputation", Some(day))
                    .await?,
            );
        }
        Ok(due)
    }
}

/// The subject of a club's recomputation jobs.
fn subject(club: i64) -> String {
    format!("club:{club}")
}
