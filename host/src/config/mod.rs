//! Configuration: defaults in code < `masthead.toml` < `MASTHEAD_*` environment < flags.

mod complaints;
mod jobs;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

use crate::domain::CountryCode;
use crate::domain::money::{BasisPoints, Currency};
use crate::domain::pricing::{LoyaltyPolicy, Stacking};
use crate::services::renewals::RenewalPolicy;
use crate::store::StandbySettings;
pub use complaints::ComplaintSettings;
pub use jobs::JobsConfig;

/// The settings a running instance needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address the HTTP API listens on.
    pub listen: SocketAddr,
    /// Folder for the embedded database and first-start files.
    pub data_dir: PathBuf,
    /// `sqlite://PATH` or `postgres://...`; unset means a SQLite file in `data_dir`.
    pub database_url: Option<String>,
    /// `postgres://...` of a hot standby of `database_url` that serves searches, card reads
    /// and population reads (see the README on read replicas); unset reads from the primary.
    pub database_read_url: Option<String>,
    /// A standby further behind the primary than this, in milliseconds, is skipped.
    pub database_read_max_lag_ms: u64,
    /// Connections to the database at once: SQLite's readers (beside its one writer), or the
    /// PostgreSQL pool (and as many to a standby). 0 chooses for the backend and machine.
    pub database_max_connections: u32,
    /// `human` for a terminal, `json` for a log collector.
    pub log_format: LogFormat,
    /// A tracing filter such as `info` or `masthead=debug,sqlx=warn`; `RUST_LOG` wins.
    pub log_level: String,
    /// Largest request body accepted, in bytes.
    pub body_limit_bytes: usize,
    /// Largest CSV file accepted by the import over HTTP, in bytes.
    pub import_limit_bytes: usize,
    /// Longest an import over HTTP may run before it is answered 503 (committed batches stay).
    pub import_timeout_secs: u64,
    /// Longest a request may run before it is answered 503.
    pub request_timeout_secs: u64,
    /// How long a checked API key is trusted without reading it again. A key revoked through
    /// the API stops working at once on the instance that revoked it; elsewhere (the CLI,
    /// other instances) within this time. 0 reads the key on every request.
    pub key_cache_secs: u64,
    /// The publisher's country: the default for addresses and national phone numbers.
    pub home_country: String,
    /// The house currency (ISO 4217): every price and payment is in it.
    pub currency: String,
    pub renewals: RenewalSettings,
    pub plugins: PluginSettings,
    pub complaints: ComplaintSettings,
    pub jobs: JobsConfig,
}

/// `[plugins]`: the sandbox caps every plugin runs within (a manifest may ask for less), and
/// how batches are run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PluginSettings {
    /// Largest component an upload accepts, in MiB (interpreter-based plugins are ~20 MiB).
    pub max_component_mib: u32,
    /// Linear memory of one plugin instance, in MiB.
    pub max_memory_mib: u32,
    /// Fuel (about one unit per WebAssembly instruction) for one batch.
    pub fuel_per_batch: u64,
    /// Wall-clock deadline of one call, in milliseconds.
    pub deadline_ms: u64,
    /// Log lines a plugin may write per call, and their length in bytes.
    pub max_log_lines: usize,
    pub max_log_line_bytes: usize,
    /// The results of one batch, in bytes.
    pub max_result_bytes: usize,
    /// Plugin instances alive at once; further calls wait, up to their deadline.
    pub max_instances: u32,
    /// The share of `max_instances`, in percent, one plugin version may hold at once, so a
    /// plugin flooded with calls cannot take every slot.
    pub plugin_share_percent: u32,
    /// The threads plugin calls run on, under `SCHED_IDLE` (0: one per instance).
    pub threads: usize,
    /// Consecutive failing batches after which a plugin is disabled.
    pub failure_threshold: u32,
    /// Readers per batch in a segment refresh.
    pub batch_size: usize,
}

impl Default for PluginSettings {
    fn default() -> Self {
        Self {
            max_component_mib: 40,
            max_memory_mib: 64,
            fuel_per_batch: 5_000_000_000,
            deadline_ms: 2_000,
            max_log_lines: 100,
            max_log_line_bytes: 1_024,
            max_result_bytes: 16 << 20,
            max_instances: 32,
            plugin_share_percent: 50,
            threads: 0,
            failure_threshold: 5,
            batch_size: 1_000,
        }
    }
}

