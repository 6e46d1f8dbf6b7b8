//! Pricing a term: the list price in force on its start date, less each discount with its
//! reason. The loyalty discount grows with whole years of tenure, up to a cap.

use serde::Serialize;
use utoipa::ToSchema;

use super::money::{BasisPoints, Money};
use super::tenure::Tenure;
use super::term::{Discount, DiscountKind};

/// The tenure discount: `per_year` for each whole year of tenure, never more than `cap`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoyaltyPolicy {
    pub per_year: BasisPoints,
    pub cap: BasisPoints,
}

impl LoyaltyPolicy {
    pub fn rate(&self, years: u32) -> BasisPoints {
        BasisPoints(self.per_year.0.saturating_mul(years).min(self.cap.0))
    }

    /// The loyalty discount on `list` for `tenure`, if any.
    pub fn discount(&self, list: Money, tenure: &Tenure) -> Option<Discount> {
        let rate = self.rate(tenure.years);
        let amount = list.percent(rate);
        if amount.amount == 0 {
            return None;
        }
        let capped = if rate == self.cap && self.per_year.0 * tenure.years > self.cap.0 {
            " (the maximum)"
        } else {
            ""
        };
        let since = tenure
            .since
            .map_or_else(String::new, |d| format!(" since {d}"));
        Some(Discount {
            kind: DiscountKind::Loyalty,
            reason: format!(
                "loyalty: {} full year{} of tenure{since} x {} = {rate}{capped}",
                tenure.years,
                if tenure.years == 1 { "" } else { "s" },
                self.per_year
            ),
            amount,
            offer: None,
        })
    }
}

/// How the club tier discount combines with the loyalty discount.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stacking {
    /// Both apply, each to the list price.
    #[default]
    Add,
    /// Only the larger of the two applies.
    Best,
    /// The loyalty discount applies to the list price, the tier discount to what is left.
    Compound,
}

/// The loyalty discount and the club tier discount (`rate`, named by `label`) on `list`,
/// combined by `stacking`.
pub fn stack(
    list: Money,
    loyalty: Option<Discount>,
    tier: Option<(BasisPoints, &str)>,
    stacking: Stacking,
) -> Vec<Discount> {
    let base = match (&loyalty, stacking) {
        (Some(l), Stacking::Compound) => Money::new(list.amount - l.amount.amount, list.currency),
        _ => list,
    };
    let club = tier
        .map(|(rate, label)| Discount {
            kind: DiscountKind::Club,
            reason: match stacking {
                Stacking::Compound if loyalty.is_some() => {
                    format!("club: {label} {rate} of the price after loyalty")
                }
                _ => format!("club: {label} {rate}"),
            },
            amount: base.percent(rate),
            offer: None,
        })
        .filter(|d| d.amount.amount > 0);
    match (loyalty, club, stacking) {
        (Some(l), Some(c), Stacking::Best) => {
            vec![if c.amount.amount > l.amount.amount {
                c
            } else {
                l
            }]
        }
        (l, c, _) => l.into_iter().chain(c).collect(),
    }
}

/// What a term costs and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct PriceBreakdown {
    pub list_price: Money,
    pub discounts: Vec<Discount>,
    /// The list price less the discounts, never below zero.
    pub total: Money,
}

impl PriceBreakdown {
    pub fn new(list_price: Money, discounts: Vec<Discount>) -> Self {
        let off: i64 = discounts.iter().map(|d| d.amount.amount).sum();
        let total = Money::new((list_price.amount - off).max(0), list_price.currency);
        Self {
            list_price,
            discounts,
            total,
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;

    use super::*;
    use crate::domain::money::Currency;

    const POLICY: LoyaltyPolicy = LoyaltyPolicy {
        per_year: BasisPoints(200),
        cap: BasisPoints(1000),
    };

    fn list(amount: i64) -> Money {
        Money::new(amount, Currency::parse("EUR").unwrap())
    }

    fn tenure(years: u32) -> Tenure {
        Tenure {
            since: NaiveDate::from_ymd_opt(2000, 1, 1),
            days: i64::from(years) * 365,
            years,
        }
    }

    #[test]
    fn loyalty_grows_per_year_up_to_the_cap() {
        assert_eq!(POLICY.rate(0), BasisPoints(0));
        assert_eq!(POLICY.rate(3), BasisPoints(600));
        assert_eq!(POLICY.rate(5), BasisPoints(1000));
        assert_eq!(POLICY.rate(40), BasisPoints(1000));
    }

    #[test]
    fn the_loyalty_discount_names_its_reason() {
        let d = POLICY.discount(list(12_000), &tenure(3)).unwrap();
        assert_eq!(d.amount.amount, 720);
        assert_eq!(
            d.reason,
            "loyalty: 3 full years of tenure since 2000-01-01 x 2% = 6%"
        );
        let capped = POLICY.discount(list(12_000), &tenure(12)).unwrap();
        assert_eq!(capped.amount.amount, 1200);
        assert!(capped.reason.ends_with("= 10% (the maximum)"));
        assert!(POLICY.discount(list(12_000), &Tenure::NONE).is_none());
        assert!(POLICY.discount(list(0), &tenure(3)).is_none());
    }

    #[test]
    fn the_tier_discount_stacks_as_configured() {
        let loyalty = POLICY.discount(list(10_000), &tenure(5));
        let gold = Some((BasisPoints(500), "Gold (Reader Club)"));
        let add = stack(list(10_000), loyalty.clone(), gold, Stacking::Add);
        assert_eq!(add.len(), 2);
        assert_eq!(add[1].amount.amount, 500);
        assert_eq!(add[1].reason, "club: Gold (Reader Club) 5%");
        let best = stack(list(10_000), loyalty.clone(), gold, Stacking::Best);
        assert_eq!(best.len(), 1);
        assert_eq!(best[0].kind, DiscountKind::Loyalty);
        let compound = stack(list(10_000), loyalty, gold, Stacking::Compound);
        assert_eq!(compound[1].amount.amount, 450);
        assert_eq!(
            stack(list(10_000), None, gold, Stacking::Compound)[0]
                .amount
                .amount,
            500
        );
        assert!(stack(list(10_000), None, None, Stacking::Add).is_empty());
    }

    #[test]
    fn a_breakdown_never_goes_below_zero() {
        let d = POLICY.discount(list(12_000), &tenure(1)).unwrap();
        let b = PriceBreakdown::new(list(12_000), vec![d.clone()]);
        assert_eq!(b.total.amount, 11_760);
        let huge = Discount {
            amount: list(50_000),
            ..d
        };
        assert_eq!(
            PriceBreakdown::new(list(12_000), vec![huge]).total.amount,
            0
        );
    }
}
