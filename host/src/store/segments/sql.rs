//! Segments in storage: definitions, and memberships replaced whole when a refresh (a job,
//! see `store::jobs`) completes, under the job's fence.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::FromRow;

use super::Db;
use super::jobs::end_in;
use super::subscribers::{SUMMARY_COLUMNS, SummaryRow};
use crate::store::backend::{Backend, SqlStore};
use crate::store::{
    Ending, Fence, NewSegment, SegmentRecord, SegmentStore, StoreError, StoreResult,
    SubscriberSummary,
};

const SEGMENT_COLUMNS: &str = "id, name, description, plugin_id, plugin_version, segment_key, \
     size, refreshed_at, created_by, created_at";
/// Rows per multi-row insert of members.
const MEMBER_CHUNK: usize = 500;

#[derive(FromRow)]
struct SegmentRow {
    id: i64,
    name: String,
    description: Option<String>,
    plugin_id: String,
    plugin_version: Option<String>,
    segment_key: String,
    size: Option<i64>,
    refreshed_at: Option<DateTime<Utc>>,
    created_by: String,
    created_at: DateTime<Utc>,
}

impl From<SegmentRow> for SegmentRecord {
    fn from(r: SegmentRow) -> Self {
        Self {
            id: r.id,
            name: r.name,
            description: r.description,
            plugin_id: r.plugin_id,
            plugin_version: r.plugin_version,
            segment_key: r.segment_key,
            size: r.size,
            refreshed_at: r.refreshed_at,
            created_by: r.created_by,
            created_at: r.created_at,
        }
    }
}

#[async_trait]
impl SegmentStore for SqlStore<Db> {
    #[tracing::instrument(level = "debug", skip_all)]
    async fn insert_segment(&self, new: NewSegment) -> StoreResult<SegmentRecord> {
        let sql = format!(
            "INSERT INTO segments (name, description, plugin_id, plugin_version, segment_key, \
             created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {SEGMENT_COLUMNS}"
        );
        let row: SegmentRow = sqlx::query_as(&sql)
            .bind(new.name.as_str())
            .bind(new.description)
            .bind(new.plugin_id.as_str())
            .bind(new.plugin_version)
            .bind(new.segment_key.as_str())
            .bind(new.created_by.as_str())
            .bind(new.at)
            .fetch_one(&self.write)
            .await
            .map_err(|e| match StoreError::from(e) {
                StoreError::Conflict(_) => {
                    StoreError::Conflict(format!("a segment named {} exists", new.name))
                }
                other => other,
            })?;
        Ok(row.into())
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn list_segments(&self) -> StoreResult<Vec<SegmentRecord>> {
        let sql = format!("SELECT {SEGMENT_COLUMNS} FROM segments ORDER BY name");
        let rows: Vec<SegmentRow> = sqlx::query_as(&sql).fetch_all(&self.read).await?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn get_segment(&self, name: &str) -> StoreResult<Option<SegmentRecord>> {
        let sql = format!("SELECT {SEGMENT_COLUMNS} FROM segments WHERE name = $1");
        let row: Option<SegmentRow> = sqlx::query_as(&sql)
            .bind(name)
            .fetch_optional(&self.read)
            .await?;
        Ok(row.map(Into::into))
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn delete_segment(&self, id: i64) -> StoreResult<()> {
        let mut tx = self.write.begin().await?;
        for sql in [
            "DELETE FROM segment_members WHERE segment_id = $1",
            "DELETE FROM segments WHERE id = $1",
        ] {
            sqlx::query(sql).bind(id).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn finish_refresh(
        &self,
        fence: &Fence,
        segment_id: i64,
        members: &[i64],
        result: serde_json::Value,
        at: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let mut tx = self.write.begin().await?;
        // First, so that the job's row stays locked until the members are in.
        if !end_in(&mut tx, fence, &Ending::Succeeded(result), at).await? {
            return Ok(false);
        }
        sqlx::query("DELETE FROM segment_members WHERE segment_id = $1")
            .bind(segment_id)
            .execute(&mut *tx)
            .await?;
        for chunk in members.chunks(MEMBER_CHUNK) {
            let values: Vec<String> = (0..chunk.len())
                .map(|i| format!("({}, {})", Db::param(2 * i + 1), Db::param(2 * i + 2)))
                .collect();
            let sql = format!(
                "INSERT INTO segment_members (segment_id, subscriber_id) VALUES {}",
                values.join(", ")
            );
            let mut query = sqlx::query(&sql);
            for member in chunk {
                query = query.bind(segment_id).bind(*member);
            }
            query.execute(&mut *tx).await?;
        }
        let size = members.len() as i64;
        sqlx::query("UPDATE segments SET size = $2, refreshed_at = $3 WHERE id = $1")
            .bind(segment_id)
            .bind(size)
            .bind(at)
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE jobs SET processed = total WHERE id = $1")
            .bind(fence.job)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn segment_members(
        &self,
        segment_id: i64,
        after: i64,
        limit: i64,
    ) -> StoreResult<Vec<SubscriberSummary>> {
        let sql = format!(
            "SELECT {SUMMARY_COLUMNS} FROM segment_members m JOIN subscribers s \
             ON s.id = m.subscriber_id WHERE m.segment_id = $1 AND m.subscriber_id > $2 \
             ORDER BY m.subscriber_id LIMIT $3"
        );
        let rows: Vec<SummaryRow> = sqlx::query_as(&sql)
            .bind(segment_id)
            .bind(after)
            .bind(limit)
            .fetch_all(&self.read)
            .await?;
        rows.into_iter().map(SubscriberSummary::try_from).collect()
    }
}
