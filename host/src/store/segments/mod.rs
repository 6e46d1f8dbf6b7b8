//! Segments in the store: `SegmentStore` and its records; `sql.rs` holds the SQL both backends run.

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};

use super::{Fence, StoreResult, SubscriberSummary};
use crate::domain::filter::Filter;

/// Segments, defined by a plugin or by a filter, and their members (refreshes are jobs).
#[async_trait]
pub trait SegmentStore: Send + Sync {
    /// A taken name is a conflict.
    async fn insert_segment(&self, new: NewSegment) -> StoreResult<SegmentRecord>;
    async fn list_segments(&self) -> StoreResult<Vec<SegmentRecord>>;
    async fn get_segment(&self, name: &str) -> StoreResult<Option<SegmentRecord>>;
    /// Replaces the description and the definition; the members stay those of the last
    /// refresh. A missing segment is not found.
    async fn update_segment(
        &self,
        id: i64,
        description: Option<&str>,
        definition: &Definition,
        at: DateTime<Utc>,
    ) -> StoreResult<SegmentRecord>;
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
    /// The sequences of every member, in order.
    async fn segment_member_sequences(&self, segment_id: i64) -> StoreResult<Vec<i64>>;
}

/// A segment: who decides its members, and the size of its last refresh.
#[derive(Debug, Clone)]
pub struct SegmentRecord {
    pub id: i64,
    pub name: String,
    pub description: Option<String>,
    pub definition: Definition,
    pub size: Option<i64>,
    pub refreshed_at: Option<DateTime<Utc>>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    /// When the description or definition last changed.
    pub updated_at: DateTime<Utc>,
}

/// What decides a segment's members.
#[derive(Debug, Clone, PartialEq)]
pub enum Definition {
    /// The readers a segmenter plugin gives `key`.
    Plugin {
        plugin_id: String,
        /// A pinned version; none follows the plugin's active version.
        plugin_version: Option<String>,
        key: String,
    },
    /// The readers the filter matches, today or on the day `as_of`.
    Filter {
        filter: Filter,
        as_of: Option<NaiveDate>,
    },
}

impl Definition {
    /// The filter of a declarative segment.
    pub fn filter(&self) -> Option<&Filter> {
        match self {
            Self::Filter { filter, .. } => Some(filter),
            Self::Plugin { .. } => None,
        }
    }
}

pub struct NewSegment {
    pub name: String,
    pub description: Option<String>,
    pub definition: Definition,
    pub created_by: String,
    pub at: DateTime<Utc>,
}
