//! The complaints report: service-level compliance, response and resolution times,
//! first-contact resolution, repeat complainers, and how complainers renew.
//!
//! Definitions (documented in the API too):
//! - a commitment is *met* when the step came by its due time, *missed* when it came later or
//!   is still missing after the due time, and *pending* otherwise; compliance is
//!   met / (met + missed);
//! - times are business minutes with pauses excluded; the median and p90 use the
//!   nearest-rank method;
//! - the renewal rate of a group is renewed terms / terms that ended in the period (not
//!   cancelled before their end); a complainer is "late" when any of their complaints in
//!   the period missed its resolution due time.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::Complaints;
use crate::domain::interaction::{Category, Interaction, Kind};
use crate::domain::{FieldErrors, SubscriberNumber};
use crate::services::{ServiceError, ServiceResult};

/// Longest period one report covers, in days.
const MAX_DAYS: i64 = 366;

#[derive(Debug, Serialize, ToSchema)]
pub struct ComplaintReport {
    /// First and last day of the period, in the desk's time zone.
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub time_zone: String,
    pub overall: Figures,
    /// Categories with at least one complaint in the period.
    pub by_category: Vec<Figures>,
    /// Resolved complaints whose first answer was the resolution, given within the response
    /// target, and that were never reopened.
    pub first_contact_resolution: Rate,
    /// Subscribers with two or more complaints opened in the period, most first.
    pub repeat_complainers: Vec<RepeatComplainer>,
    pub renewal: RenewalComparison,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Figures {
    /// Empty for all categories together.
    pub category: Option<Category>,
    pub complaints: usize,
    pub response: Compliance,
    pub resolution: Compliance,
    pub minutes_to_first_response: Percentiles,
    pub minutes_to_resolution: Percentiles,
}

#[derive(Debug, Default, Serialize, ToSchema)]
pub struct Compliance {
    pub met: usize,
    pub missed: usize,
    pub pending: usize,
    /// met / (met + missed) in percent, one decimal; empty when nothing is decided yet.
    pub percent: Option<f64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Percentiles {
    pub count: usize,
    pub median: Option<i64>,
    pub p90: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Rate {
    pub count: usize,
    pub of: usize,
    pub percent: Option<f64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RepeatComplainer {
    #[schema(value_type = String)]
    pub subscriber: SubscriberNumber,
    pub complaints: usize,
}

/// Renewal rates of terms that ended in the period, by what their reader went through.
#[derive(Debug, Serialize, ToSchema)]
pub struct RenewalComparison {
    pub complained_resolved_in_time: Rate,
    pub complained_resolved_late: Rate,
    pub did_not_complain: Rate,
}

impl Complaints {
    pub async fn report(&self, from: NaiveDate, to: NaiveDate) -> ServiceResult<ComplaintReport> {
        let days = (to - from).num_days();
        if days < 0 {
            return Err(ServiceError::Invalid(FieldErrors::single(
                "to",
                "the period ends before it starts",
            )));
        }
        if days >= MAX_DAYS {
            return Err(ServiceError::Invalid(FieldErrors::single(
                "to",
                format!("a report covers at most {MAX_DAYS} days; split the period"),
            )));
        }
        let zone = self.policy.hours.zone;
        let start = |d: NaiveDate| -> DateTime<Utc> {
            let local = d.and_hms_opt(0, 0, 0).unwrap_or_default();
            zone.from_local_datetime(&local)
                .earliest()
                .map_or_else(|| local.and_utc(), |t| t.with_timezone(&Utc))
        };
        let end_day = to.succ_opt().unwrap_or(to);
        let now = self.clock.now();
        let complaints: Vec<Interaction> = self
            .store
            .interactions_opened(start(from), start(end_day))
            .await?
            .into_iter()
            .filter(|i| i.kind == Kind::Complaint)
            .collect();

        let mut by_category: BTreeMap<Category, Vec<&Interaction>> = BTreeMap::new();
        for c in &complaints {
            by_category.entry(c.category).or_default().push(c);
        }
        let all: Vec<&Interaction> = complaints.iter().collect();
        let resolved: Vec<&&Interaction> = all.iter().filter(|c| c.resolved_at.is_some()).collect();
        let first_contact = resolved
            .iter()
            .filter(|c| c.first_contact_resolution == Some(true))
            .count();

        let mut per_reader: BTreeMap<SubscriberNumber, (usize, bool)> = BTreeMap::new();
        for c in &complaints {
            if let Some(n) = c.subscriber {
                let entry = per_reader.entry(n).or_default();
                entry.0 += 1;
                entry.1 |= c.resolution_late(now) == Some(true);
            }
        }
        let mut repeat: Vec<RepeatComplainer> = per_reader
            .iter()
            .filter(|(_, (count, _))| *count >= 2)
            .map(|(n, (count, _))| RepeatComplainer {
                subscriber: *n,
                complaints: *count,
            })
            .collect();
        repeat.sort_by_key(|r| (std::cmp::Reverse(r.complaints), r.subscriber));

        let late: BTreeSet<i64> = per_reader
            .iter()
            .filter(|(_, (_, late))| *late)
            .map(|(n, _)| n.sequence())
            .collect();
        let complained: BTreeSet<i64> = per_reader.keys().map(|n| n.sequence()).collect();
        let outcomes = self.store.renewal_outcomes(from, to).await?;
        let group = |keep: &dyn Fn(i64) -> bool| {
            let mine: Vec<bool> = outcomes
                .iter()
                .filter(|o| keep(o.subscriber))
                .map(|o| o.renewed)
                .collect();
            rate(mine.iter().filter(|r| **r).count(), mine.len())
        };

        Ok(ComplaintReport {
            from,
            to,
            time_zone: zone.name().to_owned(),
            overall: figures(None, &all, now),
            by_category: by_category
                .iter()
                .map(|(category, list)| figures(Some(*category), list, now))
                .collect(),
            first_contact_resolution: rate(first_contact, resolved.len()),
            repeat_complainers: repeat,
            renewal: RenewalComparison {
                complained_resolved_in_time: group(&|s| {
                    complained.contains(&s) && !late.contains(&s)
                }),
                complained_resolved_late: group(&|s| late.contains(&s)),
                did_not_complain: group(&|s| !complained.contains(&s)),
            },
        })
    }
}

fn figures(category: Option<Category>, list: &[&Interaction], now: DateTime<Utc>) -> Figures {
    let minutes = |pick: &dyn Fn(&Interaction) -> Option<i64>| {
        let mut values: Vec<i64> = list
            .iter()
            .filter_map(|i| pick(i))
            .map(|s| s / 60)
            .collect();
        values.sort_unstable();
        Percentiles {
            count: values.len(),
            median: nearest_rank(&values, 50),
            p90: nearest_rank(&values, 90),
        }
    };
    Figures {
        category,
        complaints: list.len(),
        response: compliance(
            list.iter()
                .map(|i| (i.response_late(now), i.responded_at.is_some())),
        ),
        resolution: compliance(
            list.iter()
                .map(|i| (i.resolution_late(now), i.resolved_at.is_some())),
        ),
        minutes_to_first_response: minutes(&|i| i.response_seconds),
        minutes_to_resolution: minutes(&|i| i.resolution_seconds),
    }
}

/// Tallies `(late, done)` pairs: late is met or missed; not late and not done is pending.
fn compliance(items: impl Iterator<Item = (Option<bool>, bool)>) -> Compliance {
    let mut c = Compliance::default();
    for (late, done) in items {
        match (late, done) {
            (Some(true), _) => c.missed += 1,
            (Some(false), true) => c.met += 1,
            (Some(false), false) => c.pending += 1,
            (None, _) => {}
        }
    }
    c.percent = percent(c.met, c.met + c.missed);
    c
}

/// The value at rank ceil(p/100 * n) of sorted values.
fn nearest_rank(sorted: &[i64], p: usize) -> Option<i64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p * sorted.len()).div_ceil(100).max(1);
    sorted.get(rank - 1).copied()
}

fn rate(count: usize, of: usize) -> Rate {
    Rate {
        count,
        of,
        percent: percent(count, of),
    }
}

fn percent(part: usize, whole: usize) -> Option<f64> {
    (whole > 0).then(|| (part as f64 * 1000.0 / whole as f64).round() / 10.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let values: Vec<i64> = (1..=10).collect();
        assert_eq!(nearest_rank(&values, 50), Some(5));
        assert_eq!(nearest_rank(&values, 90), Some(9));
        assert_eq!(nearest_rank(&[7], 90), Some(7));
        assert_eq!(nearest_rank(&[], 50), None);
    }

    #[test]
    fn compliance_counts_missing_steps_past_due_as_missed() {
        let c = compliance(
            [
                (Some(false), true),
                (Some(true), true),
                (Some(true), false),
                (Some(false), false),
                (None, false),
            ]
            .into_iter(),
        );
        assert_eq!((c.met, c.missed, c.pending), (1, 2, 1));
        assert_eq!(c.percent, Some(33.3));
        assert_eq!(percent(2, 3), Some(66.7));
        assert_eq!(percent(0, 0), None);
    }
}
