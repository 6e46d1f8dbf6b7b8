//! Interactions in storage: the interaction row, its workflow steps, and compensations
//! applied to terms in the same transaction as the resolution that grants them.

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use sqlx::FromRow;
use sqlx::types::Json;

use super::audit::insert_audit;
use super::{Connection, Db};
use crate::domain::SubscriberNumber;
use crate::domain::interaction::{Category, Interaction};
use crate::domain::money::{Currency, Money};
use crate::domain::sla::DueTimes;
use crate::store::backend::{Backend, SqlStore, parse_enum};
use crate::store::{
    AuditEntry, Compensation, CompensationGrant, ComplaintTally, InteractionFilter,
    InteractionStep, InteractionStore, NewStep, RenewalOutcome, StoreError, StoreResult,
};

const COLUMNS: &str = "id, subscriber_id, contact, kind, channel, category, priority, text, \
    taken_by, owner_id, state, opened_at, respond_by, resolve_by, responded_at, resolved_at, \
    closed_at, paused_since, paused_seconds, clock_started_at, reopened, response_seconds, \
    resolution_seconds, first_contact_resolution, resolution, version";
const STEP_COLUMNS: &str = "id, interaction_id, action, note, detail, at, by_name";

#[derive(FromRow)]
struct Row {
    id: i64,
    subscriber_id: Option<i64>,
    contact: Option<String>,
    kind: String,
    channel: String,
    category: String,
    priority: String,
    text: String,
    taken_by: String,
    owner_id: Option<i64>,
    state: String,
    opened_at: DateTime<Utc>,
    respond_by: Option<DateTime<Utc>>,
    resolve_by: Option<DateTime<Utc>>,
    responded_at: Option<DateTime<Utc>>,
    resolved_at: Option<DateTime<Utc>>,
    closed_at: Option<DateTime<Utc>>,
    paused_since: Option<DateTime<Utc>>,
    paused_seconds: i64,
    clock_started_at: DateTime<Utc>,
    reopened: i32,
    response_seconds: Option<i64>,
    resolution_seconds: Option<i64>,
    first_contact_resolution: Option<bool>,
    resolution: Option<String>,
    version: i64,
}

impl TryFrom<Row> for Interaction {
    type Error = StoreError;

    fn try_from(r: Row) -> StoreResult<Self> {
        Ok(Interaction {
            id: r.id,
            subscriber: r.subscriber_id.map(SubscriberNumber::from_sequence),
            contact: r.contact,
            kind: parse_enum(&r.kind)?,
            channel: parse_enum(&r.channel)?,
            category: parse_enum(&r.category)?,
            priority: parse_enum(&r.priority)?,
            text: r.text,
            taken_by: r.taken_by,
            owner: r.owner_id,
            state: parse_enum(&r.state)?,
            opened_at: r.opened_at,
            due: DueTimes {
                respond_by: r.respond_by,
                resolve_by: r.resolve_by,
            },
            responded_at: r.responded_at,
            resolved_at: r.resolved_at,
            closed_at: r.closed_at,
            paused_since: r.paused_since,
            paused_seconds: r.paused_seconds,
            clock_started_at: r.clock_started_at,
            reopened: r.reopened,
            response_seconds: r.response_seconds,
            resolution_seconds: r.resolution_seconds,
            first_contact_resolution: r.first_contact_resolution,
            resolution: r.resolution,
            version: r.version,
        })
    }
}

#[derive(FromRow)]
struct StepRow {
    id: i64,
    interaction_id: i64,
    action: String,
    note: Option<String>,
    detail: Json<serde_json::Value>,
    at: DateTime<Utc>,
    by_name: String,
}

impl TryFrom<StepRow> for InteractionStep {
    type Error = StoreError;

    fn try_from(r: StepRow) -> StoreResult<Self> {
        Ok(InteractionStep {
            id: r.id,
            interaction: r.interaction_id,
            action: parse_enum(&r.action)?,
            note: r.note,
            detail: r.detail.0,
            at: r.at,
            by: r.by_name,
        })
    }
}

