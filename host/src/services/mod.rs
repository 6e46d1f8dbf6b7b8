//! Application services: the domain rules applied to stored data, free of SQL and HTTP.

pub mod audiences;
pub mod audit;
pub mod auto_renewal;
pub mod backup;
pub mod catalogue;
pub mod clock;
pub mod clubs;
pub mod complaints;
pub mod demo;
pub mod imports;
pub mod jobs;
pub mod keys;
pub mod legacy;
pub mod pipeline;
pub mod plugins;
pub mod renewals;
pub mod segments;
pub mod subscribers;
pub mod timeline;

use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::search::TermKind;
use crate::domain::{FieldErrors, SubscriberNumber};
use crate::store::{StoreError, SubscriberSummary};

/// Why a service call did not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("the request has invalid fields")]
    Invalid(FieldErrors),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// The subscriber seems to exist already; the caller may confirm and create anyway.
    #[error("possible duplicates found")]
    PossibleDuplicates(Vec<DuplicateCandidate>),
    /// The number was merged into another; the caller should go there.
    #[error("subscriber {from} was merged into {to}")]
    Moved {
        from: SubscriberNumber,
        to: SubscriberNumber,
    },
    /// An idempotency key sent again with a different request.
    #[error("the idempotency key was used for a different request")]
    IdempotencyKeyReused,
    /// An audience's privacy budget for the period is spent; it refills at `refills_at`.
    #[error("{detail}")]
    BudgetSpent {
        detail: String,
        refills_at: chrono::DateTime<chrono::Utc>,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// An existing subscriber that matches a new one, and on what.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DuplicateCandidate {
    #[serde(flatten)]
    pub subscriber: SubscriberSummary,
    /// `email`, `phone` or `name_and_postal_code`.
    pub matched_on: Vec<&'static str>,
}

pub(crate) fn match_label(kind: TermKind) -> &'static str {
    match kind {
        TermKind::Email => "email",
        TermKind::Phone => "phone",
        TermKind::Identity => "name_and_postal_code",
        TermKind::Name => "name",
        TermKind::Postal => "postal_code",
    }
}

pub type ServiceResult<T> = Result<T, ServiceError>;
