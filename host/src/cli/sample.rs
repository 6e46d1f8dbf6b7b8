//! Sample readers for `masthead plugin check`: every field filled, renewal histories of up
//! to a dozen terms, so a manifest's limits are tried on readers like production's.

use std::collections::BTreeMap;

use chrono::{Datelike, Duration, NaiveDate};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::fixture::{ComplaintInput, ContactInput, Reader, TermInput, TierInput};
use crate::domain::SubscriberNumber;

/// Titles a sample reader subscribes to, with their yearly list price in minor units.
const TITLES: &[(&str, &str, i64)] = &[
    ("DT", "print", 31_200),
    ("ST", "print", 18_200),
    ("MAG", "digital", 6_000),
    ("WKND", "bundle", 22_100),
];
const TOWNS: &[(&str, &str, &str)] = &[
    ("London", "Greater London", "SW1A 1AA"),
    ("Manchester", "Greater Manchester", "M1 1AE"),
    ("Glasgow", "Scotland", "G1 1XQ"),
    ("Cardiff", "Wales", "CF10 1EP"),
    ("Norwich", "Norfolk", "NR2 1NH"),
];
const GIVEN: &[&str] = &["Margaret", "Thomas", "Ольга", "芳", "Grace", "Edward"];
const FAMILY: &[&str] = &["Thornton", "Hale", "Иванова", "王", "Wright", "Hughes"];
const PURPOSES: &[&str] = &[
    "marketing_email",
    "marketing_phone",
    "marketing_post",
    "third_party_audiences",
];

/// `count` readers as of `today`; the same every time.
pub fn readers(count: usize, today: NaiveDate) -> Vec<Reader> {
    let mut rng = StdRng::seed_from_u64(0x6d61_7374);
    (0..count).map(|i| reader(i, today, &mut rng)).collect()
}

fn reader(i: usize, today: NaiveDate, rng: &mut StdRng) -> Reader {
    let status = match rng.random_range(0..100) {
        0..70 => "active",
        70..80 => "grace",
        80..90 => "lapsed",
        90..95 => "cancelled",
        95..98 => "pending",
        _ => "none",
    };
    let (title, format, price) = TITLES[rng.random_range(0..TITLES.len())];
    let years = rng.random_range(1..=12);
    // The latest term runs over today for a current reader and ended before it otherwise.
    let last_start = match status {
        "active" | "pending" => today - Duration::days(rng.random_range(0..300)),
        "grace" => today - Duration::days(rng.random_range(366..390)),
        _ => today - Duration::days(rng.random_range(400..1500)),
    };
    let terms: Vec<TermInput> = (0..years)
        .rev()
        .map(|back| {
            let start = last_start
                .with_year(last_start.year() - back)
                .unwrap_or(last_start);
            let paid = price - rng.random_range(0..=price / 5);
            TermInput {
                publication: title.to_string(),
                format: format.to_string(),
                months: 12,
                start,
                end: start + Duration::days(364),
                list_price: price,
                price_paid: paid,
                auto_renew: rng.random_bool(0.6),
                cancelled_from: (status == "cancelled" && back == 0)
                    .then(|| start + Duration::days(90)),
            }
        })
        .collect();
    let first = terms.first().map_or(today, |t| t.start);
    let (town, region, postal_code) = TOWNS[i % TOWNS.len()];
    let (given, family) = (GIVEN[i % GIVEN.len()], FAMILY[(i / 3) % FAMILY.len()]);
    let club_tiers = match rng.random_range(0..10) {
        0..4 => Vec::new(),
        rank => vec![TierInput {
            club: "reader-club".into(),
            tier: ["Silver", "Gold", "Platinum"][(rank % 3) as usize].into(),
            rank: (rank % 3 + 1) as u8,
        }],
    };
    Reader {
        number: SubscriberNumber::from_sequence(100_000 + i as i64).value(),
        status: Some(status.into()),
        region: Some(region.into()),
        postal_code: Some(postal_code.into()),
        birth_year: Some(rng.random_range(1935..=2006)),
        tenure_days: u32::try_from((today - first).num_days().max(0)).unwrap_or(0),
        first_subscribed: Some(first),
        lifetime_revenue: terms.iter().map(|t| t.price_paid).sum(),
        share_of_wallet: rng.random_range(0.0..=1.0),
        terms,
        club_tiers,
        complaints: ComplaintInput {
            open: rng.random_range(0..2),
            total: rng.random_range(0..6),
            last_year: rng.random_range(0..3),
            breached: rng.random_range(0..2),
        },
        consents: PURPOSES
            .iter()
            .map(|p| (p.to_string(), rng.random_bool(0.5)))
            .collect(),
        attributes: BTreeMap::from([
            ("newsletter".into(), rng.random_bool(0.3).into()),
            ("source".into(), ["web", "phone", "agent"][i % 3].into()),
            ("visits".into(), rng.random_range(0..200).into()),
        ]),
        contact: Some(ContactInput {
            given_name: Some(given.into()),
            family_name: Some(family.into()),
            organisation_name: None,
            emails: vec![format!("reader{i}@example.org")],
            phones: vec![format!("+44 20 7946 {:04}", i % 10_000)],
            address_lines: vec![format!("{} High Street", i % 200 + 1)],
            city: Some(town.into()),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_readers_are_the_same_every_time_and_read_as_a_batch() {
        let today = NaiveDate::from_ymd_opt(2026, 11, 23).expect("date");
        let readers = readers(50, today);
        let again = super::readers(50, today);
        assert_eq!(
            readers
                .iter()
                .map(|r| r.lifetime_revenue)
                .collect::<Vec<_>>(),
            again.iter().map(|r| r.lifetime_revenue).collect::<Vec<_>>()
        );
        assert!(readers.iter().all(|r| !r.terms.is_empty()));
        let input = super::super::fixture::Input::Readers(readers);
        let (context, records) = input.into_batch(today).expect("a valid batch");
        assert_eq!(records.len(), 50);
        assert!(!context.publications.is_empty());
        assert!(records.iter().all(|r| r.contact.is_some()));
    }
}
