//! Terms in storage: orders with their idempotency keys, terms, holds and cancellations.

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use sqlx::FromRow;
use sqlx::types::Json;

use super::audit::insert_audit;
use super::{Connection, Db};
use crate::domain::SubscriberNumber;
use crate::domain::money::{Currency, Money};
use crate::domain::publication::PublicationCode;
use crate::domain::term::{Cancellation, Discount, Hold, Term, hold_days};
use crate::store::backend::{Backend, SqlStore, enum_text, parse_enum};
use crate::store::{
    AuditEntry, DueTerm, NewOrder, NewTerm, Order, OrderOutcome, StoreError, StoreResult,
    TermChange, TermStore,
};

pub(super) const TERM_COLUMNS: &str = "t.id, t.subscriber_id, p.code, t.format, t.months, t.start_date, \
    t.end_date, t.extension_days, t.currency, t.list_price, t.discounts, t.price_paid, t.channel, \
    t.payment_method, t.auto_renew, t.renews_term_id, t.cancelled_effective, t.cancel_reason, \
    t.refund, t.cancelled_at, t.cancelled_by, t.created_at";
const ORDER_COLUMNS: &str =
    "id, subscriber_id, kind, idempotency_key, request_hash, created_at, created_by";

#[derive(FromRow)]
pub(super) struct TermRow {
    pub(super) id: i64,
    pub(super) subscriber_id: i64,
    code: String,
    format: String,
    months: i32,
    start_date: NaiveDate,
    end_date: NaiveDate,
    extension_days: i32,
    currency: String,
    list_price: i64,
    discounts: Json<Vec<Discount>>,
    price_paid: i64,
    channel: String,
    payment_method: String,
    auto_renew: bool,
    renews_term_id: Option<i64>,
    cancelled_effective: Option<NaiveDate>,
    cancel_reason: Option<String>,
    refund: Option<i64>,
    cancelled_at: Option<DateTime<Utc>>,
    cancelled_by: Option<String>,
    created_at: DateTime<Utc>,
}

impl TermRow {
    pub(super) fn into_term(self, holds: Vec<Hold>) -> StoreResult<Term> {
        let currency = Currency::parse(&self.currency).map_err(StoreError::Corrupt)?;
        let money = |amount| Money::new(amount, currency);
        let cancellation = match (self.cancelled_effective, self.cancelled_at) {
            (Some(effective), Some(recorded_at)) => Some(Cancellation {
                effective,
                reason: self.cancel_reason.unwrap_or_default(),
                refund: self.refund.map(money),
                recorded_at,
                recorded_by: self.cancelled_by.unwrap_or_default(),
            }),
            _ => None,
        };
        Ok(Term {
            id: self.id,
            publication: PublicationCode::parse(&self.code).map_err(StoreError::Corrupt)?,
            format: parse_enum(&self.format)?,
            months: u32::try_from(self.months)
                .map_err(|_| StoreError::Corrupt(format!("term months {}", self.months)))?,
            start: self.start_date,
            end: self.end_date,
            extension_days: i64::from(self.extension_days),
            list_price: money(self.list_price),
            discounts: self.discounts.0,
            price_paid: money(self.price_paid),
            channel: parse_enum(&self.channel)?,
            payment_method: parse_enum(&self.payment_method)?,
            auto_renew: self.auto_renew,
            renews: self.renews_term_id,
            holds,
            cancellation,
            created_at: self.created_at,
        })
    }
}

/// The columns of [`TermRow`] as one JSON array, for reads that gather a reader's terms into
/// a single value (read back as [`TermTuple`]). `Backend::json` wraps the stored JSON column.
pub(super) fn term_json_columns(discounts: &str) -> String {
    format!(
        "t.id, t.subscriber_id, p.code, t.format, t.months, t.start_date, t.end_date, \
         t.extension_days, t.currency, t.list_price, {discounts}, t.price_paid, t.channel, \
         t.payment_method, t.auto_renew, t.renews_term_id, t.cancelled_effective, \
         t.cancel_reason, t.refund, t.cancelled_at, t.cancelled_by, t.created_at"
    )
}

/// One element of a JSON array built from [`term_json_columns`].
#[derive(serde::Deserialize)]
pub(super) struct TermTuple(
    i64,
    i64,
    String,
    String,
    i32,
    NaiveDate,
    NaiveDate,
    i32,
    String,
    i64,
    Vec<Discount>,
    i64,
    String,
    String,
    Flag,
    Option<i64>,
    Option<NaiveDate>,
    Option<String>,
    Option<i64>,
    Option<DateTime<Utc>>,
    Option<String>,
    DateTime<Utc>,
);

