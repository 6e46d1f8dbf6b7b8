//! Churn risk: sorts current readers into `churn-high`, `churn-medium` and `churn-low` from
//! their renewal history and complaints.
//!
//! Points: no auto-renewal on the running term (2), a term ending within `horizon_days` (1),
//! each open complaint (2), each breached complaint in the last year (1), a first year of
//! tenure (1), a gap in the history (1). High is `high_points` or more, medium half of that.
//! Readers who already left are in `lapsed` (the audience of a win-back campaign).

use masthead_sdk::{Config, Context, Segmenter, Status, Subscriber};

pub struct ChurnRisk {
    horizon_days: i64,
    high_points: u32,
}

impl Segmenter for ChurnRisk {
    fn configure(config: &Config) -> Result<Self, String> {
        let horizon_days = config.integer("horizon_days", 60);
        let high_points = config.integer("high_points", 4);
        if horizon_days <= 0 {
            return Err(format!("horizon_days must be positive, not {horizon_days}"));
        }
        let high_points = u32::try_from(high_points)
            .ok()
            .filter(|p| *p >= 2)
            .ok_or_else(|| format!("high_points must be at least 2, not {high_points}"))?;
        Ok(Self {
            horizon_days,
            high_points,
        })
    }

    fn segment(&self, ctx: &Context, reader: &Subscriber) -> Result<Vec<String>, String> {
        if reader.status == Status::Lapsed {
            return Ok(vec!["lapsed".to_string()]);
        }
        if !reader.status.is_current() {
            return Ok(vec![]);
        }
        let points = self.points(ctx, reader);
        let band = if points >= self.high_points {
            "churn-high"
        } else if points >= self.high_points / 2 {
            "churn-medium"
        } else {
            "churn-low"
        };
        Ok(vec![band.to_string()])
    }
}

impl ChurnRisk {
    fn points(&self, ctx: &Context, reader: &Subscriber) -> u32 {
        let running = reader
            .terms
            .iter()
            .filter(|t| t.start <= ctx.today && ctx.today <= t.end && t.cancelled_from.is_none());
        let mut points = 0;
        let mut ends_soon = true;
        let mut renews = false;
        for term in running {
            renews |= term.auto_renew;
            ends_soon &= ctx.today.days_until(term.end) <= self.horizon_days;
        }
        let renewed_ahead = reader.terms.iter().any(|t| t.start > ctx.today);
        if !renews && !renewed_ahead {
            points += 2;
            if ends_soon {
                points += 1;
            }
        }
        points += 2 * reader.complaints.open + reader.complaints.breached;
        if reader.tenure_days < 365 {
            points += 1;
        }
        if has_gap(reader) {
            points += 1;
        }
        points
    }
}

/// Whether the reader ever went more than a day without a term (a lapse and a win-back).
fn has_gap(reader: &Subscriber) -> bool {
    let mut spans: Vec<_> = reader.terms.iter().map(|t| (t.start, t.end)).collect();
    spans.sort();
    spans
        .windows(2)
        .any(|w| w[0].1.add_days(1) < w[1].0 && w.iter().all(|s| s.1 < w[1].0))
}

masthead_sdk::export_segmenter!(ChurnRisk);

#[cfg(test)]
mod tests {
    use super::*;
    use masthead_sdk::testing::{self, reader};
    use masthead_sdk::{ConfigValue, Date, Format};

    const TODAY: Date = Date::new(2026, 11, 23);

    fn run(config: &Config, readers: &[Subscriber]) -> Vec<Result<Vec<String>, String>> {
        testing::segment::<ChurnRisk>(config, &testing::context(TODAY), readers)
    }

    #[test]
    fn a_loyal_auto_renewing_reader_is_low_risk() {
        let loyal = reader(1000007)
            .status(Status::Active)
            .tenure_years(12)
            .term("DT", Format::Print, Date::new(2026, 6, 1), 12, 30_000)
            .auto_renew()
            .build();
        assert_eq!(
            run(&Config::default(), &[loyal]),
            [Ok(vec!["churn-low".into()])]
        );
    }

    #[test]
    fn a_new_reader_with_open_complaints_and_a_term_ending_is_high_risk() {
        let unhappy = reader(1000015)
            .status(Status::Active)
            .tenure_days(200)
            .term("DT", Format::Digital, Date::new(2026, 1, 1), 12, 9_000)
            .complaints(1, 1)
            .build();
        assert_eq!(
            run(&Config::default(), &[unhappy]),
            [Ok(vec!["churn-high".into()])]
        );
    }

    #[test]
    fn lapsed_readers_are_in_no_churn_band_but_in_lapsed() {
        let gone = reader(1000023).status(Status::Lapsed).build();
        let never = reader(1000049).status(Status::None).build();
        assert_eq!(
            run(&Config::default(), &[gone, never]),
            [Ok(vec!["lapsed".into()]), Ok(vec![])]
        );
    }

    #[test]
    fn bad_configuration_fails_every_record_with_the_reason() {
        let config = Config::new(vec![("high_points".into(), ConfigValue::Integer(1))]);
        let results = run(&config, &[reader(1000031).build()]);
        assert_eq!(
            results,
            [Err("high_points must be at least 2, not 1".into())]
        );
    }
}
