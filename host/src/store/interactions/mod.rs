//! Interactions in the store: `InteractionStore` and its records; `sql.rs` holds the SQL both
//! backends run.

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::{AuditEntry, ComplaintTally, StoreResult};
use crate::domain::SubscriberNumber;
use crate::domain::interaction::Interaction;
use crate::domain::money::Money;

/// Interactions with readers, their steps and compensations.
#[async_trait]
pub trait InteractionStore: Send + Sync {
    /// Writes a new interaction (already in its state after `steps`), its steps, any
    /// compensation and the audit entry, in one transaction.
    async fn insert_interaction(
        &self,
        new: &Interaction,
        steps: Vec<NewStep>,
        compensation: Option<(CompensationGrant, String)>,
        audit: AuditEntry,
    ) -> StoreResult<Interaction>;
    async fn get_interaction(&self, id: i64) -> StoreResult<Option<Interaction>>;
    /// Writes `next` if the stored interaction is still at `next.version`, with its steps and
    /// any compensation, in one transaction; a changed interaction is a conflict.
    async fn update_interaction(
        &self,
        next: &Interaction,
        steps: Vec<NewStep>,
        compensation: Option<(CompensationGrant, String)>,
        audit: AuditEntry,
    ) -> StoreResult<Interaction>;
    async fn interaction_steps(&self, id: i64) -> StoreResult<Vec<InteractionStep>>;
    async fn list_interactions(&self, filter: &InteractionFilter) -> StoreResult<Vec<Interaction>>;
    /// Unresolved, unpaused interactions due by `until`, soonest first.
    async fn due_interactions(
        &self,
        until: DateTime<Utc>,
        owner: Option<i64>,
        category: Option<crate::domain::interaction::Category>,
        limit: i64,
    ) -> StoreResult<Vec<Interaction>>;
    /// Interactions opened in `[from, to)`, oldest first.
    async fn interactions_opened(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> StoreResult<Vec<Interaction>>;
    /// Every step of every interaction of a subscriber, oldest first.
    async fn subscriber_steps(
        &self,
        subscriber: SubscriberNumber,
    ) -> StoreResult<Vec<(Interaction, Vec<InteractionStep>)>>;
    async fn compensations(&self, subscriber: SubscriberNumber) -> StoreResult<Vec<Compensation>>;
    /// The complaints of subscribers `first..=last` that have any, as of `now`.
    async fn complaint_tallies(
        &self,
        first: i64,
        last: i64,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<(i64, ComplaintTally)>>;
    /// Terms (not cancelled before their end) that ended from `from` through `to`.
    async fn renewal_outcomes(
        &self,
        from: NaiveDate,
        to: NaiveDate,
    ) -> StoreResult<Vec<RenewalOutcome>>;
}

/// One step of an interaction's workflow, as recorded.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct InteractionStep {
    pub id: i64,
    pub interaction: i64,
    pub action: crate::domain::interaction::Action,
    pub note: Option<String>,
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
    pub at: DateTime<Utc>,
    /// The API key (staff member) that took the step.
    pub by: String,
}

pub struct NewStep {
    pub action: crate::domain::interaction::Action,
    pub note: Option<String>,
    pub detail: serde_json::Value,
    pub at: DateTime<Utc>,
    pub by: String,
}

/// What a resolution gives the reader.
#[derive(Debug, Clone, PartialEq)]
pub enum CompensationGrant {
    /// Extra days on a term: its end moves by as many days.
    Extension { term: i64, days: u32 },
    /// A credit on the reader's account (recorded, not paid out by Masthead).
    Credit { amount: Money },
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Compensation {
    pub id: i64,
    pub interaction: i64,
    #[schema(value_type = String)]
    pub subscriber: SubscriberNumber,
    /// `extension` or `credit`.
    pub kind: String,
    pub term: Option<i64>,
    pub days: Option<i32>,
    pub amount: Option<Money>,
    pub reason: String,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
}

/// Newest first; `before` is the last id of the previous page.
#[derive(Debug, Clone, Default)]
pub struct InteractionFilter {
    pub subscriber: Option<SubscriberNumber>,
    pub state: Option<crate::domain::interaction::State>,
    pub owner: Option<i64>,
    pub category: Option<crate::domain::interaction::Category>,
    pub kind: Option<crate::domain::interaction::Kind>,
    pub before: Option<i64>,
    pub limit: i64,
}

/// A term that ended in a period, and whether it was renewed.
#[derive(Debug, Clone, Copy)]
pub struct RenewalOutcome {
    pub subscriber: i64,
    pub renewed: bool,
}
