//! Reader clubs: defining clubs, a reader's standing with its explanation and history, staff
//! overrides, the recomputation after every change and over all readers, and the tier perk
//! renewal pricing applies.

pub mod events;
mod recompute;
pub use recompute::{RECOMPUTE, Recomputation};
pub mod report;
mod standing;

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::audit::AuditLog;
use super::clock::Clock;
use super::jobs::Jobs;
use super::plugins::Plugins;
use super::subscribers::{Caller, Registry};
use super::{ServiceError, ServiceResult};
use crate::domain::club::{ClubDraft, Override, OverrideKind, Perks, TierDraft};
use crate::domain::money::{BasisPoints, Currency};
use crate::domain::plugin::PluginKind;
use crate::domain::publication::PublicationCode;
use crate::domain::{FieldErrors, SubscriberNumber};
use crate::store::{
    ClubRecord, Membership, NewOverride, OverrideRecord, Store, StoreError, TierChange,
};

/// A club as the API shows it, with how many readers hold each tier now.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClubView {
    pub code: String,
    pub name: String,
    pub description: Option<String>,
    /// Lowest first.
    pub tiers: Vec<TierView>,
    /// Send it back in `If-Match` to change the club.
    pub version: i64,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TierView {
    #[serde(flatten)]
    pub tier: TierDraft,
    pub members: i64,
}

/// Everything about one reader's clubs: tiers held and why, overrides, the history of moves
/// and event attendance.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReaderClubs {
    #[schema(value_type = String)]
    pub subscriber: SubscriberNumber,
    pub memberships: Vec<MembershipView>,
    /// Newest first, ended ones too.
    pub overrides: Vec<OverrideRecord>,
    /// Oldest first.
    pub history: Vec<TierChange>,
    /// Oldest first.
    pub events: Vec<events::Attendance>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MembershipView {
    pub club: String,
    pub club_name: String,
    pub tier: String,
    pub tier_name: String,
    /// The first day in this tier.
    pub tier_since: NaiveDate,
    /// The first day in the club.
    pub member_since: NaiveDate,
    /// The rule results (or the override) that put the reader in this tier.
    pub because: String,
    pub overridden: bool,
    pub perks: Perks,
    pub evaluated_at: chrono::DateTime<chrono::Utc>,
}

/// A tier granted or held by staff.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OverrideRequest {
    pub tier: String,
    pub kind: OverrideKind,
    pub reason: String,
    /// The last day it applies.
    pub expires: NaiveDate,
}

/// The tier discount a reader's renewal gets: the best of their clubs'.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TierPerk {
    pub rate: BasisPoints,
    /// "Gold (Reader Club)".
    pub label: String,
}

pub struct Clubs {
    store: Arc<dyn Store>,
    registry: Arc<Registry>,
    audit: AuditLog,
    plugins: Arc<Plugins>,
    jobs: Arc<Jobs>,
    clock: Arc<dyn Clock>,
    currency: Currency,
    grace_days: i64,
}

