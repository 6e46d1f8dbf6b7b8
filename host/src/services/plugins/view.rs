//! What a plugin sees of a reader: the contract's subscriber record, computed from the card
//! and the terms, projected to the fields the plugin's manifest reads.

use std::collections::HashMap;

use chrono::{Datelike, NaiveDate};

use crate::domain::ConsentPurpose;
use crate::domain::SubscriberNumber;
use crate::domain::money::checked_sum;
use crate::domain::plugin::{Field, FieldSet};
use crate::domain::publication::Format;
use crate::domain::tenure::{self, SubscriptionStatus};
use crate::domain::term::{SalesChannel, Term};
use crate::runtime::bindings::wit;
use crate::store::{ComplaintTally, Publication, Reader};

fn counts(tally: &ComplaintTally) -> wit::ComplaintCounts {
    wit::ComplaintCounts {
        open: tally.open,
        total: tally.total,
        last_year: tally.last_year,
        breached: tally.breached,
    }
}

/// Turns stored readers into plugin records, for one "today" and one catalogue.
pub struct ViewBuilder {
    today: NaiveDate,
    grace_days: i64,
    context: wit::Context,
    index: HashMap<String, u32>,
    on_sale: usize,
}

impl ViewBuilder {
    pub fn new(
        today: NaiveDate,
        grace_days: i64,
        currency: &str,
        publications: &[Publication],
    ) -> Self {
        let index = publications
            .iter()
            .enumerate()
            .map(|(i, p)| (p.definition.code.as_str().to_string(), i as u32))
            .collect();
        let context = wit::Context {
            today: date(today),
            currency: currency.to_string(),
            publications: publications
                .iter()
                .map(|p| wit::Publication {
                    code: p.definition.code.as_str().to_string(),
                    title: p.definition.title.clone(),
                    on_sale: p.definition.on_sale,
                })
                .collect(),
        };
        Self {
            today,
            grace_days,
            context,
            index,
            on_sale: publications.iter().filter(|p| p.definition.on_sale).count(),
        }
    }

    pub fn context(&self) -> &wit::Context {
        &self.context
    }

    /// One reader as a plugin with `fields` (and contact details only when `pii`) sees them.
    pub fn project(&self, fields: FieldSet, pii: bool, reader: &Reader) -> wit::Subscriber {
        let (row, terms) = (&reader.row, reader.terms.as_slice());
        let has = |f: Field| fields.contains(f);
        let spans: Vec<_> = if fields.needs_terms() {
            terms.iter().map(Term::span).collect()
        } else {
            Vec::new()
        };
        let status = tenure::status(&spans, self.today, self.grace_days);
        let tenure = tenure::tenure_on(&spans, self.today, self.grace_days);
        let profile = row.profile.as_ref().map(|p| p.draft());
        wit::Subscriber {
            number: SubscriberNumber::from_sequence(row.sequence).value(),
            status: if has(Field::Status) {
                status_of(status)
            } else {
                wit::Status::None
            },
            region: row.region.clone().filter(|_| has(Field::Region)),
            postal_code: row.postal_code.clone().filter(|_| has(Field::PostalCode)),
            birth_year: row.birth_year.filter(|_| has(Field::BirthYear)),
            tenure_days: if has(Field::Tenure) {
                u32::try_from(tenure.days).unwrap_or(0)
            } else {
                0
            },
            first_subscribed: tenure::first_subscribed(&spans)
                .filter(|_| has(Field::Tenure))
                .map(date),
            // A sum past i64 (from amounts stored before the money limits) is shown as the
            // most there is, not wrapped to a negative.
            lifetime_revenue: if has(Field::LifetimeRevenue) {
                checked_sum(terms.iter().map(Term::revenue)).unwrap_or(i64::MAX)
            } else {
                0
            },
            share_of_wallet: if has(Field::ShareOfWallet) {
                self.share_of_wallet(terms)
            } else {
                0.0
            },
            terms: if has(Field::Terms) {
                terms.iter().filter_map(|t| self.term(t)).collect()
            } else {
                Vec::new()
            },
            club_tiers: if has(Field::ClubTiers) {
                row.club_tiers
                    .iter()
                    .map(|(club, tier, rank)| wit::ClubTier {
                        club: club.clone(),
                        tier: tier.clone(),
                        rank: *rank,
                    })
                    .collect()
            } else {
                Vec::new()
            },
            complaints: if has(Field::Complaints) {
                counts(&row.complaints)
            } else {
                counts(&ComplaintTally::default())
            },
            consents: if has(Field::Consents) {
                row.consents
                    .iter()
                    .map(|(purpose, state)| wit::Consent {
                        purpose: purpose_of(*purpose),
                        granted: state.granted,
                    })
                    .collect()
            } else {
                Vec::new()
            },
            attributes: match profile {
                Some(p) if has(Field::Attributes) => p
                    .custom_attributes
                    .iter()
                    .filter_map(|(key, value)| attribute(key, value))
                    .collect(),
                _ => Vec::new(),
            },
            contact: match profile {
                Some(p) if pii && has(Field::Contact) => Some(wit::Contact {
                    given_name: p.given_name.clone(),
                    family_name: p.family_name.clone(),
                    organisation_name: p.organisation_name.clone(),
                    emails: p.emails.iter().map(|e| e.address.clone()).collect(),
                    phones: p.phones.iter().map(|e| e.number.clone()).collect(),
                    address_lines: p
                        .addresses
                        .first()
                        .map(|a| a.lines.clone())
                        .unwrap_or_default(),
                    city: p
                        .addresses
                        .first()
                        .map(|a| a.city.clone())
                        .filter(|c| !c.is_empty()),
                }),
                _ => None,
            },
        }
    }

