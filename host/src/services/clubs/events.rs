//! Club events: planning one, inviting the eligible members (or a segment of them), answers
//! with a waitlist, check-in on the day, and the attendance on a reader's card.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::Clubs;
use crate::domain::SubscriberNumber;
use crate::domain::club::event::{Answer, EventDraft, EventKind, InvitationState};
use crate::services::audit::AuditLog;
use crate::services::subscribers::{Caller, Registry};
use crate::services::{ServiceError, ServiceResult};
use crate::store::{EventRecord, Invitation, NewEvent, Store, StoreError, StoreResult};

/// One event on a reader's card.
#[derive(Debug, Serialize, ToSchema)]
pub struct Attendance {
    pub event: i64,
    pub club: String,
    pub title: String,
    pub kind: EventKind,
    pub starts_at: DateTime<Utc>,
    pub place: String,
    pub state: InvitationState,
    pub checked_in_at: Option<DateTime<Utc>>,
}

/// An invitation with the reader's number.
#[derive(Debug, Serialize, ToSchema)]
pub struct InvitationView {
    #[schema(value_type = String)]
    pub subscriber: SubscriberNumber,
    #[serde(flatten)]
    pub invitation: Invitation,
}

impl From<Invitation> for InvitationView {
    fn from(invitation: Invitation) -> Self {
        Self {
            subscriber: SubscriberNumber::from_sequence(invitation.subscriber),
            invitation,
        }
    }
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InviteRequest {
    /// Only the eligible members in this segment.
    pub segment: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Invited {
    /// Readers invited by this request (those invited before are not counted again).
    pub invited: i64,
    pub event: EventRecord,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AnswerRequest {
    pub answer: Answer,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AnswerView {
    pub invitation: InvitationView,
    /// The waitlisted reader who got the place this answer gave back.
    pub promoted: Option<InvitationView>,
}

pub struct Events {
    store: Arc<dyn Store>,
    clubs: Arc<Clubs>,
    registry: Arc<Registry>,
    audit: AuditLog,
}

impl Events {
    pub fn new(
        store: Arc<dyn Store>,
        clubs: Arc<Clubs>,
        registry: Arc<Registry>,
        audit: AuditLog,
    ) -> Self {
        Self {
            store,
            clubs,
            registry,
            audit,
        }
    }

    pub async fn create(
        &self,
        caller: &Caller,
        code: &str,
        draft: EventDraft,
    ) -> ServiceResult<EventRecord> {
        let club = self.clubs.find(code).await?;
        let now = self.clubs.clock().now();
        draft
            .validate(&club.definition, now)
            .map_err(ServiceError::Invalid)?;
        let event = self
            .store
            .insert_event(NewEvent {
                club_id: club.id,
                draft,
                by: caller.actor.name.clone(),
                at: now,
            })
            .await?;
        self.audit
            .record(caller.audit(
                "club.event.create",
                None,
                json!({ "club": code, "event": event.id }),
            ))
            .await;
        Ok(event)
    }

    /// Events starting in `[from, to)` (default: from now on).
    pub async fn list(
        &self,
        code: &str,
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
    ) -> ServiceResult<Vec<EventRecord>> {
        let club = self.clubs.find(code).await?;
        let from = from.unwrap_or_else(|| self.clubs.clock().now());
        let to = to.unwrap_or(DateTime::<Utc>::MAX_UTC);
        Ok(self.store.list_events(club.id, from, to).await?)
    }

    pub async fn get(&self, id: i64) -> ServiceResult<EventRecord> {
        self.store
            .get_event(id)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("there is no event {id}")))
    }

    /// Invites every member of the eligible tiers, or only those in a segment; readers
    /// invited before keep their invitation and answer.
    pub async fn invite(
        &self,
        caller: &Caller,
        id: i64,
        request: InviteRequest,
    ) -> ServiceResult<Invited> {
        let event = self.get(id).await?;
        if event.starts_at <= self.clubs.clock().now() {
            return Err(ServiceError::Conflict(format!(
                "event {id} has begun; invitations are closed"
            )));
        }
        let club = self.clubs.find(&event.club).await?;
        let segment = match &request.segment {
            Some(name) => Some(
                self.store
                    .get_segment(name)
                    .await?
                    .ok_or_else(|| ServiceError::NotFound(format!("there is no segment {name}")))?
                    .id,
            ),
            None => None,
        };
        let invited = self
            .store
            .invite_members(
                id,
                club.id,
                &event.eligible_tiers,
                segment,
                self.clubs.clock().now(),
            )
            .await?;
        self.audit
            .record(caller.audit(
                "club.event.invite",
                None,
                json!({ "event": id, "invited": invited, "segment": request.segment }),
            ))
            .await;
        Ok(Invited {
            invited,
            event: self.get(id).await?,
        })
    }

    pub async fn answer(
        &self,
        caller: &Caller,
        id: i64,
        number: SubscriberNumber,
        answer: Answer,
    ) -> ServiceResult<AnswerView> {
        self.registry.load_live(number).await?;
        self.get(id).await?;
        let answered = self
            .store
            .answer_invitation(id, number.sequence(), answer, self.clubs.clock().now())
            .await
            .map_err(|e| not_invited(e, id, number))?;
        self.audit
            .record(caller.audit(
                "club.event.answer",
                Some(number),
                json!({ "event": id, "state": answered.invitation.state }),
            ))
            .await;
        Ok(AnswerView {
            invitation: answered.invitation.into(),
            promoted: answered.promoted.map(Into::into),
        })
    }

    pub async fn check_in(
        &self,
        caller: &Caller,
        id: i64,
        number: SubscriberNumber,
    ) -> ServiceResult<InvitationView> {
        self.registry.load(number).await?;
        self.get(id).await?;
        let invitation = self
            .store
            .check_in(id, number.sequence(), self.clubs.clock().now())
            .await
            .map_err(|e| not_invited(e, id, number))?;
        self.audit
            .record(caller.audit("club.event.check_in", Some(number), json!({ "event": id })))
            .await;
        Ok(invitation.into())
    }

    pub async fn invitations(
        &self,
        id: i64,
        state: Option<InvitationState>,
        after: i64,
        limit: i64,
    ) -> ServiceResult<Vec<InvitationView>> {
        self.get(id).await?;
        Ok(self
            .store
            .invitations(id, state, after, limit)
            .await?
            .into_iter()
            .map(Into::into)
            .collect())
    }
}

/// The reader's invitations with what each event was.
pub(super) async fn attendance(store: &dyn Store, reader: i64) -> StoreResult<Vec<Attendance>> {
    let mut seen = Vec::new();
    for invitation in store.subscriber_invitations(reader).await? {
        let Some(event) = store.get_event(invitation.event).await? else {
            continue;
        };
        seen.push(Attendance {
            event: event.id,
            club: event.club,
            title: event.title,
            kind: event.kind,
            starts_at: event.starts_at,
            place: event.place,
            state: invitation.state,
            checked_in_at: invitation.checked_in_at,
        });
    }
    Ok(seen)
}

fn not_invited(e: StoreError, id: i64, number: SubscriberNumber) -> ServiceError {
    match e {
        StoreError::NotFound => {
            ServiceError::NotFound(format!("subscriber {number} is not invited to event {id}"))
        }
        StoreError::Conflict(detail) => ServiceError::Conflict(detail),
        other => other.into(),
    }
}
