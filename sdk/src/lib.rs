//! The Masthead plugin SDK: write segmenters, targeters and offer providers in plain Rust.
//!
//! A plugin is a WebAssembly component built for `wasm32-wasip2` against the WIT contract in
//! this crate's `wit/` folder (`masthead:plugin@1.0.0`). This crate hides the generated bindings:
//! you implement one trait ([`Segmenter`], [`Targeter`] or [`OfferProvider`]) on your own type,
//! export it with the matching macro, and the host calls you with batches of readers.
//!
//! ```toml
//! # Cargo.toml of a plugin: the dependency must be named `masthead_sdk`, and the feature
//! # names the kind (`segmenter`, `targeter` or `offer-provider`).
//! [lib]
//! crate-type = ["cdylib", "rlib"]
//!
//! [dependencies]
//! masthead-sdk = { path = "../sdk", features = ["segmenter"] }
//! ```
//!
//! Each record arrives projected to the fields your manifest (`masthead-plugin.toml`) reads;
//! the others are empty. Results are per record: return `Err` for a record you cannot judge and
//! the rest of the batch still counts. Plugins have no files, network, environment or real
//! clock: [`Context::today`] is the only date, and the host bounds memory, fuel and time.
//!
//! # A segmenter
//!
//! ```
//! use masthead_sdk::{Config, Context, Segmenter, Subscriber, Status};
//!
//! /// Puts readers with open complaints or no auto-renewal into "at-risk".
//! pub struct AtRisk {
//!     max_open: u32,
//! }
//!
//! impl Segmenter for AtRisk {
//!     fn configure(config: &Config) -> Result<Self, String> {
//!         let max_open = config.integer("max_open_complaints", 0);
//!         let max_open = u32::try_from(max_open).map_err(|_| "max_open_complaints must be >= 0")?;
//!         Ok(Self { max_open })
//!     }
//!
//!     fn segment(&self, _: &Context, reader: &Subscriber) -> Result<Vec<String>, String> {
//!         let renews = reader.terms.iter().any(|t| t.auto_renew);
//!         let at_risk = reader.status.is_current()
//!             && (reader.complaints.open > self.max_open || !renews);
//!         Ok(if at_risk { vec!["at-risk".into()] } else { vec![] })
//!     }
//! }
//!
//! masthead_sdk::export_segmenter!(AtRisk);
//!
//! // Natively, the test helpers run the same code on fixtures.
//! use masthead_sdk::testing::{self, reader};
//! let today = masthead_sdk::Date::new(2026, 11, 23);
//! let readers = [
//!     reader(1000007).status(Status::Active).complaints(2, 3).build(),
//!     reader(1000015).status(Status::Lapsed).build(),
//! ];
//! let results = testing::segment::<AtRisk>(&Config::default(), &testing::context(today), &readers);
//! assert_eq!(results[0], Ok(vec!["at-risk".to_string()]));
//! assert_eq!(results[1], Ok(vec![]));
//! ```
//!
//! # A targeter
//!
//! ```
//! use masthead_sdk::{Campaign, Config, Context, Status, Subscriber, Targeter, Targeting};
//!
//! /// Ranks lapsed readers by what they used to pay; everyone else is left out.
//! pub struct WinBack;
//!
//! impl Targeter for WinBack {
//!     fn configure(_: &Config) -> Result<Self, String> {
//!         Ok(Self)
//!     }
//!
//!     fn target(&self, _: &Context, _: &Campaign, reader: &Subscriber) -> Result<Targeting, String> {
//!         if reader.status != Status::Lapsed {
//!             return Ok(Targeting::Exclude("not lapsed".into()));
//!         }
//!         Ok(Targeting::Score(reader.lifetime_revenue as f64))
//!     }
//! }
//!
//! masthead_sdk::export_targeter!(WinBack);
//! ```
//!
//! # An offer provider
//!
//! ```
//! use masthead_sdk::{Config, Context, Format, Occasion, Offer, OfferProvider, Pricing, Subscriber};
//!
//! /// Offers long-standing readers a year of the daily at a tenure discount.
//! pub struct Loyalty {
//!     percent_per_year: u16,
//! }
//!
//! impl OfferProvider for Loyalty {
//!     fn configure(config: &Config) -> Result<Self, String> {
//!         let percent = config.integer("percent_per_year", 1);
//!         let percent_per_year = u16::try_from(percent).map_err(|_| "percent_per_year out of range")?;
//!         Ok(Self { percent_per_year })
//!     }
//!
//!     fn offers(&self, ctx: &Context, _: Occasion, reader: &Subscriber) -> Result<Vec<Offer>, String> {
//!         let years = reader.tenure_years() as u16;
//!         if years == 0 {
//!             return Ok(vec![]);
//!         }
//!         let percent = (years * self.percent_per_year).min(20);
//!         Ok(vec![Offer {
//!             code: "loyal-12".into(),
//!             title: format!("{percent}% off a year of the daily"),
//!             publication: "DT".into(),
//!             format: Format::Print,
//!             months: 12,
//!             pricing: Pricing::PercentOff(percent * 100),
//!             valid_until: ctx.today.add_days(30),
//!             reason: format!("{years} years of tenure x {}%", self.percent_per_year),
//!             score: f64::from(percent),
//!         }])
//!     }
//! }
//!
//! masthead_sdk::export_offer_provider!(Loyalty);
//! ```

