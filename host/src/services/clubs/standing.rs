//! Deciding tiers for a page of readers from the reader pipeline: the facts each rule needs
//! beyond the readers' terms and complaints, read in a few queries per page (memberships,
//! overrides, and any plugin's verdicts), then only the readers whose standing changed are
//! written.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::domain::club::rule::Facts;
use crate::domain::club::{ClubDraft, Override, Standing, TierMove};
use crate::domain::money::Currency;
use crate::domain::plugin::{Field, FieldSet};
use crate::domain::publication::PublicationCode;
use crate::domain::tenure;
use crate::domain::term::{Span, Term};
use crate::services::pipeline::{Needs, attach_facts};
use crate::services::plugins::Plugins;
use crate::services::plugins::view::ViewBuilder;
use crate::store::{Publication, Reader, RecomputeCounts, Store, StoreResult, TierUpdate};

/// What the rules read of each reader beyond its terms: the oldest open complaint.
pub fn needs() -> Needs {
    Needs {
        fields: FieldSet::of(&[Field::Complaints]),
        profile: false,
    }
}

/// What stays the same across the batches of one run.
pub struct Run<'a> {
    pub club_id: i64,
    pub club: &'a ClubDraft,
    pub now: DateTime<Utc>,
    pub grace_days: i64,
    pub currency: Currency,
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
}

impl Run<'_> {
    /// Decides the standing of `readers` (live readers from the pipeline with what
    /// [`needs`] asks, in sequence order).
    pub async fn decide(&self, store: &dyn Store, readers: &mut [Reader]) -> StoreResult<Decided> {
        let (Some(first), Some(last)) = (
            readers.first().map(|r| r.row.sequence),
            readers.last().map(|r| r.row.sequence),
        ) else {
            return Ok(Decided::default());
        };
        let members: HashMap<i64, _> = store
            .memberships(self.club_id, first, last)
            .await?
            .into_iter()
            .map(|m| (m.subscriber, m))
            .collect();
        let overrides: HashMap<i64, Override> = store
            .overrides_in_force(self.club_id, first, last)
            .await?
            .into_iter()
            .collect();
        let verdicts = self.plugin_verdicts(store, readers).await;
        let today = self.now.date_naive();
        let mut decided = Decided::default();
        for Reader { row, terms: own } in readers.iter() {
            let reader = row.sequence;
            let held = held_titles(own, today, self.grace_days);
            let spans: Vec<Span> = own.iter().map(Term::span).collect();
            let plugin_keys = verdicts.get(&reader).cloned().unwrap_or_default();
            let facts = Facts {
                today,
                now: self.now,
                currency: self.currency,
                tenure: tenure::tenure_on(&spans, today, self.grace_days),
                terms: own,
                held: &held,
                oldest_open_complaint: row.complaints.oldest_open,
                plugin_keys: &plugin_keys,
            };
            let override_ = overrides.get(&reader);
            if let Some(o) = override_.filter(|o| o.expires < today) {
                decided.expired.push(o.id);
            }
            decided.counts.processed += 1;
            let standing = if row.erased {
                Standing {
                    tier: None,
                    because: "the reader's personal data was erased".to_owned(),
                    overridden: false,
                }
            } else {
                let Ok(standing) = self.club.standing(&facts, override_) else {
                    decided.counts.undecided += 1;
                    continue;
                };
                standing
            };
            let before = members.get(&reader);
            let moved = TierMove::between(
                self.club,
                before.map(|m| m.tier.as_str()),
                standing.tier.as_deref(),
            );
            let same = before.is_some_and(|m| {
                m.because == standing.because && m.overridden == standing.overridden
            });
            if moved.is_none() && (same || standing.tier.is_none()) {
                continue;
            }
            if let Some(m) = moved {
                decided.counts.count(m);
            }
            decided.updates.push(TierUpdate {
                subscriber: reader,
                tier: standing.tier,
                because: standing.because,
                overridden: standing.overridden,
                moved: moved.map(|m| (m, before.map(|b| b.tier.clone()))),
            });
        }
        Ok(decided)
    }

    /// The keys each plugin the rules name gave each reader. A plugin that is off or fails
    /// gives no keys, which leaves its rules undecided rather than failed.
    async fn plugin_verdicts(
        &self,
        store: &dyn Store,
        readers: &mut [Reader],
    ) -> HashMap<i64, BTreeMap<String, Vec<String>>> {
        let mut verdicts: HashMap<i64, BTreeMap<String, Vec<String>>> = HashMap::new();
        let ids = self.club.plugins();
        if ids.is_empty() {
            return verdicts;
        }
        let builder = ViewBuilder::new(
            self.now.date_naive(),
            self.grace_days,
            self.currency.as_str(),
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
            if let Err(e) = attach_facts(store, fields, readers, self.now).await {
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

/// The titles held today (active or in grace).
fn held_titles(
    terms: &[Term],
    today: chrono::NaiveDate,
    grace_days: i64,
) -> BTreeSet<PublicationCode> {
    let mut by_title: BTreeMap<&PublicationCode, Vec<Span>> = BTreeMap::new();
    for term in terms {
        by_title
            .entry(&term.publication)
            .or_default()
            .push(term.span());
    }
    by_title
        .into_iter()
        .filter(|(_, spans)| tenure::status(spans, today, grace_days).is_current())
        .map(|(code, _)| code.clone())
        .collect()
}
