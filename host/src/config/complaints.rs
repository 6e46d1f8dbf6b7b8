//! `[complaints]`: the service-level targets and the business-hours calendar their clocks
//! run on.

use std::collections::BTreeSet;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::domain::calendar::{BusinessHours, OpenHours};
use crate::domain::interaction::{Category, Priority};
use crate::domain::sla::{SlaPolicy, Target, parse_target};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ComplaintSettings {
    /// The desk's time zone (IANA name), in which opening hours and holidays are read.
    pub time_zone: String,
    /// Opening hours per weekday as `08:00-18:00`; a day left out is closed.
    pub hours: WeekHours,
    /// Days the desk is closed.
    pub holidays: BTreeSet<NaiveDate>,
    /// The breach queue also shows interactions due within this many minutes.
    pub due_soon_minutes: u32,
    /// One target per priority for every category (no `category`), and any number of
    /// category-specific ones that take precedence.
    pub targets: Vec<TargetSetting>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WeekHours {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub monday: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tuesday: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wednesday: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thursday: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub friday: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub saturday: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sunday: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetSetting {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<Category>,
    pub priority: Priority,
    /// Business time to the first response, as `2h`, `30m` or `1h 30m`.
    pub respond_within: String,
    /// Business time to the resolution.
    pub resolve_within: String,
}

impl Default for ComplaintSettings {
    fn default() -> Self {
        let weekday = || Some("08:00-18:00".to_owned());
        let target = |priority, respond: &str, resolve: &str| TargetSetting {
            category: None,
            priority,
            respond_within: respond.into(),
            resolve_within: resolve.into(),
        };
        Self {
            time_zone: "Europe/London".into(),
            hours: WeekHours {
                monday: weekday(),
                tuesday: weekday(),
                wednesday: weekday(),
                thursday: weekday(),
                friday: weekday(),
                saturday: None,
                sunday: None,
            },
            holidays: BTreeSet::new(),
            due_soon_minutes: 30,
            targets: vec![
                target(Priority::Urgent, "30m", "4h"),
                target(Priority::High, "1h", "8h"),
                target(Priority::Routine, "2h", "24h"),
                target(Priority::Low, "8h", "40h"),
            ],
        }
    }
}

impl ComplaintSettings {
    /// The policy these settings describe, or what is wrong with them.
    pub fn policy(&self) -> anyhow::Result<SlaPolicy> {
        let fail = |e: String| anyhow::anyhow!("complaints: {e}");
        let zone = self.time_zone.parse().map_err(|_| {
            fail(format!(
                "time_zone `{}` is not an IANA time zone such as Europe/London",
                self.time_zone
            ))
        })?;
        let h = &self.hours;
        let days = [
            ("monday", &h.monday),
            ("tuesday", &h.tuesday),
            ("wednesday", &h.wednesday),
            ("thursday", &h.thursday),
            ("friday", &h.friday),
            ("saturday", &h.saturday),
            ("sunday", &h.sunday),
        ];
        let mut week = [None; 7];
        for (slot, (day, text)) in week.iter_mut().zip(days) {
            if let Some(text) = text {
                *slot =
                    Some(OpenHours::parse(text).map_err(|e| fail(format!("hours.{day}: {e}")))?);
            }
        }
        let targets = self
            .targets
            .iter()
            .map(|t| {
                let parse = |field: &str, text: &str| {
                    parse_target(text)
                        .map_err(|e| fail(format!("targets ({}): {field}: {e}", t.priority)))
                };
                Ok(Target {
                    category: t.category,
                    priority: t.priority,
                    respond_within: parse("respond_within", &t.respond_within)?,
                    resolve_within: parse("resolve_within", &t.resolve_within)?,
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let hours = BusinessHours {
            zone,
            week,
            holidays: self.holidays.clone(),
        };
        SlaPolicy::new(hours, targets).map_err(fail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_make_a_policy() {
        let policy = ComplaintSettings::default().policy().expect("valid");
        let routine = policy.target(Category::Billing, Priority::Routine);
        assert_eq!(routine.respond_within, chrono::Duration::hours(2));
    }

    #[test]
    fn mistakes_name_the_setting() {
        let s = ComplaintSettings {
            time_zone: "Mars/Olympus".into(),
            ..ComplaintSettings::default()
        };
        assert!(s.policy().unwrap_err().to_string().contains("time_zone"));
        let mut s = ComplaintSettings::default();
        s.hours.friday = Some("18:00-08:00".into());
        assert!(s.policy().unwrap_err().to_string().contains("hours.friday"));
        let mut s = ComplaintSettings::default();
        s.targets[0].respond_within = "quickly".into();
        assert!(
            s.policy()
                .unwrap_err()
                .to_string()
                .contains("respond_within")
        );
        let mut s = ComplaintSettings::default();
        s.targets.remove(0);
        assert!(s.policy().unwrap_err().to_string().contains("urgent"));
        let s = ComplaintSettings {
            hours: WeekHours::default(),
            ..ComplaintSettings::default()
        };
        assert!(s.policy().unwrap_err().to_string().contains("no open time"));
    }
}
