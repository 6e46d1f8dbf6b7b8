//! Segments defined by segmenter plugins: a refresh is a job (see `services::jobs`) that runs
//! the plugin over every reader in batches, several at once, reporting progress, then swaps
//! the membership in one transaction under the job's fence; a failed batch fails the refresh
//! and keeps the last good membership. A refresh stopped mid-way starts again from scratch
//! on another host: nothing is written before the swap.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::{FutureExt, StreamExt};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::view::ViewBuilder;
use super::{Active, Plugins};
use crate::domain::FieldErrors;
use crate::domain::money::Currency;
use crate::domain::plugin::PluginKind;
use crate::services::jobs::{self, Done, JobError, JobKind, Jobs, Stop, Work};
use crate::services::pipeline::{Needs, Pipeline};
use crate::services::subscribers::Caller;
use crate::services::{ServiceError, ServiceResult};
use crate::store::{JobRecord, NewJob, NewSegment, SegmentRecord, SubscriberSummary};

/// The kind of a segment refresh job.
pub const REFRESH: &str = "segment_refresh";

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SegmentDraft {
    /// Lower-case letters, digits and dashes, e.g. `churn-high`.
    pub name: String,
    pub description: Option<String>,
    /// The segmenter plugin that decides membership.
    pub plugin: String,
    /// Pin a version; default: follow the plugin's active version.
    pub plugin_version: Option<String>,
    /// The segment key the plugin returns for members.
    pub key: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SegmentView {
    pub name: String,
    pub description: Option<String>,
    pub plugin: String,
    pub plugin_version: Option<String>,
    pub key: String,
    /// Members after the last completed refresh.
    pub size: Option<i64>,
    pub refreshed_at: Option<DateTime<Utc>>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    /// The latest refreshes, newest first: the running job's progress and the size history.
    pub refreshes: Vec<Refresh>,
}

/// A refresh of a segment, read from its job.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Refresh {
    /// The job's id.
    pub id: i64,
    /// `running` (queued or running), `done`, `failed` or `cancelled`.
    pub state: String,
    pub plugin_version: String,
    pub processed: i64,
    pub total: i64,
    pub size: Option<i64>,
    /// Records the plugin returned an error for (left out of the segment).
    pub failed_records: i64,
    pub error: Option<String>,
    pub started_by: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    /// The job: its attempts, the hosts that ran it, and how to follow or cancel it.
    pub job: String,
}

impl From<&JobRecord> for Refresh {
    fn from(job: &JobRecord) -> Self {
        let result = job.result.as_ref();
        let number = |key: &str| result.and_then(|r| r[key].as_i64());
        Self {
            id: job.id,
            state: jobs::legacy_state(job.state).to_owned(),
            plugin_version: job.arguments["plugin_version"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            processed: job.processed,
            total: job.total.unwrap_or(0),
            size: number("size"),
            failed_records: number("failed_records").unwrap_or(0),
            error: job.error.clone(),
            started_by: job.created_by.clone(),
            started_at: job.started_at.unwrap_or(job.created_at),
            finished_at: job.finished_at,
            job: jobs::link(job.id),
        }
    }
}

/// A page of members in number order.
#[derive(Debug, Clone)]
pub struct MembersPage {
    pub members: Vec<SubscriberSummary>,
    /// The sequence of the last member shown, when more follow.
    pub next: Option<i64>,
}

pub struct Segments {
    plugins: Arc<Plugins>,
    jobs: Arc<Jobs>,
    currency: Currency,
    grace_days: i64,
    batch_size: usize,
    parallel: usize,
}

impl Segments {
    pub fn new(
        plugins: Arc<Plugins>,
        jobs: Arc<Jobs>,
        currency: Currency,
        grace_days: i64,
        batch_size: usize,
    ) -> Self {
        let parallel = std::thread::available_parallelism().map_or(2, |n| n.get());
        Self {
            plugins,
            jobs,
            currency,
            grace_days,
            batch_size: batch_size.max(1),
            parallel,
        }
    }

    pub async fn create(&self, caller: &Caller, draft: SegmentDraft) -> ServiceResult<SegmentView> {
        let mut errors = FieldErrors::default();
        if !is_name(&draft.name) {
            errors.add("name", "use 1 to 64 lower-case letters, digits and dashes");
        }
        if draft.key.trim().is_empty() || draft.key.len() > 64 {
            errors.add(
                "key",
                "give the segment key (1 to 64 characters) the plugin returns",
            );
        }
        match self.plugins.store().get_plugin(&draft.plugin).await? {
            None => errors.add("plugin", format!("there is no plugin {}", draft.plugin)),
            Some(p) if p.kind != PluginKind::Segmenter => errors.add(
                "plugin",
                format!("{} is a {}, not a segmenter", p.id, p.kind.as_str()),
            ),
            Some(_) => {
                if let Some(v) = &draft.plugin_version {
                    let versions = self.plugins.store().plugin_versions(&draft.plugin).await?;
                    if !versions.iter().any(|x| x.version == *v) {
                        errors.add(
                            "plugin_version",
                            format!("{} has no version {v}", draft.plugin),
                        );
                    }
                }
            }
        }
        if !errors.is_empty() {
            return Err(ServiceError::Invalid(errors));
        }
        let record = self
            .plugins
            .store()
            .insert_segment(NewSegment {
                name: draft.name,
                description: draft.description,
                plugin_id: draft.plugin,
                plugin_version: draft.plugin_version,
                segment_key: draft.key,
                created_by: caller.actor.name.clone(),
                at: self.plugins.clock().now(),
            })
            .await?;
        self.view(record).await
    }

