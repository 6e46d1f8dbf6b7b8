//! One-to-one offers: every enabled offer provider is asked about one reader; offers are
//! priced from the list in force today, checked against the catalogue, merged and ranked.

use std::collections::HashSet;
use std::sync::Arc;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::view::ViewBuilder;
use super::{Active, Plugins};
use crate::domain::money::{Currency, Money};
use crate::domain::plugin::{Field, FieldSet, PluginKind};
use crate::domain::publication::{Format, PublicationCode, list_in_force};
use crate::domain::renewal::{OfferChoice, TitleChoice};
use crate::domain::term::{AcceptedOffer, Discount, DiscountKind};
use crate::domain::{FieldErrors, SubscriberNumber};
use crate::runtime::bindings::{Occasion, Offer, Pricing, wit};
use crate::runtime::outcome::cap_text;
use crate::runtime::{Cause, Failure, Report};
use crate::services::pipeline::{Needs, Pipeline};
use crate::services::subscribers::{Caller, Registry};
use crate::services::{ServiceError, ServiceResult};
use crate::store::{Publication, Reader};

/// Why staff or the web asks for offers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OfferOccasion {
    #[default]
    Renewal,
    ServiceCall,
    Web,
}

/// An offer as staff see it: priced, with the plugin that made it and its reason.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OfferView {
    pub plugin: String,
    pub plugin_version: String,
    pub code: String,
    pub title: String,
    pub publication: String,
    pub format: Format,
    pub months: u32,
    /// The price list's price for this format and length today.
    pub list_price: Money,
    /// What the reader would pay.
    pub price: Money,
    pub valid_until: NaiveDate,
    pub reason: String,
    pub score: f64,
}

impl OfferView {
    /// The title, format and length the offer is for.
    pub fn title_choice(&self) -> Result<TitleChoice, String> {
        Ok(TitleChoice {
            publication: PublicationCode::parse(&self.publication)?,
            format: self.format,
            months: self.months,
        })
    }

    /// The offer as a discount on a term whose list price is `list`: the saving the reader
    /// was shown (list price less offer price), never more than `list`.
    pub fn discount(&self, list: Money) -> Discount {
        let saving = (self.list_price.amount - self.price.amount).clamp(0, list.amount);
        Discount {
            kind: DiscountKind::Offer,
            reason: format!(
                "offer {} from {} {}: {}",
                self.code, self.plugin, self.plugin_version, self.reason
            ),
            amount: Money::new(saving, list.currency),
            offer: Some(AcceptedOffer {
                plugin: self.plugin.clone(),
                plugin_version: self.plugin_version.clone(),
                code: self.code.clone(),
            }),
        }
    }
}

/// A provider that gave no offers because it failed, or offers the host refused.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OfferError {
    pub plugin: String,
    pub plugin_version: String,
    pub cause: String,
    pub message: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OffersView {
    #[schema(value_type = String)]
    pub subscriber: SubscriberNumber,
    pub occasion: OfferOccasion,
    /// Best first.
    pub offers: Vec<OfferView>,
    pub errors: Vec<OfferError>,
}

pub struct Offers {
    plugins: Arc<Plugins>,
    registry: Arc<Registry>,
    currency: Currency,
    grace_days: i64,
}

impl Offers {
    pub fn new(
        plugins: Arc<Plugins>,
        registry: Arc<Registry>,
        currency: Currency,
        grace_days: i64,
    ) -> Self {
        Self {
            plugins,
            registry,
            currency,
            grace_days,
        }
    }

