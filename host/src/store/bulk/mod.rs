//! Bulk import and export in the store: `BulkStore` and its records; `sql.rs` holds the SQL both
//! backends run.

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};

use super::{AuditEntry, Fence, NewTerm, StoreResult, Subscriber};
use crate::domain::search::SearchTerm;
use crate::domain::term::Term;
use crate::domain::{Profile, SubscriberNumber};

/// The batched paths of the legacy import and the export.
#[async_trait]
pub trait BulkStore: Send + Sync {
    /// Subscribers (merged ones too) by legacy id.
    async fn subscribers_by_legacy_id(&self, ids: &[String]) -> StoreResult<Vec<KnownSubscriber>>;
    async fn subscribers_by_sequence(&self, ids: &[i64]) -> StoreResult<Vec<KnownSubscriber>>;
    /// Live subscribers holding any of the terms of one kind: `(term, subscriber)`.
    async fn subscribers_by_terms(
        &self,
        kind: crate::domain::search::TermKind,
        terms: &[String],
    ) -> StoreResult<Vec<(String, KnownSubscriber)>>;
    /// Writes one batch in one transaction (or, for a dry run, rolls it back); returns the
    /// sequences given to the new readers, in order. With a fence (an import job's claim),
    /// nothing is written once the claim no longer holds (`StoreError::Fenced`).
    async fn import_subscribers(
        &self,
        batch: &SubscriberBatch,
        audit: AuditEntry,
        fence: Option<&Fence>,
        commit: bool,
    ) -> StoreResult<Vec<i64>>;
    /// Which `(subscriber, publication, start)` already have a term.
    async fn existing_terms(
        &self,
        keys: &[(i64, i64, NaiveDate)],
    ) -> StoreResult<Vec<(i64, i64, NaiveDate)>>;
    /// Writes one batch of terms, created at `at`, like `import_subscribers`.
    async fn import_terms(
        &self,
        terms: &[ImportedTerm],
        at: DateTime<Utc>,
        fence: Option<&Fence>,
        commit: bool,
    ) -> StoreResult<()>;
    /// Subscribers that are not merged, by sequence after `after`.
    async fn export_subscribers(
        &self,
        after: i64,
        limit: i64,
    ) -> StoreResult<Vec<ExportedSubscriber>>;
    /// Terms by id after `after`.
    async fn export_terms(&self, after: i64, limit: i64) -> StoreResult<Vec<ExportedTerm>>;
    /// Lets the query planner see how large an import has made the tables.
    async fn refresh_statistics(&self) -> StoreResult<()>;
}

/// A reader from an import file, checked and ready to write.
#[derive(Debug, Clone)]
pub struct ImportedSubscriber {
    /// The sequence of the number the file gives, when that number is free: the reader is
    /// created under it. Without one, the reader gets the next number.
    pub number: Option<i64>,
    pub legacy_id: Option<String>,
    pub profile: Profile,
    pub terms: Vec<SearchTerm>,
}

/// One batch of an import: new readers, and existing ones to tag with their legacy id.
#[derive(Debug, Clone, Default)]
pub struct SubscriberBatch {
    pub new: Vec<ImportedSubscriber>,
    /// `(sequence, legacy_id)` of matched subscribers that had no legacy id yet.
    pub tag: Vec<(i64, String)>,
}

/// A term from an import file, resolved to its subscriber and publication.
#[derive(Debug, Clone)]
pub struct ImportedTerm {
    pub subscriber: i64,
    pub term: NewTerm,
    pub extension_days: i64,
    pub cancellation: Option<(NaiveDate, String, Option<i64>)>,
}

/// A subscriber found while matching import rows.
#[derive(Debug, Clone)]
pub struct KnownSubscriber {
    pub sequence: i64,
    pub legacy_id: Option<String>,
    pub merged_into: Option<i64>,
}

/// A subscriber as the export writes it.
#[derive(Debug, Clone)]
pub struct ExportedSubscriber {
    pub subscriber: Subscriber,
    pub legacy_id: Option<String>,
}

/// A term as the export writes it.
#[derive(Debug, Clone)]
pub struct ExportedTerm {
    pub subscriber: SubscriberNumber,
    pub legacy_id: Option<String>,
    pub term: Term,
}
