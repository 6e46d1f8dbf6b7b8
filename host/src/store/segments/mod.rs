//! Segments in the store: `SegmentStore` and its records; `sql.rs` holds the SQL both backends run.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::{StoreResult, SubscriberSummary};

/// Segments defined by plugins, their refreshes and members.
#[async_trait]
pub trait SegmentStore: Send + Sync {
    /// A taken name is a conflict.
    async fn insert_segment(&self, new: NewSegment) -> StoreResult<SegmentRecord>;
    async fn list_segments(&self) -> StoreResult<Vec<SegmentRecord>>;
    async fn get_segment(&self, name: &str) -> StoreResult<Option<SegmentRecord>>;
    /// Removes the segment with its members and refresh history.
    async fn delete_segment(&self, id: i64) -> StoreResult<()>;
    /// Starts a refresh job; one already running (and not abandoned) is a conflict.
    async fn start_refresh(
        &self,
        segment_id: i64,
        plugin_version: &str,
        total: i64,
        by: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<RefreshRecord>;
    async fn refresh_progress(
        &self,
        id: i64,
        processed: i64,
        failed: i64,
        at: DateTime<Utc>,
    ) -> StoreResult<()>;
    /// Replaces the members in one transaction and marks the refresh done.
    async fn finish_refresh(
        &self,
        id: i64,
        segment_id: i64,
        members: &[i64],
        failed: i64,
        at: DateTime<Utc>,
    ) -> StoreResult<()>;
    /// Marks the refresh failed; the members of the last good refresh stay.
    async fn fail_refresh(&self, id: i64, error: &str, at: DateTime<Utc>) -> StoreResult<()>;
    /// The latest refreshes, newest first.
    async fn refreshes(&self, segment_id: i64, limit: i64) -> StoreResult<Vec<RefreshRecord>>;
    /// Members with a sequence above `after`, in order.
    async fn segment_members(
        &self,
        segment_id: i64,
        after: i64,
        limit: i64,
    ) -> StoreResult<Vec<SubscriberSummary>>;
}

/// A segment defined by a segmenter plugin and one of the keys it returns.
#[derive(Debug, Clone)]
pub struct SegmentRecord {
    pub id: i64,
    pub name: String,
    pub description: Option<String>,
    pub plugin_id: String,
    pub plugin_version: Option<String>,
    pub segment_key: String,
    pub size: Option<i64>,
    pub refreshed_at: Option<DateTime<Utc>>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
}

pub struct NewSegment {
    pub name: String,
    pub description: Option<String>,
    pub plugin_id: String,
    pub plugin_version: Option<String>,
    pub segment_key: String,
    pub created_by: String,
    pub at: DateTime<Utc>,
}

/// One refresh of a segment: a job while it runs, a point of the size history after.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RefreshRecord {
    pub id: i64,
    /// running, done or failed.
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
}
