//! The generated bindings and the glue the export macros expand to; not part of the public API.
#![allow(unsafe_code, missing_docs, clippy::all)]

use std::any::Any;
use std::cell::RefCell;

use crate::types as sdk;

/// The shared `types` and `host` interfaces, generated once for every kind.
pub mod base {
    wit_bindgen::generate!({
        path: "wit",
        inline: "
            package masthead:sdk-base;
            world base {
                import masthead:plugin/host@1.0.0;
                import masthead:plugin/types@1.0.0;
            }
        ",
        generate_unused_types: true,
        generate_all,
    });
}

#[cfg(feature = "segmenter")]
pub mod segmenter {
    wit_bindgen::generate!({
        path: "wit",
        world: "masthead:plugin/segmenter@1.0.0",
        with: {
            "masthead:plugin/types@1.0.0": super::base::masthead::plugin::types,
            "masthead:plugin/host@1.0.0": super::base::masthead::plugin::host,
        },
        pub_export_macro: true,
        export_macro_name: "__export_segmenter_world",
        default_bindings_module: "masthead_sdk::__private::segmenter",
    });
}

#[cfg(feature = "targeter")]
pub mod targeter {
    wit_bindgen::generate!({
        path: "wit",
        world: "masthead:plugin/targeter@1.0.0",
        with: {
            "masthead:plugin/types@1.0.0": super::base::masthead::plugin::types,
            "masthead:plugin/host@1.0.0": super::base::masthead::plugin::host,
        },
        pub_export_macro: true,
        export_macro_name: "__export_targeter_world",
        default_bindings_module: "masthead_sdk::__private::targeter",
    });
}

#[cfg(feature = "offer-provider")]
pub mod offer_provider {
    wit_bindgen::generate!({
        path: "wit",
        world: "masthead:plugin/offer-provider@1.0.0",
        with: {
            "masthead:plugin/types@1.0.0": super::base::masthead::plugin::types,
            "masthead:plugin/host@1.0.0": super::base::masthead::plugin::host,
        },
        pub_export_macro: true,
        export_macro_name: "__export_offer_provider_world",
        default_bindings_module: "masthead_sdk::__private::offer_provider",
    });
}

use base::masthead::plugin::{host, types as wit};

pub use wit::{Config, Context, Subscriber};

thread_local! {
    /// The plugin value built by `configure`; one instance serves one batch.
    static INSTANCE: RefCell<Option<Box<dyn Any>>> = const { RefCell::new(None) };
}

/// Builds the plugin from its configuration and keeps it for the calls that follow.
pub fn configure<T: 'static>(
    config: Config,
    build: fn(&sdk::Config) -> Result<T, String>,
) -> Result<(), String> {
    let plugin = build(&config_from(config))?;
    INSTANCE.with(|cell| *cell.borrow_mut() = Some(Box::new(plugin)));
    Ok(())
}

/// Runs `each` over the batch with the configured plugin, one result per record.
pub fn each_record<T: 'static, R>(
    context: Context,
    batch: Vec<Subscriber>,
    each: impl Fn(&T, &sdk::Context, &sdk::Subscriber) -> Result<R, String>,
) -> Vec<Result<R, String>> {
    let context = context_from(context);
    INSTANCE.with(|cell| {
        let cell = cell.borrow();
        let Some(plugin) = cell.as_ref().and_then(|p| p.downcast_ref::<T>()) else {
            let error = "the plugin was not configured before its first batch".to_string();
            return batch.iter().map(|_| Err(error.clone())).collect();
        };
        batch
            .into_iter()
            .map(|record| each(plugin, &context, &subscriber_from(record)))
            .collect()
    })
}

pub fn log(level: sdk::LogLevel, message: &str) {
    let level = match level {
        sdk::LogLevel::Debug => host::LogLevel::Debug,
        sdk::LogLevel::Info => host::LogLevel::Info,
        sdk::LogLevel::Warn => host::LogLevel::Warn,
        sdk::LogLevel::Error => host::LogLevel::Error,
    };
    host::log(level, message);
}

