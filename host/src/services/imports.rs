//! Imports over HTTP as jobs: the uploaded file is stored with its job, so that any host's
//! runner can import it (and another take it over); the rows it rejects are kept with the job.
//!
//! A run always starts from the top of the file. That is safe: rows are matched to the
//! readers already known (by number, legacy id, email, phone, or name and postal code) and
//! terms already present are left unchanged, so what an earlier attempt wrote is found again
//! instead of written twice. Every batch, and every rejection, is written under the job's
//! fence. A cancelled import stops between batches; the batches written before stay.

use std::io::{Cursor, Read};
use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::mpsc;
use utoipa::ToSchema;

use super::clock::Clock;
use super::jobs::{self, Done, JobError, JobKind, Jobs, Work};
use super::legacy::{
    ImportError, ImportFile, ImportObserver, ImportOptions, ImportReport, Importer, Rejection,
};
use super::{ServiceError, ServiceResult};
use crate::domain::CountryCode;
use crate::domain::money::Currency;
use crate::store::{Actor, JobRecord, JobState, NewJob, Store, StoreError, StoredRejection};

/// The kind of an import job; its subject is the file (`subscribers` or `terms`).
pub const IMPORT: &str = "import";
/// Rejections a job's result shows; the rest are listed page by page.
const FIRST_REJECTIONS: usize = 10;

/// What an import job is asked to do, as its arguments store it.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct ImportArguments {
    file: ImportFile,
    dry_run: bool,
    /// The key that uploaded the file, named in the audit log of every batch.
    key_id: Option<i64>,
    role: crate::domain::Role,
    /// Bytes of the file.
    bytes: u64,
}

/// What an import job did: its result once it has succeeded.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ImportResult {
    pub file: ImportFile,
    pub report: ImportReport,
    /// The first rejected rows (up to 10), in line order.
    pub first_rejections: Vec<Rejection>,
    /// Every rejected row, page by page.
    pub rejections: String,
}

/// The answer of an import that has finished: the same as the import gave before it was a
/// job, with a link to the job.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ImportAnswer {
    pub report: ImportReport,
    /// Every rejected row with its line and reason.
    pub rejections: Vec<Rejection>,
    /// The job that ran the import.
    pub job: String,
}

pub struct Imports {
    store: Arc<dyn Store>,
    jobs: Arc<Jobs>,
    clock: Arc<dyn Clock>,
    home: CountryCode,
    currency: Currency,
}

impl Imports {
    pub fn new(
        store: Arc<dyn Store>,
        jobs: Arc<Jobs>,
        clock: Arc<dyn Clock>,
        home: CountryCode,
        currency: Currency,
    ) -> Self {
        Self {
            store,
            jobs,
            clock,
            home,
            currency,
        }
    }

    /// Refuses an upload early while an import of the same file is queued or running.
    pub async fn ensure_free(&self, file: ImportFile) -> ServiceResult<()> {
        match self.jobs.active(IMPORT, file.name()).await? {
            Some(job) => Err(busy(file, job.id)),
            None => Ok(()),
        }
    }

    /// Queues the import of `upload` (`bytes` long, its header already checked) as a job.
    /// One import of each file runs at a time: a second is a conflict naming the first.
    pub async fn queue(
        &self,
        actor: &Actor,
        file: ImportFile,
        dry_run: bool,
        upload: tokio::fs::File,
        bytes: u64,
    ) -> ServiceResult<JobRecord> {
        let arguments = ImportArguments {
            file,
            dry_run,
            key_id: actor.key_id,
            role: actor.role,
            bytes,
        };
        let new = NewJob {
            kind: IMPORT.to_owned(),
            subject: file.name().to_owned(),
            period: None,
            arguments: json!(arguments),
            total: i64::try_from(bytes).ok(),
            created_by: actor.name.clone(),
            at: self.clock.now(),
        };
        let queued = self
            .jobs
            .enqueue_with(new, |store, new| async move {
                let mut upload = upload;
                store.enqueue_import(new, &mut upload).await
            })
            .await;
        match queued {
            Err(ServiceError::Conflict(_)) => match self.jobs.active(IMPORT, file.name()).await? {
                Some(job) => Err(busy(file, job.id)),
                None => Err(ServiceError::Conflict(format!(
                    "another import of {}.csv was queued at the same moment; send it again",
                    file.name()
                ))),
            },
            other => other,
        }
    }

    /// The import job `id`; any other job is not found.
    pub async fn job(&self, id: i64) -> ServiceResult<JobRecord> {
        match self.store.get_job(id).await? {
            Some(job) if job.kind == IMPORT => Ok(job),
            _ => Err(ServiceError::NotFound(format!("there is no import {id}"))),
        }
    }

    /// The answer of a succeeded import job: its report and every rejection; `None` while it
    /// has not succeeded.
    pub async fn answer(&self, job: &JobRecord) -> ServiceResult<Option<ImportAnswer>> {
        if job.state != JobState::Succeeded {
            return Ok(None);
        }
        let result: ImportResult = job
            .result
            .clone()
            .and_then(|r| serde_json::from_value(r).ok())
            .ok_or_else(|| StoreError::Corrupt(format!("job {} has no import report", job.id)))?;
        let mut rejections = Vec::new();
        let mut after = 0;
        loop {
            let page = self.rejections(job.id, after, 1_000).await?;
            let Some(last) = page.last() else { break };
            after = i64::try_from(last.line).unwrap_or(i64::MAX);
            rejections.extend(page);
        }
        Ok(Some(ImportAnswer {
            report: result.report,
            rejections,
            job: jobs::link(job.id),
        }))
    }

