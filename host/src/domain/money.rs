//! Money as integer minor units with an ISO 4217 currency code, and percentages in basis points.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use utoipa::ToSchema;

/// A three-letter ISO 4217 code such as `EUR`, kept upper-case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Currency([u8; 3]);

impl Currency {
    pub fn parse(text: &str) -> Result<Self, String> {
        let upper = text.trim().to_ascii_uppercase();
        match upper.as_bytes() {
            [a, b, c] if upper.bytes().all(|b| b.is_ascii_uppercase()) => Ok(Self([*a, *b, *c])),
            _ => Err(format!(
                "`{text}` is not a currency code; use three letters such as EUR or GBP"
            )),
        }
    }

    /// The three letters, for a compact encoding.
    pub fn bytes(&self) -> [u8; 3] {
        self.0
    }

    /// A currency back from [`Currency::bytes`].
    pub fn from_bytes(bytes: [u8; 3]) -> Result<Self, String> {
        if bytes.iter().all(u8::is_ascii_uppercase) {
            Ok(Self(bytes))
        } else {
            Err(format!("{bytes:?} is not a currency code"))
        }
    }

    pub fn as_str(&self) -> &str {
        // The bytes are ASCII letters by construction.
        std::str::from_utf8(&self.0).unwrap_or("XXX")
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Currency {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// An amount in minor units (cents, pence) of one currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Money {
    /// Minor units: 1250 is 12.50.
    pub amount: i64,
    #[schema(value_type = String, example = "EUR")]
    pub currency: Currency,
}

/// The most one amount may be (a price, a term's price, a discount, a refund, a credit), in
/// minor units: 1,000,000,000.00 of the currency. No subscription comes near it, yet it keeps
/// sums far from the end of `i64`: a total reaches it only past 92 million such amounts.
pub const MAX_AMOUNT: i64 = 100_000_000_000;

/// `MAX_AMOUNT` as people write it, for messages.
const MAX_AMOUNT_TEXT: &str = "1000000000.00";

/// Checks an amount received from outside (the API, an import, a plugin): whole minor units
/// from 0 to [`MAX_AMOUNT`]. The error names the limit; the caller names the field.
pub fn check_amount(amount: i64) -> Result<i64, String> {
    if (0..=MAX_AMOUNT).contains(&amount) {
        Ok(amount)
    } else {
        Err(format!(
            "{amount} is not an amount from 0 to {MAX_AMOUNT} minor units ({MAX_AMOUNT_TEXT})"
        ))
    }
}

/// The sum of amounts in minor units, or `None` where it would not fit in an `i64` (a sum
/// must never wrap around to a negative total).
pub fn checked_sum(amounts: impl IntoIterator<Item = i64>) -> Option<i64> {
    amounts.into_iter().try_fold(0_i64, i64::checked_add)
}

impl Money {
    pub fn new(amount: i64, currency: Currency) -> Self {
        Self { amount, currency }
    }

    /// An amount received from outside, within [`check_amount`]'s bounds.
    pub fn parse(amount: i64, currency: Currency) -> Result<Self, String> {
        check_amount(amount).map(|amount| Self::new(amount, currency))
    }

    pub fn zero(currency: Currency) -> Self {
        Self::new(0, currency)
    }

    /// `percent` of this amount, rounded half away from zero to a whole minor unit.
    pub fn percent(&self, percent: BasisPoints) -> Self {
        let scaled = i128::from(self.amount) * i128::from(percent.0);
        let rounded = (scaled + 5_000 * scaled.signum()) / 10_000;
        Self::new(i64::try_from(rounded).unwrap_or(i64::MAX), self.currency)
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.amount < 0 { "-" } else { "" };
        let abs = self.amount.unsigned_abs();
        write!(f, "{sign}{}.{:02} {}", abs / 100, abs % 100, self.currency)
    }
}

/// A percentage in hundredths of a percent: 250 is 2.5 %.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct BasisPoints(pub u32);

impl BasisPoints {
    /// From a percentage such as `2.5`; refuses negatives, over 100 and more than two decimals.
    pub fn from_percent(percent: f64) -> Result<Self, String> {
        let scaled = percent * 100.0;
        if !(0.0..=10_000.0).contains(&scaled) || (scaled - scaled.round()).abs() > 1e-6 {
            return Err(format!(
                "{percent} is not a percentage between 0 and 100 with at most two decimals"
            ));
        }
        Ok(Self(scaled.round() as u32))
    }
}

impl fmt::Display for BasisPoints {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_multiple_of(100) {
            write!(f, "{}%", self.0 / 100)
        } else {
            write!(f, "{}.{:02}%", self.0 / 100, self.0 % 100)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eur(amount: i64) -> Money {
        Money::new(amount, Currency::parse("eur").unwrap())
    }

    #[test]
    fn currency_codes_are_three_letters() {
        assert_eq!(Currency::parse("gbp").unwrap().as_str(), "GBP");
        assert!(Currency::parse("EURO").is_err());
        assert!(Currency::parse("E1R").is_err());
        assert!(Currency::parse("").is_err());
    }

    #[test]
    fn percentages_round_half_away_from_zero() {
        assert_eq!(eur(999).percent(BasisPoints(500)).amount, 50); // 49.95
        assert_eq!(eur(990).percent(BasisPoints(500)).amount, 50); // 49.5
        assert_eq!(eur(989).percent(BasisPoints(500)).amount, 49); // 49.45
        assert_eq!(eur(12_000).percent(BasisPoints(10_000)).amount, 12_000);
        assert_eq!(eur(12_000).percent(BasisPoints(0)).amount, 0);
    }

    #[test]
    fn basis_points_come_from_percentages() {
        assert_eq!(BasisPoints::from_percent(2.5), Ok(BasisPoints(250)));
        assert_eq!(BasisPoints::from_percent(100.0), Ok(BasisPoints(10_000)));
        assert!(BasisPoints::from_percent(-1.0).is_err());
        assert!(BasisPoints::from_percent(100.5).is_err());
        assert!(BasisPoints::from_percent(1.234).is_err());
        assert_eq!(BasisPoints(250).to_string(), "2.50%");
        assert_eq!(BasisPoints(1000).to_string(), "10%");
    }

    #[test]
    fn amounts_are_bounded_and_the_limit_is_named() {
        assert_eq!(check_amount(0), Ok(0));
        assert_eq!(check_amount(MAX_AMOUNT), Ok(MAX_AMOUNT));
        let over = check_amount(MAX_AMOUNT + 1).unwrap_err();
        assert!(
            over.contains("100000000000 minor units (1000000000.00)"),
            "{over}"
        );
        assert!(check_amount(-1).is_err());
        assert!(check_amount(i64::MAX).is_err());
        assert_eq!(Money::parse(1250, eur(0).currency), Ok(eur(1250)));
        assert_eq!(
            Money::new(MAX_AMOUNT, eur(0).currency).to_string(),
            format!("{MAX_AMOUNT_TEXT} EUR")
        );
    }

    #[test]
    fn sums_never_wrap() {
        assert_eq!(checked_sum([MAX_AMOUNT, MAX_AMOUNT]), Some(2 * MAX_AMOUNT));
        assert_eq!(checked_sum([]), Some(0));
        assert_eq!(checked_sum([i64::MAX, i64::MAX]), None);
        assert_eq!(checked_sum([i64::MAX, 1]), None);
    }

    #[test]
    fn money_displays_with_two_decimals() {
        assert_eq!(eur(240_000).to_string(), "2400.00 EUR");
        assert_eq!(eur(-5).to_string(), "-0.05 EUR");
    }
}
