//! Subscription status and tenure from a reader's terms.
//!
//! A gap between two terms counts the days served by neither. A gap shorter than the grace
//! period does not break tenure; a gap of exactly the grace period does. A reader whose last
//! term ended is "in grace" while a renewal starting today would still continue their tenure.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::term::Span;

/// Where a reader (or one title of theirs) stands on a given day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SubscriptionStatus {
    /// Never subscribed.
    None,
    /// Nothing served today, but a paid term starts later.
    Pending,
    /// A term serves today.
    Active,
    /// The last term ended less than the grace period ago.
    Grace,
    /// The last term ended at least the grace period ago.
    Lapsed,
    /// The last term was cancelled and nothing serves today.
    Cancelled,
}

impl SubscriptionStatus {
    /// Active or in grace: the reader still holds the title for renewal and share of wallet.
    pub fn is_current(self) -> bool {
        matches!(self, Self::Active | Self::Grace)
    }
}

/// The days without service between the last day served and a later day.
fn gap(last: NaiveDate, next: NaiveDate) -> i64 {
    (next - last).num_days() - 1
}

/// The status on `today`.
pub fn status(spans: &[Span], today: NaiveDate, grace_days: i64) -> SubscriptionStatus {
    let spans: Vec<&Span> = spans.iter().filter(|s| !s.is_empty()).collect();
    if spans.is_empty() {
        return SubscriptionStatus::None;
    }
    if spans.iter().any(|s| s.covers(today)) {
        return SubscriptionStatus::Active;
    }
    if spans.iter().any(|s| s.start > today) {
        return SubscriptionStatus::Pending;
    }
    let latest = spans
        .iter()
        .max_by_key(|s| (s.last, s.cancelled))
        .copied()
        .copied();
    match latest {
        Some(s) if s.cancelled => SubscriptionStatus::Cancelled,
        Some(s) if gap(s.last, today) < grace_days => SubscriptionStatus::Grace,
        _ => SubscriptionStatus::Lapsed,
    }
}

/// An unbroken stretch of subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Run {
    pub start: NaiveDate,
    pub last: NaiveDate,
}

/// The unbroken runs of the spans, oldest first. Overlapping and back-dated terms merge.
pub fn runs(spans: &[Span], grace_days: i64) -> Vec<Run> {
    let mut sorted: Vec<Span> = spans.iter().filter(|s| !s.is_empty()).copied().collect();
    sorted.sort_by_key(|s| (s.start, s.last));
    let mut runs: Vec<Run> = Vec::new();
    for span in sorted {
        match runs.last_mut() {
            Some(run) if gap(run.last, span.start) < grace_days => {
                run.last = run.last.max(span.last);
            }
            _ => runs.push(Run {
                start: span.start,
                last: span.last,
            }),
        }
    }
    runs
}

/// Unbroken subscription length on a day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
pub struct Tenure {
    /// The first day of the unbroken run; absent when the reader holds nothing that day.
    pub since: Option<NaiveDate>,
    pub days: i64,
    /// Whole years: a run begun on 29 February completes a year on 1 March.
    pub years: u32,
}

impl Tenure {
    pub const NONE: Self = Self {
        since: None,
        days: 0,
        years: 0,
    };
}

/// Tenure on `day`: the run that serves it, or that a term starting on it would continue.
pub fn tenure_on(spans: &[Span], day: NaiveDate, grace_days: i64) -> Tenure {
    let begun: Vec<Span> = spans.iter().filter(|s| s.start <= day).copied().collect();
    let run = runs(&begun, grace_days)
        .into_iter()
        .rev()
        .find(|r| day <= r.last || gap(r.last, day) < grace_days);
    match run {
        Some(run) => Tenure {
            since: Some(run.start),
            days: (day - run.start).num_days(),
            years: day.years_since(run.start).unwrap_or(0),
        },
        None => Tenure::NONE,
    }
}

