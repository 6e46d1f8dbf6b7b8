//! Bookings: an advertiser books a placement on an audience shared with them (a print insert
//! delivered to its readers, or a digital placement, over a range of days), staff accept or
//! decline it, and once delivered the advertiser is shown the reach noised and thresholded,
//! spent from the audience's budget like a release. No list of readers ever leaves.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{Audiences, measure, parse, serialize};
use crate::domain::FieldErrors;
use crate::domain::audience;
use crate::domain::privacy::{Cell, Noise};
use crate::services::subscribers::Caller;
use crate::services::{ServiceError, ServiceResult};
use crate::store::{BookingRecord, Decision, Delivery, NewBooking, StoreError};

/// Where an advertiser's message is placed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Placement {
    /// An insert in the print edition delivered to the audience's print readers.
    PrintInsert,
    /// A placement shown to the audience's digital readers.
    Digital,
}

impl Placement {
    fn as_str(self) -> &'static str {
        match self {
            Self::PrintInsert => "print_insert",
            Self::Digital => "digital",
        }
    }
}

/// What an advertiser sends to book a placement.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BookingRequest {
    pub placement: Placement,
    /// The first day of the placement, today or later.
    pub starts_on: NaiveDate,
    /// The last day, at most a year after the first.
    pub ends_on: NaiveDate,
    /// For the publisher, e.g. the creative's reference.
    pub note: Option<String>,
}

/// Staff's answer to a booking.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DecisionRequest {
    pub accept: bool,
    /// Why, shown to the advertiser; required to decline.
    pub reason: Option<String>,
}

/// A booking as the advertiser sees it: the reach released, never exact.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BookingView {
    pub id: i64,
    pub audience_id: i64,
    pub advertiser_id: i64,
    pub placement: String,
    pub starts_on: NaiveDate,
    pub ends_on: NaiveDate,
    pub note: Option<String>,
    /// `requested`, `accepted`, `declined` or `delivered`.
    pub state: String,
    pub requested_at: chrono::DateTime<chrono::Utc>,
    pub decided_at: Option<chrono::DateTime<chrono::Utc>>,
    pub reason: Option<String>,
    pub delivered_at: Option<chrono::DateTime<chrono::Utc>>,
    /// The readers reached, noised and thresholded like a release's cells.
    pub reach: Option<Cell>,
    /// What releasing the reach spent of the audience's budget.
    #[schema(value_type = Option<f64>)]
    pub reach_epsilon: Option<crate::domain::privacy::Epsilon>,
}

/// A booking as staff see it: the exact reach beside what the advertiser was shown.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StaffBookingView {
    #[serde(flatten)]
    pub booking: BookingView,
    pub decided_by: Option<String>,
    pub exact_reach: Option<i64>,
}

impl Audiences {
    /// Books a placement on an audience shared with the advertiser.
    pub async fn book(
        &self,
        advertiser: i64,
        id: i64,
        request: BookingRequest,
    ) -> ServiceResult<BookingView> {
        self.shared_record(advertiser, id).await?;
        let today = self.clock.today();
        let mut errors = FieldErrors::default();
        if request.starts_on < today {
            errors.add(
                "starts_on",
                format!("a placement starts today ({today}) or later"),
            );
        }
        if request.ends_on < request.starts_on {
            errors.add("ends_on", "the last day is on or after the first");
        } else if (request.ends_on - request.starts_on).num_days() > 366 {
            errors.add("ends_on", "a placement lasts at most a year");
        }
        if request
            .note
            .as_ref()
            .is_some_and(|n| n.chars().count() > 500)
        {
            errors.add("note", "a note has at most 500 characters");
        }
        errors.into_result(()).map_err(ServiceError::Invalid)?;
        let booking = self
            .store
            .insert_booking(NewBooking {
                audience_id: id,
                advertiser_id: advertiser,
                placement: request.placement.as_str().to_owned(),
                starts_on: request.starts_on,
                ends_on: request.ends_on,
                note: request.note,
                at: self.clock.now(),
            })
            .await?;
        advertiser_view(booking)
    }

    /// The advertiser's bookings on an audience shared with them, newest first.
    pub async fn bookings_of(&self, advertiser: i64, id: i64) -> ServiceResult<Vec<BookingView>> {
        self.shared_record(advertiser, id).await?;
        let bookings = self.store.list_bookings(id, Some(advertiser)).await?;
        bookings.into_iter().map(advertiser_view).collect()
    }

    /// Every booking on the audience, newest first, with the exact reach.
    pub async fn bookings(&self, id: i64) -> ServiceResult<Vec<StaffBookingView>> {
        self.get(id).await?;
        let bookings = self.store.list_bookings(id, None).await?;
        bookings.into_iter().map(staff_view).collect()
    }

