//! The subscriber profile: what staff may write about a reader, and the rules it must meet.

use std::collections::BTreeMap;

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::contact::{CountryCode, EmailAddress, PhoneNumber, normalize_postal_code};
use super::text;
use super::validation::FieldErrors;

const MAX_NAME_CHARS: usize = 200;
const MAX_LIST_ITEMS: usize = 10;
const MAX_CUSTOM_ATTRIBUTES: usize = 50;
const MAX_ATTRIBUTE_TEXT: usize = 1_000;

/// A person or an organisation (a company, a library, a school).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SubscriberKind {
    #[default]
    Person,
    Organisation,
}

/// The state of the record itself (subscription status comes from the terms).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SubscriberStatus {
    #[default]
    Active,
    Inactive,
    Deceased,
    /// Folded into another subscriber; the number redirects there.
    Merged,
    /// Personal data removed on request; the number and anonymous history remain.
    Erased,
}

impl SubscriberStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Inactive => "inactive",
            Self::Deceased => "deceased",
            Self::Merged => "merged",
            Self::Erased => "erased",
        }
    }

    /// Whether staff may set this status by editing the profile.
    fn is_editable(self) -> bool {
        matches!(self, Self::Active | Self::Inactive | Self::Deceased)
    }
}

/// How closely the publisher manages the relationship, from basic to partnership.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum RelationshipLevel {
    #[default]
    Basic,
    Reactive,
    Accountable,
    Proactive,
    Partnership,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AddressKind {
    Delivery,
    Billing,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryMethod {
    Letterbox,
    Door,
    PickupPoint,
    Post,
    DigitalOnly,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Packaging {
    None,
    Paper,
    Plastic,
    Compostable,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PaymentMethod {
    DirectDebit,
    Card,
    Invoice,
    BankTransfer,
    Cash,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ContactChannel {
    Email,
    Phone,
    Sms,
    Post,
    None,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Preferences {
    pub delivery_method: Option<DeliveryMethod>,
    pub packaging: Option<Packaging>,
    pub payment_method: Option<PaymentMethod>,
    pub contact_channel: Option<ContactChannel>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmailEntry {
    pub address: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PhoneEntry {
    /// As typed; stored in E.164 form (national numbers use the publisher's default region).
    pub number: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Address {
    pub kind: AddressKind,
    /// Street lines, first to last.
    pub lines: Vec<String>,
    pub postal_code: String,
    pub city: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// ISO 3166-1 alpha-2; defaults to the publisher's country.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
}

/// The editable part of a subscriber as the API takes it: raw, not yet checked.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfileDraft {
    #[serde(default)]
    pub kind: SubscriberKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub given_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organisation_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub birth_date: Option<NaiveDate>,
    #[serde(default)]
    pub emails: Vec<EmailEntry>,
    #[serde(default)]
    pub phones: Vec<PhoneEntry>,
    #[serde(default)]
    pub addresses: Vec<Address>,
    #[serde(default)]
    pub preferences: Preferences,
    /// Staff id of the relationship manager.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relationship_manager: Option<i64>,
    #[serde(default)]
    pub relationship_level: RelationshipLevel,
    #[serde(default)]
    pub status: SubscriberStatus,
    /// Publisher-defined attributes: lower-case keys, scalar values.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub custom_attributes: BTreeMap<String, serde_json::Value>,
}

/// A checked and normalised profile; only [`Profile::parse`] (or the store) makes one.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile(ProfileDraft);

impl Profile {
    /// Checks every field, collecting all problems, and normalises contacts.
    pub fn parse(mut draft: ProfileDraft, home: CountryCode) -> Result<Self, FieldErrors> {
        let mut errors = FieldErrors::default();
        for (field, value) in [
            ("given_name", &mut draft.given_name),
            ("family_name", &mut draft.family_name),
            ("organisation_name", &mut draft.organisation_name),
        ] {
            check_name(field, value, &mut errors);
        }
        match draft.kind {
            SubscriberKind::Person if draft.given_name.is_none() && draft.family_name.is_none() => {
                errors.add(
                    "family_name",
                    "a person needs a given name or a family name",
                )
            }
            SubscriberKind::Organisation if draft.organisation_name.is_none() => {
                errors.add("organisation_name", "an organisation needs its name")
            }
            _ => {}
        }
        if let Some(born) = draft.birth_date {
            let today = chrono::Utc::now().date_naive();
            if born > today || born.year() < today.year() - 130 {
                errors.add(
                    "birth_date",
                    "the birth date must lie in the past 130 years",
                );
            }
        }
        check_count("emails", draft.emails.len(), &mut errors);
        for (i, entry) in draft.emails.iter_mut().enumerate() {
            match EmailAddress::parse(&entry.address) {
                Ok(email) => entry.address = email.as_str().to_owned(),
                Err(e) => errors.add(format!("emails[{i}].address"), e),
            }
            check_label(format!("emails[{i}].label"), &mut entry.label, &mut errors);
        }
        check_count("phones", draft.phones.len(), &mut errors);
        for (i, entry) in draft.phones.iter_mut().enumerate() {
            match PhoneNumber::parse(&entry.number, home) {
                Ok(phone) => entry.number = phone.as_str().to_owned(),
                Err(e) => errors.add(format!("phones[{i}].number"), e),
            }
            check_label(format!("phones[{i}].label"), &mut entry.label, &mut errors);
        }
        check_count("addresses", draft.addresses.len(), &mut errors);
        for (i, address) in draft.addresses.iter_mut().enumerate() {
            check_address(i, address, home, &mut errors);
        }
        if !draft.status.is_editable() {
            errors.add(
                "status",
                "status may be set to active, inactive or deceased; merged and erased come from their own actions",
            );
        }
        check_custom_attributes(&draft.custom_attributes, &mut errors);
        errors.into_result(Self(draft))
    }

    /// Rebuilds a profile the store wrote earlier (it was checked then).
    pub fn from_stored(draft: ProfileDraft) -> Self {
        Self(draft)
    }

    pub fn draft(&self) -> &ProfileDraft {
        &self.0
    }

    pub fn into_draft(self) -> ProfileDraft {
        self.0
    }

    /// The name staff see: "Given Family", family first for East Asian names.
    pub fn display_name(&self) -> String {
        let d = &self.0;
        if let Some(org) = &d.organisation_name
            && d.kind == SubscriberKind::Organisation
        {
            return org.clone();
        }
        let given = d.given_name.as_deref().unwrap_or("");
        let family = d.family_name.as_deref().unwrap_or("");
        if text::is_family_name_first(&format!("{family}{given}")) {
            format!("{family}{given}")
        } else {
            format!("{given} {family}").trim().to_owned()
        }
    }

    /// The first delivery address, else the first address of any kind.
    pub fn main_address(&self) -> Option<&Address> {
        let addresses = &self.0.addresses;
        addresses
            .iter()
            .find(|a| a.kind == AddressKind::Delivery)
            .or_else(|| addresses.first())
    }

    pub fn postal_code(&self) -> Option<String> {
        self.main_address()
            .map(|a| normalize_postal_code(&a.postal_code))
    }

    pub fn birth_year(&self) -> Option<i32> {
        self.0.birth_date.map(|d| d.year())
    }

    /// The folded words of every name the subscriber goes by.
    pub fn name_words(&self) -> Vec<String> {
        let d = &self.0;
        let mut words: Vec<String> = [&d.given_name, &d.family_name, &d.organisation_name]
            .into_iter()
            .flatten()
            .flat_map(|n| text::words(n))
            .collect();
        words.sort();
        words.dedup();
        words
    }

    /// Names of top-level fields that differ from `other`, for the audit log.
    pub fn changed_fields(&self, other: &Profile) -> Vec<&'static str> {
        let (a, b) = (&self.0, &other.0);
        let mut changed = Vec::new();
        macro_rules! compare {
            ($($field:ident),*) => {$(
                if a.$field != b.$field { changed.push(stringify!($field)); }
            )*};
        }
        compare!(
            kind,
            given_name,
            family_name,
            organisation_name,
            birth_date,
            emails,
            phones,
            addresses,
            preferences,
            relationship_manager,
            relationship_level,
            status,
            custom_attributes
        );
        changed
    }
}

fn check_name(field: &'static str, value: &mut Option<String>, errors: &mut FieldErrors) {
    if let Some(name) = value {
        let trimmed = name.trim();
        if trimmed.is_empty() {
            *value = None;
        } else if trimmed.chars().count() > MAX_NAME_CHARS {
            errors.add(
                field,
                format!("a name has at most {MAX_NAME_CHARS} characters"),
            );
        } else if trimmed.chars().any(char::is_control) {
            errors.add(field, "a name may not hold control characters");
        } else {
            *value = Some(trimmed.to_owned());
        }
    }
}

fn check_label(field: String, label: &mut Option<String>, errors: &mut FieldErrors) {
    if let Some(text) = label {
        let trimmed = text.trim();
        if trimmed.chars().count() > 40 {
            errors.add(field, "a label has at most 40 characters");
        } else if trimmed.is_empty() {
            *label = None;
        } else {
            *label = Some(trimmed.to_owned());
        }
    }
}

fn check_count(field: &'static str, count: usize, errors: &mut FieldErrors) {
    if count > MAX_LIST_ITEMS {
        errors.add(field, format!("at most {MAX_LIST_ITEMS} entries"));
    }
}

fn check_address(i: usize, address: &mut Address, home: CountryCode, errors: &mut FieldErrors) {
    let field = |name: &str| format!("addresses[{i}].{name}");
    address.lines = address
        .lines
        .iter()
        .map(|l| l.trim().to_owned())
        .filter(|l| !l.is_empty())
        .collect();
    if address.lines.is_empty() || address.lines.len() > 5 {
        errors.add(field("lines"), "an address has 1 to 5 street lines");
    }
    if address
        .lines
        .iter()
        .any(|l| l.chars().count() > MAX_NAME_CHARS)
    {
        errors.add(
            field("lines"),
            format!("a line has at most {MAX_NAME_CHARS} characters"),
        );
    }
    address.postal_code = address.postal_code.trim().to_uppercase();
    if normalize_postal_code(&address.postal_code).is_empty() || address.postal_code.len() > 12 {
        errors.add(
            field("postal_code"),
            "a postal code has 1 to 12 letters or digits",
        );
    }
    address.city = address.city.trim().to_owned();
    if address.city.is_empty() || address.city.chars().count() > 100 {
        errors.add(field("city"), "a city has 1 to 100 characters");
    }
    address.region = address
        .region
        .as_deref()
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(str::to_owned);
    match address.country.as_deref().map(CountryCode::parse) {
        None => address.country = Some(home.to_string()),
        Some(Ok(code)) => address.country = Some(code.to_string()),
        Some(Err(e)) => errors.add(field("country"), e),
    }
}

fn check_custom_attributes(
    attributes: &BTreeMap<String, serde_json::Value>,
    errors: &mut FieldErrors,
) {
    if attributes.len() > MAX_CUSTOM_ATTRIBUTES {
        errors.add(
            "custom_attributes",
            format!("at most {MAX_CUSTOM_ATTRIBUTES} attributes"),
        );
    }
    for (key, value) in attributes {
        let field = format!("custom_attributes.{key}");
        let key_ok = key.len() <= 64
            && key.starts_with(|c: char| c.is_ascii_lowercase())
            && key
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !key_ok {
            errors.add(
                field,
                "attribute keys are 1 to 64 lower-case letters, digits or underscores, starting with a letter",
            );
            continue;
        }
        match value {
            serde_json::Value::String(s) if s.chars().count() > MAX_ATTRIBUTE_TEXT => errors.add(
                field,
                format!("text values have at most {MAX_ATTRIBUTE_TEXT} characters"),
            ),
            serde_json::Value::String(_)
            | serde_json::Value::Number(_)
            | serde_json::Value::Bool(_) => {}
            _ => errors.add(field, "values are text, numbers or true/false"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gb() -> CountryCode {
        CountryCode::parse("GB").unwrap()
    }

    fn person(given: &str, family: &str) -> ProfileDraft {
        ProfileDraft {
            given_name: Some(given.into()),
            family_name: Some(family.into()),
            ..Default::default()
        }
    }

    #[test]
    fn a_minimal_person_parses_and_trims() {
        let p = Profile::parse(person("  Anna ", "Smith"), gb()).unwrap();
        assert_eq!(p.display_name(), "Anna Smith");
        assert_eq!(p.name_words(), ["anna", "smith"]);
    }

    #[test]
    fn chinese_names_display_family_first() {
        let p = Profile::parse(person("小明", "王"), gb()).unwrap();
        assert_eq!(p.display_name(), "王小明");
    }

    #[test]
    fn collects_every_problem_with_its_field() {
        let mut draft = person("", "");
        draft.emails.push(EmailEntry {
            address: "nope".into(),
            label: None,
        });
        draft.custom_attributes.insert("Bad Key".into(), 1.into());
        draft.status = SubscriberStatus::Merged;
        let errors = Profile::parse(draft, gb()).unwrap_err();
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "family_name",
                "emails[0].address",
                "status",
                "custom_attributes.Bad Key"
            ]
        );
    }

    #[test]
    fn addresses_default_to_the_home_country() {
        let mut draft = person("Anna", "Smith");
        draft.addresses.push(Address {
            kind: AddressKind::Delivery,
            lines: vec!["1 High Street".into(), " ".into()],
            postal_code: "sw1a 1aa".into(),
            city: "London".into(),
            region: None,
            country: None,
        });
        let p = Profile::parse(draft, gb()).unwrap();
        let a = p.main_address().unwrap();
        assert_eq!(a.country.as_deref(), Some("GB"));
        assert_eq!(a.lines, ["1 High Street"]);
        assert_eq!(p.postal_code().as_deref(), Some("SW1A1AA"));
    }

    #[test]
    fn changed_fields_names_what_differs() {
        let a = Profile::parse(person("Anna", "Smith"), gb()).unwrap();
        let b = Profile::parse(person("Anna", "Jones"), gb()).unwrap();
        assert_eq!(b.changed_fields(&a), ["family_name"]);
    }
}

/// A partial change to a profile: a field that is present replaces the stored one (lists and
/// maps as a whole); `null` clears a field that may be empty.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfilePatch {
    pub kind: Option<SubscriberKind>,
    #[serde(default, with = "serde_with::rust::double_option")]
    #[schema(value_type = Option<String>)]
    pub given_name: Option<Option<String>>,
    #[serde(default, with = "serde_with::rust::double_option")]
    #[schema(value_type = Option<String>)]
    pub family_name: Option<Option<String>>,
    #[serde(default, with = "serde_with::rust::double_option")]
    #[schema(value_type = Option<String>)]
    pub organisation_name: Option<Option<String>>,
    #[serde(default, with = "serde_with::rust::double_option")]
    #[schema(value_type = Option<NaiveDate>)]
    pub birth_date: Option<Option<NaiveDate>>,
    pub emails: Option<Vec<EmailEntry>>,
    pub phones: Option<Vec<PhoneEntry>>,
    pub addresses: Option<Vec<Address>>,
    pub preferences: Option<Preferences>,
    #[serde(default, with = "serde_with::rust::double_option")]
    #[schema(value_type = Option<i64>)]
    pub relationship_manager: Option<Option<i64>>,
    pub relationship_level: Option<RelationshipLevel>,
    pub status: Option<SubscriberStatus>,
    #[schema(value_type = Option<Object>)]
    pub custom_attributes: Option<BTreeMap<String, serde_json::Value>>,
}

impl ProfilePatch {
    pub fn apply(self, draft: &mut ProfileDraft) {
        macro_rules! replace {
            ($($field:ident),*) => {$(
                if let Some(value) = self.$field { draft.$field = value; }
            )*};
        }
        replace!(
            kind,
            given_name,
            family_name,
            organisation_name,
            birth_date,
            emails,
            phones,
            addresses,
            preferences,
            relationship_manager,
            relationship_level,
            status,
            custom_attributes
        );
    }
}

/// What remains of a profile after erasure: the kind and the status, nothing personal.
pub fn erased_profile(kind: SubscriberKind) -> Profile {
    Profile(ProfileDraft {
        kind,
        status: SubscriberStatus::Erased,
        ..ProfileDraft::default()
    })
}
