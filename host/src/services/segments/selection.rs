//! Declarative selection: a segment filter evaluated over readers from the reader pipeline,
//! with what it reads beyond a reader's row and terms (other segments' members, club ranks,
//! the tiers held on a past day) gathered once per pass.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Days, NaiveDate, Utc};
use futures::{Stream, StreamExt};

use crate::domain::club::TierMove;
use crate::domain::contact::normalize_postal_code;
use crate::domain::filter::{Filter, HeldTier, Membership, Subject};
use crate::domain::plugin::{Field, FieldSet};
use crate::domain::subscriber::RelationshipLevel;
use crate::services::pipeline::{Needs, PageFacts, Pipeline};
use crate::services::{ServiceError, ServiceResult};
use crate::store::{Definition, Glimpse, Store, StoreError};

/// Readers a pass matches at a time: no plugin is called, so a page is four kept chunks,
/// which keeps the trips to the database and the blocking pool few. Larger pages cost memory:
/// at 1M, pages of 16,384 readers refreshed in 2.48 s with the service peaking at 399 MiB,
/// pages of 4,096 in 3.04 s at 313 MiB (one run each).
pub const PAGE: i64 = 4 * 1024;

/// A filter ready to be evaluated on one day over any number of readers.
pub struct Selection {
    filter: Filter,
    day: NaiveDate,
    as_of: bool,
    grace_days: i64,
    /// Club to tier to the tier's rank in its club, 1 for the lowest.
    ranks: HashMap<String, HashMap<String, u8>>,
    /// As of a past day, the tiers held on it by reader, as `(club, tier)`.
    past_tiers: Option<HashMap<i64, Vec<(String, String)>>>,
    /// The members of the segments the filter names, by name, in sequence order.
    segments: HashMap<String, Vec<i64>>,
    /// The members of the plugin segments the filter names, as `(plugin, key, members)`.
    plugins: Vec<(String, String, Vec<i64>)>,
    /// The filter reads postal codes, so they are folded for it.
    postal_codes: bool,
}

impl Selection {
    /// Gathers what `filter` reads beyond readers, for the day `as_of` or `today`. A segment
    /// or club the filter names that no longer exists is a conflict (the filter was valid
    /// when saved, so something was deleted since).
    pub async fn prepare(
        store: &dyn Store,
        filter: Filter,
        as_of: Option<NaiveDate>,
        today: NaiveDate,
        grace_days: i64,
    ) -> ServiceResult<Self> {
        let day = as_of.unwrap_or(today);
        let as_of = day < today;
        let mut segments = HashMap::new();
        for name in filter.segments() {
            let segment = store.get_segment(name).await?.ok_or_else(|| {
                ServiceError::Conflict(format!("the segment {name} the filter names was deleted"))
            })?;
            let members = store.segment_member_sequences(segment.id).await?;
            segments.insert(name.to_owned(), members);
        }
        let mut plugins = Vec::new();
        let named = filter.plugins();
        if !named.is_empty() {
            let stored = store.list_segments().await?;
            for (id, key) in named {
                let segment = stored
                    .iter()
                    .find(|s| is_plugin_segment(&s.definition, id, key))
                    .ok_or_else(|| {
                        ServiceError::Conflict(format!(
                            "no segment of plugin {id} with key {key} is stored any more"
                        ))
                    })?;
                let members = store.segment_member_sequences(segment.id).await?;
                plugins.push((id.to_owned(), key.to_owned(), members));
            }
        }
        let mut ranks = HashMap::new();
        let mut past_tiers = as_of.then(HashMap::new);
        for code in filter.clubs() {
            let club = store.get_club(code).await?.ok_or_else(|| {
                ServiceError::Conflict(format!("the club {code} the filter names was deleted"))
            })?;
            let tiers = club.definition.tiers.iter().enumerate();
            let tiers = tiers
                .map(|(rank, tier)| (tier.code.clone(), u8::try_from(rank + 1).unwrap_or(u8::MAX)));
            ranks.insert(code.to_owned(), tiers.collect());
            if let Some(past) = past_tiers.as_mut() {
                held_on(store, club.id, code, day, past).await?;
            }
        }
        let postal_codes = filter.any_condition(|f| matches!(f, Filter::PostalCode { .. }));
        Ok(Self {
            filter,
            day,
            as_of,
            grace_days,
            ranks,
            past_tiers,
            segments,
            plugins,
            postal_codes,
        })
    }

    /// The day the filter is evaluated on.
    pub fn day(&self) -> NaiveDate {
        self.day
    }

    /// What the pipeline must read of each reader for this filter.
    pub fn needs(&self) -> Needs {
        let mut fields = Vec::new();
        if self
            .filter
            .any_condition(|f| matches!(f, Filter::Complaints { .. }))
        {
            fields.push(Field::Complaints);
        }
        if self.past_tiers.is_none() && !self.filter.clubs().is_empty() {
            fields.push(Field::ClubTiers);
        }
        Needs {
            fields: FieldSet::of(&fields),
            profile: self
                .filter
                .any_condition(|f| matches!(f, Filter::Attribute { .. })),
        }
    }

