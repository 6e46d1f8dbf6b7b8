//! Club events in storage: the events, invitations, answers that never pass the capacity
//! (the event row is locked while places are counted), the waitlist and check-in.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::FromRow;

use super::{Connection, Db};
use crate::domain::club::event::{self, Answer, InvitationState};
use crate::store::backend::{Backend, SqlStore, parse_enum};
use crate::store::{
    Answered, EventRecord, EventStore, Invitation, InvitationCounts, NewEvent, StoreError,
    StoreResult,
};

const EVENT_COLUMNS: &str = "e.id, c.code, e.title, e.kind, e.starts_at, e.place, e.capacity, \
     e.eligible_tiers, e.description, e.created_by, e.created_at";
const INVITATION_COLUMNS: &str =
    "event_id, subscriber_id, state, position, invited_at, answered_at, checked_in_at";

#[derive(FromRow)]
struct EventRow {
    id: i64,
    code: String,
    title: String,
    kind: String,
    starts_at: DateTime<Utc>,
    place: String,
    capacity: i64,
    eligible_tiers: String,
    description: Option<String>,
    created_by: String,
    created_at: DateTime<Utc>,
}

impl EventRow {
    fn record(self, counts: InvitationCounts) -> StoreResult<EventRecord> {
        Ok(EventRecord {
            id: self.id,
            club: self.code,
            title: self.title,
            kind: parse_enum(&self.kind)?,
            starts_at: self.starts_at,
            place: self.place,
            capacity: self.capacity,
            eligible_tiers: serde_json::from_str(&self.eligible_tiers)
                .map_err(|e| StoreError::Corrupt(format!("event {}: {e}", self.id)))?,
            description: self.description,
            created_by: self.created_by,
            created_at: self.created_at,
            counts,
        })
    }
}

#[derive(FromRow)]
struct InvitationRow {
    event_id: i64,
    subscriber_id: i64,
    state: String,
    position: Option<i64>,
    invited_at: DateTime<Utc>,
    answered_at: Option<DateTime<Utc>>,
    checked_in_at: Option<DateTime<Utc>>,
}

impl TryFrom<InvitationRow> for Invitation {
    type Error = StoreError;
    fn try_from(r: InvitationRow) -> StoreResult<Self> {
        Ok(Self {
            event: r.event_id,
            subscriber: r.subscriber_id,
            state: parse_enum(&r.state)?,
            position: r.position,
            invited_at: r.invited_at,
            answered_at: r.answered_at,
            checked_in_at: r.checked_in_at,
        })
    }
}

fn tally(rows: Vec<(String, i64)>) -> InvitationCounts {
    let mut counts = InvitationCounts::default();
    for (state, n) in rows {
        counts.invited += n;
        match state.as_str() {
            "accepted" => counts.accepted += n,
            "waitlisted" => counts.waitlisted += n,
            "declined" => counts.declined += n,
            "attended" => counts.attended += n,
            _ => {}
        }
    }
    counts
}

