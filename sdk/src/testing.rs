//! Test helpers: run a plugin's logic natively on fixture readers, as the host would.
//!
//! ```
//! use masthead_sdk::testing::{context, reader};
//! use masthead_sdk::{Date, Format, Status};
//!
//! let today = Date::new(2026, 11, 23);
//! let r = reader(1000007)
//!     .status(Status::Active)
//!     .tenure_years(12)
//!     .term("DT", Format::Print, Date::new(2026, 1, 1), 12, 24_000)
//!     .build();
//! assert_eq!(r.tenure_years(), 12);
//! assert_eq!(context(today).code_of(&r.terms[0]), "DT");
//! ```

use std::cell::RefCell;

use crate::types::*;
use crate::{OfferProvider, Segmenter, Targeter};

/// The titles of [`context`], in index order: a daily, a Sunday paper and a magazine.
pub const PUBLICATIONS: [(&str, &str); 3] = [
    ("DT", "The Daily Telegraph"),
    ("SUN", "The Sunday Edition"),
    ("MAG", "The Monthly Review"),
];

/// A batch context on `today` with the [`PUBLICATIONS`] on sale, in GBP.
pub fn context(today: Date) -> Context {
    Context {
        today,
        currency: "GBP".into(),
        publications: PUBLICATIONS
            .iter()
            .map(|(code, title)| Publication {
                code: (*code).into(),
                title: (*title).into(),
                on_sale: true,
            })
            .collect(),
    }
}

/// Starts a fixture reader with this subscriber number.
pub fn reader(number: u64) -> ReaderBuilder {
    ReaderBuilder(Subscriber {
        number,
        ..Subscriber::default()
    })
}

/// Builds a [`Subscriber`] fixture field by field.
#[derive(Debug, Clone)]
pub struct ReaderBuilder(Subscriber);

impl ReaderBuilder {
    pub fn status(mut self, status: Status) -> Self {
        self.0.status = status;
        self
    }

    pub fn tenure_years(mut self, years: u32) -> Self {
        self.0.tenure_days = years * 365;
        self
    }

    pub fn tenure_days(mut self, days: u32) -> Self {
        self.0.tenure_days = days;
        self
    }

    pub fn region(mut self, region: &str) -> Self {
        self.0.region = Some(region.into());
        self
    }

    pub fn postal_code(mut self, postal_code: &str) -> Self {
        self.0.postal_code = Some(postal_code.into());
        self
    }

    pub fn birth_year(mut self, year: u16) -> Self {
        self.0.birth_year = Some(year);
        self
    }

    pub fn lifetime_revenue(mut self, minor_units: i64) -> Self {
        self.0.lifetime_revenue = minor_units;
        self
    }

    pub fn share_of_wallet(mut self, share: f32) -> Self {
        self.0.share_of_wallet = share;
        self
    }

    /// Adds a term of the publication `code` (one of [`PUBLICATIONS`]), paid in full.
    pub fn term(mut self, code: &str, format: Format, start: Date, months: u8, paid: i64) -> Self {
        let publication = PUBLICATIONS
            .iter()
            .position(|(c, _)| *c == code)
            .unwrap_or_else(|| panic!("{code} is not one of testing::PUBLICATIONS"));
        let anniversary = add_months(start, months);
        let end = if anniversary.day == start.day {
            anniversary.add_days(-1)
        } else {
            anniversary // the day does not exist: the term runs to the end of the short month
        };
        self.0.terms.push(Term {
            publication: publication as u32,
            format,
            months,
            start,
            end,
            list_price: paid,
            price_paid: paid,
            channel: SalesChannel::Phone,
            auto_renew: false,
            cancelled_from: None,
        });
        self.0.lifetime_revenue += paid;
        self
    }

    /// Sets auto-renewal on the last term added.
    pub fn auto_renew(mut self) -> Self {
        if let Some(term) = self.0.terms.last_mut() {
            term.auto_renew = true;
        }
        self
    }

    pub fn tier(mut self, club: &str, tier: &str, rank: u8) -> Self {
        self.0.club_tiers.push(ClubTier {
            club: club.into(),
            tier: tier.into(),
            rank,
        });
        self
    }

