//! Deciding tiers for a page of readers from the reader pipeline: the facts each rule needs
//! beyond the readers' terms and complaints, read in a few queries per page (memberships,
//! overrides, and any plugin's verdicts), then only the readers whose standing changed are
//! written. A club whose rules ask no plugin judges its readers borrowed from the kept
//! chunks, on the blocking pool; one that asks a plugin judges decoded readers, since the
//! plugin is handed a view projected from them.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};

use crate::domain::club::rule::Facts;
use crate::domain::club::{ClubDraft, Override, Place, TierMove};
use crate::domain::money::Currency;
use crate::domain::plugin::{Field, FieldSet};
use crate::domain::tenure;
use crate::domain::term::{Span, TermFact};
use crate::services::pipeline::{Needs, PageFacts, attach_facts};
use crate::services::plugins::Plugins;
use crate::services::plugins::view::ViewBuilder;
use crate::store::{
    GatheredPage, Glimpse, Membership, Publication, Reader, RecomputeCounts, Store, StoreError,
    StoreResult, TierUpdate,
};

/// What the rules read of each reader beyond its terms: the oldest open complaint.
pub fn needs() -> Needs {
    Needs {
        fields: FieldSet::of(&[Field::Complaints]),
        profile: false,
    }
}

/// A club's rules on one day: judges readers on any thread.
#[derive(Clone)]
pub struct Judge {
    pub club: Arc<ClubDraft>,
    pub now: DateTime<Utc>,
    pub grace_days: i64,
    pub currency: Currency,
}

/// What stays the same across the batches of one run.
pub struct Run<'a> {
    pub club_id: i64,
    pub judge: Judge,
    pub publications: &'a [Publication],
    pub plugins: &'a Arc<Plugins>,
}

/// What one batch decided.
#[derive(Default)]
pub struct Decided {
    pub updates: Vec<TierUpdate>,
    /// Overrides past their last day, to be ended.
    pub expired: Vec<i64>,
    pub counts: RecomputeCounts,
    /// Where each reader's explanation is written, kept to spare an allocation a reader.
    because: String,
}

/// The standings a page of readers holds now: their memberships and overrides.
struct Held {
    members: HashMap<i64, Membership>,
    overrides: HashMap<i64, Override>,
}

impl Run<'_> {
    /// Whether the club's rules ask a plugin, so that readers must be decoded for it.
    pub fn asks_plugins(&self) -> bool {
        !self.judge.club.plugins().is_empty()
    }

    /// Decides the standing of `readers` (live readers from the pipeline with what
    /// [`needs`] asks, in sequence order).
    pub async fn decide(&self, store: &dyn Store, readers: &mut [Reader]) -> StoreResult<Decided> {
        let (Some(first), Some(last)) = (
            readers.first().map(|r| r.row.sequence),
            readers.last().map(|r| r.row.sequence),
        ) else {
            return Ok(Decided::default());
        };
        let held = self.held(store, first, last).await?;
        let verdicts = self.plugin_verdicts(store, readers).await;
        let mut decided = Decided::default();
        let none = BTreeMap::new();
        for reader in readers.iter() {
            let sequence = reader.row.sequence;
            let keys = verdicts.get(&sequence).unwrap_or(&none);
            let oldest_open = reader.row.complaints.oldest_open;
            reader.glimpse(&mut |glimpse| {
                self.judge
                    .judge(glimpse, oldest_open, keys, &held, &mut decided);
            });
        }
        Ok(decided)
    }

    /// Decides the standing of a page of readers as the database gave it, borrowed and on
    /// the blocking pool, with the complaint tallies in `facts`. Only for rules that ask no
    /// plugin (see [`Run::asks_plugins`]).
    pub async fn decide_gathered(
        &self,
        store: &dyn Store,
        gathered: GatheredPage,
        facts: PageFacts,
    ) -> StoreResult<Decided> {
        let Some(last) = gathered.last else {
            return Ok(Decided::default());
        };
        let held = self.held(store, gathered.first(), last).await?;
        let judge = self.judge.clone();
        tokio::task::spawn_blocking(move || {
            let mut decided = Decided::default();
            let none = BTreeMap::new();
            gathered.glimpse(&mut |glimpse| {
                let oldest_open = facts.tally(glimpse.sequence).oldest_open;
                judge.judge(glimpse, oldest_open, &none, &held, &mut decided);
            })?;
            Ok(decided)
        })
        .await
        .map_err(|e| StoreError::Corrupt(format!("deciding a page of tiers: {e}")))?
    }

    async fn held(&self, store: &dyn Store, first: i64, last: i64) -> StoreResult<Held> {
        let members = store
            .memberships(self.club_id, first, last)
            .await?
            .into_iter()
            .map(|m| (m.subscriber, m))
            .collect();
        let overrides = store
            .overrides_in_force(self.club_id, first, last)
            .await?
            .into_iter()
            .collect();
        Ok(Held { members, overrides })
    }

    /// The keys each plugin the rules name gave each reader. A plugin that is off or fails
    /// gives no keys, which leaves its rules undecided rather than failed.
    async fn plugin_verdicts(
        &self,
        store: &dyn Store,
        readers: &mut [Reader],
    ) -> HashMap<i64, BTreeMap<String, Vec<String>>> {
        let mut verdicts: HashMap<i64, BTreeMap<String, Vec<String>>> = HashMap::new();
        let ids = self.judge.club.plugins();
        if ids.is_empty() {
            return verdicts;
        }
        let judge = &self.judge;
        let builder = ViewBuilder::new(
            judge.now.date_naive(),
            judge.grace_days,
            judge.currency.as_str(),
            self.publications,
        );
        for id in ids {
            let active = match self.plugins.active(id, None).await {
                Ok(active) => active,
                Err(e) => {
                    tracing::warn!(plugin = id, error = %e, "club rule's plugin is unavailable");
                    continue;
                }
            };
            let fields = active.version.checked.fields;
            if let Err(e) = attach_facts(store, fields, readers, judge.now).await {
                tracing::warn!(plugin = id, error = %e, "could not read what a plugin reads");
                continue;
            }
            let pii = active.version.stored.pii_granted;
            let batch = readers
                .iter()
                .map(|reader| builder.project(fields, pii, reader))
                .collect();
            let outcome = self
                .plugins
                .runtime()
                .segment(active.invocation.clone(), builder.context().clone(), batch)
                .await;
            self.plugins.settle(&active, &outcome, readers.len()).await;
            let Ok(report) = outcome else { continue };
            for (reader, result) in readers.iter().zip(report.results) {
                if let Ok(keys) = result {
                    verdicts
                        .entry(reader.row.sequence)
                        .or_default()
                        .insert(id.to_owned(), keys);
                }
            }
        }
        verdicts
    }
}

