//! Win-back: lapsed readers only, scored by what they paid per year of subscription and
//! discounted by the time since they left; readers gone too long or with open complaints
//! are left out, with the reason.

use masthead_sdk::{Campaign, Config, Context, Status, Subscriber, Targeter, Targeting};

pub struct WinBack {
    max_days_gone: i64,
}

impl Targeter for WinBack {
    fn configure(config: &Config) -> Result<Self, String> {
        let years = config.integer("max_years_gone", 3);
        if !(1..=50).contains(&years) {
            return Err(format!("max_years_gone must be 1 to 50, not {years}"));
        }
        Ok(Self {
            max_days_gone: years * 365,
        })
    }

    fn target(
        &self,
        ctx: &Context,
        _: &Campaign,
        reader: &Subscriber,
    ) -> Result<Targeting, String> {
        if reader.status != Status::Lapsed {
            return Ok(Targeting::Exclude("not lapsed".into()));
        }
        if reader.complaints.open > 0 {
            return Ok(Targeting::Exclude(
                "an open complaint: solve it first".into(),
            ));
        }
        let Some(last_end) = reader.terms.iter().map(|t| t.end).max() else {
            return Ok(Targeting::Exclude("no terms on record".into()));
        };
        let gone = last_end.days_until(ctx.today);
        if gone > self.max_days_gone {
            return Ok(Targeting::Exclude(format!("gone {} days", gone)));
        }
        let months: u32 = reader.terms.iter().map(|t| u32::from(t.months)).sum();
        let per_year = reader.lifetime_revenue as f64 / f64::from(months.max(1)) * 12.0;
        let recency = 1.0 - gone as f64 / self.max_days_gone as f64;
        Ok(Targeting::Score(per_year * (0.5 + recency / 2.0)))
    }
}

masthead_sdk::export_targeter!(WinBack);

#[cfg(test)]
mod tests {
    use super::*;
    use masthead_sdk::testing::{self, reader};
    use masthead_sdk::{ConsentPurpose, Date, Format};

    #[test]
    fn recent_high_payers_rank_first_and_the_rest_are_excluded_with_reasons() {
        let today = Date::new(2026, 11, 23);
        let campaign = Campaign {
            name: "winter".into(),
            channel: ConsentPurpose::MarketingEmail,
            segment: "lapsed".into(),
        };
        let rich = reader(1)
            .status(Status::Lapsed)
            .term("DT", Format::Print, Date::new(2025, 6, 1), 12, 40_000)
            .build();
        let modest = reader(2)
            .status(Status::Lapsed)
            .term("MAG", Format::Digital, Date::new(2025, 6, 1), 12, 5_000)
            .build();
        let active = reader(3).status(Status::Active).build();
        let long_gone = reader(4)
            .status(Status::Lapsed)
            .term("DT", Format::Print, Date::new(2015, 1, 1), 12, 30_000)
            .build();
        let results = testing::target::<WinBack>(
            &Config::default(),
            &testing::context(today),
            &campaign,
            &[rich, modest, active, long_gone],
        );
        let score = |i: usize| match &results[i] {
            Ok(Targeting::Score(s)) => *s,
            other => panic!("record {i}: {other:?}"),
        };
        assert!(score(0) > score(1));
        assert_eq!(results[2], Ok(Targeting::Exclude("not lapsed".into())));
        assert!(matches!(&results[3], Ok(Targeting::Exclude(r)) if r.starts_with("gone")));
    }
}
