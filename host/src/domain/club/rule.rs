//! Qualification rules: declarative conditions on a reader's facts, combined with `all` and
//! `any`, each of which explains itself ("tenure 12 y >= 10 y").

use std::collections::BTreeMap;

use chrono::{DateTime, Months, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::FieldErrors;
use crate::domain::money::{Currency, Money, checked_sum};
use crate::domain::publication::PublicationCode;
use crate::domain::tenure::Tenure;
use crate::domain::term::TermFact;

/// Longest trailing window a spend rule may look back over.
const MAX_SPEND_MONTHS: i64 = 120;
/// Deepest nesting of `all` and `any`.
const MAX_DEPTH: usize = 8;

/// One condition, or a combination of conditions. Written as JSON with one key naming the
/// condition, e.g. `{"tenure": {"min_years": 10}}` or `{"all": [...]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Rule {
    /// Every rule holds.
    All(Vec<Rule>),
    /// At least one rule holds.
    Any(Vec<Rule>),
    /// Unbroken subscription to any title for at least this many whole years.
    Tenure { min_years: i64 },
    /// At least `min` minor units paid (less refunds) for terms starting in the trailing
    /// `months`, or later.
    Spend { min: i64, months: i64 },
    /// At least this many titles held (active or in grace).
    Titles { min: i64 },
    /// This title is held (active or in grace).
    Holds { publication: String },
    /// No complaint has stayed unresolved for more than this many days.
    NoOpenComplaint { older_than_days: i64 },
    /// The segmenter plugin `id` puts the reader in segment `key`.
    Plugin { id: String, key: String },
}

/// What a rule needs to know about one reader.
pub struct Facts<'a> {
    pub today: NaiveDate,
    pub now: DateTime<Utc>,
    pub currency: Currency,
    /// Tenure today across all titles.
    pub tenure: Tenure,
    pub terms: &'a [TermFact<'a>],
    /// The codes of the titles held (active or in grace), each once.
    pub held: &'a [&'a str],
    /// When the oldest unresolved complaint was opened.
    pub oldest_open_complaint: Option<DateTime<Utc>>,
    /// The keys each segmenter plugin the rules name gave this reader; a plugin missing here
    /// could not decide (it failed), so the rule cannot be decided either.
    pub plugin_keys: &'a BTreeMap<String, Vec<String>>,
}

/// Whether a rule held, and why in words a person reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub met: bool,
    pub because: String,
}

impl Verdict {
    fn new(met: bool, because: String) -> Self {
        Self { met, because }
    }
}

/// A plugin the rule names gave no answer for the reader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Undecided(pub String);

impl Rule {
    /// Checks thresholds, codes and nesting; `at` is the path of this rule in the request.
    pub fn validate(&self, at: &str, errors: &mut FieldErrors) {
        self.validate_at(at, 0, errors);
    }

