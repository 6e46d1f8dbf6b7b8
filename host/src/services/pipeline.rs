//! The reader pipeline: the one path population-wide work (segment refreshes, campaign
//! previews, offers, club recomputations) reads readers by. A pass first brings the kept
//! chunks of changed readers up to date, then reads the chunks from one snapshot, decodes
//! them on the blocking pool while the next are read, gives them the complaint tallies and
//! club tiers the work asks for, and hands them on a page at a time.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use futures::stream::{self, BoxStream};
use tokio::sync::watch;

use crate::domain::plugin::{Field, FieldSet};
use crate::store::{
    ComplaintTally, GatheredPage, Reader, Readership, Store, StoreError, StoreResult,
};

/// Pages decoded at once, beside the one being read.
const DECODING: usize = 2;

/// How often a serving host brings the kept chunks up to date when no pass has.
pub const KEEP_UP_EVERY: Duration = Duration::from_secs(60);

/// What a pass reads of each reader beyond its row and terms.
#[derive(Debug, Clone, Copy)]
pub struct Needs {
    /// The complaint tallies and club tiers are read when these fields name them.
    pub fields: FieldSet,
    /// The profile (contact details and custom attributes).
    pub profile: bool,
}

impl Needs {
    /// What a plugin whose manifest reads `fields` needs.
    pub fn of(fields: FieldSet) -> Self {
        Self {
            fields,
            profile: fields.contains(Field::Attributes) || fields.contains(Field::Contact),
        }
    }
}

/// Reads readers for population-wide work.
#[derive(Clone)]
pub struct Pipeline {
    store: Arc<dyn Store>,
}

impl Pipeline {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self { store }
    }

    /// Every live reader in sequence order, at most `page` at a time, all from one snapshot.
    pub fn pages(
        &self,
        needs: Needs,
        page: i64,
        now: DateTime<Utc>,
    ) -> BoxStream<'static, StoreResult<Vec<Reader>>> {
        let store = Arc::clone(&self.store);
        let size = usize::try_from(page.max(1)).unwrap_or(usize::MAX);
        self.gathered(needs, page)
            .map(move |gathered| {
                let store = Arc::clone(&store);
                async move { complete(&*store, needs, gathered?, now).await }
            })
            .buffered(DECODING)
            .flat_map(move |readers| match readers {
                Ok(readers) => stream::iter(split(readers, size).into_iter().map(Ok)).left_stream(),
                Err(e) => stream::once(async { Err(e) }).right_stream(),
            })
            .boxed()
    }

    /// Every live reader in sequence order, as the database gives them, at least `page` at a
    /// time, all from one snapshot: for work that reads them borrowed (see
    /// [`GatheredPage::glimpse`]) rather than decoded.
    pub fn gathered(
        &self,
        needs: Needs,
        page: i64,
    ) -> BoxStream<'static, StoreResult<GatheredPage>> {
        let page = page.max(1);
        let start = Some(Cursor::Start(Arc::clone(&self.store)));
        stream::unfold(start, move |cursor| next(cursor, page, needs.profile)).boxed()
    }

    /// What `fields` reads of the live readers `first..=last` beyond their rows and terms.
    pub async fn facts(
        &self,
        fields: FieldSet,
        first: i64,
        last: i64,
        now: DateTime<Utc>,
    ) -> StoreResult<PageFacts> {
        PageFacts::read(&*self.store, fields, first, last, now).await
    }

    /// The live readers `first..=last`, in sequence order. Decoded here: a range is one
    /// reader or one page, which costs less to decode than to hand to another thread.
    pub async fn range(
        &self,
        needs: Needs,
        first: i64,
        last: i64,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<Reader>> {
        let gathered = self
            .store
            .readers_between(first, last, needs.profile)
            .await?;
        let mut readers = gathered.decode()?;
        attach_facts(&*self.store, needs.fields, &mut readers, now).await?;
        Ok(readers)
    }
}

/// Brings the kept chunks up to date every `every` until `shutdown` turns true, so that the
/// log of changes stays short, and an erased reader's former facts leave the chunks, even
/// when no pass runs.
pub async fn keep_up(store: Arc<dyn Store>, every: Duration, mut shutdown: watch::Receiver<bool>) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            changed = shutdown.changed() => {
                if changed.is_err() || *shutdown.borrow() {
                    return;
                }
                continue;
            }
        }
        match store.bring_facts_up_to_date().await {
            Ok(done) if done.changes > 0 => {
                tracing::debug!(?done, "kept readers brought up to date");
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "bringing the kept readers up to date failed"),
        }
    }
}

/// Where a pass is: before its snapshot, or after the reader `after` of it.
enum Cursor {
    Start(Arc<dyn Store>),
    After(Box<dyn Readership>, i64),
}