impl Clubs {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        store: Arc<dyn Store>,
        registry: Arc<Registry>,
        audit: AuditLog,
        plugins: Arc<Plugins>,
        jobs: Arc<Jobs>,
        clock: Arc<dyn Clock>,
        currency: Currency,
        grace_days: i64,
    ) -> Self {
        Self {
            store,
            registry,
            audit,
            plugins,
            jobs,
            clock,
            currency,
            grace_days,
        }
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    pub async fn create(&self, caller: &Caller, draft: ClubDraft) -> ServiceResult<ClubView> {
        self.check(&draft).await?;
        let record = self
            .store
            .insert_club(&draft, self.clock.now())
            .await
            .map_err(conflict)?;
        self.audit
            .record(caller.audit("club.create", None, json!({ "club": draft.code })))
            .await;
        self.view(record).await
    }

    pub async fn list(&self) -> ServiceResult<Vec<ClubView>> {
        let mut views = Vec::new();
        for record in self.store.list_clubs().await? {
            views.push(self.view(record).await?);
        }
        Ok(views)
    }

    pub async fn get(&self, code: &str) -> ServiceResult<ClubView> {
        let record = self.find(code).await?;
        self.view(record).await
    }

    /// Replaces the club's definition; a tier readers still hold may not disappear.
    pub async fn update(
        &self,
        caller: &Caller,
        code: &str,
        expected_version: i64,
        draft: ClubDraft,
    ) -> ServiceResult<ClubView> {
        let record = self.find(code).await?;
        if draft.code != code {
            return Err(ServiceError::Invalid(FieldErrors::single(
                "code",
                format!("the code of club {code} does not change"),
            )));
        }
        self.check(&draft).await?;
        let in_use: Vec<String> = self
            .store
            .tiers_in_use(record.id)
            .await?
            .into_iter()
            .filter(|t| draft.tier(t).is_none())
            .collect();
        if !in_use.is_empty() {
            return Err(ServiceError::Conflict(format!(
                "readers still hold tier(s) {}; keep them, or end their overrides and \
                 recompute with rules that move the readers out first",
                in_use.join(", ")
            )));
        }
        let updated = self
            .store
            .update_club(record.id, expected_version, &draft, self.clock.now())
            .await
            .map_err(conflict)?;
        self.audit
            .record(caller.audit("club.update", None, json!({ "club": code })))
            .await;
        self.view(updated).await
    }

    /// The reader's clubs; reading them is audited.
    pub async fn reader(
        &self,
        caller: &Caller,
        number: SubscriberNumber,
    ) -> ServiceResult<ReaderClubs> {
        self.registry.load(number).await?;
        let view = self.reader_clubs(number).await?;
        self.audit
            .record(caller.audit("clubs.read", Some(number), json!({})))
            .await;
        Ok(view)
    }

    async fn reader_clubs(&self, number: SubscriberNumber) -> ServiceResult<ReaderClubs> {
        let reader = number.sequence();
        let clubs: BTreeMap<String, ClubDraft> = self
            .store
            .list_clubs()
            .await?
            .into_iter()
            .map(|c| (c.definition.code.clone(), c.definition))
            .collect();
        let memberships = self
            .store
            .subscriber_memberships(reader)
            .await?
            .into_iter()
            .map(|(code, m)| membership_view(clubs.get(&code), code, m))
            .collect();
        Ok(ReaderClubs {
            subscriber: number,
            memberships,
            overrides: self.store.subscriber_overrides(reader).await?,
            history: self.store.tier_history(reader).await?,
            events: events::attendance(self.store.as_ref(), reader).await?,
        })
    }

    /// Grants or holds a tier until a day, then recomputes the reader's standing at once.
    pub async fn set_override(
        &self,
        caller: &Caller,
        number: SubscriberNumber,
        code: &str,
        request: OverrideRequest,
    ) -> ServiceResult<ReaderClubs> {
        self.registry.load_live(number).await?;
        let club = self.find(code).await?;
        let mut errors = FieldErrors::default();
        if club.definition.tier(&request.tier).is_none() {
            errors.add(
                "tier",
                format!("club {code} has no tier `{}`", request.tier),
            );
        }
        let reason = request.reason.trim().to_owned();
        if reason.is_empty() || reason.chars().count() > 500 {
            errors.add("reason", "give the reason (1 to 500 characters)");
        }
        let today = self.clock.today();
        if request.expires < today {
            errors.add(
                "expires",
                format!("the last day it applies is today ({today}) or later"),
            );
        }
        if !errors.is_empty() {
            return Err(ServiceError::Invalid(errors));
        }
        let new = NewOverride {
            club_id: club.id,
            subscriber: number.sequence(),
            details: Override {
                id: 0,
                tier: request.tier.clone(),
                kind: request.kind,
                reason,
                expires: request.expires,
                by: caller.actor.name.clone(),
                created_at: self.clock.now(),
            },
        };
        let audit = caller.audit(
            "club.override",
            Some(number),
            json!({ "club": code, "tier": request.tier, "kind": request.kind,
                    "expires": request.expires }),
        );
        self.store
            .insert_override(new, audit)
            .await
            .map_err(conflict)?;
        self.recompute_club(&caller.actor, &club, number).await?;
        self.reader_clubs(number).await
    }

    /// Ends the override in force, then recomputes the reader's standing.
    pub async fn end_override(
        &self,
        caller: &Caller,
        number: SubscriberNumber,
        code: &str,
    ) -> ServiceResult<ReaderClubs> {
        self.registry.load_live(number).await?;
        let club = self.find(code).await?;
        let audit = caller.audit("club.override_end", Some(number), json!({ "club": code }));
        match self
            .store
            .end_override(
                club.id,
                number.sequence(),
                &caller.actor.name,
                self.clock.now(),
                audit,
            )
            .await
        {
            Ok(_) => {}
            Err(StoreError::NotFound) => {
                return Err(ServiceError::NotFound(format!(
                    "subscriber {number} has no override in force in club {code}"
                )));
            }
            Err(e) => return Err(e.into()),
        }
        self.recompute_club(&caller.actor, &club, number).await?;
        self.reader_clubs(number).await
    }

    /// The best renewal discount among the reader's tiers, if any.
    pub async fn renewal_perk(&self, number: SubscriberNumber) -> ServiceResult<Option<TierPerk>> {
        let memberships = self.store.subscriber_memberships(number.sequence()).await?;
        if memberships.is_empty() {
            return Ok(None);
        }
        let clubs = self.store.list_clubs().await?;
        let best = memberships
            .iter()
            .filter_map(|(code, m)| {
                let club = clubs.iter().find(|c| &c.definition.code == code)?;
                let (_, tier) = club.definition.tier(&m.tier)?;
                let rate = tier.perks.renewal_discount();
                (rate.0 > 0).then(|| TierPerk {
                    rate,
                    label: format!("{} ({})", tier.name, club.definition.name),
                })
            })
            .max_by_key(|p| p.rate);
        Ok(best)
    }

    pub(crate) async fn find(&self, code: &str) -> ServiceResult<ClubRecord> {
        self.store
            .get_club(code)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("there is no club {code}")))
    }

    /// Checks what validation alone cannot: the titles and plugins the rules name exist.
    async fn check(&self, draft: &ClubDraft) -> ServiceResult<()> {
        draft.validate().map_err(ServiceError::Invalid)?;
        let mut errors = FieldErrors::default();
        let publications = self.store.list_publications().await?;
        for (i, tier) in draft.tiers.iter().enumerate() {
            for code in tier.rule.publications() {
                let known = PublicationCode::parse(code)
                    .is_ok_and(|c| publications.iter().any(|p| p.definition.code == c));
                if !known {
                    errors.add(
                        format!("tiers[{i}].rule"),
                        format!("there is no publication {code}"),
                    );
                }
            }
            for id in tier.rule.plugins() {
                match self.store.get_plugin(id).await? {
                    Some(p) if p.kind == PluginKind::Segmenter => {}
                    Some(_) => errors.add(
                        format!("tiers[{i}].rule"),
                        format!("plugin {id} is not a segmenter"),
                    ),
                    None => errors.add(
                        format!("tiers[{i}].rule"),
                        format!("there is no plugin {id}"),
                    ),
                }
            }
        }
        errors.into_result(()).map_err(ServiceError::Invalid)
    }

    async fn view(&self, record: ClubRecord) -> ServiceResult<ClubView> {
        let counts: BTreeMap<String, i64> = self
            .store
            .members_by_tier(record.id)
            .await?
            .into_iter()
            .collect();
        let d = record.definition;
        Ok(ClubView {
            tiers: d
                .tiers
                .into_iter()
                .map(|tier| TierView {
                    members: counts.get(&tier.code).copied().unwrap_or(0),
                    tier,
                })
                .collect(),
            code: d.code,
            name: d.name,
            description: d.description,
            version: record.version,
            created_at: record.created_at,
            updated_at: record.updated_at,
        })
    }
}

fn membership_view(club: Option<&ClubDraft>, code: String, m: Membership) -> MembershipView {
    let tier = club.and_then(|c| c.tier(&m.tier)).map(|(_, t)| t);
    MembershipView {
        club_name: club.map(|c| c.name.clone()).unwrap_or_default(),
        club: code,
        tier_name: tier.map_or_else(|| m.tier.clone(), |t| t.name.clone()),
        perks: tier.map(|t| t.perks).unwrap_or_default(),
        tier: m.tier,
        tier_since: m.tier_since,
        member_since: m.member_since,
        because: m.because,
        overridden: m.overridden,
        evaluated_at: m.evaluated_at,
    }
}

fn conflict(e: StoreError) -> ServiceError {
    match e {
        StoreError::Conflict(detail) => ServiceError::Conflict(detail),
        other => other.into(),
    }
}
