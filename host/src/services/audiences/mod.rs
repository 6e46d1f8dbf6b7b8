//! The audience API's rules: advertiser accounts, audiences staff publish from segments, each
//! release measured (`measure.rs`), noised and stored under the audience's budget, the checks
//! that keep two memberships a few readers apart from being released side by side, and what
//! advertisers and staff are shown.

pub mod bookings;
mod measure;

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::FieldErrors;
use crate::domain::audience::{self, Exact, Figures, Settings};
use crate::domain::privacy::{self, Cell, Epsilon, Noise};
use crate::services::clock::Clock;
use crate::services::subscribers::Caller;
use crate::services::{ServiceError, ServiceResult};
use crate::store::{
    Advertiser, AdvertiserDraft, AudienceRecord, NewAudience, NewRelease, ReleaseRecord, Store,
    StoreError,
};

/// What an admin sends to open or change an advertiser account.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdvertiserRequest {
    /// The company, as staff and the audit name it.
    pub name: String,
    /// Who to talk to there.
    pub contact_person: Option<String>,
    pub notes: Option<String>,
}

/// What staff send to publish an audience.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AudienceDraft {
    /// What advertisers see it as, e.g. "Young digital readers in the north".
    pub name: String,
    /// For the advertiser: who these readers are.
    pub description: Option<String>,
    /// The segment (plugin or declarative) whose last refresh's members it counts.
    pub segment: String,
    /// The advertiser accounts that may see it, by id.
    pub advertisers: Vec<i64>,
    pub settings: Settings,
}

/// An audience as staff see it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AudienceView {
    pub id: i64,
    pub name: String,
    pub description: Option<String>,
    pub segment: String,
    pub advertisers: Vec<i64>,
    pub settings: Settings,
    pub published_by: String,
    pub published_at: DateTime<Utc>,
    /// Once unpublished, no advertiser reaches it.
    pub unpublished_at: Option<DateTime<Utc>>,
    pub budget: Budget,
    pub releases: usize,
}

/// An audience as the advertisers it is shared with see it: nothing of one reader.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SharedAudience {
    pub id: i64,
    pub name: String,
    pub description: Option<String>,
    pub dimensions: Vec<audience::Dimension>,
    #[schema(value_type = Vec<Vec<audience::Dimension>>)]
    pub pairs: Vec<[audience::Dimension; 2]>,
    pub min_cell: i64,
    /// When the figures now served were released.
    pub released_at: Option<DateTime<Utc>>,
    pub budget: Budget,
}

/// An audience's privacy budget in its current period.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Budget {
    /// What each period may spend.
    #[schema(value_type = f64)]
    pub per_period: Epsilon,
    #[schema(value_type = f64)]
    pub spent: Epsilon,
    #[schema(value_type = f64)]
    pub left: Epsilon,
    pub period_started: DateTime<Utc>,
    /// When the budget is whole again.
    pub refills_at: DateTime<Utc>,
}

/// How a release's figures were made, as every answer states it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Privacy {
    /// `discrete_laplace`.
    pub mechanism: &'static str,
    /// What this release spent.
    #[schema(value_type = f64)]
    pub epsilon: Epsilon,
    /// The most one reader moves all the release's counts by together.
    pub sensitivity: i64,
    /// Noised counts below this are suppressed.
    pub min_cell: i64,
    /// The confidence of each cell's interval.
    pub confidence: f64,
}

/// A release as the advertiser sees it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReleaseView {
    pub audience_id: i64,
    pub release_id: i64,
    pub released_at: DateTime<Utc>,
    pub privacy: Privacy,
    pub budget: Budget,
    #[schema(value_type = Object)]
    pub figures: Figures<Cell>,
}

/// A release as staff see it: the exact figures next to what advertisers were shown.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StaffReleaseView {
    pub release_id: i64,
    pub released_at: DateTime<Utc>,
    pub privacy: Privacy,
    #[schema(value_type = Object)]
    pub exact: Figures<Exact>,
    #[schema(value_type = Object)]
    pub released: Figures<Cell>,
}

/// One point of an audience's size across releases, as advertisers see it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SizePoint {
    pub release_id: i64,
    pub released_at: DateTime<Utc>,
    pub total: Cell,
}

pub struct Audiences {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    grace_days: i64,
}

