//! The domain: types and rules of the subscriber business, free of SQL and HTTP.

pub mod api_key;
pub mod calendar;
pub mod consent;
pub mod contact;
pub mod interaction;
pub mod merge;
pub mod money;
pub mod plugin;
pub mod pricing;
pub mod publication;
pub mod renewal;
pub mod role;
pub mod search;
pub mod sla;
pub mod subscriber;
pub mod subscriber_number;
pub mod tenure;
pub mod term;
pub mod text;
pub mod validation;

pub use consent::{ConsentChange, ConsentEvent, ConsentPurpose, Consents};
pub use contact::CountryCode;
pub use role::Role;
pub use subscriber::{Profile, ProfileDraft, SubscriberStatus};
pub use subscriber_number::{SubscriberNumber, SubscriberNumberError};
pub use validation::{FieldError, FieldErrors};
