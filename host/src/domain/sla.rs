//! Service-level commitments: how soon an interaction of a category and priority must be
//! answered and solved, counted in business hours.

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::calendar::{BusinessHours, NeverOpen};
use super::interaction::{Category, Priority};

/// The targets for one priority, in one category or (with no category) in every other.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub category: Option<Category>,
    pub priority: Priority,
    /// Business time until the first response is due.
    pub respond_within: Duration,
    /// Business time until the resolution is due.
    pub resolve_within: Duration,
}

/// The due times of one interaction; `None` where no commitment applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, ToSchema)]
pub struct DueTimes {
    pub respond_by: Option<DateTime<Utc>>,
    pub resolve_by: Option<DateTime<Utc>>,
}

/// The publisher's commitments and the calendar their clocks run on.
#[derive(Debug, Clone, PartialEq)]
pub struct SlaPolicy {
    pub hours: BusinessHours,
    targets: Vec<Target>,
}

impl SlaPolicy {
    /// Refuses a policy that leaves a priority without a target for every category, or
    /// names the same category and priority twice.
    pub fn new(hours: BusinessHours, targets: Vec<Target>) -> Result<Self, String> {
        for priority in Priority::ALL {
            if !targets
                .iter()
                .any(|t| t.priority == priority && t.category.is_none())
            {
                return Err(format!(
                    "no target for {priority} interactions of every category; add one without \
                     a category"
                ));
            }
        }
        for (i, a) in targets.iter().enumerate() {
            if a.resolve_within < a.respond_within {
                return Err(format!(
                    "the {} target resolves before it responds; resolve_within must be at least \
                     respond_within",
                    a.priority
                ));
            }
            if targets[..i]
                .iter()
                .any(|b| b.category == a.category && b.priority == a.priority)
            {
                return Err(format!(
                    "two targets for {} {} interactions; keep one",
                    a.category.map_or("every".to_owned(), |c| c.to_string()),
                    a.priority
                ));
            }
        }
        hours.add(DateTime::UNIX_EPOCH, Duration::zero())?;
        Ok(Self { hours, targets })
    }

    /// The target for a category and priority: the category's own, else the general one.
    pub fn target(&self, category: Category, priority: Priority) -> &Target {
        self.targets
            .iter()
            .find(|t| t.priority == priority && t.category == Some(category))
            .or_else(|| {
                self.targets
                    .iter()
                    .find(|t| t.priority == priority && t.category.is_none())
            })
            .expect("SlaPolicy::new requires a general target per priority")
    }

    pub fn targets(&self) -> &[Target] {
        &self.targets
    }

    /// The instant `work` of business time after `start`, with `paused` business time added
    /// (the clock stood still that long).
    pub fn due(
        &self,
        start: DateTime<Utc>,
        work: Duration,
        paused: Duration,
    ) -> Result<DateTime<Utc>, NeverOpen> {
        self.hours.add(start, work + paused)
    }

    /// Business time between two instants.
    pub fn elapsed(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Duration {
        self.hours.between(from, to)
    }
}

impl From<NeverOpen> for String {
    fn from(e: NeverOpen) -> Self {
        e.to_string()
    }
}

/// Parses a target such as `2h`, `30m` or `1h 30m`; zero and more than a year are refused.
pub fn parse_target(text: &str) -> Result<Duration, String> {
    let parsed = humantime::parse_duration(text.trim())
        .map_err(|e| format!("`{text}` is not a duration ({e}); write it as 2h, 30m or 1h 30m"))?;
    let duration = Duration::from_std(parsed).map_err(|_| format!("`{text}` is too long"))?;
    if duration <= Duration::zero() {
        return Err(format!(
            "`{text}` is no time at all; give a positive duration"
        ));
    }
    if duration > Duration::days(366) {
        return Err(format!("`{text}` is longer than a year"));
    }
    Ok(duration)
}

/// A duration as a target is written: `2h`, `30m`, `1h 30m`.
pub fn format_target(duration: Duration) -> String {
    let minutes = duration.num_minutes();
    match (minutes / 60, minutes % 60) {
        (0, m) => format!("{m}m"),
        (h, 0) => format!("{h}h"),
        (h, m) => format!("{h}h {m}m"),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::domain::calendar::OpenHours;

    fn hours() -> BusinessHours {
        let day = Some(OpenHours::parse("08:00-18:00").unwrap());
        BusinessHours {
            zone: chrono_tz::UTC,
            week: [day, day, day, day, day, None, None],
            holidays: BTreeSet::new(),
        }
    }

    fn general(priority: Priority, respond: i64, resolve: i64) -> Target {
        Target {
            category: None,
            priority,
            respond_within: Duration::hours(respond),
            resolve_within: Duration::hours(resolve),
        }
    }

    fn all_general() -> Vec<Target> {
        Priority::ALL
            .into_iter()
            .map(|p| general(p, 2, 24))
            .collect()
    }

    #[test]
    fn the_category_target_wins_over_the_general_one() {
        let mut targets = all_general();
        targets.push(Target {
            category: Some(Category::MissedDelivery),
            ..general(Priority::Routine, 1, 4)
        });
        let policy = SlaPolicy::new(hours(), targets).unwrap();
        let own = policy.target(Category::MissedDelivery, Priority::Routine);
        assert_eq!(own.respond_within, Duration::hours(1));
        let other = policy.target(Category::Billing, Priority::Routine);
        assert_eq!(other.respond_within, Duration::hours(2));
    }

    #[test]
    fn a_priority_without_a_general_target_is_refused() {
        let targets = vec![general(Priority::Routine, 2, 24)];
        let error = SlaPolicy::new(hours(), targets).unwrap_err();
        assert!(error.contains("urgent"), "{error}");
    }

    #[test]
    fn duplicates_and_backwards_targets_are_refused() {
        let mut targets = all_general();
        targets.push(general(Priority::Routine, 1, 8));
        assert!(
            SlaPolicy::new(hours(), targets)
                .unwrap_err()
                .contains("two targets")
        );
        let mut targets = all_general();
        targets[0] = general(targets[0].priority, 8, 1);
        assert!(
            SlaPolicy::new(hours(), targets)
                .unwrap_err()
                .contains("before it responds")
        );
    }

    #[test]
    fn paused_time_moves_the_due_time() {
        let policy = SlaPolicy::new(hours(), all_general()).unwrap();
        let start = "2026-03-02T09:00:00Z".parse().unwrap();
        let due = policy
            .due(start, Duration::hours(2), Duration::minutes(90))
            .unwrap();
        assert_eq!(
            due,
            "2026-03-02T12:30:00Z".parse::<DateTime<Utc>>().unwrap()
        );
    }

    #[test]
    fn targets_parse_and_print() {
        assert_eq!(parse_target("2h").unwrap(), Duration::hours(2));
        assert_eq!(parse_target("1h 30m").unwrap(), Duration::minutes(90));
        assert_eq!(format_target(Duration::minutes(90)), "1h 30m");
        assert_eq!(format_target(Duration::minutes(30)), "30m");
        assert!(parse_target("0m").is_err());
        assert!(parse_target("soon").unwrap_err().contains("2h"));
        assert!(parse_target("400days").is_err());
    }
}