impl Audiences {
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, grace_days: i64) -> Self {
        Self {
            store,
            clock,
            grace_days,
        }
    }

    pub async fn open_account(&self, request: AdvertiserRequest) -> ServiceResult<Advertiser> {
        let draft = check_account(request)?;
        let at = self.clock.now();
        self.store
            .insert_advertiser(&draft, at)
            .await
            .map_err(|e| taken(e, "an advertiser account"))
    }

    pub async fn change_account(
        &self,
        id: i64,
        request: AdvertiserRequest,
    ) -> ServiceResult<Advertiser> {
        let draft = check_account(request)?;
        let at = self.clock.now();
        match self.store.update_advertiser(id, &draft, at).await {
            Err(StoreError::NotFound) => Err(no_account(id)),
            other => other.map_err(|e| taken(e, "an advertiser account")),
        }
    }

    pub async fn account(&self, id: i64) -> ServiceResult<Advertiser> {
        self.store
            .get_advertiser(id)
            .await?
            .ok_or_else(|| no_account(id))
    }

    /// Publishes an audience with its first release. Refused, with what to change, when the
    /// settings are wrong, the segment was never refreshed, or its consenting members differ
    /// from those of a published audience by fewer readers than the minimum cell.
    pub async fn publish(
        &self,
        caller: &Caller,
        draft: AudienceDraft,
    ) -> ServiceResult<(AudienceView, ReleaseRecord)> {
        let mut errors = FieldErrors::default();
        let name = draft.name.trim().to_owned();
        if name.is_empty() || name.chars().count() > 100 {
            errors.add("name", "an audience name has 1 to 100 characters");
        }
        if draft
            .description
            .as_ref()
            .is_some_and(|d| d.chars().count() > 2000)
        {
            errors.add("description", "a description has at most 2000 characters");
        }
        if draft.advertisers.is_empty() {
            errors.add(
                "advertisers",
                "share it with at least one advertiser account (ids from GET /api/v1/advertisers)",
            );
        }
        for (i, id) in draft.advertisers.iter().enumerate() {
            if self.store.get_advertiser(*id).await?.is_none() {
                errors.add(
                    format!("advertisers[{i}]"),
                    format!("there is no advertiser account {id}"),
                );
            }
        }
        draft.settings.validate("settings", &mut errors);
        let segment = self.store.get_segment(&draft.segment).await?;
        match &segment {
            None => errors.add(
                "segment",
                format!(
                    "there is no segment {}; see GET /api/v1/segments",
                    draft.segment
                ),
            ),
            Some(s) if s.refreshed_at.is_none() => errors.add(
                "segment",
                format!(
                    "the segment {} has never been refreshed; refresh it first \
                     (POST /api/v1/segments/{}/refresh)",
                    s.name, s.name
                ),
            ),
            Some(_) => {}
        }
        errors.into_result(()).map_err(ServiceError::Invalid)?;
        let segment = segment.ok_or_else(|| ServiceError::NotFound("no segment".into()))?;
        let now = self.clock.now();
        let measured = measure::measure(
            &self.store,
            segment.id,
            &draft.settings,
            now,
            self.grace_days,
        )
        .await?;
        self.refuse_near(None, &measured.members, draft.settings.min_cell)
            .await?;
        let mut advertisers = draft.advertisers;
        advertisers.sort_unstable();
        advertisers.dedup();
        let release = release_of(0, &draft.settings, measured, now)?;
        let (record, release) = self
            .store
            .insert_audience(
                NewAudience {
                    name,
                    description: draft.description,
                    segment_id: segment.id,
                    settings: draft.settings,
                    advertisers,
                    published_by: caller.actor.name.clone(),
                    at: now,
                },
                release,
            )
            .await
            .map_err(|e| taken(e, "an audience"))?;
        Ok((self.view(record).await?, release))
    }

    /// Makes a new release of a published audience now. Refused when the last one is too
    /// recent, when the budget would be overdrawn (saying when it refills), or when the
    /// consenting members differ from the last release's by fewer than the minimum cell.
    pub async fn release(&self, id: i64) -> ServiceResult<ReleaseRecord> {
        let record = self.published(id).await?;
        let settings = &record.settings;
        let now = self.clock.now();
        let releases = self.store.list_releases(id).await?;
        let spacing = Duration::days(i64::from(settings.release_every_days));
        if let Some(last) = releases.first()
            && last.made_at + spacing > now
        {
            return Err(ServiceError::Conflict(format!(
                "the audience was released at {}; it is released at most every {} day(s), \
                 next from {}",
                last.made_at.to_rfc3339(),
                settings.release_every_days,
                (last.made_at + spacing).to_rfc3339()
            )));
        }
        let budget = self.budget(&record, now).await?;
        if budget.left < settings.release_epsilon {
            return Err(ServiceError::BudgetSpent {
                detail: format!(
                    "a release spends {} and only {} of this period's budget of {} is left; \
                     it refills at {}",
                    settings.release_epsilon,
                    budget.left,
                    settings.budget,
                    budget.refills_at.to_rfc3339()
                ),
                refills_at: budget.refills_at,
            });
        }
        let measured = measure::measure(
            &self.store,
            record.segment_id,
            settings,
            now,
            self.grace_days,
        )
        .await?;
        let previous = self.store.released_members(id).await?.unwrap_or_default();
        let differ = audience::difference(&measured.members, &audience::unpack_members(&previous));
        if audience::differences_too_few(differ, settings.min_cell) {
            return Err(ServiceError::Conflict(format!(
                "held: the consenting members differ from the last release's by {differ} \
                 reader(s), fewer than the minimum cell of {}; side by side the two releases \
                 would tell about those readers. The release is made once the segment has \
                 changed by at least {} readers, or not at all",
                settings.min_cell, settings.min_cell
            )));
        }
        self.refuse_near(Some(id), &measured.members, settings.min_cell)
            .await?;
        let release = release_of(id, settings, measured, now)?;
        let spacing_since = now - spacing;
        self.store
            .insert_release(
                release,
                budget.period_started,
                spacing_since,
                settings.budget,
            )
            .await
            .map_err(|e| match e {
                StoreError::Conflict(why) => {
                    ServiceError::Conflict(format!("no release was made: {why}"))
                }
                other => other.into(),
            })
    }

    /// After a refresh of the segment, releases each published audience made from it that
    /// its spacing, budget and differencing checks let through; what is refused waits for
    /// the next refresh (or a release asked by staff), and is logged, never failed.
    pub async fn release_refreshed(&self, segment_id: i64) {
        let audiences = match self.store.audiences_of_segment(segment_id).await {
            Ok(audiences) => audiences,
            Err(e) => {
                tracing::warn!(segment_id, error = %e, "audiences of a refreshed segment unread");
                return;
            }
        };
        for audience in audiences.iter().filter(|a| a.unpublished_at.is_none()) {
            match self.release(audience.id).await {
                Ok(release) => {
                    tracing::info!(audience = audience.id, release = release.id, "released")
                }
                Err(e) => tracing::info!(audience = audience.id, why = %e, "not released"),
            }
        }
    }

    /// Stops every advertiser's access at once; the releases stay for the publisher.
    pub async fn unpublish(&self, id: i64) -> ServiceResult<AudienceView> {
        let record = match self.store.unpublish_audience(id, self.clock.now()).await {
            Err(StoreError::NotFound) => return Err(no_audience(id)),
            other => other?,
        };
        self.view(record).await
    }

    pub async fn list(&self) -> ServiceResult<Vec<AudienceView>> {
        let mut views = Vec::new();
        for record in self.store.list_audiences().await? {
            views.push(self.view(record).await?);
        }
        Ok(views)
    }

    pub async fn get(&self, id: i64) -> ServiceResult<AudienceView> {
        let record = self.store.get_audience(id).await?;
        self.view(record.ok_or_else(|| no_audience(id))?).await
    }

    /// Every release, newest first, exact next to released.
    pub async fn staff_releases(&self, id: i64) -> ServiceResult<Vec<StaffReleaseView>> {
        let record = self
            .store
            .get_audience(id)
            .await?
            .ok_or_else(|| no_audience(id))?;
        let mut views = Vec::new();
        for release in self.store.list_releases(id).await? {
            views.push(StaffReleaseView {
                release_id: release.id,
                released_at: release.made_at,
                privacy: privacy_of(&record.settings, &release),
                exact: parse(&release.exact)?,
                released: parse(&release.released)?,
            });
        }
        Ok(views)
    }

    /// The published audiences shared with the advertiser.
    pub async fn shared(&self, advertiser: i64) -> ServiceResult<Vec<SharedAudience>> {
        let now = self.clock.now();
        let mut shared = Vec::new();
        for record in self.store.audiences_shared_with(advertiser).await? {
            shared.push(self.shared_view(record, now).await?);
        }
        Ok(shared)
    }

    /// One audience shared with the advertiser; any other is not found, so that an
    /// advertiser learns nothing of audiences not theirs.
    pub async fn shared_one(&self, advertiser: i64, id: i64) -> ServiceResult<SharedAudience> {
        let record = self.shared_record(advertiser, id).await?;
        self.shared_view(record, self.clock.now()).await
    }

    /// The figures now served for a shared audience, with the release they come from.
    pub async fn latest(&self, advertiser: i64, id: i64) -> ServiceResult<ReleaseView> {
        let record = self.shared_record(advertiser, id).await?;
        let release = self.store.list_releases(id).await?.into_iter().next();
        let release = release.ok_or_else(|| no_audience(id))?;
        Ok(ReleaseView {
            audience_id: id,
            release_id: release.id,
            released_at: release.made_at,
            privacy: privacy_of(&record.settings, &release),
            budget: self.budget(&record, self.clock.now()).await?,
            figures: parse(&release.released)?,
        })
    }

    /// The released total of every release of a shared audience, oldest first.
    pub async fn sizes(&self, advertiser: i64, id: i64) -> ServiceResult<Vec<SizePoint>> {
        self.shared_record(advertiser, id).await?;
        let mut points = Vec::new();
        for release in self.store.list_releases(id).await?.into_iter().rev() {
            let figures: Figures<Cell> = parse(&release.released)?;
            points.push(SizePoint {
                release_id: release.id,
                released_at: release.made_at,
                total: figures.total,
            });
        }
        Ok(points)
    }

    async fn shared_record(&self, advertiser: i64, id: i64) -> ServiceResult<AudienceRecord> {
        match self.store.get_audience(id).await? {
            Some(record)
                if record.unpublished_at.is_none() && record.advertisers.contains(&advertiser) =>
            {
                Ok(record)
            }
            _ => Err(no_audience(id)),
        }
    }

    async fn published(&self, id: i64) -> ServiceResult<AudienceRecord> {
        let record = self
            .store
            .get_audience(id)
            .await?
            .ok_or_else(|| no_audience(id))?;
        if record.unpublished_at.is_some() {
            return Err(ServiceError::Conflict(format!(
                "audience {id} is unpublished; publish a new audience instead"
            )));
        }
        Ok(record)
    }

    /// Refuses members a few readers away from those of another published audience's last
    /// release.
    async fn refuse_near(
        &self,
        except: Option<i64>,
        members: &[i64],
        min_cell: i64,
    ) -> ServiceResult<()> {
        for other in self.store.list_audiences().await? {
            if Some(other.id) == except || other.unpublished_at.is_some() {
                continue;
            }
            let Some(packed) = self.store.released_members(other.id).await? else {
                continue;
            };
            let differ = audience::difference(members, &audience::unpack_members(&packed));
            let floor = min_cell.max(other.settings.min_cell);
            if audience::differences_too_few(differ, floor) {
                return Err(ServiceError::Conflict(format!(
                    "its consenting members differ from those of the published audience {} \
                     (id {}) by {differ} reader(s), fewer than the minimum cell of {floor}: \
                     side by side the two would tell about those readers. Choose a segment \
                     that differs by none or by at least {floor} readers",
                    other.name, other.id
                )));
            }
        }
        Ok(())
    }

    /// The budget of the period `now` falls in: periods run from publication, each
    /// `budget_days` long.
    async fn budget(&self, record: &AudienceRecord, now: DateTime<Utc>) -> ServiceResult<Budget> {
        let length = Duration::days(i64::from(record.settings.budget_days));
        let elapsed = (now - record.published_at).max(Duration::zero());
        let periods = elapsed.num_seconds() / length.num_seconds().max(1);
        let started = record.published_at + length * i32::try_from(periods).unwrap_or(i32::MAX);
        let spent = self.store.spent_since(record.id, started).await?;
        let per_period = record.settings.budget;
        Ok(Budget {
            per_period,
            spent,
            left: per_period.checked_sub(spent).unwrap_or_default(),
            period_started: started,
            refills_at: started + length,
        })
    }

    async fn view(&self, record: AudienceRecord) -> ServiceResult<AudienceView> {
        let budget = self.budget(&record, self.clock.now()).await?;
        let releases = self.store.list_releases(record.id).await?.len();
        Ok(AudienceView {
            id: record.id,
            name: record.name,
            description: record.description,
            segment: record.segment,
            advertisers: record.advertisers,
            settings: record.settings,
            published_by: record.published_by,
            published_at: record.published_at,
            unpublished_at: record.unpublished_at,
            budget,
            releases,
        })
    }

    async fn shared_view(
        &self,
        record: AudienceRecord,
        now: DateTime<Utc>,
    ) -> ServiceResult<SharedAudience> {
        let budget = self.budget(&record, now).await?;
        let latest = self.store.list_releases(record.id).await?;
        Ok(SharedAudience {
            id: record.id,
            name: record.name,
            description: record.description,
            dimensions: record.settings.dimensions,
            pairs: record.settings.pairs,
            min_cell: record.settings.min_cell,
            released_at: latest.first().map(|r| r.made_at),
            budget,
        })
    }
}

