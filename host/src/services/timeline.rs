//! The timeline: everything that happened with one subscriber, newest first, across terms,
//! holds, cancellations, interactions, compensations, consents and profile changes.
//!
//! Entries are ordered by `(at, kind, id)`, so a cursor (the key of the last entry shown)
//! gives every staff member the same pages.

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::audit::AuditLog;
use super::subscribers::{Caller, Registry};
use super::{ServiceError, ServiceResult};
use crate::domain::club::TierMove;
use crate::domain::interaction::Action;
use crate::domain::{FieldErrors, SubscriberNumber};
use crate::store::{AuditFilter, Store};

/// The audit actions that change a profile.
const PROFILE_ACTIONS: [&str; 4] = [
    "subscriber.create",
    "subscriber.update",
    "subscriber.merge",
    "subscriber.erase",
];
/// Most profile changes of one kind read for a timeline.
const PROFILE_CHANGES: i64 = 1_000;

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    Term,
    Hold,
    Cancellation,
    Interaction,
    Compensation,
    Consent,
    Profile,
    Tier,
    Event,
}

impl EntryKind {
    const ALL: [Self; 9] = [
        Self::Term,
        Self::Hold,
        Self::Cancellation,
        Self::Interaction,
        Self::Compensation,
        Self::Consent,
        Self::Profile,
        Self::Tier,
        Self::Event,
    ];

