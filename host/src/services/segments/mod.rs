//! Segments: readers grouped by a segmenter plugin's key or by a declarative filter, kept as
//! the members of their last refresh. A refresh is a job (see `refresh.rs`); defining or
//! changing a segment checks it against what is stored (`check.rs`); a filter is evaluated
//! over the readership by `selection.rs`, for a refresh or for a preview that saves nothing.

mod check;
mod refresh;
pub mod selection;

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use self::selection::Selection;
use crate::domain::FieldErrors;
use crate::domain::filter::Filter;
use crate::domain::money::Currency;
use crate::services::audiences::Audiences;
use crate::services::jobs::{self, Jobs};
use crate::services::pipeline::Pipeline;
use crate::services::plugins::Plugins;
use crate::services::subscribers::Caller;
use crate::services::{ServiceError, ServiceResult};
use crate::store::{
    Definition, JobRecord, NewJob, NewSegment, SegmentRecord, Store, SubscriberSummary,
};

/// The kind of a segment refresh job.
pub const REFRESH: &str = "segment_refresh";
/// Readers a preview lists when the request does not say.
const PREVIEW_READERS: i64 = 20;
/// The most readers a preview lists.
const MAX_PREVIEW_READERS: i64 = 100;

/// A new segment: members decided by a segmenter plugin (`plugin` and `key`) or by a
/// declarative `filter` (see the README's filter language); give one of the two.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SegmentDraft {
    /// Lower-case letters, digits and dashes, e.g. `churn-high`.
    pub name: String,
    pub description: Option<String>,
    /// The segmenter plugin that decides membership.
    pub plugin: Option<String>,
    /// Pin a version; default: follow the plugin's active version.
    pub plugin_version: Option<String>,
    /// The segment key the plugin returns for members.
    pub key: Option<String>,
    /// The conditions members meet, e.g. `{"all": [{"status": {"in": ["active"]}},
    /// {"tenure": {"min_years": 10}}]}`.
    #[schema(value_type = Option<Object>)]
    pub filter: Option<Filter>,
    /// Evaluate the filter on this past day, from the renewal history; default: today.
    pub as_of: Option<NaiveDate>,
}

/// A change to a segment: a field present replaces the stored one; `null` clears one that
/// may be empty. The members stay those of the last refresh until the next.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SegmentChange {
    #[serde(default, with = "serde_with::rust::double_option")]
    #[schema(value_type = Option<String>)]
    pub description: Option<Option<String>>,
    /// A filter segment's new filter.
    #[schema(value_type = Option<Object>)]
    pub filter: Option<Filter>,
    /// A filter segment's day; `null` evaluates it today.
    #[serde(default, with = "serde_with::rust::double_option")]
    #[schema(value_type = Option<NaiveDate>)]
    pub as_of: Option<Option<NaiveDate>>,
    /// A plugin segment's pinned version; `null` follows the active version.
    #[serde(default, with = "serde_with::rust::double_option")]
    #[schema(value_type = Option<String>)]
    pub plugin_version: Option<Option<String>>,
    /// A plugin segment's key.
    pub key: Option<String>,
}

