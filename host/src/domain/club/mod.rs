//! Reader clubs: ordered tiers (lowest first), each earned by a qualification rule and
//! bringing perks, and the choice of a reader's tier from the rules and any staff override.

pub mod event;
pub mod rule;

use std::fmt;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::FieldErrors;
use super::money::BasisPoints;
use rule::{Facts, Rule, Undecided};

/// Most tiers one club may have.
const MAX_TIERS: usize = 12;

/// A club as staff define it; stored as given once valid.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClubDraft {
    /// Short lowercase code, e.g. `gold-club`.
    pub code: String,
    pub name: String,
    pub description: Option<String>,
    /// Lowest first: a later tier ranks above every earlier one.
    pub tiers: Vec<TierDraft>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TierDraft {
    /// Short lowercase code, unique in the club, e.g. `gold`.
    pub code: String,
    pub name: String,
    /// The qualification rule, e.g. `{"all": [{"tenure": {"min_years": 10}},
    /// {"spend": {"min": 200000, "months": 24}}]}`.
    #[schema(value_type = Object)]
    pub rule: Rule,
    #[serde(default)]
    pub perks: Perks,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Perks {
    /// Percent off the list price at renewal, 0 to 100 with at most two decimals.
    #[serde(default)]
    pub renewal_discount_percent: f64,
    /// Members of this tier may be invited to club events.
    #[serde(default)]
    pub event_access: bool,
}

impl Perks {
    pub fn renewal_discount(&self) -> BasisPoints {
        BasisPoints::from_percent(self.renewal_discount_percent).unwrap_or_default()
    }
}

/// Whether `text` is a club or tier code: 1 to 32 lowercase letters, digits or dashes.
pub fn is_code(text: &str) -> bool {
    (1..=32).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && text.as_bytes()[0].is_ascii_lowercase()
}

impl ClubDraft {
    /// Every problem at once, each addressed by its path.
    pub fn validate(&self) -> Result<(), FieldErrors> {
        let mut errors = FieldErrors::default();
        if !is_code(&self.code) {
            errors.add(
                "code",
                "use 1 to 32 lowercase letters, digits or dashes, starting with a letter",
            );
        }
        let name = self.name.trim();
        if name.is_empty() || name.chars().count() > 100 {
            errors.add("name", "give the club a name of 1 to 100 characters");
        }
        if self
            .description
            .as_ref()
            .is_some_and(|d| d.chars().count() > 2_000)
        {
            errors.add("description", "keep the description under 2,000 characters");
        }
        if self.tiers.is_empty() || self.tiers.len() > MAX_TIERS {
            errors.add("tiers", format!("a club has 1 to {MAX_TIERS} tiers"));
        }
        for (i, tier) in self.tiers.iter().enumerate() {
            let at = format!("tiers[{i}]");
            if !is_code(&tier.code) {
                errors.add(
                    format!("{at}.code"),
                    "use 1 to 32 lowercase letters, digits or dashes, starting with a letter",
                );
            } else if self.tiers[..i].iter().any(|t| t.code == tier.code) {
                errors.add(
                    format!("{at}.code"),
                    format!("tier `{}` is listed twice", tier.code),
                );
            }
            let name = tier.name.trim();
            if name.is_empty() || name.chars().count() > 100 {
                errors.add(
                    format!("{at}.name"),
                    "give the tier a name of 1 to 100 characters",
                );
            }
            tier.rule.validate(&format!("{at}.rule"), &mut errors);
            if let Err(e) = BasisPoints::from_percent(tier.perks.renewal_discount_percent) {
                errors.add(format!("{at}.perks.renewal_discount_percent"), e);
            }
        }
        errors.into_result(())
    }

    pub fn tier(&self, code: &str) -> Option<(usize, &TierDraft)> {
        self.tiers.iter().enumerate().find(|(_, t)| t.code == code)
    }

    /// Where a tier ranks (0 is the lowest); `None` for a tier no longer defined.
    pub fn rank(&self, code: &str) -> Option<usize> {
        self.tier(code).map(|(rank, _)| rank)
    }

    /// The plugins any rule names.
    pub fn plugins(&self) -> Vec<&str> {
        let mut ids: Vec<&str> = self.tiers.iter().flat_map(|t| t.rule.plugins()).collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    /// The tier the reader holds: the one earned, unless an override in force says otherwise.
    pub fn standing(
        &self,
        facts: &Facts<'_>,
        override_: Option<&Override>,
    ) -> Result<Standing, Undecided> {
        let mut because = String::new();
        let place = self.standing_into(facts, override_, &mut because)?;
        Ok(Standing {
            tier: place.tier.map(str::to_owned),
            because,
            overridden: place.overridden,
        })
    }

    /// [`ClubDraft::standing`] with its explanation written to `because` (emptied first), so
    /// that a recomputation can compare it with the stored one before making a `String`.
    pub fn standing_into<'c>(
        &'c self,
        facts: &Facts<'_>,
        override_: Option<&Override>,
        because: &mut String,
    ) -> Result<Place<'c>, Undecided> {
        because.clear();
        let earned = self.earned_into(facts, because)?;
        let Some(o) = override_.filter(|o| o.expires >= facts.today) else {
            return Ok(earned);
        };
        let Some((rank, tier)) = self.tier(&o.tier) else {
            return Ok(earned);
        };
        let earned_rank = earned.tier.and_then(|t| self.rank(t));
        let stands = match o.kind {
            OverrideKind::Hold => true,
            OverrideKind::Grant => earned_rank.is_none_or(|r| r < rank),
        };
        if !stands {
            return Ok(earned);
        }
        because.clear();
        use std::fmt::Write;
        // Writing to a String cannot fail.
        let _ = write!(
            because,
            "{}: {} by {} until {} ({})",
            tier.name, o.kind, o.by, o.expires, o.reason
        );
        Ok(Place {
            tier: Some(&tier.code),
            overridden: true,
        })
    }

    /// The tier the rules give the reader, highest first, with the rule's explanation; or
    /// no tier, with why the lowest was missed. Every tier's rule down to the one earned is
    /// decided, so a plugin without a verdict leaves the standing undecided.
    fn earned_into<'c>(
        &'c self,
        facts: &Facts<'_>,
        because: &mut String,
    ) -> Result<Place<'c>, Undecided> {
        for tier in self.tiers.iter().rev() {
            if tier.rule.holds(facts)? {
                because.push_str(&tier.name);
                because.push_str(": ");
                tier.rule.explain(facts, because)?;
                return Ok(Place {
                    tier: Some(&tier.code),
                    overridden: false,
                });
            }
        }
        if let Some(lowest) = self.tiers.first() {
            because.push_str("not ");
            because.push_str(&lowest.name);
            because.push_str(": ");
            lowest.rule.explain(facts, because)?;
        }
        Ok(Place {
            tier: None,
            overridden: false,
        })
    }
}

