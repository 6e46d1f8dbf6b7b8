//! The JSON input of `masthead plugin run`: readers written the way an author thinks of them,
//! turned into the contract's records.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::Deserialize;

use crate::runtime::bindings::wit;
use crate::services::plugins::view::date;

/// `{"today": ..., "publications": [...], "subscribers": [...]}`, or just the array of readers.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Input {
    Full(Batch),
    Readers(Vec<Reader>),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Batch {
    pub today: Option<NaiveDate>,
    #[serde(default)]
    pub currency: Option<String>,
    /// Title codes, in the order terms refer to them; default: the codes the terms name.
    #[serde(default)]
    pub publications: Vec<String>,
    pub subscribers: Vec<Reader>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Reader {
    pub number: u64,
    pub status: Option<String>,
    pub region: Option<String>,
    pub postal_code: Option<String>,
    pub birth_year: Option<u16>,
    pub tenure_days: u32,
    pub first_subscribed: Option<NaiveDate>,
    pub lifetime_revenue: i64,
    pub share_of_wallet: f32,
    pub terms: Vec<TermInput>,
    pub club_tiers: Vec<TierInput>,
    pub complaints: ComplaintInput,
    /// Purpose (marketing_email, ...) to granted.
    pub consents: BTreeMap<String, bool>,
    pub attributes: BTreeMap<String, serde_json::Value>,
    pub contact: Option<ContactInput>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TermInput {
    pub publication: String,
    #[serde(default = "print")]
    pub format: String,
    #[serde(default = "twelve")]
    pub months: u8,
    pub start: NaiveDate,
    pub end: NaiveDate,
    #[serde(default)]
    pub list_price: i64,
    #[serde(default)]
    pub price_paid: i64,
    #[serde(default)]
    pub auto_renew: bool,
    #[serde(default)]
    pub cancelled_from: Option<NaiveDate>,
}

fn print() -> String {
    "print".into()
}

fn twelve() -> u8 {
    12
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TierInput {
    pub club: String,
    pub tier: String,
    pub rank: u8,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ComplaintInput {
    pub open: u32,
    pub total: u32,
    pub last_year: u32,
    pub breached: u32,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ContactInput {
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub organisation_name: Option<String>,
    pub emails: Vec<String>,
    pub phones: Vec<String>,
    pub address_lines: Vec<String>,
    pub city: Option<String>,
}

impl Input {
    /// The batch context and the records, or what is wrong with the input.
    pub fn into_batch(
        self,
        today: NaiveDate,
    ) -> Result<(wit::Context, Vec<wit::Subscriber>), String> {
        let batch = match self {
            Input::Full(batch) => batch,
            Input::Readers(subscribers) => Batch {
                today: None,
                currency: None,
                publications: Vec::new(),
                subscribers,
            },
        };
        let mut codes = batch.publications;
        for reader in &batch.subscribers {
            for term in &reader.terms {
                if !codes.contains(&term.publication) {
                    codes.push(term.publication.clone());
                }
            }
        }
        let context = wit::Context {
            today: date(batch.today.unwrap_or(today)),
            currency: batch.currency.unwrap_or_else(|| "GBP".into()),
            publications: codes
                .iter()
                .map(|code| wit::Publication {
                    code: code.clone(),
                    title: code.clone(),
                    on_sale: true,
                })
                .collect(),
        };
        let records = batch
            .subscribers
            .into_iter()
            .enumerate()
            .map(|(i, r)| {
                r.into_record(&codes)
                    .map_err(|e| format!("subscribers[{i}]: {e}"))
            })
            .collect::<Result<_, _>>()?;
        Ok((context, records))
    }
}

impl Reader {
    fn into_record(self, codes: &[String]) -> Result<wit::Subscriber, String> {
        let status = match self.status.as_deref().unwrap_or("active") {
            "none" => wit::Status::None,
            "pending" => wit::Status::Pending,
            "active" => wit::Status::Active,
            "grace" => wit::Status::Grace,
            "lapsed" => wit::Status::Lapsed,
            "cancelled" => wit::Status::Cancelled,
            other => {
                return Err(format!(
                    "status {other:?} is not none, pending, active, grace, lapsed or cancelled"
                ));
            }
        };
        let terms = self
            .terms
            .into_iter()
            .map(|t| {
                let format = match t.format.as_str() {
                    "print" => wit::Format::Print,
                    "digital" => wit::Format::Digital,
                    "bundle" => wit::Format::Bundle,
                    other => {
                        return Err(format!("format {other:?} is not print, digital or bundle"));
                    }
                };
                Ok(wit::Term {
                    publication: codes.iter().position(|c| *c == t.publication).unwrap_or(0) as u32,
                    format,
                    months: t.months,
                    start: date(t.start),
                    end: date(t.end),
                    list_price: t.list_price,
                    price_paid: t.price_paid,
                    channel: wit::SalesChannel::Phone,
                    auto_renew: t.auto_renew,
                    cancelled_from: t.cancelled_from.map(date),
                })
            })
            .collect::<Result<_, String>>()?;
        let consents = self
            .consents
            .into_iter()
            .map(|(purpose, granted)| {
                let purpose = match purpose.as_str() {
                    "marketing_email" => wit::ConsentPurpose::MarketingEmail,
                    "marketing_phone" => wit::ConsentPurpose::MarketingPhone,
                    "marketing_post" => wit::ConsentPurpose::MarketingPost,
                    "third_party_audiences" => wit::ConsentPurpose::ThirdPartyAudiences,
                    other => return Err(format!("consent purpose {other:?} is unknown")),
                };
                Ok(wit::Consent { purpose, granted })
            })
            .collect::<Result<_, String>>()?;
        Ok(wit::Subscriber {
            number: self.number,
            status,
            region: self.region,
            postal_code: self.postal_code,
            birth_year: self.birth_year,
            tenure_days: self.tenure_days,
            first_subscribed: self.first_subscribed.map(date),
            lifetime_revenue: self.lifetime_revenue,
            share_of_wallet: self.share_of_wallet,
            terms,
            club_tiers: self
                .club_tiers
                .into_iter()
                .map(|t| wit::ClubTier {
                    club: t.club,
                    tier: t.tier,
                    rank: t.rank,
                })
                .collect(),
            complaints: wit::ComplaintCounts {
                open: self.complaints.open,
                total: self.complaints.total,
                last_year: self.complaints.last_year,
                breached: self.complaints.breached,
            },
            consents,
            attributes: self
                .attributes
                .into_iter()
                .filter_map(|(key, value)| {
                    let value = match value {
                        serde_json::Value::String(s) => wit::AttributeValue::Text(s),
                        serde_json::Value::Bool(b) => wit::AttributeValue::Boolean(b),
                        serde_json::Value::Number(n) => wit::AttributeValue::Number(n.as_f64()?),
                        _ => return None,
                    };
                    Some(wit::Attribute { key, value })
                })
                .collect(),
            contact: self.contact.map(|c| wit::Contact {
                given_name: c.given_name,
                family_name: c.family_name,
                organisation_name: c.organisation_name,
                emails: c.emails,
                phones: c.phones,
                address_lines: c.address_lines,
                city: c.city,
            }),
        })
    }
}