impl PluginSettings {
    pub fn runtime(&self) -> crate::runtime::RuntimeSettings {
        crate::runtime::RuntimeSettings {
            max_component_bytes: (self.max_component_mib as usize) << 20,
            caps: crate::domain::plugin::Limits {
                memory_mib: self.max_memory_mib,
                fuel_per_batch: self.fuel_per_batch,
                deadline_ms: self.deadline_ms,
            },
            log: crate::runtime::LogCaps {
                lines: self.max_log_lines,
                line_bytes: self.max_log_line_bytes,
            },
            max_result_bytes: self.max_result_bytes,
            max_instances: self.max_instances.max(1),
            plugin_share_percent: self.plugin_share_percent,
            threads: self.threads,
        }
    }
}

/// `[renewals]`: the grace period and the loyalty discount.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RenewalSettings {
    /// A gap shorter than this many days does not break tenure; a reader whose last term
    /// ended fewer days ago is in grace, not lapsed.
    pub grace_days: u32,
    /// Loyalty discount per whole year of tenure, in percent.
    pub loyalty_percent_per_year: f64,
    /// The loyalty discount never exceeds this percentage.
    pub loyalty_max_percent: f64,
    /// How a club tier's renewal discount combines with the loyalty discount: `add` (both
    /// on the list price), `best` (only the larger) or `compound` (the tier discount on the
    /// price after loyalty).
    pub club_discount_stacking: Stacking,
}

impl Default for RenewalSettings {
    fn default() -> Self {
        Self {
            grace_days: 30,
            loyalty_percent_per_year: 2.0,
            loyalty_max_percent: 10.0,
            club_discount_stacking: Stacking::Add,
        }
    }
}

impl RenewalSettings {
    pub fn loyalty(&self) -> anyhow::Result<LoyaltyPolicy> {
        let per_year = BasisPoints::from_percent(self.loyalty_percent_per_year)
            .map_err(|e| anyhow::anyhow!("renewals.loyalty_percent_per_year: {e}"))?;
        let cap = BasisPoints::from_percent(self.loyalty_max_percent)
            .map_err(|e| anyhow::anyhow!("renewals.loyalty_max_percent: {e}"))?;
        Ok(LoyaltyPolicy { per_year, cap })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    Human,
    Json,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("data"),
            database_url: None,
            database_read_url: None,
            database_read_max_lag_ms: 5_000,
            database_max_connections: 0,
            log_format: LogFormat::Human,
            log_level: "info".into(),
            body_limit_bytes: 1024 * 1024,
            import_limit_bytes: 512 * 1024 * 1024,
            request_timeout_secs: 30,
            key_cache_secs: 5,
            import_timeout_secs: 3_600,
            home_country: "GB".into(),
            currency: "GBP".into(),
            renewals: RenewalSettings::default(),
            plugins: PluginSettings::default(),
            complaints: ComplaintSettings::default(),
            jobs: JobsConfig::default(),
        }
    }
}

/// Values given on the command line; `None` leaves the layer below in force.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Overrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<SocketAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_format: Option<LogFormat>,
}

impl Config {
    /// Reads the layers. A missing default `masthead.toml` is fine; a named file must exist.
    pub fn load(file: Option<&Path>, overrides: &Overrides) -> anyhow::Result<Self> {
        let path = file.unwrap_or(Path::new("masthead.toml"));
        if file.is_some() && !path.exists() {
            anyhow::bail!("the configuration file {} does not exist", path.display());
        }
        let config: Config = Figment::from(Serialized::defaults(Config::default()))
            .merge(Toml::file(path))
            .merge(Env::prefixed("MASTHEAD_").ignore(&["config"]).split("__"))
            .merge(Serialized::defaults(overrides))
            .extract()
            .with_context(|| {
                format!(
                    "the configuration (defaults, {}, MASTHEAD_* variables) is invalid",
                    path.display()
                )
            })?;
        config.home_country()?;
        config.currency()?;
        config.renewals.loyalty()?;
        config.complaints.policy()?;
        config.standby()?;
        config.jobs.settings()?;
        config.jobs.recompute_time()?;
        config.jobs.renewals_time()?;
        Ok(config)
    }

