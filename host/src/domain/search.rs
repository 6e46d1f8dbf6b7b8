//! Search-as-you-type: the terms a profile is found by, and how a typed query is read.

use serde::Serialize;
use utoipa::ToSchema;

use super::contact::{CountryCode, EmailAddress, PhoneNumber, normalize_postal_code};
use super::subscriber::Profile;
use super::subscriber_number::SubscriberNumber;
use super::text;

/// What a stored search term stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TermKind {
    /// One folded word of a name (and, for East Asian names, the whole name).
    Name,
    /// A whole email address, lower-cased.
    Email,
    /// A phone number's E.164 digits.
    Phone,
    /// A postal code without spaces.
    Postal,
    /// The sorted name words with the postal code: the same person at the same address.
    Identity,
}

impl TermKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Name => "name",
            Self::Email => "email",
            Self::Phone => "phone",
            Self::Postal => "postal",
            Self::Identity => "identity",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct SearchTerm {
    pub kind: TermKind,
    pub term: String,
}

impl SearchTerm {
    fn new(kind: TermKind, term: impl Into<String>) -> Self {
        Self {
            kind,
            term: term.into(),
        }
    }
}

/// Every term a profile can be found by, sorted and without repeats.
pub fn terms_for(profile: &Profile) -> Vec<SearchTerm> {
    let draft = profile.draft();
    let mut terms: Vec<SearchTerm> = profile
        .name_words()
        .into_iter()
        .map(|w| SearchTerm::new(TermKind::Name, w))
        .collect();
    let whole = text::fold(&profile.display_name());
    if text::is_family_name_first(&whole) {
        terms.push(SearchTerm::new(TermKind::Name, whole.replace(' ', "")));
    }
    for email in &draft.emails {
        terms.push(SearchTerm::new(
            TermKind::Email,
            email.address.to_lowercase(),
        ));
    }
    for phone in &draft.phones {
        let digits: String = phone.number.chars().filter(char::is_ascii_digit).collect();
        terms.push(SearchTerm::new(TermKind::Phone, digits));
    }
    // A partial address may have no postal code: nothing to find it by.
    for postal in draft
        .addresses
        .iter()
        .map(|a| normalize_postal_code(&a.postal_code))
        .filter(|p| !p.is_empty())
    {
        terms.push(SearchTerm::new(TermKind::Postal, postal));
    }
    terms.extend(identity_term(profile));
    terms.sort();
    terms.dedup();
    terms
}

/// The terms that mark two records as the same reader: email, phone, or name with postal code.
pub fn duplicate_keys(profile: &Profile) -> Vec<SearchTerm> {
    duplicate_keys_among(&terms_for(profile))
}

/// The duplicate keys among a profile's search terms.
pub fn duplicate_keys_among(terms: &[SearchTerm]) -> Vec<SearchTerm> {
    terms
        .iter()
        .filter(|t| {
            matches!(
                t.kind,
                TermKind::Email | TermKind::Phone | TermKind::Identity
            )
        })
        .cloned()
        .collect()
}

fn identity_term(profile: &Profile) -> Option<SearchTerm> {
    let words = profile.name_words();
    let postal = profile.postal_code()?;
    (!words.is_empty())
        .then(|| SearchTerm::new(TermKind::Identity, format!("{}|{postal}", words.join(" "))))
}

/// One way of reading the query box; the store answers each with matching subscribers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// A full subscriber number with a valid check digit.
    Number(SubscriberNumber),
    /// Digits read as a subscriber number typed without its check digit.
    Sequence(i64),
    /// Every word must begin a word of the name; the longest word drives the scan.
    Name(Vec<String>),
    /// A whole normalised term of the given kind.
    Exact(TermKind, String),
    /// A term of the given kind that starts with the text.
    Prefix(TermKind, String),
}

/// Why a match ranks where it does; lower ranks come first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MatchKind {
    Number,
    NumberWithoutCheckDigit,
    Email,
    Phone,
    Name,
    NamePrefix,
    PostalCode,
    EmailPrefix,
    PhonePrefix,
}

const MAX_QUERY_CHARS: usize = 100;

