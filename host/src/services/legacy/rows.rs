//! The two CSV files of a circulation: their columns, and each row to and from the domain.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::domain::money::{Currency, Money, check_amount};
use crate::domain::pricing::{PriceBreakdown, check_refund};
use crate::domain::publication::{Format, PublicationCode};
use crate::domain::search::{self, SearchTerm};
use crate::domain::subscriber::{
    Address, AddressKind, EmailEntry, PhoneEntry, ProfileDraft, SubscriberKind,
};
use crate::domain::term::{self, Discount, PaymentMethod, SalesChannel, Term};
use crate::domain::text;
use crate::domain::{CountryCode, FieldErrors, Profile, SubscriberNumber};

/// The longest discount or cancellation reason a row may give, as through the API.
const MAX_REASON_CHARS: usize = 500;

/// A line of `subscribers.csv`. Every column is optional text; `legacy_id` or `number` is
/// required so that `terms.csv` can name the reader.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SubscriberRow {
    #[serde(default)]
    pub number: Option<String>,
    #[serde(default)]
    pub legacy_id: Option<String>,
    #[serde(default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub given_name: Option<String>,
    #[serde(default)]
    pub family_name: Option<String>,
    #[serde(default)]
    pub organisation_name: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub phone: Option<String>,
    #[serde(default)]
    pub street: Option<String>,
    #[serde(default)]
    pub postal_code: Option<String>,
    #[serde(default)]
    pub city: Option<String>,
    #[serde(default)]
    pub region: Option<String>,
    #[serde(default)]
    pub country: Option<String>,
    #[serde(default)]
    pub birth_date: Option<String>,
}

/// A subscriber row, checked.
#[derive(Debug, Clone)]
pub struct ParsedSubscriber {
    pub number: Option<SubscriberNumber>,
    pub legacy_id: Option<String>,
    pub profile: Profile,
    pub terms: Vec<SearchTerm>,
    pub duplicate_keys: Vec<SearchTerm>,
}