    fn validate_at(&self, at: &str, depth: usize, errors: &mut FieldErrors) {
        let non_negative = |errors: &mut FieldErrors, field: &str, value: i64| {
            if value < 0 {
                errors.add(
                    format!("{at}.{field}"),
                    format!("must be 0 or more, not {value}"),
                );
            }
        };
        match self {
            Self::All(rules) | Self::Any(rules) => {
                let word = if matches!(self, Self::All(_)) {
                    "all"
                } else {
                    "any"
                };
                if rules.is_empty() {
                    errors.add(format!("{at}.{word}"), "list at least one rule");
                }
                if depth >= MAX_DEPTH {
                    errors.add(
                        format!("{at}.{word}"),
                        format!("rules nest at most {MAX_DEPTH} deep"),
                    );
                    return;
                }
                for (i, rule) in rules.iter().enumerate() {
                    rule.validate_at(&format!("{at}.{word}[{i}]"), depth + 1, errors);
                }
            }
            Self::Tenure { min_years } => non_negative(errors, "tenure.min_years", *min_years),
            Self::Spend { min, months } => {
                non_negative(errors, "spend.min", *min);
                if !(1..=MAX_SPEND_MONTHS).contains(months) {
                    errors.add(
                        format!("{at}.spend.months"),
                        format!("the window is 1 to {MAX_SPEND_MONTHS} months, not {months}"),
                    );
                }
            }
            Self::Titles { min } => non_negative(errors, "titles.min", *min),
            Self::Holds { publication } => {
                if let Err(e) = PublicationCode::parse(publication) {
                    errors.add(format!("{at}.holds.publication"), e);
                }
            }
            Self::NoOpenComplaint { older_than_days } => non_negative(
                errors,
                "no_open_complaint.older_than_days",
                *older_than_days,
            ),
            Self::Plugin { id, key } => {
                if id.trim().is_empty() {
                    errors.add(format!("{at}.plugin.id"), "name the segmenter plugin");
                }
                if key.trim().is_empty() {
                    errors.add(
                        format!("{at}.plugin.key"),
                        "name the segment key it returns",
                    );
                }
            }
        }
    }

    /// The publications this rule names, to check that they exist.
    pub fn publications(&self) -> Vec<&str> {
        match self {
            Self::All(rules) | Self::Any(rules) => {
                rules.iter().flat_map(Rule::publications).collect()
            }
            Self::Holds { publication } => vec![publication.as_str()],
            _ => Vec::new(),
        }
    }

    /// The segmenter plugins this rule names.
    pub fn plugins(&self) -> Vec<&str> {
        match self {
            Self::All(rules) | Self::Any(rules) => rules.iter().flat_map(Rule::plugins).collect(),
            Self::Plugin { id, .. } => vec![id.as_str()],
            _ => Vec::new(),
        }
    }

    pub fn evaluate(&self, facts: &Facts<'_>) -> Result<Verdict, Undecided> {
        let mut because = String::new();
        let met = self.explain(facts, &mut because)?;
        Ok(Verdict::new(met, because))
    }

    /// Whether the rule holds, without saying why: what a recomputation asks of every reader
    /// before it knows whether an explanation is needed. Every part is decided, as
    /// [`Rule::evaluate`] decides them, so a plugin without a verdict anywhere leaves the
    /// whole rule undecided.
    pub fn holds(&self, facts: &Facts<'_>) -> Result<bool, Undecided> {
        Ok(match self {
            Self::All(rules) => {
                let mut met = true;
                for rule in rules {
                    met &= rule.holds(facts)?;
                }
                met
            }
            Self::Any(rules) => {
                let mut met = false;
                for rule in rules {
                    met |= rule.holds(facts)?;
                }
                met
            }
            Self::Tenure { min_years } => i64::from(facts.tenure.years) >= *min_years,
            Self::Spend { min, months } => spend(facts, *months) >= *min,
            Self::Titles { min } => facts.held.len() as i64 >= *min,
            Self::Holds { publication } => holds(facts, publication),
            Self::NoOpenComplaint { older_than_days } => {
                open_too_long(facts, *older_than_days).is_none()
            }
            Self::Plugin { id, key } => match facts.plugin_keys.get(id) {
                Some(keys) => keys.iter().any(|k| k == key),
                None => return Err(Undecided(format!("plugin {id} gave no verdict"))),
            },
        })
    }

