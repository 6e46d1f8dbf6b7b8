//! Pricing a term: the list price in force on its start date, less each discount with its
//! reason. The loyalty discount grows with whole years of tenure, up to a cap.

use serde::Serialize;
use utoipa::ToSchema;

use super::money::{BasisPoints, Money, check_amount, checked_sum};
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
        // Stacked discounts may add up past the list price (or past i64): the total is then 0.
        let off = checked_sum(discounts.iter().map(|d| d.amount.amount)).unwrap_or(i64::MAX);
        let total = Money::new(
            list_price.amount.saturating_sub(off).max(0),
            list_price.currency,
        );
        Self {
            list_price,
            discounts,
            total,
        }
    }

    /// A price recorded elsewhere (a legacy circulation file): the list price and what the
    /// reader paid, the difference kept as one discount with `reason`. The rules are those of
    /// every sale here: both amounts within the money limits, and never more than the list
    /// price, since no discount can raise a price. Errors are `(field, message)`.
    pub fn recorded(
        list_price: Money,
        price_paid: Money,
        reason: &str,
    ) -> Result<Self, Vec<(&'static str, String)>> {
        let mut errors = Vec::new();
        if let Err(e) = check_amount(list_price.amount) {
            errors.push(("list_price", e));
        }
        if let Err(e) = check_amount(price_paid.amount) {
            errors.push(("price_paid", e));
        }
        if errors.is_empty() && price_paid.amount > list_price.amount {
            errors.push((
                "price_paid",
                format!(
                    "the price paid, {price_paid}, is above the list price, {list_price}; \
                     a term costs its list price less its discounts"
                ),
            ));
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let discounts = (price_paid.amount < list_price.amount)
            .then(|| Discount {
                kind: DiscountKind::Imported,
                reason: reason.to_owned(),
                amount: Money::new(list_price.amount - price_paid.amount, list_price.currency),
                offer: None,
            })
            .into_iter()
            .collect();
        Ok(Self {
            list_price,
            discounts,
            total: price_paid,
        })
    }
}

/// Checks a refund on a term that cost `price_paid`: from nothing up to what was paid.
pub fn check_refund(refund: i64, price_paid: Money) -> Result<Money, String> {
    if (0..=price_paid.amount).contains(&refund) {
        Ok(Money::new(refund, price_paid.currency))
    } else {
        Err(format!(
            "a refund is between 0 and the price paid, {price_paid}; {refund} is not"
        ))
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
    fn a_recorded_price_follows_the_rules_of_a_sale() {
        let b = PriceBreakdown::recorded(list(12_000), list(10_000), "old offer").unwrap();
        assert_eq!(b.total.amount, 10_000);
        assert_eq!(b.discounts[0].amount.amount, 2_000);
        assert_eq!(b.discounts[0].kind, DiscountKind::Imported);
        assert!(
            PriceBreakdown::recorded(list(12_000), list(12_000), "x")
                .unwrap()
                .discounts
                .is_empty()
        );
        let above = PriceBreakdown::recorded(list(12_000), list(12_001), "x").unwrap_err();
        assert_eq!(above[0].0, "price_paid");
        assert!(
            above[0].1.contains("above the list price, 120.00 EUR"),
            "{above:?}"
        );
        let huge = PriceBreakdown::recorded(list(i64::MAX), list(i64::MAX), "x").unwrap_err();
        let fields: Vec<_> = huge.iter().map(|e| e.0).collect();
        assert_eq!(fields, ["list_price", "price_paid"]);
    }

    #[test]
    fn a_refund_is_at_most_the_price_paid() {
        assert_eq!(check_refund(12_000, list(12_000)), Ok(list(12_000)));
        assert_eq!(check_refund(0, list(12_000)), Ok(list(0)));
        assert!(check_refund(12_001, list(12_000)).is_err());
        assert!(check_refund(-1, list(12_000)).is_err());
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
            PriceBreakdown::new(list(12_000), vec![huge.clone()])
                .total
                .amount,
            0
        );
        let beyond = Discount {
            amount: list(i64::MAX),
            ..huge
        };
        let stacked = PriceBreakdown::new(list(12_000), vec![beyond.clone(), beyond]);
        assert_eq!(stacked.total.amount, 0);
    }
}