#[derive(FromRow)]
struct CompensationRow {
    id: i64,
    interaction_id: i64,
    subscriber_id: i64,
    kind: String,
    term_id: Option<i64>,
    days: Option<i32>,
    amount: Option<i64>,
    currency: Option<String>,
    reason: String,
    created_at: DateTime<Utc>,
    created_by: String,
}

#[async_trait]
impl InteractionStore for SqlStore<Db> {
    #[tracing::instrument(level = "debug", skip_all)]
    async fn insert_interaction(
        &self,
        new: &Interaction,
        steps: Vec<NewStep>,
        compensation: Option<(CompensationGrant, String)>,
        mut audit: AuditEntry,
    ) -> StoreResult<Interaction> {
        let mut tx = self.write.begin().await?;
        let (id,): (i64,) = sqlx::query_as(
            "INSERT INTO interactions (subscriber_id, contact, kind, channel, category, priority, \
             text, taken_by, owner_id, state, opened_at, respond_by, resolve_by, next_due, \
             responded_at, resolved_at, closed_at, paused_since, paused_seconds, \
             clock_started_at, reopened, response_seconds, resolution_seconds, \
             first_contact_resolution, resolution, version) VALUES ($1, $2, $3, $4, $5, $6, $7, \
             $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, \
             $25, 1) RETURNING id",
        )
        .bind(new.subscriber.map(|n| n.sequence()))
        .bind(new.contact.clone())
        .bind(new.kind.as_str())
        .bind(new.channel.as_str())
        .bind(new.category.as_str())
        .bind(new.priority.as_str())
        .bind(new.text.as_str())
        .bind(new.taken_by.as_str())
        .bind(new.owner)
        .bind(new.state.as_str())
        .bind(new.opened_at)
        .bind(new.due.respond_by)
        .bind(new.due.resolve_by)
        .bind(new.next_due())
        .bind(new.responded_at)
        .bind(new.resolved_at)
        .bind(new.closed_at)
        .bind(new.paused_since)
        .bind(new.paused_seconds)
        .bind(new.clock_started_at)
        .bind(new.reopened)
        .bind(new.response_seconds)
        .bind(new.resolution_seconds)
        .bind(new.first_contact_resolution)
        .bind(new.resolution.clone())
        .fetch_one(&mut *tx)
        .await?;
        let subscriber = new.subscriber.map(|n| n.sequence());
        if let Err(e) = write_steps(&mut tx, id, subscriber, &steps).await {
            tx.rollback().await?;
            return Err(e);
        }
        if let Some((grant, reason)) = &compensation
            && let Err(e) = compensate(&mut tx, id, subscriber, grant, reason, &audit).await
        {
            tx.rollback().await?;
            return Err(e);
        }
        audit.detail["interaction"] = id.into();
        insert_audit(&mut tx, &audit).await?;
        tx.commit().await?;
        self.get_interaction(id).await?.ok_or(StoreError::NotFound)
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn get_interaction(&self, id: i64) -> StoreResult<Option<Interaction>> {
        let sql = format!("SELECT {COLUMNS} FROM interactions WHERE id = $1");
        let row: Option<Row> = sqlx::query_as(&sql)
            .bind(id)
            .fetch_optional(&self.read)
            .await?;
        row.map(Interaction::try_from).transpose()
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn update_interaction(
        &self,
        next: &Interaction,
        steps: Vec<NewStep>,
        compensation: Option<(CompensationGrant, String)>,
        audit: AuditEntry,
    ) -> StoreResult<Interaction> {
        let mut tx = self.write.begin().await?;
        let updated: Option<(i64,)> = sqlx::query_as(
            "UPDATE interactions SET subscriber_id = $3, contact = $4, owner_id = $5, state = $6, \
             respond_by = $7, resolve_by = $8, next_due = $9, responded_at = $10, \
             resolved_at = $11, closed_at = $12, paused_since = $13, paused_seconds = $14, \
             clock_started_at = $15, reopened = $16, response_seconds = $17, \
             resolution_seconds = $18, first_contact_resolution = $19, resolution = $20, \
             version = version + 1 WHERE id = $1 AND version = $2 RETURNING id",
        )
        .bind(next.id)
        .bind(next.version)
        .bind(next.subscriber.map(|n| n.sequence()))
        .bind(next.contact.clone())
        .bind(next.owner)
        .bind(next.state.as_str())
        .bind(next.due.respond_by)
        .bind(next.due.resolve_by)
        .bind(next.next_due())
        .bind(next.responded_at)
        .bind(next.resolved_at)
        .bind(next.closed_at)
        .bind(next.paused_since)
        .bind(next.paused_seconds)
        .bind(next.clock_started_at)
        .bind(next.reopened)
        .bind(next.response_seconds)
        .bind(next.resolution_seconds)
        .bind(next.first_contact_resolution)
        .bind(next.resolution.clone())
        .fetch_optional(&mut *tx)
        .await?;
        if updated.is_none() {
            tx.rollback().await?;
            return Err(StoreError::Conflict(format!(
                "interaction {} changed while this step was prepared; load it again",
                next.id
            )));
        }
        let subscriber = next.subscriber.map(|n| n.sequence());
        // A link reaches the steps written before the reader was known.
        let linked = sqlx::query(
            "UPDATE interaction_steps SET subscriber_id = $2 WHERE interaction_id = $1",
        )
        .bind(next.id)
        .bind(subscriber)
        .execute(&mut *tx)
        .await;
        let written = match linked {
            Ok(_) => write_steps(&mut tx, next.id, subscriber, &steps).await,
            Err(e) => Err(e.into()),
        };
        let compensated = match (&written, &compensation) {
            (Ok(()), Some((grant, reason))) => {
                compensate(&mut tx, next.id, subscriber, grant, reason, &audit).await
            }
            _ => written,
        };
        if let Err(e) = compensated {
            tx.rollback().await?;
            return Err(e);
        }
        insert_audit(&mut tx, &audit).await?;
        tx.commit().await?;
        self.get_interaction(next.id)
            .await?
            .ok_or(StoreError::NotFound)
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn interaction_steps(&self, id: i64) -> StoreResult<Vec<InteractionStep>> {
        let sql = format!(
            "SELECT {STEP_COLUMNS} FROM interaction_steps WHERE interaction_id = $1 ORDER BY id"
        );
        let rows: Vec<StepRow> = sqlx::query_as(&sql).bind(id).fetch_all(&self.read).await?;
        rows.into_iter().map(InteractionStep::try_from).collect()
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn list_interactions(&self, filter: &InteractionFilter) -> StoreResult<Vec<Interaction>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM interactions WHERE ($1 IS NULL OR subscriber_id = $1) \
             AND ($2 IS NULL OR state = $2) AND ($3 IS NULL OR owner_id = $3) \
             AND ($4 IS NULL OR category = $4) AND ($5 IS NULL OR kind = $5) \
             AND ($6 IS NULL OR id < $6) ORDER BY id DESC LIMIT $7"
        );
        let rows: Vec<Row> = sqlx::query_as(&sql)
            .bind(filter.subscriber.map(|n| n.sequence()))
            .bind(filter.state.map(|s| s.as_str().to_owned()))
            .bind(filter.owner)
            .bind(filter.category.map(|c| c.as_str().to_owned()))
            .bind(filter.kind.map(|k| k.as_str().to_owned()))
            .bind(filter.before)
            .bind(filter.limit)
            .fetch_all(&self.read)
            .await?;
        rows.into_iter().map(Interaction::try_from).collect()
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn due_interactions(
        &self,
        until: DateTime<Utc>,
        owner: Option<i64>,
        category: Option<Category>,
        limit: i64,
    ) -> StoreResult<Vec<Interaction>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM interactions WHERE next_due IS NOT NULL AND next_due <= $1 \
             AND ($2 IS NULL OR owner_id = $2) AND ($3 IS NULL OR category = $3) \
             ORDER BY next_due, id LIMIT $4"
        );
        let rows: Vec<Row> = sqlx::query_as(&sql)
            .bind(until)
            .bind(owner)
            .bind(category.map(|c| c.as_str().to_owned()))
            .bind(limit)
            .fetch_all(&self.read)
            .await?;
        rows.into_iter().map(Interaction::try_from).collect()
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn interactions_opened(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> StoreResult<Vec<Interaction>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM interactions WHERE opened_at >= $1 AND opened_at < $2 \
             ORDER BY opened_at, id"
        );
        let rows: Vec<Row> = sqlx::query_as(&sql)
            .bind(from)
            .bind(to)
            .fetch_all(&self.read)
            .await?;
        rows.into_iter().map(Interaction::try_from).collect()
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn subscriber_steps(
        &self,
        subscriber: SubscriberNumber,
    ) -> StoreResult<Vec<(Interaction, Vec<InteractionStep>)>> {
        let filter = InteractionFilter {
            subscriber: Some(subscriber),
            limit: i64::MAX,
            ..InteractionFilter::default()
        };
        let interactions = self.list_interactions(&filter).await?;
        let sql = format!(
            "SELECT {STEP_COLUMNS} FROM interaction_steps WHERE subscriber_id = $1 ORDER BY id"
        );
        let rows: Vec<StepRow> = sqlx::query_as(&sql)
            .bind(subscriber.sequence())
            .fetch_all(&self.read)
            .await?;
        let mut steps: Vec<InteractionStep> = rows
            .into_iter()
            .map(InteractionStep::try_from)
            .collect::<StoreResult<_>>()?;
        Ok(interactions
            .into_iter()
            .map(|i| {
                let (own, rest) = steps.drain(..).partition(|s| s.interaction == i.id);
                steps = rest;
                (i, own)
            })
            .collect())
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn compensations(&self, subscriber: SubscriberNumber) -> StoreResult<Vec<Compensation>> {
        let rows: Vec<CompensationRow> = sqlx::query_as(
            "SELECT id, interaction_id, subscriber_id, kind, term_id, days, amount, currency, \
             reason, created_at, created_by FROM compensations WHERE subscriber_id = $1 \
             ORDER BY id",
        )
        .bind(subscriber.sequence())
        .fetch_all(&self.read)
        .await?;
        rows.into_iter()
            .map(|r| {
                let amount = match (r.amount, r.currency) {
                    (Some(amount), Some(code)) => Some(Money::new(
                        amount,
                        Currency::parse(&code).map_err(StoreError::Corrupt)?,
                    )),
                    _ => None,
                };
                Ok(Compensation {
                    id: r.id,
                    interaction: r.interaction_id,
                    subscriber: SubscriberNumber::from_sequence(r.subscriber_id),
                    kind: r.kind,
                    term: r.term_id,
                    days: r.days,
                    amount,
                    reason: r.reason,
                    created_at: r.created_at,
                    created_by: r.created_by,
                })
            })
            .collect()
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn complaint_tallies(
        &self,
        first: i64,
        last: i64,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<(i64, ComplaintTally)>> {
        let rows: Vec<(i64, i64, i64, i64, i64, Option<DateTime<Utc>>)> = sqlx::query_as(
            "SELECT subscriber_id, \
             SUM(CASE WHEN resolved_at IS NULL THEN 1 ELSE 0 END), COUNT(*), \
             SUM(CASE WHEN opened_at >= $4 THEN 1 ELSE 0 END), \
             SUM(CASE WHEN responded_at > respond_by OR resolved_at > resolve_by \
                 OR (responded_at IS NULL AND respond_by < $3) \
                 OR (resolved_at IS NULL AND resolve_by < $3 AND paused_since IS NULL) \
                 THEN 1 ELSE 0 END), \
             MIN(CASE WHEN resolved_at IS NULL THEN opened_at END) \
             FROM interactions WHERE kind = 'complaint' \
             AND subscriber_id >= $1 AND subscriber_id <= $2 GROUP BY subscriber_id",
        )
        .bind(first)
        .bind(last)
        .bind(now)
        .bind(now - chrono::Duration::days(365))
        .fetch_all(&self.read)
        .await?;
        let count = |n: i64| u32::try_from(n).unwrap_or(u32::MAX);
        Ok(rows
            .into_iter()
            .map(
                |(subscriber, open, total, last_year, breached, oldest_open)| {
                    let tally = ComplaintTally {
                        open: count(open),
                        total: count(total),
                        last_year: count(last_year),
                        breached: count(breached),
                        oldest_open,
                    };
                    (subscriber, tally)
                },
            )
            .collect())
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn renewal_outcomes(
        &self,
        from: NaiveDate,
        to: NaiveDate,
    ) -> StoreResult<Vec<RenewalOutcome>> {
        let rows: Vec<(i64, bool)> = sqlx::query_as(
            "SELECT t.subscriber_id, \
             EXISTS (SELECT 1 FROM terms n WHERE n.renews_term_id = t.id) AS renewed \
             FROM terms t WHERE t.end_date >= $1 AND t.end_date <= $2 \
             AND (t.cancelled_effective IS NULL OR t.cancelled_effective > t.end_date)",
        )
        .bind(from)
        .bind(to)
        .fetch_all(&self.read)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(subscriber, renewed)| RenewalOutcome {
                subscriber,
                renewed,
            })
            .collect())
    }
}

async fn write_steps(
    conn: &mut Connection,
    interaction: i64,
    subscriber: Option<i64>,
    steps: &[NewStep],
) -> StoreResult<()> {
    for step in steps {
        sqlx::query(
            "INSERT INTO interaction_steps (interaction_id, subscriber_id, action, note, detail, \
             at, by_name) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(interaction)
        .bind(subscriber)
        .bind(step.action.as_str())
        .bind(step.note.clone())
        .bind(Json(step.detail.clone()))
        .bind(step.at)
        .bind(step.by.as_str())
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

#[derive(FromRow)]
struct LockedTerm {
    end_date: NaiveDate,
    cancelled: bool,
    renewed: bool,
}

/// Applies a compensation and records it; an extension moves the term's end by its days.
async fn compensate(
    conn: &mut Connection,
    interaction: i64,
    subscriber: Option<i64>,
    grant: &CompensationGrant,
    reason: &str,
    audit: &AuditEntry,
) -> StoreResult<()> {
    let Some(subscriber) = subscriber else {
        return Err(StoreError::Conflict(format!(
            "interaction {interaction} is not linked to a subscriber; link it before compensating"
        )));
    };
    let (term, days, amount) = match grant {
        CompensationGrant::Extension { term, days } => {
            let sql = format!(
                "SELECT end_date, cancelled_effective IS NOT NULL AS cancelled, \
                 EXISTS (SELECT 1 FROM terms n WHERE n.renews_term_id = terms.id) AS renewed \
                 FROM terms WHERE id = $1 AND subscriber_id = $2{}",
                Db::LOCK_ROW
            );
            let locked: Option<LockedTerm> = sqlx::query_as(&sql)
                .bind(*term)
                .bind(subscriber)
                .fetch_optional(&mut *conn)
                .await?;
            let end = match locked {
                None => {
                    return Err(StoreError::Conflict(format!(
                        "the subscriber has no term {term} to extend"
                    )));
                }
                Some(t) if t.cancelled => {
                    return Err(StoreError::Conflict(format!(
                        "term {term} is cancelled and cannot be extended; compensate with a credit"
                    )));
                }
                Some(t) if t.renewed => {
                    return Err(StoreError::Conflict(format!(
                        "term {term} has been renewed, so extending it would overlap the \
                         renewal; extend the renewal term"
                    )));
                }
                Some(t) => t.end_date,
            };
            let days_i32 = i32::try_from(*days).unwrap_or(i32::MAX);
            sqlx::query(
                "UPDATE terms SET end_date = $2, extension_days = extension_days + $3 WHERE id = $1",
            )
            .bind(*term)
            .bind(end + chrono::Days::new(u64::from(*days)))
            .bind(days_i32)
            .execute(&mut *conn)
            .await?;
            (Some(*term), Some(days_i32), None)
        }
        CompensationGrant::Credit { amount } => (None, None, Some(*amount)),
    };
    sqlx::query(
        "INSERT INTO compensations (interaction_id, subscriber_id, kind, term_id, days, amount, \
         currency, reason, created_at, created_by) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(interaction)
    .bind(subscriber)
    .bind(if term.is_some() {
        "extension"
    } else {
        "credit"
    })
    .bind(term)
    .bind(days)
    .bind(amount.map(|a: Money| a.amount))
    .bind(amount.map(|a| a.currency.as_str().to_owned()))
    .bind(reason)
    .bind(audit.at)
    .bind(audit.actor.name.as_str())
    .execute(&mut *conn)
    .await?;
    Ok(())
}
