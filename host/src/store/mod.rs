//! Storage behind one `Store` trait, with a SQLite and a PostgreSQL implementation.
//!
//! The backend is chosen once, from the database URL's scheme. Both backends share the SQL in
//! this module's children (written with `$n` placeholders, which both understand); what
//! differs between them lives in `sqlite.rs`, `postgres.rs` and the two migration folders.

mod audit;
mod backend;
pub mod backup;
mod bulk;
mod catalogue;
pub mod club_models;
mod clubs;
mod events;
mod interactions;
mod jobs;
mod keys;
pub mod models;
mod plugins;
mod postgres;
mod segments;
mod sql;
mod sqlite;
mod staff;
mod subscribers;
mod terms;
mod views;

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};

use crate::domain::club::event::{Answer, InvitationState};
use crate::domain::club::{ClubDraft, Override};
use crate::domain::interaction::Interaction;
use crate::domain::publication::{PriceListDraft, PublicationCode, PublicationDraft};
use crate::domain::search::{Probe, SearchTerm};
use crate::domain::term::Term;
use crate::domain::{ConsentChange, ConsentEvent, Profile, SubscriberNumber};
pub use backend::SqlStore;
pub use backup::BackupStore;
pub use club_models::*;
pub use jobs::{
    Beat, Claim, Ending, Fence, JobFilter, JobRecord, JobRun, JobState, JobStore, NewJob, capped,
};
pub use models::*;

/// What went wrong in storage, in terms the service layer can act on.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("record not found")]
    NotFound,
    /// A uniqueness rule or an expected version did not hold.
    #[error("conflict: {0}")]
    Conflict(String),
    #[error(transparent)]
    Database(sqlx::Error),
    #[error("stored data could not be read: {0}")]
    Corrupt(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::RowNotFound => Self::NotFound,
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                Self::Conflict(db.message().to_owned())
            }
            _ => Self::Database(e),
        }
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

#[async_trait]
pub trait KeyStore: Send + Sync {
    async fn create_api_key(&self, key: NewApiKey) -> StoreResult<ApiKey>;
    async fn list_api_keys(&self) -> StoreResult<Vec<ApiKey>>;
    async fn revoke_api_key(&self, id: i64, at: DateTime<Utc>) -> StoreResult<ApiKey>;
    /// The unrevoked key with this token hash.
    async fn find_api_key(&self, token_hash: &str) -> StoreResult<Option<ApiKey>>;
    async fn count_active_admin_keys(&self) -> StoreResult<i64>;
}

#[async_trait]
pub trait StaffStore: Send + Sync {
    async fn create_staff(&self, staff: NewStaff) -> StoreResult<Staff>;
    async fn list_staff(&self) -> StoreResult<Vec<Staff>>;
    async fn get_staff(&self, id: i64) -> StoreResult<Option<Staff>>;
}

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
    /// Live subscribers holding any of the terms, with the kind of term that matched.
    async fn find_by_terms(&self, terms: &[SearchTerm]) -> StoreResult<Vec<TermMatch>>;
    /// Subscribers answering one probe, best first: exact matches before prefixes.
    async fn search(&self, probe: &Probe, limit: i64) -> StoreResult<Vec<ProbeHit>>;
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

#[async_trait]
pub trait CatalogueStore: Send + Sync {
    async fn create_publication(
        &self,
        definition: &PublicationDraft,
        at: DateTime<Utc>,
    ) -> StoreResult<Publication>;
    async fn list_publications(&self) -> StoreResult<Vec<Publication>>;
    async fn get_publication(&self, code: &PublicationCode) -> StoreResult<Option<Publication>>;
    async fn update_publication(&self, id: i64, definition: &PublicationDraft) -> StoreResult<()>;
    /// Adds a list; another list of the same title from the same day is a conflict.
    async fn add_price_list(
        &self,
        publication_id: i64,
        list: &PriceListDraft,
        at: DateTime<Utc>,
        by: &str,
    ) -> StoreResult<()>;
}

