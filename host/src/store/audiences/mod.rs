//! Advertisers and audiences in the store: `AudienceStore` and its records; `sql.rs` holds the
//! SQL both backends run.

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::StoreResult;
use crate::domain::audience::Settings;
use crate::domain::privacy::Epsilon;

/// Advertiser accounts, the audiences published to them, releases and advertisers' requests.
#[async_trait]
pub trait AudienceStore: Send + Sync {
    /// A taken name is a conflict.
    async fn insert_advertiser(
        &self,
        draft: &AdvertiserDraft,
        at: DateTime<Utc>,
    ) -> StoreResult<Advertiser>;
    async fn list_advertisers(&self) -> StoreResult<Vec<Advertiser>>;
    async fn get_advertiser(&self, id: i64) -> StoreResult<Option<Advertiser>>;
    /// A missing account is not found; a taken name is a conflict.
    async fn update_advertiser(
        &self,
        id: i64,
        draft: &AdvertiserDraft,
        at: DateTime<Utc>,
    ) -> StoreResult<Advertiser>;

    /// Publishes an audience with its first release, in one transaction. A taken name is a
    /// conflict.
    async fn insert_audience(
        &self,
        audience: NewAudience,
        release: NewRelease,
    ) -> StoreResult<(AudienceRecord, ReleaseRecord)>;
    /// Every audience, unpublished ones included, newest first.
    async fn list_audiences(&self) -> StoreResult<Vec<AudienceRecord>>;
    /// The published audiences shared with the advertiser, newest first.
    async fn audiences_shared_with(&self, advertiser: i64) -> StoreResult<Vec<AudienceRecord>>;
    async fn get_audience(&self, id: i64) -> StoreResult<Option<AudienceRecord>>;
    /// The audiences made from the segment, unpublished ones included.
    async fn audiences_of_segment(&self, segment_id: i64) -> StoreResult<Vec<AudienceRecord>>;
    /// Stops all access; unpublishing twice keeps the first instant. Missing: not found.
    async fn unpublish_audience(&self, id: i64, at: DateTime<Utc>) -> StoreResult<AudienceRecord>;
    /// The packed consented members of the audience's last release.
    async fn released_members(&self, audience_id: i64) -> StoreResult<Option<Vec<u8>>>;

    /// Stores a release of a published audience and its members, unless another release
    /// since `spacing_since` exists or the releases since `period_start` with this one would
    /// spend more than `budget`: then a conflict, and nothing is written.
    async fn insert_release(
        &self,
        release: NewRelease,
        period_start: DateTime<Utc>,
        spacing_since: DateTime<Utc>,
        budget: Epsilon,
    ) -> StoreResult<ReleaseRecord>;
    /// The audience's releases, newest first.
    async fn list_releases(&self, audience_id: i64) -> StoreResult<Vec<ReleaseRecord>>;
    /// What the audience's releases and delivered bookings since `since` spent together.
    async fn spent_since(&self, audience_id: i64, since: DateTime<Utc>) -> StoreResult<Epsilon>;

    async fn insert_booking(&self, booking: NewBooking) -> StoreResult<BookingRecord>;
    async fn get_booking(&self, id: i64) -> StoreResult<Option<BookingRecord>>;
    /// The audience's bookings, of one account or of all, newest first.
    async fn list_bookings(
        &self,
        audience_id: i64,
        advertiser: Option<i64>,
    ) -> StoreResult<Vec<BookingRecord>>;
    /// Accepts or declines a requested booking; one decided already is a conflict.
    async fn decide_booking(&self, id: i64, decision: Decision) -> StoreResult<BookingRecord>;
    /// Records an accepted booking as delivered with its reach, unless what the audience's
    /// releases and deliveries since `period_start` spent, with this, would pass `budget`:
    /// then a conflict, and nothing is written.
    async fn deliver_booking(
        &self,
        delivery: Delivery,
        period_start: DateTime<Utc>,
        budget: Epsilon,
    ) -> StoreResult<BookingRecord>;

    async fn record_audience_request(&self, request: NewAudienceRequest) -> StoreResult<()>;
    /// Requests with an id above `after`, oldest first; of one audience, or of all.
    async fn list_audience_requests(
        &self,
        audience_id: Option<i64>,
        after: i64,
        limit: i64,
    ) -> StoreResult<Vec<AudienceRequest>>;
}

