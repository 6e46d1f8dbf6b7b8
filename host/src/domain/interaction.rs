//! Interactions with readers (complaints, questions, suggestions, praise) and the workflow a
//! complaint follows: open -> responded -> resolved -> closed, with reopening and pauses.
//!
//! Each step is a pure function from the interaction as stored to the interaction after the
//! step; the clock and the service-level policy come in as arguments.

use std::fmt;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::SubscriberNumber;
use super::sla::{DueTimes, SlaPolicy};

words!(
    /// What the reader got in touch about.
    Kind { Complaint = "complaint", Question = "question", Suggestion = "suggestion", Praise = "praise" }
);
words!(
    /// How the reader got in touch.
    Channel {
        Phone = "phone", Email = "email", WebForm = "web_form", SocialMedia = "social_media",
        Letter = "letter", WalkIn = "walk_in",
    }
);
words!(
    Category {
        MissedDelivery = "missed_delivery", DamagedCopy = "damaged_copy", Billing = "billing",
        Content = "content", SubscriptionChange = "subscription_change", Other = "other",
    }
);
words!(
    /// How fast the publisher has committed to act.
    Priority { Urgent = "urgent", High = "high", Routine = "routine", Low = "low" }
);
words!(
    /// Where an interaction stands in the workflow.
    State { Open = "open", Responded = "responded", Resolved = "resolved", Closed = "closed" }
);

impl Kind {
    /// Complaints and questions wait for an answer; suggestions and praise are recorded.
    pub fn has_commitment(self) -> bool {
        matches!(self, Self::Complaint | Self::Question)
    }
}

/// One interaction as stored.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Interaction {
    pub id: i64,
    #[schema(value_type = Option<String>)]
    pub subscriber: Option<SubscriberNumber>,
    /// Who got in touch, when they are not (yet) linked to a subscriber.
    pub contact: Option<String>,
    pub kind: Kind,
    pub channel: Channel,
    pub category: Category,
    pub priority: Priority,
    pub text: String,
    /// The API key (staff member) that took it.
    pub taken_by: String,
    /// The staff member who owns it now.
    pub owner: Option<i64>,
    pub state: State,
    pub opened_at: DateTime<Utc>,
    /// The current due times; while paused, as they stood when the pause began.
    pub due: DueTimes,
    pub responded_at: Option<DateTime<Utc>>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub closed_at: Option<DateTime<Utc>>,
    /// Set while the clock is stopped (waiting for the reader).
    pub paused_since: Option<DateTime<Utc>>,
    /// Business time the clock stood still since it last started (opening or reopening).
    pub paused_seconds: i64,
    /// When the resolution clock last started: the opening, or the latest reopening.
    pub clock_started_at: DateTime<Utc>,
    pub reopened: i32,
    /// Business time to the first response, pauses excluded.
    pub response_seconds: Option<i64>,
    /// Business time to the (latest) resolution, pauses excluded.
    pub resolution_seconds: Option<i64>,
    /// The first answer was the resolution, given within the response target, and it was
    /// never reopened: "one call, one resolution".
    pub first_contact_resolution: Option<bool>,
    pub resolution: Option<String>,
    pub version: i64,
}

/// What a step does, as recorded in the interaction's history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Opened,
    Assigned,
    Responded,
    Paused,
    Resumed,
    Resolved,
    Closed,
    Reopened,
    Linked,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Opened => "opened",
            Self::Assigned => "assigned",
            Self::Responded => "responded",
            Self::Paused => "paused",
            Self::Resumed => "resumed",
            Self::Resolved => "resolved",
            Self::Closed => "closed",
            Self::Reopened => "reopened",
            Self::Linked => "linked",
        }
    }
}

/// A step refused by the workflow, with what to do instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub String);

fn refuse<T>(text: impl Into<String>) -> Result<T, Refused> {
    Err(Refused(text.into()))
}