    pub async fn for_subscriber(
        &self,
        caller: &Caller,
        number: SubscriberNumber,
        occasion: OfferOccasion,
    ) -> ServiceResult<OffersView> {
        self.registry.load(number).await?;
        let store = self.plugins.store();
        let providers = self
            .plugins
            .enabled_of_kind(PluginKind::OfferProvider)
            .await?;
        let mut view = OffersView {
            subscriber: number,
            occasion,
            offers: Vec::new(),
            errors: Vec::new(),
        };
        if !providers.is_empty() {
            let publications = store.list_publications().await?;
            let today = self.plugins.clock().today();
            let builder = ViewBuilder::new(
                today,
                self.grace_days,
                self.currency.as_str(),
                &publications,
            );
            let seq = number.sequence();
            let profile = providers
                .iter()
                .any(|p| Needs::of(p.version.checked.fields).profile);
            let read: Vec<Field> = [Field::Complaints, Field::ClubTiers]
                .into_iter()
                .filter(|f| {
                    providers
                        .iter()
                        .any(|p| p.version.checked.fields.contains(*f))
                })
                .collect();
            let needs = Needs {
                fields: FieldSet::of(&read),
                profile,
            };
            let now = self.plugins.clock().now();
            let readers = Pipeline::new(Arc::clone(store))
                .range(needs, seq, seq, now)
                .await?;
            if let Some(reader) = readers.first() {
                for provider in &providers {
                    self.ask(
                        provider,
                        &builder,
                        reader,
                        occasion,
                        &publications,
                        &mut view,
                    )
                    .await;
                }
            }
        }
        view.offers.sort_by(|a, b| {
            b.score
                .total_cmp(&a.score)
                .then_with(|| a.plugin.cmp(&b.plugin))
                .then_with(|| a.code.cmp(&b.code))
        });
        let entry = caller.audit(
            "subscriber.offers",
            Some(number),
            serde_json::json!({ "offers": view.offers.len() }),
        );
        self.registry.audit_log().record(entry).await;
        Ok(view)
    }

    /// The offer `choice` names, asked of its plugin again now: only an offer still made to
    /// this reader today can be accepted.
    pub async fn accept(
        &self,
        caller: &Caller,
        number: SubscriberNumber,
        choice: &OfferChoice,
    ) -> ServiceResult<OfferView> {
        let view = self
            .for_subscriber(caller, number, OfferOccasion::Renewal)
            .await?;
        if let Some(offer) = view
            .offers
            .into_iter()
            .find(|o| o.plugin == choice.plugin && o.code == choice.code)
        {
            return Ok(offer);
        }
        let why = match view.errors.iter().find(|e| e.plugin == choice.plugin) {
            Some(failed) => format!(
                "{} could not be asked for offers ({}: {}); renew without the offer or try later",
                choice.plugin, failed.cause, failed.message
            ),
            None => format!(
                "{} makes no offer \"{}\" to this reader today; GET \
                 /api/v1/subscribers/{number}/offers shows the current ones",
                choice.plugin, choice.code
            ),
        };
        let mut errors = FieldErrors::default();
        errors.add("offer", why);
        Err(ServiceError::Invalid(errors))
    }

    async fn ask(
        &self,
        provider: &Active,
        builder: &ViewBuilder,
        reader: &Reader,
        occasion: OfferOccasion,
        publications: &[Publication],
        out: &mut OffersView,
    ) {
        let checked = &provider.version.checked;
        let record = builder.project(checked.fields, provider.version.stored.pii_granted, reader);
        let occasion_wit = match occasion {
            OfferOccasion::Renewal => Occasion::Renewal,
            OfferOccasion::ServiceCall => Occasion::ServiceCall,
            OfferOccasion::Web => Occasion::Web,
        };
        let outcome = self
            .plugins
            .runtime()
            .propose(
                provider.invocation.clone(),
                builder.context().clone(),
                occasion_wit,
                vec![record],
            )
            .await;
        let outcome = outcome.and_then(refuse_duplicate_codes);
        self.plugins.settle(provider, &outcome, 1).await;
        let plugin = provider.record.id.clone();
        let plugin_version = provider.version.stored.version.clone();
        let error = |cause: &str, message: String| OfferError {
            plugin: plugin.clone(),
            plugin_version: plugin_version.clone(),
            cause: cause.to_string(),
            message,
        };
        let offers = match outcome {
            Err(failure) => {
                out.errors
                    .push(error(failure.cause.as_str(), failure.message));
                return;
            }
            Ok(mut report) => match report.results.pop() {
                Some(Ok(offers)) => offers,
                Some(Err(message)) => {
                    out.errors.push(error("record", message));
                    return;
                }
                None => return,
            },
        };
        for offer in offers {
            match self.price(&offer, builder, publications) {
                Ok((list_price, price)) => out.offers.push(OfferView {
                    plugin: plugin.clone(),
                    plugin_version: plugin_version.clone(),
                    format: format_of(offer.format),
                    months: u32::from(offer.months),
                    valid_until: date_of(offer.valid_until).unwrap_or(builder_today(builder)),
                    list_price,
                    price,
                    code: offer.code,
                    title: offer.title,
                    publication: offer.publication,
                    reason: offer.reason,
                    score: offer.score,
                }),
                Err(message) => out.errors.push(error(
                    "malformed",
                    format!(
                        "offer \"{}\" was dropped: {message}",
                        cap_text(offer.code, MAX_CODE_BYTES)
                    ),
                )),
            }
        }
    }

