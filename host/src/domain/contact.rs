//! Contact details as parsed domain values: email addresses, phone numbers, countries.

use std::fmt;

use rlibphonenumber::enums::Region;
use rlibphonenumber::{PHONE_NUMBER_UTIL, PhoneNumberFormat};

/// A syntactically valid email address, kept as typed; `normalized` folds it for matching.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EmailAddress(String);

impl EmailAddress {
    pub fn parse(input: &str) -> Result<Self, String> {
        let trimmed = input.trim();
        if trimmed.len() > 254 {
            return Err("an email address has at most 254 characters".into());
        }
        email_address::EmailAddress::parse_with_options(
            trimmed,
            email_address::Options::default().with_required_tld(),
        )
        .map_err(|e| format!("`{trimmed}` is not a valid email address: {e}"))?;
        Ok(Self(trimmed.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The form used to find duplicates: lower-cased as a whole (mail providers ignore case).
    pub fn normalized(&self) -> String {
        self.0.to_lowercase()
    }
}

impl TryFrom<String> for EmailAddress {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<EmailAddress> for String {
    fn from(value: EmailAddress) -> Self {
        value.0
    }
}

/// A phone number in E.164 form (`+4420...`), parsed with the publisher's default region.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PhoneNumber(String);

impl PhoneNumber {
    pub fn parse(input: &str, default_region: CountryCode) -> Result<Self, String> {
        let input = input.trim();
        let region = Region::from_code(default_region.as_str()).ok();
        let parsed = PHONE_NUMBER_UTIL
            .parse(input, region)
            .map_err(|e| format!("`{input}` is not a phone number: {e}"))?;
        if !parsed.is_valid() {
            return Err(format!(
                "`{input}` is not a valid phone number for its country; give it in international form (+CC...)"
            ));
        }
        Ok(Self(parsed.format_as(PhoneNumberFormat::E164).to_string()))
    }

    /// The E.164 text, also the form used for matching.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Digits only, without the plus: what a person types into the search box.
    pub fn digits(&self) -> String {
        self.0.chars().filter(char::is_ascii_digit).collect()
    }
}

/// An ISO 3166-1 alpha-2 country code, upper case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CountryCode([u8; 2]);

impl CountryCode {
    pub fn parse(input: &str) -> Result<Self, String> {
        let upper = input.trim().to_ascii_uppercase();
        match upper.as_bytes() {
            [a, b] if a.is_ascii_uppercase() && b.is_ascii_uppercase() => Ok(Self([*a, *b])),
            _ => Err(format!(
                "`{input}` is not a country code; use the two-letter ISO 3166 code such as GB or DE"
            )),
        }
    }

    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or("??")
    }
}

impl fmt::Display for CountryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for CountryCode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for CountryCode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Postal codes folded for matching: upper case without spaces or dashes.
pub fn normalize_postal_code(input: &str) -> String {
    input
        .chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_uppercase)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gb() -> CountryCode {
        CountryCode::parse("gb").unwrap()
    }

    #[test]
    fn emails_are_checked_and_folded() {
        let e = EmailAddress::parse(" Anna.Smith@Example.COM ").unwrap();
        assert_eq!(e.as_str(), "Anna.Smith@Example.COM");
        assert_eq!(e.normalized(), "anna.smith@example.com");
        assert!(EmailAddress::parse("anna@").is_err());
        assert!(EmailAddress::parse("anna@localhost").is_err());
        assert!(EmailAddress::parse("not an email").is_err());
    }

    #[test]
    fn phones_normalise_to_e164() {
        let national = PhoneNumber::parse("020 7946 0958", gb()).unwrap();
        let international = PhoneNumber::parse("+44 20 7946 0958", gb()).unwrap();
        assert_eq!(national, international);
        assert_eq!(national.as_str(), "+442079460958");
        assert_eq!(national.digits(), "442079460958");
        let german = PhoneNumber::parse("+49 30 901820", gb()).unwrap();
        assert_eq!(german.as_str(), "+4930901820");
        assert!(PhoneNumber::parse("12", gb()).is_err());
        assert!(PhoneNumber::parse("call me", gb()).is_err());
    }

    #[test]
    fn country_codes_and_postal_codes() {
        assert_eq!(CountryCode::parse("de").unwrap().as_str(), "DE");
        assert!(CountryCode::parse("Germany").is_err());
        assert_eq!(normalize_postal_code("sw1a 1aa"), "SW1A1AA");
    }
}