mod types;

pub mod testing;

#[cfg(target_arch = "wasm32")]
#[doc(hidden)]
pub mod guest;
#[cfg(target_arch = "wasm32")]
#[doc(hidden)]
pub use guest as __private;

pub use types::*;

/// The version of the WIT contract this SDK builds against.
pub const API_VERSION: &str = "1.0.0";

/// Decides which segments each reader belongs to.
pub trait Segmenter: Sized + 'static {
    /// Builds the plugin from its configuration; an `Err` fails the whole batch with that text.
    fn configure(config: &Config) -> Result<Self, String>;

    /// The segment keys of one reader (empty: in no segment).
    fn segment(&self, context: &Context, subscriber: &Subscriber) -> Result<Vec<String>, String>;
}

/// Scores readers for a campaign, or leaves them out.
pub trait Targeter: Sized + 'static {
    fn configure(config: &Config) -> Result<Self, String>;

    fn target(
        &self,
        context: &Context,
        campaign: &Campaign,
        subscriber: &Subscriber,
    ) -> Result<Targeting, String>;
}

/// Proposes one-to-one offers to a reader, each with the reason staff will see.
pub trait OfferProvider: Sized + 'static {
    fn configure(config: &Config) -> Result<Self, String>;

    fn offers(
        &self,
        context: &Context,
        occasion: Occasion,
        subscriber: &Subscriber,
    ) -> Result<Vec<Offer>, String>;
}

/// Writes a line to the plugin's log (capped by the host per call).
pub fn log(level: LogLevel, message: &str) {
    #[cfg(target_arch = "wasm32")]
    guest::log(level, message);
    #[cfg(not(target_arch = "wasm32"))]
    testing::capture_log(level, message);
}

/// Exports a [`Segmenter`] as the plugin's implementation of `masthead:plugin/segmenter`.
#[macro_export]
macro_rules! export_segmenter {
    ($plugin:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            $crate::__require_feature!(segmenter);
            struct MastheadExport;
            impl $crate::__private::segmenter::exports::masthead::plugin::segment_api::Guest
                for MastheadExport
            {
                fn configure(
                    config: $crate::__private::Config,
                ) -> ::core::result::Result<(), ::std::string::String> {
                    $crate::__private::segment::configure::<$plugin>(config)
                }
                fn segment(
                    context: $crate::__private::Context,
                    batch: ::std::vec::Vec<$crate::__private::Subscriber>,
                ) -> ::std::vec::Vec<
                    ::core::result::Result<
                        ::std::vec::Vec<::std::string::String>,
                        ::std::string::String,
                    >,
                > {
                    $crate::__private::segment::segment::<$plugin>(context, batch)
                }
            }
            $crate::__private::segmenter::__export_segmenter_world!(MastheadExport);
        };
        #[cfg(not(target_arch = "wasm32"))]
        const _: fn() = || $crate::testing::assert_segmenter::<$plugin>();
    };
}