/// An advertiser account: the keys bound to it see the audiences shared with it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Advertiser {
    pub id: i64,
    pub name: String,
    pub contact_person: Option<String>,
    pub notes: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What an admin says of an account.
#[derive(Debug, Clone)]
pub struct AdvertiserDraft {
    pub name: String,
    pub contact_person: Option<String>,
    pub notes: Option<String>,
}

/// A published (or unpublished) audience.
#[derive(Debug, Clone)]
pub struct AudienceRecord {
    pub id: i64,
    pub name: String,
    pub description: Option<String>,
    pub segment_id: i64,
    pub segment: String,
    pub settings: Settings,
    /// The advertiser accounts it is shared with, by id.
    pub advertisers: Vec<i64>,
    pub published_by: String,
    pub published_at: DateTime<Utc>,
    pub unpublished_at: Option<DateTime<Utc>>,
}

pub struct NewAudience {
    pub name: String,
    pub description: Option<String>,
    pub segment_id: i64,
    pub settings: Settings,
    pub advertisers: Vec<i64>,
    pub published_by: String,
    pub at: DateTime<Utc>,
}

/// One release: its figures as stored JSON, exact and as advertisers see them.
#[derive(Debug, Clone)]
pub struct ReleaseRecord {
    pub id: i64,
    pub audience_id: i64,
    pub made_at: DateTime<Utc>,
    pub epsilon: Epsilon,
    pub sensitivity: i64,
    pub exact: String,
    pub released: String,
}

/// A release to store; `audience_id` is ignored when it comes with its audience.
pub struct NewRelease {
    pub audience_id: i64,
    pub made_at: DateTime<Utc>,
    pub epsilon: Epsilon,
    pub sensitivity: i64,
    pub exact: String,
    pub released: String,
    /// The consented members counted, packed.
    pub members: Vec<u8>,
}

/// One request an advertiser made, for the publisher's audit.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AudienceRequest {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub advertiser_id: i64,
    pub key_id: i64,
    pub audience_id: Option<i64>,
    pub release_id: Option<i64>,
    /// What was asked: `audiences`, `audience`, `release`, `release.csv`, `history`,
    /// `booking` or `bookings`.
    pub what: String,
    pub request_id: Option<String>,
}

pub struct NewAudienceRequest {
    pub at: DateTime<Utc>,
    pub advertiser_id: i64,
    pub key_id: i64,
    pub audience_id: Option<i64>,
    pub release_id: Option<i64>,
    pub what: &'static str,
    pub request_id: Option<String>,
}

/// A placement booked on an audience.
#[derive(Debug, Clone)]
pub struct BookingRecord {
    pub id: i64,
    pub audience_id: i64,
    pub advertiser_id: i64,
    pub placement: String,
    pub starts_on: NaiveDate,
    pub ends_on: NaiveDate,
    pub note: Option<String>,
    pub state: String,
    pub requested_at: DateTime<Utc>,
    pub decided_at: Option<DateTime<Utc>>,
    pub decided_by: Option<String>,
    pub reason: Option<String>,
    pub delivered_at: Option<DateTime<Utc>>,
    /// The readers reached, exactly: for staff only.
    pub exact_reach: Option<i64>,
    /// The reach as released, JSON.
    pub reach: Option<String>,
    pub reach_epsilon: Option<Epsilon>,
}

pub struct NewBooking {
    pub audience_id: i64,
    pub advertiser_id: i64,
    pub placement: String,
    pub starts_on: NaiveDate,
    pub ends_on: NaiveDate,
    pub note: Option<String>,
    pub at: DateTime<Utc>,
}

/// Staff's answer to a booking request.
pub struct Decision {
    pub accept: bool,
    pub by: String,
    pub reason: Option<String>,
    pub at: DateTime<Utc>,
}

/// A booking delivered, with its reach.
pub struct Delivery {
    pub booking_id: i64,
    pub audience_id: i64,
    pub exact_reach: i64,
    pub reach: String,
    pub epsilon: Epsilon,
    pub at: DateTime<Utc>,
}
