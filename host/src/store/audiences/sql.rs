//! Advertisers and audiences in storage: accounts, audiences with the accounts they are shared
//! with, releases and deliveries written under the audience's budget, bookings, and the audit
//! of advertisers' requests.

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use sqlx::FromRow;

use super::{Connection, Db};
use crate::domain::privacy::Epsilon;
use crate::store::backend::SqlStore;
use crate::store::{
    Advertiser, AdvertiserDraft, AudienceRecord, AudienceRequest, AudienceStore, BookingRecord,
    Decision, Delivery, NewAudience, NewAudienceRequest, NewBooking, NewRelease, ReleaseRecord,
    StoreError, StoreResult,
};

const ADVERTISER_COLUMNS: &str = "id, name, contact_person, notes, created_at, updated_at";
const AUDIENCE_COLUMNS: &str = "a.id, a.name, a.description, a.segment_id, s.name AS segment, \
     a.settings, a.published_by, a.published_at, a.unpublished_at";
const AUDIENCE_FROM: &str = "audiences a JOIN segments s ON s.id = a.segment_id";
const RELEASE_COLUMNS: &str = "id, audience_id, made_at, epsilon, sensitivity, exact, released";
const BOOKING_COLUMNS: &str = "id, audience_id, advertiser_id, placement, starts_on, ends_on, \
     note, state, requested_at, decided_at, decided_by, reason, delivered_at, exact_reach, \
     reach, reach_epsilon";
/// What an audience's releases and delivered bookings spent since `$2`.
const SPENT: &str = "SELECT CAST(COALESCE((SELECT SUM(epsilon) FROM audience_releases \
     WHERE audience_id = $1 AND made_at >= $2), 0) + COALESCE((SELECT SUM(reach_epsilon) \
     FROM audience_bookings WHERE audience_id = $1 AND delivered_at >= $2), 0) AS BIGINT)";
const REQUEST_COLUMNS: &str =
    "id, at, advertiser_id, key_id, audience_id, release_id, what, request_id";

