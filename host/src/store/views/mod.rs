//! The readership in the store: `ViewStore`, the snapshot the reader pipeline reads pages of
//! live readers from, and their records; `facts.rs` encodes the chunks of readers kept for
//! it, `sql.rs` holds the SQL both backends run.

pub(crate) mod facts;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::StoreResult;
use crate::domain::consent::ConsentPurpose;
use crate::domain::term::{Term, TermFact};
use crate::domain::{Consents, Profile};

/// The reads behind the views plugins get of readers.
#[async_trait]
pub trait ViewStore: Send + Sync {
    /// Live (unmerged) subscribers.
    async fn count_readers(&self) -> StoreResult<i64>;
    /// A snapshot of the readership to read pages from: every page sees the database as it
    /// was at the first (a read transaction on SQLite, REPEATABLE READ on PostgreSQL).
    async fn readership(&self) -> StoreResult<Box<dyn Readership>>;
    /// The live readers `first..=last` (one query, so one state of them), as one page.
    async fn readers_between(
        &self,
        first: i64,
        last: i64,
        with_profile: bool,
    ) -> StoreResult<GatheredPage>;
    /// Brings the kept chunks of the readers logged as changed up to date, from one snapshot
    /// of their tables, then deletes the log rows that snapshot saw. One host at a time does
    /// so (it holds a lease); the others skip it, as reading stays correct without it.
    async fn bring_facts_up_to_date(&self) -> StoreResult<FactsCaughtUp>;
}

/// What bringing the kept chunks up to date did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FactsCaughtUp {
    /// Log rows read and deleted.
    pub changes: u64,
    /// Chunks made again from the tables.
    pub chunks: u64,
    /// Another pass held the lease, so nothing was done.
    pub skipped: bool,
}

/// One snapshot of the readership, read page by page (see [`ViewStore::readership`]).
#[async_trait]
pub trait Readership: Send {
    /// The live readers above `after`, in order, each with its terms: the next chunks of
    /// them, at least `limit` sequences' worth. A chunk is read as kept unless one of its
    /// readers is logged as changed (then it is read from the tables, in this snapshot).
    async fn page(
        &mut self,
        after: i64,
        limit: i64,
        with_profile: bool,
    ) -> StoreResult<GatheredPage>;
}

/// A page of readers as the database gave it, to be decoded off the async threads.
pub struct GatheredPage {
    /// Readers at or below this sequence are not of the page.
    pub(super) after: i64,
    pub(super) parts: Vec<Part>,
    /// The profiles of the page's readers, when asked for, gathered into one value.
    pub(super) profiles: Option<String>,
    /// The last sequence the page covers; `None` for a page past the last reader.
    pub last: Option<i64>,
    pub(super) decode_gathered: fn(&str) -> StoreResult<Vec<Reader>>,
    pub(super) decode_profiles: fn(&str) -> StoreResult<Profiles>,
}

/// Profiles by sequence, in sequence order.
pub(super) type Profiles = Vec<(i64, Profile)>;

/// Readers of a page, in sequence order: a kept chunk's body, or readers gathered from their
/// tables into one JSON value.
pub(super) enum Part {
    Kept(Vec<u8>),
    Gathered(String),
}

impl GatheredPage {
    pub fn decode(&self) -> StoreResult<Vec<Reader>> {
        let mut readers = Vec::new();
        for part in &self.parts {
            let decoded = match part {
                Part::Kept(body) => facts::decode(body)?.ok_or_else(|| {
                    super::StoreError::Corrupt("a kept chunk of another format".into())
                })?,
                Part::Gathered(text) => (self.decode_gathered)(text)?,
            };
            readers.extend(decoded.into_iter().filter(|r| r.row.sequence > self.after));
        }
        if let Some(text) = &self.profiles {
            let mut profiles = (self.decode_profiles)(text)?.into_iter().peekable();
            for reader in &mut readers {
                while profiles
                    .next_if(|(sequence, _)| *sequence < reader.row.sequence)
                    .is_some()
                {}
                if let Some((_, profile)) =
                    profiles.next_if(|(sequence, _)| *sequence == reader.row.sequence)
                {
                    reader.row.profile = Some(profile);
                }
            }
        }
        Ok(readers)
    }