/// The due times of an interaction whose clocks started at `opened` (response) and
/// `clock_started` (resolution), with `paused` business time added.
pub fn due_times(
    policy: &SlaPolicy,
    kind: Kind,
    category: Category,
    priority: Priority,
    opened: DateTime<Utc>,
    clock_started: DateTime<Utc>,
    paused: Duration,
) -> Result<DueTimes, Refused> {
    if !kind.has_commitment() {
        return Ok(DueTimes::default());
    }
    let target = policy.target(category, priority);
    let never = |e: super::calendar::NeverOpen| Refused(e.to_string());
    Ok(DueTimes {
        respond_by: Some(
            policy
                .due(opened, target.respond_within, paused)
                .map_err(never)?,
        ),
        resolve_by: Some(
            policy
                .due(clock_started, target.resolve_within, paused)
                .map_err(never)?,
        ),
    })
}

impl Interaction {
    fn paused(&self) -> Duration {
        Duration::seconds(self.paused_seconds)
    }

    fn refuse_if_paused(&self, what: &str) -> Result<(), Refused> {
        if self.paused_since.is_some() {
            return refuse(format!(
                "interaction {} is paused while waiting for the reader; resume it before it \
                 can be {what}",
                self.id
            ));
        }
        Ok(())
    }

    /// Business time since `from`, less the time paused.
    fn worked(&self, policy: &SlaPolicy, from: DateTime<Utc>, now: DateTime<Utc>) -> i64 {
        (policy.elapsed(from, now) - self.paused())
            .num_seconds()
            .max(0)
    }

    /// The first answer to the reader.
    pub fn respond(&mut self, policy: &SlaPolicy, now: DateTime<Utc>) -> Result<(), Refused> {
        if self.state != State::Open || self.responded_at.is_some() {
            return refuse(format!(
                "interaction {} has been answered already ({}); record further steps as a \
                 resolution",
                self.id, self.state
            ));
        }
        self.refuse_if_paused("answered")?;
        self.state = State::Responded;
        self.responded_at = Some(now);
        self.response_seconds = Some(self.worked(policy, self.opened_at, now));
        Ok(())
    }

    /// Solves it; resolving an unanswered interaction answers it too. That counts as a
    /// first-contact resolution when it comes within the response target.
    pub fn resolve(
        &mut self,
        policy: &SlaPolicy,
        now: DateTime<Utc>,
        resolution: String,
    ) -> Result<(), Refused> {
        match self.state {
            State::Resolved | State::Closed => {
                return refuse(format!(
                    "interaction {} is already {}; reopen it first if the reader is not satisfied",
                    self.id, self.state
                ));
            }
            State::Open | State::Responded => {}
        }
        self.refuse_if_paused("resolved")?;
        let same_contact = self.responded_at.is_none();
        if same_contact {
            self.responded_at = Some(now);
            self.response_seconds = Some(self.worked(policy, self.opened_at, now));
        }
        self.state = State::Resolved;
        self.resolved_at = Some(now);
        self.resolution_seconds = Some(self.worked(policy, self.clock_started_at, now));
        let in_time = self.due.respond_by.is_none_or(|due| now <= due);
        self.first_contact_resolution = Some(same_contact && in_time && self.reopened == 0);
        self.resolution = Some(resolution);
        Ok(())
    }

    /// Files a resolved interaction away.
    pub fn close(&mut self, now: DateTime<Utc>) -> Result<(), Refused> {
        match self.state {
            State::Resolved => {
                self.state = State::Closed;
                self.closed_at = Some(now);
                Ok(())
            }
            State::Closed => refuse(format!("interaction {} is already closed", self.id)),
            State::Open | State::Responded => refuse(format!(
                "interaction {} is {} and not resolved; resolve it before closing it",
                self.id, self.state
            )),
        }
    }

    /// Takes a resolved or closed interaction up again; the resolution clock starts anew.
    pub fn reopen(&mut self, policy: &SlaPolicy, now: DateTime<Utc>) -> Result<(), Refused> {
        if !matches!(self.state, State::Resolved | State::Closed) {
            return refuse(format!(
                "interaction {} is {}, not resolved or closed, so there is nothing to reopen",
                self.id, self.state
            ));
        }
        self.state = State::Responded;
        self.reopened += 1;
        self.resolved_at = None;
        self.closed_at = None;
        self.resolution_seconds = None;
        self.first_contact_resolution = None;
        self.resolution = None;
        self.clock_started_at = now;
        self.paused_seconds = 0;
        let due = self.compute_due(policy)?;
        // The first response was given before; its due time stays as it was.
        self.due.resolve_by = due.resolve_by;
        Ok(())
    }