    /// Accepts or declines a requested booking.
    pub async fn decide(
        &self,
        caller: &Caller,
        booking: i64,
        request: DecisionRequest,
    ) -> ServiceResult<StaffBookingView> {
        let reason = request
            .reason
            .map(|r| r.trim().to_owned())
            .filter(|r| !r.is_empty());
        if !request.accept && reason.is_none() {
            return Err(ServiceError::Invalid(FieldErrors::single(
                "reason",
                "say why the booking is declined; the advertiser is shown it",
            )));
        }
        if reason.as_ref().is_some_and(|r| r.chars().count() > 500) {
            return Err(ServiceError::Invalid(FieldErrors::single(
                "reason",
                "a reason has at most 500 characters",
            )));
        }
        let decision = Decision {
            accept: request.accept,
            by: caller.actor.name.clone(),
            reason,
            at: self.clock.now(),
        };
        match self.store.decide_booking(booking, decision).await {
            Err(StoreError::NotFound) => Err(no_booking(booking)),
            Err(StoreError::Conflict(why)) => Err(ServiceError::Conflict(why)),
            other => staff_view(other?),
        }
    }

    /// Records an accepted booking whose last day has passed as delivered: its reach is the
    /// readers of the audience's last release the placement reached, released noised under
    /// the audience's release epsilon (one reader moves it by one) and its minimum cell.
    pub async fn deliver(&self, booking: i64) -> ServiceResult<StaffBookingView> {
        let found = self.store.get_booking(booking).await?;
        let found = found.ok_or_else(|| no_booking(booking))?;
        if found.state != "accepted" {
            return Err(ServiceError::Conflict(format!(
                "the booking is {}; only an accepted booking is delivered, once",
                found.state
            )));
        }
        let today = self.clock.today();
        if found.ends_on >= today {
            return Err(ServiceError::Conflict(format!(
                "the placement runs until {}; record its delivery from the day after",
                found.ends_on
            )));
        }
        let record = self.published(found.audience_id).await?;
        let settings = &record.settings;
        let now = self.clock.now();
        let budget = self.budget(&record, now).await?;
        if budget.left < settings.release_epsilon {
            return Err(ServiceError::BudgetSpent {
                detail: format!(
                    "releasing the reach spends {} and only {} of this period's budget is \
                     left; it refills at {}",
                    settings.release_epsilon,
                    budget.left,
                    budget.refills_at.to_rfc3339()
                ),
                refills_at: budget.refills_at,
            });
        }
        let packed = self.store.released_members(record.id).await?;
        let members = audience::unpack_members(&packed.unwrap_or_default());
        let print = found.placement == Placement::PrintInsert.as_str();
        let exact =
            measure::reach(&self.store, members, print, found.starts_on, found.ends_on).await?;
        let noise = Noise::new(settings.release_epsilon, 1);
        let noised = noise
            .noised(exact)
            .map_err(|e| ServiceError::Conflict(format!("no reach was released: {e}")))?;
        let reach = Cell::release(noised, &noise, settings.min_cell);
        let delivery = Delivery {
            booking_id: booking,
            audience_id: record.id,
            exact_reach: exact,
            reach: serialize(&reach)?,
            epsilon: settings.release_epsilon,
            at: now,
        };
        match self
            .store
            .deliver_booking(delivery, budget.period_started, settings.budget)
            .await
        {
            Err(StoreError::Conflict(why)) => Err(ServiceError::Conflict(format!(
                "the delivery was not recorded: {why}"
            ))),
            other => staff_view(other?),
        }
    }
}

fn advertiser_view(b: BookingRecord) -> ServiceResult<BookingView> {
    Ok(BookingView {
        reach: b.reach.as_deref().map(parse).transpose()?,
        id: b.id,
        audience_id: b.audience_id,
        advertiser_id: b.advertiser_id,
        placement: b.placement,
        starts_on: b.starts_on,
        ends_on: b.ends_on,
        note: b.note,
        state: b.state,
        requested_at: b.requested_at,
        decided_at: b.decided_at,
        reason: b.reason,
        delivered_at: b.delivered_at,
        reach_epsilon: b.reach_epsilon,
    })
}

fn staff_view(b: BookingRecord) -> ServiceResult<StaffBookingView> {
    let (decided_by, exact_reach) = (b.decided_by.clone(), b.exact_reach);
    Ok(StaffBookingView {
        booking: advertiser_view(b)?,
        decided_by,
        exact_reach,
    })
}

fn no_booking(id: i64) -> ServiceError {
    ServiceError::NotFound(format!("there is no booking {id}"))
}