    /// The list price and the offer's price; an offer the catalogue cannot honour is refused.
    fn price(
        &self,
        offer: &Offer,
        builder: &ViewBuilder,
        publications: &[Publication],
    ) -> Result<(Money, Money), String> {
        let today = builder_today(builder);
        if offer.code.trim().is_empty() || offer.reason.trim().is_empty() {
            return Err("an offer needs a code and a reason".into());
        }
        // Shown to staff and written on the term when accepted: bounded like any text.
        for (field, text, max) in [
            ("code", &offer.code, MAX_CODE_BYTES),
            ("title", &offer.title, MAX_TITLE_BYTES),
            ("reason", &offer.reason, MAX_REASON_BYTES),
        ] {
            if text.len() > max {
                return Err(format!(
                    "its {field} is {} bytes long, over the limit of {max}",
                    text.len()
                ));
            }
        }
        if !offer.score.is_finite() {
            return Err("its score is not a finite number".into());
        }
        match date_of(offer.valid_until) {
            Some(d) if d >= today => {}
            _ => return Err("it is not valid today (valid_until is past or not a date)".into()),
        }
        let publication = publications
            .iter()
            .find(|p| p.definition.code.as_str() == offer.publication)
            .ok_or_else(|| format!("there is no publication {}", offer.publication))?;
        let (format, months) = (format_of(offer.format), u32::from(offer.months));
        if !publication.definition.sells(format, months) {
            return Err(format!(
                "{} is not sold as {} for {months} months",
                offer.publication,
                format.as_str()
            ));
        }
        let list = list_in_force(&publication.price_lists, today)
            .and_then(|l| l.price(format, months))
            .ok_or_else(|| format!("{} has no price list in force", offer.publication))?;
        let price = match offer.pricing {
            Pricing::Price(p) => p,
            Pricing::PercentOff(bp) if bp <= 10_000 => list - list * i64::from(bp) / 10_000,
            Pricing::PercentOff(bp) => return Err(format!("{bp} basis points is over 100%")),
            // A hostile plugin may send any s64: subtract without wrapping.
            Pricing::AmountOff(a) => list.checked_sub(a).ok_or_else(|| {
                format!("its amount off, {a}, is not between 0 and the list price {list}")
            })?,
        };
        if !(0..=list).contains(&price) {
            return Err(format!(
                "its price {price} is not between 0 and the list price {list}"
            ));
        }
        Ok((
            Money::new(list, self.currency),
            Money::new(price, self.currency),
        ))
    }
}

/// The longest offer code, title and reason the host takes from a plugin, in bytes.
const MAX_CODE_BYTES: usize = 64;
const MAX_TITLE_BYTES: usize = 200;
const MAX_REASON_BYTES: usize = 1_000;

/// A reader's offers must have distinct codes: a code names the offer staff accept, so two
/// offers under one code would let the reader be charged for the other. An answer with a
/// repeated code is the plugin's malformed result, recorded against it, and none of its
/// offers to this reader is shown; other plugins' offers stand.
fn refuse_duplicate_codes(report: Report<Vec<Offer>>) -> Result<Report<Vec<Offer>>, Failure> {
    for offers in report.results.iter().flatten() {
        let mut seen = HashSet::new();
        if let Some(twice) = offers.iter().find(|o| !seen.insert(o.code.as_str())) {
            return Err(Failure {
                cause: Cause::Malformed,
                message: format!(
                    "the plugin made two offers with the code \"{}\" to one reader; codes \
                     must be distinct, so none of its offers is shown",
                    cap_text(twice.code.clone(), MAX_CODE_BYTES)
                ),
                stats: report.stats.clone(),
            });
        }
    }
    Ok(report)
}

fn builder_today(builder: &ViewBuilder) -> NaiveDate {
    date_of(builder.context().today).unwrap_or_default()
}

fn date_of(d: wit::Date) -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(d.year, u32::from(d.month), u32::from(d.day))
}

fn format_of(f: wit::Format) -> Format {
    match f {
        wit::Format::Print => Format::Print,
        wit::Format::Digital => Format::Digital,
        wit::Format::Bundle => Format::Bundle,
    }
}
