//! `[jobs]`: how each host runs background jobs, and the recurring work it schedules.

use std::time::Duration;

use chrono::NaiveTime;
use serde::{Deserialize, Serialize};

use crate::services::jobs::JobSettings;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JobsConfig {
    /// Jobs one host runs at once; 0 for a host that only answers the API.
    pub concurrency: usize,
    /// How often an idle host looks for work, in milliseconds.
    pub poll_ms: u64,
    /// How often a running job's host extends its lease, in seconds.
    pub heartbeat_secs: u64,
    /// How long a lease holds without a heartbeat before another host takes the job over.
    pub lease_secs: u64,
    /// Claims after which a job whose hosts keep stopping is failed.
    pub max_attempts: u32,
    /// Recompute every club's tiers each night.
    pub recompute_enabled: bool,
    /// From when (HH:MM, UTC) the nightly recomputation is queued.
    pub recompute_at: String,
    /// Renew the auto-renew terms that are due each day.
    pub renewals_enabled: bool,
    /// From when (HH:MM, UTC) the daily auto-renewal is queued.
    pub renewals_at: String,
    /// The daily auto-renewal renews terms ending within this many days.
    pub renewals_days: u32,
}

impl Default for JobsConfig {
    fn default() -> Self {
        Self {
            concurrency: 2,
            poll_ms: 1_000,
            heartbeat_secs: 5,
            lease_secs: 15,
            max_attempts: 5,
            recompute_enabled: true,
            recompute_at: "02:00".into(),
            renewals_enabled: true,
            renewals_at: "03:00".into(),
            renewals_days: 14,
        }
    }
}

impl JobsConfig {
    pub fn settings(&self) -> anyhow::Result<JobSettings> {
        anyhow::ensure!(
            self.concurrency <= 64,
            "jobs.concurrency must be between 0 (run no jobs here) and 64"
        );
        anyhow::ensure!(
            (10..=60_000).contains(&self.poll_ms),
            "jobs.poll_ms must be between 10 and 60000"
        );
        anyhow::ensure!(
            self.heartbeat_secs >= 1 && self.lease_secs >= 2 * self.heartbeat_secs,
            "jobs.lease_secs must be at least twice jobs.heartbeat_secs (at least 1)"
        );
        anyhow::ensure!(
            self.max_attempts >= 1,
            "jobs.max_attempts must be at least 1"
        );
        anyhow::ensure!(
            (1..=90).contains(&self.renewals_days),
            "jobs.renewals_days must be between 1 and 90"
        );
        Ok(JobSettings {
            concurrency: self.concurrency,
            poll: Duration::from_millis(self.poll_ms),
            heartbeat: Duration::from_secs(self.heartbeat_secs),
            lease: Duration::from_secs(self.lease_secs),
            max_attempts: i64::from(self.max_attempts),
        })
    }

    /// The nightly recomputation's time, if it is on.
    pub fn recompute_time(&self) -> anyhow::Result<Option<NaiveTime>> {
        time_of(
            "jobs.recompute_at",
            &self.recompute_at,
            self.recompute_enabled,
        )
    }

    /// The daily auto-renewal's time, if it is on.
    pub fn renewals_time(&self) -> anyhow::Result<Option<NaiveTime>> {
        time_of("jobs.renewals_at", &self.renewals_at, self.renewals_enabled)
    }
}

fn time_of(key: &str, text: &str, enabled: bool) -> anyhow::Result<Option<NaiveTime>> {
    let time = NaiveTime::parse_from_str(text, "%H:%M")
        .map_err(|_| anyhow::anyhow!("{key}: write a time of day as HH:MM (UTC), not `{text}`"))?;
    Ok(enabled.then_some(time))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_leases_are_checked() {
        let defaults = JobsConfig::default();
        assert!(defaults.settings().is_ok());
        assert_eq!(
            defaults.recompute_time().expect("a time"),
            NaiveTime::from_hms_opt(2, 0, 0)
        );
        let off = JobsConfig {
            renewals_enabled: false,
            ..JobsConfig::default()
        };
        assert_eq!(off.renewals_time().expect("a time"), None);
        let late = JobsConfig {
            recompute_at: "25:00".into(),
            ..JobsConfig::default()
        };
        let error = late.recompute_time().expect_err("not a time").to_string();
        assert!(error.contains("jobs.recompute_at"), "{error}");
        let short = JobsConfig {
            lease_secs: 5,
            ..JobsConfig::default()
        };
        assert!(short.settings().is_err());
    }
}