impl Judge {
    /// Judges one reader against the rules (with the keys each plugin they name gave them),
    /// and adds what changed since `held` to `decided`.
    fn judge(
        &self,
        reader: &Glimpse<'_>,
        oldest_open_complaint: Option<DateTime<Utc>>,
        plugin_keys: &BTreeMap<String, Vec<String>>,
        held: &Held,
        decided: &mut Decided,
    ) {
        let sequence = reader.sequence;
        let today = self.now.date_naive();
        let titles = held_titles(reader.terms, today, self.grace_days);
        let spans: Vec<Span> = reader.terms.iter().map(|t| t.span).collect();
        let facts = Facts {
            today,
            now: self.now,
            currency: self.currency,
            tenure: tenure::tenure_on(&spans, today, self.grace_days),
            terms: reader.terms,
            held: &titles,
            oldest_open_complaint,
            plugin_keys,
        };
        let override_ = held.overrides.get(&sequence);
        if let Some(o) = override_.filter(|o| o.expires < today) {
            decided.expired.push(o.id);
        }
        decided.counts.processed += 1;
        // The explanation is written to a buffer kept across readers and compared with the
        // stored one; a `String` is made only for a standing that is written.
        let mut because = std::mem::take(&mut decided.because);
        let place = if reader.erased {
            because.clear();
            because.push_str("the reader's personal data was erased");
            Place {
                tier: None,
                overridden: false,
            }
        } else {
            match self.club.standing_into(&facts, override_, &mut because) {
                Ok(place) => place,
                Err(_) => {
                    decided.counts.undecided += 1;
                    decided.because = because;
                    return;
                }
            }
        };
        let before = held.members.get(&sequence);
        let moved = TierMove::between(&self.club, before.map(|m| m.tier.as_str()), place.tier);
        let same = before.is_some_and(|m| m.because == because && m.overridden == place.overridden);
        if moved.is_some() || !(same || place.tier.is_none()) {
            if let Some(m) = moved {
                decided.counts.count(m);
            }
            decided.updates.push(TierUpdate {
                subscriber: sequence,
                tier: place.tier.map(str::to_owned),
                because: because.clone(),
                overridden: place.overridden,
                moved: moved.map(|m| (m, before.map(|b| b.tier.clone()))),
            });
        }
        decided.because = because;
    }
}

/// The codes of the titles held on `today` (active or in grace), each once.
fn held_titles<'t>(terms: &[TermFact<'t>], today: NaiveDate, grace_days: i64) -> Vec<&'t str> {
    let mut titles: Vec<&str> = terms.iter().map(|t| t.publication).collect();
    titles.sort_unstable();
    titles.dedup();
    titles.retain(|code| {
        let spans: Vec<Span> = terms
            .iter()
            .filter(|t| t.publication == *code)
            .map(|t| t.span)
            .collect();
        tenure::status(&spans, today, grace_days).is_current()
    });
    titles
}
