//! Measuring an audience: one pass of the reader pipeline counts the segment's members who
//! granted `third_party_audiences` into every cell of a release, borrowed from the kept chunks
//! on the blocking pool, and keeps who was counted for the differencing checks.

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use futures::StreamExt;

use crate::domain::ConsentPurpose;
use crate::domain::audience::{
    self, Dimension, Domains, Exact, Figures, NONE, Settings, Tally, UNKNOWN,
};
use crate::domain::plugin::{Field, FieldSet};
use crate::domain::publication::Format;
use crate::domain::tenure::{status, tenure_on};
use crate::domain::term::Span;
use crate::services::pipeline::{Needs, PageFacts, Pipeline};
use crate::services::{ServiceError, ServiceResult};
use crate::store::{Glimpse, Store, StoreError};

/// Readers counted at a time: four kept chunks, as a declarative refresh reads them.
const PAGE: i64 = 4 * 1024;

/// What one pass found: the exact figures, who was counted, and what one reader can move.
pub struct Measurement {
    pub exact: Figures<Exact>,
    /// The consented members counted, in sequence order.
    pub members: Vec<i64>,
    pub sensitivity: u32,
}

/// The day and rules a pass counts by.
#[derive(Clone)]
struct Counting {
    settings: Settings,
    members: Arc<Vec<i64>>,
    today: NaiveDate,
    grace_days: i64,
}

/// One page's share of a pass.
struct PageCount {
    tally: Tally,
    regions: BTreeSet<String>,
    counted: Vec<i64>,
}

/// Counts the members of segment `segment_id` under `settings`, on `now`.
pub async fn measure(
    store: &Arc<dyn Store>,
    segment_id: i64,
    settings: &Settings,
    now: DateTime<Utc>,
    grace_days: i64,
) -> ServiceResult<Measurement> {
    let mut domains = catalogue_domains(&**store).await?;
    let counting = Counting {
        settings: settings.clone(),
        members: Arc::new(store.segment_member_sequences(segment_id).await?),
        today: now.date_naive(),
        grace_days,
    };
    let tiers = settings.dimensions.contains(&Dimension::ClubTier);
    let needs = Needs {
        fields: if tiers {
            FieldSet::of(&[Field::ClubTiers])
        } else {
            FieldSet::of(&[])
        },
        profile: false,
    };
    let pipeline = Pipeline::new(Arc::clone(store));
    let facts_of = pipeline.clone();
    let mut pages = pipeline
        .gathered(needs, PAGE)
        .map(move |gathered| {
            let (counting, pipeline) = (counting.clone(), facts_of.clone());
            async move {
                let gathered = gathered?;
                let last = gathered.last.unwrap_or(0);
                let facts = pipeline
                    .facts(needs.fields, gathered.first(), last, now)
                    .await?;
                tokio::task::spawn_blocking(move || {
                    let mut page = PageCount {
                        tally: Tally::new(&counting.settings),
                        regions: BTreeSet::new(),
                        counted: Vec::new(),
                    };
                    let mut key = String::new();
                    gathered.glimpse(&mut |reader| {
                        counting.count(reader, &facts, &mut page, &mut key);
                    })?;
                    Ok::<_, StoreError>(page)
                })
                .await
                .map_err(|e| {
                    ServiceError::Store(StoreError::Corrupt(format!("counting a page: {e}")))
                })?
                .map_err(ServiceError::Store)
            }
        })
        .buffered(2);
    let mut tally = Tally::new(settings);
    let mut members = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page?;
        tally.merge(page.tally);
        domains.regions.extend(page.regions);
        members.extend(page.counted);
    }
    Ok(Measurement {
        exact: Figures::exact(settings, &domains, &tally),
        sensitivity: settings.sensitivity(&domains),
        members,
    })
}

/// The titles and club tiers a release lays out, from the catalogue and the clubs.
async fn catalogue_domains(store: &dyn Store) -> ServiceResult<Domains> {
    let mut titles: Vec<String> = store
        .list_publications()
        .await?
        .into_iter()
        .map(|p| p.definition.code.as_str().to_owned())
        .collect();
    titles.sort();
    let clubs = store.list_clubs().await?;
    let mut tiers = Vec::new();
    for club in &clubs {
        for tier in &club.definition.tiers {
            tiers.push(format!("{}/{}", club.definition.code, tier.code));
        }
    }
    Ok(Domains {
        regions: BTreeSet::new(),
        titles,
        tiers,
        clubs: u32::try_from(clubs.len()).unwrap_or(u32::MAX),
    })
}

