//! Offers each reader a year of the title they hold twice under one code, at two prices:
//! accepting the code could charge either, so the host must refuse the answer. With
//! `reason_bytes` set, it makes one offer instead, with a reason that long.

use masthead_sdk::{Config, Context, Format, Occasion, Offer, OfferProvider, Pricing, Subscriber};

pub struct Twins {
    reason_bytes: usize,
}

impl OfferProvider for Twins {
    fn configure(config: &Config) -> Result<Self, String> {
        let reason_bytes = usize::try_from(config.integer("reason_bytes", 0)).unwrap_or(0);
        Ok(Self { reason_bytes })
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
            code: if self.reason_bytes > 0 {
                "wordy-12"
            } else {
                "twin-12"
            }
            .into(),
            title: format!("{} for a year", title.title),
            publication: title.code.clone(),
            format: Format::Print,
            months: 12,
            pricing: Pricing::PercentOff(percent_off),
            valid_until: ctx.today.add_days(30),
            reason: "one code, two prices".into(),
            score,
        };
        if self.reason_bytes > 0 {
            let reason = "why ".repeat(self.reason_bytes / 4);
            return Ok(vec![Offer {
                reason,
                ..offer(100, 1.0)
            }]);
        }
        Ok(vec![offer(9_000, 1.0), offer(100, 2.0)])
    }
}

masthead_sdk::export_offer_provider!(Twins);