async fn next(
    cursor: Option<Cursor>,
    page: i64,
    profile: bool,
) -> Option<(StoreResult<GatheredPage>, Option<Cursor>)> {
    let (mut snapshot, after) = match cursor? {
        Cursor::Start(store) => {
            // Reading stays correct without it (a changed reader is read from its tables),
            // only slower; so a failure here is reported and the pass goes on.
            match store.bring_facts_up_to_date().await {
                Ok(done) => tracing::debug!(?done, "kept readers brought up to date"),
                Err(e) => tracing::warn!(error = %e, "bringing the kept readers up to date failed"),
            }
            match store.readership().await {
                Ok(snapshot) => (snapshot, 0),
                Err(e) => return Some((Err(e), None)),
            }
        }
        Cursor::After(snapshot, after) => (snapshot, after),
    };
    match snapshot.page(after, page, profile).await {
        Ok(gathered) => {
            let last = gathered.last?;
            Some((Ok(gathered), Some(Cursor::After(snapshot, last))))
        }
        Err(e) => Some((Err(e), None)),
    }
}

/// `readers` in pages of at most `size`, in order.
fn split(mut readers: Vec<Reader>, size: usize) -> Vec<Vec<Reader>> {
    let mut pages = Vec::with_capacity(readers.len().div_ceil(size.max(1)));
    while readers.len() > size {
        let rest = readers.split_off(size);
        pages.push(std::mem::replace(&mut readers, rest));
    }
    if !readers.is_empty() {
        pages.push(readers);
    }
    pages
}

/// Decodes a page of a pass off the async threads and gives it what `needs` asks beyond rows
/// and terms.
async fn complete(
    store: &dyn Store,
    needs: Needs,
    gathered: GatheredPage,
    now: DateTime<Utc>,
) -> StoreResult<Vec<Reader>> {
    let mut readers = tokio::task::spawn_blocking(move || gathered.decode())
        .await
        .map_err(|e| StoreError::Corrupt(format!("decoding a page of readers: {e}")))??;
    attach_facts(store, needs.fields, &mut readers, now).await?;
    Ok(readers)
}

/// What a pass reads of a page of readers beyond their rows and terms: the complaint
/// tallies and the club tiers, when its fields name them.
#[derive(Debug, Default)]
pub struct PageFacts {
    tallies: HashMap<i64, ComplaintTally>,
    /// `(club, tier, rank)` by reader, with rank 1 for a club's lowest tier.
    tiers: HashMap<i64, Vec<(String, String, u8)>>,
}

impl PageFacts {
    async fn read(
        store: &dyn Store,
        fields: FieldSet,
        first: i64,
        last: i64,
        now: DateTime<Utc>,
    ) -> StoreResult<Self> {
        let mut facts = Self::default();
        if first > last {
            return Ok(facts);
        }
        if fields.contains(Field::Complaints) {
            let tallies = store.complaint_tallies(first, last, now).await?;
            facts.tallies = tallies.into_iter().collect();
        }
        if fields.contains(Field::ClubTiers) {
            let held = store.tiers_of(first, last).await?;
            if held.is_empty() {
                return Ok(facts);
            }
            let clubs = store.list_clubs().await?;
            let rank = |club: &str, tier: &str| {
                clubs
                    .iter()
                    .find(|c| c.definition.code == club)
                    .and_then(|c| c.definition.rank(tier))
                    .and_then(|r| u8::try_from(r + 1).ok())
                    .unwrap_or(0)
            };
            for (reader, club, tier) in held {
                let r = rank(&club, &tier);
                facts.tiers.entry(reader).or_default().push((club, tier, r));
            }
        }
        Ok(facts)
    }

    /// The reader's complaint tally (none read: all zero).
    pub fn tally(&self, sequence: i64) -> ComplaintTally {
        self.tallies.get(&sequence).copied().unwrap_or_default()
    }

    /// The tiers the reader holds, as `(club, tier, rank)`.
    pub fn tiers(&self, sequence: i64) -> &[(String, String, u8)] {
        self.tiers.get(&sequence).map_or(&[], Vec::as_slice)
    }
}

/// Fills in what `fields` reads beyond the readers' rows and terms: the complaint counts and
/// the club tiers of `readers` (in sequence order).
pub async fn attach_facts(
    store: &dyn Store,
    fields: FieldSet,
    readers: &mut [Reader],
    now: DateTime<Utc>,
) -> StoreResult<()> {
    let (Some(first), Some(last)) = (
        readers.first().map(|r| r.row.sequence),
        readers.last().map(|r| r.row.sequence),
    ) else {
        return Ok(());
    };
    let mut facts = PageFacts::read(store, fields, first, last, now).await?;
    for reader in readers.iter_mut() {
        let sequence = reader.row.sequence;
        reader.row.complaints = facts.tally(sequence);
        if let Some(tiers) = facts.tiers.remove(&sequence) {
            reader.row.club_tiers = tiers;
        }
    }
    Ok(())
}
