//! Campaign audience previews: a segment's members who consented to the campaign's channel,
//! scored by a targeter plugin, best first, with what was left out and why.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::Plugins;
use super::view::{ViewBuilder, purpose_of};
use crate::domain::money::Currency;
use crate::domain::plugin::PluginKind;
use crate::domain::{ConsentPurpose, FieldErrors, SubscriberNumber};
use crate::runtime::bindings::{Campaign, Targeting};
use crate::services::pipeline::{Needs, Pipeline};
use crate::services::{ServiceError, ServiceResult};
use crate::store::SubscriberSummary;

const MAX_LIMIT: usize = 1_000;

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PreviewRequest {
    /// A name for the campaign, passed to the targeter.
    pub name: String,
    pub segment: String,
    /// The targeter plugin that ranks or excludes.
    pub targeter: String,
    /// The marketing consent the channel needs: marketing_email, marketing_phone or
    /// marketing_post.
    pub channel: ConsentPurpose,
    /// How many of the best to list (1 to 1000, default 100).
    pub limit: Option<usize>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RankedReader {
    #[schema(value_type = String)]
    pub number: SubscriberNumber,
    pub display_name: String,
    pub score: f64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AudiencePreview {
    pub segment: String,
    pub targeter: String,
    pub targeter_version: String,
    pub channel: ConsentPurpose,
    /// Members of the segment at its last refresh.
    pub members: usize,
    /// Members who have not granted the channel's consent; never shown to the plugin.
    pub without_consent: usize,
    /// Members the targeter left out, by its reason.
    pub excluded: BTreeMap<String, usize>,
    /// Members the targeter returned an error for.
    pub failed: usize,
    /// Everyone it scored.
    pub contactable: usize,
    /// The best `limit`, highest score first.
    pub audience: Vec<RankedReader>,
}

pub struct Campaigns {
    plugins: Arc<Plugins>,
    currency: Currency,
    grace_days: i64,
    batch_size: usize,
}

impl Campaigns {
    pub fn new(
        plugins: Arc<Plugins>,
        currency: Currency,
        grace_days: i64,
        batch_size: usize,
    ) -> Self {
        Self {
            plugins,
            currency,
            grace_days,
            batch_size: batch_size.max(1),
        }
    }

    pub async fn preview(&self, request: PreviewRequest) -> ServiceResult<AudiencePreview> {
        let store = self.plugins.store();
        let mut errors = FieldErrors::default();
        if request.channel == ConsentPurpose::ThirdPartyAudiences {
            errors.add(
                "channel",
                "use marketing_email, marketing_phone or marketing_post",
            );
        }
        let limit = request.limit.unwrap_or(100);
        if !(1..=MAX_LIMIT).contains(&limit) {
            errors.add("limit", format!("1 to {MAX_LIMIT}"));
        }
        let segment = store.get_segment(&request.segment).await?;
        if segment.is_none() {
            errors.add(
                "segment",
                format!("there is no segment {}", request.segment),
            );
        }
        match store.get_plugin(&request.targeter).await? {
            None => errors.add(
                "targeter",
                format!("there is no plugin {}", request.targeter),
            ),
            Some(p) if p.kind != PluginKind::Targeter => errors.add(
                "targeter",
                format!("{} is a {}, not a targeter", p.id, p.kind.as_str()),
            ),
            Some(_) => {}
        }
        let (Some(segment), true) = (segment, errors.is_empty()) else {
            return Err(ServiceError::Invalid(errors));
        };
        let active = self.plugins.active(&request.targeter, None).await?;
        let publications = store.list_publications().await?;
        let builder = ViewBuilder::new(
            self.plugins.clock().today(),
            self.grace_days,
            self.currency.as_str(),
            &publications,
        );
        let fields = active.version.checked.fields;
        let pipeline = Pipeline::new(Arc::clone(store));
        let now = self.plugins.clock().now();
        let campaign = Campaign {
            name: request.name.clone(),
            channel: purpose_of(request.channel),
            segment: segment.name.clone(),
        };
        let mut preview = AudiencePreview {
            segment: segment.name.clone(),
            targeter: active.record.id.clone(),
            targeter_version: active.version.stored.version.clone(),
            channel: request.channel,
            members: 0,
            without_consent: 0,
            excluded: BTreeMap::new(),
            failed: 0,
            contactable: 0,
            audience: Vec::new(),
        };
        let mut scored: Vec<(f64, SubscriberSummary)> = Vec::new();
        let mut after = 0;
        loop {
            let page = store
                .segment_members(segment.id, after, self.batch_size as i64)
                .await?;
            let (Some(first), Some(last)) = (page.first(), page.last()) else {
                break;
            };
            let (first, last) = (first.number.sequence(), last.number.sequence());
            after = last;
            preview.members += page.len();
            let mut summaries: HashMap<i64, SubscriberSummary> =
                page.into_iter().map(|s| (s.number.sequence(), s)).collect();
            let readers = pipeline.range(Needs::of(fields), first, last, now).await?;
            let consenting: Vec<_> = readers
                .into_iter()
                .filter(|reader| summaries.contains_key(&reader.row.sequence))
                .filter(|reader| {
                    let granted = reader
                        .row
                        .consents
                        .get(&request.channel)
                        .is_some_and(|c| c.granted);
                    if !granted {
                        preview.without_consent += 1;
                    }
                    granted
                })
                .collect();
            if consenting.is_empty() {
                continue;
            }
            let batch = consenting
                .iter()
                .map(|reader| builder.project(fields, active.version.stored.pii_granted, reader))
                .collect();
            let outcome = self
                .plugins
                .runtime()
                .target(
                    active.invocation.clone(),
                    builder.context().clone(),
                    campaign.clone(),
                    batch,
                )
                .await;
            self.plugins
                .settle(&active, &outcome, consenting.len())
                .await;
            let report = outcome.map_err(|f| {
                ServiceError::Conflict(format!("the targeter {} failed: {f}", active.record.id))
            })?;
            for (reader, result) in consenting.iter().zip(report.results) {
                match result {
                    Ok(Targeting::Score(score)) if score.is_finite() => {
                        if let Some(summary) = summaries.remove(&reader.row.sequence) {
                            scored.push((score, summary));
                        }
                    }
                    Ok(Targeting::Score(_)) | Err(_) => preview.failed += 1,
                    Ok(Targeting::Exclude(reason)) => {
                        *preview.excluded.entry(reason).or_default() += 1;
                    }
                }
            }
        }
        preview.contactable = scored.len();
        scored.sort_by(|a, b| {
            b.0.total_cmp(&a.0)
                .then_with(|| a.1.number.cmp(&b.1.number))
        });
        preview.audience = scored
            .into_iter()
            .take(limit)
            .map(|(score, s)| RankedReader {
                number: s.number,
                display_name: s.display_name,
                score,
            })
            .collect();
        Ok(preview)
    }
}