    /// The job's rejected rows after line `after`, in line order (while it runs: those of its
    /// current attempt so far).
    pub async fn rejections(
        &self,
        job: i64,
        after: i64,
        limit: i64,
    ) -> ServiceResult<Vec<Rejection>> {
        Ok(self
            .store
            .import_rejections(job, after, limit)
            .await?
            .into_iter()
            .map(|r| Rejection {
                line: u64::try_from(r.line).unwrap_or(0),
                reason: r.reason,
            })
            .collect())
    }
}

fn busy(file: ImportFile, job: i64) -> ServiceError {
    ServiceError::Conflict(format!(
        "an import of {}.csv is already queued or running as job {job} ({}); wait for it to \
         finish, or cancel it, then send the file again",
        file.name(),
        jobs::link(job)
    ))
}

/// The link to an import job's rejections.
pub fn rejections_link(job: i64) -> String {
    format!("/api/v1/imports/{job}/rejections")
}

#[async_trait]
impl JobKind for Imports {
    fn kind(&self) -> &'static str {
        IMPORT
    }

    async fn run(&self, job: &JobRecord, work: &Work) -> Result<Done, JobError> {
        let arguments: ImportArguments = serde_json::from_value(job.arguments.clone())
            .map_err(|e| JobError::Failed(format!("the job is not an import's: {e}")))?;
        // Each attempt lists its own rejections: a row an earlier one refused may be matched
        // now, or refused for another reason.
        self.store.clear_import_rejections(work.fence()).await?;
        let chunks = self.store.import_chunks(job.id).await?;
        let input = StoredFile::open(Arc::clone(&self.store), job.id, chunks);
        let actor = Actor {
            key_id: arguments.key_id,
            name: job.created_by.clone(),
            role: arguments.role,
        };
        let importer = Importer::new(
            Arc::clone(&self.store),
            Arc::clone(&self.clock),
            self.home,
            self.currency,
            actor,
        )
        .fenced(work.fence().clone());
        let options = ImportOptions {
            dry_run: arguments.dry_run,
            ..ImportOptions::default()
        };
        let mut kept = KeepRejections {
            store: Arc::clone(&self.store),
            work,
            pending: Vec::new(),
            first: Vec::new(),
        };
        let report = importer
            .import(arguments.file, input, &options, &mut kept)
            .await
            .map_err(job_error)?;
        kept.write().await.map_err(job_error)?;
        tracing::info!(
            job = job.id,
            file = arguments.file.name(),
            rows = report.rows,
            created = report.created,
            matched = report.matched,
            rejected = report.rejected,
            "import finished"
        );
        Ok(Done::Result(json!(ImportResult {
            file: arguments.file,
            report,
            first_rejections: kept.first,
            rejections: rejections_link(job.id),
        })))
    }
}

fn job_error(e: ImportError) -> JobError {
    match e {
        ImportError::Stopped(stop) => JobError::Stop(stop),
        ImportError::Store(e) => e.into(),
        other => JobError::Failed(other.to_string()),
    }
}

/// Writes an import job's rejections under its fence and its progress (bytes checked) after
/// each batch; there a cancelled or taken-over job stops.
struct KeepRejections<'a> {
    store: Arc<dyn Store>,
    work: &'a Work,
    pending: Vec<StoredRejection>,
    first: Vec<Rejection>,
}

impl KeepRejections<'_> {
    async fn write(&mut self) -> Result<(), ImportError> {
        self.store
            .add_import_rejections(self.work.fence(), &self.pending)
            .await?;
        self.pending.clear();
        Ok(())
    }
}

#[async_trait]
impl ImportObserver for KeepRejections<'_> {
    fn rejected(&mut self, rejection: Rejection) {
        if self.first.len() < FIRST_REJECTIONS {
            self.first.push(rejection.clone());
        }
        self.pending.push(StoredRejection {
            line: i64::try_from(rejection.line).unwrap_or(i64::MAX),
            reason: rejection.reason,
        });
    }

    async fn between_batches(&mut self, bytes: u64, _: &ImportReport) -> Result<(), ImportError> {
        self.write().await?;
        self.work
            .progress(i64::try_from(bytes).unwrap_or(i64::MAX))
            .await?;
        Ok(())
    }
}

/// An import job's stored file as a `Read` for the parsing thread, fed chunk by chunk by a
/// task reading the database, a few chunks ahead.
struct StoredFile {
    chunks: mpsc::Receiver<Result<Vec<u8>, String>>,
    current: Cursor<Vec<u8>>,
}

impl StoredFile {
    fn open(store: Arc<dyn Store>, job: i64, chunks: i64) -> Self {
        let (sender, receiver) = mpsc::channel(2);
        tokio::spawn(async move {
            for seq in 0..chunks {
                let chunk = match store.import_chunk(job, seq).await {
                    Ok(Some(bytes)) => Ok(bytes),
                    // The file goes when its job ends: this host no longer holds the job.
                    Ok(None) => Err(format!("part {seq} of the stored file is gone")),
                    Err(e) => Err(e.to_string()),
                };
                let failed = chunk.is_err();
                if sender.send(chunk).await.is_err() || failed {
                    return;
                }
            }
        });
        Self {
            chunks: receiver,
            current: Cursor::new(Vec::new()),
        }
    }
}

impl Read for StoredFile {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            let n = self.current.read(buf)?;
            if n > 0 || buf.is_empty() {
                return Ok(n);
            }
            match self.chunks.blocking_recv() {
                Some(Ok(bytes)) => self.current = Cursor::new(bytes),
                Some(Err(why)) => return Err(std::io::Error::other(why)),
                None => return Ok(0),
            }
        }
    }
}
