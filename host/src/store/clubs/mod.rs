//! Reader clubs in the store: `ClubStore` and its records; `sql.rs` holds the SQL both backends
//! run.

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{AuditEntry, Fence, StoreResult};
use crate::domain::club::{ClubDraft, Override, TierMove};

/// Reader clubs: definitions, memberships, the tier history, overrides and recomputations.
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

#[derive(Debug, Clone)]
pub struct ClubRecord {
    pub id: i64,
    pub definition: ClubDraft,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A reader's tier in one club, as last computed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    pub subscriber: i64,
    pub tier: String,
    pub tier_since: NaiveDate,
    pub member_since: NaiveDate,
    pub because: String,
    pub overridden: bool,
    pub evaluated_at: DateTime<Utc>,
}

/// What a recomputation decided for one reader whose standing changed.
#[derive(Debug, Clone)]
pub struct TierUpdate {
    pub subscriber: i64,
    /// The tier now held; none when the reader left the club.
    pub tier: Option<String>,
    pub because: String,
    pub overridden: bool,
    /// The move, when the tier itself changed; otherwise only the explanation did.
    pub moved: Option<(TierMove, Option<String>)>,
}

/// One move between tiers.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TierChange {
    pub id: i64,
    pub club: String,
    #[serde(skip)]
    pub subscriber: i64,
    #[serde(rename = "change")]
    pub moved: TierMove,
    pub from_tier: Option<String>,
    pub to_tier: Option<String>,
    pub because: String,
    pub by: String,
    pub on_day: NaiveDate,
    pub at: DateTime<Utc>,
}

/// An override as stored, in force or ended.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OverrideRecord {
    pub club: String,
    #[serde(flatten)]
    pub details: Override,
    pub ended_at: Option<DateTime<Utc>>,
    /// Who ended it, or `expiry`.
    pub ended_by: Option<String>,
}

#[derive(Debug, Clone)]
pub struct NewOverride {
    pub club_id: i64,
    pub subscriber: i64,
    pub details: Override,
}

/// What a recomputation has done so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RecomputeCounts {
    pub processed: i64,
    pub joined: i64,
    pub promoted: i64,
    pub demoted: i64,
    pub left: i64,
    /// Readers left as they were because a plugin their rules name gave no verdict.
    pub undecided: i64,
}

impl RecomputeCounts {
    pub fn add(&mut self, other: RecomputeCounts) {
        self.processed += other.processed;
        self.joined += other.joined;
        self.promoted += other.promoted;
        self.demoted += other.demoted;
        self.left += other.left;
        self.undecided += other.undecided;
    }

    pub fn count(&mut self, moved: TierMove) {
        match moved {
            TierMove::Joined => self.joined += 1,
            TierMove::Promoted => self.promoted += 1,
            TierMove::Demoted => self.demoted += 1,
            TierMove::Left => self.left += 1,
        }
    }
}
