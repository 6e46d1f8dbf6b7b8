//! Segments in storage: definitions, and memberships replaced whole when a refresh (a job,
//! see `store::jobs`) completes, under the job's fence.

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use sqlx::FromRow;

use super::Db;
use super::jobs::end_in;
use super::subscribers::{SUMMARY_COLUMNS, SummaryRow};
use crate::store::backend::{Backend, SqlStore};
use crate::store::{
    Definition, Ending, Fence, NewSegment, SegmentRecord, SegmentStore, StoreError, StoreResult,
    SubscriberSummary,
};

const SEGMENT_COLUMNS: &str = "id, name, description, plugin_id, plugin_version, segment_key, \
     filter, as_of, size, refreshed_at, created_by, created_at, updated_at";
/// Rows per multi-row insert of members.
const MEMBER_CHUNK: usize = 500;

#[derive(FromRow)]
struct SegmentRow {
    id: i64,
    name: String,
    description: Option<String>,
    plugin_id: Option<String>,
    plugin_version: Option<String>,
    segment_key: Option<String>,
    filter: Option<String>,
    as_of: Option<NaiveDate>,
    size: Option<i64>,
    refreshed_at: Option<DateTime<Utc>>,
    created_by: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl TryFrom<SegmentRow> for SegmentRecord {
    type Error = StoreError;

    fn try_from(r: SegmentRow) -> StoreResult<Self> {
        let definition = match (r.plugin_id, r.segment_key, r.filter) {
            (Some(plugin_id), Some(key), None) => Definition::Plugin {
                plugin_id,
                plugin_version: r.plugin_version,
                key,
            },
            (None, None, Some(filter)) => Definition::Filter {
                filter: serde_json::from_str(&filter).map_err(|e| {
                    StoreError::Corrupt(format!("the filter of segment {}: {e}", r.name))
                })?,
                as_of: r.as_of,
            },
            _ => {
                return Err(StoreError::Corrupt(format!(
                    "segment {} has neither a plugin and key nor a filter",
                    r.name
                )));
            }
        };
        Ok(Self {
            id: r.id,
            name: r.name,
            description: r.description,
            definition,
            size: r.size,
            refreshed_at: r.refreshed_at,
            created_by: r.created_by,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

/// The definition's columns: plugin, version, key, filter (as JSON) and day.
type DefinitionColumns<'a> = (
    Option<&'a str>,
    Option<&'a str>,
    Option<&'a str>,
    Option<String>,
    Option<NaiveDate>,
);

fn columns(definition: &Definition) -> DefinitionColumns<'_> {
    match definition {
        Definition::Plugin {
            plugin_id,
            plugin_version,
            key,
        } => (
            Some(plugin_id),
            plugin_version.as_deref(),
            Some(key),
            None,
            None,
        ),
        Definition::Filter { filter, as_of } => (
            None,
            None,
            None,
            // A filter is plain data: writing it as JSON cannot fail.
            Some(serde_json::to_string(filter).unwrap_or_default()),
            *as_of,
        ),
    }
}

#[async_trait]
impl SegmentStore for SqlStore<Db> {
    #[tracing::instrument(level = "debug", skip_all)]
    async fn insert_segment(&self, new: NewSegment) -> StoreResult<SegmentRecord> {
        let sql = format!(
            "INSERT INTO segments (name, description, plugin_id, plugin_version, segment_key, \
             filter, as_of, created_by, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9) RETURNING {SEGMENT_COLUMNS}"
        );
        let (plugin, version, key, filter, as_of) = columns(&new.definition);
        let row: SegmentRow = sqlx::query_as(&sql)
            .bind(new.name.as_str())
            .bind(new.description.as_deref())
            .bind(plugin)
            .bind(version)
            .bind(key)
            .bind(filter)
            .bind(as_of)
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
        row.try_into()
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn list_segments(&self) -> StoreResult<Vec<SegmentRecord>> {
        let sql = format!("SELECT {SEGMENT_COLUMNS} FROM segments ORDER BY name");
        let rows: Vec<SegmentRow> = sqlx::query_as(&sql).fetch_all(&self.read).await?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn get_segment(&self, name: &str) -> StoreResult<Option<SegmentRecord>> {
        let sql = format!("SELECT {SEGMENT_COLUMNS} FROM segments WHERE name = $1");
        let row: Option<SegmentRow> = sqlx::query_as(&sql)
            .bind(name)
            .fetch_optional(&self.read)
            .await?;
        row.map(TryInto::try_into).transpose()
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn update_segment(
        &self,
        id: i64,
        description: Option<&str>,
        definition: &Definition,
        at: DateTime<Utc>,
    ) -> StoreResult<SegmentRecord> {
        let sql = format!(
            "UPDATE segments SET description = $2, plugin_id = $3, plugin_version = $4, \
             segment_key = $5, filter = $6, as_of = $7, updated_at = $8 WHERE id = $1 \
             RETURNING {SEGMENT_COLUMNS}"
        );
        let (plugin, version, key, filter, as_of) = columns(definition);
        let row: Option<SegmentRow> = sqlx::query_as(&sql)
            .bind(id)
            .bind(description)
            .bind(plugin)
            .bind(version)
            .bind(key)
            .bind(filter)
            .bind(as_of)
            .bind(at)
            .fetch_optional(&self.write)
            .await?;
        row.ok_or(StoreError::NotFound)?.try_into()
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

    #[tracing::instrument(level = "debug", skip_all)]
    async fn segment_member_sequences(&self, segment_id: i64) -> StoreResult<Vec<i64>> {
        Ok(sqlx::query_scalar(
            "SELECT subscriber_id FROM segment_members WHERE segment_id = $1 \
             ORDER BY subscriber_id",
        )
        .bind(segment_id)
        .fetch_all(&self.read)
        .await?)
    }
}
