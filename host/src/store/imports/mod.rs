//! Import jobs in storage: the uploaded file, kept in chunks while its job is queued or running
//! (a trigger removes it when the job finishes, however it finishes), and the rows the job
//! rejected. `sql.rs` holds the SQL both backends run.

use async_trait::async_trait;
use tokio::io::AsyncRead;

use super::{Fence, JobRecord, NewJob, StoreResult};

/// Bytes of the file per stored chunk.
pub const CHUNK_BYTES: usize = 1 << 20;

/// A row an import rejected: the line it starts on and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRejection {
    pub line: i64,
    pub reason: String,
}

/// Import jobs: their files and their rejections.
#[async_trait]
pub trait ImportStore: Send + Sync {
    /// Queues the job and stores `file` (read to its end) as its file, in one transaction:
    /// no host sees the job before its whole file. One of the same kind and subject already
    /// queued or running is a conflict.
    async fn enqueue_import(
        &self,
        new: NewJob,
        file: &mut (dyn AsyncRead + Send + Unpin),
    ) -> StoreResult<JobRecord>;
    /// How many chunks the job's file has (0 once the job has finished).
    async fn import_chunks(&self, job: i64) -> StoreResult<i64>;
    /// One chunk of the job's file.
    async fn import_chunk(&self, job: i64, seq: i64) -> StoreResult<Option<Vec<u8>>>;
    /// Forgets the rejections of the job's earlier attempts, while the fence holds.
    async fn clear_import_rejections(&self, fence: &Fence) -> StoreResult<()>;
    /// Adds rejections while the fence holds (`StoreError::Fenced` once it does not).
    async fn add_import_rejections(
        &self,
        fence: &Fence,
        rejections: &[StoredRejection],
    ) -> StoreResult<()>;
    /// The job's rejections after line `after`, in line order.
    async fn import_rejections(
        &self,
        job: i64,
        after: i64,
        limit: i64,
    ) -> StoreResult<Vec<StoredRejection>>;
}