#[async_trait]
impl EventStore for SqlStore<Db> {
    #[tracing::instrument(level = "debug", skip_all)]
    async fn insert_event(&self, new: NewEvent) -> StoreResult<EventRecord> {
        let d = &new.draft;
        let (id,): (i64,) = sqlx::query_as(
            "INSERT INTO club_events (club_id, title, kind, starts_at, place, capacity, \
             eligible_tiers, description, created_by, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
        )
        .bind(new.club_id)
        .bind(d.title.trim())
        .bind(d.kind.as_str())
        .bind(d.starts_at)
        .bind(d.place.trim())
        .bind(d.capacity)
        .bind(serde_json::to_string(&d.eligible_tiers).unwrap_or_default())
        .bind(d.description.clone())
        .bind(new.by.as_str())
        .bind(new.at)
        .fetch_one(&self.write)
        .await?;
        self.get_event(id).await?.ok_or(StoreError::NotFound)
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn get_event(&self, id: i64) -> StoreResult<Option<EventRecord>> {
        let sql = format!(
            "SELECT {EVENT_COLUMNS} FROM club_events e JOIN clubs c ON c.id = e.club_id \
             WHERE e.id = $1"
        );
        let Some(row): Option<EventRow> = sqlx::query_as(&sql)
            .bind(id)
            .fetch_optional(&self.write)
            .await?
        else {
            return Ok(None);
        };
        let counts: Vec<(String, i64)> = sqlx::query_as(
            "SELECT state, COUNT(*) FROM event_invitations WHERE event_id = $1 GROUP BY state",
        )
        .bind(id)
        .fetch_all(&self.write)
        .await?;
        row.record(tally(counts)).map(Some)
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn list_events(
        &self,
        club_id: i64,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> StoreResult<Vec<EventRecord>> {
        let sql = format!(
            "SELECT {EVENT_COLUMNS} FROM club_events e JOIN clubs c ON c.id = e.club_id \
             WHERE e.club_id = $1 AND e.starts_at >= $2 AND e.starts_at < $3 \
             ORDER BY e.starts_at, e.id"
        );
        let rows: Vec<EventRow> = sqlx::query_as(&sql)
            .bind(club_id)
            .bind(from)
            .bind(to)
            .fetch_all(&self.read)
            .await?;
        let counts: Vec<(i64, String, i64)> = sqlx::query_as(
            "SELECT i.event_id, i.state, COUNT(*) FROM event_invitations i \
             JOIN club_events e ON e.id = i.event_id \
             WHERE e.club_id = $1 AND e.starts_at >= $2 AND e.starts_at < $3 \
             GROUP BY i.event_id, i.state",
        )
        .bind(club_id)
        .bind(from)
        .bind(to)
        .fetch_all(&self.read)
        .await?;
        rows.into_iter()
            .map(|row| {
                let own = counts
                    .iter()
                    .filter(|(event, _, _)| *event == row.id)
                    .map(|(_, state, n)| (state.clone(), *n))
                    .collect();
                row.record(tally(own))
            })
            .collect()
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn invite_members(
        &self,
        event_id: i64,
        club_id: i64,
        tiers: &[String],
        segment: Option<i64>,
        at: DateTime<Utc>,
    ) -> StoreResult<i64> {
        let in_segment = if segment.is_some() {
            " AND subscriber_id IN (SELECT subscriber_id FROM segment_members \
             WHERE segment_id = $5)"
        } else {
            ""
        };
        let sql = format!(
            "INSERT INTO event_invitations (event_id, subscriber_id, state, invited_at) \
             SELECT $1, subscriber_id, 'invited', $2 FROM club_memberships \
             WHERE club_id = $3 AND tier = $4{in_segment} \
             ON CONFLICT (event_id, subscriber_id) DO NOTHING RETURNING subscriber_id"
        );
        let mut tx = self.write.begin().await?;
        let mut invited = 0;
        for tier in tiers {
            let mut query = sqlx::query_as::<_, (i64,)>(&sql)
                .bind(event_id)
                .bind(at)
                .bind(club_id)
                .bind(tier.as_str());
            if let Some(segment) = segment {
                query = query.bind(segment);
            }
            invited += query.fetch_all(&mut *tx).await?.len();
        }
        tx.commit().await?;
        Ok(i64::try_from(invited).unwrap_or(i64::MAX))
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn answer_invitation(
        &self,
        event_id: i64,
        subscriber: i64,
        answer: Answer,
        at: DateTime<Utc>,
    ) -> StoreResult<Answered> {
        let mut tx = self.write.begin().await?;
        // Every answer to this event waits here for the one before it, so two readers can
        // never both take the last place.
        let lock = format!(
            "SELECT capacity, starts_at FROM club_events WHERE id = $1{}",
            Db::LOCK_ROW
        );
        let event: Option<(i64, DateTime<Utc>)> = sqlx::query_as(&lock)
            .bind(event_id)
            .fetch_optional(&mut *tx)
            .await?;
        let current = read_invitation(&mut tx, event_id, subscriber).await?;
        let (Some((capacity, starts_at)), Some(current)) = (event, current) else {
            tx.rollback().await?;
            return Err(StoreError::NotFound);
        };
        if starts_at <= at {
            tx.rollback().await?;
            return Err(StoreError::Conflict(
                "the event has begun; answers are closed".into(),
            ));
        }
        let (taken,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM event_invitations \
             WHERE event_id = $1 AND state IN ('accepted', 'attended')",
        )
        .bind(event_id)
        .fetch_one(&mut *tx)
        .await?;
        let next = match event::respond(current.state, answer, taken, capacity) {
            Ok(next) => next,
            Err(why) => {
                tx.rollback().await?;
                return Err(StoreError::Conflict(why));
            }
        };
        if next != current.state {
            let position = if next == InvitationState::Waitlisted {
                let (last,): (Option<i64>,) = sqlx::query_as(
                    "SELECT MAX(position) FROM event_invitations WHERE event_id = $1",
                )
                .bind(event_id)
                .fetch_one(&mut *tx)
                .await?;
                Some(last.unwrap_or(0) + 1)
            } else {
                None
            };
            set_state(&mut tx, event_id, subscriber, next, position, at).await?;
        }
        // A place given back goes to the first reader on the waitlist.
        let promoted =
            if current.state == InvitationState::Accepted && next == InvitationState::Declined {
                let first: Option<(i64,)> = sqlx::query_as(
                    "SELECT subscriber_id FROM event_invitations \
                 WHERE event_id = $1 AND state = 'waitlisted' ORDER BY position LIMIT 1",
                )
                .bind(event_id)
                .fetch_optional(&mut *tx)
                .await?;
                match first {
                    Some((reader,)) => {
                        set_state(
                            &mut tx,
                            event_id,
                            reader,
                            InvitationState::Accepted,
                            None,
                            at,
                        )
                        .await?;
                        read_invitation(&mut tx, event_id, reader).await?
                    }
                    None => None,
                }
            } else {
                None
            };
        let invitation = read_invitation(&mut tx, event_id, subscriber)
            .await?
            .ok_or(StoreError::NotFound)?;
        tx.commit().await?;
        Ok(Answered {
            invitation,
            promoted,
        })
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn check_in(
        &self,
        event_id: i64,
        subscriber: i64,
        at: DateTime<Utc>,
    ) -> StoreResult<Invitation> {
        let mut tx = self.write.begin().await?;
        let starts: Option<(DateTime<Utc>,)> =
            sqlx::query_as("SELECT starts_at FROM club_events WHERE id = $1")
                .bind(event_id)
                .fetch_optional(&mut *tx)
                .await?;
        let current = read_invitation(&mut tx, event_id, subscriber).await?;
        let (Some((starts_at,)), Some(current)) = (starts, current) else {
            tx.rollback().await?;
            return Err(StoreError::NotFound);
        };
        if let Err(why) = event::check_in(current.state, starts_at, at) {
            tx.rollback().await?;
            return Err(StoreError::Conflict(why));
        }
        sqlx::query(
            "UPDATE event_invitations SET state = 'attended', checked_in_at = $3 \
             WHERE event_id = $1 AND subscriber_id = $2",
        )
        .bind(event_id)
        .bind(subscriber)
        .bind(at)
        .execute(&mut *tx)
        .await?;
        let invitation = read_invitation(&mut tx, event_id, subscriber)
            .await?
            .ok_or(StoreError::NotFound)?;
        tx.commit().await?;
        Ok(invitation)
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn invitations(
        &self,
        event_id: i64,
        state: Option<InvitationState>,
        after: i64,
        limit: i64,
    ) -> StoreResult<Vec<Invitation>> {
        let filter = if state.is_some() {
            " AND state = $4"
        } else {
            ""
        };
        let sql = format!(
            "SELECT {INVITATION_COLUMNS} FROM event_invitations \
             WHERE event_id = $1 AND subscriber_id > $2{filter} \
             ORDER BY subscriber_id LIMIT $3"
        );
        let mut query = sqlx::query_as(&sql).bind(event_id).bind(after).bind(limit);
        if let Some(state) = state {
            query = query.bind(state.as_str());
        }
        let rows: Vec<InvitationRow> = query.fetch_all(&self.read).await?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn subscriber_invitations(&self, subscriber: i64) -> StoreResult<Vec<Invitation>> {
        let sql = format!(
            "SELECT {INVITATION_COLUMNS} FROM event_invitations WHERE subscriber_id = $1 \
             ORDER BY invited_at, event_id"
        );
        let rows: Vec<InvitationRow> = sqlx::query_as(&sql)
            .bind(subscriber)
            .fetch_all(&self.read)
            .await?;
        rows.into_iter().map(TryInto::try_into).collect()
    }
}

async fn read_invitation(
    conn: &mut Connection,
    event_id: i64,
    subscriber: i64,
) -> StoreResult<Option<Invitation>> {
    let sql = format!(
        "SELECT {INVITATION_COLUMNS} FROM event_invitations \
         WHERE event_id = $1 AND subscriber_id = $2"
    );
    let row: Option<InvitationRow> = sqlx::query_as(&sql)
        .bind(event_id)
        .bind(subscriber)
        .fetch_optional(&mut *conn)
        .await?;
    row.map(TryInto::try_into).transpose()
}

async fn set_state(
    conn: &mut Connection,
    event_id: i64,
    subscriber: i64,
    state: InvitationState,
    position: Option<i64>,
    at: DateTime<Utc>,
) -> StoreResult<()> {
    sqlx::query(
        "UPDATE event_invitations SET state = $3, position = $4, answered_at = $5 \
         WHERE event_id = $1 AND subscriber_id = $2",
    )
    .bind(event_id)
    .bind(subscriber)
    .bind(state.as_str())
    .bind(position)
    .bind(at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}