/// Exports a [`Targeter`] as the plugin's implementation of `masthead:plugin/targeter`.
#[macro_export]
macro_rules! export_targeter {
    ($plugin:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            $crate::__require_feature!(targeter);
            struct MastheadExport;
            impl $crate::__private::targeter::exports::masthead::plugin::target_api::Guest
                for MastheadExport
            {
                fn configure(
                    config: $crate::__private::Config,
                ) -> ::core::result::Result<(), ::std::string::String> {
                    $crate::__private::target::configure::<$plugin>(config)
                }
                fn target(
                    context: $crate::__private::Context,
                    campaign: $crate::__private::target::Campaign,
                    batch: ::std::vec::Vec<$crate::__private::Subscriber>,
                ) -> ::std::vec::Vec<
                    ::core::result::Result<
                        $crate::__private::target::Targeting,
                        ::std::string::String,
                    >,
                > {
                    $crate::__private::target::target::<$plugin>(context, campaign, batch)
                }
            }
            $crate::__private::targeter::__export_targeter_world!(MastheadExport);
        };
        #[cfg(not(target_arch = "wasm32"))]
        const _: fn() = || $crate::testing::assert_targeter::<$plugin>();
    };
}

/// Exports an [`OfferProvider`] as the plugin's implementation of `masthead:plugin/offer-provider`.
#[macro_export]
macro_rules! export_offer_provider {
    ($plugin:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            $crate::__require_feature!(offer_provider);
            struct MastheadExport;
            impl $crate::__private::offer_provider::exports::masthead::plugin::offer_api::Guest
                for MastheadExport
            {
                fn configure(
                    config: $crate::__private::Config,
                ) -> ::core::result::Result<(), ::std::string::String> {
                    $crate::__private::offer::configure::<$plugin>(config)
                }
                fn propose(
                    context: $crate::__private::Context,
                    occasion: $crate::__private::offer::Occasion,
                    batch: ::std::vec::Vec<$crate::__private::Subscriber>,
                ) -> ::std::vec::Vec<
                    ::core::result::Result<
                        ::std::vec::Vec<$crate::__private::offer::Offer>,
                        ::std::string::String,
                    >,
                > {
                    $crate::__private::offer::propose::<$plugin>(context, occasion, batch)
                }
            }
            $crate::__private::offer_provider::__export_offer_provider_world!(MastheadExport);
        };
        #[cfg(not(target_arch = "wasm32"))]
        const _: fn() = || $crate::testing::assert_offer_provider::<$plugin>();
    };
}

/// Fails the build with a clear message when the kind's feature is off.
#[doc(hidden)]
#[macro_export]
macro_rules! __require_feature {
    (segmenter) => {
        $crate::__feature_check!(
            "segmenter",
            "add `features = [\"segmenter\"]` to the masthead-sdk dependency"
        );
    };
    (targeter) => {
        $crate::__feature_check!(
            "targeter",
            "add `features = [\"targeter\"]` to the masthead-sdk dependency"
        );
    };
    (offer_provider) => {
        $crate::__feature_check!(
            "offer-provider",
            "add `features = [\"offer-provider\"]` to the masthead-sdk dependency"
        );
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __feature_check {
    ($feature:literal, $fix:literal) => {
        const _: () = assert!($crate::__has_feature($feature), $fix);
    };
}

#[doc(hidden)]
pub const fn __has_feature(feature: &str) -> bool {
    let f = feature.as_bytes();
    (cfg!(feature = "segmenter") && const_eq(f, b"segmenter"))
        || (cfg!(feature = "targeter") && const_eq(f, b"targeter"))
        || (cfg!(feature = "offer-provider") && const_eq(f, b"offer-provider"))
}

const fn const_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}
