//! The records a plugin reads and writes: plain Rust types, independent of the generated bindings.

/// A calendar date in the publisher's time zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Date {
    pub year: i32,
    pub month: u8,
    pub day: u8,
}

impl Date {
    pub const fn new(year: i32, month: u8, day: u8) -> Self {
        Self { year, month, day }
    }

    /// Days since 1970-01-01 (negative before), for date arithmetic without a calendar crate.
    pub fn days_since_epoch(self) -> i64 {
        // Howard Hinnant's days_from_civil.
        let (y, m, d) = (
            i64::from(self.year),
            i64::from(self.month),
            i64::from(self.day),
        );
        let y = if m <= 2 { y - 1 } else { y };
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let mp = (m + 9) % 12;
        let doy = (153 * mp + 2) / 5 + d - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        era * 146_097 + doe - 719_468
    }

    /// The date `days` after (or before, when negative) this one.
    pub fn add_days(self, days: i64) -> Self {
        Self::from_days_since_epoch(self.days_since_epoch() + days)
    }

    pub fn from_days_since_epoch(days: i64) -> Self {
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u8;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
        let year = (yoe + era * 400 + i64::from(month <= 2)) as i32;
        Self { year, month, day }
    }

    /// Whole days from `self` to `later` (negative when `later` is earlier).
    pub fn days_until(self, later: Date) -> i64 {
        later.days_since_epoch() - self.days_since_epoch()
    }
}

impl std::fmt::Display for Date {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

/// Where a reader stands with the publisher on the batch's `today`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Status {
    #[default]
    None,
    Pending,
    Active,
    Grace,
    Lapsed,
    Cancelled,
}

