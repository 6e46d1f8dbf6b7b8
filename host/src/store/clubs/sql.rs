//! Clubs in storage: definitions, memberships with their explanation, the tier history,
//! and staff overrides. Recomputations are jobs (see `store::jobs`); their batches of
//! changed standings are written under the job's fence.

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use sqlx::FromRow;

use super::audit::insert_audit;
use super::bulk::value_rows;
use super::jobs::fenced_in;
use super::{Connection, Db};
use crate::domain::club::{ClubDraft, Override, TierMove};
use crate::store::backend::{SqlStore, enum_text, parse_enum};
use crate::store::replica::Freshness;
use crate::store::{
    AuditEntry, ClubRecord, ClubStore, Fence, Membership, NewOverride, OverrideRecord, StoreError,
    StoreResult, TierChange, TierUpdate,
};

/// Readers per multi-row statement.
const CHUNK: usize = 400;

const CLUB_COLUMNS: &str = "id, definition, version, created_at, updated_at";
const MEMBERSHIP_COLUMNS: &str =
    "subscriber_id, tier, tier_since, member_since, because, overridden, evaluated_at";
const CHANGE_COLUMNS: &str = "t.id, c.code, t.subscriber_id, t.move, t.from_tier, t.to_tier, \
     t.because, t.by_name, t.on_day, t.at";
const OVERRIDE_COLUMNS: &str = "o.id, c.code, o.subscriber_id, o.tier, o.kind, o.reason, \
     o.expires, o.created_by, o.created_at, o.ended_at, o.ended_by";

