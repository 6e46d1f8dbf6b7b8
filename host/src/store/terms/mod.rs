//! Terms and orders in the store: `TermStore` and its records; `sql.rs` holds the SQL both backends
//! run.

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::{AuditEntry, StoreResult};
use crate::domain::SubscriberNumber;
use crate::domain::money::Money;
use crate::domain::publication::Format;
use crate::domain::term::{Discount, PaymentMethod, SalesChannel, Term};

#[async_trait]
pub trait TermStore: Send + Sync {
    /// Every term of the subscriber, with holds and cancellation, oldest first.
    async fn list_terms(&self, subscriber: SubscriberNumber) -> StoreResult<Vec<Term>>;
    /// Writes the order and its terms in one transaction, or returns the order already
    /// written under the same idempotency key. A term that continues one already renewed, or
    /// one that changed since it was priced, is a conflict.
    async fn insert_order(&self, order: NewOrder, audit: AuditEntry) -> StoreResult<OrderOutcome>;
    async fn find_order(&self, idempotency_key: &str) -> StoreResult<Option<Order>>;
    /// Applies the change if the term still ends on `expected_end`, is not cancelled and (for
    /// a hold) has not been renewed.
    async fn change_term(
        &self,
        subscriber: SubscriberNumber,
        term_id: i64,
        expected_end: NaiveDate,
        change: TermChange,
        audit: AuditEntry,
    ) -> StoreResult<Term>;
    /// Auto-renew terms ending from `from` through `until` that nothing renews yet, by id.
    async fn due_terms(
        &self,
        from: NaiveDate,
        until: NaiveDate,
        after_id: i64,
        limit: i64,
    ) -> StoreResult<Vec<DueTerm>>;
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
