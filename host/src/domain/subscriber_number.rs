//! Subscriber numbers: a sequence followed by a Damm check digit.
//!
//! The Damm algorithm catches every single-digit error and every swap of two neighbouring
//! digits, the two mistakes people make when reading a number over the phone.

use std::fmt;
use std::str::FromStr;

/// The Damm quasigroup of order 10 (a totally anti-symmetric table).
const DAMM: [[u8; 10]; 10] = [
    [0, 3, 1, 7, 5, 9, 8, 6, 4, 2],
    [7, 0, 9, 2, 1, 5, 4, 8, 6, 3],
    [4, 2, 0, 6, 8, 7, 1, 3, 5, 9],
    [1, 7, 5, 0, 9, 8, 3, 4, 2, 6],
    [6, 1, 2, 3, 0, 4, 5, 9, 7, 8],
    [3, 6, 7, 4, 2, 0, 9, 5, 8, 1],
    [5, 8, 6, 9, 7, 2, 0, 1, 3, 4],
    [8, 9, 4, 5, 3, 6, 2, 0, 1, 7],
    [9, 4, 3, 8, 6, 1, 7, 2, 0, 5],
    [2, 5, 8, 1, 4, 3, 6, 7, 9, 0],
];

/// The largest sequence we hand out; keeps the number (sequence plus check digit) within `i64`.
const MAX_SEQUENCE: i64 = 99_999_999_999_999;

fn damm_interim(digits: impl Iterator<Item = u8>) -> u8 {
    digits.fold(0, |interim, d| DAMM[interim as usize][d as usize])
}

/// A reader's unique number: the database sequence plus one check digit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SubscriberNumber(i64);

/// Why a typed subscriber number was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubscriberNumberError {
    #[error("a subscriber number holds only digits (spaces and dashes are allowed between them)")]
    NotDigits,
    #[error("a subscriber number has at least 2 and at most 15 digits")]
    Length,
    #[error("the check digit of {0} does not match: the number was probably misread or mistyped")]
    CheckDigit(String),
}

impl SubscriberNumber {
    /// The number for a database sequence value.
    pub fn from_sequence(sequence: i64) -> Self {
        assert!(
            (0..=MAX_SEQUENCE).contains(&sequence),
            "subscriber sequence {sequence} out of range"
        );
        Self(sequence)
    }

    /// The database sequence behind this number.
    pub fn sequence(self) -> i64 {
        self.0
    }

    /// The full number, check digit included, as digits.
    pub fn value(self) -> u64 {
        self.0 as u64 * 10 + u64::from(self.check_digit())
    }

    /// The check digit appended to the sequence.
    pub fn check_digit(self) -> u8 {
        damm_interim(self.0.to_string().bytes().map(|b| b - b'0'))
    }

    /// Parses a full number as typed by a person: digits with optional spaces or dashes.
    pub fn parse(input: &str) -> Result<Self, SubscriberNumberError> {
        let digits = Self::digits_of(input)?;
        if digits.len() < 2 || digits.len() > 15 {
            return Err(SubscriberNumberError::Length);
        }
        if damm_interim(digits.iter().copied()) != 0 {
            return Err(SubscriberNumberError::CheckDigit(
                digits.iter().map(|d| char::from(b'0' + d)).collect(),
            ));
        }
        let sequence = digits[..digits.len() - 1]
            .iter()
            .fold(0i64, |n, &d| n * 10 + i64::from(d));
        Ok(Self(sequence))
    }

    /// The digits of `input` if it looks like a number at all (ignoring spaces and dashes).
    pub fn digits_of(input: &str) -> Result<Vec<u8>, SubscriberNumberError> {
        let mut digits = Vec::with_capacity(input.len());
        for c in input.trim().chars() {
            match c {
                '0'..='9' => digits.push(c as u8 - b'0'),
                ' ' | '-' => {}
                _ => return Err(SubscriberNumberError::NotDigits),
            }
        }
        if digits.is_empty() {
            return Err(SubscriberNumberError::NotDigits);
        }
        Ok(digits)
    }
}

impl fmt::Display for SubscriberNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.0, self.check_digit())
    }
}

impl FromStr for SubscriberNumber {
    type Err = SubscriberNumberError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl serde::Serialize for SubscriberNumber {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for SubscriberNumber {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_damm_check_digit() {
        // The textbook example: 572 gets check digit 4.
        assert_eq!(SubscriberNumber::from_sequence(572).to_string(), "5724");
        assert_eq!(SubscriberNumber::parse("5724").unwrap().sequence(), 572);
    }

    #[test]
    fn round_trips_and_accepts_separators() {
        let n = SubscriberNumber::from_sequence(1_234_567);
        let text = n.to_string();
        assert_eq!(SubscriberNumber::parse(&text).unwrap(), n);
        let spaced = format!("{} {}-{}", &text[..3], &text[3..6], &text[6..]);
        assert_eq!(SubscriberNumber::parse(&spaced).unwrap(), n);
    }

    #[test]
    fn every_single_digit_error_is_caught() {
        for seq in [100_000, 123_456, 999_999, 4_200_017] {
            let text = SubscriberNumber::from_sequence(seq).to_string();
            for pos in 0..text.len() {
                for d in b'0'..=b'9' {
                    let mut bytes = text.clone().into_bytes();
                    if bytes[pos] == d {
                        continue;
                    }
                    bytes[pos] = d;
                    let typo = String::from_utf8(bytes).unwrap();
                    assert!(
                        matches!(
                            SubscriberNumber::parse(&typo),
                            Err(SubscriberNumberError::CheckDigit(_))
                        ),
                        "{typo} should fail"
                    );
                }
            }
        }
    }

    #[test]
    fn every_adjacent_swap_is_caught() {
        for seq in 100_000..101_000 {
            let text = SubscriberNumber::from_sequence(seq).to_string();
            let bytes = text.as_bytes();
            for pos in 0..bytes.len() - 1 {
                if bytes[pos] == bytes[pos + 1] {
                    continue;
                }
                let mut swapped = bytes.to_vec();
                swapped.swap(pos, pos + 1);
                let typo = String::from_utf8(swapped).unwrap();
                assert!(
                    SubscriberNumber::parse(&typo).is_err(),
                    "{typo} should fail"
                );
            }
        }
    }

    #[test]
    fn rejects_letters_and_bad_lengths() {
        assert_eq!(
            SubscriberNumber::parse("12a4"),
            Err(SubscriberNumberError::NotDigits)
        );
        assert_eq!(
            SubscriberNumber::parse(""),
            Err(SubscriberNumberError::NotDigits)
        );
        assert_eq!(
            SubscriberNumber::parse("1"),
            Err(SubscriberNumberError::Length)
        );
        assert_eq!(
            SubscriberNumber::parse("1234567890123456"),
            Err(SubscriberNumberError::Length)
        );
    }
}
