//! Subscribers in the store: `SubscriberStore` and its records; `sql.rs` holds the SQL both
//! backends run.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::{AuditEntry, StoreResult};
use crate::domain::search::{Probe, SearchTerm, TermKind};
use crate::domain::subscriber::{RelationshipLevel, SubscriberKind};
use crate::domain::{
    ConsentChange, ConsentEvent, Consents, Profile, SubscriberNumber, SubscriberStatus,
};

#[async_trait]
pub trait SubscriberStore: Send + Sync {
    /// Writes a new subscriber, its search terms, initial consents and the audit entry.
    async fn insert_subscriber(
        &self,
        new: NewSubscriber,
        audit: AuditEntry,
    ) -> StoreResult<Subscriber>;
    async fn get_subscriber(&self, number: SubscriberNumber) -> StoreResult<Option<Subscriber>>;
    /// Replaces the profile if the stored version is still `expected_version`.
    async fn update_profile(
        &self,
        number: SubscriberNumber,
        expected_version: i64,
        profile: &Profile,
        terms: &[SearchTerm],
        audit: AuditEntry,
    ) -> StoreResult<Subscriber>;
    async fn list_subscribers(
        &self,
        filter: &SubscriberFilter,
    ) -> StoreResult<Vec<SubscriberSummary>>;
    /// The subscribers with these sequences (at most a page of them), in sequence order.
    async fn summaries(&self, sequences: &[i64]) -> StoreResult<Vec<SubscriberSummary>>;
    /// Live subscribers holding any of the terms, with the kind of term that matched.
    async fn find_by_terms(&self, terms: &[SearchTerm]) -> StoreResult<Vec<TermMatch>>;
    /// Subscribers answering each probe (one list per probe, in the probes' order), each list
    /// in term order and at most `limit` long.
    async fn search(&self, probes: &[Probe], limit: i64) -> StoreResult<Vec<Vec<ProbeHit>>>;
    async fn record_consents(
        &self,
        number: SubscriberNumber,
        changes: &[ConsentChange],
        at: DateTime<Utc>,
        audit: AuditEntry,
    ) -> StoreResult<Subscriber>;
    async fn consent_history(&self, number: SubscriberNumber) -> StoreResult<Vec<ConsentEvent>>;
    /// Folds `plan.source` into `plan.target` in one transaction.
    async fn merge_subscribers(
        &self,
        plan: MergePlan,
        audit: AuditEntry,
    ) -> StoreResult<Subscriber>;
    /// Removes personal data, keeping the number and anonymous history.
    async fn erase_subscriber(
        &self,
        number: SubscriberNumber,
        expected_version: i64,
        erased: &Profile,
        audit: AuditEntry,
    ) -> StoreResult<Subscriber>;
}

/// A subscriber as stored: the profile plus what the system keeps about the record.
#[derive(Debug, Clone)]
pub struct Subscriber {
    pub number: SubscriberNumber,
    pub status: SubscriberStatus,
    pub profile: Profile,
    pub consents: Consents,
    pub merged_into: Option<SubscriberNumber>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

pub struct NewSubscriber {
    pub profile: Profile,
    pub terms: Vec<SearchTerm>,
    pub consents: Vec<ConsentChange>,
    /// The API key name that recorded the initial consents.
    pub recorded_by: String,
    pub at: DateTime<Utc>,
}

/// One line of a list or a search result.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct SubscriberSummary {
    #[schema(value_type = String, example = "1000007")]
    pub number: SubscriberNumber,
    pub display_name: String,
    pub kind: SubscriberKind,
    pub status: SubscriberStatus,
    pub postal_code: Option<String>,
    pub city: Option<String>,
    pub region: Option<String>,
}

/// Filters of the subscriber list; `after` is the last sequence of the previous page.
#[derive(Debug, Clone, Default)]
pub struct SubscriberFilter {
    pub status: Option<SubscriberStatus>,
    pub kind: Option<SubscriberKind>,
    pub relationship_level: Option<RelationshipLevel>,
    pub relationship_manager: Option<i64>,
    pub postal_code: Option<String>,
    pub region: Option<String>,
    pub after: Option<i64>,
    pub limit: i64,
}

#[derive(Debug, Clone)]
pub struct TermMatch {
    pub subscriber: SubscriberSummary,
    pub kind: TermKind,
}

#[derive(Debug, Clone)]
pub struct ProbeHit {
    pub subscriber: SubscriberSummary,
    /// Whether the whole term matched rather than a prefix of it.
    pub exact: bool,
}

/// A merge worked out by the service: the folded profile and the versions it was based on.
pub struct MergePlan {
    pub source: SubscriberNumber,
    pub source_version: i64,
    pub target: SubscriberNumber,
    pub target_version: i64,
    pub profile: Profile,
    pub consents: Consents,
    pub terms: Vec<SearchTerm>,
    pub at: DateTime<Utc>,
}