    /// Stops the clock while waiting for the reader.
    pub fn pause(&mut self, now: DateTime<Utc>) -> Result<(), Refused> {
        if !matches!(self.state, State::Open | State::Responded) {
            return refuse(format!(
                "interaction {} is {}; only an open or answered interaction can wait for the \
                 reader",
                self.id, self.state
            ));
        }
        if self.paused_since.is_some() {
            return refuse(format!("interaction {} is paused already", self.id));
        }
        self.paused_since = Some(now);
        Ok(())
    }

    /// Starts the clock again; the due times move by the business time it stood still.
    pub fn resume(&mut self, policy: &SlaPolicy, now: DateTime<Utc>) -> Result<(), Refused> {
        let Some(since) = self.paused_since.take() else {
            return refuse(format!("interaction {} is not paused", self.id));
        };
        self.paused_seconds += policy.elapsed(since, now).num_seconds();
        let due = self.compute_due(policy)?;
        if self.responded_at.is_none() {
            self.due.respond_by = due.respond_by;
        }
        self.due.resolve_by = due.resolve_by;
        Ok(())
    }

    fn compute_due(&self, policy: &SlaPolicy) -> Result<DueTimes, Refused> {
        due_times(
            policy,
            self.kind,
            self.category,
            self.priority,
            self.opened_at,
            self.clock_started_at,
            self.paused(),
        )
    }

    /// Whether the first response came (or, still missing, is) late at `now`.
    pub fn response_late(&self, now: DateTime<Utc>) -> Option<bool> {
        let due = self.due.respond_by?;
        Some(self.responded_at.unwrap_or(now) > due)
    }

    /// Whether the resolution came (or, still missing, is) late at `now`.
    pub fn resolution_late(&self, now: DateTime<Utc>) -> Option<bool> {
        let due = self.due.resolve_by?;
        let done = self.resolved_at.unwrap_or(now);
        Some(done > due)
    }

