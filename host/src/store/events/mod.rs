//! Club events in the store: `EventStore` and its records; `sql.rs` holds the SQL both backends
//! run.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::StoreResult;
use crate::domain::club::event::{Answer, EventDraft, EventKind, InvitationState};

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