impl Counting {
    /// Notes the reader's region for the layout and, when they are a consenting member,
    /// counts them. Erased readers are never counted, nor is their region kept.
    fn count(
        &self,
        reader: &Glimpse<'_>,
        facts: &PageFacts,
        page: &mut PageCount,
        key: &mut String,
    ) {
        if reader.erased {
            return;
        }
        if let Some(region) = reader.region
            && !page.regions.contains(region)
        {
            page.regions.insert(region.to_owned());
        }
        let consented = reader
            .granted
            .contains(&ConsentPurpose::ThirdPartyAudiences);
        if !consented || self.members.binary_search(&reader.sequence).is_err() {
            return;
        }
        let tiers: Vec<String> = facts
            .tiers(reader.sequence)
            .iter()
            .map(|(club, tier, _)| format!("{club}/{tier}"))
            .collect();
        let held = self.held(reader);
        let mut values: Vec<Vec<&str>> = Vec::with_capacity(self.settings.dimensions.len());
        for dimension in &self.settings.dimensions {
            values.push(match dimension {
                Dimension::Region => vec![reader.region.unwrap_or(UNKNOWN)],
                Dimension::AgeBand => {
                    vec![audience::age_band(reader.birth_year, self.today.year())]
                }
                Dimension::Relationship => vec![reader.relationship_level],
                Dimension::TenureBand => {
                    let spans: Vec<Span> = reader.terms.iter().map(|t| t.span).collect();
                    let tenure = tenure_on(&spans, self.today, self.grace_days);
                    vec![audience::tenure_band(tenure.since.map(|_| tenure.years))]
                }
                Dimension::Title if held.is_empty() => vec![NONE],
                Dimension::Title => held.iter().map(|(title, _)| *title).collect(),
                Dimension::Format => vec![format_of(&held)],
                Dimension::ClubTier if tiers.is_empty() => vec![NONE],
                Dimension::ClubTier => tiers.iter().map(String::as_str).collect(),
            });
        }
        page.tally.count(&self.settings, &values, key);
        page.counted.push(reader.sequence);
    }

    /// The titles the reader holds today (served, or in grace), each with the format of its
    /// latest term, in code order.
    fn held<'a>(&self, reader: &Glimpse<'a>) -> Vec<(&'a str, Format)> {
        let mut titles: Vec<&str> = reader.terms.iter().map(|t| t.publication).collect();
        titles.sort_unstable();
        titles.dedup();
        titles
            .into_iter()
            .filter_map(|title| {
                let terms = reader.terms.iter().filter(|t| t.publication == title);
                let spans: Vec<Span> = terms.clone().map(|t| t.span).collect();
                if !status(&spans, self.today, self.grace_days).is_current() {
                    return None;
                }
                let latest = terms.max_by_key(|t| t.span.last)?;
                Some((title, latest.format))
            })
            .collect()
    }
}

/// How the reader takes what they hold: both print and digital count as a bundle.
fn format_of(held: &[(&str, Format)]) -> &'static str {
    let has = |format: Format| held.iter().any(|(_, f)| *f == format);
    match (
        has(Format::Print),
        has(Format::Digital),
        has(Format::Bundle),
    ) {
        (_, _, true) | (true, true, _) => "bundle",
        (true, false, false) => "print",
        (false, true, false) => "digital",
        (false, false, false) => NONE,
    }
}

/// How many of `members` (in sequence order) held a term of a format the placement reaches
/// on at least one day of `from..=until`: print or bundle for a print insert, digital or
/// bundle for a digital placement. Erased readers are not counted.
pub async fn reach(
    store: &Arc<dyn Store>,
    members: Vec<i64>,
    print: bool,
    from: NaiveDate,
    until: NaiveDate,
) -> ServiceResult<i64> {
    let members = Arc::new(members);
    let needs = Needs {
        fields: FieldSet::of(&[]),
        profile: false,
    };
    let mut pages = Pipeline::new(Arc::clone(store))
        .gathered(needs, PAGE)
        .map(move |gathered| {
            let members = Arc::clone(&members);
            async move {
                let gathered = gathered?;
                tokio::task::spawn_blocking(move || {
                    let mut reached = 0i64;
                    gathered.glimpse(&mut |reader| {
                        let placed = |format: Format| match format {
                            Format::Bundle => true,
                            Format::Print => print,
                            Format::Digital => !print,
                        };
                        let served = reader.terms.iter().any(|t| {
                            placed(t.format) && t.span.start <= until && t.span.last >= from
                        });
                        let member = members.binary_search(&reader.sequence).is_ok();
                        reached += i64::from(!reader.erased && member && served);
                    })?;
                    Ok::<_, StoreError>(reached)
                })
                .await
                .map_err(|e| {
                    ServiceError::Store(StoreError::Corrupt(format!("counting a page: {e}")))
                })?
                .map_err(ServiceError::Store)
            }
        })
        .buffered(2);
    let mut reached = 0;
    while let Some(page) = pages.next().await {
        reached += page?;
    }
    Ok(reached)
}
