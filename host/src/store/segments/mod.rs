//! Segments in the store: `SegmentStore` and its records; `sql.rs` holds the SQL both backends run.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{Fence, StoreResult, SubscriberSummary};

/// Segments defined by plugins and their members (refreshes are jobs).
#[async_trait]
pub trait SegmentStore: Send + Sync {
    /// A taken name is a conflict.
    async fn insert_segment(&self, new: NewSegment) -> StoreResult<SegmentRecord>;
    async fn list_segments(&self) -> StoreResult<Vec<SegmentRecord>>;
    async fn get_segment(&self, name: &str) -> StoreResult<Option<SegmentRecord>>;
    /// Removes the segment with its members (its refresh jobs stay in the jobs' history).
    async fn delete_segment(&self, id: i64) -> StoreResult<()>;
    /// Writes the ending of the refresh job if its fence still holds and, with it in one
    /// transaction, replaces the members; answers whether it did (false: another host holds
    /// the job now, and nothing was written).
    async fn finish_refresh(
        &self,
        fence: &Fence,
        segment_id: i64,
        members: &[i64],
        result: serde_json::Value,
        at: DateTime<Utc>,
    ) -> StoreResult<bool>;
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
