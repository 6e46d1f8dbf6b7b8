//! The domain: types and rules of the subscriber business, free of SQL and HTTP.

/// A closed set of words (an enum) with its snake_case text, `ALL`, and `Display`.
macro_rules! words {
    ($(#[$meta:meta])* $name:ident { $($variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize,
                 Deserialize, ToSchema)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: [Self; [$($text),+].len()] = [$(Self::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $text),+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

pub mod api_key;
pub mod audience;
pub mod calendar;
pub mod club;
pub mod consent;
pub mod contact;
pub mod filter;
pub mod interaction;
pub mod merge;
pub mod money;
pub mod plugin;
pub mod pricing;
pub mod privacy;
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