fn present(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

fn date(field: &str, text: &str, errors: &mut FieldErrors) -> Option<NaiveDate> {
    match text.parse() {
        Ok(d) => Some(d),
        Err(_) => {
            errors.add(field, format!("`{text}` is not a date; write YYYY-MM-DD"));
            None
        }
    }
}

/// The column a profile field comes from, so that a rejection names what the file holds.
fn column_of(field: &str) -> &str {
    match field {
        "emails[0].address" => "email",
        "phones[0].number" => "phone",
        "addresses[0].lines" => "street",
        other => other.strip_prefix("addresses[0].").unwrap_or(other),
    }
}

/// Columns whose values are personal data. A rejection names the column but never quotes
/// what it held: rejections are kept with their import job long after the file is gone.
const PERSONAL_COLUMNS: &[&str] = &[
    "given_name",
    "family_name",
    "organisation_name",
    "email",
    "phone",
    "street",
    "postal_code",
    "city",
    "region",
    "birth_date",
];

/// One sentence from the field errors of a row.
pub fn reason(errors: &FieldErrors) -> String {
    errors
        .iter()
        .map(|e| {
            if PERSONAL_COLUMNS.contains(&e.field.as_str()) {
                format!("{}: {}", e.field, unquoted(&e.message))
            } else {
                format!("{}: {}", e.field, e.message)
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// The message with its quoted value (from the first backtick to the last) left out.
fn unquoted(message: &str) -> String {
    match (message.find('`'), message.rfind('`')) {
        (Some(first), Some(last)) if first < last => {
            format!("{}the value{}", &message[..first], &message[last + 1..])
        }
        _ => message.to_owned(),
    }
}

impl SubscriberRow {
    /// Checks the row; `today` is the import's day by the service's clock.
    pub fn parse(
        &self,
        home: CountryCode,
        today: NaiveDate,
    ) -> Result<ParsedSubscriber, FieldErrors> {
        let mut errors = FieldErrors::default();
        let number = present(&self.number).and_then(|n| match SubscriberNumber::parse(n) {
            Ok(n) => Some(n),
            Err(e) => {
                errors.add("number", e.to_string());
                None
            }
        });
        let legacy_id = present(&self.legacy_id).map(str::to_owned);
        if number.is_none() && legacy_id.is_none() && errors.is_empty() {
            errors.add(
                "legacy_id",
                "give the reader's legacy_id (your own id) or Masthead number",
            );
        }
        if legacy_id.as_ref().is_some_and(|l| l.chars().count() > 64) {
            errors.add("legacy_id", "keep legacy ids to 64 characters");
        }
        let kind = match present(&self.kind) {
            None | Some("person") => SubscriberKind::Person,
            Some("organisation") => SubscriberKind::Organisation,
            Some(other) => {
                errors.add(
                    "kind",
                    format!("`{other}` is not a kind; write person or organisation"),
                );
                SubscriberKind::Person
            }
        };
        let birth_date = present(&self.birth_date).and_then(|d| date("birth_date", d, &mut errors));
        // Any address column makes an address, whole or partial, checked by the profile's
        // rules; none at all means the reader has no address.
        let columns = [
            &self.street,
            &self.postal_code,
            &self.city,
            &self.region,
            &self.country,
        ];
        let address = columns
            .into_iter()
            .any(|c| present(c).is_some())
            .then(|| Address {
                kind: AddressKind::Delivery,
                lines: present(&self.street)
                    .map(|s| vec![s.to_owned()])
                    .unwrap_or_default(),
                postal_code: present(&self.postal_code).unwrap_or_default().to_owned(),
                city: present(&self.city).unwrap_or_default().to_owned(),
                region: present(&self.region).map(str::to_owned),
                country: present(&self.country).map(str::to_owned),
            });
        let draft = ProfileDraft {
            kind,
            given_name: present(&self.given_name).map(str::to_owned),
            family_name: present(&self.family_name).map(str::to_owned),
            organisation_name: present(&self.organisation_name).map(str::to_owned),
            birth_date,
            emails: present(&self.email)
                .map(|a| {
                    vec![EmailEntry {
                        address: a.to_owned(),
                        label: None,
                    }]
                })
                .unwrap_or_default(),
            phones: present(&self.phone)
                .map(|n| {
                    vec![PhoneEntry {
                        number: n.to_owned(),
                        label: None,
                    }]
                })
                .unwrap_or_default(),
            addresses: address.into_iter().collect(),
            ..ProfileDraft::default()
        };
        let profile = match Profile::parse(draft, home, today) {
            Ok(profile) => Some(profile),
            Err(more) => {
                for e in more.iter() {
                    errors.add(column_of(&e.field), e.message.clone());
                }
                None
            }
        };
        match profile {
            Some(profile) if errors.is_empty() => {
                let terms = search::terms_for(&profile);
                Ok(ParsedSubscriber {
                    number,
                    legacy_id,
                    duplicate_keys: search::duplicate_keys_among(&terms),
                    terms,
                    profile,
                })
            }
            _ => Err(errors),
        }
    }

    /// The row the export writes: the main email, phone and delivery address.
    pub fn of(number: SubscriberNumber, legacy_id: Option<String>, profile: &Profile) -> Self {
        let d = profile.draft();
        let address = profile.main_address();
        Self {
            number: Some(number.to_string()),
            legacy_id,
            kind: Some(
                match d.kind {
                    SubscriberKind::Person => "person",
                    SubscriberKind::Organisation => "organisation",
                }
                .to_owned(),
            ),
            given_name: d.given_name.clone(),
            family_name: d.family_name.clone(),
            organisation_name: d.organisation_name.clone(),
            email: d.emails.first().map(|e| e.address.clone()),
            phone: d.phones.first().map(|p| p.number.clone()),
            street: address.and_then(|a| a.lines.first().cloned()),
            postal_code: address.map(|a| a.postal_code.clone()),
            city: address.map(|a| a.city.clone()),
            region: address.and_then(|a| a.region.clone()),
            country: address.and_then(|a| a.country.clone()),
            birth_date: d.birth_date.map(|b| b.to_string()),
        }
    }
}

/// A line of `terms.csv`; the reader is named by `subscriber_number` or `legacy_id`.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TermRow {
    #[serde(default)]
    pub subscriber_number: Option<String>,
    #[serde(default)]
    pub legacy_id: Option<String>,
    pub publication: String,
    pub format: String,
    pub months: String,
    pub start: String,
    /// The last day served; defaults to the end of `months` from `start`.
    #[serde(default)]
    pub end: Option<String>,
    pub list_price: String,
    pub price_paid: String,
    #[serde(default)]
    pub currency: Option<String>,
    #[serde(default)]
    pub discount_reason: Option<String>,
    #[serde(default)]
    pub channel: Option<String>,
    #[serde(default)]
    pub payment_method: Option<String>,
    #[serde(default)]
    pub auto_renew: Option<String>,
    #[serde(default)]
    pub cancelled_effective: Option<String>,
    #[serde(default)]
    pub cancel_reason: Option<String>,
    #[serde(default)]
    pub refund: Option<String>,
}

/// Who a term row belongs to, before the database is asked.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Owner {
    Number(SubscriberNumber),
    Legacy(String),
}

/// A term row, checked, waiting for its subscriber and publication to be resolved.
#[derive(Debug, Clone)]
pub struct ParsedTerm {
    pub owner: Owner,
    pub publication: PublicationCode,
    pub format: Format,
    pub months: u32,
    pub start: NaiveDate,
    pub end: NaiveDate,
    pub extension_days: i64,
    pub list_price: Money,
    pub discounts: Vec<Discount>,
    pub price_paid: Money,
    pub channel: SalesChannel,
    pub payment_method: PaymentMethod,
    pub auto_renew: bool,
    pub cancellation: Option<(NaiveDate, String, Option<i64>)>,
}

fn snake_enum<T: serde::de::DeserializeOwned>(
    field: &str,
    text: &str,
    choices: &str,
    errors: &mut FieldErrors,
) -> Option<T> {
    let value = serde_json::Value::String(text.trim().to_lowercase().replace([' ', '-'], "_"));
    match serde_json::from_value(value) {
        Ok(v) => Some(v),
        Err(_) => {
            errors.add(field, format!("`{text}` is not one of {choices}"));
            None
        }
    }
}

/// An amount column: whole minor units within the money limits, as the API takes them.
fn amount(field: &str, text: &str, errors: &mut FieldErrors) -> Option<i64> {
    let checked = match text.trim().parse::<i64>() {
        Ok(v) => check_amount(v),
        Err(_) => Err(format!(
            "`{text}` is not an amount; write whole minor units, e.g. 12000 for 120.00"
        )),
    };
    checked.map_err(|e| errors.add(field, e)).ok()
}

impl TermRow {
    pub fn parse(&self, currency: Currency) -> Result<ParsedTerm, FieldErrors> {
        let mut errors = FieldErrors::default();
        let owner = match (present(&self.subscriber_number), present(&self.legacy_id)) {
            (Some(n), _) => match SubscriberNumber::parse(n) {
                Ok(n) => Some(Owner::Number(n)),
                Err(e) => {
                    errors.add("subscriber_number", e.to_string());
                    None
                }
            },
            (None, Some(l)) => Some(Owner::Legacy(l.to_owned())),
            (None, None) => {
                errors.add(
                    "legacy_id",
                    "name the reader by subscriber_number or legacy_id",
                );
                None
            }
        };
        let publication = PublicationCode::parse(&self.publication)
            .map_err(|e| errors.add("publication", e))
            .ok();
        let format = snake_enum(
            "format",
            &self.format,
            "print, digital, bundle",
            &mut errors,
        );
        let months = match self.months.trim().parse::<u32>() {
            Ok(m) if (1..=crate::domain::publication::MAX_TERM_MONTHS).contains(&m) => Some(m),
            _ => {
                errors.add(
                    "months",
                    format!("`{}` is not a term length of 1 to 36 months", self.months),
                );
                None
            }
        };
        let start = date("start", self.start.trim(), &mut errors);
        let given_end = present(&self.end).and_then(|e| date("end", e, &mut errors));
        let list_price = amount("list_price", &self.list_price, &mut errors);
        let price_paid = amount("price_paid", &self.price_paid, &mut errors);
        if let Some(c) = present(&self.currency)
            && Currency::parse(c).ok() != Some(currency)
        {
            errors.add(
                "currency",
                format!("`{c}` is not the house currency, {currency}"),
            );
        }
        let channel = present(&self.channel).map_or(Some(SalesChannel::Post), |c| {
            snake_enum("channel", c, "phone, web, agent, kiosk, post", &mut errors)
        });
        let payment_method =
            present(&self.payment_method).map_or(Some(PaymentMethod::Invoice), |p| {
                snake_enum(
                    "payment_method",
                    p,
                    "direct_debit, card, invoice, bank_transfer, cash, complimentary",
                    &mut errors,
                )
            });
        let auto_renew = match present(&self.auto_renew).map(str::to_lowercase).as_deref() {
            None | Some("false" | "no" | "n" | "0") => false,
            Some("true" | "yes" | "y" | "1") => true,
            Some(other) => {
                errors.add("auto_renew", format!("`{other}` is not true or false"));
                false
            }
        };
        let effective = present(&self.cancelled_effective)
            .and_then(|d| date("cancelled_effective", d, &mut errors));
        let refund = present(&self.refund).and_then(|r| amount("refund", r, &mut errors));
        if refund.is_some() && present(&self.cancelled_effective).is_none() {
            errors.add(
                "refund",
                "a refund comes with a cancellation; give cancelled_effective too",
            );
        }
        let cancel_reason = present(&self.cancel_reason).map(text::clean);
        if cancel_reason
            .as_ref()
            .is_some_and(|r| r.chars().count() > MAX_REASON_CHARS)
        {
            errors.add(
                "cancel_reason",
                format!("a reason has at most {MAX_REASON_CHARS} characters"),
            );
        }
        let discount_reason = present(&self.discount_reason).map(text::clean);
        if discount_reason
            .as_ref()
            .is_some_and(|r| r.chars().count() > MAX_REASON_CHARS)
        {
            errors.add(
                "discount_reason",
                format!("a reason has at most {MAX_REASON_CHARS} characters"),
            );
        }
        let (Some(owner), Some(publication), Some(format), Some(months), Some(start)) =
            (owner, publication, format, months, start)
        else {
            return Err(errors);
        };
        let (Some(list), Some(paid)) = (list_price, price_paid) else {
            return Err(errors);
        };
        let natural_end = term::last_day(start, months);
        let end = given_end.unwrap_or(natural_end);
        if end < start {
            errors.add(
                "end",
                format!("the term ends ({end}) before it starts ({start})"),
            );
        }
        // The same rules as a sale and a cancellation through the API.
        let price = PriceBreakdown::recorded(
            Money::new(list, currency),
            Money::new(paid, currency),
            discount_reason
                .as_deref()
                .unwrap_or("imported: list price less price paid"),
        );
        let price = match price {
            Ok(price) => Some(price),
            Err(problems) => {
                for (field, message) in problems {
                    errors.add(field, message);
                }
                None
            }
        };
        if let Some(effective) = effective
            && end >= start
            && let Err(e) = term::check_cancellation(effective, start, end)
        {
            errors.add("cancelled_effective", e);
        }
        let refund = match (refund, &price) {
            (Some(r), Some(price)) => match check_refund(r, price.total) {
                Ok(refund) => Some(refund.amount),
                Err(e) => {
                    errors.add("refund", e);
                    None
                }
            },
            _ => None,
        };
        let (Some(price), true) = (price, errors.is_empty()) else {
            return Err(errors);
        };
        let cancellation = effective.map(|e| {
            let reason = cancel_reason.unwrap_or_else(|| "imported".to_owned());
            (e, reason, refund)
        });
        Ok(ParsedTerm {
            owner,
            publication,
            format,
            months,
            start,
            end,
            extension_days: (end - natural_end).num_days().max(0),
            list_price: price.list_price,
            discounts: price.discounts,
            price_paid: price.total,
            channel: channel.unwrap_or(SalesChannel::Post),
            payment_method: payment_method.unwrap_or(PaymentMethod::Invoice),
            auto_renew,
            cancellation,
        })
    }

    /// The row the export writes.
    pub fn of(number: SubscriberNumber, legacy_id: Option<String>, term: &Term) -> Self {
        Self {
            subscriber_number: Some(number.to_string()),
            legacy_id,
            publication: term.publication.to_string(),
            format: term.format.as_str().to_owned(),
            months: term.months.to_string(),
            start: term.start.to_string(),
            end: Some(term.end.to_string()),
            list_price: term.list_price.amount.to_string(),
            price_paid: term.price_paid.amount.to_string(),
            currency: Some(term.list_price.currency.to_string()),
            discount_reason: (!term.discounts.is_empty()).then(|| {
                term.discounts
                    .iter()
                    .map(|d| d.reason.as_str())
                    .collect::<Vec<_>>()
                    .join("; ")
            }),
            channel: Some(enum_name(&term.channel)),
            payment_method: Some(enum_name(&term.payment_method)),
            auto_renew: Some(term.auto_renew.to_string()),
            cancelled_effective: term.cancellation.as_ref().map(|c| c.effective.to_string()),
            cancel_reason: term.cancellation.as_ref().map(|c| c.reason.clone()),
            refund: term
                .cancellation
                .as_ref()
                .and_then(|c| c.refund)
                .map(|r| r.amount.to_string()),
        }
    }
}

/// A snake_case enum's name, as serde writes it.
fn enum_name<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::new(),
    }
}
