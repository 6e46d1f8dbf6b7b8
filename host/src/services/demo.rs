//! A believable publisher, generated: titles with yearly price rises, and readers with
//! renewal histories (long-standing readers, recent churn, gaps, lapses and win-backs), names
//! in English, Russian and Chinese script, and near-duplicates for the dedupe paths. The
//! same seed always gives the same data. It is written as the import's two CSV files, so it
//! loads through the same checked path as a real circulation file.

use std::io::Write;

use chrono::{Datelike, NaiveDate};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::domain::club::rule::Rule;
use crate::domain::club::{ClubDraft, Perks, TierDraft};
use crate::domain::publication::{
    Format, PriceEntry, PriceListDraft, PublicationCode, PublicationDraft, PublicationKind,
};
use crate::domain::term::last_day;

const ENGLISH_GIVEN: &[&str] = &[
    "Margaret",
    "John",
    "Elizabeth",
    "Thomas",
    "Sarah",
    "James",
    "Emily",
    "William",
    "Olivia",
    "George",
    "Alice",
    "Henry",
    "Charlotte",
    "Edward",
    "Grace",
    "Arthur",
];
const ENGLISH_FAMILY: &[&str] = &[
    "Hale", "Thornton", "Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Evans",
    "Walker", "Wright", "Robinson", "Thompson", "White", "Hughes", "Green", "Hall", "Wood",
];
const RUSSIAN_GIVEN: &[&str] = &["Анна", "Иван", "Ольга", "Алексей", "Наталья", "Дмитрий"];
const RUSSIAN_FAMILY: &[&str] = &["Иванова", "Петров", "Соколова", "Смирнов", "Кузнецова"];
const CHINESE_GIVEN: &[&str] = &["伟", "芳", "娜", "敏", "静", "强"];
const CHINESE_FAMILY: &[&str] = &["王", "李", "张", "刘", "陈", "杨"];
/// Towns with their region and postcode area.
const TOWNS: &[(&str, &str, &str)] = &[
    ("London", "Greater London", "SW"),
    ("Manchester", "Greater Manchester", "M"),
    ("Leeds", "West Yorkshire", "LS"),
    ("Bristol", "Bristol", "BS"),
    ("Glasgow", "Scotland", "G"),
    ("Cardiff", "Wales", "CF"),
    ("Norwich", "Norfolk", "NR"),
    ("Exeter", "Devon", "EX"),
];
const CHANNELS: &[&str] = &["phone", "web", "agent", "kiosk", "post"];
const PAYMENTS: &[&str] = &["direct_debit", "card", "invoice", "bank_transfer"];

/// The first year with a price list, and the year the data runs to.
const FIRST_YEAR: i32 = 2000;

/// The catalogue: four titles with a price list a year, prices rising about 3 % a year.
/// The demo publisher's reader club: Silver, Gold and Platinum, earned by tenure, spend and
/// titles held, with renewal discounts and event access from Gold up.
pub fn club() -> ClubDraft {
    let tier = |code: &str, name: &str, rule: Rule, percent: f64, events: bool| TierDraft {
        code: code.into(),
        name: name.into(),
        rule,
        perks: Perks {
            renewal_discount_percent: percent,
            event_access: events,
        },
    };
    let complaints = || Rule::NoOpenComplaint {
        older_than_days: 30,
    };
    ClubDraft {
        code: "reader-club".into(),
        name: "The Courier Reader Club".into(),
        description: Some("Thanks our most loyal readers with lower renewals and events".into()),
        tiers: vec![
            tier(
                "silver",
                "Silver",
                Rule::Any(vec![
                    Rule::Tenure { min_years: 3 },
                    Rule::Spend {
                        min: 30_000,
                        months: 24,
                    },
                ]),
                2.0,
                false,
            ),
            tier(
                "gold",
                "Gold",
                Rule::All(vec![
                    Rule::Tenure { min_years: 8 },
                    Rule::Titles { min: 2 },
                    complaints(),
                ]),
                5.0,
                true,
            ),
            tier(
                "platinum",
                "Platinum",
                Rule::All(vec![
                    Rule::Tenure { min_years: 15 },
                    Rule::Spend {
                        min: 60_000,
                        months: 24,
                    },
                    complaints(),
                ]),
                8.0,
                true,
            ),
        ],
    }
}

