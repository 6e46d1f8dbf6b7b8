//! Complaints and the other interactions: logging a contact, the workflow steps with their
//! service-level clocks, compensation at resolution, and the breach queue.

pub mod report;

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::audit::AuditLog;
use super::clock::Clock;
use super::subscribers::{Caller, Registry};
use super::{ServiceError, ServiceResult};
use crate::domain::interaction::{
    self, Action, Category, Channel, Interaction, Kind, Priority, Refused, State,
};
use crate::domain::money::{Currency, Money};
use crate::domain::sla::{SlaPolicy, format_target};
use crate::domain::text;
use crate::domain::{FieldErrors, SubscriberNumber};
use crate::store::{
    Compensation, CompensationGrant, InteractionFilter, InteractionStep, NewStep, Store, StoreError,
};

/// Longest free text of an interaction, a note or a resolution, in characters.
const MAX_TEXT: usize = 4_000;
/// Most days a term may be extended by as compensation.
const MAX_EXTENSION_DAYS: u32 = 366;

/// A contact to log.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewInteraction {
    /// The reader, when known; otherwise describe the caller in `contact`.
    #[schema(value_type = Option<String>)]
    pub subscriber: Option<SubscriberNumber>,
    /// Who got in touch, for a contact not (yet) identified: a name, a phone number.
    pub contact: Option<String>,
    pub kind: Kind,
    pub channel: Channel,
    pub category: Category,
    /// Default `routine`.
    pub priority: Option<Priority>,
    /// What the reader said.
    pub text: String,
    /// The staff member who owns it (default: nobody yet).
    pub owner: Option<i64>,
    /// Resolved in this very contact: "one call, one resolution".
    pub resolution: Option<Resolution>,
}

/// How an interaction was solved, with what the reader gets.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Resolution {
    pub resolution: String,
    pub compensation: Option<CompensationRequest>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum CompensationRequest {
    /// Extends a term by some days.
    Extension {
        term: i64,
        days: u32,
        reason: String,
    },
    /// Records a credit, in minor units of the house currency.
    Credit { amount: i64, reason: String },
}

#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StepNote {
    pub note: Option<String>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Assignment {
    /// Staff member id.
    pub owner: i64,
    pub note: Option<String>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Link {
    #[schema(value_type = String)]
    pub subscriber: SubscriberNumber,
}

/// A workflow step: `{"action": "respond", "note": "..."}`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Step {
    Respond(StepNote),
    Resolve(Resolution),
    Close(StepNote),
    Reopen(StepNote),
    Pause(StepNote),
    Resume(StepNote),
    Assign(Assignment),
    Link(Link),
}

/// An interaction with its history, as staff see it.
#[derive(Debug, Serialize, ToSchema)]
pub struct InteractionView {
    #[serde(flatten)]
    pub interaction: Interaction,
    /// The next due time has passed.
    pub overdue: bool,
    pub steps: Vec<InteractionStep>,
    pub compensations: Vec<Compensation>,
}

/// One line of the breach queue.
#[derive(Debug, Serialize, ToSchema)]
pub struct QueueItem {
    #[serde(flatten)]
    pub interaction: Interaction,
    /// `respond` or `resolve`: which commitment is due next.
    pub due: &'static str,
    pub due_at: DateTime<Utc>,
    /// Minutes until due; negative once overdue.
    pub minutes_left: i64,
    pub overdue: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Queue {
    pub now: DateTime<Utc>,
    /// Interactions due before this instant are listed.
    pub until: DateTime<Utc>,
    pub items: Vec<QueueItem>,
}

/// The commitments in force, as configured.
#[derive(Debug, Serialize, ToSchema)]
pub struct PolicyView {
    pub time_zone: String,
    pub targets: Vec<TargetView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TargetView {
    /// Empty for the target of every other category.
    pub category: Option<Category>,
    pub priority: Priority,
    pub respond_within: String,
    pub resolve_within: String,
}

pub struct Complaints {
    store: Arc<dyn Store>,
    registry: Arc<Registry>,
    audit: AuditLog,
    clock: Arc<dyn Clock>,
    policy: Arc<SlaPolicy>,
    due_soon: Duration,
    currency: Currency,
}

impl Complaints {
    pub fn new(
        store: Arc<dyn Store>,
        registry: Arc<Registry>,
        audit: AuditLog,
        clock: Arc<dyn Clock>,
        policy: SlaPolicy,
        due_soon_minutes: u32,
        currency: Currency,
    ) -> Self {
        Self {
            store,
            registry,
            audit,
            clock,
            policy: Arc::new(policy),
            due_soon: Duration::minutes(i64::from(due_soon_minutes)),
            currency,
        }
    }