#[async_trait]
pub trait TermStore: Send + Sync {
    /// Every term of the subscriber, with holds and cancellation, oldest first.
    async fn list_terms(&self, subscriber: SubscriberNumber) -> StoreResult<Vec<Term>>;
    /// Writes the order and its terms in one transaction, or returns the order already
    /// written under the same idempotency key. A term that continues one already renewed, or
    /// one that changed since it was priced, is a conflict.
    async fn insert_order(&self, order: NewOrder, audit: AuditEntry) -> StoreResult<OrderOutcome>;
    async fn find_order(&self, idempotency_key: &str) -> StoreResult<Option<Order>>;
    /// Applies the change if the term still ends on `expected_end`, is not cancelled and (for
    /// a hold) has not been renewed.
    async fn change_term(
        &self,
        subscriber: SubscriberNumber,
        term_id: i64,
        expected_end: NaiveDate,
        change: TermChange,
        audit: AuditEntry,
    ) -> StoreResult<Term>;
    /// Auto-renew terms ending from `from` through `until` that nothing renews yet, by id.
    async fn due_terms(
        &self,
        from: NaiveDate,
        until: NaiveDate,
        after_id: i64,
        limit: i64,
    ) -> StoreResult<Vec<DueTerm>>;
}

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
    /// sequences given to the new readers, in order.
    async fn import_subscribers(
        &self,
        batch: &SubscriberBatch,
        audit: AuditEntry,
        commit: bool,
    ) -> StoreResult<Vec<i64>>;
    /// Which `(subscriber, publication, start)` already have a term.
    async fn existing_terms(
        &self,
        keys: &[(i64, i64, NaiveDate)],
    ) -> StoreResult<Vec<(i64, i64, NaiveDate)>>;
    async fn import_terms(&self, terms: &[ImportedTerm], commit: bool) -> StoreResult<()>;
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

#[async_trait]
pub trait AuditStore: Send + Sync {
    async fn append_audit(&self, entries: &[AuditEntry]) -> StoreResult<()>;
    async fn list_audit(&self, filter: &AuditFilter) -> StoreResult<Vec<AuditRecord>>;
}

/// Everything the service keeps, behind one object handlers share.
/// The reads behind the views plugins get of readers.
#[async_trait]
pub trait ViewStore: Send + Sync {
    /// Live (unmerged) subscribers.
    async fn count_readers(&self) -> StoreResult<i64>;
    /// Live subscribers with a sequence above `after` (and at most `through`), in order.
    async fn reader_rows(
        &self,
        after: i64,
        through: Option<i64>,
        limit: i64,
        with_profile: bool,
    ) -> StoreResult<Vec<ReaderRow>>;
    /// The terms (without holds) of subscribers `first..=last`, by subscriber, oldest first.
    async fn reader_terms(&self, first: i64, last: i64) -> StoreResult<Vec<(i64, Term)>>;
}

/// Segments defined by plugins, their refreshes and members.
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

/// Plugins: versions, lifecycle, failures.
#[async_trait]
pub trait PluginStore: Send + Sync {
    /// Stores a new version (creating the plugin on its first upload) with an "uploaded"
    /// event. A taken version, or a kind other than the plugin's, is a conflict.
    async fn insert_plugin_version(&self, new: NewPluginVersion) -> StoreResult<()>;
    async fn list_plugins(&self) -> StoreResult<Vec<PluginRecord>>;
    async fn get_plugin(&self, id: &str) -> StoreResult<Option<PluginRecord>>;
    /// Every version, oldest first.
    async fn plugin_versions(&self, id: &str) -> StoreResult<Vec<PluginVersionRecord>>;
    /// The component and its compiled artefact.
    async fn plugin_artefacts(
        &self,
        id: &str,
        version: &str,
    ) -> StoreResult<Option<(Vec<u8>, Vec<u8>)>>;
    async fn change_plugin_state(
        &self,
        id: &str,
        change: PluginStateChange,
    ) -> StoreResult<PluginRecord>;
    async fn set_plugin_config(
        &self,
        id: &str,
        config: &std::collections::BTreeMap<String, crate::domain::plugin::SettingValue>,
        event: PluginEvent,
    ) -> StoreResult<PluginRecord>;
    /// Removes the plugin and its versions; refused while segments use it.
    async fn delete_plugin(&self, id: &str, event: PluginEvent) -> StoreResult<()>;
    /// Records a failed batch, keeping only the plugin's newest failures; at `threshold`
    /// consecutive failures of the active version the plugin is disabled. Returns whether
    /// this failure tripped the breaker.
    async fn record_plugin_failure(
        &self,
        id: &str,
        failure: &PluginFailureRecord,
        threshold: i64,
    ) -> StoreResult<bool>;
    /// Ends the version's failing streak, if it has one.
    async fn record_plugin_success(&self, id: &str, version: &str) -> StoreResult<()>;
    /// The latest failures, newest first.
    async fn plugin_failures(&self, id: &str, limit: i64) -> StoreResult<Vec<PluginFailureRecord>>;
    async fn plugin_events(&self, id: &str) -> StoreResult<Vec<PluginEvent>>;
}

