//! Subscribers in storage: the card, its search terms, consents, merges and erasure.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::FromRow;
use sqlx::types::Json;

use super::audit::insert_audit;
use super::sql::Sql;
use super::{Connection, Db};
use crate::domain::consent::{self, ConsentChannel, ConsentPurpose};
use crate::domain::search::{Probe, SearchTerm, TermKind};
use crate::domain::text::prefix_upper_bound;
use crate::domain::{
    ConsentChange, ConsentEvent, Consents, Profile, ProfileDraft, SubscriberNumber,
};
use crate::store::backend::{Backend, SqlStore, enum_text, parse_enum};
use crate::store::replica::Freshness;
use crate::store::{
    AuditEntry, MergePlan, NewSubscriber, ProbeHit, StoreError, StoreResult, Subscriber,
    SubscriberFilter, SubscriberStore, SubscriberSummary, TermMatch,
};

/// Subscribers that can still be found and changed.
pub(super) const LIVE: &str = "status NOT IN ('merged', 'erased')";
pub(super) const CARD_COLUMNS: &str =
    "id, status, profile, consents, merged_into, version, created_at, updated_at";
pub(super) const SUMMARY_COLUMNS: &str =
    "s.id, s.display_name, s.kind, s.status, s.postal_code, s.city, s.region";

/// The tables whose rows belong to one subscriber and follow it into a merge.
const SUBSCRIBER_OWNED_TABLES: &[&str] = &[
    "consent_events",
    "orders",
    "terms",
    "holds",
    "interactions",
    "interaction_steps",
    "compensations",
    "tier_changes",
    "tier_overrides",
    "event_invitations",
];