    pub fn policy(&self) -> &SlaPolicy {
        &self.policy
    }

    pub fn policy_view(&self) -> PolicyView {
        PolicyView {
            time_zone: self.policy.hours.zone.name().to_owned(),
            targets: self
                .policy
                .targets()
                .iter()
                .map(|t| TargetView {
                    category: t.category,
                    priority: t.priority,
                    respond_within: format_target(t.respond_within),
                    resolve_within: format_target(t.resolve_within),
                })
                .collect(),
        }
    }

    /// Logs a contact, with its due times; resolved at once when it carries a resolution.
    pub async fn open(
        &self,
        caller: &Caller,
        request: NewInteraction,
    ) -> ServiceResult<InteractionView> {
        let mut errors = FieldErrors::default();
        let text = checked_text(&mut errors, "text", &request.text);
        let contact = request
            .contact
            .as_deref()
            .map(str::trim)
            .filter(|c| !c.is_empty());
        if request.subscriber.is_none() && contact.is_none() {
            errors.add(
                "contact",
                "give the subscriber number, or describe who got in touch in `contact`",
            );
        }
        if contact.is_some_and(|c| c.chars().count() > 200) {
            errors.add("contact", "at most 200 characters");
        }
        let grant = match &request.resolution {
            Some(r) => {
                checked_text(&mut errors, "resolution.resolution", &r.resolution);
                self.grant(
                    &mut errors,
                    "resolution.compensation",
                    r.compensation.as_ref(),
                )
            }
            None => None,
        };
        if grant.is_some() && request.subscriber.is_none() {
            errors.add(
                "resolution.compensation",
                "compensation goes to a subscriber; give the subscriber number",
            );
        }
        if !errors.is_empty() {
            return Err(ServiceError::Invalid(errors));
        }
        if let Some(number) = request.subscriber {
            self.registry.load_live(number).await?;
        }
        if let Some(owner) = request.owner {
            self.check_owner(owner).await?;
        }
        let now = self.clock.now();
        let priority = request.priority.unwrap_or(Priority::Routine);
        let due = interaction::due_times(
            &self.policy,
            request.kind,
            request.category,
            priority,
            now,
            now,
            Duration::zero(),
        )
        .map_err(refused)?;
        let mut record = Interaction {
            id: 0,
            subscriber: request.subscriber,
            contact: contact.map(str::to_owned),
            kind: request.kind,
            channel: request.channel,
            category: request.category,
            priority,
            text,
            taken_by: caller.actor.name.clone(),
            owner: request.owner,
            state: State::Open,
            opened_at: now,
            due,
            responded_at: None,
            resolved_at: None,
            closed_at: None,
            paused_since: None,
            paused_seconds: 0,
            clock_started_at: now,
            reopened: 0,
            response_seconds: None,
            resolution_seconds: None,
            first_contact_resolution: None,
            resolution: None,
            version: 1,
        };
        let mut steps = vec![self.step(caller, Action::Opened, None, json!({}), now)];
        if let Some(owner) = request.owner {
            steps.push(self.step(
                caller,
                Action::Assigned,
                None,
                json!({ "owner": owner }),
                now,
            ));
        }
        let mut compensation = None;
        if let Some(resolution) = request.resolution {
            record
                .resolve(&self.policy, now, text::clean(&resolution.resolution))
                .map_err(refused)?;
            steps.push(self.step(
                caller,
                Action::Resolved,
                None,
                json!({ "first_contact": true }),
                now,
            ));
            compensation = grant.zip(resolution.compensation.map(|c| reason_of(&c)));
        }
        let mut audit = caller.audit(
            "interaction.create",
            record.subscriber,
            json!({ "kind": record.kind, "category": record.category }),
        );
        // The compensation is dated by the audit entry: both happen at the service's now.
        audit.at = now;
        let stored = self
            .store
            .insert_interaction(&record, steps, compensation, audit)
            .await
            .map_err(conflict)?;
        self.view(stored).await
    }