/// The release of a measurement: every count noised once, under the settings' epsilon and
/// the measurement's sensitivity.
fn release_of(
    audience_id: i64,
    settings: &Settings,
    measured: measure::Measurement,
    now: DateTime<Utc>,
) -> ServiceResult<NewRelease> {
    let noise = Noise::new(settings.release_epsilon, measured.sensitivity);
    let released = measured
        .exact
        .release(&noise, settings.min_cell)
        .map_err(|e| ServiceError::Conflict(format!("no release was made: {e}")))?;
    Ok(NewRelease {
        audience_id,
        made_at: now,
        epsilon: settings.release_epsilon,
        sensitivity: i64::from(measured.sensitivity),
        exact: serialize(&measured.exact)?,
        released: serialize(&released)?,
        members: audience::pack_members(&measured.members),
    })
}

fn privacy_of(settings: &Settings, release: &ReleaseRecord) -> Privacy {
    Privacy {
        mechanism: privacy::MECHANISM,
        epsilon: release.epsilon,
        sensitivity: release.sensitivity,
        min_cell: settings.min_cell,
        confidence: privacy::CONFIDENCE,
    }
}

fn check_account(request: AdvertiserRequest) -> ServiceResult<AdvertiserDraft> {
    let mut errors = FieldErrors::default();
    let name = request.name.trim().to_owned();
    if name.is_empty() || name.chars().count() > 100 {
        errors.add(
            "name",
            "an account name has 1 to 100 characters, e.g. \"Acme Travel\"",
        );
    }
    let contact = request.contact_person.map(|c| c.trim().to_owned());
    if contact.as_ref().is_some_and(|c| c.chars().count() > 200) {
        errors.add("contact_person", "a contact has at most 200 characters");
    }
    if request
        .notes
        .as_ref()
        .is_some_and(|n| n.chars().count() > 2000)
    {
        errors.add("notes", "notes have at most 2000 characters");
    }
    errors
        .into_result(AdvertiserDraft {
            name,
            contact_person: contact.filter(|c| !c.is_empty()),
            notes: request.notes,
        })
        .map_err(ServiceError::Invalid)
}

fn taken(e: StoreError, what: &str) -> ServiceError {
    match e {
        StoreError::Conflict(_) => {
            ServiceError::Conflict(format!("{what} of that name exists; choose another name"))
        }
        other => other.into(),
    }
}

fn no_account(id: i64) -> ServiceError {
    ServiceError::NotFound(format!("there is no advertiser account {id}"))
}

fn no_audience(id: i64) -> ServiceError {
    ServiceError::NotFound(format!("there is no audience {id} you can see"))
}

fn serialize<T: Serialize>(value: &T) -> ServiceResult<String> {
    serde_json::to_string(value)
        .map_err(|e| ServiceError::Store(StoreError::Corrupt(format!("release figures: {e}"))))
}

fn parse<T: serde::de::DeserializeOwned>(text: &str) -> ServiceResult<T> {
    serde_json::from_str(text)
        .map_err(|e| ServiceError::Store(StoreError::Corrupt(format!("release figures: {e}"))))
}
