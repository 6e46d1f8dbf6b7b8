//! The compact encoding of `reader_facts`: the live readers of one chunk of consecutive
//! sequences, with the facts population-wide work reads of their rows and terms, in postcard
//! with days and instants as integers, so that a pass decodes a reader in well under a
//! microsecond instead of parsing JSON dates and strings.

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::consent::{ConsentChannel, ConsentPurpose, ConsentState};
use crate::domain::money::{Currency, Money};
use crate::domain::publication::{Format, PublicationCode};
use crate::domain::term::{Cancellation, PaymentMethod, SalesChannel, Span, Term, TermFact};
use crate::store::{ComplaintTally, Glimpse, Reader, ReaderRow, StoreError, StoreResult};

/// Sequences a chunk holds: chunk `c` holds `c * CHUNK ..= c * CHUNK + CHUNK - 1`.
pub const CHUNK: i64 = 1024;

/// The first byte of every body. Enumerations are stored by their place in their
/// declaration, so reordering one (or changing what is stored) must change this, with a
/// migration logging every reader as changed: until a pass has made a chunk of another
/// format again, its readers are read from their tables.
const FORMAT: u8 = 1;

/// The chunk a sequence belongs to.
pub fn chunk_of(sequence: i64) -> i64 {
    sequence.div_euclid(CHUNK)
}

/// The first and last sequence of a chunk.
pub fn bounds(chunk: i64) -> (i64, i64) {
    (chunk * CHUNK, chunk * CHUNK + CHUNK - 1)
}

/// A reader as a chunk holds them, its text borrowed: from the reader while encoding, from
/// the chunk's bytes while decoding.
#[derive(Serialize, Deserialize)]
struct ReaderFacts<'a> {
    sequence: i64,
    #[serde(borrow)]
    region: Option<&'a str>,
    #[serde(borrow)]
    postal_code: Option<&'a str>,
    birth_year: Option<u16>,
    #[serde(borrow)]
    country: Option<&'a str>,
    relationship_level: &'a str,
    relationship_manager: Option<i64>,
    consents: Vec<ConsentFacts>,
    erased: bool,
    #[serde(borrow)]
    terms: Vec<TermFacts<'a>>,
}

#[derive(Serialize, Deserialize)]
struct ConsentFacts {
    purpose: ConsentPurpose,
    granted: bool,
    channel: ConsentChannel,
    changed_at: Stamp,
}

/// A term without its holds, discounts, or the reason and author of its cancellation: what
/// population-wide work reads of a term.
#[derive(Serialize, Deserialize)]
struct TermFacts<'a> {
    id: i64,
    publication: &'a str,
    format: Format,
    months: u32,
    start: i32,
    end: i32,
    extension_days: i64,
    currency: [u8; 3],
    list_price: i64,
    price_paid: i64,
    channel: SalesChannel,
    payment_method: PaymentMethod,
    auto_renew: bool,
    renews: Option<i64>,
    /// The first day no longer served, and the instant the cancellation was recorded.
    cancelled: Option<(i32, Stamp)>,
    refund: Option<i64>,
    created_at: Stamp,
}

/// An instant as whole seconds and nanoseconds, as exact as the tables hold it.
type Stamp = (i64, u32);

/// The body of a chunk holding `readers` (in sequence order, without profiles).
pub fn encode(readers: &[Reader]) -> StoreResult<Vec<u8>> {
    let facts: Vec<ReaderFacts<'_>> = readers.iter().map(reader_facts).collect();
    postcard::to_extend(&facts, vec![FORMAT])
        .map_err(|e| StoreError::Corrupt(format!("encoding a chunk of readers: {e}")))
}

/// Whether a body is of the format this build writes.
pub fn is_current(body: &[u8]) -> bool {
    body.first() == Some(&FORMAT)
}

/// The readers of a chunk's body, or `None` for a body of another format.
pub fn decode(body: &[u8]) -> StoreResult<Option<Vec<Reader>>> {
    let Some(facts) = facts_of(body)? else {
        return Ok(None);
    };
    facts
        .into_iter()
        .map(reader)
        .collect::<StoreResult<_>>()
        .map(Some)
}

/// Shows `visit` each reader of a chunk's body above `after` as a filter reads them, borrowed
/// from the body: nothing is made per reader but the list of their terms. `None` for a body
/// of another format.
pub fn glimpse(
    body: &[u8],
    after: i64,
    visit: &mut dyn FnMut(&Glimpse<'_>),
) -> StoreResult<Option<()>> {
    let Some(facts) = facts_of(body)? else {
        return Ok(None);
    };
    let (mut terms, mut granted) = (Vec::new(), Vec::new());
    for facts in facts.iter().filter(|f| f.sequence > after) {
        terms.clear();
        for term in &facts.terms {
            terms.push(term_fact(term)?);
        }
        granted.clear();
        granted.extend(
            facts
                .consents
                .iter()
                .filter(|c| c.granted)
                .map(|c| c.purpose),
        );
        visit(&Glimpse {
            sequence: facts.sequence,
            region: facts.region,
            postal_code: facts.postal_code,
            birth_year: facts.birth_year,
            country: facts.country,
            relationship_level: facts.relationship_level,
            relationship_manager: facts.relationship_manager,
            granted: &granted,
            erased: facts.erased,
            terms: &terms,
            profile: None,
        });
    }
    Ok(Some(()))
}

fn facts_of(body: &[u8]) -> StoreResult<Option<Vec<ReaderFacts<'_>>>> {
    let Some((&FORMAT, rest)) = body.split_first() else {
        return Ok(None);
    };
    postcard::from_bytes(rest)
        .map(Some)
        .map_err(|e| StoreError::Corrupt(format!("a chunk of readers: {e}")))
}