    /// Shows `visit` every reader of the page, in sequence order, as a filter reads them:
    /// those of kept chunks borrowed from their bytes, without decoding them into readers.
    pub fn glimpse(&self, visit: &mut dyn FnMut(&Glimpse<'_>)) -> StoreResult<()> {
        let profiles = match &self.profiles {
            Some(text) => (self.decode_profiles)(text)?,
            None => Vec::new(),
        };
        let mut profiles = profiles.iter().peekable();
        let mut visit = |glimpse: &Glimpse<'_>| {
            while profiles.next_if(|(s, _)| *s < glimpse.sequence).is_some() {}
            match profiles.next_if(|(s, _)| *s == glimpse.sequence) {
                Some((_, profile)) => visit(&Glimpse {
                    profile: Some(profile),
                    ..*glimpse
                }),
                None => visit(glimpse),
            }
        };
        for part in &self.parts {
            match part {
                Part::Kept(body) => {
                    facts::glimpse(body, self.after, &mut visit)?.ok_or_else(|| {
                        super::StoreError::Corrupt("a kept chunk of another format".into())
                    })?
                }
                Part::Gathered(text) => {
                    let readers = (self.decode_gathered)(text)?;
                    for reader in readers.iter().filter(|r| r.row.sequence > self.after) {
                        reader.glimpse(&mut visit);
                    }
                }
            }
        }
        Ok(())
    }

    /// The first reader's sequence the page may hold.
    pub fn first(&self) -> i64 {
        self.after + 1
    }
}

impl Reader {
    /// Shows `visit` this reader as a filter reads them.
    pub fn glimpse(&self, visit: &mut dyn FnMut(&Glimpse<'_>)) {
        let row = &self.row;
        let terms: Vec<TermFact<'_>> = self.terms.iter().map(Term::fact).collect();
        let granted: Vec<ConsentPurpose> = row
            .consents
            .iter()
            .filter(|(_, state)| state.granted)
            .map(|(purpose, _)| *purpose)
            .collect();
        visit(&Glimpse {
            sequence: row.sequence,
            region: row.region.as_deref(),
            postal_code: row.postal_code.as_deref(),
            birth_year: row.birth_year,
            country: row.country.as_deref(),
            relationship_level: &row.relationship_level,
            relationship_manager: row.relationship_manager,
            granted: &granted,
            erased: row.erased,
            terms: &terms,
            profile: row.profile.as_ref(),
        });
    }
}

/// A reader as a filter reads them, borrowed: from a kept chunk's bytes, or from a reader
/// decoded from their tables.
#[derive(Clone, Copy)]
pub struct Glimpse<'a> {
    pub sequence: i64,
    pub region: Option<&'a str>,
    pub postal_code: Option<&'a str>,
    pub birth_year: Option<u16>,
    pub country: Option<&'a str>,
    pub relationship_level: &'a str,
    pub relationship_manager: Option<i64>,
    /// The purposes consent is granted for.
    pub granted: &'a [ConsentPurpose],
    pub erased: bool,
    pub terms: &'a [TermFact<'a>],
    /// When the page was read with profiles.
    pub profile: Option<&'a Profile>,
}

/// A live reader as population-wide work reads it: the subscriber row and its terms.
#[derive(Debug, Clone)]
pub struct Reader {
    pub row: ReaderRow,
    /// Oldest first, without holds, discounts, or the reason and author of a cancellation.
    pub terms: Vec<Term>,
}

/// What a plugin view of a reader needs from the subscriber row.
#[derive(Debug, Clone)]
pub struct ReaderRow {
    pub sequence: i64,
    pub region: Option<String>,
    pub postal_code: Option<String>,
    pub birth_year: Option<u16>,
    pub country: Option<String>,
    pub relationship_level: String,
    pub relationship_manager: Option<i64>,
    pub consents: Consents,
    /// Read only when a plugin may see contact details or attributes.
    pub profile: Option<Profile>,
    /// Filled only for plugins that read complaints.
    pub complaints: ComplaintTally,
    /// Personal data removed: such a reader holds no club tier.
    pub erased: bool,
    /// `(club, tier, rank)` with rank 1 for a club's lowest tier; filled only for plugins that
    /// read club tiers.
    pub club_tiers: Vec<(String, String, u8)>,
}

/// A reader's complaints, as plugins see them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ComplaintTally {
    /// When the oldest complaint still unresolved was opened.
    pub oldest_open: Option<DateTime<Utc>>,
    /// Not yet resolved.
    pub open: u32,
    pub total: u32,
    /// Opened in the last 365 days.
    pub last_year: u32,
    /// A response or resolution came after its due time, or is missing past it.
    pub breached: u32,
}
