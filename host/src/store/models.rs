//! The records the store reads and writes.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::money::Money;
use crate::domain::publication::{Format, PriceListDraft, PublicationDraft};
use crate::domain::search::{SearchTerm, TermKind};
use crate::domain::subscriber::{RelationshipLevel, SubscriberKind};
use crate::domain::term::{Discount, PaymentMethod, SalesChannel, Term};
use crate::domain::{ConsentChange, Consents, Profile, Role, SubscriberNumber, SubscriberStatus};

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ApiKey {
    pub id: i64,
    pub name: String,
    pub role: Role,
    /// The first characters of the token, to tell keys apart.
    pub hint: String,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

pub struct NewApiKey {
    pub name: String,
    pub role: Role,
    pub token_hash: String,
    pub hint: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Staff {
    pub id: i64,
    pub name: String,
    pub email: Option<String>,
    pub active: bool,
    pub created_at: DateTime<Utc>,
}

pub struct NewStaff {
    pub name: String,
    pub email: Option<String>,
    pub created_at: DateTime<Utc>,
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

/// Who did something through the API.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Actor {
    pub key_id: Option<i64>,
    pub name: String,
    pub role: Role,
}

/// One line of the audit log, before it is written. `detail` never holds personal data.
#[derive(Debug, Clone)]
pub struct AuditEntry {
    pub at: DateTime<Utc>,
    pub actor: Actor,
    pub action: &'static str,
    pub subscriber: Option<SubscriberNumber>,
    pub request_id: Option<String>,
    pub detail: serde_json::Value,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AuditRecord {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub actor: Actor,
    pub action: String,
    #[schema(value_type = Option<String>)]
    pub subscriber: Option<SubscriberNumber>,
    pub request_id: Option<String>,
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
}

/// Newest first; `before` is the last id of the previous page.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub subscriber: Option<SubscriberNumber>,
    pub action: Option<String>,
    pub before: Option<i64>,
    pub limit: i64,
}

/// A title with every price list it ever had, oldest first.
#[derive(Debug, Clone)]
pub struct Publication {
    pub id: i64,
    pub definition: PublicationDraft,
    pub price_lists: Vec<PriceListDraft>,
    pub created_at: DateTime<Utc>,
}

/// What created a group of terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OrderKind {
    /// A first subscription, or titles added outside a renewal.
    Subscription,
    Renewal,
    AutoRenewal,
    Import,
}

/// A term ready to be written: priced, dated and linked.
#[derive(Debug, Clone)]
pub struct NewTerm {
    pub publication_id: i64,
    pub format: Format,
    pub months: u32,
    pub start: NaiveDate,
    pub end: NaiveDate,
    pub list_price: Money,
    pub discounts: Vec<Discount>,
    pub price_paid: Money,
    pub channel: SalesChannel,
    pub payment_method: PaymentMethod,
    pub auto_renew: bool,
    pub renews: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct NewOrder {
    pub subscriber: SubscriberNumber,
    pub kind: OrderKind,
    pub idempotency_key: Option<String>,
    /// A digest of the request, so a key reused for another request is caught.
    pub request_hash: Option<String>,
    pub terms: Vec<NewTerm>,
    pub at: DateTime<Utc>,
    pub created_by: String,
}

/// One paid step and the terms it created.
#[derive(Debug, Clone)]
pub struct Order {
    pub id: i64,
    pub subscriber: SubscriberNumber,
    pub kind: OrderKind,
    pub idempotency_key: Option<String>,
    pub request_hash: Option<String>,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
    pub terms: Vec<Term>,
}

/// Inserting an order either writes it or finds the one written earlier under its key.
#[derive(Debug, Clone)]
pub enum OrderOutcome {
    Created(Order),
    Existing(Order),
}

/// A change to one term, checked by the service against `expected_end` so that two racing
/// changes cannot both apply.
#[derive(Debug, Clone)]
pub enum TermChange {
    Hold {
        from: NaiveDate,
        to: NaiveDate,
        reason: Option<String>,
    },
    Cancel {
        effective: NaiveDate,
        reason: String,
        refund: Option<Money>,
    },
    AutoRenew(bool),
}

/// An auto-renew term that ends soon and has not been renewed.
#[derive(Debug, Clone)]
pub struct DueTerm {
    pub subscriber: SubscriberNumber,
    pub term_id: i64,
    pub end: NaiveDate,
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

/// A plugin: its kind, which version runs, and whether it is on.
#[derive(Debug, Clone)]
pub struct PluginRecord {
    pub id: String,
    pub kind: crate::domain::plugin::PluginKind,
    pub active_version: Option<String>,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    /// Installation overrides of the manifest's configuration defaults.
    pub config: BTreeMap<String, crate::domain::plugin::SettingValue>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// One uploaded version of a plugin (without its bytes).
#[derive(Debug, Clone)]
pub struct PluginVersionRecord {
    pub plugin_id: String,
    pub version: String,
    pub manifest: crate::domain::plugin::Manifest,
    pub api_version: String,
    pub sha256: String,
    pub size_bytes: i64,
    pub pii_granted: bool,
    pub uploaded_by: String,
    pub uploaded_at: DateTime<Utc>,
    pub consecutive_failures: i64,
}

pub struct NewPluginVersion {
    pub manifest: crate::domain::plugin::Manifest,
    pub api_version: String,
    pub sha256: String,
    pub component: Vec<u8>,
    pub compiled: Vec<u8>,
    pub pii_granted: bool,
    pub uploaded_by: String,
    pub at: DateTime<Utc>,
}

/// A step in a plugin's life, for its history.
#[derive(Debug, Clone)]
pub struct PluginEvent {
    pub version: Option<String>,
    pub action: String,
    pub detail: Option<String>,
    pub actor: String,
    pub at: DateTime<Utc>,
}

/// A change of which version runs and whether the plugin is on, with the event that says why.
pub struct PluginStateChange {
    pub active_version: Option<String>,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    pub event: PluginEvent,
}

/// A failed batch of one plugin version.
#[derive(Debug, Clone)]
pub struct PluginFailureRecord {
    pub version: String,
    pub cause: String,
    pub message: String,
    pub records: i64,
    pub at: DateTime<Utc>,
}

/// What a plugin view of a reader needs from the subscriber row.
#[derive(Debug, Clone)]
pub struct ReaderRow {
    pub sequence: i64,
    pub region: Option<String>,
    pub postal_code: Option<String>,
    pub birth_year: Option<u16>,
    pub consents: Consents,
    /// Read only when a plugin may see contact details or attributes.
    pub profile: Option<Profile>,
    /// Filled only for plugins that read complaints.
    pub complaints: ComplaintTally,
    /// Personal data removed: such a reader holds no club tier.
    pub erased: bool,
    /// `(club, tier, rank)` with rank 1 for a club's lowest tier; filled only for plugins that
    /// read club tiers.
    pub club_tiers: Vec<(String, String, u8)>,
}

/// A reader's complaints, as plugins see them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ComplaintTally {
    /// When the oldest complaint still unresolved was opened.
    pub oldest_open: Option<DateTime<Utc>>,
    /// Not yet resolved.
    pub open: u32,
    pub total: u32,
    /// Opened in the last 365 days.
    pub last_year: u32,
    /// A response or resolution came after its due time, or is missing past it.
    pub breached: u32,
}

/// A segment defined by a segmenter plugin and one of the keys it returns.
#[derive(Debug, Clone)]
pub struct SegmentRecord {
    pub id: i64,
    pub name: String,
    pub description: Option<String>,
    pub plugin_id: String,
    pub plugin_version: Option<String>,
    pub segment_key: String,
    pub size: Option<i64>,
    pub refreshed_at: Option<DateTime<Utc>>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
}

pub struct NewSegment {
    pub name: String,
    pub description: Option<String>,
    pub plugin_id: String,
    pub plugin_version: Option<String>,
    pub segment_key: String,
    pub created_by: String,
    pub at: DateTime<Utc>,
}

/// One step of an interaction's workflow, as recorded.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct InteractionStep {
    pub id: i64,
    pub interaction: i64,
    pub action: crate::domain::interaction::Action,
    pub note: Option<String>,
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
    pub at: DateTime<Utc>,
    /// The API key (staff member) that took the step.
    pub by: String,
}

pub struct NewStep {
    pub action: crate::domain::interaction::Action,
    pub note: Option<String>,
    pub detail: serde_json::Value,
    pub at: DateTime<Utc>,
    pub by: String,
}

/// What a resolution gives the reader.
#[derive(Debug, Clone, PartialEq)]
pub enum CompensationGrant {
    /// Extra days on a term: its end moves by as many days.
    Extension { term: i64, days: u32 },
    /// A credit on the reader's account (recorded, not paid out by Masthead).
    Credit { amount: Money },
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Compensation {
    pub id: i64,
    pub interaction: i64,
    #[schema(value_type = String)]
    pub subscriber: SubscriberNumber,
    /// `extension` or `credit`.
    pub kind: String,
    pub term: Option<i64>,
    pub days: Option<i32>,
    pub amount: Option<Money>,
    pub reason: String,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
}

/// Newest first; `before` is the last id of the previous page.
#[derive(Debug, Clone, Default)]
pub struct InteractionFilter {
    pub subscriber: Option<SubscriberNumber>,
    pub state: Option<crate::domain::interaction::State>,
    pub owner: Option<i64>,
    pub category: Option<crate::domain::interaction::Category>,
    pub kind: Option<crate::domain::interaction::Kind>,
    pub before: Option<i64>,
    pub limit: i64,
}

/// A term that ended in a period, and whether it was renewed.
#[derive(Debug, Clone, Copy)]
pub struct RenewalOutcome {
    pub subscriber: i64,
    pub renewed: bool,
}