    /// The next due time the desk must meet, if any (none while paused or once resolved).
    pub fn next_due(&self) -> Option<DateTime<Utc>> {
        if self.paused_since.is_some() {
            return None;
        }
        match self.state {
            State::Open => self.due.respond_by,
            State::Responded => self.due.resolve_by,
            State::Resolved | State::Closed => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::domain::calendar::{BusinessHours, OpenHours};
    use crate::domain::sla::Target;

    fn policy() -> SlaPolicy {
        let day = Some(OpenHours::parse("08:00-18:00").unwrap());
        let hours = BusinessHours {
            zone: chrono_tz::Europe::London,
            week: [day, day, day, day, day, None, None],
            holidays: BTreeSet::new(),
        };
        let targets = Priority::ALL
            .into_iter()
            .map(|priority| Target {
                category: None,
                priority,
                respond_within: Duration::hours(2),
                resolve_within: Duration::hours(24),
            })
            .collect();
        SlaPolicy::new(hours, targets).unwrap()
    }

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn complaint(opened: &str) -> Interaction {
        let policy = policy();
        let opened = at(opened);
        Interaction {
            id: 1,
            subscriber: None,
            contact: Some("caller".into()),
            kind: Kind::Complaint,
            channel: Channel::Phone,
            category: Category::MissedDelivery,
            priority: Priority::Routine,
            text: "no paper".into(),
            taken_by: "desk".into(),
            owner: None,
            state: State::Open,
            opened_at: opened,
            due: due_times(
                &policy,
                Kind::Complaint,
                Category::MissedDelivery,
                Priority::Routine,
                opened,
                opened,
                Duration::zero(),
            )
            .unwrap(),
            responded_at: None,
            resolved_at: None,
            closed_at: None,
            paused_since: None,
            paused_seconds: 0,
            clock_started_at: opened,
            reopened: 0,
            response_seconds: None,
            resolution_seconds: None,
            first_contact_resolution: None,
            resolution: None,
            version: 1,
        }
    }

    #[test]
    fn friday_afternoon_complaint_is_due_on_monday() {
        // Friday 6 March 2026, 16:30 in London.
        let c = complaint("2026-03-06T16:30:00Z");
        assert_eq!(c.due.respond_by, Some(at("2026-03-09T08:30:00Z")));
        assert_eq!(c.next_due(), c.due.respond_by);
    }

    #[test]
    fn a_pause_moves_the_due_times_by_the_business_time_paused() {
        let policy = policy();
        let mut c = complaint("2026-03-09T09:00:00Z");
        c.pause(at("2026-03-09T09:30:00Z")).unwrap();
        assert_eq!(c.next_due(), None);
        assert!(c.respond(&policy, at("2026-03-09T10:00:00Z")).is_err());
        // One business hour paused (the evening does not count).
        c.resume(&policy, at("2026-03-09T10:30:00Z")).unwrap();
        assert_eq!(c.due.respond_by, Some(at("2026-03-09T12:00:00Z")));
        c.respond(&policy, at("2026-03-09T11:00:00Z")).unwrap();
        // Two business hours since opening, one of them paused.
        assert_eq!(c.response_seconds, Some(3600));
        assert_eq!(c.response_late(at("2026-03-10T00:00:00Z")), Some(false));
    }

    #[test]
    fn resolving_in_the_first_contact_counts_as_first_contact_resolution() {
        let policy = policy();
        let mut c = complaint("2026-03-09T09:00:00Z");
        c.resolve(&policy, at("2026-03-09T09:05:00Z"), "redelivered".into())
            .unwrap();
        assert_eq!(c.first_contact_resolution, Some(true));
        assert_eq!(c.responded_at, c.resolved_at);

        let mut c = complaint("2026-03-09T09:00:00Z");
        c.respond(&policy, at("2026-03-09T09:05:00Z")).unwrap();
        c.resolve(&policy, at("2026-03-09T15:00:00Z"), "credited".into())
            .unwrap();
        assert_eq!(c.first_contact_resolution, Some(false));
    }

    #[test]
    fn invalid_steps_are_refused_with_what_to_do() {
        let policy = policy();
        let mut c = complaint("2026-03-09T09:00:00Z");
        let closing = c.close(at("2026-03-09T09:10:00Z")).unwrap_err();
        assert!(closing.0.contains("resolve it before closing"), "{closing}");
        c.resolve(&policy, at("2026-03-09T09:05:00Z"), "done".into())
            .unwrap();
        let twice = c
            .resolve(&policy, at("2026-03-09T09:06:00Z"), "again".into())
            .unwrap_err();
        assert!(twice.0.contains("already resolved"), "{twice}");
        assert!(c.respond(&policy, at("2026-03-09T09:07:00Z")).is_err());
        assert!(c.pause(at("2026-03-09T09:07:00Z")).is_err());
        assert!(c.resume(&policy, at("2026-03-09T09:07:00Z")).is_err());
    }

    #[test]
    fn reopening_restarts_the_resolution_clock() {
        let policy = policy();
        let mut c = complaint("2026-03-09T09:00:00Z");
        c.resolve(&policy, at("2026-03-09T09:05:00Z"), "done".into())
            .unwrap();
        c.close(at("2026-03-09T09:06:00Z")).unwrap();
        c.reopen(&policy, at("2026-03-10T09:00:00Z")).unwrap();
        assert_eq!(c.state, State::Responded);
        assert_eq!(c.reopened, 1);
        // 24 business hours from Tuesday 09:00 is Thursday 13:00 (10-hour days).
        assert_eq!(c.due.resolve_by, Some(at("2026-03-12T13:00:00Z")));
        c.resolve(&policy, at("2026-03-10T10:00:00Z"), "really done".into())
            .unwrap();
        assert_eq!(c.first_contact_resolution, Some(false));
        assert!(c.reopen(&policy, at("2026-03-10T11:00:00Z")).is_ok());
        assert!(c.reopen(&policy, at("2026-03-10T11:00:00Z")).is_err());
    }

    #[test]
    fn praise_carries_no_due_time() {
        let due = due_times(
            &policy(),
            Kind::Praise,
            Category::Content,
            Priority::Routine,
            at("2026-03-09T09:00:00Z"),
            at("2026-03-09T09:00:00Z"),
            Duration::zero(),
        )
        .unwrap();
        assert_eq!(due, DueTimes::default());
    }
}