/// A boolean as JSON holds it: `true` from PostgreSQL, `1` from SQLite (which has no booleans).
#[derive(serde::Deserialize)]
#[serde(untagged)]
enum Flag {
    Bool(bool),
    Int(i64),
}

impl From<TermTuple> for TermRow {
    fn from(t: TermTuple) -> Self {
        TermRow {
            id: t.0,
            subscriber_id: t.1,
            code: t.2,
            format: t.3,
            months: t.4,
            start_date: t.5,
            end_date: t.6,
            extension_days: t.7,
            currency: t.8,
            list_price: t.9,
            discounts: Json(t.10),
            price_paid: t.11,
            channel: t.12,
            payment_method: t.13,
            auto_renew: match t.14 {
                Flag::Bool(b) => b,
                Flag::Int(i) => i != 0,
            },
            renews_term_id: t.15,
            cancelled_effective: t.16,
            cancel_reason: t.17,
            refund: t.18,
            cancelled_at: t.19,
            cancelled_by: t.20,
            created_at: t.21,
        }
    }
}

#[derive(FromRow)]
struct HoldRow {
    id: i64,
    term_id: i64,
    from_date: NaiveDate,
    to_date: NaiveDate,
    reason: Option<String>,
}

#[derive(FromRow)]
struct OrderRow {
    id: i64,
    subscriber_id: i64,
    kind: String,
    idempotency_key: Option<String>,
    request_hash: Option<String>,
    created_at: DateTime<Utc>,
    created_by: String,
}

#[derive(FromRow)]
struct LockedTerm {
    end_date: NaiveDate,
    cancelled: bool,
    renewed: bool,
}