/// Reads a typed query into the probes worth running.
pub fn interpret(query: &str, home: CountryCode) -> Result<Vec<Probe>, String> {
    let query = query.trim();
    if query.is_empty() {
        return Err("type at least one character to search".into());
    }
    if query.chars().count() > MAX_QUERY_CHARS {
        return Err(format!("a search has at most {MAX_QUERY_CHARS} characters"));
    }
    let mut probes = Vec::new();
    let numeric = query
        .chars()
        .all(|c| c.is_ascii_digit() || " -+()/".contains(c));
    if numeric {
        let digits: String = query.chars().filter(char::is_ascii_digit).collect();
        if digits.is_empty() {
            return Err("type a name, a number, an email, a phone or a postal code".into());
        }
        let plain = !query.contains(['+', '(', ')', '/']);
        if plain {
            if let Ok(number) = SubscriberNumber::parse(query) {
                probes.push(Probe::Number(number));
            }
            if (1..=14).contains(&digits.len())
                && let Ok(sequence) = digits.parse::<i64>()
            {
                probes.push(Probe::Sequence(sequence));
            }
        }
        if digits.len() >= 5 {
            if let Ok(phone) = PhoneNumber::parse(query, home) {
                probes.push(Probe::Exact(TermKind::Phone, phone.digits()));
            }
            let international = digits.strip_prefix("00").unwrap_or(&digits);
            probes.push(Probe::Prefix(TermKind::Phone, international.to_owned()));
        }
        if plain {
            probes.push(Probe::Prefix(TermKind::Postal, digits));
        }
        return Ok(probes);
    }
    if query.contains('@') {
        match EmailAddress::parse(query) {
            Ok(email) => probes.push(Probe::Exact(TermKind::Email, email.normalized())),
            Err(_) => probes.push(Probe::Prefix(TermKind::Email, query.to_lowercase())),
        }
        return Ok(probes);
    }
    let words = text::words(query);
    if !words.is_empty() {
        probes.push(Probe::Name(words));
    }
    if !query.contains(char::is_whitespace) && query.len() >= 3 {
        probes.push(Probe::Prefix(TermKind::Email, query.to_lowercase()));
    }
    let postal = normalize_postal_code(query);
    if query.chars().any(|c| c.is_ascii_digit()) && postal.len() <= 12 {
        probes.push(Probe::Prefix(TermKind::Postal, postal));
    }
    if probes.is_empty() {
        return Err("type a name, a number, an email, a phone or a postal code".into());
    }
    Ok(probes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::subscriber::{Address, AddressKind, EmailEntry, PhoneEntry, ProfileDraft};

    fn gb() -> CountryCode {
        CountryCode::parse("GB").unwrap()
    }

    #[test]
    fn terms_cover_names_contacts_and_identity() {
        let draft = ProfileDraft {
            given_name: Some("Zoë".into()),
            family_name: Some("O'Neill".into()),
            emails: vec![EmailEntry {
                address: "Zoe@Example.org".into(),
                label: None,
            }],
            phones: vec![PhoneEntry {
                number: "020 7946 0958".into(),
                label: None,
            }],
            addresses: vec![Address {
                kind: AddressKind::Delivery,
                lines: vec!["1 Lane".into()],
                postal_code: "sw1a 1aa".into(),
                city: "London".into(),
                region: None,
                country: None,
            }],
            ..Default::default()
        };
        let today = chrono::NaiveDate::from_ymd_opt(2026, 6, 15).unwrap();
        let profile = Profile::parse(draft, gb(), today).unwrap();
        let terms: Vec<_> = terms_for(&profile)
            .into_iter()
            .map(|t| format!("{}:{}", t.kind.as_str(), t.term))
            .collect();
        assert_eq!(
            terms,
            [
                "name:neill",
                "name:o",
                "name:zoe",
                "email:zoe@example.org",
                "phone:442079460958",
                "postal:SW1A1AA",
                "identity:neill o zoe|SW1A1AA"
            ]
        );
    }

    #[test]
    fn digits_read_as_number_sequence_phone_and_postal() {
        let number = SubscriberNumber::from_sequence(100_042).to_string();
        let probes = interpret(&number, gb()).unwrap();
        assert_eq!(
            probes[0],
            Probe::Number(SubscriberNumber::from_sequence(100_042))
        );
        assert!(probes.contains(&Probe::Sequence(number.parse().unwrap())));
        let probes = interpret("100042", gb()).unwrap();
        assert!(probes.contains(&Probe::Sequence(100_042)));
    }

    #[test]
    fn names_emails_and_phones() {
        assert_eq!(
            interpret("Müller an", gb()).unwrap(),
            [Probe::Name(vec!["muller".into(), "an".into()])]
        );
        assert_eq!(
            interpret("anna@example.com", gb()).unwrap(),
            [Probe::Exact(TermKind::Email, "anna@example.com".into())]
        );
        let probes = interpret("+44 20 7946 0958", gb()).unwrap();
        assert_eq!(
            probes[0],
            Probe::Exact(TermKind::Phone, "442079460958".into())
        );
    }

    #[test]
    fn empty_and_overlong_queries_are_refused() {
        assert!(interpret("  ", gb()).is_err());
        assert!(interpret(&"a".repeat(101), gb()).is_err());
        assert!(interpret("+()", gb()).is_err());
    }
}