#[derive(FromRow)]
struct ClubRow {
    id: i64,
    definition: String,
    version: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl TryFrom<ClubRow> for ClubRecord {
    type Error = StoreError;
    fn try_from(r: ClubRow) -> StoreResult<Self> {
        Ok(Self {
            id: r.id,
            definition: serde_json::from_str(&r.definition)
                .map_err(|e| StoreError::Corrupt(format!("club {}: {e}", r.id)))?,
            version: r.version,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

type MembershipRow = (
    i64,
    String,
    NaiveDate,
    NaiveDate,
    String,
    bool,
    DateTime<Utc>,
);

fn membership(r: MembershipRow) -> Membership {
    Membership {
        subscriber: r.0,
        tier: r.1,
        tier_since: r.2,
        member_since: r.3,
        because: r.4,
        overridden: r.5,
        evaluated_at: r.6,
    }
}

#[derive(FromRow)]
struct ChangeRow {
    id: i64,
    code: String,
    subscriber_id: i64,
    #[sqlx(rename = "move")]
    moved: String,
    from_tier: Option<String>,
    to_tier: Option<String>,
    because: String,
    by_name: String,
    on_day: NaiveDate,
    at: DateTime<Utc>,
}

impl TryFrom<ChangeRow> for TierChange {
    type Error = StoreError;
    fn try_from(r: ChangeRow) -> StoreResult<Self> {
        Ok(Self {
            id: r.id,
            club: r.code,
            subscriber: r.subscriber_id,
            moved: parse_enum(&r.moved)?,
            from_tier: r.from_tier,
            to_tier: r.to_tier,
            because: r.because,
            by: r.by_name,
            on_day: r.on_day,
            at: r.at,
        })
    }
}

#[derive(FromRow)]
struct OverrideRow {
    id: i64,
    code: String,
    subscriber_id: i64,
    tier: String,
    kind: String,
    reason: String,
    expires: NaiveDate,
    created_by: String,
    created_at: DateTime<Utc>,
    ended_at: Option<DateTime<Utc>>,
    ended_by: Option<String>,
}

impl OverrideRow {
    fn record(self) -> StoreResult<(i64, OverrideRecord)> {
        Ok((
            self.subscriber_id,
            OverrideRecord {
                club: self.code,
                details: Override {
                    id: self.id,
                    tier: self.tier,
                    kind: parse_enum(&self.kind)?,
                    reason: self.reason,
                    expires: self.expires,
                    by: self.created_by,
                    created_at: self.created_at,
                },
                ended_at: self.ended_at,
                ended_by: self.ended_by,
            },
        ))
    }
}

fn definition_text(definition: &ClubDraft) -> String {
    serde_json::to_string(definition).unwrap_or_default()
}

#[async_trait]
impl ClubStore for SqlStore<Db> {
    #[tracing::instrument(level = "debug", skip_all)]
    async fn insert_club(
        &self,
        definition: &ClubDraft,
        at: DateTime<Utc>,
    ) -> StoreResult<ClubRecord> {
        let sql = format!(
            "INSERT INTO clubs (code, definition, created_at, updated_at) VALUES ($1, $2, $3, $3) \
             RETURNING {CLUB_COLUMNS}"
        );
        let row: ClubRow = sqlx::query_as(&sql)
            .bind(definition.code.as_str())
            .bind(definition_text(definition))
            .bind(at)
            .fetch_one(&self.write)
            .await
            .map_err(|e| match StoreError::from(e) {
                StoreError::Conflict(_) => {
                    StoreError::Conflict(format!("a club with code {} exists", definition.code))
                }
                other => other,
            })?;
        row.try_into()
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn list_clubs(&self) -> StoreResult<Vec<ClubRecord>> {
        let sql = format!("SELECT {CLUB_COLUMNS} FROM clubs ORDER BY code");
        let rows: Vec<ClubRow> = sqlx::query_as(&sql).fetch_all(&self.read).await?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn get_club(&self, code: &str) -> StoreResult<Option<ClubRecord>> {
        let sql = format!("SELECT {CLUB_COLUMNS} FROM clubs WHERE code = $1");
        let row: Option<ClubRow> = sqlx::query_as(&sql)
            .bind(code)
            .fetch_optional(&self.read)
            .await?;
        row.map(TryInto::try_into).transpose()
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn update_club(
        &self,
        id: i64,
        expected_version: i64,
        definition: &ClubDraft,
        at: DateTime<Utc>,
    ) -> StoreResult<ClubRecord> {
        let sql = format!(
            "UPDATE clubs SET definition = $3, version = version + 1, updated_at = $4 \
             WHERE id = $1 AND version = $2 RETURNING {CLUB_COLUMNS}"
        );
        let row: Option<ClubRow> = sqlx::query_as(&sql)
            .bind(id)
            .bind(expected_version)
            .bind(definition_text(definition))
            .bind(at)
            .fetch_optional(&self.write)
            .await?;
        match row {
            Some(row) => row.try_into(),
            None => Err(StoreError::Conflict(format!(
                "club {} changed since version {expected_version}; load it again",
                definition.code
            ))),
        }
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn tiers_in_use(&self, club_id: i64) -> StoreResult<Vec<String>> {
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT tier FROM club_memberships WHERE club_id = $1 \
             UNION SELECT tier FROM tier_overrides WHERE club_id = $1 AND ended_at IS NULL",
        )
        .bind(club_id)
        .fetch_all(&self.read)
        .await?;
        Ok(rows.into_iter().map(|(t,)| t).collect())
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn memberships(
        &self,
        club_id: i64,
        first: i64,
        last: i64,
    ) -> StoreResult<Vec<Membership>> {
        let sql = format!(
            "SELECT {MEMBERSHIP_COLUMNS} FROM club_memberships \
             WHERE club_id = $1 AND subscriber_id >= $2 AND subscriber_id <= $3"
        );
        let rows: Vec<MembershipRow> = sqlx::query_as(&sql)
            .bind(club_id)
            .bind(first)
            .bind(last)
            .fetch_all(&self.read)
            .await?;
        Ok(rows.into_iter().map(membership).collect())
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn overrides_in_force(
        &self,
        club_id: i64,
        first: i64,
        last: i64,
    ) -> StoreResult<Vec<(i64, Override)>> {
        let sql = format!(
            "SELECT {OVERRIDE_COLUMNS} FROM tier_overrides o JOIN clubs c ON c.id = o.club_id \
             WHERE o.club_id = $1 AND o.subscriber_id >= $2 AND o.subscriber_id <= $3 \
             AND o.ended_at IS NULL"
        );
        let rows: Vec<OverrideRow> = sqlx::query_as(&sql)
            .bind(club_id)
            .bind(first)
            .bind(last)
            .fetch_all(&self.read)
            .await?;
        rows.into_iter()
            .map(|r| r.record().map(|(s, o)| (s, o.details)))
            .collect()
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn apply_tiers(
        &self,
        club_id: i64,
        updates: &[TierUpdate],
        expired: &[i64],
        by: &str,
        at: DateTime<Utc>,
        fence: Option<&Fence>,
    ) -> StoreResult<()> {
        let today = at.date_naive();
        let mut tx = self.write.begin().await?;
        if let Some(fence) = fence {
            fenced_in(&mut tx, fence).await?;
        }
        let (held, gone): (Vec<&TierUpdate>, Vec<&TierUpdate>) =
            updates.iter().partition(|u| u.tier.is_some());
        for chunk in held.chunks(CHUNK) {
            let sql = format!(
                "INSERT INTO club_memberships (club_id, subscriber_id, tier, tier_since, \
                 member_since, because, overridden, evaluated_at) VALUES {} \
                 ON CONFLICT (club_id, subscriber_id) DO UPDATE SET tier = excluded.tier, \
                 tier_since = CASE WHEN club_memberships.tier = excluded.tier \
                 THEN club_memberships.tier_since ELSE excluded.tier_since END, \
                 because = excluded.because, overridden = excluded.overridden, \
                 evaluated_at = excluded.evaluated_at",
                value_rows(chunk.len(), 8)
            );
            let mut query = sqlx::query(&sql);
            for u in chunk {
                query = query
                    .bind(club_id)
                    .bind(u.subscriber)
                    .bind(u.tier.clone())
                    .bind(today)
                    .bind(today)
                    .bind(u.because.as_str())
                    .bind(u.overridden)
                    .bind(at);
            }
            query.execute(&mut *tx).await?;
        }
        for u in gone {
            sqlx::query("DELETE FROM club_memberships WHERE club_id = $1 AND subscriber_id = $2")
                .bind(club_id)
                .bind(u.subscriber)
                .execute(&mut *tx)
                .await?;
        }
        let moves: Vec<&TierUpdate> = updates.iter().filter(|u| u.moved.is_some()).collect();
        for chunk in moves.chunks(CHUNK) {
            let sql = format!(
                "INSERT INTO tier_changes (club_id, subscriber_id, move, from_tier, to_tier, \
                 because, by_name, on_day, at) VALUES {}",
                value_rows(chunk.len(), 9)
            );
            let mut query = sqlx::query(&sql);
            for u in chunk {
                let (moved, from) = u.moved.clone().unwrap_or((TierMove::Left, None));
                query = query
                    .bind(club_id)
                    .bind(u.subscriber)
                    .bind(moved.as_str())
                    .bind(from)
                    .bind(u.tier.clone())
                    .bind(u.because.as_str())
                    .bind(by)
                    .bind(today)
                    .bind(at);
            }
            query.execute(&mut *tx).await?;
        }
        for id in expired {
            sqlx::query(
                "UPDATE tier_overrides SET ended_at = $2, ended_by = 'expiry' \
                 WHERE id = $1 AND ended_at IS NULL",
            )
            .bind(*id)
            .bind(at)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn tiers_of(&self, first: i64, last: i64) -> StoreResult<Vec<(i64, String, String)>> {
        Ok(sqlx::query_as(
            "SELECT m.subscriber_id, c.code, m.tier FROM club_memberships m \
             JOIN clubs c ON c.id = m.club_id \
             WHERE m.subscriber_id >= $1 AND m.subscriber_id <= $2 \
             ORDER BY m.subscriber_id, c.code",
        )
        .bind(first)
        .bind(last)
        .fetch_all(&mut *self.reader(Freshness::Committed).await?)
        .await?)
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn subscriber_memberships(
        &self,
        subscriber: i64,
    ) -> StoreResult<Vec<(String, Membership)>> {
        let rows: Vec<(
            String,
            i64,
            String,
            NaiveDate,
            NaiveDate,
            String,
            bool,
            DateTime<Utc>,
        )> = sqlx::query_as(
            "SELECT c.code, m.subscriber_id, m.tier, m.tier_since, m.member_since, \
                 m.because, m.overridden, m.evaluated_at FROM club_memberships m \
                 JOIN clubs c ON c.id = m.club_id WHERE m.subscriber_id = $1 ORDER BY c.code",
        )
        .bind(subscriber)
        .fetch_all(&self.read)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| (r.0, membership((r.1, r.2, r.3, r.4, r.5, r.6, r.7))))
            .collect())
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn tier_history(&self, subscriber: i64) -> StoreResult<Vec<TierChange>> {
        let sql = format!(
            "SELECT {CHANGE_COLUMNS} FROM tier_changes t JOIN clubs c ON c.id = t.club_id \
             WHERE t.subscriber_id = $1 ORDER BY t.at, t.id"
        );
        let rows: Vec<ChangeRow> = sqlx::query_as(&sql)
            .bind(subscriber)
            .fetch_all(&self.read)
            .await?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn club_changes(
        &self,
        club_id: i64,
        until: DateTime<Utc>,
    ) -> StoreResult<Vec<TierChange>> {
        let sql = format!(
            "SELECT {CHANGE_COLUMNS} FROM tier_changes t JOIN clubs c ON c.id = t.club_id \
             WHERE t.club_id = $1 AND t.at < $2 ORDER BY t.at, t.id"
        );
        let rows: Vec<ChangeRow> = sqlx::query_as(&sql)
            .bind(club_id)
            .bind(until)
            .fetch_all(&self.read)
            .await?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn members_by_tier(&self, club_id: i64) -> StoreResult<Vec<(String, i64)>> {
        Ok(sqlx::query_as(
            "SELECT tier, COUNT(*) FROM club_memberships WHERE club_id = $1 GROUP BY tier",
        )
        .bind(club_id)
        .fetch_all(&self.read)
        .await?)
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn subscriber_overrides(&self, subscriber: i64) -> StoreResult<Vec<OverrideRecord>> {
        let sql = format!(
            "SELECT {OVERRIDE_COLUMNS} FROM tier_overrides o JOIN clubs c ON c.id = o.club_id \
             WHERE o.subscriber_id = $1 ORDER BY o.created_at DESC, o.id DESC"
        );
        let rows: Vec<OverrideRow> = sqlx::query_as(&sql)
            .bind(subscriber)
            .fetch_all(&self.read)
            .await?;
        rows.into_iter()
            .map(|r| r.record().map(|(_, o)| o))
            .collect()
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn insert_override(
        &self,
        new: NewOverride,
        audit: AuditEntry,
    ) -> StoreResult<OverrideRecord> {
        let mut tx = self.write.begin().await?;
        let d = &new.details;
        let inserted: Result<(i64,), sqlx::Error> = sqlx::query_as(
            "INSERT INTO tier_overrides (club_id, subscriber_id, tier, kind, reason, expires, \
             created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
        )
        .bind(new.club_id)
        .bind(new.subscriber)
        .bind(d.tier.as_str())
        .bind(enum_text(&d.kind))
        .bind(d.reason.as_str())
        .bind(d.expires)
        .bind(d.by.as_str())
        .bind(d.created_at)
        .fetch_one(&mut *tx)
        .await;
        let (id,) = match inserted {
            Ok(row) => row,
            Err(e) => {
                tx.rollback().await?;
                return Err(match StoreError::from(e) {
                    StoreError::Conflict(_) => StoreError::Conflict(
                        "an override of this reader in this club is in force; end it first".into(),
                    ),
                    other => other,
                });
            }
        };
        insert_audit(&mut tx, &audit).await?;
        let record = read_override(&mut tx, id).await?;
        tx.commit().await?;
        Ok(record)
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn end_override(
        &self,
        club_id: i64,
        subscriber: i64,
        by: &str,
        at: DateTime<Utc>,
        audit: AuditEntry,
    ) -> StoreResult<OverrideRecord> {
        let mut tx = self.write.begin().await?;
        let ended: Option<(i64,)> = sqlx::query_as(
            "UPDATE tier_overrides SET ended_at = $3, ended_by = $4 \
             WHERE club_id = $1 AND subscriber_id = $2 AND ended_at IS NULL RETURNING id",
        )
        .bind(club_id)
        .bind(subscriber)
        .bind(at)
        .bind(by)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((id,)) = ended else {
            tx.rollback().await?;
            return Err(StoreError::NotFound);
        };
        insert_audit(&mut tx, &audit).await?;
        let record = read_override(&mut tx, id).await?;
        tx.commit().await?;
        Ok(record)
    }
}

async fn read_override(conn: &mut Connection, id: i64) -> StoreResult<OverrideRecord> {
    let sql = format!(
        "SELECT {OVERRIDE_COLUMNS} FROM tier_overrides o JOIN clubs c ON c.id = o.club_id \
         WHERE o.id = $1"
    );
    let row: OverrideRow = sqlx::query_as(&sql).bind(id).fetch_one(&mut *conn).await?;
    row.record().map(|(_, o)| o)
}