/// A reader's place in one club, its tier borrowed from the club's definition; the
/// explanation is written beside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Place<'c> {
    pub tier: Option<&'c str>,
    pub overridden: bool,
}

/// A reader's place in one club and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Standing {
    pub tier: Option<String>,
    pub because: String,
    pub overridden: bool,
}

/// How a staff override bends the rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OverrideKind {
    /// At least this tier: a reader who earns a higher one gets the higher one.
    Grant,
    /// Exactly this tier: neither promoted nor demoted while it lasts.
    Hold,
}

impl fmt::Display for OverrideKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Grant => "granted",
            Self::Hold => "held",
        })
    }
}

/// A tier given or kept by staff until the end of `expires`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Override {
    pub id: i64,
    pub tier: String,
    pub kind: OverrideKind,
    pub reason: String,
    /// The last day it applies.
    pub expires: NaiveDate,
    pub by: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

/// A move between tiers, as the history records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TierMove {
    Joined,
    Promoted,
    Demoted,
    Left,
}

impl TierMove {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Joined => "joined",
            Self::Promoted => "promoted",
            Self::Demoted => "demoted",
            Self::Left => "left",
        }
    }

    /// The move from `from` to `to` in `club`, if the tier changed. A tier the club no longer
    /// defines ranks below every defined one.
    pub fn between(club: &ClubDraft, from: Option<&str>, to: Option<&str>) -> Option<Self> {
        match (from, to) {
            (None, None) => None,
            (None, Some(_)) => Some(Self::Joined),
            (Some(_), None) => Some(Self::Left),
            (Some(a), Some(b)) if a == b => None,
            (Some(a), Some(b)) => {
                let rank = |t| club.rank(t).map_or(-1, |r| r as i64);
                Some(if rank(b) > rank(a) {
                    Self::Promoted
                } else {
                    Self::Demoted
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::domain::money::Currency;
    use crate::domain::tenure::Tenure;

    fn club() -> ClubDraft {
        serde_json::from_value(serde_json::json!({
            "code": "reader-club", "name": "Reader Club", "description": null,
            "tiers": [
                { "code": "silver", "name": "Silver", "rule": {"tenure": {"min_years": 2}} },
                { "code": "gold", "name": "Gold", "rule": {"tenure": {"min_years": 10}},
                  "perks": { "renewal_discount_percent": 5, "event_access": true } },
            ],
        }))
        .unwrap()
    }

    fn standing(years: u32, o: Option<&Override>) -> Standing {
        let plugins = BTreeMap::new();
        let facts = Facts {
            today: NaiveDate::from_ymd_opt(2026, 6, 1).unwrap(),
            now: "2026-06-01T12:00:00Z".parse().unwrap(),
            currency: Currency::parse("EUR").unwrap(),
            tenure: Tenure {
                since: None,
                days: 0,
                years,
            },
            terms: &[],
            held: &[],
            oldest_open_complaint: None,
            plugin_keys: &plugins,
        };
        club().standing(&facts, o).unwrap()
    }

    fn override_(kind: OverrideKind, tier: &str, expires: &str) -> Override {
        Override {
            id: 1,
            tier: tier.into(),
            kind,
            reason: "goodwill".into(),
            expires: expires.parse().unwrap(),
            by: "ann".into(),
            created_at: "2026-01-01T00:00:00Z".parse().unwrap(),
        }
    }

    #[test]
    fn the_highest_tier_whose_rule_holds_wins() {
        assert_eq!(standing(12, None).tier.as_deref(), Some("gold"));
        assert_eq!(standing(12, None).because, "Gold: tenure 12 y >= 10 y");
        assert_eq!(standing(3, None).tier.as_deref(), Some("silver"));
        let none = standing(1, None);
        assert_eq!(none.tier, None);
        assert_eq!(none.because, "not Silver: tenure 1 y < 2 y");
    }

    #[test]
    fn a_grant_lifts_and_a_hold_pins_until_it_expires() {
        let grant = override_(OverrideKind::Grant, "gold", "2026-06-30");
        let lifted = standing(1, Some(&grant));
        assert_eq!(lifted.tier.as_deref(), Some("gold"));
        assert!(lifted.overridden);
        assert_eq!(
            lifted.because,
            "Gold: granted by ann until 2026-06-30 (goodwill)"
        );
        let silver = override_(OverrideKind::Grant, "silver", "2026-06-30");
        assert!(!standing(12, Some(&silver)).overridden);
        let hold = override_(OverrideKind::Hold, "silver", "2026-06-30");
        assert_eq!(standing(12, Some(&hold)).tier.as_deref(), Some("silver"));
        let expired = override_(OverrideKind::Hold, "gold", "2026-05-31");
        assert_eq!(standing(1, Some(&expired)).tier, None);
    }

    #[test]
    fn moves_follow_the_ranks() {
        let c = club();
        assert_eq!(
            TierMove::between(&c, None, Some("silver")),
            Some(TierMove::Joined)
        );
        assert_eq!(
            TierMove::between(&c, Some("silver"), Some("gold")),
            Some(TierMove::Promoted)
        );
        assert_eq!(
            TierMove::between(&c, Some("gold"), Some("silver")),
            Some(TierMove::Demoted)
        );
        assert_eq!(
            TierMove::between(&c, Some("bronze"), Some("silver")),
            Some(TierMove::Promoted)
        );
        assert_eq!(
            TierMove::between(&c, Some("gold"), None),
            Some(TierMove::Left)
        );
        assert_eq!(TierMove::between(&c, Some("gold"), Some("gold")), None);
    }

    #[test]
    fn a_club_reports_every_bad_field() {
        let mut bad = club();
        bad.code = "Reader Club".into();
        bad.tiers[1].code = "silver".into();
        bad.tiers[1].perks.renewal_discount_percent = 150.0;
        let errors = bad.validate().unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "code",
                "tiers[1].code",
                "tiers[1].perks.renewal_discount_percent"
            ]
        );
    }
}