pub fn catalogue(until_year: i32) -> Vec<(PublicationDraft, Vec<PriceListDraft>)> {
    let titles = [
        (
            "DAILY",
            "The Daily Courier",
            PublicationKind::Daily,
            vec![Format::Print, Format::Digital, Format::Bundle],
            vec![1, 3, 6, 12],
            24_000,
        ),
        (
            "SUNDAY",
            "The Sunday Courier",
            PublicationKind::Weekly,
            vec![Format::Print, Format::Digital],
            vec![6, 12],
            9_000,
        ),
        (
            "GARDENS",
            "Gardens & Homes",
            PublicationKind::Magazine,
            vec![Format::Print, Format::Digital],
            vec![12],
            6_000,
        ),
        (
            "REVIEW",
            "The Economic Review",
            PublicationKind::Magazine,
            vec![Format::Digital],
            vec![12, 24],
            15_000,
        ),
    ];
    titles
        .into_iter()
        .map(|(code, title, kind, formats, term_months, base)| {
            let draft = PublicationDraft {
                code: PublicationCode::parse(code).unwrap_or_else(|e| unreachable!("{e}")),
                title: title.into(),
                kind,
                formats: formats.clone(),
                term_months: term_months.clone(),
                on_sale: true,
            };
            let lists = (FIRST_YEAR..=until_year)
                .filter_map(|year| {
                    let yearly = base as f64 * 1.03_f64.powi(year - FIRST_YEAR);
                    let prices = formats
                        .iter()
                        .flat_map(|format| {
                            let factor = match format {
                                Format::Print => 1.0,
                                Format::Digital => 0.6,
                                Format::Bundle => 1.15,
                            };
                            term_months.iter().map(move |months| PriceEntry {
                                format: *format,
                                months: *months,
                                // Shorter terms cost more a month; whole pence.
                                amount: (yearly * factor * f64::from(*months) / 12.0
                                    * if *months < 12 { 1.1 } else { 1.0 })
                                .round() as i64,
                            })
                        })
                        .collect();
                    Some(PriceListDraft {
                        effective_from: NaiveDate::from_ymd_opt(year, 1, 1)?,
                        prices,
                    })
                })
                .collect();
            (draft, lists)
        })
        .collect()
}

/// What was generated.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct DemoSummary {
    pub subscribers: usize,
    pub near_duplicates: usize,
    pub terms: usize,
}

/// Writes `subscribers.csv` and `terms.csv` for `n` readers with terms up to `today`.
pub fn write_circulation(
    n: usize,
    seed: u64,
    today: NaiveDate,
    mut readers: impl Write,
    mut terms: impl Write,
) -> std::io::Result<DemoSummary> {
    let mut rng = StdRng::seed_from_u64(seed);
    let catalogue = catalogue(today.year());
    let mut summary = DemoSummary::default();
    writeln!(
        readers,
        "legacy_id,kind,given_name,family_name,email,phone,street,postal_code,city,region,country,birth_date"
    )?;
    writeln!(
        terms,
        "legacy_id,publication,format,months,start,list_price,price_paid,discount_reason,channel,payment_method,auto_renew,cancelled_effective,cancel_reason"
    )?;
    for i in 0..n {
        let (given, family) = name(&mut rng);
        let (town, region, postal) = address(i);
        let born = 1930 + rng.random_range(0..75);
        let street = format!(
            "{} {} Road",
            rng.random_range(1..200),
            ENGLISH_FAMILY[rng.random_range(0..ENGLISH_FAMILY.len())]
        );
        writeln!(
            readers,
            "R{i},person,{given},{family},reader{i}@example.org,074{:08},{street},{postal},{town},{region},GB,{born}-{:02}-{:02}",
            i,
            rng.random_range(1..13),
            rng.random_range(1..29)
        )?;
        summary.subscribers += 1;
        // One in a hundred readers exists twice: another spelling and email, and the postcode
        // of a previous address, so the import cannot tell them apart; staff can.
        if rng.random_ratio(1, 100) {
            let (_, _, old_postal) = address(i + n);
            writeln!(
                readers,
                "R{i}-dup,person,{},{family},{}.{}@example.net,,{street},{old_postal},{town},{region},GB,",
                given.chars().take(3).collect::<String>(),
                given.to_lowercase(),
                i
            )?;
            summary.near_duplicates += 1;
        }
        summary.terms += history(&mut rng, &format!("R{i}"), &catalogue, today, &mut terms)?;
    }
    Ok(summary)
}

/// Town, region and a postcode of its area, different for each `i` below 3 million, so
/// that two readers of the same name are never taken for one.
fn address(i: usize) -> (&'static str, &'static str, String) {
    const LETTERS: &[u8] = b"ABDEFGHJLNPQRSTUWXYZ";
    let letters = LETTERS.len();
    let (town, region, area) = TOWNS[i % TOWNS.len()];
    let rest = i / TOWNS.len();
    let postal = format!(
        "{area}{} {}{}{}",
        rest / (10 * letters * letters) % 99 + 1,
        rest / (letters * letters) % 10,
        LETTERS[rest / letters % letters] as char,
        LETTERS[rest % letters] as char,
    );
    (town, region, postal)
}