/// Interactions with readers, their steps and compensations.
#[async_trait]
pub trait InteractionStore: Send + Sync {
    /// Writes a new interaction (already in its state after `steps`), its steps, any
    /// compensation and the audit entry, in one transaction.
    async fn insert_interaction(
        &self,
        new: &Interaction,
        steps: Vec<NewStep>,
        compensation: Option<(CompensationGrant, String)>,
        audit: AuditEntry,
    ) -> StoreResult<Interaction>;
    async fn get_interaction(&self, id: i64) -> StoreResult<Option<Interaction>>;
    /// Writes `next` if the stored interaction is still at `next.version`, with its steps and
    /// any compensation, in one transaction; a changed interaction is a conflict.
    async fn update_interaction(
        &self,
        next: &Interaction,
        steps: Vec<NewStep>,
        compensation: Option<(CompensationGrant, String)>,
        audit: AuditEntry,
    ) -> StoreResult<Interaction>;
    async fn interaction_steps(&self, id: i64) -> StoreResult<Vec<InteractionStep>>;
    async fn list_interactions(&self, filter: &InteractionFilter) -> StoreResult<Vec<Interaction>>;
    /// Unresolved, unpaused interactions due by `until`, soonest first.
    async fn due_interactions(
        &self,
        until: DateTime<Utc>,
        owner: Option<i64>,
        category: Option<crate::domain::interaction::Category>,
        limit: i64,
    ) -> StoreResult<Vec<Interaction>>;
    /// Interactions opened in `[from, to)`, oldest first.
    async fn interactions_opened(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> StoreResult<Vec<Interaction>>;
    /// Every step of every interaction of a subscriber, oldest first.
    async fn subscriber_steps(
        &self,
        subscriber: SubscriberNumber,
    ) -> StoreResult<Vec<(Interaction, Vec<InteractionStep>)>>;
    async fn compensations(&self, subscriber: SubscriberNumber) -> StoreResult<Vec<Compensation>>;
    /// The complaints of subscribers `first..=last` that have any, as of `now`.
    async fn complaint_tallies(
        &self,
        first: i64,
        last: i64,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<(i64, ComplaintTally)>>;
    /// Terms (not cancelled before their end) that ended from `from` through `to`.
    async fn renewal_outcomes(
        &self,
        from: NaiveDate,
        to: NaiveDate,
    ) -> StoreResult<Vec<RenewalOutcome>>;
}

/// Reader clubs: definitions, memberships, the tier history and overrides.
#[async_trait]
pub trait ClubStore: Send + Sync {
    /// A taken code is a conflict.
    async fn insert_club(
        &self,
        definition: &ClubDraft,
        at: DateTime<Utc>,
    ) -> StoreResult<ClubRecord>;
    async fn list_clubs(&self) -> StoreResult<Vec<ClubRecord>>;
    async fn get_club(&self, code: &str) -> StoreResult<Option<ClubRecord>>;
    /// Replaces the definition if the stored version is still `expected_version`.
    async fn update_club(
        &self,
        id: i64,
        expected_version: i64,
        definition: &ClubDraft,
        at: DateTime<Utc>,
    ) -> StoreResult<ClubRecord>;
    /// The tiers members hold or overrides in force name.
    async fn tiers_in_use(&self, club_id: i64) -> StoreResult<Vec<String>>;
    /// Memberships of subscribers `first..=last`.
    async fn memberships(
        &self,
        club_id: i64,
        first: i64,
        last: i64,
    ) -> StoreResult<Vec<Membership>>;
    /// Overrides not yet ended (expired ones too) of subscribers `first..=last`.
    async fn overrides_in_force(
        &self,
        club_id: i64,
        first: i64,
        last: i64,
    ) -> StoreResult<Vec<(i64, Override)>>;
    /// Writes the changed standings, their moves and the ends of expired overrides in one
    /// transaction; for a recomputation job, only while its `fence` holds (else a conflict).
    async fn apply_tiers(
        &self,
        club_id: i64,
        updates: &[TierUpdate],
        expired: &[i64],
        by: &str,
        at: DateTime<Utc>,
        fence: Option<&Fence>,
    ) -> StoreResult<()>;
    /// `(subscriber, club code, tier)` of subscribers `first..=last` that hold any tier.
    async fn tiers_of(&self, first: i64, last: i64) -> StoreResult<Vec<(i64, String, String)>>;
    /// `(club code, membership)` for every club the reader is in.
    async fn subscriber_memberships(
        &self,
        subscriber: i64,
    ) -> StoreResult<Vec<(String, Membership)>>;
    /// Oldest first.
    async fn tier_history(&self, subscriber: i64) -> StoreResult<Vec<TierChange>>;
    /// Every move in the club before `until`, oldest first.
    async fn club_changes(
        &self,
        club_id: i64,
        until: DateTime<Utc>,
    ) -> StoreResult<Vec<TierChange>>;
    async fn members_by_tier(&self, club_id: i64) -> StoreResult<Vec<(String, i64)>>;
    /// Newest first, ended ones too.
    async fn subscriber_overrides(&self, subscriber: i64) -> StoreResult<Vec<OverrideRecord>>;
    /// One already in force for the reader in the club is a conflict.
    async fn insert_override(
        &self,
        new: NewOverride,
        audit: AuditEntry,
    ) -> StoreResult<OverrideRecord>;
    /// Ends the override in force; none is `NotFound`.
    async fn end_override(
        &self,
        club_id: i64,
        subscriber: i64,
        by: &str,
        at: DateTime<Utc>,
        audit: AuditEntry,
    ) -> StoreResult<OverrideRecord>;
}

/// Club events and their invitations.
#[async_trait]
pub trait EventStore: Send + Sync {
    async fn insert_event(&self, new: NewEvent) -> StoreResult<EventRecord>;
    async fn get_event(&self, id: i64) -> StoreResult<Option<EventRecord>>;
    /// Events starting in `[from, to)`, soonest first.
    async fn list_events(
        &self,
        club_id: i64,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> StoreResult<Vec<EventRecord>>;
    /// Invites the members of `tiers` (only those in `segment`, if given) not invited yet;
    /// returns how many were.
    async fn invite_members(
        &self,
        event_id: i64,
        club_id: i64,
        tiers: &[String],
        segment: Option<i64>,
        at: DateTime<Utc>,
    ) -> StoreResult<i64>;
    /// Records the answer; never more readers accepted than places, also when answers race.
    /// An uninvited reader is `NotFound`; a refused answer a conflict.
    async fn answer_invitation(
        &self,
        event_id: i64,
        subscriber: i64,
        answer: Answer,
        at: DateTime<Utc>,
    ) -> StoreResult<Answered>;
    async fn check_in(
        &self,
        event_id: i64,
        subscriber: i64,
        at: DateTime<Utc>,
    ) -> StoreResult<Invitation>;
    /// Invitations with a subscriber above `after`, in order.
    async fn invitations(
        &self,
        event_id: i64,
        state: Option<InvitationState>,
        after: i64,
        limit: i64,
    ) -> StoreResult<Vec<Invitation>>;
    async fn subscriber_invitations(&self, subscriber: i64) -> StoreResult<Vec<Invitation>>;
}

#[async_trait]
pub trait Store:
    KeyStore
    + StaffStore
    + SubscriberStore
    + CatalogueStore
    + TermStore
    + BulkStore
    + AuditStore
    + PluginStore
    + ViewStore
    + SegmentStore
    + InteractionStore
    + ClubStore
    + EventStore
    + BackupStore
    + JobStore
{
    /// "sqlite" or "postgres".
    fn backend(&self) -> &'static str;
    /// Fails unless the database answers a trivial query.
    async fn ping(&self) -> StoreResult<()>;
    async fn close(&self);
}

/// Opens (creating and migrating) the database the URL names.
pub async fn open(url: &str) -> anyhow::Result<Arc<dyn Store>> {
    let scheme = url.split_once(':').map(|(s, _)| s).unwrap_or("");
    match scheme {
        "sqlite" => Ok(Arc::new(sqlite::open(url).await?)),
        "postgres" | "postgresql" => Ok(Arc::new(postgres::open(url).await?)),
        _ => anyhow::bail!(
            "database URL `{}` has no known scheme: use sqlite://PATH (the default is \
             sqlite://data/masthead.db) or postgres://USER@HOST/DATABASE",
            redact(url)
        ),
    }
}

/// The URL with any password replaced, safe to show in messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(start), Some(at)) if at > start => {
            let credentials = &url[start + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..start + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn redacts_passwords_only() {
        assert_eq!(
            super::redact("postgres://u:secret@db/x"),
            "postgres://u:***@db/x"
        );
        assert_eq!(super::redact("postgres://u@db/x"), "postgres://u@db/x");
        assert_eq!(super::redact("sqlite://data/m.db"), "sqlite://data/m.db");
    }
}