    fn as_str(self) -> &'static str {
        match self {
            Self::Term => "term",
            Self::Hold => "hold",
            Self::Cancellation => "cancellation",
            Self::Interaction => "interaction",
            Self::Compensation => "compensation",
            Self::Consent => "consent",
            Self::Profile => "profile",
            Self::Tier => "tier",
            Self::Event => "event",
        }
    }

    /// Parses a comma-separated list such as `term,interaction`.
    pub fn parse_list(text: &str) -> Result<Vec<Self>, String> {
        text.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                Self::ALL
                    .into_iter()
                    .find(|k| k.as_str() == s)
                    .ok_or_else(|| {
                        let known: Vec<&str> = Self::ALL.iter().map(|k| k.as_str()).collect();
                        format!("`{s}` is not a timeline kind; use {}", known.join(", "))
                    })
            })
            .collect()
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TimelineEntry {
    pub at: DateTime<Utc>,
    pub kind: EntryKind,
    /// The record it is about: a term, hold, interaction, compensation or audit id.
    pub id: i64,
    /// One line for a person.
    pub summary: String,
    /// Who did it, where known.
    pub by: Option<String>,
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Timeline {
    #[schema(value_type = String)]
    pub subscriber: SubscriberNumber,
    pub items: Vec<TimelineEntry>,
    /// Pass as `cursor` for the next (older) page; empty on the last page.
    pub next_cursor: Option<String>,
}

pub struct TimelineQuery {
    pub kinds: Vec<EntryKind>,
    pub cursor: Option<String>,
    pub limit: usize,
}

type Key = (DateTime<Utc>, EntryKind, i64);

pub struct Timelines {
    store: Arc<dyn Store>,
    registry: Arc<Registry>,
    audit: AuditLog,
}

impl Timelines {
    pub fn new(store: Arc<dyn Store>, registry: Arc<Registry>, audit: AuditLog) -> Self {
        Self {
            store,
            registry,
            audit,
        }
    }

    pub async fn timeline(
        &self,
        caller: &Caller,
        number: SubscriberNumber,
        query: TimelineQuery,
    ) -> ServiceResult<Timeline> {
        let after = query.cursor.as_deref().map(parse_cursor).transpose()?;
        self.registry.load(number).await?;
        let wanted = |k: EntryKind| query.kinds.is_empty() || query.kinds.contains(&k);
        let mut entries = Vec::new();
        if wanted(EntryKind::Term) || wanted(EntryKind::Hold) || wanted(EntryKind::Cancellation) {
            self.terms(number, &mut entries).await?;
        }
        if wanted(EntryKind::Interaction) {
            self.interactions(number, &mut entries).await?;
        }
        if wanted(EntryKind::Compensation) {
            for c in self.store.compensations(number).await? {
                let summary = match (&c.amount, c.term, c.days) {
                    (Some(amount), _, _) => format!("Credit of {amount}: {}", c.reason),
                    (None, Some(term), Some(days)) => {
                        format!("Term {term} extended by {days} days: {}", c.reason)
                    }
                    _ => c.reason.clone(),
                };
                entries.push(TimelineEntry {
                    at: c.created_at,
                    kind: EntryKind::Compensation,
                    id: c.id,
                    summary,
                    by: Some(c.created_by.clone()),
                    detail: json!({ "interaction": c.interaction, "term": c.term,
                                    "days": c.days, "amount": c.amount }),
                });
            }
        }
        if wanted(EntryKind::Consent) {
            for (i, e) in self
                .store
                .consent_history(number)
                .await?
                .into_iter()
                .enumerate()
            {
                let verb = if e.granted { "granted" } else { "withdrawn" };
                entries.push(TimelineEntry {
                    at: e.recorded_at,
                    kind: EntryKind::Consent,
                    id: i64::try_from(i).unwrap_or(i64::MAX),
                    summary: format!(
                        "Consent to {} {verb} by {}",
                        word(&e.purpose).replace('_', " "),
                        word(&e.channel).replace('_', " ")
                    ),
                    by: Some(e.recorded_by.clone()),
                    detail: json!({ "purpose": e.purpose, "granted": e.granted,
                                    "channel": e.channel }),
                });
            }
        }
        if wanted(EntryKind::Profile) {
            self.profile(number, &mut entries).await?;
        }
        if wanted(EntryKind::Tier) || wanted(EntryKind::Event) {
            self.clubs(number, &mut entries).await?;
        }
        entries.retain(|e| wanted(e.kind));
        entries.sort_by_key(|e| std::cmp::Reverse(key(e)));
        let start = match after {
            Some(cursor) => entries.partition_point(|e| key(e) >= cursor),
            None => 0,
        };
        let page: Vec<TimelineEntry> = entries
            .into_iter()
            .skip(start)
            .take(query.limit + 1)
            .collect();
        let (items, next_cursor) = if page.len() > query.limit {
            let items: Vec<TimelineEntry> = page.into_iter().take(query.limit).collect();
            let cursor = items.last().map(|e| cursor_of(key(e)));
            (items, cursor)
        } else {
            (page, None)
        };
        self.audit
            .record(caller.audit(
                "subscriber.timeline",
                Some(number),
                json!({ "results": items.len() }),
            ))
            .await;
        Ok(Timeline {
            subscriber: number,
            items,
            next_cursor,
        })
    }

    async fn terms(
        &self,
        number: SubscriberNumber,
        entries: &mut Vec<TimelineEntry>,
    ) -> ServiceResult<()> {
        for t in self.store.list_terms(number).await? {
            let what = if t.renews.is_some() {
                "Renewed"
            } else {
                "Subscribed to"
            };
            entries.push(TimelineEntry {
                // When it was agreed; an imported or back-dated term when it began.
                at: t.created_at.min(midnight(t.start)),
                kind: EntryKind::Term,
                id: t.id,
                summary: format!(
                    "{what} {} ({}, {} months) from {} to {}, paid {}",
                    t.publication,
                    word(&t.format),
                    t.months,
                    t.start,
                    t.end,
                    t.price_paid
                ),
                by: None,
                detail: json!({ "publication": t.publication, "start": t.start, "end": t.end,
                                "renews": t.renews, "price_paid": t.price_paid }),
            });
            for h in &t.holds {
                entries.push(TimelineEntry {
                    at: midnight(h.from),
                    kind: EntryKind::Hold,
                    id: h.id,
                    summary: format!(
                        "Delivery of {} held from {} to {}",
                        t.publication, h.from, h.to
                    ),
                    by: None,
                    detail: json!({ "term": t.id, "reason": h.reason }),
                });
            }
            if let Some(c) = &t.cancellation {
                entries.push(TimelineEntry {
                    at: c.recorded_at,
                    kind: EntryKind::Cancellation,
                    id: t.id,
                    summary: format!(
                        "{} cancelled from {}: {}",
                        t.publication, c.effective, c.reason
                    ),
                    by: Some(c.recorded_by.clone()),
                    detail: json!({ "term": t.id, "effective": c.effective, "refund": c.refund }),
                });
            }
        }
        Ok(())
    }

    /// Moves between club tiers, and club event invitations with their outcome.
    async fn clubs(
        &self,
        number: SubscriberNumber,
        entries: &mut Vec<TimelineEntry>,
    ) -> ServiceResult<()> {
        let reader = number.sequence();
        for change in self.store.tier_history(reader).await? {
            let tier = |t: &Option<String>| t.clone().unwrap_or_default();
            let summary = match change.moved {
                TierMove::Joined => format!("Joined {} as {}", change.club, tier(&change.to_tier)),
                TierMove::Left => format!("Left {} (was {})", change.club, tier(&change.from_tier)),
                moved => format!(
                    "{} from {} to {} in {}",
                    capitalised(moved.as_str()),
                    tier(&change.from_tier),
                    tier(&change.to_tier),
                    change.club
                ),
            };
            entries.push(TimelineEntry {
                at: change.at,
                kind: EntryKind::Tier,
                id: change.id,
                summary: format!("{summary}: {}", change.because),
                by: Some(change.by.clone()),
                detail: json!({ "club": change.club, "change": change.moved,
                                "from": change.from_tier, "to": change.to_tier }),
            });
        }
        for invitation in self.store.subscriber_invitations(reader).await? {
            let Some(event) = self.store.get_event(invitation.event).await? else {
                continue;
            };
            entries.push(TimelineEntry {
                at: invitation
                    .checked_in_at
                    .or(invitation.answered_at)
                    .unwrap_or(invitation.invited_at),
                kind: EntryKind::Event,
                id: event.id,
                summary: format!(
                    "{} ({}, {}): {}",
                    event.title, event.kind, event.starts_at, invitation.state
                ),
                by: None,
                detail: json!({ "club": event.club, "state": invitation.state,
                                "starts_at": event.starts_at, "place": event.place }),
            });
        }
        Ok(())
    }

    async fn interactions(
        &self,
        number: SubscriberNumber,
        entries: &mut Vec<TimelineEntry>,
    ) -> ServiceResult<()> {
        for (interaction, steps) in self.store.subscriber_steps(number).await? {
            for step in steps {
                let summary = match step.action {
                    Action::Opened => format!(
                        "{} #{} by {} about {}: {}",
                        capitalised(interaction.kind.as_str()),
                        interaction.id,
                        interaction.channel,
                        interaction.category,
                        interaction.text
                    ),
                    action => format!(
                        "{} #{} {}",
                        capitalised(interaction.kind.as_str()),
                        interaction.id,
                        action.as_str()
                    ),
                };
                entries.push(TimelineEntry {
                    at: step.at,
                    kind: EntryKind::Interaction,
                    id: step.id,
                    summary,
                    by: Some(step.by),
                    detail: json!({ "interaction": interaction.id, "action": step.action,
                                    "note": step.note, "step": step.detail }),
                });
            }
        }
        Ok(())
    }

    async fn profile(
        &self,
        number: SubscriberNumber,
        entries: &mut Vec<TimelineEntry>,
    ) -> ServiceResult<()> {
        for action in PROFILE_ACTIONS {
            let filter = AuditFilter {
                subscriber: Some(number),
                action: Some(action.to_owned()),
                before: None,
                limit: PROFILE_CHANGES,
            };
            for record in self.store.list_audit(&filter).await? {
                let what = action.trim_start_matches("subscriber.");
                entries.push(TimelineEntry {
                    at: record.at,
                    kind: EntryKind::Profile,
                    id: record.id,
                    summary: format!("Profile {}", past_tense(what)),
                    by: Some(record.actor.name),
                    detail: record.detail,
                });
            }
        }
        Ok(())
    }
}

fn key(e: &TimelineEntry) -> Key {
    (e.at, e.kind, e.id)
}

fn cursor_of((at, kind, id): Key) -> String {
    format!("{}.{}.{id}", at.timestamp_micros(), kind.as_str())
}

fn parse_cursor(text: &str) -> ServiceResult<Key> {
    let invalid = || {
        ServiceError::Invalid(FieldErrors::single(
            "cursor",
            "not a cursor this timeline gave; start again without one",
        ))
    };
    let mut parts = text.split('.');
    let (Some(at), Some(kind), Some(id), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(invalid());
    };
    let at = at
        .parse()
        .ok()
        .and_then(DateTime::from_timestamp_micros)
        .ok_or_else(invalid)?;
    let kind = EntryKind::parse_list(kind)
        .ok()
        .and_then(|k| k.first().copied())
        .ok_or_else(invalid)?;
    Ok((at, kind, id.parse().map_err(|_| invalid())?))
}

/// An enum's name as the API writes it.
fn word<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::new(),
    }
}

fn midnight(day: NaiveDate) -> DateTime<Utc> {
    day.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc()
}

fn capitalised(word: &str) -> String {
    let mut chars = word.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

fn past_tense(action: &str) -> &'static str {
    match action {
        "create" => "created",
        "update" => "changed",
        "merge" => "merged",
        _ => "erased",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_garbage() {
        let at: DateTime<Utc> = "2026-03-09T09:00:00.123456Z".parse().unwrap();
        let key = (at, EntryKind::Interaction, 42);
        assert_eq!(parse_cursor(&cursor_of(key)).unwrap(), key);
        assert!(parse_cursor("yesterday").is_err());
        assert!(parse_cursor("1.nonsense.2").is_err());
        assert!(parse_cursor("1.term.2.3").is_err());
    }

    #[test]
    fn kinds_parse_with_a_helpful_error() {
        assert_eq!(
            EntryKind::parse_list("term, interaction").unwrap(),
            vec![EntryKind::Term, EntryKind::Interaction]
        );
        let error = EntryKind::parse_list("term,tiers").unwrap_err();
        assert!(
            error.contains("`tiers`") && error.contains("consent"),
            "{error}"
        );
    }
}