fn reader_facts(reader: &Reader) -> ReaderFacts<'_> {
    let row = &reader.row;
    ReaderFacts {
        sequence: row.sequence,
        region: row.region.as_deref(),
        postal_code: row.postal_code.as_deref(),
        birth_year: row.birth_year,
        country: row.country.as_deref(),
        relationship_level: &row.relationship_level,
        relationship_manager: row.relationship_manager,
        consents: row
            .consents
            .iter()
            .map(|(purpose, state)| ConsentFacts {
                purpose: *purpose,
                granted: state.granted,
                channel: state.channel,
                changed_at: stamp(state.changed_at),
            })
            .collect(),
        erased: row.erased,
        terms: reader.terms.iter().map(term_facts).collect(),
    }
}

fn term_facts(term: &Term) -> TermFacts<'_> {
    TermFacts {
        id: term.id,
        publication: term.publication.as_str(),
        format: term.format,
        months: term.months,
        start: day(term.start),
        end: day(term.end),
        extension_days: term.extension_days,
        currency: term.price_paid.currency.bytes(),
        list_price: term.list_price.amount,
        price_paid: term.price_paid.amount,
        channel: term.channel,
        payment_method: term.payment_method,
        auto_renew: term.auto_renew,
        renews: term.renews,
        cancelled: term
            .cancellation
            .as_ref()
            .map(|c| (day(c.effective), stamp(c.recorded_at))),
        refund: term
            .cancellation
            .as_ref()
            .and_then(|c| c.refund)
            .map(|r| r.amount),
        created_at: stamp(term.created_at),
    }
}

fn reader(facts: ReaderFacts<'_>) -> StoreResult<Reader> {
    let consents = facts
        .consents
        .into_iter()
        .map(|c| {
            Ok((
                c.purpose,
                ConsentState {
                    granted: c.granted,
                    channel: c.channel,
                    changed_at: instant(c.changed_at)?,
                },
            ))
        })
        .collect::<StoreResult<_>>()?;
    Ok(Reader {
        row: ReaderRow {
            sequence: facts.sequence,
            region: facts.region.map(str::to_owned),
            postal_code: facts.postal_code.map(str::to_owned),
            birth_year: facts.birth_year,
            country: facts.country.map(str::to_owned),
            relationship_level: facts.relationship_level.to_owned(),
            relationship_manager: facts.relationship_manager,
            consents,
            profile: None,
            complaints: ComplaintTally::default(),
            erased: facts.erased,
            club_tiers: Vec::new(),
        },
        terms: facts
            .terms
            .into_iter()
            .map(term)
            .collect::<StoreResult<_>>()?,
    })
}

/// What a filter reads of a term as a chunk holds it.
fn term_fact<'a>(facts: &TermFacts<'a>) -> StoreResult<TermFact<'a>> {
    let start = date(facts.start)?;
    let cancelled_from = facts
        .cancelled
        .map(|(effective, _)| date(effective))
        .transpose()?;
    Ok(TermFact {
        publication: facts.publication,
        format: facts.format,
        start,
        span: Span::served(start, date(facts.end)?, cancelled_from),
        revenue: facts.price_paid - facts.refund.unwrap_or(0),
    })
}

fn term(facts: TermFacts<'_>) -> StoreResult<Term> {
    let currency = Currency::from_bytes(facts.currency).map_err(StoreError::Corrupt)?;
    let money = |amount| Money::new(amount, currency);
    let cancellation = match facts.cancelled {
        Some((effective, recorded_at)) => Some(Cancellation {
            effective: date(effective)?,
            reason: String::new(),
            refund: facts.refund.map(money),
            recorded_at: instant(recorded_at)?,
            recorded_by: String::new(),
        }),
        None => None,
    };
    Ok(Term {
        id: facts.id,
        publication: PublicationCode::from_stored(facts.publication.to_owned())
            .map_err(StoreError::Corrupt)?,
        format: facts.format,
        months: facts.months,
        start: date(facts.start)?,
        end: date(facts.end)?,
        extension_days: facts.extension_days,
        list_price: money(facts.list_price),
        discounts: Vec::new(),
        price_paid: money(facts.price_paid),
        channel: facts.channel,
        payment_method: facts.payment_method,
        auto_renew: facts.auto_renew,
        renews: facts.renews,
        holds: Vec::new(),
        cancellation,
        created_at: instant(facts.created_at)?,
    })
}

fn day(date: NaiveDate) -> i32 {
    date.num_days_from_ce()
}