    /// The hot standby in force, if any; refused unless the database is PostgreSQL.
    pub fn standby(&self) -> anyhow::Result<Option<StandbySettings>> {
        let Some(url) = &self.database_read_url else {
            return Ok(None);
        };
        let primary = self.database_url();
        if !(primary.starts_with("postgres:") || primary.starts_with("postgresql:")) {
            anyhow::bail!("{}", crate::store::replica::sqlite_refusal());
        }
        Ok(Some(StandbySettings {
            url: url.clone(),
            max_lag: Duration::from_millis(self.database_read_max_lag_ms),
        }))
    }

    /// The connections the store may hold, as configured.
    pub fn pool_size(&self) -> crate::store::PoolSize {
        crate::store::PoolSize(self.database_max_connections)
    }

    /// The database URL in force: the configured one, else the SQLite file in the data folder.
    pub fn database_url(&self) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", self.data_dir.join("masthead.db").display()))
    }

    pub fn home_country(&self) -> anyhow::Result<CountryCode> {
        CountryCode::parse(&self.home_country).map_err(|e| anyhow::anyhow!("home_country: {e}"))
    }

    pub fn renewal_policy(&self) -> anyhow::Result<RenewalPolicy> {
        Ok(RenewalPolicy {
            grace_days: i64::from(self.renewals.grace_days),
            loyalty: self.renewals.loyalty()?,
            stacking: self.renewals.club_discount_stacking,
        })
    }

    pub fn currency(&self) -> anyhow::Result<Currency> {
        Currency::parse(&self.currency).map_err(|e| anyhow::anyhow!("currency: {e}"))
    }
}

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment::Jail's own error type
mod tests {
    use super::*;

    #[test]
    fn layers_apply_in_order() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "masthead.toml",
                "listen = \"127.0.0.1:9000\"\nhome_country = \"DE\"\n",
            )?;
            jail.set_env("MASTHEAD_HOME_COUNTRY", "FR");
            jail.set_env("MASTHEAD_RENEWALS__GRACE_DAYS", "45");
            let overrides = Overrides {
                database_url: Some("postgres://x@y/z".into()),
                ..Default::default()
            };
            let config = Config::load(None, &overrides).expect("loads");
            assert_eq!(config.listen.port(), 9000);
            assert_eq!(config.home_country, "FR");
            assert_eq!(config.renewals.grace_days, 45);
            assert_eq!(config.database_url(), "postgres://x@y/z");
            Ok(())
        });
    }

    #[test]
    fn defaults_use_sqlite_in_the_data_folder() {
        figment::Jail::expect_with(|_| {
            let config = Config::load(None, &Overrides::default()).expect("loads");
            assert_eq!(config.database_url(), "sqlite://data/masthead.db");
            assert_eq!(config.listen.to_string(), "127.0.0.1:8080");
            Ok(())
        });
    }

    #[test]
    fn unknown_keys_and_bad_countries_are_refused() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("masthead.toml", "lisen = \"127.0.0.1:9000\"\n")?;
            assert!(Config::load(None, &Overrides::default()).is_err());
            jail.create_file("masthead.toml", "home_country = \"Britain\"\n")?;
            assert!(Config::load(None, &Overrides::default()).is_err());
            jail.create_file("masthead.toml", "[renewals]\nloyalty_max_percent = 120\n")?;
            assert!(Config::load(None, &Overrides::default()).is_err());
            jail.create_file("masthead.toml", "currency = \"euro\"\n")?;
            assert!(Config::load(None, &Overrides::default()).is_err());
            Ok(())
        });
    }

    #[test]
    fn a_standby_is_refused_with_sqlite_and_taken_with_postgres() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("MASTHEAD_DATABASE_READ_URL", "postgres://u@standby/m");
            let refused = Config::load(None, &Overrides::default()).expect_err("sqlite");
            assert!(format!("{refused:#}").contains("read replicas are a PostgreSQL feature"));
            jail.set_env("MASTHEAD_DATABASE_URL", "postgres://u@primary/m");
            jail.set_env("MASTHEAD_DATABASE_READ_MAX_LAG_MS", "250");
            let config = Config::load(None, &Overrides::default()).expect("postgres");
            let standby = config.standby().expect("valid").expect("a standby");
            assert_eq!(standby.url, "postgres://u@standby/m");
            assert_eq!(standby.max_lag, Duration::from_millis(250));
            Ok(())
        });
    }
}