fn name(rng: &mut StdRng) -> (&'static str, &'static str) {
    let pick = |rng: &mut StdRng, list: &[&'static str]| list[rng.random_range(0..list.len())];
    match rng.random_range(0..100) {
        0..80 => (pick(rng, ENGLISH_GIVEN), pick(rng, ENGLISH_FAMILY)),
        80..92 => (pick(rng, RUSSIAN_GIVEN), pick(rng, RUSSIAN_FAMILY)),
        _ => (pick(rng, CHINESE_GIVEN), pick(rng, CHINESE_FAMILY)),
    }
}

/// One reader's terms: a start year skewed towards recent years (with long-standing readers
/// back to 2000), yearly renewals, an occasional gap or lapse, and a win-back for some.
fn history(
    rng: &mut StdRng,
    legacy_id: &str,
    catalogue: &[(PublicationDraft, Vec<PriceListDraft>)],
    today: NaiveDate,
    out: &mut impl Write,
) -> std::io::Result<usize> {
    let (publication, lists) = &catalogue[match rng.random_range(0..10) {
        0..6 => 0,
        6..8 => 1,
        8 => 2,
        _ => 3,
    }];
    let span = today.year() - FIRST_YEAR;
    // Squaring a uniform draw puts most first subscriptions in recent years.
    let back = (f64::from(span) * rng.random::<f64>().powi(2)) as i32;
    let Some(mut start) = NaiveDate::from_ymd_opt(today.year() - back, rng.random_range(1..13), 1)
    else {
        return Ok(0);
    };
    let format = publication.formats[rng.random_range(0..publication.formats.len())];
    let months = *publication.term_months.last().unwrap_or(&12);
    let channel = CHANNELS[rng.random_range(0..CHANNELS.len())];
    let payment = PAYMENTS[rng.random_range(0..PAYMENTS.len())];
    let mut written = 0;
    while start <= today {
        let Some(list) = crate::domain::publication::list_in_force(lists, start) else {
            break;
        };
        let price = list.price(format, months).unwrap_or(0);
        let (paid, reason) = if rng.random_ratio(1, 5) {
            (price * 9 / 10, "retention offer")
        } else {
            (price, "")
        };
        let end = last_day(start, months);
        // Recent churn: one reader in twenty-five cancels a term part-way.
        let cancelled = rng.random_ratio(1, 25);
        let cancel = if cancelled {
            let effective = start + chrono::Days::new(rng.random_range(30..300));
            format!("{effective},moved away")
        } else {
            ",".to_owned()
        };
        writeln!(
            out,
            "{legacy_id},{},{},{months},{start},{price},{paid},{reason},{channel},{payment},{},{cancel}",
            publication.code,
            format.as_str(),
            rng.random_ratio(1, 2)
        )?;
        written += 1;
        if cancelled {
            break;
        }
        let next = end.succ_opt().unwrap_or(end);
        start = match rng.random_range(0..100) {
            // Renewed on time.
            0..85 => next,
            // Renewed late, inside the grace period.
            85..92 => next + chrono::Days::new(rng.random_range(1..25)),
            // Lapsed, and won back a year or two later.
            92..96 => next + chrono::Days::new(rng.random_range(200..800)),
            // Lapsed for good.
            _ => break,
        };
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn generate(seed: u64) -> (Vec<u8>, Vec<u8>, DemoSummary) {
        let (mut readers, mut terms) = (Vec::new(), Vec::new());
        let today = NaiveDate::from_ymd_opt(2026, 11, 23).unwrap();
        let summary = write_circulation(500, seed, today, &mut readers, &mut terms).unwrap();
        (readers, terms, summary)
    }

    #[test]
    fn the_same_seed_gives_the_same_publisher() {
        assert_eq!(generate(7), generate(7));
        assert_ne!(generate(7).0, generate(8).0);
    }

    #[test]
    fn the_data_has_the_shapes_the_product_must_handle() {
        let (readers, terms, summary) = generate(1);
        let readers = String::from_utf8(readers).unwrap();
        let terms = String::from_utf8(terms).unwrap();
        assert_eq!(summary.subscribers, 500);
        assert!(summary.near_duplicates > 0);
        assert!(readers.contains("Иван") || readers.contains("Анна") || readers.contains("Ольга"));
        assert!(
            readers
                .chars()
                .any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c))
        );
        assert!(terms.contains("moved away"), "some cancellations");
        assert!(terms.contains("retention offer"), "some discounts");
        assert!(
            terms.contains(",2000-") || terms.contains(",2001-") || terms.contains(",2002-"),
            "long-standing readers"
        );
        assert!(summary.terms > summary.subscribers * 2);
    }

    #[test]
    fn every_price_list_prices_what_its_title_sells() {
        for (draft, lists) in catalogue(2026) {
            assert_eq!(lists.len(), 27);
            for list in lists {
                assert!(list.check(&draft).is_ok(), "{}", draft.code);
            }
        }
    }
}
