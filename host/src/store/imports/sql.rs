//! Import jobs in storage: the SQL of the stored file and of the rejections.

use async_trait::async_trait;
use tokio::io::{AsyncRead, AsyncReadExt};

use super::Db;
use super::bulk::value_rows;
use super::jobs::{enqueue_in, fenced_in};
use crate::store::backend::SqlStore;
use crate::store::{
    CHUNK_BYTES, Fence, ImportStore, JobRecord, NewJob, StoreError, StoreResult, StoredRejection,
};

/// Rejections per multi-row `INSERT`.
const REJECTION_ROWS: usize = 1_000;

#[async_trait]
impl ImportStore for SqlStore<Db> {
    #[tracing::instrument(level = "debug", skip_all)]
    async fn enqueue_import(
        &self,
        new: NewJob,
        file: &mut (dyn AsyncRead + Send + Unpin),
    ) -> StoreResult<JobRecord> {
        let mut tx = self.write.begin().await?;
        let job = enqueue_in(&mut tx, &new).await?;
        let mut chunk = Vec::with_capacity(CHUNK_BYTES);
        let mut seq = 0_i64;
        loop {
            chunk.clear();
            let read = (&mut *file)
                .take(CHUNK_BYTES as u64)
                .read_to_end(&mut chunk)
                .await
                .map_err(|e| StoreError::Corrupt(format!("the upload could not be read: {e}")))?;
            if read == 0 {
                break;
            }
            sqlx::query("INSERT INTO import_files (job_id, seq, bytes) VALUES ($1, $2, $3)")
                .bind(job.id)
                .bind(seq)
                .bind(chunk.as_slice())
                .execute(&mut *tx)
                .await?;
            seq += 1;
        }
        tx.commit().await?;
        Ok(job)
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn import_chunks(&self, job: i64) -> StoreResult<i64> {
        Ok(
            sqlx::query_scalar("SELECT COUNT(*) FROM import_files WHERE job_id = $1")
                .bind(job)
                .fetch_one(&self.write)
                .await?,
        )
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn import_chunk(&self, job: i64, seq: i64) -> StoreResult<Option<Vec<u8>>> {
        // From the primary: a standby may not have the file of a job just queued yet.
        Ok(
            sqlx::query_scalar("SELECT bytes FROM import_files WHERE job_id = $1 AND seq = $2")
                .bind(job)
                .bind(seq)
                .fetch_optional(&self.write)
                .await?,
        )
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn clear_import_rejections(&self, fence: &Fence) -> StoreResult<()> {
        let mut tx = self.write.begin().await?;
        fenced_in(&mut tx, fence).await?;
        sqlx::query("DELETE FROM import_rejections WHERE job_id = $1")
            .bind(fence.job)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn add_import_rejections(
        &self,
        fence: &Fence,
        rejections: &[StoredRejection],
    ) -> StoreResult<()> {
        if rejections.is_empty() {
            return Ok(());
        }
        let mut tx = self.write.begin().await?;
        fenced_in(&mut tx, fence).await?;
        for chunk in rejections.chunks(REJECTION_ROWS) {
            let sql = format!(
                "INSERT INTO import_rejections (job_id, line, reason) VALUES {} \
                 ON CONFLICT (job_id, line) DO UPDATE SET reason = excluded.reason",
                value_rows(chunk.len(), 3)
            );
            let mut query = sqlx::query(&sql);
            for r in chunk {
                query = query.bind(fence.job).bind(r.line).bind(r.reason.as_str());
            }
            query.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn import_rejections(
        &self,
        job: i64,
        after: i64,
        limit: i64,
    ) -> StoreResult<Vec<StoredRejection>> {
        let rows: Vec<(i64, String)> = sqlx::query_as(
            "SELECT line, reason FROM import_rejections WHERE job_id = $1 AND line > $2 \
             ORDER BY line LIMIT $3",
        )
        .bind(job)
        .bind(after)
        .bind(limit)
        .fetch_all(&self.write)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(line, reason)| StoredRejection { line, reason })
            .collect())
    }
}