    fn share_of_wallet(&self, terms: &[Term]) -> f32 {
        if self.on_sale == 0 {
            return 0.0;
        }
        let mut held: Vec<&str> = terms
            .iter()
            .filter(|t| t.span().covers(self.today))
            .map(|t| t.publication.as_str())
            .collect();
        held.sort_unstable();
        held.dedup();
        (held.len() as f32 / self.on_sale as f32).min(1.0)
    }

    fn term(&self, t: &Term) -> Option<wit::Term> {
        Some(wit::Term {
            publication: *self.index.get(t.publication.as_str())?,
            format: match t.format {
                Format::Print => wit::Format::Print,
                Format::Digital => wit::Format::Digital,
                Format::Bundle => wit::Format::Bundle,
            },
            months: u8::try_from(t.months).unwrap_or(u8::MAX),
            start: date(t.start),
            end: date(t.end),
            list_price: t.list_price.amount,
            price_paid: t.price_paid.amount,
            channel: match t.channel {
                SalesChannel::Phone => wit::SalesChannel::Phone,
                SalesChannel::Web => wit::SalesChannel::Web,
                SalesChannel::Agent => wit::SalesChannel::Agent,
                SalesChannel::Kiosk => wit::SalesChannel::Kiosk,
                SalesChannel::Post => wit::SalesChannel::Post,
            },
            auto_renew: t.auto_renew,
            cancelled_from: t.cancellation.as_ref().map(|c| date(c.effective)),
        })
    }
}

/// Empties what a record holds beyond `fields` (and contact details without `pii`), as the
/// host's own projection would have left it.
pub fn restrict(mut s: wit::Subscriber, fields: FieldSet, pii: bool) -> wit::Subscriber {
    let has = |f: Field| fields.contains(f);
    if !has(Field::Status) {
        s.status = wit::Status::None;
    }
    if !has(Field::Region) {
        s.region = None;
    }
    if !has(Field::PostalCode) {
        s.postal_code = None;
    }
    if !has(Field::BirthYear) {
        s.birth_year = None;
    }
    if !has(Field::Tenure) {
        s.tenure_days = 0;
        s.first_subscribed = None;
    }
    if !has(Field::LifetimeRevenue) {
        s.lifetime_revenue = 0;
    }
    if !has(Field::ShareOfWallet) {
        s.share_of_wallet = 0.0;
    }
    if !has(Field::Terms) {
        s.terms.clear();
    }
    if !has(Field::ClubTiers) {
        s.club_tiers.clear();
    }
    if !has(Field::Complaints) {
        s.complaints = counts(&ComplaintTally::default());
    }
    if !has(Field::Consents) {
        s.consents.clear();
    }
    if !has(Field::Attributes) {
        s.attributes.clear();
    }
    if !(pii && has(Field::Contact)) {
        s.contact = None;
    }
    s
}

pub fn date(d: NaiveDate) -> wit::Date {
    wit::Date {
        year: d.year(),
        month: d.month() as u8,
        day: d.day() as u8,
    }
}

pub fn purpose_of(p: ConsentPurpose) -> wit::ConsentPurpose {
    match p {
        ConsentPurpose::MarketingEmail => wit::ConsentPurpose::MarketingEmail,
        ConsentPurpose::MarketingPhone => wit::ConsentPurpose::MarketingPhone,
        ConsentPurpose::MarketingPost => wit::ConsentPurpose::MarketingPost,
        ConsentPurpose::ThirdPartyAudiences => wit::ConsentPurpose::ThirdPartyAudiences,
    }
}

fn status_of(s: SubscriptionStatus) -> wit::Status {
    match s {
        SubscriptionStatus::None => wit::Status::None,
        SubscriptionStatus::Pending => wit::Status::Pending,
        SubscriptionStatus::Active => wit::Status::Active,
        SubscriptionStatus::Grace => wit::Status::Grace,
        SubscriptionStatus::Lapsed => wit::Status::Lapsed,
        SubscriptionStatus::Cancelled => wit::Status::Cancelled,
    }
}

fn attribute(key: &str, value: &serde_json::Value) -> Option<wit::Attribute> {
    let value = match value {
        serde_json::Value::String(s) => wit::AttributeValue::Text(s.clone()),
        serde_json::Value::Bool(b) => wit::AttributeValue::Boolean(*b),
        serde_json::Value::Number(n) => wit::AttributeValue::Number(n.as_f64()?),
        _ => return None,
    };
    Some(wit::Attribute {
        key: key.to_string(),
        value,
    })
}