/// What decides a segment's members.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SegmentKind {
    Plugin,
    Filter,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SegmentView {
    pub name: String,
    pub description: Option<String>,
    pub kind: SegmentKind,
    /// A plugin segment's plugin, pinned version (none follows the active one) and key.
    pub plugin: Option<String>,
    pub plugin_version: Option<String>,
    pub key: Option<String>,
    /// A filter segment's filter, and the past day it is evaluated on (none: today).
    #[schema(value_type = Option<Object>)]
    pub filter: Option<Filter>,
    pub as_of: Option<NaiveDate>,
    /// Members after the last completed refresh.
    pub size: Option<i64>,
    pub refreshed_at: Option<DateTime<Utc>>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    /// When the description or definition last changed: after `refreshed_at`, the members
    /// are those of the definition before.
    pub updated_at: DateTime<Utc>,
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
    /// The plugin version run; none for a filter segment.
    pub plugin_version: Option<String>,
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
            plugin_version: job.arguments["plugin_version"].as_str().map(str::to_owned),
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

/// A filter to preview: how many readers it matches now (or as of a past day), and the first.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PreviewDraft {
    #[schema(value_type = Object)]
    pub filter: Filter,
    pub as_of: Option<NaiveDate>,
    /// Readers to list, 0 to 100; default 20.
    pub limit: Option<i64>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SegmentPreview {
    /// Live readers the filter matches.
    pub count: i64,
    /// The day it was evaluated on.
    pub day: NaiveDate,
    pub as_of: Option<NaiveDate>,
    /// The first matching readers in subscriber-number order.
    pub readers: Vec<SubscriberSummary>,
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
    /// Released anew after each refresh of their segment.
    audiences: Arc<Audiences>,
    currency: Currency,
    grace_days: i64,
    batch_size: usize,
    parallel: usize,
}

impl Segments {
    pub fn new(
        plugins: Arc<Plugins>,
        jobs: Arc<Jobs>,
        audiences: Arc<Audiences>,
        currency: Currency,
        grace_days: i64,
        batch_size: usize,
    ) -> Self {
        let parallel = std::thread::available_parallelism().map_or(2, |n| n.get());
        Self {
            plugins,
            jobs,
            audiences,
            currency,
            grace_days,
            batch_size: batch_size.max(1),
            parallel,
        }
    }

    pub async fn create(&self, caller: &Caller, draft: SegmentDraft) -> ServiceResult<SegmentView> {
        let mut errors = FieldErrors::default();
        if !is_name(&draft.name) {
            errors.add(
                "name",
                "use 1 to 64 lower-case letters, digits and dashes, other than `preview`",
            );
        }
        let definition = match (draft.plugin, draft.filter) {
            (Some(plugin), None) => {
                if draft.as_of.is_some() {
                    errors.add("as_of", "only a filter segment is evaluated as of a day");
                }
                let key = draft.key.unwrap_or_default();
                let version = draft.plugin_version.as_deref();
                check::plugin(&**self.store(), &plugin, version, &key, &mut errors).await?;
                Definition::Plugin {
                    plugin_id: plugin,
                    plugin_version: draft.plugin_version,
                    key,
                }
            }
            (None, Some(filter)) => {
                if draft.key.is_some() || draft.plugin_version.is_some() {
                    errors.add(
                        "key",
                        "a filter segment has no plugin key or version; leave them out",
                    );
                }
                let today = self.today();
                let name = Some(draft.name.as_str());
                check::filter(
                    &**self.store(),
                    name,
                    &filter,
                    draft.as_of,
                    today,
                    &mut errors,
                )
                .await?;
                Definition::Filter {
                    filter,
                    as_of: draft.as_of,
                }
            }
            (Some(_), Some(_)) => {
                errors.add(
                    "filter",
                    "give either a plugin and its key, or a filter, not both",
                );
                return Err(ServiceError::Invalid(errors));
            }
            (None, None) => {
                errors.add(
                    "filter",
                    "give a filter, or a segmenter plugin and the key it returns",
                );
                return Err(ServiceError::Invalid(errors));
            }
        };
        errors.into_result(()).map_err(ServiceError::Invalid)?;
        let record = self
            .store()
            .insert_segment(NewSegment {
                name: draft.name,
                description: draft.description,
                definition,
                created_by: caller.actor.name.clone(),
                at: self.plugins.clock().now(),
            })
            .await?;
        self.view(record).await
    }

    pub async fn list(&self) -> ServiceResult<Vec<SegmentView>> {
        let mut views = Vec::new();
        for record in self.store().list_segments().await? {
            views.push(self.view(record).await?);
        }
        Ok(views)
    }

    pub async fn get(&self, name: &str) -> ServiceResult<SegmentView> {
        let record = self.find(name).await?;
        self.view(record).await
    }

    /// Changes the description or definition; the members stay until the next refresh.
    pub async fn update(&self, name: &str, change: SegmentChange) -> ServiceResult<SegmentView> {
        let record = self.find(name).await?;
        let mut errors = FieldErrors::default();
        let definition = match record.definition.clone() {
            Definition::Plugin {
                plugin_id,
                plugin_version,
                key,
            } => {
                if change.filter.is_some() {
                    errors.add(
                        "filter",
                        "a plugin segment has no filter; define a filter segment instead",
                    );
                }
                if change.as_of.is_some() {
                    errors.add("as_of", "only a filter segment is evaluated as of a day");
                }
                let plugin_version = change.plugin_version.unwrap_or(plugin_version);
                let key = change.key.unwrap_or(key);
                let version = plugin_version.as_deref();
                check::plugin(&**self.store(), &plugin_id, version, &key, &mut errors).await?;
                Definition::Plugin {
                    plugin_id,
                    plugin_version,
                    key,
                }
            }
            Definition::Filter { filter, as_of } => {
                if change.key.is_some() || change.plugin_version.is_some() {
                    errors.add(
                        "key",
                        "a filter segment has no plugin key or version; leave them out",
                    );
                }
                let filter = change.filter.unwrap_or(filter);
                let as_of = change.as_of.unwrap_or(as_of);
                let (store, today) = (&**self.store(), self.today());
                check::filter(store, Some(name), &filter, as_of, today, &mut errors).await?;
                Definition::Filter { filter, as_of }
            }
        };
        errors.into_result(()).map_err(ServiceError::Invalid)?;
        let description = change.description.unwrap_or(record.description);
        let at = self.plugins.clock().now();
        let record = self
            .store()
            .update_segment(record.id, description.as_deref(), &definition, at)
            .await?;
        self.view(record).await
    }

    /// Deletes a segment no other segment's filter refers to and no audience is made from.
    pub async fn delete(&self, name: &str) -> ServiceResult<()> {
        let record = self.find(name).await?;
        let all = self.store().list_segments().await?;
        let referring = check::referring(&record, &all);
        if !referring.is_empty() {
            return Err(ServiceError::Conflict(format!(
                "the filter of {} refers to {name}; change or delete it first",
                referring.join(", ")
            )));
        }
        let audiences = self.store().audiences_of_segment(record.id).await?;
        if let Some(audience) = audiences.first() {
            return Err(ServiceError::Conflict(format!(
                "the audience {} is made from {name} (its releases stay on record); keep the \
                 segment",
                audience.name
            )));
        }
        self.jobs
            .cancel_subject(REFRESH, &subject(record.id))
            .await?;
        self.store().delete_segment(record.id).await?;
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

    /// Counts the readers a filter matches and lists the first, saving nothing.
    pub async fn preview(&self, draft: PreviewDraft) -> ServiceResult<SegmentPreview> {
        let mut errors = FieldErrors::default();
        let limit = draft.limit.unwrap_or(PREVIEW_READERS);
        if !(0..=MAX_PREVIEW_READERS).contains(&limit) {
            errors.add("limit", format!("list 0 to {MAX_PREVIEW_READERS} readers"));
        }
        let today = self.today();
        check::filter(
            &**self.store(),
            None,
            &draft.filter,
            draft.as_of,
            today,
            &mut errors,
        )
        .await?;
        errors.into_result(()).map_err(ServiceError::Invalid)?;
        let selection = self.selection(draft.filter, draft.as_of).await?;
        let day = selection.day();
        let pipeline = Pipeline::new(Arc::clone(self.store()));
        let now = self.plugins.clock().now();
        let pages = Arc::new(selection).matched_pages(&pipeline, selection::PAGE, now);
        let mut pages = std::pin::pin!(pages);
        let (mut count, mut first) = (0i64, Vec::new());
        while let Some(page) = pages.next().await {
            let (_, found) = page?;
            count += found.len() as i64;
            let wanted = usize::try_from(limit)
                .unwrap_or(0)
                .saturating_sub(first.len());
            first.extend(found.into_iter().take(wanted));
        }
        let readers = self.store().summaries(&first).await?;
        Ok(SegmentPreview {
            count,
            day,
            as_of: draft.as_of,
            readers,
        })
    }

    /// Queues a refresh job and returns it at once; any host's runner takes it.
    pub async fn refresh(&self, caller: &Caller, name: &str) -> ServiceResult<Refresh> {
        let segment = self.find(name).await?;
        let mut arguments = json!({ "segment_id": segment.id, "segment": segment.name });
        if let Definition::Plugin {
            plugin_id,
            plugin_version,
            ..
        } = &segment.definition
        {
            let active = self
                .plugins
                .active(plugin_id, plugin_version.as_deref())
                .await?;
            arguments["plugin_version"] = json!(active.version.stored.version);
        }
        let total = self.store().count_readers().await?;
        let job = self
            .jobs
            .enqueue(NewJob {
                kind: REFRESH.to_owned(),
                subject: subject(segment.id),
                period: None,
                arguments,
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

    /// A filter made ready to evaluate on `as_of` or today.
    async fn selection(
        &self,
        filter: Filter,
        as_of: Option<NaiveDate>,
    ) -> ServiceResult<Selection> {
        Selection::prepare(
            &**self.store(),
            filter,
            as_of,
            self.today(),
            self.grace_days,
        )
        .await
    }

    fn store(&self) -> &Arc<dyn Store> {
        self.plugins.store()
    }

    fn today(&self) -> NaiveDate {
        self.plugins.clock().today()
    }

    async fn find(&self, name: &str) -> ServiceResult<SegmentRecord> {
        self.store()
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
        let (kind, plugin, plugin_version, key, filter, as_of) = match r.definition {
            Definition::Plugin {
                plugin_id,
                plugin_version,
                key,
            } => (
                SegmentKind::Plugin,
                Some(plugin_id),
                plugin_version,
                Some(key),
                None,
                None,
            ),
            Definition::Filter { filter, as_of } => {
                (SegmentKind::Filter, None, None, None, Some(filter), as_of)
            }
        };
        Ok(SegmentView {
            name: r.name,
            description: r.description,
            kind,
            plugin,
            plugin_version,
            key,
            filter,
            as_of,
            size: r.size,
            refreshed_at: r.refreshed_at,
            created_by: r.created_by,
            created_at: r.created_at,
            updated_at: r.updated_at,
            refreshes,
        })
    }
}

/// The subject of a segment's refresh jobs.
fn subject(segment: i64) -> String {
    format!("segment:{segment}")
}

/// A segment's name: `preview` is taken by the route that previews filters.
fn is_name(name: &str) -> bool {
    name != "preview"
        && (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}
