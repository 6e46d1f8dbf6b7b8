//! Publications: the titles sold, their formats and term lengths, and price lists over time.

use std::collections::BTreeSet;
use std::fmt;

use chrono::NaiveDate;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use utoipa::ToSchema;

use super::FieldErrors;
use super::money::check_amount;

/// A short code naming a title, such as `DAILY` or `WEEKEND-MAG`: 2 to 32 upper-case letters,
/// digits or dashes. Codes are what staff type and what the import file carries.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PublicationCode(String);

impl PublicationCode {
    pub fn parse(text: &str) -> Result<Self, String> {
        let upper = text.trim().to_ascii_uppercase();
        if is_code(&upper) {
            Ok(Self(upper))
        } else {
            Err(format!(
                "`{text}` is not a publication code; use 2 to 32 letters, digits or dashes, \
                 starting with a letter"
            ))
        }
    }

    /// A code as stored, already in its checked form: kept without a copy when it is one
    /// (population reads decode millions of them).
    pub fn from_stored(code: String) -> Result<Self, String> {
        if is_code(&code) {
            Ok(Self(code))
        } else {
            Self::parse(&code)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// 2 to 32 upper-case letters, digits or dashes, starting with a letter.
fn is_code(code: &str) -> bool {
    (2..=32).contains(&code.len())
        && code
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-')
        && code.as_bytes()[0].is_ascii_uppercase()
}

impl fmt::Display for PublicationCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for PublicationCode {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for PublicationCode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// How often a title appears.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PublicationKind {
    Daily,
    Weekly,
    Magazine,
}

/// The form in which a title is delivered. Only print is delivered to a door, so only print
/// terms can be held for a vacation.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    Print,
    Digital,
    Bundle,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Print => "print",
            Self::Digital => "digital",
            Self::Bundle => "bundle",
        }
    }

    pub fn is_delivered(self) -> bool {
        matches!(self, Self::Print | Self::Bundle)
    }
}

/// The longest term sold, in months.
pub const MAX_TERM_MONTHS: u32 = 36;

/// A title as an administrator defines it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PublicationDraft {
    #[schema(value_type = String, example = "DAILY")]
    pub code: PublicationCode,
    pub title: String,
    pub kind: PublicationKind,
    /// The formats sold; at least one.
    pub formats: Vec<Format>,
    /// The term lengths sold, in months (1 to 36); at least one.
    pub term_months: Vec<u32>,
    /// False once the title is discontinued: it can no longer be subscribed to or renewed,
    /// and no longer counts as offered in a reader's share of wallet.
    #[serde(default = "on_sale")]
    pub on_sale: bool,
}

fn on_sale() -> bool {
    true
}

impl PublicationDraft {
    /// Checks the draft, reporting every problem; formats and lengths come back sorted.
    pub fn check(mut self) -> Result<Self, FieldErrors> {
        let mut errors = FieldErrors::default();
        self.title = self.title.trim().to_owned();
        if self.title.is_empty() || self.title.chars().count() > 200 {
            errors.add("title", "give a title of 1 to 200 characters");
        }
        let formats: BTreeSet<Format> = self.formats.iter().copied().collect();
        if formats.is_empty() {
            errors.add(
                "formats",
                "name at least one format: print, digital or bundle",
            );
        }
        let months: BTreeSet<u32> = self.term_months.iter().copied().collect();
        if months.is_empty() {
            errors.add("term_months", "name at least one term length in months");
        }
        if let Some(bad) = months.iter().find(|m| !(1..=MAX_TERM_MONTHS).contains(m)) {
            errors.add(
                "term_months",
                format!("{bad} is not a term length; use 1 to {MAX_TERM_MONTHS} months"),
            );
        }
        self.formats = formats.into_iter().collect();
        self.term_months = months.into_iter().collect();
        errors.into_result(self)
    }

    /// Whether the title is on sale in this format and length.
    pub fn sells(&self, format: Format, months: u32) -> bool {
        self.on_sale && self.formats.contains(&format) && self.term_months.contains(&months)
    }
}

/// One price of a price list: a format and term length, in minor units of the house currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PriceEntry {
    pub format: Format,
    pub months: u32,
    /// Minor units: 12000 is 120.00; at most 100000000000 (1,000,000,000.00).
    #[schema(minimum = 0, maximum = 100_000_000_000.0)]
    pub amount: i64,
}

/// The prices of one title from a date on, until the next list takes over.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PriceListDraft {
    pub effective_from: NaiveDate,
    pub prices: Vec<PriceEntry>,
}

