//! Segments in storage: definitions, refresh jobs with progress, and memberships replaced
//! whole when a refresh completes.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::FromRow;

use super::Db;
use super::subscribers::{SUMMARY_COLUMNS, SummaryRow};
use crate::store::backend::{Backend, SqlStore};
use crate::store::{
    NewSegment, RefreshRecord, SegmentRecord, SegmentStore, StoreError, StoreResult,
    SubscriberSummary,
};

const SEGMENT_COLUMNS: &str = "id, name, description, plugin_id, plugin_version, segment_key, \
     size, refreshed_at, created_by, created_at";
const REFRESH_COLUMNS: &str = "id, state, plugin_version, processed, total, size, \
     failed_records, error, started_by, started_at, finished_at";
/// Minutes without progress after which a running refresh counts as abandoned.
const STALE_AFTER_MINUTES: i64 = 10;
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

#[derive(FromRow)]
struct RefreshRow {
    id: i64,
    state: String,
    plugin_version: String,
    processed: i64,
    total: i64,
    size: Option<i64>,
    failed_records: i64,
    error: Option<String>,
    started_by: String,
    started_at: DateTime<Utc>,
    finished_at: Option<DateTime<Utc>>,
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

impl From<RefreshRow> for RefreshRecord {
    fn from(r: RefreshRow) -> Self {
        Self {
            id: r.id,
            state: r.state,
            plugin_version: r.plugin_version,
            processed: r.processed,
            total: r.total,
            size: r.size,
            failed_records: r.failed_records,
            error: r.error,
            started_by: r.started_by,
            started_at: r.started_at,
            finished_at: r.finished_at,
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
            "DELETE FROM segment_refreshes WHERE segment_id = $1",
            "DELETE FROM segments WHERE id = $1",
        ] {
            sqlx::query(sql).bind(id).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn start_refresh(
        &self,
        segment_id: i64,
        plugin_version: &str,
        total: i64,
        by: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<RefreshRecord> {
        // A refresh whose host stopped mid-way never finishes; after a quiet spell it is
        // marked failed so that the segment can be refreshed again.
        let stale = at - chrono::Duration::minutes(STALE_AFTER_MINUTES);
        sqlx::query(
            "UPDATE segment_refreshes SET state = 'failed', finished_at = $3, \
             error = 'abandoned: no progress for a while (its host probably stopped)' \
             WHERE segment_id = $1 AND state = 'running' AND updated_at < $2",
        )
        .bind(segment_id)
        .bind(stale)
        .bind(at)
        .execute(&self.write)
        .await?;
        let sql = format!(
            "INSERT INTO segment_refreshes (segment_id, state, plugin_version, total, started_by, \
             started_at, updated_at) VALUES ($1, 'running', $2, $3, $4, $5, $5) \
             RETURNING {REFRESH_COLUMNS}"
        );
        let row: RefreshRow = sqlx::query_as(&sql)
            .bind(segment_id)
            .bind(plugin_version)
            .bind(total)
            .bind(by)
            .bind(at)
            .fetch_one(&self.write)
            .await
            .map_err(|e| match StoreError::from(e) {
                StoreError::Conflict(_) => StoreError::Conflict(
                    "a refresh of this segment is already running; wait for it to finish".into(),
                ),
                other => other,
            })?;
        Ok(row.into())
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn refresh_progress(
        &self,
        id: i64,
        processed: i64,
        failed: i64,
        at: DateTime<Utc>,
    ) -> StoreResult<()> {
        sqlx::query(
            "UPDATE segment_refreshes SET processed = $2, failed_records = $3, updated_at = $4 \
             WHERE id = $1",
        )
        .bind(id)
        .bind(processed)
        .bind(failed)
        .bind(at)
        .execute(&self.write)
        .await?;
        Ok(())
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn finish_refresh(
        &self,
        id: i64,
        segment_id: i64,
        members: &[i64],
        failed: i64,
        at: DateTime<Utc>,
    ) -> StoreResult<()> {
        let mut tx = self.write.begin().await?;
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
        sqlx::query(
            "UPDATE segment_refreshes SET state = 'done', processed = total, size = $2, \
             failed_records = $3, finished_at = $4 WHERE id = $1",
        )
        .bind(id)
        .bind(size)
        .bind(failed)
        .bind(at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn fail_refresh(&self, id: i64, error: &str, at: DateTime<Utc>) -> StoreResult<()> {
        sqlx::query(
            "UPDATE segment_refreshes SET state = 'failed', error = $2, finished_at = $3 \
             WHERE id = $1",
        )
        .bind(id)
        .bind(error)
        .bind(at)
        .execute(&self.write)
        .await?;
        Ok(())
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn refreshes(&self, segment_id: i64, limit: i64) -> StoreResult<Vec<RefreshRecord>> {
        let sql = format!(
            "SELECT {REFRESH_COLUMNS} FROM segment_refreshes WHERE segment_id = $1 \
             ORDER BY id DESC LIMIT $2"
        );
        let rows: Vec<RefreshRow> = sqlx::query_as(&sql)
            .bind(segment_id)
            .bind(limit)
            .fetch_all(&self.read)
            .await?;
        Ok(rows.into_iter().map(Into::into).collect())
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
