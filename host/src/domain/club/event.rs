//! Club events: what they are, who may come, and how an answer to an invitation moves a reader
//! between accepted, waitlisted and declined without ever passing the capacity.

use std::fmt;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::ClubDraft;
use crate::domain::FieldErrors;

words!(
    /// What sort of gathering an event is.
    EventKind { Concert = "concert", Trip = "trip", Forum = "forum", Sports = "sports", Other = "other" }
);
words!(
    /// Where one invited reader stands.
    InvitationState {
        Invited = "invited", Accepted = "accepted", Waitlisted = "waitlisted",
        Declined = "declined", Attended = "attended",
    }
);

/// Check-in opens this long before an event starts and closes this long after.
pub const CHECK_IN_WINDOW_HOURS: i64 = 24;
/// Most places one event may have.
const MAX_CAPACITY: i64 = 100_000;

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EventDraft {
    pub title: String,
    pub kind: EventKind,
    pub starts_at: DateTime<Utc>,
    pub place: String,
    pub capacity: i64,
    /// Codes of the tiers whose members may be invited; each must bring event access.
    pub eligible_tiers: Vec<String>,
    pub description: Option<String>,
}

impl EventDraft {
    pub fn validate(&self, club: &ClubDraft, now: DateTime<Utc>) -> Result<(), FieldErrors> {
        let mut errors = FieldErrors::default();
        let title = self.title.trim();
        if title.is_empty() || title.chars().count() > 200 {
            errors.add("title", "give the event a title of 1 to 200 characters");
        }
        let place = self.place.trim();
        if place.is_empty() || place.chars().count() > 200 {
            errors.add("place", "say where the event is (1 to 200 characters)");
        }
        if !(1..=MAX_CAPACITY).contains(&self.capacity) {
            errors.add(
                "capacity",
                format!(
                    "an event has 1 to {MAX_CAPACITY} places, not {}",
                    self.capacity
                ),
            );
        }
        if self.starts_at <= now {
            errors.add("starts_at", "an event is planned for a time still to come");
        }
        if self.eligible_tiers.is_empty() {
            errors.add(
                "eligible_tiers",
                "name at least one tier whose members may come",
            );
        }
        for (i, code) in self.eligible_tiers.iter().enumerate() {
            match club.tier(code) {
                None => errors.add(
                    format!("eligible_tiers[{i}]"),
                    format!("club {} has no tier `{code}`", club.code),
                ),
                Some((_, tier)) if !tier.perks.event_access => errors.add(
                    format!("eligible_tiers[{i}]"),
                    format!("tier `{code}` does not bring event access"),
                ),
                Some(_) => {}
            }
        }
        if self
            .description
            .as_ref()
            .is_some_and(|d| d.chars().count() > 2_000)
        {
            errors.add("description", "keep the description under 2,000 characters");
        }
        errors.into_result(())
    }
}

/// A reader's answer to an invitation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Answer {
    Yes,
    No,
}

/// Where an answer puts the reader, given how many places are taken.
pub fn respond(
    current: InvitationState,
    answer: Answer,
    accepted: i64,
    capacity: i64,
) -> Result<InvitationState, String> {
    use InvitationState::*;
    match (current, answer) {
        (Attended, _) => Err("the reader has already checked in".to_owned()),
        (Accepted | Waitlisted, Answer::Yes) => Ok(current),
        (_, Answer::Yes) if accepted < capacity => Ok(Accepted),
        (_, Answer::Yes) => Ok(Waitlisted),
        (_, Answer::No) => Ok(Declined),
    }
}

/// Whether a reader may check in at `now`: accepted, and within the window around the start.
pub fn check_in(
    current: InvitationState,
    starts_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<(), String> {
    let window = Duration::hours(CHECK_IN_WINDOW_HOURS);
    match current {
        InvitationState::Attended => Err("the reader has already checked in".to_owned()),
        InvitationState::Accepted if now < starts_at - window => Err(format!(
            "check-in opens {CHECK_IN_WINDOW_HOURS} hours before the event starts ({starts_at})"
        )),
        InvitationState::Accepted if now > starts_at + window => Err(format!(
            "check-in closed {CHECK_IN_WINDOW_HOURS} hours after the event started ({starts_at})"
        )),
        InvitationState::Accepted => Ok(()),
        other => Err(format!(
            "only a reader with an accepted place checks in; this one is {other}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use InvitationState::*;

    #[test]
    fn yes_takes_a_free_place_or_joins_the_waitlist() {
        assert_eq!(respond(Invited, Answer::Yes, 9, 10), Ok(Accepted));
        assert_eq!(respond(Invited, Answer::Yes, 10, 10), Ok(Waitlisted));
        assert_eq!(respond(Declined, Answer::Yes, 3, 10), Ok(Accepted));
        assert_eq!(respond(Waitlisted, Answer::Yes, 3, 10), Ok(Waitlisted));
        assert_eq!(respond(Accepted, Answer::No, 10, 10), Ok(Declined));
        assert!(respond(Attended, Answer::No, 1, 10).is_err());
    }

    #[test]
    fn check_in_is_for_accepted_readers_around_the_start() {
        let start: DateTime<Utc> = "2026-07-01T19:00:00Z".parse().unwrap();
        assert!(check_in(Accepted, start, start - Duration::hours(2)).is_ok());
        assert!(check_in(Accepted, start, start - Duration::hours(25)).is_err());
        assert!(check_in(Accepted, start, start + Duration::hours(25)).is_err());
        assert!(check_in(Waitlisted, start, start).is_err());
        assert!(check_in(Attended, start, start).is_err());
    }
}