fn config_from(config: Config) -> sdk::Config {
    sdk::Config::new(
        config
            .into_iter()
            .map(|(key, value)| {
                let value = match value {
                    wit::ConfigValue::Boolean(v) => sdk::ConfigValue::Boolean(v),
                    wit::ConfigValue::Integer(v) => sdk::ConfigValue::Integer(v),
                    wit::ConfigValue::Float(v) => sdk::ConfigValue::Float(v),
                    wit::ConfigValue::Text(v) => sdk::ConfigValue::Text(v),
                };
                (key, value)
            })
            .collect(),
    )
}

pub fn date_from(d: wit::Date) -> sdk::Date {
    sdk::Date::new(d.year, d.month, d.day)
}

pub fn date_to(d: sdk::Date) -> wit::Date {
    wit::Date {
        year: d.year,
        month: d.month,
        day: d.day,
    }
}

pub fn format_from(f: wit::Format) -> sdk::Format {
    match f {
        wit::Format::Print => sdk::Format::Print,
        wit::Format::Digital => sdk::Format::Digital,
        wit::Format::Bundle => sdk::Format::Bundle,
    }
}

pub fn format_to(f: sdk::Format) -> wit::Format {
    match f {
        sdk::Format::Print => wit::Format::Print,
        sdk::Format::Digital => wit::Format::Digital,
        sdk::Format::Bundle => wit::Format::Bundle,
    }
}

pub fn purpose_from(p: wit::ConsentPurpose) -> sdk::ConsentPurpose {
    match p {
        wit::ConsentPurpose::MarketingEmail => sdk::ConsentPurpose::MarketingEmail,
        wit::ConsentPurpose::MarketingPhone => sdk::ConsentPurpose::MarketingPhone,
        wit::ConsentPurpose::MarketingPost => sdk::ConsentPurpose::MarketingPost,
        wit::ConsentPurpose::ThirdPartyAudiences => sdk::ConsentPurpose::ThirdPartyAudiences,
    }
}

fn context_from(c: Context) -> sdk::Context {
    sdk::Context {
        today: date_from(c.today),
        currency: c.currency,
        publications: c
            .publications
            .into_iter()
            .map(|p| sdk::Publication {
                code: p.code,
                title: p.title,
                on_sale: p.on_sale,
            })
            .collect(),
    }
}

fn subscriber_from(s: Subscriber) -> sdk::Subscriber {
    sdk::Subscriber {
        number: s.number,
        status: match s.status {
            wit::Status::None => sdk::Status::None,
            wit::Status::Pending => sdk::Status::Pending,
            wit::Status::Active => sdk::Status::Active,
            wit::Status::Grace => sdk::Status::Grace,
            wit::Status::Lapsed => sdk::Status::Lapsed,
            wit::Status::Cancelled => sdk::Status::Cancelled,
        },
        region: s.region,
        postal_code: s.postal_code,
        birth_year: s.birth_year,
        tenure_days: s.tenure_days,
        first_subscribed: s.first_subscribed.map(date_from),
        lifetime_revenue: s.lifetime_revenue,
        share_of_wallet: s.share_of_wallet,
        terms: s.terms.into_iter().map(term_from).collect(),
        club_tiers: s
            .club_tiers
            .into_iter()
            .map(|t| sdk::ClubTier {
                club: t.club,
                tier: t.tier,
                rank: t.rank,
            })
            .collect(),
        complaints: sdk::ComplaintCounts {
            open: s.complaints.open,
            total: s.complaints.total,
            last_year: s.complaints.last_year,
            breached: s.complaints.breached,
        },
        consents: s
            .consents
            .into_iter()
            .map(|c| sdk::Consent {
                purpose: purpose_from(c.purpose),
                granted: c.granted,
            })
            .collect(),
        attributes: s
            .attributes
            .into_iter()
            .map(|a| sdk::Attribute {
                key: a.key,
                value: match a.value {
                    wit::AttributeValue::Text(v) => sdk::AttributeValue::Text(v),
                    wit::AttributeValue::Number(v) => sdk::AttributeValue::Number(v),
                    wit::AttributeValue::Boolean(v) => sdk::AttributeValue::Boolean(v),
                },
            })
            .collect(),
        contact: s.contact.map(|c| sdk::Contact {
            given_name: c.given_name,
            family_name: c.family_name,
            organisation_name: c.organisation_name,
            emails: c.emails,
            phones: c.phones,
            address_lines: c.address_lines,
            city: c.city,
        }),
    }
}

