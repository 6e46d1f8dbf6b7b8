//! The subscriber profile: what staff may write about a reader, and the rules it must meet.

use std::collections::BTreeMap;

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};
use unicode_normalization::UnicodeNormalization;
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

impl std::str::FromStr for RelationshipLevel {
    type Err = serde::de::value::Error;

    /// The level from its name as written in JSON, e.g. `proactive`.
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        use serde::de::IntoDeserializer;
        Self::deserialize(name.into_deserializer())
    }
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
    /// Street lines, first to last; with them the postal code and the city are required.
    /// Without them the address is partial: it places the reader but is not delivered to.
    #[serde(default)]
    pub lines: Vec<String>,
    /// Empty when a partial address has none.
    #[serde(default)]
    pub postal_code: String,
    /// Empty when a partial address has none.
    #[serde(default)]
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
    /// Checks every field, collecting all problems, and normalises contacts; `today` (by the
    /// service's clock) bounds the birth date.
    pub fn parse(
        mut draft: ProfileDraft,
        home: CountryCode,
        today: NaiveDate,
    ) -> Result<Self, FieldErrors> {
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
        if let Some(born) = draft.birth_date
            && (born > today || born.year() < today.year() - 130)
        {
            errors.add(
                "birth_date",
                "the birth date must lie in the past 130 years",
            );
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
        check_custom_attributes(&mut draft.custom_attributes, &mut errors);
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

    /// The main address's postal code, folded; none for a partial address without one.
    pub fn postal_code(&self) -> Option<String> {
        self.main_address()
            .map(|a| normalize_postal_code(&a.postal_code))
            .filter(|p| !p.is_empty())
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
        let trimmed = text::clean(name);
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
            *value = Some(trimmed);
        }
    }
}

fn check_label(field: String, label: &mut Option<String>, errors: &mut FieldErrors) {
    if let Some(given) = label {
        let trimmed = text::clean(given);
        if trimmed.chars().count() > 40 {
            errors.add(field, "a label has at most 40 characters");
        } else if trimmed.is_empty() {
            *label = None;
        } else {
            *label = Some(trimmed);
        }
    }
}

fn check_count(field: &'static str, count: usize, errors: &mut FieldErrors) {
    if count > MAX_LIST_ITEMS {
        errors.add(field, format!("at most {MAX_LIST_ITEMS} entries"));
    }
}