#[derive(FromRow)]
struct AdvertiserRow {
    id: i64,
    name: String,
    contact_person: Option<String>,
    notes: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<AdvertiserRow> for Advertiser {
    fn from(r: AdvertiserRow) -> Self {
        Self {
            id: r.id,
            name: r.name,
            contact_person: r.contact_person,
            notes: r.notes,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

#[derive(FromRow)]
struct AudienceRow {
    id: i64,
    name: String,
    description: Option<String>,
    segment_id: i64,
    segment: String,
    settings: String,
    published_by: String,
    published_at: DateTime<Utc>,
    unpublished_at: Option<DateTime<Utc>>,
}

impl AudienceRow {
    fn into_record(self, advertisers: Vec<i64>) -> StoreResult<AudienceRecord> {
        let settings = serde_json::from_str(&self.settings).map_err(|e| {
            StoreError::Corrupt(format!("the settings of audience {}: {e}", self.name))
        })?;
        Ok(AudienceRecord {
            id: self.id,
            name: self.name,
            description: self.description,
            segment_id: self.segment_id,
            segment: self.segment,
            settings,
            advertisers,
            published_by: self.published_by,
            published_at: self.published_at,
            unpublished_at: self.unpublished_at,
        })
    }
}

#[derive(FromRow)]
struct ReleaseRow {
    id: i64,
    audience_id: i64,
    made_at: DateTime<Utc>,
    epsilon: i64,
    sensitivity: i64,
    exact: String,
    released: String,
}

impl TryFrom<ReleaseRow> for ReleaseRecord {
    type Error = StoreError;

    fn try_from(r: ReleaseRow) -> StoreResult<Self> {
        Ok(Self {
            id: r.id,
            audience_id: r.audience_id,
            made_at: r.made_at,
            epsilon: thousandths(r.epsilon)?,
            sensitivity: r.sensitivity,
            exact: r.exact,
            released: r.released,
        })
    }
}

fn thousandths(value: i64) -> StoreResult<Epsilon> {
    u32::try_from(value)
        .map(Epsilon::from_thousandths)
        .map_err(|_| StoreError::Corrupt(format!("an epsilon of {value} thousandths")))
}

#[derive(FromRow)]
struct BookingRow {
    id: i64,
    audience_id: i64,
    advertiser_id: i64,
    placement: String,
    starts_on: NaiveDate,
    ends_on: NaiveDate,
    note: Option<String>,
    state: String,
    requested_at: DateTime<Utc>,
    decided_at: Option<DateTime<Utc>>,
    decided_by: Option<String>,
    reason: Option<String>,
    delivered_at: Option<DateTime<Utc>>,
    exact_reach: Option<i64>,
    reach: Option<String>,
    reach_epsilon: Option<i64>,
}

impl TryFrom<BookingRow> for BookingRecord {
    type Error = StoreError;

    fn try_from(r: BookingRow) -> StoreResult<Self> {
        Ok(Self {
            id: r.id,
            audience_id: r.audience_id,
            advertiser_id: r.advertiser_id,
            placement: r.placement,
            starts_on: r.starts_on,
            ends_on: r.ends_on,
            note: r.note,
            state: r.state,
            requested_at: r.requested_at,
            decided_at: r.decided_at,
            decided_by: r.decided_by,
            reason: r.reason,
            delivered_at: r.delivered_at,
            exact_reach: r.exact_reach,
            reach: r.reach,
            reach_epsilon: r.reach_epsilon.map(thousandths).transpose()?,
        })
    }
}

#[derive(FromRow)]
struct RequestRow {
    id: i64,
    at: DateTime<Utc>,
    advertiser_id: i64,
    key_id: i64,
    audience_id: Option<i64>,
    release_id: Option<i64>,
    what: String,
    request_id: Option<String>,
}

impl From<RequestRow> for AudienceRequest {
    fn from(r: RequestRow) -> Self {
        Self {
            id: r.id,
            at: r.at,
            advertiser_id: r.advertiser_id,
            key_id: r.key_id,
            audience_id: r.audience_id,
            release_id: r.release_id,
            what: r.what,
            request_id: r.request_id,
        }
    }
}

impl SqlStore<Db> {
    /// The audiences the rows name, each with the accounts it is shared with.
    async fn with_advertisers(&self, rows: Vec<AudienceRow>) -> StoreResult<Vec<AudienceRecord>> {
        let pairs: Vec<(i64, i64)> = sqlx::query_as(
            "SELECT audience_id, advertiser_id FROM audience_advertisers \
             ORDER BY audience_id, advertiser_id",
        )
        .fetch_all(&self.read)
        .await?;
        let mut shared: HashMap<i64, Vec<i64>> = HashMap::new();
        for (audience, advertiser) in pairs {
            shared.entry(audience).or_default().push(advertiser);
        }
        rows.into_iter()
            .map(|row| {
                let advertisers = shared.remove(&row.id).unwrap_or_default();
                row.into_record(advertisers)
            })
            .collect()
    }

    async fn audiences_where(
        &self,
        condition: &str,
        value: i64,
    ) -> StoreResult<Vec<AudienceRecord>> {
        let sql = format!(
            "SELECT {AUDIENCE_COLUMNS} FROM {AUDIENCE_FROM} WHERE {condition} ORDER BY a.id DESC"
        );
        let rows: Vec<AudienceRow> = sqlx::query_as(&sql)
            .bind(value)
            .fetch_all(&self.read)
            .await?;
        self.with_advertisers(rows).await
    }
}

/// Locks the published audience's row until `tx` ends, so that two spends of its budget are
/// made one after the other; `members`, when given, become the last release's.
async fn lock_audience(
    tx: &mut Connection,
    audience_id: i64,
    members: Option<&[u8]>,
) -> StoreResult<()> {
    let locked = sqlx::query(
        "UPDATE audiences SET members = COALESCE($2, members) \
         WHERE id = $1 AND unpublished_at IS NULL",
    )
    .bind(audience_id)
    .bind(members)
    .execute(&mut *tx)
    .await?;
    if locked.rows_affected() == 0 {
        return Err(StoreError::Conflict("the audience is not published".into()));
    }
    Ok(())
}

/// Refuses a spend of `epsilon` that, with what was spent since `since`, passes `budget`.
async fn within_budget(
    tx: &mut Connection,
    audience_id: i64,
    since: DateTime<Utc>,
    epsilon: Epsilon,
    budget: Epsilon,
) -> StoreResult<()> {
    let (spent,): (i64,) = sqlx::query_as(SPENT)
        .bind(audience_id)
        .bind(since)
        .fetch_one(&mut *tx)
        .await?;
    if spent + i64::from(epsilon.thousandths()) > i64::from(budget.thousandths()) {
        return Err(StoreError::Conflict(
            "it would overdraw the audience's budget".into(),
        ));
    }
    Ok(())
}

/// Writes a release in the transaction of `tx`.
async fn write_release(tx: &mut Connection, release: &NewRelease) -> StoreResult<ReleaseRecord> {
    let sql = format!(
        "INSERT INTO audience_releases (audience_id, made_at, epsilon, sensitivity, exact, \
         released) VALUES ($1, $2, $3, $4, $5, $6) RETURNING {RELEASE_COLUMNS}"
    );
    let row: ReleaseRow = sqlx::query_as(&sql)
        .bind(release.audience_id)
        .bind(release.made_at)
        .bind(i64::from(release.epsilon.thousandths()))
        .bind(release.sensitivity)
        .bind(&release.exact)
        .bind(&release.released)
        .fetch_one(&mut *tx)
        .await?;
    row.try_into()
}

#[async_trait]
impl AudienceStore for SqlStore<Db> {
    #[tracing::instrument(level = "debug", skip_all)]
    async fn insert_advertiser(
        &self,
        draft: &AdvertiserDraft,
        at: DateTime<Utc>,
    ) -> StoreResult<Advertiser> {
        let sql = format!(
            "INSERT INTO advertisers (name, contact_person, notes, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $4) RETURNING {ADVERTISER_COLUMNS}"
        );
        let row: AdvertiserRow = sqlx::query_as(&sql)
            .bind(&draft.name)
            .bind(&draft.contact_person)
            .bind(&draft.notes)
            .bind(at)
            .fetch_one(&self.write)
            .await?;
        Ok(row.into())
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn list_advertisers(&self) -> StoreResult<Vec<Advertiser>> {
        let sql = format!("SELECT {ADVERTISER_COLUMNS} FROM advertisers ORDER BY id");
        let rows: Vec<AdvertiserRow> = sqlx::query_as(&sql).fetch_all(&self.read).await?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn get_advertiser(&self, id: i64) -> StoreResult<Option<Advertiser>> {
        let sql = format!("SELECT {ADVERTISER_COLUMNS} FROM advertisers WHERE id = $1");
        let row: Option<AdvertiserRow> = sqlx::query_as(&sql)
            .bind(id)
            .fetch_optional(&self.read)
            .await?;
        Ok(row.map(Into::into))
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn update_advertiser(
        &self,
        id: i64,
        draft: &AdvertiserDraft,
        at: DateTime<Utc>,
    ) -> StoreResult<Advertiser> {
        let sql = format!(
            "UPDATE advertisers SET name = $2, contact_person = $3, notes = $4, updated_at = $5 \
             WHERE id = $1 RETURNING {ADVERTISER_COLUMNS}"
        );
        let row: Option<AdvertiserRow> = sqlx::query_as(&sql)
            .bind(id)
            .bind(&draft.name)
            .bind(&draft.contact_person)
            .bind(&draft.notes)
            .bind(at)
            .fetch_optional(&self.write)
            .await?;
        row.map(Into::into).ok_or(StoreError::NotFound)
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn insert_audience(
        &self,
        audience: NewAudience,
        mut release: NewRelease,
    ) -> StoreResult<(AudienceRecord, ReleaseRecord)> {
        let settings = serde_json::to_string(&audience.settings)
            .map_err(|e| StoreError::Corrupt(format!("audience settings: {e}")))?;
        let mut tx = self.write.begin().await?;
        let (id,): (i64,) = sqlx::query_as(
            "INSERT INTO audiences (name, description, segment_id, settings, published_by, \
             published_at, members) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        )
        .bind(&audience.name)
        .bind(&audience.description)
        .bind(audience.segment_id)
        .bind(&settings)
        .bind(&audience.published_by)
        .bind(audience.at)
        .bind(&release.members)
        .fetch_one(&mut *tx)
        .await?;
        for advertiser in &audience.advertisers {
            sqlx::query(
                "INSERT INTO audience_advertisers (audience_id, advertiser_id) VALUES ($1, $2)",
            )
            .bind(id)
            .bind(advertiser)
            .execute(&mut *tx)
            .await?;
        }
        release.audience_id = id;
        let stored = write_release(&mut tx, &release).await?;
        tx.commit().await?;
        let record = self.get_audience(id).await?.ok_or(StoreError::NotFound)?;
        Ok((record, stored))
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn list_audiences(&self) -> StoreResult<Vec<AudienceRecord>> {
        self.audiences_where("$1 = $1", 0).await
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn audiences_shared_with(&self, advertiser: i64) -> StoreResult<Vec<AudienceRecord>> {
        self.audiences_where(
            "a.unpublished_at IS NULL AND a.id IN \
             (SELECT audience_id FROM audience_advertisers WHERE advertiser_id = $1)",
            advertiser,
        )
        .await
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn get_audience(&self, id: i64) -> StoreResult<Option<AudienceRecord>> {
        Ok(self.audiences_where("a.id = $1", id).await?.pop())
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn audiences_of_segment(&self, segment_id: i64) -> StoreResult<Vec<AudienceRecord>> {
        self.audiences_where("a.segment_id = $1", segment_id).await
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn unpublish_audience(&self, id: i64, at: DateTime<Utc>) -> StoreResult<AudienceRecord> {
        let done = sqlx::query(
            "UPDATE audiences SET unpublished_at = COALESCE(unpublished_at, $2) WHERE id = $1",
        )
        .bind(id)
        .bind(at)
        .execute(&self.write)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        self.get_audience(id).await?.ok_or(StoreError::NotFound)
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn released_members(&self, audience_id: i64) -> StoreResult<Option<Vec<u8>>> {
        let row: Option<(Option<Vec<u8>>,)> =
            sqlx::query_as("SELECT members FROM audiences WHERE id = $1")
                .bind(audience_id)
                .fetch_optional(&self.read)
                .await?;
        Ok(row.and_then(|(members,)| members))
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn insert_release(
        &self,
        release: NewRelease,
        period_start: DateTime<Utc>,
        spacing_since: DateTime<Utc>,
        budget: Epsilon,
    ) -> StoreResult<ReleaseRecord> {
        let mut tx = self.write.begin().await?;
        // First, so that the audience's row stays locked until the release is in: two
        // releases made at once cannot both spend the last of the budget.
        lock_audience(&mut tx, release.audience_id, Some(&release.members)).await?;
        let (recent,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM audience_releases WHERE audience_id = $1 AND made_at > $2",
        )
        .bind(release.audience_id)
        .bind(spacing_since)
        .fetch_one(&mut *tx)
        .await?;
        if recent > 0 {
            return Err(StoreError::Conflict(
                "another release of this audience was made in the meantime".into(),
            ));
        }
        within_budget(
            &mut tx,
            release.audience_id,
            period_start,
            release.epsilon,
            budget,
        )
        .await?;
        let stored = write_release(&mut tx, &release).await?;
        tx.commit().await?;
        Ok(stored)
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn list_releases(&self, audience_id: i64) -> StoreResult<Vec<ReleaseRecord>> {
        let sql = format!(
            "SELECT {RELEASE_COLUMNS} FROM audience_releases WHERE audience_id = $1 \
             ORDER BY id DESC"
        );
        let rows: Vec<ReleaseRow> = sqlx::query_as(&sql)
            .bind(audience_id)
            .fetch_all(&self.read)
            .await?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn spent_since(&self, audience_id: i64, since: DateTime<Utc>) -> StoreResult<Epsilon> {
        let (spent,): (i64,) = sqlx::query_as(SPENT)
            .bind(audience_id)
            .bind(since)
            .fetch_one(&self.read)
            .await?;
        thousandths(spent)
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn insert_booking(&self, booking: NewBooking) -> StoreResult<BookingRecord> {
        let sql = format!(
            "INSERT INTO audience_bookings (audience_id, advertiser_id, placement, starts_on, \
             ends_on, note, state, requested_at) VALUES ($1, $2, $3, $4, $5, $6, 'requested', \
             $7) RETURNING {BOOKING_COLUMNS}"
        );
        let row: BookingRow = sqlx::query_as(&sql)
            .bind(booking.audience_id)
            .bind(booking.advertiser_id)
            .bind(&booking.placement)
            .bind(booking.starts_on)
            .bind(booking.ends_on)
            .bind(&booking.note)
            .bind(booking.at)
            .fetch_one(&self.write)
            .await?;
        row.try_into()
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn get_booking(&self, id: i64) -> StoreResult<Option<BookingRecord>> {
        let sql = format!("SELECT {BOOKING_COLUMNS} FROM audience_bookings WHERE id = $1");
        let row: Option<BookingRow> = sqlx::query_as(&sql)
            .bind(id)
            .fetch_optional(&self.read)
            .await?;
        row.map(TryInto::try_into).transpose()
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn list_bookings(
        &self,
        audience_id: i64,
        advertiser: Option<i64>,
    ) -> StoreResult<Vec<BookingRecord>> {
        let sql = format!(
            "SELECT {BOOKING_COLUMNS} FROM audience_bookings WHERE audience_id = $1 \
             AND ($2 IS NULL OR advertiser_id = $2) ORDER BY id DESC"
        );
        let rows: Vec<BookingRow> = sqlx::query_as(&sql)
            .bind(audience_id)
            .bind(advertiser)
            .fetch_all(&self.read)
            .await?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn decide_booking(&self, id: i64, decision: Decision) -> StoreResult<BookingRecord> {
        let sql = format!(
            "UPDATE audience_bookings SET state = $2, decided_by = $3, reason = $4, \
             decided_at = $5 WHERE id = $1 AND state = 'requested' RETURNING {BOOKING_COLUMNS}"
        );
        let state = if decision.accept {
            "accepted"
        } else {
            "declined"
        };
        let row: Option<BookingRow> = sqlx::query_as(&sql)
            .bind(id)
            .bind(state)
            .bind(&decision.by)
            .bind(&decision.reason)
            .bind(decision.at)
            .fetch_optional(&self.write)
            .await?;
        match row {
            Some(row) => row.try_into(),
            None => match self.get_booking(id).await? {
                Some(booking) => Err(StoreError::Conflict(format!(
                    "the booking is {} already",
                    booking.state
                ))),
                None => Err(StoreError::NotFound),
            },
        }
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn deliver_booking(
        &self,
        delivery: Delivery,
        period_start: DateTime<Utc>,
        budget: Epsilon,
    ) -> StoreResult<BookingRecord> {
        let mut tx = self.write.begin().await?;
        lock_audience(&mut tx, delivery.audience_id, None).await?;
        within_budget(
            &mut tx,
            delivery.audience_id,
            period_start,
            delivery.epsilon,
            budget,
        )
        .await?;
        let sql = format!(
            "UPDATE audience_bookings SET state = 'delivered', delivered_at = $2, \
             exact_reach = $3, reach = $4, reach_epsilon = $5 \
             WHERE id = $1 AND state = 'accepted' RETURNING {BOOKING_COLUMNS}"
        );
        let row: Option<BookingRow> = sqlx::query_as(&sql)
            .bind(delivery.booking_id)
            .bind(delivery.at)
            .bind(delivery.exact_reach)
            .bind(&delivery.reach)
            .bind(i64::from(delivery.epsilon.thousandths()))
            .fetch_optional(&mut *tx)
            .await?;
        let row = row.ok_or_else(|| {
            StoreError::Conflict("only an accepted booking is delivered, once".into())
        })?;
        tx.commit().await?;
        row.try_into()
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn record_audience_request(&self, request: NewAudienceRequest) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO audience_requests (at, advertiser_id, key_id, audience_id, release_id, \
             what, request_id) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(request.at)
        .bind(request.advertiser_id)
        .bind(request.key_id)
        .bind(request.audience_id)
        .bind(request.release_id)
        .bind(request.what)
        .bind(request.request_id)
        .execute(&self.write)
        .await?;
        Ok(())
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn list_audience_requests(
        &self,
        audience_id: Option<i64>,
        after: i64,
        limit: i64,
    ) -> StoreResult<Vec<AudienceRequest>> {
        let sql = format!(
            "SELECT {REQUEST_COLUMNS} FROM audience_requests \
             WHERE id > $1 AND ($2 IS NULL OR audience_id = $2) ORDER BY id LIMIT $3"
        );
        let rows: Vec<RequestRow> = sqlx::query_as(&sql)
            .bind(after)
            .bind(audience_id)
            .bind(limit)
            .fetch_all(&self.read)
            .await?;
        Ok(rows.into_iter().map(Into::into).collect())
    }
}