fn date(day: i32) -> StoreResult<NaiveDate> {
    NaiveDate::from_num_days_from_ce_opt(day)
        .ok_or_else(|| StoreError::Corrupt(format!("day {day} of a chunk of readers")))
}

fn stamp(at: DateTime<Utc>) -> Stamp {
    (at.timestamp(), at.timestamp_subsec_nanos())
}

fn instant((seconds, nanos): Stamp) -> StoreResult<DateTime<Utc>> {
    DateTime::from_timestamp(seconds, nanos)
        .ok_or_else(|| StoreError::Corrupt(format!("instant {seconds} of a chunk of readers")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chunk_of_another_format_is_stale_not_corrupt() {
        assert!(decode(&[]).unwrap().is_none());
        assert!(decode(&[FORMAT + 1, 0]).unwrap().is_none());
        assert!(decode(&encode(&[]).unwrap()).unwrap().unwrap().is_empty());
    }

    fn term(id: i64, publication: &str, start: NaiveDate, paid: i64) -> Term {
        let eur = Currency::from_bytes(*b"EUR").unwrap();
        Term {
            id,
            publication: PublicationCode::parse(publication).unwrap(),
            format: Format::Print,
            months: 12,
            start,
            end: start + chrono::Days::new(364),
            extension_days: 0,
            list_price: Money::new(paid, eur),
            discounts: Vec::new(),
            price_paid: Money::new(paid, eur),
            channel: SalesChannel::Web,
            payment_method: PaymentMethod::Card,
            auto_renew: false,
            renews: None,
            holds: Vec::new(),
            cancellation: None,
            created_at: DateTime::from_timestamp(1_700_000_000, 5).unwrap(),
        }
    }

    fn sample(sequence: i64) -> Reader {
        let at = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let day = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).unwrap();
        let mut cut = term(2, "WEEKLY", day(2025, 3, 1), 9_000);
        cut.cancellation = Some(Cancellation {
            effective: day(2025, 6, 1),
            reason: "moved".into(),
            refund: Some(Money::new(2_500, cut.price_paid.currency)),
            recorded_at: at,
            recorded_by: "desk".into(),
        });
        let state = |granted| ConsentState {
            granted,
            channel: ConsentChannel::Web,
            changed_at: at,
        };
        Reader {
            row: ReaderRow {
                sequence,
                region: Some("Bretagne".into()),
                postal_code: Some("29200".into()),
                birth_year: Some(1961),
                country: Some("FR".into()),
                relationship_level: "proactive".into(),
                relationship_manager: Some(4),
                consents: [
                    (ConsentPurpose::MarketingEmail, state(true)),
                    (ConsentPurpose::MarketingPhone, state(false)),
                ]
                .into(),
                profile: None,
                complaints: ComplaintTally::default(),
                erased: false,
                club_tiers: Vec::new(),
            },
            terms: vec![term(1, "DAILY", day(2020, 1, 1), 30_000), cut],
        }
    }

    /// What a filter reads of a glimpse, to compare two of them.
    type Seen = (
        i64,
        Option<String>,
        Option<String>,
        Option<u16>,
        Option<String>,
        String,
        Option<i64>,
        Vec<ConsentPurpose>,
        bool,
        String,
    );

    fn seen(glimpse: &Glimpse<'_>) -> Seen {
        (
            glimpse.sequence,
            glimpse.region.map(str::to_owned),
            glimpse.postal_code.map(str::to_owned),
            glimpse.birth_year,
            glimpse.country.map(str::to_owned),
            glimpse.relationship_level.to_owned(),
            glimpse.relationship_manager,
            glimpse.granted.to_vec(),
            glimpse.erased,
            format!("{:?}", glimpse.terms),
        )
    }

    #[test]
    fn a_glimpse_of_the_bytes_reads_as_the_decoded_reader_does() {
        let readers = [sample(5), sample(9)];
        let body = encode(&readers).unwrap();
        let mut borrowed = Vec::new();
        glimpse(&body, 5, &mut |g| borrowed.push(seen(g)))
            .unwrap()
            .unwrap();
        let mut decoded = Vec::new();
        for reader in decode(&body).unwrap().unwrap().iter().skip(1) {
            reader.glimpse(&mut |g| decoded.push(seen(g)));
        }
        assert_eq!(
            borrowed.len(),
            1,
            "readers at or below `after` are left out"
        );
        assert_eq!(borrowed, decoded);
        let cut = &readers[1].terms[1];
        assert!(borrowed[0].9.contains(&format!("{:?}", cut.fact())));
        assert_eq!(cut.fact().revenue, 6_500);
        assert_eq!(
            cut.fact().span.last,
            NaiveDate::from_ymd_opt(2025, 5, 31).unwrap()
        );
        assert_eq!(borrowed[0].7, [ConsentPurpose::MarketingEmail]);
    }

    #[test]
    fn chunks_hold_consecutive_sequences() {
        assert_eq!(chunk_of(100_000), 97);
        assert_eq!(bounds(97), (99_328, 100_351));
        assert_eq!(chunk_of(bounds(98).0), 98);
        assert_eq!(chunk_of(bounds(98).0 - 1), 97);
    }
}