    /// Sets the open and total complaint counts.
    pub fn complaints(mut self, open: u32, total: u32) -> Self {
        self.0.complaints.open = open;
        self.0.complaints.total = total;
        self.0.complaints.last_year = total;
        self
    }

    pub fn consent(mut self, purpose: ConsentPurpose, granted: bool) -> Self {
        self.0.consents.push(Consent { purpose, granted });
        self
    }

    pub fn attribute(mut self, key: &str, value: AttributeValue) -> Self {
        self.0.attributes.push(Attribute {
            key: key.into(),
            value,
        });
        self
    }

    pub fn contact(mut self, contact: Contact) -> Self {
        self.0.contact = Some(contact);
        self
    }

    pub fn build(self) -> Subscriber {
        self.0
    }
}

fn add_months(date: Date, months: u8) -> Date {
    let zero_based = date.month as u32 - 1 + months as u32;
    let year = date.year + (zero_based / 12) as i32;
    let month = (zero_based % 12 + 1) as u8;
    let mut day = date.day;
    while day > 28 {
        let candidate = Date::new(year, month, day);
        if Date::from_days_since_epoch(candidate.days_since_epoch()) == candidate {
            break;
        }
        day -= 1;
    }
    Date::new(year, month, day)
}

/// Configures `T` as the host would and segments each reader.
pub fn segment<T: Segmenter>(
    config: &Config,
    context: &Context,
    batch: &[Subscriber],
) -> Vec<Result<Vec<String>, String>> {
    match T::configure(config) {
        Ok(plugin) => batch.iter().map(|s| plugin.segment(context, s)).collect(),
        Err(e) => batch.iter().map(|_| Err(e.clone())).collect(),
    }
}

/// Configures `T` as the host would and targets each reader for `campaign`.
pub fn target<T: Targeter>(
    config: &Config,
    context: &Context,
    campaign: &Campaign,
    batch: &[Subscriber],
) -> Vec<Result<Targeting, String>> {
    match T::configure(config) {
        Ok(plugin) => batch
            .iter()
            .map(|s| plugin.target(context, campaign, s))
            .collect(),
        Err(e) => batch.iter().map(|_| Err(e.clone())).collect(),
    }
}

/// Configures `T` as the host would and asks for each reader's offers.
pub fn offers<T: OfferProvider>(
    config: &Config,
    context: &Context,
    occasion: Occasion,
    batch: &[Subscriber],
) -> Vec<Result<Vec<Offer>, String>> {
    match T::configure(config) {
        Ok(plugin) => batch
            .iter()
            .map(|s| plugin.offers(context, occasion, s))
            .collect(),
        Err(e) => batch.iter().map(|_| Err(e.clone())).collect(),
    }
}

thread_local! {
    static LOGS: RefCell<Vec<(LogLevel, String)>> = const { RefCell::new(Vec::new()) };
}

/// Takes the lines logged on this thread since the last call (native runs only).
pub fn take_logs() -> Vec<(LogLevel, String)> {
    LOGS.with(|logs| std::mem::take(&mut *logs.borrow_mut()))
}

#[cfg_attr(target_arch = "wasm32", allow(dead_code))]
pub(crate) fn capture_log(level: LogLevel, message: &str) {
    LOGS.with(|logs| logs.borrow_mut().push((level, message.to_string())));
}

#[doc(hidden)]
pub fn assert_segmenter<T: Segmenter>() {}
#[doc(hidden)]
pub fn assert_targeter<T: Targeter>() {}
#[doc(hidden)]
pub fn assert_offer_provider<T: OfferProvider>() {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terms_end_the_day_before_the_anniversary_or_at_the_end_of_a_short_month() {
        let r = reader(1)
            .term("DT", Format::Print, Date::new(2026, 1, 1), 12, 100)
            .term("MAG", Format::Digital, Date::new(2026, 1, 31), 1, 10)
            .build();
        assert_eq!(r.terms[0].end, Date::new(2026, 12, 31));
        assert_eq!(r.terms[1].end, Date::new(2026, 2, 28));
        assert_eq!(r.lifetime_revenue, 110);
    }
}
