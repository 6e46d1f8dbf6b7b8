//! Consents: what a reader agreed to, when, and how; every change is kept as history.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// What a reader can consent to.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum ConsentPurpose {
    MarketingEmail,
    MarketingPhone,
    MarketingPost,
    /// Counted (never identified) in advertisers' audience figures.
    ThirdPartyAudiences,
}

impl ConsentPurpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::MarketingEmail => "marketing_email",
            Self::MarketingPhone => "marketing_phone",
            Self::MarketingPost => "marketing_post",
            Self::ThirdPartyAudiences => "third_party_audiences",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::MarketingEmail,
            Self::MarketingPhone,
            Self::MarketingPost,
            Self::ThirdPartyAudiences,
        ]
        .into_iter()
        .find(|p| p.as_str() == s)
    }
}

/// Through which channel a consent was given or withdrawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ConsentChannel {
    Phone,
    Email,
    Web,
    Post,
    InPerson,
    Import,
}

impl ConsentChannel {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Phone => "phone",
            Self::Email => "email",
            Self::Web => "web",
            Self::Post => "post",
            Self::InPerson => "in_person",
            Self::Import => "import",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Phone,
            Self::Email,
            Self::Web,
            Self::Post,
            Self::InPerson,
            Self::Import,
        ]
        .into_iter()
        .find(|c| c.as_str() == s)
    }
}

/// A consent given or withdrawn, as staff record it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsentChange {
    pub purpose: ConsentPurpose,
    pub granted: bool,
    pub channel: ConsentChannel,
    /// A short note such as the form or call it came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// The standing state of one purpose.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ConsentState {
    pub granted: bool,
    pub channel: ConsentChannel,
    pub changed_at: DateTime<Utc>,
}

/// The standing consents of one subscriber, by purpose.
pub type Consents = BTreeMap<ConsentPurpose, ConsentState>;

/// One entry of the consent history.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ConsentEvent {
    pub purpose: ConsentPurpose,
    pub granted: bool,
    pub channel: ConsentChannel,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    pub recorded_at: DateTime<Utc>,
    /// The name of the API key that recorded it.
    pub recorded_by: String,
}

/// Applies a change to the standing consents.
pub fn apply(consents: &mut Consents, change: &ConsentChange, at: DateTime<Utc>) {
    consents.insert(
        change.purpose,
        ConsentState {
            granted: change.granted,
            channel: change.channel,
            changed_at: at,
        },
    );
}

/// Checks a batch of changes: notes are short, and no purpose appears twice.
pub fn check_changes(changes: &[ConsentChange]) -> Result<(), super::FieldErrors> {
    let mut errors = super::FieldErrors::default();
    for (i, change) in changes.iter().enumerate() {
        if changes[..i].iter().any(|c| c.purpose == change.purpose) {
            errors.add(
                format!("consents[{i}].purpose"),
                format!("{} is given twice", change.purpose.as_str()),
            );
        }
        if change
            .note
            .as_ref()
            .is_some_and(|n| n.chars().count() > 200)
        {
            errors.add(
                format!("consents[{i}].note"),
                "a note has at most 200 characters",
            );
        }
    }
    errors.into_result(())
}