#[async_trait]
impl TermStore for SqlStore<Db> {
    #[tracing::instrument(level = "debug", skip_all)]
    async fn list_terms(&self, subscriber: SubscriberNumber) -> StoreResult<Vec<Term>> {
        self.terms_where("t.subscriber_id", subscriber.sequence())
            .await
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn insert_order(
        &self,
        order: NewOrder,
        mut audit: AuditEntry,
    ) -> StoreResult<OrderOutcome> {
        let subscriber = order.subscriber.sequence();
        let mut tx = self.write.begin().await?;
        let inserted: Option<(i64,)> = sqlx::query_as(
            "INSERT INTO orders (subscriber_id, kind, idempotency_key, request_hash, created_at, \
             created_by) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (idempotency_key) DO NOTHING RETURNING id",
        )
        .bind(subscriber)
        .bind(enum_text(&order.kind))
        .bind(order.idempotency_key.clone())
        .bind(order.request_hash.clone())
        .bind(order.at)
        .bind(order.created_by.as_str())
        .fetch_optional(&mut *tx)
        .await?;
        let Some((order_id,)) = inserted else {
            // Written before under this key (perhaps by a request racing this one).
            tx.rollback().await?;
            let key = order.idempotency_key.as_deref().unwrap_or_default();
            return match self.find_order(key).await? {
                Some(existing) => Ok(OrderOutcome::Existing(existing)),
                None => Err(StoreError::Conflict(
                    "the idempotency key is in use by a request still running; retry".into(),
                )),
            };
        };
        for term in &order.terms {
            if let Some(renewed) = term.renews
                && let Err(e) = check_continues(&mut tx, subscriber, renewed, term).await
            {
                tx.rollback().await?;
                return Err(e);
            }
            if let Err(e) = insert_term(&mut tx, subscriber, order_id, term, order.at).await {
                tx.rollback().await?;
                return Err(match (e, term.renews) {
                    (StoreError::Conflict(_), Some(renewed)) => StoreError::Conflict(format!(
                        "term {renewed} has already been renewed; load the renewal history again"
                    )),
                    (e, _) => e,
                });
            }
        }
        audit.detail["order"] = order_id.into();
        insert_audit(&mut tx, &audit).await?;
        tx.commit().await?;
        self.order_by_id(order_id)
            .await?
            .map(OrderOutcome::Created)
            .ok_or(StoreError::NotFound)
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn find_order(&self, idempotency_key: &str) -> StoreResult<Option<Order>> {
        let sql = format!("SELECT {ORDER_COLUMNS} FROM orders WHERE idempotency_key = $1");
        let row: Option<OrderRow> = sqlx::query_as(&sql)
            .bind(idempotency_key)
            .fetch_optional(&self.read)
            .await?;
        match row {
            Some(row) => Ok(Some(self.assemble_order(row).await?)),
            None => Ok(None),
        }
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn change_term(
        &self,
        subscriber: SubscriberNumber,
        term_id: i64,
        expected_end: NaiveDate,
        change: TermChange,
        audit: AuditEntry,
    ) -> StoreResult<Term> {
        let mut tx = self.write.begin().await?;
        let sql = format!(
            "SELECT end_date, cancelled_effective IS NOT NULL AS cancelled, \
             EXISTS (SELECT 1 FROM terms n WHERE n.renews_term_id = terms.id) AS renewed \
             FROM terms WHERE id = $1 AND subscriber_id = $2{}",
            Db::LOCK_ROW
        );
        let locked: Option<LockedTerm> = sqlx::query_as(&sql)
            .bind(term_id)
            .bind(subscriber.sequence())
            .fetch_optional(&mut *tx)
            .await?;
        let refusal = match &locked {
            None => Some(StoreError::NotFound),
            Some(t) if t.cancelled => Some(StoreError::Conflict(format!(
                "term {term_id} is cancelled and can no longer change"
            ))),
            Some(t) if t.end_date != expected_end => Some(StoreError::Conflict(format!(
                "term {term_id} changed while this request was prepared (it now ends {}); \
                 load it again",
                t.end_date
            ))),
            Some(t) if t.renewed && matches!(change, TermChange::Hold { .. }) => {
                Some(StoreError::Conflict(format!(
                    "term {term_id} has already been renewed, so it cannot be extended; \
                     place the hold on the renewal term"
                )))
            }
            Some(_) => None,
        };
        if let Some(refusal) = refusal {
            tx.rollback().await?;
            return Err(refusal);
        }
        match &change {
            TermChange::Hold { from, to, reason } => {
                let days = i32::try_from(hold_days(*from, *to)).unwrap_or(i32::MAX);
                sqlx::query(
                    "INSERT INTO holds (term_id, subscriber_id, from_date, to_date, reason, \
                     created_at, created_by) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(term_id)
                .bind(subscriber.sequence())
                .bind(*from)
                .bind(*to)
                .bind(reason.clone())
                .bind(audit.at)
                .bind(audit.actor.name.as_str())
                .execute(&mut *tx)
                .await?;
                let new_end = expected_end + chrono::Days::new(u64::try_from(days).unwrap_or(0));
                sqlx::query(
                    "UPDATE terms SET end_date = $2, extension_days = extension_days + $3 \
                     WHERE id = $1",
                )
                .bind(term_id)
                .bind(new_end)
                .bind(days)
                .execute(&mut *tx)
                .await?;
            }
            TermChange::Cancel {
                effective,
                reason,
                refund,
            } => {
                sqlx::query(
                    "UPDATE terms SET cancelled_effective = $2, cancel_reason = $3, refund = $4, \
                     cancelled_at = $5, cancelled_by = $6, auto_renew = FALSE WHERE id = $1",
                )
                .bind(term_id)
                .bind(*effective)
                .bind(reason.as_str())
                .bind(refund.map(|r| r.amount))
                .bind(audit.at)
                .bind(audit.actor.name.as_str())
                .execute(&mut *tx)
                .await?;
            }
            TermChange::AutoRenew(on) => {
                sqlx::query("UPDATE terms SET auto_renew = $2 WHERE id = $1")
                    .bind(term_id)
                    .bind(*on)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        insert_audit(&mut tx, &audit).await?;
        tx.commit().await?;
        self.terms_where("t.id", term_id)
            .await?
            .pop()
            .ok_or(StoreError::NotFound)
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn due_terms(
        &self,
        from: NaiveDate,
        until: NaiveDate,
        after_id: i64,
        limit: i64,
    ) -> StoreResult<Vec<DueTerm>> {
        let rows: Vec<(i64, i64, NaiveDate)> = sqlx::query_as(
            "SELECT t.subscriber_id, t.id, t.end_date FROM terms t \
             WHERE t.auto_renew AND t.cancelled_effective IS NULL \
             AND t.end_date >= $1 AND t.end_date <= $2 AND t.id > $3 \
             AND NOT EXISTS (SELECT 1 FROM terms n WHERE n.renews_term_id = t.id) \
             ORDER BY t.id LIMIT $4",
        )
        .bind(from)
        .bind(until)
        .bind(after_id)
        .bind(limit)
        .fetch_all(&self.read)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(subscriber, term_id, end)| DueTerm {
                subscriber: SubscriberNumber::from_sequence(subscriber),
                term_id,
                end,
            })
            .collect())
    }
}

impl SqlStore<Db> {
    /// The terms whose `column` equals `value`, with their holds, oldest first.
    async fn terms_where(&self, column: &'static str, value: i64) -> StoreResult<Vec<Term>> {
        let sql = format!(
            "SELECT {TERM_COLUMNS} FROM terms t JOIN publications p ON p.id = t.publication_id \
             WHERE {column} = $1 ORDER BY t.start_date, t.id"
        );
        let rows: Vec<TermRow> = sqlx::query_as(&sql)
            .bind(value)
            .fetch_all(&self.read)
            .await?;
        let sql = format!(
            "SELECT h.id, h.term_id, h.from_date, h.to_date, h.reason FROM holds h \
             JOIN terms t ON t.id = h.term_id WHERE {column} = $1 ORDER BY h.from_date"
        );
        let holds: Vec<HoldRow> = sqlx::query_as(&sql)
            .bind(value)
            .fetch_all(&self.read)
            .await?;
        let mut by_term: BTreeMap<i64, Vec<Hold>> = BTreeMap::new();
        for h in holds {
            by_term.entry(h.term_id).or_default().push(Hold {
                id: h.id,
                from: h.from_date,
                to: h.to_date,
                reason: h.reason,
            });
        }
        rows.into_iter()
            .map(|row| {
                let holds = by_term.remove(&row.id).unwrap_or_default();
                row.into_term(holds)
            })
            .collect()
    }

    async fn order_by_id(&self, id: i64) -> StoreResult<Option<Order>> {
        let sql = format!("SELECT {ORDER_COLUMNS} FROM orders WHERE id = $1");
        let row: Option<OrderRow> = sqlx::query_as(&sql)
            .bind(id)
            .fetch_optional(&self.read)
            .await?;
        match row {
            Some(row) => Ok(Some(self.assemble_order(row).await?)),
            None => Ok(None),
        }
    }

    async fn assemble_order(&self, row: OrderRow) -> StoreResult<Order> {
        Ok(Order {
            id: row.id,
            subscriber: SubscriberNumber::from_sequence(row.subscriber_id),
            kind: parse_enum(&row.kind)?,
            idempotency_key: row.idempotency_key,
            request_hash: row.request_hash,
            created_at: row.created_at,
            created_by: row.created_by,
            terms: self.terms_where("t.order_id", row.id).await?,
        })
    }
}

/// A renewal continues its term only if that term is the subscriber's, not cancelled, and
/// still ends before the renewal starts (a hold may have moved its end since pricing).
async fn check_continues(
    conn: &mut Connection,
    subscriber: i64,
    renewed: i64,
    term: &NewTerm,
) -> StoreResult<()> {
    let sql = format!(
        "SELECT end_date FROM terms WHERE id = $1 AND subscriber_id = $2 \
         AND cancelled_effective IS NULL{}",
        Db::LOCK_ROW
    );
    let end: Option<(NaiveDate,)> = sqlx::query_as(&sql)
        .bind(renewed)
        .bind(subscriber)
        .fetch_optional(&mut *conn)
        .await?;
    match end {
        None => Err(StoreError::Conflict(format!(
            "term {renewed} was cancelled or is not this subscriber's; load the renewal history again"
        ))),
        Some((end,)) if end >= term.start => Err(StoreError::Conflict(format!(
            "term {renewed} now ends {end}, after the renewal would start; load the renewal \
             history again"
        ))),
        Some(_) => Ok(()),
    }
}

async fn insert_term(
    conn: &mut Connection,
    subscriber: i64,
    order_id: i64,
    term: &NewTerm,
    at: DateTime<Utc>,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO terms (subscriber_id, publication_id, order_id, format, months, start_date, \
         end_date, currency, list_price, discounts, price_paid, channel, payment_method, \
         auto_renew, renews_term_id, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
    )
    .bind(subscriber)
    .bind(term.publication_id)
    .bind(order_id)
    .bind(enum_text(&term.format))
    .bind(i32::try_from(term.months).unwrap_or(i32::MAX))
    .bind(term.start)
    .bind(term.end)
    .bind(term.list_price.currency.as_str())
    .bind(term.list_price.amount)
    .bind(Json(term.discounts.clone()))
    .bind(term.price_paid.amount)
    .bind(enum_text(&term.channel))
    .bind(enum_text(&term.payment_method))
    .bind(term.auto_renew)
    .bind(term.renews)
    .bind(at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}
