//! Recomputing tiers: one reader in every club after a change, and every reader of a club in
//! a job leased through the database, batch by batch, writing only what changed.

use std::sync::Arc;

use super::standing::Run;
use super::{Clubs, conflict};
use crate::domain::SubscriberNumber;
use crate::services::subscribers::Caller;
use crate::services::{ServiceError, ServiceResult};
use crate::store::{Actor, ClubRecord, Publication, RecomputeCounts, RecomputeRecord, StoreError};

/// Readers read per batch of a recomputation.
const BATCH: i64 = 2_000;

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
        let mut rows = self
            .store
            .reader_rows(sequence - 1, Some(sequence), 1, false)
            .await?;
        let publications = self.store.list_publications().await?;
        let now = self.clock.now();
        let run = self.run(club, &publications, now);
        let decided = run.decide(self.store.as_ref(), &mut rows).await?;
        self.store
            .apply_tiers(
                club.id,
                &decided.updates,
                &decided.expired,
                &actor.name,
                now,
            )
            .await?;
        Ok(decided.counts)
    }

    /// Starts recomputing every reader's tier in the background; the job is leased through
    /// the database, so a second start (from any host) while it runs is a conflict.
    pub async fn start_recompute(
        self: &Arc<Self>,
        caller: &Caller,
        code: &str,
    ) -> ServiceResult<RecomputeRecord> {
        let club = self.find(code).await?;
        let job = self.lease(&caller.actor, &club).await?;
        let this = Arc::clone(self);
        let actor = caller.actor.clone();
        let id = job.id;
        tokio::spawn(async move {
            this.finish(&actor, &club, id).await;
        });
        Ok(job)
    }

    /// Recomputes every reader's tier now and returns the finished job.
    pub async fn recompute(&self, actor: &Actor, code: &str) -> ServiceResult<RecomputeRecord> {
        let club = self.find(code).await?;
        let job = self.lease(actor, &club).await?;
        Ok(self.finish(actor, &club, job.id).await)
    }

    pub async fn recompute_status(&self, code: &str, id: i64) -> ServiceResult<RecomputeRecord> {
        let club = self.find(code).await?;
        match self.store.get_recompute(id).await? {
            Some(job) if job.club == club.definition.code => Ok(job),
            _ => Err(ServiceError::NotFound(format!(
                "club {code} has no recomputation {id}"
            ))),
        }
    }

    pub async fn recomputes(&self, code: &str) -> ServiceResult<Vec<RecomputeRecord>> {
        let club = self.find(code).await?;
        Ok(self.store.recomputes(club.id, 20).await?)
    }

    async fn lease(&self, actor: &Actor, club: &ClubRecord) -> ServiceResult<RecomputeRecord> {
        let total = self.store.count_readers().await?;
        self.store
            .start_recompute(club.id, total, &actor.name, self.clock.now())
            .await
            .map_err(conflict)
    }

    async fn finish(&self, actor: &Actor, club: &ClubRecord, job: i64) -> RecomputeRecord {
        let (counts, error) = match self.sweep(actor, club, job).await {
            Ok(counts) => (counts, None),
            Err((counts, e)) => (counts, Some(e)),
        };
        tracing::info!(club = %club.definition.code, processed = counts.processed,
            joined = counts.joined, promoted = counts.promoted, demoted = counts.demoted,
            left = counts.left, undecided = counts.undecided, error = ?error,
            "tier recomputation finished");
        let at = self.clock.now();
        match self
            .store
            .finish_recompute(job, counts, error.as_deref(), at)
            .await
        {
            Ok(record) => record,
            Err(e) => {
                tracing::error!(error = %e, "could not record the end of a recomputation");
                RecomputeRecord {
                    id: job,
                    club: club.definition.code.clone(),
                    state: "failed".into(),
                    total: counts.processed,
                    counts,
                    error: Some(e.to_string()),
                    started_by: actor.name.clone(),
                    started_at: at,
                    finished_at: Some(at),
                }
            }
        }
    }

    /// Every live reader, batch by batch; each batch's changes land in one transaction.
    async fn sweep(
        &self,
        actor: &Actor,
        club: &ClubRecord,
        job: i64,
    ) -> Result<RecomputeCounts, (RecomputeCounts, String)> {
        let mut counts = RecomputeCounts::default();
        let publications = match self.store.list_publications().await {
            Ok(p) => p,
            Err(e) => return Err((counts, e.to_string())),
        };
        let now = self.clock.now();
        let run = self.run(club, &publications, now);
        let mut after = 0;
        loop {
            let step = async {
                let mut rows = self.store.reader_rows(after, None, BATCH, false).await?;
                let Some(last) = rows.last().map(|r| r.sequence) else {
                    return Ok(None);
                };
                let decided = run.decide(self.store.as_ref(), &mut rows).await?;
                self.store
                    .apply_tiers(
                        club.id,
                        &decided.updates,
                        &decided.expired,
                        &actor.name,
                        now,
                    )
                    .await?;
                Ok::<_, StoreError>(Some((last, decided.counts)))
            };
            match step.await {
                Ok(Some((last, batch))) => {
                    after = last;
                    counts.add(batch);
                    if let Err(e) = self
                        .store
                        .recompute_progress(job, counts, self.clock.now())
                        .await
                    {
                        tracing::warn!(error = %e, "could not record recomputation progress");
                    }
                }
                Ok(None) => return Ok(counts),
                Err(e) => return Err((counts, e.to_string())),
            }
        }
    }

    fn run<'a>(
        &'a self,
        club: &'a ClubRecord,
        publications: &'a [Publication],
        now: chrono::DateTime<chrono::Utc>,
    ) -> Run<'a> {
        Run {
            club_id: club.id,
            club: &club.definition,
            now,
            grace_days: self.grace_days,
            currency: self.currency,
            publications,
            plugins: &self.plugins,
        }
    }
}