    pub async fn get(&self, caller: &Caller, id: i64) -> ServiceResult<InteractionView> {
        let record = self.load(id).await?;
        self.audit
            .record(caller.audit(
                "interaction.read",
                record.subscriber,
                json!({ "interaction": id }),
            ))
            .await;
        self.view(record).await
    }

    pub async fn list(
        &self,
        caller: &Caller,
        filter: &InteractionFilter,
    ) -> ServiceResult<Vec<Interaction>> {
        let page = self.store.list_interactions(filter).await?;
        self.audit
            .record(caller.audit(
                "interaction.list",
                filter.subscriber,
                json!({ "results": page.len() }),
            ))
            .await;
        Ok(page)
    }

    /// Applies one workflow step, with its compensation, in one transaction.
    pub async fn apply(
        &self,
        caller: &Caller,
        id: i64,
        step: Step,
    ) -> ServiceResult<InteractionView> {
        let mut record = self.load(id).await?;
        let now = self.clock.now();
        let policy = &self.policy;
        let mut compensation = None;
        let (action, note, detail) = match step {
            Step::Respond(n) => {
                record.respond(policy, now).map_err(refused)?;
                let late = record.response_late(now);
                (Action::Responded, n.note, json!({ "late": late }))
            }
            Step::Resolve(r) => {
                let mut errors = FieldErrors::default();
                let text = checked_text(&mut errors, "resolution", &r.resolution);
                let grant = self.grant(&mut errors, "compensation", r.compensation.as_ref());
                if !errors.is_empty() {
                    return Err(ServiceError::Invalid(errors));
                }
                record.resolve(policy, now, text).map_err(refused)?;
                compensation = grant.zip(r.compensation.map(|c| reason_of(&c)));
                let detail = json!({
                    "late": record.resolution_late(now),
                    "first_contact": record.first_contact_resolution,
                });
                (Action::Resolved, None, detail)
            }
            Step::Close(n) => {
                record.close(now).map_err(refused)?;
                (Action::Closed, n.note, json!({}))
            }
            Step::Reopen(n) => {
                record.reopen(policy, now).map_err(refused)?;
                (Action::Reopened, n.note, json!({}))
            }
            Step::Pause(n) => {
                record.pause(now).map_err(refused)?;
                (Action::Paused, n.note, json!({}))
            }
            Step::Resume(n) => {
                let since = record.paused_since;
                record.resume(policy, now).map_err(refused)?;
                let paused = since.map(|s| policy.elapsed(s, now).num_seconds());
                (Action::Resumed, n.note, json!({ "paused_seconds": paused }))
            }
            Step::Assign(a) => {
                self.check_owner(a.owner).await?;
                if matches!(record.state, State::Closed) {
                    return Err(refused(Refused(format!(
                        "interaction {id} is closed; reopen it before assigning it"
                    ))));
                }
                let from = record.owner.replace(a.owner);
                (
                    Action::Assigned,
                    a.note,
                    json!({ "owner": a.owner, "previous_owner": from }),
                )
            }
            Step::Link(l) => {
                if let Some(current) = record.subscriber {
                    return Err(ServiceError::Conflict(format!(
                        "interaction {id} is already linked to subscriber {current}"
                    )));
                }
                self.registry.load_live(l.subscriber).await?;
                record.subscriber = Some(l.subscriber);
                (Action::Linked, None, json!({ "subscriber": l.subscriber }))
            }
        };
        if let Some(note) = &note
            && note.chars().count() > MAX_TEXT
        {
            return Err(ServiceError::Invalid(FieldErrors::single(
                "note",
                format!("at most {MAX_TEXT} characters"),
            )));
        }
        let step = self.step(caller, action, note, detail, now);
        let mut audit = caller.audit(
            "interaction.step",
            record.subscriber,
            json!({ "interaction": id, "action": action.as_str() }),
        );
        audit.at = now;
        let stored = self
            .store
            .update_interaction(&record, vec![step], compensation, audit)
            .await
            .map_err(conflict)?;
        self.view(stored).await
    }