impl PriceListDraft {
    /// A list must price every format and term length the title sells, each once, and nothing
    /// else, so that any term sold on or after its date has a price.
    pub fn check(self, publication: &PublicationDraft) -> Result<Self, FieldErrors> {
        let mut errors = FieldErrors::default();
        let mut seen = BTreeSet::new();
        for (i, entry) in self.prices.iter().enumerate() {
            let field = format!("prices[{i}]");
            if !publication.sells(entry.format, entry.months) {
                errors.add(
                    &field,
                    format!(
                        "{} does not sell {} for {} months",
                        publication.code,
                        entry.format.as_str(),
                        entry.months
                    ),
                );
            }
            if let Err(e) = check_amount(entry.amount) {
                errors.add(format!("{field}.amount"), e);
            }
            if !seen.insert((entry.format, entry.months)) {
                errors.add(&field, "this format and term length is priced twice");
            }
        }
        for format in &publication.formats {
            for months in &publication.term_months {
                if !seen.contains(&(*format, *months)) {
                    errors.add(
                        "prices",
                        format!(
                            "no price for {months} months in {}; price every format and length sold",
                            format.as_str()
                        ),
                    );
                }
            }
        }
        errors.into_result(self)
    }

    pub fn price(&self, format: Format, months: u32) -> Option<i64> {
        self.prices
            .iter()
            .find(|p| p.format == format && p.months == months)
            .map(|p| p.amount)
    }
}

/// The list in force on `date`: the latest that took effect on or before it.
pub fn list_in_force(lists: &[PriceListDraft], date: NaiveDate) -> Option<&PriceListDraft> {
    lists
        .iter()
        .filter(|l| l.effective_from <= date)
        .max_by_key(|l| l.effective_from)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn daily() -> PublicationDraft {
        PublicationDraft {
            code: PublicationCode::parse("daily").unwrap(),
            title: " The Daily ".into(),
            kind: PublicationKind::Daily,
            formats: vec![Format::Digital, Format::Print, Format::Print],
            term_months: vec![12, 1],
            on_sale: true,
        }
        .check()
        .unwrap()
    }

    fn date(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn list(from: &str, amount: i64) -> PriceListDraft {
        let prices = [Format::Print, Format::Digital]
            .into_iter()
            .flat_map(|format| {
                [1, 12].map(|months| PriceEntry {
                    format,
                    months,
                    amount: amount * i64::from(months),
                })
            })
            .collect();
        PriceListDraft {
            effective_from: date(from),
            prices,
        }
    }

    #[test]
    fn codes_are_upper_case_slugs() {
        assert_eq!(
            PublicationCode::parse(" weekend-mag ").unwrap().as_str(),
            "WEEKEND-MAG"
        );
        assert!(PublicationCode::parse("x").is_err());
        assert!(PublicationCode::parse("1DAILY").is_err());
        assert!(PublicationCode::parse("DAI LY").is_err());
    }

    #[test]
    fn drafts_are_normalised_and_checked() {
        let d = daily();
        assert_eq!(d.title, "The Daily");
        assert_eq!(d.formats, vec![Format::Print, Format::Digital]);
        assert_eq!(d.term_months, vec![1, 12]);
        let mut bad = daily();
        bad.term_months = vec![0, 48];
        bad.formats.clear();
        let errors = bad.check().unwrap_err();
        assert_eq!(errors.iter().count(), 2);
    }

    #[test]
    fn a_price_list_must_price_exactly_what_is_sold() {
        assert!(list("2025-01-01", 1000).check(&daily()).is_ok());
        let mut missing = list("2025-01-01", 1000);
        missing.prices.pop();
        let errors = missing.check(&daily()).unwrap_err();
        assert!(
            errors
                .iter()
                .any(|e| e.message.contains("no price for 12 months in digital"))
        );
        let mut extra = list("2025-01-01", 1000);
        extra.prices.push(PriceEntry {
            format: Format::Bundle,
            months: 1,
            amount: -1,
        });
        let errors = extra.check(&daily()).unwrap_err();
        assert_eq!(errors.iter().count(), 2);
    }

    #[test]
    fn the_list_in_force_is_the_latest_begun() {
        let lists = vec![list("2025-01-01", 1000), list("2026-01-01", 1100)];
        assert!(list_in_force(&lists, date("2024-12-31")).is_none());
        assert_eq!(
            list_in_force(&lists, date("2025-12-31"))
                .unwrap()
                .price(Format::Print, 1),
            Some(1000)
        );
        assert_eq!(
            list_in_force(&lists, date("2026-01-01"))
                .unwrap()
                .price(Format::Print, 12),
            Some(13_200)
        );
    }
}