fn term_from(t: wit::Term) -> sdk::Term {
    sdk::Term {
        publication: t.publication,
        format: format_from(t.format),
        months: t.months,
        start: date_from(t.start),
        end: date_from(t.end),
        list_price: t.list_price,
        price_paid: t.price_paid,
        channel: match t.channel {
            wit::SalesChannel::Phone => sdk::SalesChannel::Phone,
            wit::SalesChannel::Web => sdk::SalesChannel::Web,
            wit::SalesChannel::Agent => sdk::SalesChannel::Agent,
            wit::SalesChannel::Kiosk => sdk::SalesChannel::Kiosk,
            wit::SalesChannel::Post => sdk::SalesChannel::Post,
        },
        auto_renew: t.auto_renew,
        cancelled_from: t.cancelled_from.map(date_from),
    }
}

#[cfg(feature = "segmenter")]
pub mod segment {
    use super::{Config, Context, Subscriber};
    use crate::Segmenter;

    pub fn configure<T: Segmenter>(config: Config) -> Result<(), String> {
        super::configure(config, T::configure)
    }

    pub fn segment<T: Segmenter>(
        context: Context,
        batch: Vec<Subscriber>,
    ) -> Vec<Result<Vec<String>, String>> {
        super::each_record(context, batch, |plugin: &T, context, subscriber| {
            plugin.segment(context, subscriber)
        })
    }
}

#[cfg(feature = "targeter")]
pub mod target {
    use super::targeter::exports::masthead::plugin::target_api as api;
    use super::{Config, Context, Subscriber, purpose_from};
    use crate::{Targeter, types as sdk};

    pub use api::{Campaign, Targeting};

    pub fn configure<T: Targeter>(config: Config) -> Result<(), String> {
        super::configure(config, T::configure)
    }

    pub fn target<T: Targeter>(
        context: Context,
        campaign: Campaign,
        batch: Vec<Subscriber>,
    ) -> Vec<Result<Targeting, String>> {
        let campaign = sdk::Campaign {
            name: campaign.name,
            channel: purpose_from(campaign.channel),
            segment: campaign.segment,
        };
        super::each_record(context, batch, |plugin: &T, context, subscriber| {
            plugin
                .target(context, &campaign, subscriber)
                .map(|t| match t {
                    sdk::Targeting::Score(score) => Targeting::Score(score),
                    sdk::Targeting::Exclude(reason) => Targeting::Exclude(reason),
                })
        })
    }
}

#[cfg(feature = "offer-provider")]
pub mod offer {
    use super::offer_provider::exports::masthead::plugin::offer_api as api;
    use super::{Config, Context, Subscriber, date_to, format_to};
    use crate::{OfferProvider, types as sdk};

    pub use api::{Occasion, Offer};

    pub fn configure<T: OfferProvider>(config: Config) -> Result<(), String> {
        super::configure(config, T::configure)
    }

    pub fn propose<T: OfferProvider>(
        context: Context,
        occasion: Occasion,
        batch: Vec<Subscriber>,
    ) -> Vec<Result<Vec<Offer>, String>> {
        let occasion = match occasion {
            Occasion::Renewal => sdk::Occasion::Renewal,
            Occasion::ServiceCall => sdk::Occasion::ServiceCall,
            Occasion::Web => sdk::Occasion::Web,
        };
        super::each_record(context, batch, |plugin: &T, context, subscriber| {
            let offers = plugin.offers(context, occasion, subscriber)?;
            Ok(offers.into_iter().map(offer_to).collect())
        })
    }

    fn offer_to(o: sdk::Offer) -> Offer {
        Offer {
            code: o.code,
            title: o.title,
            publication: o.publication,
            format: format_to(o.format),
            months: o.months,
            pricing: match o.pricing {
                sdk::Pricing::Price(v) => api::Pricing::Price(v),
                sdk::Pricing::PercentOff(v) => api::Pricing::PercentOff(v),
                sdk::Pricing::AmountOff(v) => api::Pricing::AmountOff(v),
            },
            valid_until: date_to(o.valid_until),
            reason: o.reason,
            score: o.score,
        }
    }
}
