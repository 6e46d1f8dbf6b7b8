//! A segment's refresh, a job (see `services::jobs`): a plugin segment runs its plugin over
//! every reader in batches, several at once; a filter segment matches its filter over every
//! reader. Either reports progress, then swaps the membership in one transaction under the
//! job's fence; a failed batch fails the refresh and keeps the last good membership. A
//! refresh stopped mid-way starts again from scratch on another host: nothing is written
//! before the swap. The audiences made from the segment are then released anew, as far as
//! their spacing, budget and differencing checks allow.

use std::sync::Arc;

use async_trait::async_trait;
use futures::{FutureExt, StreamExt};
use serde_json::json;

use super::{REFRESH, Segments, selection, subject};
use crate::domain::filter::Filter;
use crate::services::jobs::{Done, JobError, JobKind, Stop, Work};
use crate::services::pipeline::{Needs, Pipeline};
use crate::services::plugins::Active;
use crate::services::plugins::view::ViewBuilder;
use crate::store::{Definition, JobRecord};

#[async_trait]
impl JobKind for Segments {
    fn kind(&self) -> &'static str {
        REFRESH
    }

    async fn run(&self, job: &JobRecord, work: &Work) -> Result<Done, JobError> {
        let name = job.arguments["segment"].as_str().unwrap_or_default();
        let segment = self
            .store()
            .get_segment(name)
            .await?
            .filter(|s| job.subject == subject(s.id))
            .ok_or_else(|| JobError::Failed(format!("the segment {name} was deleted")))?;
        let (members, failed) = match segment.definition {
            Definition::Plugin { plugin_id, key, .. } => {
                let version = job.arguments["plugin_version"].as_str();
                let active = self.plugins.active(&plugin_id, version).await?;
                self.sweep(&key, &active, work).await?
            }
            Definition::Filter { filter, as_of } => (self.select(filter, as_of, work).await?, 0),
        };
        let result = json!({ "size": members.len(), "failed_records": failed });
        let at = self.plugins.clock().now();
        let recorded = self
            .store()
            .finish_refresh(work.fence(), segment.id, &members, result, at)
            .await?;
        if recorded {
            self.audiences.release_refreshed(segment.id).await;
            Ok(Done::Recorded)
        } else {
            Err(Stop::Lost.into())
        }
    }
}

impl Segments {
    /// The sequences of the readers the filter matches on `as_of` or today, in order.
    async fn select(
        &self,
        filter: Filter,
        as_of: Option<chrono::NaiveDate>,
        work: &Work,
    ) -> Result<Vec<i64>, JobError> {
        let selection = Arc::new(self.selection(filter, as_of).await?);
        let pipeline = Pipeline::new(Arc::clone(self.store()));
        let now = self.plugins.clock().now();
        let pages = selection.matched_pages(&pipeline, selection::PAGE, now);
        let mut pages = std::pin::pin!(pages);
        let (mut members, mut processed) = (Vec::new(), 0i64);
        while let Some(page) = pages.next().await {
            let (looked_at, found) = page?;
            members.extend(found);
            processed += looked_at;
            work.progress_paced(processed).await?;
        }
        work.progress(processed).await?;
        Ok(members)
    }

    /// Runs the plugin over every reader: the sequences of those it gives `key`, and the
    /// records it failed.
    async fn sweep(
        &self,
        key: &str,
        active: &Active,
        work: &Work,
    ) -> Result<(Vec<i64>, i64), JobError> {
        let store = self.store();
        let publications = store.list_publications().await?;
        let builder = Arc::new(ViewBuilder::new(
            self.today(),
            self.grace_days,
            self.currency.as_str(),
            &publications,
        ));
        let fields = active.version.checked.fields;
        let pii = active.version.stored.pii_granted;
        let now = self.plugins.clock().now();
        let pages =
            Pipeline::new(Arc::clone(store)).pages(Needs::of(fields), self.batch_size as i64, now);
        let runs = pages
            .map(|page| {
                let builder = Arc::clone(&builder);
                async move {
                    let readers = page?;
                    let sequences: Vec<i64> = readers.iter().map(|r| r.row.sequence).collect();
                    let batch = readers
                        .iter()
                        .map(|reader| builder.project(fields, pii, reader))
                        .collect();
                    let outcome = self
                        .plugins
                        .runtime()
                        .segment(active.invocation.clone(), builder.context().clone(), batch)
                        .await;
                    self.plugins.settle(active, &outcome, sequences.len()).await;
                    let report = outcome.map_err(|f| {
                        JobError::Failed(format!(
                            "a batch of {} readers failed: {f}",
                            sequences.len()
                        ))
                    })?;
                    Ok::<_, JobError>((sequences, report.results))
                }
                .boxed()
            })
            .buffered(self.parallel);
        let mut runs = std::pin::pin!(runs);
        let (mut members, mut processed, mut failed) = (Vec::new(), 0i64, 0i64);
        while let Some(batch) = runs.next().await {
            let (sequences, results) = batch?;
            for (sequence, result) in sequences.iter().zip(results) {
                match result {
                    Ok(keys) if keys.iter().any(|k| k == key) => members.push(*sequence),
                    Ok(_) => {}
                    Err(_) => failed += 1,
                }
            }
            processed += sequences.len() as i64;
            work.progress_paced(processed).await?;
        }
        work.progress(processed).await?;
        Ok((members, failed))
    }
}