    /// Writes why the rule holds or fails to `out` (appending), and answers whether it holds.
    /// A rule that failed says why; one that held lists everything that held.
    pub fn explain(&self, facts: &Facts<'_>, out: &mut String) -> Result<bool, Undecided> {
        use std::fmt::Write;
        let sign = |met: bool| if met { ">=" } else { "<" };
        // Writing to a String cannot fail.
        Ok(match self {
            Self::All(rules) => {
                let mut parts = Vec::with_capacity(rules.len());
                for rule in rules {
                    parts.push(rule.holds(facts)?);
                }
                let met = parts.iter().all(|held| *held);
                let mut first = true;
                for (rule, held) in rules.iter().zip(parts) {
                    if held == met {
                        if !first {
                            out.push_str("; ");
                        }
                        first = false;
                        rule.explain(facts, out)?;
                    }
                }
                met
            }
            Self::Any(rules) => {
                let mut parts = Vec::with_capacity(rules.len());
                for rule in rules {
                    parts.push(rule.holds(facts)?);
                }
                match parts.iter().position(|held| *held) {
                    Some(first) => rules[first].explain(facts, out)?,
                    None => {
                        out.push_str("none of: ");
                        for (i, rule) in rules.iter().enumerate() {
                            if i > 0 {
                                out.push_str(" | ");
                            }
                            rule.explain(facts, out)?;
                        }
                        false
                    }
                }
            }
            Self::Tenure { min_years } => {
                let years = i64::from(facts.tenure.years);
                let met = years >= *min_years;
                let _ = write!(out, "tenure {years} y {} {min_years} y", sign(met));
                met
            }
            Self::Spend { min, months } => {
                let spent = spend(facts, *months);
                let met = spent >= *min;
                let money = |amount| Money::new(amount, facts.currency);
                let _ = write!(
                    out,
                    "spend over {months} months {} {} {}",
                    money(spent),
                    sign(met),
                    money(*min)
                );
                met
            }
            Self::Titles { min } => {
                let held = facts.held.len() as i64;
                let met = held >= *min;
                let _ = write!(out, "titles held {held} {} {min}", sign(met));
                met
            }
            Self::Holds { publication } => {
                let met = holds(facts, publication);
                let verb = if met { "holds" } else { "does not hold" };
                let _ = write!(out, "{verb} {}", publication.to_ascii_uppercase());
                met
            }
            Self::NoOpenComplaint { older_than_days } => {
                match open_too_long(facts, *older_than_days) {
                    Some(days) => {
                        let _ = write!(
                            out,
                            "a complaint unresolved for {days} days > {older_than_days} days"
                        );
                        false
                    }
                    None => {
                        let _ = write!(out, "no complaint unresolved over {older_than_days} days");
                        true
                    }
                }
            }
            Self::Plugin { id, key } => {
                let met = self.holds(facts)?;
                let verb = if met {
                    "puts the reader in"
                } else {
                    "leaves out of"
                };
                let _ = write!(out, "plugin {id} {verb} {key}");
                met
            }
        })
    }
}

/// Whether the title is held (active or in grace).
fn holds(facts: &Facts<'_>, publication: &str) -> bool {
    facts
        .held
        .iter()
        .any(|p| p.eq_ignore_ascii_case(publication))
}

/// The days the oldest complaint has stayed unresolved, when that is more than `days`.
fn open_too_long(facts: &Facts<'_>, days: i64) -> Option<i64> {
    let opened = facts.oldest_open_complaint?;
    let open = (facts.now - opened).num_days();
    (open > days).then_some(open)
}