/// The first day the reader was ever served.
pub fn first_subscribed(spans: &[Span]) -> Option<NaiveDate> {
    spans
        .iter()
        .filter(|s| !s.is_empty())
        .map(|s| s.start)
        .min()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn span(start: &str, last: &str) -> Span {
        Span {
            start: date(start),
            last: date(last),
            cancelled: false,
        }
    }

    const GRACE: i64 = 30;

    #[test]
    fn status_follows_the_calendar() {
        let spans = [span("2025-01-01", "2025-12-31")];
        let on = |d| status(&spans, date(d), GRACE);
        assert_eq!(
            status(&[], date("2025-01-01"), GRACE),
            SubscriptionStatus::None
        );
        assert_eq!(on("2024-12-31"), SubscriptionStatus::Pending);
        assert_eq!(on("2025-01-01"), SubscriptionStatus::Active);
        assert_eq!(on("2025-12-31"), SubscriptionStatus::Active);
        // 29 days without service: still in grace; the 30th makes the reader lapsed.
        assert_eq!(on("2026-01-30"), SubscriptionStatus::Grace);
        assert_eq!(on("2026-01-31"), SubscriptionStatus::Lapsed);
    }

    #[test]
    fn a_cancelled_last_term_reads_cancelled() {
        let mut cut = span("2025-01-01", "2025-05-31");
        cut.cancelled = true;
        assert_eq!(
            status(&[cut], date("2025-06-01"), GRACE),
            SubscriptionStatus::Cancelled
        );
        assert_eq!(
            status(&[cut], date("2025-05-31"), GRACE),
            SubscriptionStatus::Active
        );
        let later = span("2025-06-10", "2025-12-31");
        assert_eq!(
            status(&[cut, later], date("2026-01-05"), GRACE),
            SubscriptionStatus::Grace
        );
    }

    #[test]
    fn a_term_cancelled_before_it_began_serves_nothing() {
        let nothing = Span {
            start: date("2025-01-01"),
            last: date("2024-12-31"),
            cancelled: true,
        };
        assert!(nothing.is_empty());
        assert_eq!(
            status(&[nothing], date("2025-02-01"), GRACE),
            SubscriptionStatus::None
        );
        assert_eq!(first_subscribed(&[nothing]), None);
    }

    #[test]
    fn a_gap_shorter_than_grace_keeps_tenure_and_one_at_the_limit_breaks_it() {
        // 29 days between the terms: one run.
        let kept = [
            span("2020-01-01", "2020-12-31"),
            span("2021-01-30", "2021-12-31"),
        ];
        assert_eq!(runs(&kept, GRACE).len(), 1);
        // Exactly 30 days between: two runs.
        let broken = [
            span("2020-01-01", "2020-12-31"),
            span("2021-01-31", "2021-12-31"),
        ];
        assert_eq!(runs(&broken, GRACE).len(), 2);
        let tenure = tenure_on(&broken, date("2021-06-01"), GRACE);
        assert_eq!(tenure.since, Some(date("2021-01-31")));
        assert_eq!(tenure.years, 0);
    }

    #[test]
    fn overlapping_and_back_dated_terms_merge() {
        // Entered out of order, with one term inside another.
        let spans = [
            span("2022-01-01", "2022-12-31"),
            span("2019-01-01", "2021-12-31"),
            span("2020-06-01", "2020-08-31"),
        ];
        let runs = runs(&spans, GRACE);
        assert_eq!(
            runs,
            vec![Run {
                start: date("2019-01-01"),
                last: date("2022-12-31")
            }]
        );
        let tenure = tenure_on(&spans, date("2022-06-01"), GRACE);
        assert_eq!(tenure.since, Some(date("2019-01-01")));
        assert_eq!(tenure.years, 3);
    }

    #[test]
    fn tenure_counts_whole_years_across_leap_days() {
        let spans = [span("2020-02-29", "2025-12-31")];
        assert_eq!(tenure_on(&spans, date("2021-02-28"), GRACE).years, 0);
        assert_eq!(tenure_on(&spans, date("2021-03-01"), GRACE).years, 1);
        assert_eq!(tenure_on(&spans, date("2024-02-29"), GRACE).years, 4);
        assert_eq!(tenure_on(&spans, date("2021-03-01"), GRACE).days, 366);
    }

    #[test]
    fn a_renewal_continues_tenure_inside_grace_and_restarts_it_after() {
        let spans = [span("2015-01-01", "2024-12-31")];
        // Starting the day after the end, or within grace, continues ten years of tenure.
        assert_eq!(tenure_on(&spans, date("2025-01-01"), GRACE).years, 10);
        assert_eq!(tenure_on(&spans, date("2025-01-30"), GRACE).years, 10);
        // A lapsed reader starts again from nothing.
        assert_eq!(tenure_on(&spans, date("2025-01-31"), GRACE), Tenure::NONE);
        assert_eq!(first_subscribed(&spans), Some(date("2015-01-01")));
    }

    #[test]
    fn terms_starting_later_do_not_count_yet() {
        let spans = [span("2026-01-01", "2026-12-31")];
        assert_eq!(tenure_on(&spans, date("2025-06-01"), GRACE), Tenure::NONE);
        let first_day = tenure_on(&spans, date("2026-01-01"), GRACE);
        assert_eq!(first_day.since, Some(date("2026-01-01")));
        assert_eq!(first_day.days, 0);
        assert_eq!(tenure_on(&spans, date("2026-01-02"), GRACE).days, 1);
    }
}
