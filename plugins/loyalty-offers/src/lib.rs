//! Loyalty offers: renew each current title for a year at a discount that grows with tenure
//! and club tier; a print-only reader of long standing is also offered the digital bundle.

use masthead_sdk::{
    Config, Context, Format, LogLevel, Occasion, Offer, OfferProvider, Pricing, Subscriber,
};

pub struct LoyaltyOffers {
    percent_per_year: f64,
    max_percent: f64,
    tier_bonus_percent: f64,
    valid_days: i64,
}

impl OfferProvider for LoyaltyOffers {
    fn configure(config: &Config) -> Result<Self, String> {
        let plugin = Self {
            percent_per_year: config.float("percent_per_year", 1.5),
            max_percent: config.float("max_percent", 15.0),
            tier_bonus_percent: config.float("tier_bonus_percent", 5.0),
            valid_days: config.integer("valid_days", 30),
        };
        if !(0.0..=100.0).contains(&plugin.max_percent) || plugin.percent_per_year < 0.0 {
            return Err("percentages must be between 0 and 100".into());
        }
        if plugin.valid_days < 1 {
            return Err(format!(
                "valid_days must be at least 1, not {}",
                plugin.valid_days
            ));
        }
        Ok(plugin)
    }

    fn offers(
        &self,
        ctx: &Context,
        occasion: Occasion,
        reader: &Subscriber,
    ) -> Result<Vec<Offer>, String> {
        if !reader.status.is_current() {
            return Ok(vec![]);
        }
        let years = reader.tenure_years();
        let rank = reader.club_tiers.iter().map(|t| t.rank).max().unwrap_or(0);
        let tenure_percent = (f64::from(years) * self.percent_per_year).min(self.max_percent);
        let percent = (tenure_percent + f64::from(rank) * self.tier_bonus_percent).min(100.0);
        if percent <= 0.0 {
            return Ok(vec![]);
        }
        let valid_until = ctx.today.add_days(self.valid_days);
        let mut offers = Vec::new();
        let mut seen = Vec::new();
        for term in reader.terms.iter().rev() {
            let Some(title) = ctx.publication(term.publication).filter(|p| p.on_sale) else {
                continue;
            };
            if seen.contains(&title.code) {
                continue;
            }
            seen.push(title.code.clone());
            let basis_points = (percent * 100.0).round() as u16;
            let tier = if rank > 0 {
                format!(" + club tier rank {rank} x {}%", self.tier_bonus_percent)
            } else {
                String::new()
            };
            offers.push(Offer {
                code: format!("loyal-{}-12", title.code.to_lowercase()),
                title: format!("{} for a year, {percent:.1}% off", title.title),
                publication: title.code.clone(),
                format: term.format,
                months: 12,
                pricing: Pricing::PercentOff(basis_points),
                valid_until,
                reason: format!(
                    "{years} full years of tenure x {}% (at most {}%){tier}",
                    self.percent_per_year, self.max_percent
                ),
                score: percent
                    + if occasion == Occasion::Renewal {
                        10.0
                    } else {
                        0.0
                    },
            });
        }
        let print_only =
            !reader.terms.is_empty() && reader.terms.iter().all(|t| t.format == Format::Print);
        let first = reader
            .terms
            .first()
            .and_then(|t| ctx.publication(t.publication));
        if let Some(first) = first.filter(|_| print_only && years >= 3) {
            offers.push(Offer {
                code: format!("bundle-{}-12", first.code.to_lowercase()),
                title: format!("{}: print and digital together", first.title),
                publication: first.code.clone(),
                format: Format::Bundle,
                months: 12,
                pricing: Pricing::PercentOff(2_000),
                valid_until,
                reason: format!(
                    "a print-only reader for {years} years: try the digital edition with it"
                ),
                score: 5.0,
            });
        }
        masthead_sdk::log(
            LogLevel::Debug,
            &format!("{} offers for {}", offers.len(), reader.number),
        );
        Ok(offers)
    }
}

masthead_sdk::export_offer_provider!(LoyaltyOffers);

#[cfg(test)]
mod tests {
    use super::*;
    use masthead_sdk::testing::{self, reader};
    use masthead_sdk::{Date, Status};

    const TODAY: Date = Date::new(2026, 11, 23);

    fn offers(r: Subscriber) -> Vec<Offer> {
        let results = testing::offers::<LoyaltyOffers>(
            &Config::default(),
            &testing::context(TODAY),
            Occasion::Renewal,
            &[r],
        );
        results
            .into_iter()
            .next()
            .expect("one result")
            .expect("no error")
    }

    #[test]
    fn discount_grows_with_tenure_and_tier_up_to_the_caps() {
        let r = reader(1000007)
            .status(Status::Active)
            .tenure_years(20)
            .term("DT", Format::Digital, Date::new(2026, 1, 1), 12, 20_000)
            .tier("readers", "gold", 2)
            .build();
        let got = offers(r);
        assert_eq!(got.len(), 1);
        // 20 years x 1.5% = 30%, capped at 15%, plus 2 ranks x 5%.
        assert_eq!(got[0].pricing, Pricing::PercentOff(2_500));
        assert_eq!(got[0].valid_until, Date::new(2026, 12, 23));
        assert!(got[0].reason.contains("20 full years"), "{}", got[0].reason);
    }

    #[test]
    fn long_print_only_readers_are_offered_the_bundle() {
        let r = reader(1000015)
            .status(Status::Active)
            .tenure_years(4)
            .term("SUN", Format::Print, Date::new(2026, 3, 1), 12, 9_000)
            .build();
        let codes: Vec<_> = offers(r).into_iter().map(|o| o.code).collect();
        assert_eq!(codes, ["loyal-sun-12", "bundle-sun-12"]);
    }

    #[test]
    fn lapsed_and_new_readers_get_nothing() {
        assert!(
            offers(
                reader(1000023)
                    .status(Status::Lapsed)
                    .tenure_years(9)
                    .build()
            )
            .is_empty()
        );
        assert!(offers(reader(1000031).status(Status::Active).build()).is_empty());
    }
}