#[derive(FromRow)]
pub(super) struct CardRow {
    id: i64,
    status: String,
    profile: Json<ProfileDraft>,
    consents: Json<Consents>,
    merged_into: Option<i64>,
    version: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl TryFrom<CardRow> for Subscriber {
    type Error = StoreError;
    fn try_from(row: CardRow) -> StoreResult<Self> {
        Ok(Self {
            number: SubscriberNumber::from_sequence(row.id),
            status: parse_enum(&row.status)?,
            profile: Profile::from_stored(row.profile.0),
            consents: row.consents.0,
            merged_into: row.merged_into.map(SubscriberNumber::from_sequence),
            version: row.version,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}

#[derive(FromRow)]
pub(super) struct SummaryRow {
    id: i64,
    display_name: String,
    kind: String,
    status: String,
    postal_code: Option<String>,
    city: Option<String>,
    region: Option<String>,
}

impl TryFrom<SummaryRow> for SubscriberSummary {
    type Error = StoreError;
    fn try_from(row: SummaryRow) -> StoreResult<Self> {
        Ok(Self {
            number: SubscriberNumber::from_sequence(row.id),
            display_name: row.display_name,
            kind: parse_enum(&row.kind)?,
            status: parse_enum(&row.status)?,
            postal_code: row.postal_code,
            city: row.city,
            region: row.region,
        })
    }
}

#[derive(FromRow)]
struct HitRow {
    #[sqlx(flatten)]
    summary: SummaryRow,
    term: String,
}

/// A hit of one part of a combined search, numbered by its probe.
#[derive(FromRow)]
struct ProbeRow {
    probe: i64,
    #[sqlx(flatten)]
    hit: HitRow,
}

#[derive(FromRow)]
struct MatchRow {
    #[sqlx(flatten)]
    summary: SummaryRow,
    term_kind: String,
}

#[derive(FromRow)]
struct ConsentEventRow {
    purpose: String,
    granted: bool,
    channel: String,
    note: Option<String>,
    recorded_at: DateTime<Utc>,
    recorded_by: String,
}

/// The columns copied out of the profile so that lists and filters need no JSON.
pub(super) struct ProfileColumns {
    pub(super) kind: String,
    pub(super) status: String,
    pub(super) display_name: String,
    pub(super) postal_code: Option<String>,
    pub(super) city: Option<String>,
    pub(super) region: Option<String>,
    pub(super) country: Option<String>,
    pub(super) birth_year: Option<i32>,
    pub(super) relationship_manager: Option<i64>,
    pub(super) relationship_level: String,
}

impl ProfileColumns {
    pub(super) fn of(profile: &Profile) -> Self {
        let draft = profile.draft();
        let address = profile.main_address();
        Self {
            kind: enum_text(&draft.kind),
            status: enum_text(&draft.status),
            display_name: profile.display_name(),
            postal_code: profile.postal_code(),
            city: address.map(|a| a.city.clone()).filter(|c| !c.is_empty()),
            region: address.and_then(|a| a.region.clone()),
            country: address.and_then(|a| a.country.clone()),
            birth_year: profile.birth_year(),
            relationship_manager: draft.relationship_manager,
            relationship_level: enum_text(&draft.relationship_level),
        }
    }
}

fn term_kind(text: &str) -> StoreResult<TermKind> {
    [
        TermKind::Name,
        TermKind::Email,
        TermKind::Phone,
        TermKind::Postal,
        TermKind::Identity,
    ]
    .into_iter()
    .find(|k| k.as_str() == text)
    .ok_or_else(|| StoreError::Corrupt(format!("unknown search term kind `{text}`")))
}

#[async_trait]
impl SubscriberStore for SqlStore<Db> {
    #[tracing::instrument(level = "debug", skip_all)]
    async fn insert_subscriber(
        &self,
        new: NewSubscriber,
        mut audit: AuditEntry,
    ) -> StoreResult<Subscriber> {
        let mut consents = Consents::new();
        for change in &new.consents {
            consent::apply(&mut consents, change, new.at);
        }
        let columns = ProfileColumns::of(&new.profile);
        let mut tx = self.write.begin().await?;
        let sql = format!(
            "INSERT INTO subscribers (kind, status, display_name, profile, consents, postal_code, city, \
             region, country, birth_year, relationship_manager_id, relationship_level, version, \
             created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 1, $13, $13) RETURNING {CARD_COLUMNS}"
        );
        let row: CardRow = sqlx::query_as(&sql)
            .bind(columns.kind)
            .bind(columns.status)
            .bind(columns.display_name)
            .bind(Json(new.profile.draft().clone()))
            .bind(Json(consents))
            .bind(columns.postal_code)
            .bind(columns.city)
            .bind(columns.region)
            .bind(columns.country)
            .bind(columns.birth_year)
            .bind(columns.relationship_manager)
            .bind(columns.relationship_level)
            .bind(new.at)
            .fetch_one(&mut *tx)
            .await?;
        let id = row.id;
        insert_terms(&mut tx, id, &new.terms).await?;
        for change in &new.consents {
            insert_consent_event(&mut tx, id, change, new.at, &new.recorded_by).await?;
        }
        audit.subscriber = Some(SubscriberNumber::from_sequence(id));
        insert_audit(&mut tx, &audit).await?;
        tx.commit().await?;
        row.try_into()
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn get_subscriber(&self, number: SubscriberNumber) -> StoreResult<Option<Subscriber>> {
        let sql = format!("SELECT {CARD_COLUMNS} FROM subscribers WHERE id = $1");
        let row: Option<CardRow> = sqlx::query_as(&sql)
            .bind(number.sequence())
            .fetch_optional(&mut *self.reader(Freshness::OwnWrites).await?)
            .await?;
        row.map(TryInto::try_into).transpose()
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn update_profile(
        &self,
        number: SubscriberNumber,
        expected_version: i64,
        profile: &Profile,
        terms: &[SearchTerm],
        audit: AuditEntry,
    ) -> StoreResult<Subscriber> {
        let columns = ProfileColumns::of(profile);
        let mut tx = self.write.begin().await?;
        let sql = format!(
            "UPDATE subscribers SET kind = $3, status = $4, display_name = $5, profile = $6, \
             postal_code = $7, city = $8, region = $9, country = $10, birth_year = $11, \
             relationship_manager_id = $12, relationship_level = $13, version = version + 1, \
             updated_at = $14 WHERE id = $1 AND version = $2 AND {LIVE} RETURNING {CARD_COLUMNS}"
        );
        let row: Option<CardRow> = sqlx::query_as(&sql)
            .bind(number.sequence())
            .bind(expected_version)
            .bind(columns.kind)
            .bind(columns.status)
            .bind(columns.display_name)
            .bind(Json(profile.draft().clone()))
            .bind(columns.postal_code)
            .bind(columns.city)
            .bind(columns.region)
            .bind(columns.country)
            .bind(columns.birth_year)
            .bind(columns.relationship_manager)
            .bind(columns.relationship_level)
            .bind(audit.at)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(row) = row else {
            // Give the writer connection back first: for SQLite it is the only one.
            tx.rollback().await?;
            return Err(self.why_not_updated(number).await);
        };
        replace_terms(&mut tx, row.id, terms).await?;
        insert_audit(&mut tx, &audit).await?;
        tx.commit().await?;
        row.try_into()
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn list_subscribers(
        &self,
        filter: &SubscriberFilter,
    ) -> StoreResult<Vec<SubscriberSummary>> {
        let mut query = Sql::new(format!(
            "SELECT {SUMMARY_COLUMNS} FROM subscribers s WHERE 1 = 1"
        ));
        if let Some(status) = &filter.status {
            query.push(" AND s.status = ").bind(enum_text(status));
        } else {
            query.push(" AND s.status <> 'merged'");
        }
        if let Some(kind) = &filter.kind {
            query.push(" AND s.kind = ").bind(enum_text(kind));
        }
        if let Some(level) = &filter.relationship_level {
            query
                .push(" AND s.relationship_level = ")
                .bind(enum_text(level));
        }
        if let Some(manager) = filter.relationship_manager {
            query
                .push(" AND s.relationship_manager_id = ")
                .bind(manager);
        }
        if let Some(postal_code) = &filter.postal_code {
            query
                .push(" AND s.postal_code = ")
                .bind(postal_code.clone());
        }
        if let Some(region) = &filter.region {
            query.push(" AND s.region = ").bind(region.clone());
        }
        if let Some(after) = filter.after {
            query.push(" AND s.id > ").bind(after);
        }
        query.push(" ORDER BY s.id LIMIT ").bind(filter.limit);
        let rows: Vec<SummaryRow> = query.query_as().fetch_all(&self.read).await?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn summaries(&self, sequences: &[i64]) -> StoreResult<Vec<SubscriberSummary>> {
        if sequences.is_empty() {
            return Ok(Vec::new());
        }
        let mut query = Sql::new(format!(
            "SELECT {SUMMARY_COLUMNS} FROM subscribers s WHERE s.id IN ("
        ));
        for (i, sequence) in sequences.iter().enumerate() {
            if i > 0 {
                query.push(", ");
            }
            query.bind(*sequence);
        }
        query.push(") ORDER BY s.id");
        let rows: Vec<SummaryRow> = query.query_as().fetch_all(&self.read).await?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn find_by_terms(&self, terms: &[SearchTerm]) -> StoreResult<Vec<TermMatch>> {
        if terms.is_empty() {
            return Ok(Vec::new());
        }
        let mut query = Sql::new(format!(
            "SELECT {SUMMARY_COLUMNS}, t.kind AS term_kind FROM search_terms t \
             JOIN subscribers s ON s.id = t.subscriber_id WHERE s.{LIVE} AND ("
        ));
        for (i, term) in terms.iter().enumerate() {
            if i > 0 {
                query.push(" OR ");
            }
            query
                .push("(t.kind = ")
                .bind(term.kind.as_str())
                .push(" AND t.term = ")
                .bind(term.term.as_str())
                .push(")");
        }
        query.push(") ORDER BY s.id LIMIT 50");
        let rows: Vec<MatchRow> = query.query_as().fetch_all(&self.read).await?;
        rows.into_iter()
            .map(|row| {
                Ok(TermMatch {
                    kind: term_kind(&row.term_kind)?,
                    subscriber: row.summary.try_into()?,
                })
            })
            .collect()
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn search(&self, probes: &[Probe], limit: i64) -> StoreResult<Vec<Vec<ProbeHit>>> {
        let mut found: Vec<Vec<ProbeHit>> = vec![Vec::new(); probes.len()];
        // Probes of terms are asked in one statement, a part each, so that a search costs one
        // round trip to the server however many readings of the query it has.
        let mut query = Sql::new("");
        let mut drivers: Vec<Option<&str>> = vec![None; probes.len()];
        for (index, probe) in probes.iter().enumerate() {
            let (kind, driving, words, exact): (&str, &str, &[String], bool) = match probe {
                Probe::Number(number) => {
                    found[index] = self.search_sequence(number.sequence()).await?;
                    continue;
                }
                Probe::Sequence(sequence) => {
                    found[index] = self.search_sequence(*sequence).await?;
                    continue;
                }
                Probe::Exact(kind, term) => (kind.as_str(), term, &[], true),
                Probe::Prefix(kind, term) => (kind.as_str(), term, &[], false),
                Probe::Name(words) => {
                    let driving = words
                        .iter()
                        .max_by_key(|w| w.len())
                        .map_or("", String::as_str);
                    (TermKind::Name.as_str(), driving, words, false)
                }
            };
            if drivers.iter().any(Option::is_some) {
                query.push(" UNION ALL ");
            }
            drivers[index] = Some(driving);
            push_term_probe(&mut query, index, kind, driving, words, exact, limit);
        }
        if drivers.iter().all(Option::is_none) {
            return Ok(found);
        }
        // Each part is in term order already; the whole is ordered too, since a union keeps
        // its parts' order only by the planner's grace.
        query.push(" ORDER BY probe, term, id");
        let rows: Vec<ProbeRow> = query
            .query_as()
            .fetch_all(&mut *self.search_reader().await?)
            .await?;
        for row in rows {
            let index = usize::try_from(row.probe)
                .ok()
                .filter(|i| *i < probes.len())
                .ok_or_else(|| StoreError::Corrupt(format!("search part {}", row.probe)))?;
            found[index].push(ProbeHit {
                exact: Some(row.hit.term.as_str()) == drivers[index],
                subscriber: row.hit.summary.try_into()?,
            });
        }
        Ok(found)
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn record_consents(
        &self,
        number: SubscriberNumber,
        changes: &[ConsentChange],
        at: DateTime<Utc>,
        audit: AuditEntry,
    ) -> StoreResult<Subscriber> {
        let mut tx = self.write.begin().await?;
        let sql = format!(
            "SELECT consents FROM subscribers WHERE id = $1 AND {LIVE}{}",
            Db::LOCK_ROW
        );
        let current: Option<(Json<Consents>,)> = sqlx::query_as(&sql)
            .bind(number.sequence())
            .fetch_optional(&mut *tx)
            .await?;
        let Some((Json(mut consents),)) = current else {
            return Err(StoreError::NotFound);
        };
        for change in changes {
            consent::apply(&mut consents, change, at);
            insert_consent_event(&mut tx, number.sequence(), change, at, &audit.actor.name).await?;
        }
        let sql = format!(
            "UPDATE subscribers SET consents = $2, version = version + 1, updated_at = $3 \
             WHERE id = $1 RETURNING {CARD_COLUMNS}"
        );
        let row: CardRow = sqlx::query_as(&sql)
            .bind(number.sequence())
            .bind(Json(consents))
            .bind(at)
            .fetch_one(&mut *tx)
            .await?;
        insert_audit(&mut tx, &audit).await?;
        tx.commit().await?;
        row.try_into()
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn consent_history(&self, number: SubscriberNumber) -> StoreResult<Vec<ConsentEvent>> {
        let rows: Vec<ConsentEventRow> = sqlx::query_as(
            "SELECT purpose, granted, channel, note, recorded_at, recorded_by FROM consent_events \
             WHERE subscriber_id = $1 ORDER BY recorded_at, id",
        )
        .bind(number.sequence())
        .fetch_all(&self.read)
        .await?;
        rows.into_iter()
            .map(|row| {
                Ok(ConsentEvent {
                    purpose: ConsentPurpose::parse(&row.purpose).ok_or_else(|| {
                        StoreError::Corrupt(format!("consent purpose `{}`", row.purpose))
                    })?,
                    granted: row.granted,
                    channel: ConsentChannel::parse(&row.channel).ok_or_else(|| {
                        StoreError::Corrupt(format!("consent channel `{}`", row.channel))
                    })?,
                    note: row.note,
                    recorded_at: row.recorded_at,
                    recorded_by: row.recorded_by,
                })
            })
            .collect()
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn merge_subscribers(
        &self,
        plan: MergePlan,
        audit: AuditEntry,
    ) -> StoreResult<Subscriber> {
        let (source, target) = (plan.source.sequence(), plan.target.sequence());
        let columns = ProfileColumns::of(&plan.profile);
        let mut tx = self.write.begin().await?;
        let moved: Option<(i64,)> = sqlx::query_as(&format!(
            "UPDATE subscribers SET status = 'merged', merged_into = $2, version = version + 1, \
             updated_at = $4 WHERE id = $1 AND version = $3 AND {LIVE} RETURNING id"
        ))
        .bind(source)
        .bind(target)
        .bind(plan.source_version)
        .bind(plan.at)
        .fetch_optional(&mut *tx)
        .await?;
        if moved.is_none() {
            return Err(StoreError::Conflict(format!(
                "subscriber {} changed while the merge was prepared; load it again and retry",
                plan.source
            )));
        }
        let sql = format!(
            "UPDATE subscribers SET display_name = $3, profile = $4, consents = $5, postal_code = $6, \
             city = $7, region = $8, country = $9, birth_year = $10, relationship_manager_id = $11, \
             relationship_level = $12, version = version + 1, updated_at = $13 \
             WHERE id = $1 AND version = $2 AND {LIVE} RETURNING {CARD_COLUMNS}"
        );
        let row: Option<CardRow> = sqlx::query_as(&sql)
            .bind(target)
            .bind(plan.target_version)
            .bind(columns.display_name)
            .bind(Json(plan.profile.draft().clone()))
            .bind(Json(plan.consents))
            .bind(columns.postal_code)
            .bind(columns.city)
            .bind(columns.region)
            .bind(columns.country)
            .bind(columns.birth_year)
            .bind(columns.relationship_manager)
            .bind(columns.relationship_level)
            .bind(plan.at)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(row) = row else {
            return Err(StoreError::Conflict(format!(
                "subscriber {} changed while the merge was prepared; load it again and retry",
                plan.target
            )));
        };
        // Club standings are derived: the merged number leaves its clubs (ending its
        // overrides), and the next recomputation places the kept reader. An invitation both
        // numbers hold stays the kept reader's.
        sqlx::query("DELETE FROM club_memberships WHERE subscriber_id = $1")
            .bind(source)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "UPDATE tier_overrides SET ended_at = $2, ended_by = 'merge' \
             WHERE subscriber_id = $1 AND ended_at IS NULL",
        )
        .bind(source)
        .bind(audit.at)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "DELETE FROM event_invitations WHERE subscriber_id = $1 AND event_id IN \
             (SELECT event_id FROM event_invitations WHERE subscriber_id = $2)",
        )
        .bind(source)
        .bind(target)
        .execute(&mut *tx)
        .await?;
        for table in SUBSCRIBER_OWNED_TABLES {
            sqlx::query(&format!(
                "UPDATE {table} SET subscriber_id = $1 WHERE subscriber_id = $2"
            ))
            .bind(target)
            .bind(source)
            .execute(&mut *tx)
            .await?;
        }
        // Segment memberships are derived: the merged number leaves its segments, and the
        // next refresh places the kept reader.
        sqlx::query("DELETE FROM segment_members WHERE subscriber_id = $1")
            .bind(source)
            .execute(&mut *tx)
            .await?;
        // Numbers merged into the source earlier now lead straight to the target.
        sqlx::query("UPDATE subscribers SET merged_into = $1 WHERE merged_into = $2")
            .bind(target)
            .bind(source)
            .execute(&mut *tx)
            .await?;
        replace_terms(&mut tx, source, &[]).await?;
        replace_terms(&mut tx, target, &plan.terms).await?;
        insert_audit(&mut tx, &audit).await?;
        tx.commit().await?;
        row.try_into()
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn erase_subscriber(
        &self,
        number: SubscriberNumber,
        expected_version: i64,
        erased: &Profile,
        audit: AuditEntry,
    ) -> StoreResult<Subscriber> {
        let mut tx = self.write.begin().await?;
        // Region and country stay for anonymous statistics; everything else personal goes.
        let sql = format!(
            "UPDATE subscribers SET status = 'erased', display_name = '', profile = $3, \
             consents = $4, postal_code = NULL, city = NULL, birth_year = NULL, \
             relationship_manager_id = NULL, version = version + 1, \
             updated_at = $5 WHERE id = $1 AND version = $2 AND {LIVE} RETURNING {CARD_COLUMNS}"
        );
        let row: Option<CardRow> = sqlx::query_as(&sql)
            .bind(number.sequence())
            .bind(expected_version)
            .bind(Json(erased.draft().clone()))
            .bind(Json(Consents::new()))
            .bind(audit.at)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(row) = row else {
            // Give the writer connection back first: for SQLite it is the only one.
            tx.rollback().await?;
            return Err(self.why_not_updated(number).await);
        };
        replace_terms(&mut tx, row.id, &[]).await?;
        for sql in [
            "UPDATE consent_events SET note = NULL WHERE subscriber_id = $1",
            // What readers told the desk is personal; the figures of the workflow stay.
            "UPDATE interactions SET text = '', contact = NULL, resolution = NULL \
             WHERE subscriber_id = $1",
            "UPDATE interaction_steps SET note = NULL WHERE subscriber_id = $1",
        ] {
            sqlx::query(sql).bind(row.id).execute(&mut *tx).await?;
        }
        insert_audit(&mut tx, &audit).await?;
        tx.commit().await?;
        row.try_into()
    }
}

impl SqlStore<Db> {
    /// A number typed in full or without its check digit; a merged number leads to its target.
    async fn search_sequence(&self, sequence: i64) -> StoreResult<Vec<ProbeHit>> {
        let sql = format!(
            "SELECT {SUMMARY_COLUMNS} FROM subscribers s WHERE s.id = \
             COALESCE((SELECT merged_into FROM subscribers WHERE id = $1), $1) AND s.status <> 'merged'"
        );
        let row: Option<SummaryRow> = sqlx::query_as(&sql)
            .bind(sequence)
            .fetch_optional(&mut *self.reader(Freshness::OwnWrites).await?)
            .await?;
        row.map(|r| {
            Ok(ProbeHit {
                subscriber: r.try_into()?,
                exact: true,
            })
        })
        .into_iter()
        .collect()
    }

    /// Tells a missing subscriber from a stale version or a closed record after a failed write.
    async fn why_not_updated(&self, number: SubscriberNumber) -> StoreError {
        let found: Result<Option<(String,)>, _> =
            sqlx::query_as("SELECT status FROM subscribers WHERE id = $1")
                .bind(number.sequence())
                .fetch_optional(&self.write)
                .await;
        match found {
            Ok(None) => StoreError::NotFound,
            Ok(Some((status,))) if status == "merged" || status == "erased" => {
                StoreError::Conflict(format!(
                    "subscriber {number} is {status} and can no longer change"
                ))
            }
            Ok(Some(_)) => StoreError::Conflict(format!(
                "subscriber {number} was changed by someone else since you loaded it; load it again"
            )),
            Err(e) => e.into(),
        }
    }
}

/// Makes `terms` the whole set a subscriber is found by (none: not found at all).
async fn replace_terms(conn: &mut Connection, id: i64, terms: &[SearchTerm]) -> StoreResult<()> {
    sqlx::query("DELETE FROM search_terms WHERE subscriber_id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    insert_terms(conn, id, terms).await
}

async fn insert_terms(conn: &mut Connection, id: i64, terms: &[SearchTerm]) -> StoreResult<()> {
    if terms.is_empty() {
        return Ok(());
    }
    let mut query = Sql::new("INSERT INTO search_terms (kind, term, subscriber_id) VALUES ");
    for (i, term) in terms.iter().enumerate() {
        query.push(if i == 0 { "(" } else { ", (" });
        query
            .bind(term.kind.as_str())
            .push(", ")
            .bind(term.term.as_str())
            .push(", ")
            .bind(id)
            .push(")");
    }
    query.query().execute(&mut *conn).await?;
    Ok(())
}

async fn insert_consent_event(
    conn: &mut Connection,
    id: i64,
    change: &ConsentChange,
    at: DateTime<Utc>,
    recorded_by: &str,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO consent_events (subscriber_id, purpose, granted, channel, note, recorded_at, recorded_by) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(id)
    .bind(change.purpose.as_str())
    .bind(change.granted)
    .bind(change.channel.as_str())
    .bind(change.note.clone())
    .bind(at)
    .bind(recorded_by.to_owned())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// One probe of terms as a part of a combined search: the readers holding a term of `kind`
/// equal to `driving` (`exact`) or starting with it, in term order, each also holding a name
/// word starting with every other of `words`.
fn push_term_probe(
    query: &mut Sql,
    index: usize,
    kind: &str,
    driving: &str,
    words: &[String],
    exact: bool,
    limit: i64,
) {
    query.push(&format!(
        "SELECT * FROM (SELECT CAST({index} AS BIGINT) AS probe, {SUMMARY_COLUMNS}, t.term \
         FROM search_terms t JOIN subscribers s ON s.id = t.subscriber_id WHERE t.kind = "
    ));
    query.bind(kind.to_owned());
    if exact {
        query.push(" AND t.term = ").bind(driving.to_owned());
    } else {
        query
            .push(" AND t.term >= ")
            .bind(driving.to_owned())
            .push(" AND t.term < ")
            .bind(prefix_upper_bound(driving));
    }
    let mut skipped_driving = false;
    for word in words {
        if word == driving && !skipped_driving {
            skipped_driving = true;
            continue;
        }
        query
            .push(" AND EXISTS (SELECT 1 FROM search_terms o WHERE o.subscriber_id = t.subscriber_id AND o.kind = 'name' AND o.term >= ")
            .bind(word.clone())
            .push(" AND o.term < ")
            .bind(prefix_upper_bound(word))
            .push(Db::PER_ROW_PROBE)
            .push(")");
    }
    query
        .push(" ORDER BY t.term, t.subscriber_id LIMIT ")
        .bind(limit)
        .push(&format!(") p{index}"));
}
