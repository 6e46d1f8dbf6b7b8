//! The compact encoding of `reader_facts`: the live readers of one chunk of consecutive
//! sequences, with the facts population-wide work reads of their rows and terms, in postcard
//! with days and instants as integers, so that a pass decodes a reader in well under a
//! microsecond instead of parsing JSON dates and strings.

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::consent::{ConsentChannel, ConsentPurpose, ConsentState};
use crate::domain::money::{Currency, Money};
use crate::domain::publication::{Format, PublicationCode};
use crate::domain::term::{Cancellation, PaymentMethod, SalesChannel, Term};
use crate::store::{ComplaintTally, Reader, ReaderRow, StoreError, StoreResult};

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

#[derive(Serialize, Deserialize)]
struct ReaderFacts {
    sequence: i64,
    region: Option<String>,
    postal_code: Option<String>,
    birth_year: Option<u16>,
    country: Option<String>,
    relationship_level: String,
    relationship_manager: Option<i64>,
    consents: Vec<ConsentFacts>,
    erased: bool,
    terms: Vec<TermFacts>,
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
struct TermFacts {
    id: i64,
    publication: String,
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
    let facts: Vec<ReaderFacts> = readers.iter().map(reader_facts).collect();
    postcard::to_extend(&facts, vec![FORMAT])
        .map_err(|e| StoreError::Corrupt(format!("encoding a chunk of readers: {e}")))
}

/// Whether a body is of the format this build writes.
pub fn is_current(body: &[u8]) -> bool {
    body.first() == Some(&FORMAT)
}

/// The readers of a chunk's body, or `None` for a body of another format.
pub fn decode(body: &[u8]) -> StoreResult<Option<Vec<Reader>>> {
    let Some((&FORMAT, rest)) = body.split_first() else {
        return Ok(None);
    };
    let facts: Vec<ReaderFacts> = postcard::from_bytes(rest)
        .map_err(|e| StoreError::Corrupt(format!("a chunk of readers: {e}")))?;
    facts
        .into_iter()
        .map(reader)
        .collect::<StoreResult<_>>()
        .map(Some)
}

fn reader_facts(reader: &Reader) -> ReaderFacts {
    let row = &reader.row;
    ReaderFacts {
        sequence: row.sequence,
        region: row.region.clone(),
        postal_code: row.postal_code.clone(),
        birth_year: row.birth_year,
        country: row.country.clone(),
        relationship_level: row.relationship_level.clone(),
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

fn term_facts(term: &Term) -> TermFacts {
    TermFacts {
        id: term.id,
        publication: term.publication.as_str().to_owned(),
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

fn reader(facts: ReaderFacts) -> StoreResult<Reader> {
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
            region: facts.region,
            postal_code: facts.postal_code,
            birth_year: facts.birth_year,
            country: facts.country,
            relationship_level: facts.relationship_level,
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

fn term(facts: TermFacts) -> StoreResult<Term> {
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
        publication: PublicationCode::from_stored(facts.publication)
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

    #[test]
    fn chunks_hold_consecutive_sequences() {
        assert_eq!(chunk_of(100_000), 97);
        assert_eq!(bounds(97), (99_328, 100_351));
        assert_eq!(chunk_of(bounds(98).0), 98);
        assert_eq!(chunk_of(bounds(98).0 - 1), 97);
    }
}
