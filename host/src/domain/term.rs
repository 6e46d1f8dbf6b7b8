//! Terms: one paid period of one title for one subscriber, with its price, holds and
//! cancellation. Dates are whole days; a term serves from `start` through `end` inclusive.

use chrono::{Datelike, Months, NaiveDate};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::money::Money;
use super::publication::{Format, PublicationCode};

/// Where a term was sold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SalesChannel {
    Phone,
    Web,
    Agent,
    Kiosk,
    Post,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PaymentMethod {
    DirectDebit,
    Card,
    Invoice,
    BankTransfer,
    Cash,
    /// Given free of charge (a gift from the publisher, a staff copy).
    Complimentary,
}

/// Why a term costs less than its list price.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DiscountKind {
    /// Granted automatically for tenure.
    Loyalty,
    /// Granted by staff, with their reason.
    Manual,
    /// The renewal perk of the reader's club tier.
    Club,
    /// Carried over from a legacy circulation file.
    Imported,
    /// A one-to-one offer the reader accepted (see `Discount::offer`).
    Offer,
}

/// One discount applied to a term, with a reason a reader can be told.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Discount {
    pub kind: DiscountKind,
    pub reason: String,
    pub amount: Money,
    /// The offer accepted, for an `offer` discount.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offer: Option<AcceptedOffer>,
}

/// Which offer a reader accepted: the plugin version that proposed it and the offer's code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AcceptedOffer {
    pub plugin: String,
    pub plugin_version: String,
    pub code: String,
}

/// A stop of print delivery for some days (a vacation); the term is extended by as many days.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Hold {
    pub id: i64,
    pub from: NaiveDate,
    /// The last day without delivery.
    pub to: NaiveDate,
    pub reason: Option<String>,
}

impl Hold {
    pub fn days(&self) -> i64 {
        hold_days(self.from, self.to)
    }
}

pub fn hold_days(from: NaiveDate, to: NaiveDate) -> i64 {
    (to - from).num_days() + 1
}

/// The end of a term by a reader's request; whether money went back is recorded, not computed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Cancellation {
    /// The first day the reader is no longer served.
    pub effective: NaiveDate,
    pub reason: String,
    /// The amount refunded, if any.
    pub refund: Option<Money>,
    pub recorded_at: chrono::DateTime<chrono::Utc>,
    pub recorded_by: String,
}

/// A term as stored.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Term {
    pub id: i64,
    #[schema(value_type = String)]
    pub publication: PublicationCode,
    pub format: Format,
    pub months: u32,
    pub start: NaiveDate,
    /// The last day served, after holds and extensions.
    pub end: NaiveDate,
    /// Days added to the term by holds and compensation.
    pub extension_days: i64,
    pub list_price: Money,
    pub discounts: Vec<Discount>,
    pub price_paid: Money,
    pub channel: SalesChannel,
    pub payment_method: PaymentMethod,
    pub auto_renew: bool,
    /// The term this one continues.
    pub renews: Option<i64>,
    pub holds: Vec<Hold>,
    pub cancellation: Option<Cancellation>,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

impl Term {
    /// The days actually served: up to the cancellation, if one cut the term short.
    pub fn span(&self) -> Span {
        let cancelled_from = self.cancellation.as_ref().map(|c| c.effective);
        Span::served(self.start, self.end, cancelled_from)
    }

    /// What a filter reads of this term.
    pub fn fact(&self) -> TermFact<'_> {
        TermFact {
            publication: self.publication.as_str(),
            format: self.format,
            start: self.start,
            span: self.span(),
            revenue: self.revenue(),
        }
    }

    /// The money kept: the price paid less any refund.
    pub fn revenue(&self) -> i64 {
        let refund = self
            .cancellation
            .as_ref()
            .and_then(|c| c.refund)
            .map_or(0, |r| r.amount);
        self.price_paid.amount - refund
    }
}

/// Checks the day a cancellation of a term serving `start` through `end` takes effect: from
/// its first day (nothing served) to the day after its last (all of it served).
pub fn check_cancellation(
    effective: NaiveDate,
    start: NaiveDate,
    end: NaiveDate,
) -> Result<(), String> {
    let day_after = end.succ_opt().unwrap_or(end);
    if (start..=day_after).contains(&effective) {
        Ok(())
    } else {
        Err(format!(
            "a cancellation of this term takes effect from {start} to {day_after}, not {effective}"
        ))
    }
}

/// What filters read of a term: its title and format, the day it begins, the days it serves
/// and the money kept. Borrowed, so a pass can make it from a kept chunk's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TermFact<'a> {
    pub publication: &'a str,
    pub format: Format,
    pub start: NaiveDate,
    pub span: Span,
    /// The price paid less any refund, in minor units.
    pub revenue: i64,
}

/// The days a term serves: `start` through `last` inclusive; empty when `last < start` (a term
/// cancelled before it began).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub start: NaiveDate,
    pub last: NaiveDate,
    pub cancelled: bool,
}

impl Span {
    /// The days a term from `start` through `end` serves, cut short from the day
    /// `cancelled_from` if it was cancelled.
    pub fn served(start: NaiveDate, end: NaiveDate, cancelled_from: Option<NaiveDate>) -> Self {
        let last = match cancelled_from {
            Some(from) => end.min(from.pred_opt().unwrap_or(from)),
            None => end,
        };
        Self {
            start,
            last,
            cancelled: cancelled_from.is_some(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.last < self.start
    }

    pub fn covers(&self, day: NaiveDate) -> bool {
        self.start <= day && day <= self.last
    }
}

/// The last day of a term of `months` from `start`. A term runs to the day before the same
/// day of the month `months` later; where that day does not exist (31 January plus one month)
/// it runs to the end of the shorter month, so no reader loses a day.
pub fn last_day(start: NaiveDate, months: u32) -> NaiveDate {
    let Some(same_day) = start.checked_add_months(Months::new(months)) else {
        return NaiveDate::MAX;
    };
    if same_day.day() == start.day() {
        same_day.pred_opt().unwrap_or(same_day)
    } else {
        // chrono clamped to the shorter month's last day, which the reader is then served.
        same_day
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn a_year_runs_to_the_day_before_its_anniversary() {
        assert_eq!(last_day(date("2025-01-01"), 12), date("2025-12-31"));
        assert_eq!(last_day(date("2025-03-15"), 1), date("2025-04-14"));
        assert_eq!(last_day(date("2025-12-01"), 3), date("2026-02-28"));
    }

    #[test]
    fn a_missing_anniversary_gives_the_reader_the_whole_short_month() {
        assert_eq!(last_day(date("2024-01-31"), 1), date("2024-02-29"));
        assert_eq!(last_day(date("2025-01-31"), 1), date("2025-02-28"));
        assert_eq!(last_day(date("2024-02-29"), 12), date("2025-02-28"));
        assert_eq!(last_day(date("2024-02-29"), 48), date("2028-02-28"));
    }

    #[test]
    fn leap_years_add_a_day_to_a_year_term() {
        let start = date("2024-01-01");
        assert_eq!((last_day(start, 12) - start).num_days() + 1, 366);
        let start = date("2025-01-01");
        assert_eq!((last_day(start, 12) - start).num_days() + 1, 365);
    }

    #[test]
    fn holds_count_both_ends() {
        assert_eq!(hold_days(date("2025-07-01"), date("2025-07-14")), 14);
        assert_eq!(hold_days(date("2025-07-01"), date("2025-07-01")), 1);
    }
}
