//! The records the store reads and writes for reader clubs and their events.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::club::event::{EventDraft, EventKind, InvitationState};
use crate::domain::club::{ClubDraft, Override, TierMove};

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

/// How many invited readers stand where.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct InvitationCounts {
    /// Every invitation, whatever its answer.
    pub invited: i64,
    pub accepted: i64,
    pub waitlisted: i64,
    pub declined: i64,
    pub attended: i64,
}

impl InvitationCounts {
    /// Places taken: accepted and already checked in.
    pub fn taken(&self) -> i64 {
        self.accepted + self.attended
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EventRecord {
    pub id: i64,
    pub club: String,
    pub title: String,
    pub kind: EventKind,
    pub starts_at: DateTime<Utc>,
    pub place: String,
    pub capacity: i64,
    pub eligible_tiers: Vec<String>,
    pub description: Option<String>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub counts: InvitationCounts,
}

pub struct NewEvent {
    pub club_id: i64,
    pub draft: EventDraft,
    pub by: String,
    pub at: DateTime<Utc>,
}

/// One reader's invitation to one event.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Invitation {
    pub event: i64,
    #[serde(skip)]
    pub subscriber: i64,
    pub state: InvitationState,
    /// Order on the waitlist (lower goes first), while waitlisted.
    pub position: Option<i64>,
    pub invited_at: DateTime<Utc>,
    pub answered_at: Option<DateTime<Utc>>,
    pub checked_in_at: Option<DateTime<Utc>>,
}

/// The answer recorded, and the waitlisted reader a freed place went to.
#[derive(Debug, Clone)]
pub struct Answered {
    pub invitation: Invitation,
    pub promoted: Option<Invitation>,
}