impl Status {
    /// Active or within the grace period: the reader still counts as a subscriber.
    pub fn is_current(self) -> bool {
        matches!(self, Self::Active | Self::Grace)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    Print,
    Digital,
    Bundle,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SalesChannel {
    Phone,
    Web,
    Agent,
    Kiosk,
    Post,
}

/// A title the publisher sells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publication {
    pub code: String,
    pub title: String,
    pub on_sale: bool,
}

/// One paid period of one title; money in minor units of [`Context::currency`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Term {
    /// Index into [`Context::publications`]; see [`Context::publication`].
    pub publication: u32,
    pub format: Format,
    pub months: u8,
    pub start: Date,
    /// The last day served, holds included.
    pub end: Date,
    pub list_price: i64,
    pub price_paid: i64,
    pub channel: SalesChannel,
    pub auto_renew: bool,
    pub cancelled_from: Option<Date>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClubTier {
    pub club: String,
    pub tier: String,
    /// Grows with the tier: Silver < Gold < Platinum.
    pub rank: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ComplaintCounts {
    pub open: u32,
    pub total: u32,
    pub last_year: u32,
    pub breached: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConsentPurpose {
    MarketingEmail,
    MarketingPhone,
    MarketingPost,
    ThirdPartyAudiences,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Consent {
    pub purpose: ConsentPurpose,
    pub granted: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum AttributeValue {
    Text(String),
    Number(f64),
    Boolean(bool),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Attribute {
    pub key: String,
    pub value: AttributeValue,
}

/// Contact details; present only when the manifest reads `contact` and an admin granted `pii`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Contact {
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub organisation_name: Option<String>,
    pub emails: Vec<String>,
    pub phones: Vec<String>,
    pub address_lines: Vec<String>,
    pub city: Option<String>,
}

/// One reader, projected to the fields the plugin's manifest reads; the rest are empty.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Subscriber {
    /// The subscriber number with its check digit; always filled.
    pub number: u64,
    pub status: Status,
    pub region: Option<String>,
    pub postal_code: Option<String>,
    pub birth_year: Option<u16>,
    pub tenure_days: u32,
    pub first_subscribed: Option<Date>,
    /// Paid less refunded, in minor units.
    pub lifetime_revenue: i64,
    /// Titles held over titles on sale, 0.0 to 1.0.
    pub share_of_wallet: f32,
    /// Every term, oldest first.
    pub terms: Vec<Term>,
    pub club_tiers: Vec<ClubTier>,
    pub complaints: ComplaintCounts,
    pub consents: Vec<Consent>,
    pub attributes: Vec<Attribute>,
    pub contact: Option<Contact>,
}

impl Subscriber {
    /// Whole years of tenure.
    pub fn tenure_years(&self) -> u32 {
        self.tenure_days / 365
    }

    /// Whether the reader granted this consent (an absent consent is not granted).
    pub fn consents_to(&self, purpose: ConsentPurpose) -> bool {
        self.consents
            .iter()
            .any(|c| c.purpose == purpose && c.granted)
    }

    /// The latest term (by start date), if any.
    pub fn latest_term(&self) -> Option<&Term> {
        self.terms.iter().max_by_key(|t| t.start)
    }

    /// The custom attribute `key`, if set.
    pub fn attribute(&self, key: &str) -> Option<&AttributeValue> {
        self.attributes
            .iter()
            .find(|a| a.key == key)
            .map(|a| &a.value)
    }

    /// The highest tier the reader holds in `club`, if any.
    pub fn tier_in(&self, club: &str) -> Option<&ClubTier> {
        self.club_tiers
            .iter()
            .filter(|t| t.club == club)
            .max_by_key(|t| t.rank)
    }
}

/// What every record of a batch shares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Context {
    /// The host's deterministic "today"; plugins see no other clock.
    pub today: Date,
    pub currency: String,
    pub publications: Vec<Publication>,
}

impl Context {
    /// The publication a term refers to.
    pub fn publication(&self, index: u32) -> Option<&Publication> {
        self.publications.get(index as usize)
    }

    /// The code of the publication a term refers to ("?" for a bad index).
    pub fn code_of(&self, term: &Term) -> &str {
        self.publication(term.publication)
            .map_or("?", |p| p.code.as_str())
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum ConfigValue {
    Boolean(bool),
    Integer(i64),
    Float(f64),
    Text(String),
}

/// The plugin's configuration: the manifest's defaults, overridden per installation.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Config {
    entries: Vec<(String, ConfigValue)>,
}

impl Config {
    pub fn new(entries: Vec<(String, ConfigValue)>) -> Self {
        Self { entries }
    }

    pub fn get(&self, key: &str) -> Option<&ConfigValue> {
        self.entries.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// An integer setting, or `default` when it is absent or of another type.
    pub fn integer(&self, key: &str, default: i64) -> i64 {
        match self.get(key) {
            Some(ConfigValue::Integer(v)) => *v,
            _ => default,
        }
    }

    /// A number setting (an integer is widened), or `default`.
    pub fn float(&self, key: &str, default: f64) -> f64 {
        match self.get(key) {
            Some(ConfigValue::Float(v)) => *v,
            Some(ConfigValue::Integer(v)) => *v as f64,
            _ => default,
        }
    }

    pub fn boolean(&self, key: &str, default: bool) -> bool {
        match self.get(key) {
            Some(ConfigValue::Boolean(v)) => *v,
            _ => default,
        }
    }

    pub fn text<'a>(&'a self, key: &str, default: &'a str) -> &'a str {
        match self.get(key) {
            Some(ConfigValue::Text(v)) => v,
            _ => default,
        }
    }
}

/// The campaign a targeter ranks readers for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Campaign {
    pub name: String,
    /// The marketing consent the campaign's channel needs.
    pub channel: ConsentPurpose,
    pub segment: String,
}

/// A targeter's verdict on one reader.
#[derive(Debug, Clone, PartialEq)]
pub enum Targeting {
    /// Higher is a better contact.
    Score(f64),
    /// Leave this reader out, and why.
    Exclude(String),
}

/// Why staff or the web asks for offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Occasion {
    Renewal,
    ServiceCall,
    Web,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pricing {
    /// A fixed price for the term, in minor units.
    Price(i64),
    /// A discount off the list price, in basis points (1250 = 12.5 %).
    PercentOff(u16),
    /// A discount off the list price, in minor units.
    AmountOff(i64),
}

/// A one-to-one proposal for one reader.
#[derive(Debug, Clone, PartialEq)]
pub struct Offer {
    /// Stable within the plugin, e.g. "loyalty-12m".
    pub code: String,
    pub title: String,
    /// The publication code the offer is for.
    pub publication: String,
    pub format: Format,
    pub months: u8,
    pub pricing: Pricing,
    pub valid_until: Date,
    /// Why this offer, for this reader; shown to staff.
    pub reason: String,
    /// Higher ranks first.
    pub score: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    Debug,
    Info,
    Warn,
    Error,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_round_trip_through_day_numbers() {
        for (date, days) in [
            (Date::new(1970, 1, 1), 0),
            (Date::new(2000, 2, 29), 11_016),
            (Date::new(1969, 12, 31), -1),
            (Date::new(2026, 11, 23), 20_780),
        ] {
            assert_eq!(date.days_since_epoch(), days, "{date}");
            assert_eq!(Date::from_days_since_epoch(days), date);
        }
        assert_eq!(Date::new(2024, 2, 28).add_days(1), Date::new(2024, 2, 29));
        assert_eq!(Date::new(2023, 2, 28).add_days(1), Date::new(2023, 3, 1));
        assert_eq!(Date::new(2025, 1, 1).days_until(Date::new(2026, 1, 1)), 365);
    }

    #[test]
    fn config_falls_back_to_defaults() {
        let config = Config::new(vec![
            ("weeks".into(), ConfigValue::Integer(4)),
            ("name".into(), ConfigValue::Text("gold".into())),
        ]);
        assert_eq!(config.integer("weeks", 1), 4);
        assert_eq!(config.float("weeks", 1.0), 4.0);
        assert_eq!(config.integer("missing", 7), 7);
        assert_eq!(config.integer("name", 7), 7);
        assert_eq!(config.text("name", "x"), "gold");
    }
}