    pub async fn list(&self) -> ServiceResult<Vec<SegmentView>> {
        let mut views = Vec::new();
        for record in self.plugins.store().list_segments().await? {
            views.push(self.view(record).await?);
        }
        Ok(views)
    }

    pub async fn get(&self, name: &str) -> ServiceResult<SegmentView> {
        let record = self.find(name).await?;
        self.view(record).await
    }

    pub async fn delete(&self, name: &str) -> ServiceResult<()> {
        let record = self.find(name).await?;
        self.jobs
            .cancel_subject(REFRESH, &subject(record.id))
            .await?;
        self.plugins.store().delete_segment(record.id).await?;
        Ok(())
    }

    pub async fn members(
        &self,
        name: &str,
        after: Option<i64>,
        limit: i64,
    ) -> ServiceResult<MembersPage> {
        let record = self.find(name).await?;
        let limit = limit.clamp(1, 1000);
        let mut members = self
            .plugins
            .store()
            .segment_members(record.id, after.unwrap_or(0), limit + 1)
            .await?;
        let next = if members.len() as i64 > limit {
            members.truncate(limit as usize);
            members.last().map(|m| m.number.sequence())
        } else {
            None
        };
        Ok(MembersPage { members, next })
    }

    /// Queues a refresh job and returns it at once; any host's runner takes it.
    pub async fn refresh(&self, caller: &Caller, name: &str) -> ServiceResult<Refresh> {
        let segment = self.find(name).await?;
        let active = self
            .plugins
            .active(&segment.plugin_id, segment.plugin_version.as_deref())
            .await?;
        let total = self.plugins.store().count_readers().await?;
        let job = self
            .jobs
            .enqueue(NewJob {
                kind: REFRESH.to_owned(),
                subject: subject(segment.id),
                period: None,
                arguments: json!({
                    "segment_id": segment.id,
                    "segment": segment.name,
                    "plugin_version": active.version.stored.version,
                }),
                total: Some(total),
                created_by: caller.actor.name.clone(),
                at: self.plugins.clock().now(),
            })
            .await
            .map_err(|e| match e {
                ServiceError::Conflict(_) => ServiceError::Conflict(
                    "a refresh of this segment is already running; wait for it to finish".into(),
                ),
                other => other,
            })?;
        Ok(Refresh::from(&job))
    }

    /// Runs the plugin over every reader; the members' sequences and the records it failed.
    async fn sweep(
        &self,
        segment: &SegmentRecord,
        active: &Active,
        work: &Work,
    ) -> Result<(Vec<i64>, i64), JobError> {
        let store = self.plugins.store();
        let publications = store.list_publications().await?;
        let builder = Arc::new(ViewBuilder::new(
            self.plugins.clock().today(),
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
                    Ok(keys) if keys.contains(&segment.segment_key) => members.push(*sequence),
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

    async fn find(&self, name: &str) -> ServiceResult<SegmentRecord> {
        self.plugins
            .store()
            .get_segment(name)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("there is no segment {name}")))
    }

    async fn view(&self, r: SegmentRecord) -> ServiceResult<SegmentView> {
        let refreshes = self
            .jobs
            .of_subject(REFRESH, &subject(r.id), 10)
            .await?
            .iter()
            .map(Refresh::from)
            .collect();
        Ok(SegmentView {
            name: r.name,
            description: r.description,
            plugin: r.plugin_id,
            plugin_version: r.plugin_version,
            key: r.segment_key,
            size: r.size,
            refreshed_at: r.refreshed_at,
            created_by: r.created_by,
            created_at: r.created_at,
            refreshes,
        })
    }
}

#[async_trait]
impl JobKind for Segments {
    fn kind(&self) -> &'static str {
        REFRESH
    }

    async fn run(&self, job: &JobRecord, work: &Work) -> Result<Done, JobError> {
        let name = job.arguments["segment"].as_str().unwrap_or_default();
        let version = job.arguments["plugin_version"].as_str();
        let segment = self
            .plugins
            .store()
            .get_segment(name)
            .await?
            .filter(|s| job.subject == subject(s.id))
            .ok_or_else(|| JobError::Failed(format!("the segment {name} was deleted")))?;
        let active = self.plugins.active(&segment.plugin_id, version).await?;
        let (members, failed) = self.sweep(&segment, &active, work).await?;
        let result = json!({ "size": members.len(), "failed_records": failed });
        let at = self.plugins.clock().now();
        let recorded = self
            .plugins
            .store()
            .finish_refresh(work.fence(), segment.id, &members, result, at)
            .await?;
        if recorded {
            Ok(Done::Recorded)
        } else {
            Err(Stop::Lost.into())
        }
    }
}

/// The subject of a segment's refresh jobs.
fn subject(segment: i64) -> String {
    format!("segment:{segment}")
}

fn is_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}
