//! Business hours: the clock of a service-level commitment runs only while the desk is open.
//!
//! Opening hours are given per weekday in the publisher's time zone, with holidays closed all
//! day. Adding business time walks the open intervals from a start instant; the answer is an
//! instant, so it is right across daylight-saving changes.

use std::collections::BTreeSet;
use std::fmt;

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;

/// The hours the desk is open on one weekday.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenHours {
    pub opens: NaiveTime,
    pub closes: NaiveTime,
}

impl OpenHours {
    /// Parses `08:00-18:00`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let invalid = || format!("`{text}` is not opening hours; write them as 08:00-18:00");
        let (opens, closes) = text.trim().split_once('-').ok_or_else(invalid)?;
        let time = |t: &str| NaiveTime::parse_from_str(t.trim(), "%H:%M").map_err(|_| invalid());
        let (opens, closes) = (time(opens)?, time(closes)?);
        if closes <= opens {
            return Err(format!("`{text}` closes before it opens"));
        }
        Ok(Self { opens, closes })
    }
}

impl fmt::Display for OpenHours {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}-{}",
            self.opens.format("%H:%M"),
            self.closes.format("%H:%M")
        )
    }
}

/// When the desk is open: weekly hours in a time zone, less holidays.
#[derive(Debug, Clone, PartialEq)]
pub struct BusinessHours {
    pub zone: Tz,
    /// Monday first; `None` is closed all day.
    pub week: [Option<OpenHours>; 7],
    pub holidays: BTreeSet<NaiveDate>,
}

/// No open hour in the next two years: the calendar cannot place a deadline.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the business hours have no open time; set opening hours for at least one weekday")]
pub struct NeverOpen;

/// How far ahead the calendar looks for open time.
const HORIZON_DAYS: i64 = 731;

impl BusinessHours {
    /// The open interval of a local date, as instants; `None` when closed.
    fn open_on(&self, date: NaiveDate) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
        if self.holidays.contains(&date) {
            return None;
        }
        let hours = self.week[date.weekday().num_days_from_monday() as usize]?;
        let at = |time: NaiveTime| {
            // In a spring-forward gap the earliest valid instant after it; in a fall-back
            // overlap the first of the two.
            let local = date.and_time(time);
            self.zone
                .from_local_datetime(&local)
                .earliest()
                .or_else(|| {
                    self.zone
                        .from_local_datetime(&(local + Duration::hours(1)))
                        .earliest()
                })
                .map(|t| t.with_timezone(&Utc))
        };
        Some((at(hours.opens)?, at(hours.closes)?))
    }

    /// The instant `work` of open time after `start`.
    pub fn add(&self, start: DateTime<Utc>, work: Duration) -> Result<DateTime<Utc>, NeverOpen> {
        let mut remaining = work;
        let mut date = start.with_timezone(&self.zone).date_naive();
        for _ in 0..HORIZON_DAYS {
            if let Some((opens, closes)) = self.open_on(date) {
                let from = opens.max(start);
                if from < closes {
                    let available = closes - from;
                    if remaining <= available {
                        return Ok(from + remaining);
                    }
                    remaining -= available;
                }
            }
            date = date.succ_opt().ok_or(NeverOpen)?;
        }
        Err(NeverOpen)
    }

    /// The open time between two instants (zero when `to` is not after `from`).
    pub fn between(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Duration {
        let mut total = Duration::zero();
        if to <= from {
            return total;
        }
        let mut date = from.with_timezone(&self.zone).date_naive();
        let last = to.with_timezone(&self.zone).date_naive();
        while date <= last {
            if let Some((opens, closes)) = self.open_on(date) {
                let (a, b) = (opens.max(from), closes.min(to));
                if a < b {
                    total += b - a;
                }
            }
            match date.succ_opt() {
                Some(next) => date = next,
                None => break,
            }
        }
        total
    }

    /// Whether the desk is open at `at`.
    pub fn is_open(&self, at: DateTime<Utc>) -> bool {
        let date = at.with_timezone(&self.zone).date_naive();
        self.open_on(date)
            .is_some_and(|(opens, closes)| opens <= at && at < closes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn weekdays(zone: &str) -> BusinessHours {
        let day = Some(OpenHours::parse("08:00-18:00").unwrap());
        BusinessHours {
            zone: zone.parse().unwrap(),
            week: [day, day, day, day, day, None, None],
            holidays: BTreeSet::new(),
        }
    }

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn opening_hours_parse_and_refuse_nonsense() {
        let h = OpenHours::parse(" 08:30-17:00 ").unwrap();
        assert_eq!(h.to_string(), "08:30-17:00");
        assert!(OpenHours::parse("17:00-08:00").is_err());
        assert!(OpenHours::parse("8-5").is_err());
        assert!(OpenHours::parse("25:00-26:00").is_err());
    }

    #[test]
    fn friday_afternoon_plus_two_hours_is_monday_morning() {
        // 16:30 on Friday 6 March 2026 in London (UTC+0): 1.5 h left that day.
        let hours = weekdays("Europe/London");
        let due = hours
            .add(utc("2026-03-06T16:30:00Z"), Duration::hours(2))
            .unwrap();
        assert_eq!(due, utc("2026-03-09T08:30:00Z"));
    }

    #[test]
    fn holidays_are_closed_all_day() {
        let mut hours = weekdays("Europe/London");
        hours.holidays.insert("2026-03-09".parse().unwrap());
        let due = hours
            .add(utc("2026-03-06T16:30:00Z"), Duration::hours(2))
            .unwrap();
        assert_eq!(due, utc("2026-03-10T08:30:00Z"));
    }

    #[test]
    fn a_start_before_opening_counts_from_opening() {
        let hours = weekdays("Europe/Berlin");
        // 05:00 UTC is 06:00 in Berlin (winter): the clock starts at 08:00 local, 07:00 UTC.
        let due = hours
            .add(utc("2026-01-14T05:00:00Z"), Duration::minutes(30))
            .unwrap();
        assert_eq!(due, utc("2026-01-14T07:30:00Z"));
    }

    #[test]
    fn deadlines_follow_daylight_saving_time() {
        let hours = weekdays("Europe/London");
        // Friday 27 March 2026 is GMT; Monday 30 March is BST (UTC+1) after the change.
        let due = hours
            .add(utc("2026-03-27T17:00:00Z"), Duration::hours(2))
            .unwrap();
        assert_eq!(due, utc("2026-03-30T08:00:00Z"));
    }

    #[test]
    fn open_time_between_two_instants_skips_nights_and_weekends() {
        let hours = weekdays("Europe/London");
        let from = utc("2026-03-06T16:30:00Z");
        let to = utc("2026-03-09T08:30:00Z");
        assert_eq!(hours.between(from, to), Duration::hours(2));
        assert_eq!(hours.between(to, from), Duration::zero());
        assert!(hours.is_open(utc("2026-03-09T08:00:00Z")));
        assert!(!hours.is_open(utc("2026-03-07T12:00:00Z")));
    }

    #[test]
    fn a_calendar_that_never_opens_says_so() {
        let mut hours = weekdays("UTC");
        hours.week = [None; 7];
        assert_eq!(
            hours.add(utc("2026-03-06T16:30:00Z"), Duration::hours(2)),
            Err(NeverOpen)
        );
    }
}