    /// Unresolved interactions overdue or due within the warning window (or `within`).
    pub async fn queue(
        &self,
        owner: Option<i64>,
        category: Option<Category>,
        within: Option<Duration>,
        limit: i64,
    ) -> ServiceResult<Queue> {
        let now = self.clock.now();
        let until = now + within.unwrap_or(self.due_soon);
        let due = self
            .store
            .due_interactions(until, owner, category, limit)
            .await?;
        let items = due
            .into_iter()
            .filter_map(|interaction| {
                let due_at = interaction.next_due()?;
                let which = if interaction.state == State::Open {
                    "respond"
                } else {
                    "resolve"
                };
                Some(QueueItem {
                    due: which,
                    due_at,
                    minutes_left: (due_at - now).num_minutes(),
                    overdue: due_at < now,
                    interaction,
                })
            })
            .collect();
        Ok(Queue { now, until, items })
    }

    async fn load(&self, id: i64) -> ServiceResult<Interaction> {
        self.store
            .get_interaction(id)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("there is no interaction {id}")))
    }

    async fn view(&self, interaction: Interaction) -> ServiceResult<InteractionView> {
        let steps = self.store.interaction_steps(interaction.id).await?;
        let compensations = match interaction.subscriber {
            Some(number) => self
                .store
                .compensations(number)
                .await?
                .into_iter()
                .filter(|c| c.interaction == interaction.id)
                .collect(),
            None => Vec::new(),
        };
        let now = self.clock.now();
        Ok(InteractionView {
            overdue: interaction.next_due().is_some_and(|due| due < now),
            interaction,
            steps,
            compensations,
        })
    }

    async fn check_owner(&self, owner: i64) -> ServiceResult<()> {
        match self.store.get_staff(owner).await? {
            Some(staff) if staff.active => Ok(()),
            Some(_) => Err(ServiceError::Invalid(FieldErrors::single(
                "owner",
                format!("staff member {owner} is no longer active; choose another owner"),
            ))),
            None => Err(ServiceError::Invalid(FieldErrors::single(
                "owner",
                format!("there is no staff member {owner}; see GET /api/v1/staff"),
            ))),
        }
    }

    /// The compensation a request asks for, after checking it.
    fn grant(
        &self,
        errors: &mut FieldErrors,
        field: &str,
        request: Option<&CompensationRequest>,
    ) -> Option<CompensationGrant> {
        let request = request?;
        let reason = reason_of(request);
        if reason.trim().is_empty() {
            errors.add(
                format!("{field}.reason"),
                "say why the reader is compensated",
            );
        }
        match *request {
            CompensationRequest::Extension { term, days, .. } => {
                if !(1..=MAX_EXTENSION_DAYS).contains(&days) {
                    errors.add(
                        format!("{field}.days"),
                        format!("extend by 1 to {MAX_EXTENSION_DAYS} days"),
                    );
                    return None;
                }
                Some(CompensationGrant::Extension { term, days })
            }
            CompensationRequest::Credit { amount, .. } => {
                match Money::parse(amount, self.currency) {
                    Ok(credit) if credit.amount > 0 => {
                        Some(CompensationGrant::Credit { amount: credit })
                    }
                    Ok(_) => {
                        errors.add(
                            format!("{field}.amount"),
                            "a credit is a positive amount in minor units",
                        );
                        None
                    }
                    Err(e) => {
                        errors.add(format!("{field}.amount"), e);
                        None
                    }
                }
            }
        }
    }

    fn step(
        &self,
        caller: &Caller,
        action: Action,
        note: Option<String>,
        detail: serde_json::Value,
        at: DateTime<Utc>,
    ) -> NewStep {
        NewStep {
            action,
            note: note.map(|n| text::clean(&n)).filter(|n| !n.is_empty()),
            detail,
            at,
            by: caller.actor.name.clone(),
        }
    }
}

fn reason_of(request: &CompensationRequest) -> String {
    match request {
        CompensationRequest::Extension { reason, .. }
        | CompensationRequest::Credit { reason, .. } => text::clean(reason),
    }
}

/// Trimmed, composed text, or an error on `field` when empty or too long.
fn checked_text(errors: &mut FieldErrors, field: &str, given: &str) -> String {
    let cleaned = text::clean(given);
    if cleaned.is_empty() {
        errors.add(field, "must not be empty");
    } else if cleaned.chars().count() > MAX_TEXT {
        errors.add(field, format!("at most {MAX_TEXT} characters"));
    }
    cleaned
}

fn refused(e: Refused) -> ServiceError {
    ServiceError::Conflict(e.0)
}

fn conflict(e: StoreError) -> ServiceError {
    match e {
        StoreError::Conflict(detail) => ServiceError::Conflict(detail),
        e => e.into(),
    }
}