/// Paid less refunds for terms starting within the trailing window, or later. A sum past
/// `i64` (only amounts stored before the money limits could make one) counts as the most
/// there is, never as a wrapped negative that would drop a reader from their tier.
fn spend(facts: &Facts<'_>, months: i64) -> i64 {
    let months = u32::try_from(months).unwrap_or(0);
    let from = facts
        .today
        .checked_sub_months(Months::new(months))
        .unwrap_or(NaiveDate::MIN);
    let revenue = facts
        .terms
        .iter()
        .filter(|t| t.start > from)
        .map(|t| t.revenue);
    checked_sum(revenue).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(json: &str) -> Rule {
        serde_json::from_str(json).expect("a rule")
    }

    fn facts<'a>(
        years: u32,
        held: &'a [&'a str],
        plugins: &'a BTreeMap<String, Vec<String>>,
    ) -> Facts<'a> {
        Facts {
            today: NaiveDate::from_ymd_opt(2026, 6, 1).unwrap(),
            now: "2026-06-01T12:00:00Z".parse().unwrap(),
            currency: Currency::parse("EUR").unwrap(),
            tenure: Tenure {
                since: NaiveDate::from_ymd_opt(2014, 1, 1),
                days: i64::from(years) * 365,
                years,
            },
            terms: &[],
            held,
            oldest_open_complaint: Some("2026-05-01T12:00:00Z".parse().unwrap()),
            plugin_keys: plugins,
        }
    }

    #[test]
    fn rules_read_as_json_and_refuse_unknown_fields() {
        let parsed = rule(r#"{"all": [{"tenure": {"min_years": 10}}, {"titles": {"min": 2}}]}"#);
        assert_eq!(
            parsed,
            Rule::All(vec![
                Rule::Tenure { min_years: 10 },
                Rule::Titles { min: 2 }
            ])
        );
        let unknown = serde_json::from_str::<Rule>(r#"{"tenure": {"min_yeers": 10}}"#);
        assert!(unknown.unwrap_err().to_string().contains("min_yeers"));
        let kind = serde_json::from_str::<Rule>(r#"{"age": {"min": 10}}"#);
        assert!(
            kind.unwrap_err()
                .to_string()
                .contains("unknown variant `age`")
        );
    }

    #[test]
    fn validation_names_the_path_of_each_bad_threshold() {
        let bad = rule(
            r#"{"any": [{"tenure": {"min_years": -1}}, {"all": []},
                        {"spend": {"min": 100, "months": 0}}, {"holds": {"publication": "?"}}]}"#,
        );
        let mut errors = FieldErrors::default();
        bad.validate("tiers[0].rule", &mut errors);
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "tiers[0].rule.any[0].tenure.min_years",
                "tiers[0].rule.any[1].all",
                "tiers[0].rule.any[2].spend.months",
                "tiers[0].rule.any[3].holds.publication",
            ]
        );
    }

    #[test]
    fn verdicts_explain_what_held_and_what_failed() {
        let held = ["DAILY"];
        let plugins = BTreeMap::new();
        let gold = rule(
            r#"{"all": [{"tenure": {"min_years": 10}}, {"holds": {"publication": "daily"}}]}"#,
        );
        let v = gold.evaluate(&facts(12, &held, &plugins)).unwrap();
        assert!(v.met);
        assert_eq!(v.because, "tenure 12 y >= 10 y; holds DAILY");
        let v = gold.evaluate(&facts(3, &held, &plugins)).unwrap();
        assert!(!v.met);
        assert_eq!(v.because, "tenure 3 y < 10 y");
        let complaints = rule(r#"{"no_open_complaint": {"older_than_days": 14}}"#);
        let v = complaints.evaluate(&facts(3, &held, &plugins)).unwrap();
        assert_eq!(v.because, "a complaint unresolved for 31 days > 14 days");
        let either = rule(r#"{"any": [{"titles": {"min": 3}}, {"tenure": {"min_years": 20}}]}"#);
        let v = either.evaluate(&facts(3, &held, &plugins)).unwrap();
        assert_eq!(v.because, "none of: titles held 1 < 3 | tenure 3 y < 20 y");
    }

    #[test]
    fn a_plugin_without_a_verdict_leaves_the_rule_undecided() {
        let held = [];
        let none = BTreeMap::new();
        let asks = rule(r#"{"plugin": {"id": "churn-risk", "key": "churn-low"}}"#);
        assert!(asks.evaluate(&facts(1, &held, &none)).is_err());
        let said: BTreeMap<String, Vec<String>> =
            [("churn-risk".to_owned(), vec!["churn-low".to_owned()])].into();
        let v = asks.evaluate(&facts(1, &held, &said)).unwrap();
        assert!(v.met);
        assert_eq!(v.because, "plugin churn-risk puts the reader in churn-low");
    }
}
