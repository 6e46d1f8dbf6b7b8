//! The JSON input of `masthead plugin run`: readers written the way an author thinks of them,
//! turned into the contract's records.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::Deserialize;

use crate::runtime::bindings::wit;
use crate::services::plugins::view::date;

/// `{"today": ..., "publications": [...], "subscribers": [...]}`, or just the array of readers.
#[derive(Debug)]
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
    /// Reads the input file's text. A mistake is reported at its place in the file (the path
    /// of the field, the line and column) with what to send there.
    pub fn parse(text: &str) -> Result<Self, String> {
        // The shape is chosen by the first character rather than by trying both shapes in
        // turn, so that an error is the one of the shape the author meant.
        let mut json = serde_json::Deserializer::from_str(text);
        let parsed = match text.trim_start().chars().next() {
            Some('[') => serde_path_to_error::deserialize(&mut json).map(Input::Readers),
            Some('{') => serde_path_to_error::deserialize(&mut json).map(Input::Full),
            _ => {
                return Err(
                    "send a JSON array of readers, or an object with \"subscribers\" \
                            (and optionally \"today\", \"currency\" and \"publications\")"
                        .into(),
                );
            }
        };
        let parsed = parsed.map_err(located)?;
        json.end()
            .map_err(|e| format!("{e}: the input must end after its one JSON value"))?;
        Ok(parsed)
    }

    /// The batch context and the records, or what is wrong with the input.
    pub fn into_batch(
        self,
        today: NaiveDate,
    ) -> Result<(wit::Context, Vec<wit::Subscriber>), String> {
        // A reader is named by its path in the file, as parse errors name it.
        let (batch, list) = match self {
            Input::Full(batch) => (batch, "subscribers"),
            Input::Readers(subscribers) => (
                Batch {
                    today: None,
                    currency: None,
                    publications: Vec::new(),
                    subscribers,
                },
                "",
            ),
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
                    .map_err(|e| format!("{list}[{i}]: {e}"))
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
                    "status \"{other}\" is not none, pending, active, grace, lapsed or cancelled"
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
                        return Err(format!(
                            "format \"{other}\" is not print, digital or bundle"
                        ));
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
                    other => return Err(format!("consent purpose \"{other}\" is not marketing_email, marketing_phone, marketing_post or third_party_audiences")),
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

/// A parse error as a person can act on it: where, what went wrong, and what to send there.
fn located(error: serde_path_to_error::Error<serde_json::Error>) -> String {
    let path = error.path().to_string();
    let hint = error.path().iter().rev().find_map(|segment| match segment {
        serde_path_to_error::Segment::Map { key } => Some(what_to_send(key)),
        _ => None,
    });
    let inner = error.into_inner();
    let hint = match (inner.classify(), hint.flatten()) {
        (serde_json::error::Category::Data, Some(hint)) => format!("; send {hint}"),
        _ => String::new(),
    };
    if path == "." {
        format!("{inner}{hint}")
    } else {
        format!("{path}: {inner}{hint}")
    }
}

/// What each field of the input holds, in the words of its documentation.
fn what_to_send(field: &str) -> Option<&'static str> {
    Some(match field {
        "today" | "first_subscribed" | "start" | "end" | "cancelled_from" => "a date as YYYY-MM-DD",
        "number" => "the subscriber number as a whole number, e.g. 1000007",
        "status" => "one of none, pending, active, grace, lapsed or cancelled",
        "currency" => "a currency code such as \"GBP\"",
        "publications" => "a list of title codes, e.g. [\"DT\"]",
        "subscribers" => "a list of readers, each an object with at least \"number\"",
        "region" | "postal_code" | "publication" | "club" | "tier" | "given_name"
        | "family_name" | "organisation_name" | "city" => "a text",
        "birth_year" => "a year such as 1970",
        "tenure_days" => "a whole number of days",
        "lifetime_revenue" | "list_price" | "price_paid" => {
            "an amount in minor units (pence, cents) as a whole number"
        }
        "share_of_wallet" => "a number from 0 to 1",
        "terms" => {
            "a list of terms, each {\"publication\", \"start\", \"end\"} with optionally \
             \"format\", \"months\", \"list_price\", \"price_paid\", \"auto_renew\" and \
             \"cancelled_from\""
        }
        "format" => "one of print, digital or bundle",
        "months" => "a whole number of months from 1 to 255",
        "auto_renew" => "true or false",
        "club_tiers" => "a list of {\"club\", \"tier\", \"rank\"}",
        "rank" => "a whole number from 0 to 255, higher for a better tier",
        "complaints" => {
            "an object of whole numbers: \"open\", \"total\", \"last_year\", \"breached\""
        }
        "open" | "total" | "last_year" | "breached" => "a whole number",
        "consents" => {
            "an object from purpose (marketing_email, marketing_phone, marketing_post, \
             third_party_audiences) to true or false"
        }
        "attributes" => "an object from name to a text, a number or true or false",
        "contact" => {
            "an object with \"given_name\", \"family_name\", \"organisation_name\", \"emails\", \
             \"phones\", \"address_lines\" or \"city\""
        }
        "emails" | "phones" | "address_lines" => "a list of texts",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(text: &str) -> String {
        Input::parse(text).expect_err("refused")
    }

    #[test]
    fn both_shapes_are_read() {
        let Input::Readers(readers) = Input::parse(r#"[{"number": 1000007}]"#).expect("array")
        else {
            panic!("an array is a list of readers");
        };
        assert_eq!(readers[0].number, 1000007);
        let Input::Full(batch) =
            Input::parse(r#"{"today": "2026-11-23", "subscribers": []}"#).expect("object")
        else {
            panic!("an object is a whole batch");
        };
        assert_eq!(batch.today, NaiveDate::from_ymd_opt(2026, 11, 23));
    }

    #[test]
    fn a_mistake_is_named_by_its_path_with_what_to_send() {
        let e = refused(r#"[{"number": 1000007}, {"number": 1000015, "tenure_days": "ten"}]"#);
        assert!(e.starts_with("[1].tenure_days: invalid type"), "{e}");
        assert!(e.ends_with("send a whole number of days"), "{e}");
        let e = refused(
            r#"{"subscribers": [{"number": 1, "terms": [{"publication": "DT", "start": "2026-13-01", "end": "2026-12-31"}]}]}"#,
        );
        assert!(e.starts_with("subscribers[0].terms[0].start: "), "{e}");
        assert!(e.ends_with("send a date as YYYY-MM-DD"), "{e}");
        let e = refused(r#"[{"number": 1, "staus": "active"}]"#);
        assert!(e.contains("unknown field `staus`"), "{e}");
        assert!(e.contains("`status`"), "{e}");
        assert!(!e.contains("untagged"), "{e}");
        let e = refused(r#"{"today": "2026-11-23"}"#);
        assert!(e.contains("missing field `subscribers`"), "{e}");
    }

    #[test]
    fn input_that_is_no_batch_says_what_to_send() {
        assert!(refused("42").contains("a JSON array of readers"));
        assert!(refused("").contains("a JSON array of readers"));
        assert!(refused("[] []").contains("end after its one JSON value"));
        let e = refused("[{\"number\": 1,}]");
        assert!(e.contains("line 1"), "{e}");
    }
}
