//! Offers each reader a year of every title they hold twice under one code, at two prices:
//! accepting the code could charge either, so the host must refuse the answer.

use masthead_sdk::{Config, Context, Format, Occasion, Offer, OfferProvider, Pricing, Subscriber};

pub struct Twins;

impl OfferProvider for Twins {
    fn configure(_: &Config) -> Result<Self, String> {
        Ok(Self)
    }

    fn offers(
        &self,
        ctx: &Context,
        _: Occasion,
        reader: &Subscriber,
    ) -> Result<Vec<Offer>, String> {
        let Some(title) = reader
            .terms
            .last()
            .and_then(|t| ctx.publication(t.publication))
        else {
            return Ok(Vec::new());
        };
        let offer = |percent_off: u16, score: f64| Offer {
            code: "twin-12".into(),
            title: format!("{} for a year", title.title),
            publication: title.code.clone(),
            format: Format::Print,
            months: 12,
            pricing: Pricing::PercentOff(percent_off),
            valid_until: ctx.today.add_days(30),
            reason: "one code, two prices".into(),
            score,
        };
        Ok(vec![offer(9_000, 1.0), offer(100, 2.0)])
    }
}

masthead_sdk::export_offer_provider!(Twins);