    /// Whether the reader meets the filter, with what the pass read of their page beside
    /// their row and terms. An erased reader never does: their personal data is gone, and
    /// they asked not to be singled out.
    pub fn matches(&self, reader: &Glimpse<'_>, facts: &PageFacts) -> bool {
        if reader.erased {
            return false;
        }
        let sequence = reader.sequence;
        let tiers: Vec<HeldTier<'_>> = match &self.past_tiers {
            Some(past) => past
                .get(&sequence)
                .map(|held| {
                    held.iter()
                        .map(|(club, tier)| HeldTier {
                            club,
                            tier,
                            rank: self.rank(club, tier).unwrap_or(0),
                        })
                        .collect()
                })
                .unwrap_or_default(),
            None => facts
                .tiers(sequence)
                .iter()
                .map(|(club, tier, rank)| HeldTier {
                    club,
                    tier,
                    rank: *rank,
                })
                .collect(),
        };
        let postal_code = self
            .postal_codes
            .then(|| reader.postal_code.map(normalize_postal_code))
            .flatten();
        let tier_rank = |club: &str, tier: &str| self.rank(club, tier);
        let member = |membership: &Membership<'_>| {
            let members = match membership {
                Membership::Segment(name) => self.segments.get(*name),
                Membership::Plugin { id, key } => self
                    .plugins
                    .iter()
                    .find(|(i, k, _)| i == id && k == key)
                    .map(|(_, _, members)| members),
            };
            members.is_some_and(|m| m.binary_search(&sequence).is_ok())
        };
        let complaints = facts.tally(sequence);
        let subject = Subject {
            day: self.day,
            as_of: self.as_of,
            grace_days: self.grace_days,
            terms: reader.terms,
            region: reader.region,
            country: reader.country,
            postal_code: postal_code.as_deref(),
            birth_year: reader.birth_year.map(i32::from),
            granted: reader.granted,
            open_complaints: complaints.open,
            breached_complaints: complaints.breached,
            relationship_level: reader
                .relationship_level
                .parse::<RelationshipLevel>()
                .unwrap_or_default(),
            manager: reader.relationship_manager,
            attributes: reader.profile.map(|p| &p.draft().custom_attributes),
            tiers: &tiers,
            tier_rank: &tier_rank,
            member: &member,
        };
        self.filter.matches(&subject)
    }

    /// Every live reader through the pipeline, at least `page` at a time, each page matched
    /// on the blocking pool (two at once) borrowed from the bytes the database gave: per
    /// page, the readers looked at and the sequences matched, in order.
    pub fn matched_pages(
        self: Arc<Self>,
        pipeline: &Pipeline,
        page: i64,
        now: DateTime<Utc>,
    ) -> impl Stream<Item = ServiceResult<(i64, Vec<i64>)>> + use<> {
        let needs = self.needs();
        let facts_of = pipeline.clone();
        pipeline
            .gathered(needs, page)
            .map(move |gathered| {
                let (selection, pipeline) = (Arc::clone(&self), facts_of.clone());
                async move {
                    let gathered = gathered?;
                    let last = gathered.last.unwrap_or(0);
                    let facts = pipeline
                        .facts(needs.fields, gathered.first(), last, now)
                        .await?;
                    let matched = tokio::task::spawn_blocking(move || {
                        let (mut looked_at, mut found) = (0, Vec::new());
                        gathered.glimpse(&mut |reader| {
                            looked_at += 1;
                            if selection.matches(reader, &facts) {
                                found.push(reader.sequence);
                            }
                        })?;
                        Ok::<_, StoreError>((looked_at, found))
                    })
                    .await
                    .map_err(|e| {
                        ServiceError::Store(StoreError::Corrupt(format!("matching a page: {e}")))
                    })??;
                    Ok(matched)
                }
            })
            .buffered(2)
    }

    fn rank(&self, club: &str, tier: &str) -> Option<u8> {
        self.ranks.get(club)?.get(tier).copied()
    }
}

/// Whether a stored segment is the plugin `id`'s segment of `key`.
pub fn is_plugin_segment(definition: &Definition, id: &str, key: &str) -> bool {
    matches!(definition, Definition::Plugin { plugin_id, key: k, .. } if plugin_id == id && k == key)
}

/// Adds to `held` the tier each reader held in the club `code` at the end of `day`, from the
/// club's history of moves.
async fn held_on(
    store: &dyn Store,
    club_id: i64,
    code: &str,
    day: NaiveDate,
    held: &mut HashMap<i64, Vec<(String, String)>>,
) -> ServiceResult<()> {
    let until = day
        .checked_add_days(Days::new(1))
        .unwrap_or(day)
        .and_hms_opt(0, 0, 0)
        .unwrap_or_default()
        .and_utc();
    let mut last: HashMap<i64, Option<String>> = HashMap::new();
    for change in store.club_changes(club_id, until).await? {
        if change.on_day > day {
            continue;
        }
        let tier = match change.moved {
            TierMove::Left => None,
            _ => change.to_tier,
        };
        last.insert(change.subscriber, tier);
    }
    for (reader, tier) in last {
        if let Some(tier) = tier {
            held.entry(reader)
                .or_default()
                .push((code.to_owned(), tier));
        }
    }
    Ok(())
}
