//! The club report: members per tier at each month's end (rebuilt from the tier history),
//! the moves in a period, and how many readers with a place actually came to each event.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Datelike, Days, NaiveDate, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::Clubs;
use crate::domain::FieldErrors;
use crate::domain::club::TierMove;
use crate::services::{ServiceError, ServiceResult};

/// Longest period one report covers.
const MAX_DAYS: i64 = 3_660;

#[derive(Debug, Serialize, ToSchema)]
pub struct ClubReport {
    pub club: String,
    pub from: NaiveDate,
    pub to: NaiveDate,
    /// Members per tier at the end of each month in the period, and at the end of `to`.
    pub members: Vec<TierSnapshot>,
    pub moves: Vec<TierMoves>,
    pub events: Vec<EventAttendance>,
    /// Readers who came, of those who held a place, over the period's past events; empty
    /// when no place was held.
    pub attendance_rate: Option<f64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TierSnapshot {
    /// At the end of this day (UTC).
    pub on: NaiveDate,
    /// Members per tier code, every tier listed.
    pub tiers: BTreeMap<String, i64>,
    pub total: i64,
}

/// The moves into (or, for `left`, out of) one tier in the period.
#[derive(Debug, Default, Serialize, ToSchema)]
pub struct TierMoves {
    pub tier: String,
    pub joined: i64,
    pub promoted: i64,
    pub demoted: i64,
    pub left: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EventAttendance {
    pub event: i64,
    pub title: String,
    pub starts_at: DateTime<Utc>,
    pub capacity: i64,
    pub invited: i64,
    /// Places held: accepted, and checked in.
    pub places_taken: i64,
    pub attended: i64,
    /// `attended / places_taken`, once the event has started.
    pub attendance_rate: Option<f64>,
}

impl Clubs {
    pub async fn report(
        &self,
        code: &str,
        from: NaiveDate,
        to: NaiveDate,
    ) -> ServiceResult<ClubReport> {
        if to < from || (to - from).num_days() > MAX_DAYS {
            return Err(ServiceError::Invalid(FieldErrors::single(
                "to",
                format!("the period runs forwards and covers at most {MAX_DAYS} days"),
            )));
        }
        let club = self.find(code).await?;
        let start = at_start(from);
        let end = at_start(to + Days::new(1));
        let changes = self.store.club_changes(club.id, end).await?;
        let tiers: Vec<String> = club
            .definition
            .tiers
            .iter()
            .map(|t| t.code.clone())
            .collect();
        let mut moves: Vec<TierMoves> = tiers
            .iter()
            .map(|t| TierMoves {
                tier: t.clone(),
                ..TierMoves::default()
            })
            .collect();
        let mut members: HashMap<i64, String> = HashMap::new();
        let mut snapshots = Vec::new();
        let mut pending = changes.iter().peekable();
        for day in month_ends(from, to) {
            let boundary = at_start(day + Days::new(1));
            while let Some(change) = pending.next_if(|c| c.at < boundary) {
                match &change.to_tier {
                    Some(tier) => members.insert(change.subscriber, tier.clone()),
                    None => members.remove(&change.subscriber),
                };
                if change.at >= start {
                    let tier = match change.moved {
                        TierMove::Left => change.from_tier.as_ref(),
                        _ => change.to_tier.as_ref(),
                    };
                    if let Some(row) = moves.iter_mut().find(|m| Some(&m.tier) == tier) {
                        match change.moved {
                            TierMove::Joined => row.joined += 1,
                            TierMove::Promoted => row.promoted += 1,
                            TierMove::Demoted => row.demoted += 1,
                            TierMove::Left => row.left += 1,
                        }
                    }
                }
            }
            let mut counts: BTreeMap<String, i64> = tiers.iter().map(|t| (t.clone(), 0)).collect();
            for tier in members.values() {
                *counts.entry(tier.clone()).or_default() += 1;
            }
            snapshots.push(TierSnapshot {
                on: day,
                total: counts.values().sum(),
                tiers: counts,
            });
        }
        let now = self.clock.now();
        let events: Vec<EventAttendance> = self
            .store
            .list_events(club.id, start, end)
            .await?
            .into_iter()
            .map(|e| {
                let taken = e.counts.taken();
                EventAttendance {
                    event: e.id,
                    title: e.title,
                    starts_at: e.starts_at,
                    capacity: e.capacity,
                    invited: e.counts.invited,
                    places_taken: taken,
                    attended: e.counts.attended,
                    attendance_rate: (e.starts_at <= now && taken > 0)
                        .then(|| e.counts.attended as f64 / taken as f64),
                }
            })
            .collect();
        let past: Vec<&EventAttendance> = events.iter().filter(|e| e.starts_at <= now).collect();
        let taken: i64 = past.iter().map(|e| e.places_taken).sum();
        let attended: i64 = past.iter().map(|e| e.attended).sum();
        Ok(ClubReport {
            club: club.definition.code,
            from,
            to,
            members: snapshots,
            moves,
            events,
            attendance_rate: (taken > 0).then(|| attended as f64 / taken as f64),
        })
    }
}

fn at_start(day: NaiveDate) -> DateTime<Utc> {
    day.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc()
}

/// The last day of each month from `from` to `to`, then `to` itself if it is not one.
fn month_ends(from: NaiveDate, to: NaiveDate) -> Vec<NaiveDate> {
    let mut ends = Vec::new();
    let mut first = from.with_day(1).unwrap_or(from);
    loop {
        let next = first + chrono::Months::new(1);
        let end = next.pred_opt().unwrap_or(next);
        if end > to {
            break;
        }
        if end >= from {
            ends.push(end);
        }
        first = next;
    }
    if ends.last() != Some(&to) {
        ends.push(to);
    }
    ends
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn snapshots_fall_on_month_ends_and_the_last_day() {
        assert_eq!(
            month_ends(day("2026-01-15"), day("2026-03-10")),
            [day("2026-01-31"), day("2026-02-28"), day("2026-03-10")]
        );
        assert_eq!(
            month_ends(day("2026-01-01"), day("2026-01-31")),
            [day("2026-01-31")]
        );
        assert_eq!(
            month_ends(day("2026-05-05"), day("2026-05-05")),
            [day("2026-05-05")]
        );
    }
}