/// The address rules, the same for the API and the import. An address is whole or partial:
/// - whole: 1 to 5 street lines, a postal code and a city; post can reach it;
/// - partial: no street, but a postal code, a city, a region or a country; it places the reader
///   (for search, segments and audiences) and is never a delivery address.
///
/// A street without its postal code or city is refused, since post could not reach it. Every
/// address has a country: the one given, or the publisher's.
fn check_address(i: usize, address: &mut Address, home: CountryCode, errors: &mut FieldErrors) {
    let field = |name: &str| format!("addresses[{i}].{name}");
    address.lines = address
        .lines
        .iter()
        .map(|l| text::clean(l))
        .filter(|l| !l.is_empty())
        .collect();
    address.postal_code = text::clean(&address.postal_code).to_uppercase();
    address.city = text::clean(&address.city);
    address.region = address
        .region
        .as_deref()
        .map(text::clean)
        .filter(|r| !r.is_empty());
    let country = address
        .country
        .as_deref()
        .map(str::trim)
        .filter(|c| !c.is_empty());
    let placed = !address.postal_code.is_empty()
        || !address.city.is_empty()
        || address.region.is_some()
        || country.is_some();
    if address.lines.is_empty() && !placed {
        errors.add(
            field("lines"),
            "an address is empty; give its street lines, postal code and city, or at least a city, postal code, region or country",
        );
    }
    if address.lines.len() > 5 {
        errors.add(field("lines"), "an address has at most 5 street lines");
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
    let street = !address.lines.is_empty();
    if street && address.postal_code.is_empty() {
        errors.add(
            field("postal_code"),
            "a street address needs its postal code; without a street, give only the city, postal code, region or country",
        );
    } else if !address.postal_code.is_empty()
        && (normalize_postal_code(&address.postal_code).is_empty()
            || address.postal_code.chars().count() > 12)
    {
        errors.add(
            field("postal_code"),
            "a postal code has 1 to 12 characters, with letters or digits",
        );
    }
    if street && address.city.is_empty() {
        errors.add(
            field("city"),
            "a street address needs its city; without a street, give only the city, postal code, region or country",
        );
    } else if address.city.chars().count() > 100 {
        errors.add(field("city"), "a city has at most 100 characters");
    }
    if address
        .region
        .as_ref()
        .is_some_and(|r| r.chars().count() > 100)
    {
        errors.add(field("region"), "a region has at most 100 characters");
    }
    match country.map(CountryCode::parse) {
        None => address.country = Some(home.to_string()),
        Some(Ok(code)) => address.country = Some(code.to_string()),
        Some(Err(e)) => errors.add(field("country"), e),
    }
}

fn check_custom_attributes(
    attributes: &mut BTreeMap<String, serde_json::Value>,
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
            // Kept as sent apart from composing: a value may mean its spaces.
            serde_json::Value::String(s) => *s = s.nfc().collect(),
            serde_json::Value::Number(_) | serde_json::Value::Bool(_) => {}
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

    #[test]
    fn a_relationship_level_is_read_by_its_json_name() {
        assert_eq!(
            "proactive".parse::<RelationshipLevel>().unwrap(),
            RelationshipLevel::Proactive
        );
        assert!("Proactive".parse::<RelationshipLevel>().is_err());
        assert!("gold".parse::<RelationshipLevel>().is_err());
    }

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 6, 15).unwrap()
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
        let p = Profile::parse(person("  Anna ", "Smith"), gb(), today()).unwrap();
        assert_eq!(p.display_name(), "Anna Smith");
        assert_eq!(p.name_words(), ["anna", "smith"]);
    }

    #[test]
    fn chinese_names_display_family_first() {
        let p = Profile::parse(person("小明", "王"), gb(), today()).unwrap();
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
        let errors = Profile::parse(draft, gb(), today()).unwrap_err();
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
        let p = Profile::parse(draft, gb(), today()).unwrap();
        let a = p.main_address().unwrap();
        assert_eq!(a.country.as_deref(), Some("GB"));
        assert_eq!(a.lines, ["1 High Street"]);
        assert_eq!(p.postal_code().as_deref(), Some("SW1A1AA"));
    }

    fn address(lines: &[&str], postal_code: &str, city: &str, country: Option<&str>) -> Address {
        Address {
            kind: AddressKind::Delivery,
            lines: lines.iter().map(|l| (*l).to_owned()).collect(),
            postal_code: postal_code.into(),
            city: city.into(),
            region: None,
            country: country.map(str::to_owned),
        }
    }

    fn address_errors(address: Address) -> Vec<String> {
        let mut draft = person("Anna", "Smith");
        draft.addresses.push(address);
        match Profile::parse(draft, gb(), today()) {
            Ok(_) => Vec::new(),
            Err(errors) => errors.iter().map(|e| e.field.clone()).collect(),
        }
    }

    #[test]
    fn an_address_is_whole_or_partial_never_a_street_alone_or_empty() {
        assert!(address_errors(address(&["1 High St"], "SW1A 1AA", "London", None)).is_empty());
        assert!(address_errors(address(&[], "", "", Some("de"))).is_empty());
        assert!(address_errors(address(&[], "", "Leeds", None)).is_empty());
        assert!(address_errors(address(&[], "LS1", "", None)).is_empty());
        assert_eq!(
            address_errors(address(&["1 High St"], "", "", None)),
            ["addresses[0].postal_code", "addresses[0].city"]
        );
        assert_eq!(
            address_errors(address(&[" "], " ", "", None)),
            ["addresses[0].lines"]
        );
        let mut draft = person("Anna", "Smith");
        draft.addresses.push(address(&[], "", "", Some("fr")));
        let p = Profile::parse(draft, gb(), today()).unwrap();
        assert_eq!(p.main_address().unwrap().country.as_deref(), Some("FR"));
        assert_eq!(p.postal_code(), None);
    }

    #[test]
    fn names_and_addresses_are_stored_composed() {
        let mut draft = person("Zoe\u{308}", " Mu\u{308}ller ");
        draft.addresses.push(address(
            &["Ko\u{308}nigsallee 1"],
            "40212",
            "Du\u{308}sseldorf",
            None,
        ));
        let p = Profile::parse(draft, gb(), today()).unwrap();
        assert_eq!(p.display_name(), "Zo\u{eb} M\u{fc}ller");
        let a = p.main_address().unwrap();
        assert_eq!(a.lines, ["K\u{f6}nigsallee 1"]);
        assert_eq!(a.city, "D\u{fc}sseldorf");
    }

    #[test]
    fn a_birth_date_lies_in_the_past_130_years_of_the_given_day() {
        let born = |date: &str| {
            let mut draft = person("Anna", "Smith");
            draft.birth_date = Some(date.parse().unwrap());
            Profile::parse(draft, gb(), today()).map(|_| ())
        };
        assert!(born("2026-06-15").is_ok());
        assert!(born("1896-01-01").is_ok());
        for refused in ["2026-06-16", "1895-12-31"] {
            let errors = born(refused).unwrap_err();
            let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
            assert_eq!(fields, ["birth_date"], "{refused}");
        }
    }

    #[test]
    fn changed_fields_names_what_differs() {
        let a = Profile::parse(person("Anna", "Smith"), gb(), today()).unwrap();
        let b = Profile::parse(person("Anna", "Jones"), gb(), today()).unwrap();
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
