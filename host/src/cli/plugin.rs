//! `masthead plugin`: start a plugin crate, check and run a package locally with the
//! production limits, and manage the plugins stored in the database.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::{Subcommand, ValueEnum};
use sha2::{Digest, Sha256};

use super::fixture::Input;
use crate::config::Config;
use crate::domain::ConsentPurpose;
use crate::domain::plugin::{Limits, Manifest, PluginKind, SettingValue};
use crate::runtime::bindings::{Campaign, Occasion, Offer, Pricing, Targeting, wit};
use crate::runtime::{Cause, Failure, Invocation, PluginRuntime, Report};
use crate::services::ServiceError;
use crate::services::audit::AuditLog;
use crate::services::clock::{Clock, SystemClock};
use crate::services::plugins::view::{purpose_of, restrict};
use crate::services::plugins::{DisableRequest, EnableRequest, PluginDetail, Plugins, Upload};
use crate::services::subscribers::Caller;
use crate::store::{self, Actor};

#[derive(Debug, Subcommand)]
pub enum PluginCommand {
    /// Create a plugin crate that builds as is: `cargo build --release --target wasm32-wasip2`.
    New {
        /// The plugin id and crate name, e.g. gold-offers.
        name: String,
        #[arg(long, value_enum)]
        kind: KindArg,
        /// Where to create it (default: ./NAME).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// The masthead-sdk crate to depend on (default: the SDK this binary was built with).
        #[arg(long)]
        sdk: Option<PathBuf>,
    },
    /// Check a package as an upload would, without storing anything.
    Check(Package),
    /// Run a package on readers from a JSON file with the production limits; prints each
    /// result, the fuel, the peak memory and the time.
    Run {
        #[command(flatten)]
        package: Package,
        /// Readers: a JSON array, or {"today", "publications", "subscribers"}.
        #[arg(long)]
        input: PathBuf,
        /// A configuration override, e.g. --set min_years=10 (repeatable).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        /// For offer providers.
        #[arg(long, value_enum, default_value = "renewal")]
        occasion: OccasionArg,
        /// For targeters: the campaign's marketing channel.
        #[arg(long, value_enum, default_value = "email")]
        channel: ChannelArg,
    },
    /// Upload a package into the database (it runs once enabled).
    Upload {
        #[command(flatten)]
        package: Package,
        /// Grant the `pii` permission the manifest asks for (audited).
        #[arg(long)]
        grant_pii: bool,
    },
    /// List the stored plugins.
    List,
    /// A plugin's versions, history and latest failures.
    Show { id: String },
    /// Turn a plugin on, at a version (an older one rolls back).
    Enable {
        id: String,
        #[arg(long)]
        version: Option<String>,
    },
    /// Turn a plugin off.
    Disable {
        id: String,
        #[arg(long)]
        reason: String,
    },
    /// Delete a plugin and all its versions.
    Delete { id: String },
}

/// A plugin package on disk: its folder (with masthead-plugin.toml) and its component.
#[derive(Debug, clap::Args)]
pub struct Package {
    /// The plugin's folder, holding masthead-plugin.toml.
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// The component (default: DIR/target/wasm32-wasip2/release/ID.wasm, dashes as
    /// underscores).
    #[arg(long)]
    pub component: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum KindArg {
    Segmenter,
    Targeter,
    OfferProvider,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum OccasionArg {
    Renewal,
    ServiceCall,
    Web,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ChannelArg {
    Email,
    Phone,
    Post,
}

pub async fn run(command: PluginCommand, config: &Config) -> anyhow::Result<()> {
    match command {
        PluginCommand::New {
            name,
            kind,
            dir,
            sdk,
        } => new_crate(&name, kind, dir, sdk),
        PluginCommand::Check(package) => {
            let (upload, _) = read_package(&package)?;
            let runtime = Arc::new(runtime(config)?);
            let (manifest, api_version) = check(&runtime, &upload)?;
            let sample = try_on_sample_readers(config, &runtime, &upload).await?;
            println!(
                "ok: {} {} ({}), masthead:plugin@{api_version}, sha256 {}\n  ran {sample}",
                manifest.id,
                manifest.version,
                manifest.kind.as_str(),
                manifest.sha256.unwrap_or_default()
            );
            Ok(())
        }
        PluginCommand::Run {
            package,
            input,
            set,
            occasion,
            channel,
        } => run_local(config, &package, &input, &set, occasion, channel).await,
        other => manage(other, config).await,
    }
}

/// The commands that work on the plugins stored in the database.
async fn manage(command: PluginCommand, config: &Config) -> anyhow::Result<()> {
    let store = store::open(&config.database_url()).await?;
    let (audit, audit_task) = AuditLog::start(Arc::clone(&store));
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let plugins = Plugins::new(
        Arc::clone(&store),
        audit.clone(),
        Arc::new(runtime(config)?),
        Arc::clone(&clock),
        config.plugins.failure_threshold,
    );
    let caller = Caller {
        actor: Actor {
            key_id: None,
            name: "command line".into(),
            role: crate::domain::Role::Admin,
        },
        request_id: None,
        now: clock.now(),
    };
    let result = match command {
        PluginCommand::Upload { package, grant_pii } => {
            let (mut upload, _) = read_package(&package)?;
            upload.grant_pii = grant_pii;
            plugins
                .upload(&caller, upload)
                .await
                .map(|d| print_detail(&d))
        }
        PluginCommand::List => plugins.list().await.map(|list| {
            for p in list {
                let state = if p.enabled { "enabled" } else { "disabled" };
                let why = p
                    .disabled_reason
                    .map(|r| format!(" ({r})"))
                    .unwrap_or_default();
                println!(
                    "{}\t{}\t{}\t{state}{why}",
                    p.id,
                    p.kind.as_str(),
                    p.active_version.unwrap_or_else(|| "-".into())
                );
            }
        }),
        PluginCommand::Show { id } => plugins.show(&id).await.map(|d| print_detail(&d)),
        PluginCommand::Enable { id, version } => plugins
            .enable(&caller, &id, EnableRequest { version })
            .await
            .map(|d| print_detail(&d)),
        PluginCommand::Disable { id, reason } => plugins
            .disable(&caller, &id, DisableRequest { reason })
            .await
            .map(|d| print_detail(&d)),
        PluginCommand::Delete { id } => plugins.delete(&caller, &id).await.map(|()| {
            println!("deleted {id}");
        }),
        PluginCommand::New { .. } | PluginCommand::Check(_) | PluginCommand::Run { .. } => Ok(()),
    };
    audit.flush().await;
    // The writer stops once every handle (the service holds one) is gone.
    drop(plugins);
    drop(audit);
    let _ = audit_task.await;
    store.close().await;
    result.map_err(explain)
}

fn explain(e: ServiceError) -> anyhow::Error {
    match e {
        ServiceError::Invalid(errors) => anyhow::anyhow!(
            "refused:\n{}",
            errors
                .iter()
                .map(|e| format!("  {}: {}", e.field, e.message))
                .collect::<Vec<_>>()
                .join("\n")
        ),
        other => anyhow::anyhow!("{other}"),
    }
}

fn print_detail(d: &PluginDetail) {
    let state = if d.plugin.enabled {
        "enabled"
    } else {
        "disabled"
    };
    println!(
        "{} ({}): {state}, active version {}",
        d.plugin.id,
        d.plugin.kind.as_str(),
        d.plugin.active_version.as_deref().unwrap_or("none")
    );
    if let Some(reason) = &d.plugin.disabled_reason {
        println!("  off because: {reason}");
    }
    for v in &d.versions {
        println!(
            "  version {} (api {}, {} bytes, uploaded {} by {}, failing streak {})",
            v.version,
            v.api_version,
            v.size_bytes,
            v.uploaded_at,
            v.uploaded_by,
            v.consecutive_failures
        );
    }
    for e in &d.history {
        println!(
            "  {} {} {} {}{}",
            e.at,
            e.actor,
            e.action,
            e.version.as_deref().unwrap_or(""),
            e.detail
                .as_ref()
                .map(|d| format!(": {d}"))
                .unwrap_or_default()
        );
    }
    for f in &d.recent_failures {
        println!(
            "  failed {} v{} {}: {}",
            f.at, f.version, f.cause, f.message
        );
    }
}

fn runtime(config: &Config) -> anyhow::Result<PluginRuntime> {
    PluginRuntime::new(config.plugins.runtime())
}

/// Reads the manifest and the component, filling in the component's SHA-256 when the
/// manifest has none.
fn read_package(package: &Package) -> anyhow::Result<(Upload, Manifest)> {
    let manifest_path = package.dir.join("masthead-plugin.toml");
    let text = std::fs::read_to_string(&manifest_path)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", manifest_path.display()))?;
    let manifest = Manifest::from_toml(&text).map_err(anyhow::Error::msg)?;
    let component_path = package.component.clone().unwrap_or_else(|| {
        package
            .dir
            .join("target/wasm32-wasip2/release")
            .join(format!("{}.wasm", manifest.id.replace('-', "_")))
    });
    let component = std::fs::read(&component_path).map_err(|e| {
        anyhow::anyhow!(
            "cannot read the component {}: {e} (build it with `cargo build --release --target wasm32-wasip2`, or name it with --component)",
            component_path.display()
        )
    })?;
    let text = if manifest.sha256.is_none() {
        let sha: String = Sha256::digest(&component)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        format!("sha256 = \"{sha}\"\n{text}")
    } else {
        text
    };
    let manifest = Manifest::from_toml(&text).map_err(anyhow::Error::msg)?;
    Ok((
        Upload {
            manifest: text,
            component,
            grant_pii: false,
        },
        manifest,
    ))
}

/// The upload's checks, locally: the manifest against this host's caps, then the component.
fn check(runtime: &PluginRuntime, upload: &Upload) -> anyhow::Result<(Manifest, String)> {
    let manifest = Manifest::from_toml(&upload.manifest).map_err(anyhow::Error::msg)?;
    let checked = manifest.check(runtime.settings().caps).map_err(|errors| {
        anyhow::anyhow!(
            "the manifest is refused:\n{}",
            errors
                .iter()
                .map(|e| format!("  {}: {}", e.field, e.message))
                .collect::<Vec<_>>()
                .join("\n")
        )
    })?;
    let inspected = runtime
        .inspect(&upload.component, checked.manifest.kind)
        .map_err(|e| anyhow::anyhow!("the component is refused: {e}"))?;
    Ok((checked.manifest, inspected.api_version.to_string()))
}

async fn run_local(
    config: &Config,
    package: &Package,
    input: &Path,
    set: &[String],
    occasion: OccasionArg,
    channel: ChannelArg,
) -> anyhow::Result<()> {
    let (upload, _) = read_package(package)?;
    let runtime = Arc::new(runtime(config)?);
    let (manifest, _) = check(&runtime, &upload)?;
    let checked = manifest
        .clone()
        .check(runtime.settings().caps)
        .map_err(|_| anyhow::anyhow!("the manifest is refused"))?;
    let mut overrides = BTreeMap::new();
    for pair in set {
        let (key, value) = pair
            .split_once('=')
            .ok_or_else(|| anyhow::anyhow!("--set takes KEY=VALUE, not {pair}"))?;
        let value = serde_json::from_str(value).unwrap_or(serde_json::Value::String(value.into()));
        let value =
            serde_json::from_value(value).map_err(|e| anyhow::anyhow!("--set {key}: {e}"))?;
        overrides.insert(key.to_string(), value);
    }
    let settings = manifest.resolve_config(&overrides).map_err(|errors| {
        anyhow::anyhow!(
            "--set refused: {}",
            errors
                .iter()
                .map(|e| format!("{}: {}", e.field, e.message))
                .collect::<Vec<_>>()
                .join("; ")
        )
    })?;
    let text = std::fs::read_to_string(input)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", input.display()))?;
    let parsed = Input::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", input.display()))?;
    let clock = SystemClock;
    let (context, records) = parsed
        .into_batch(clock.today())
        .map_err(|e| anyhow::anyhow!("{}: {e}", input.display()))?;
    let records: Vec<_> = records
        .into_iter()
        .map(|r| restrict(r, checked.fields, checked.wants_pii))
        .collect();
    let count = records.len();
    let call = invocation(&runtime, &manifest, checked.limits, &upload, settings)?;
    let numbers: Vec<u64> = records.iter().map(|r| r.number).collect();
    let outcome = call_as_kind(&runtime, call, context, records, occasion, channel).await;
    let limits = checked.limits;
    match print_report(outcome, &numbers) {
        Ok(stats) => {
            println!("{count} records; {}", cost(&stats, limits));
            Ok(())
        }
        Err(failure) => anyhow::bail!(
            "the batch failed ({}): {} [{}]",
            failure.cause.as_str(),
            failure.message,
            cost(&failure.stats, limits)
        ),
    }
}

/// The call of a plugin read from its files, with the manifest's limits and these settings.
fn invocation(
    runtime: &PluginRuntime,
    manifest: &Manifest,
    limits: Limits,
    upload: &Upload,
    settings: Vec<(String, SettingValue)>,
) -> anyhow::Result<Invocation> {
    Ok(Invocation {
        plugin: runtime.prepare(
            &manifest.id,
            &manifest.version,
            manifest.kind,
            &[],
            &upload.component,
        )?,
        limits,
        config: settings
            .into_iter()
            .map(|(k, v)| (k, crate::services::plugins::config_value(v)))
            .collect(),
    })
}

/// Readers in each call of the sample run, and calls: a segment refresh or a campaign
/// sends batches of `batch_size`, offers are asked one reader at a time.
fn sample_shape(kind: PluginKind, batch_size: usize) -> (usize, usize) {
    match kind {
        PluginKind::OfferProvider => (1, 50),
        PluginKind::Segmenter | PluginKind::Targeter => (batch_size.max(1), 1),
    }
}

/// Runs the plugin on sample readers under its manifest's limits and configuration defaults,
/// called as production calls it; fails with what happened, the cost, and what to change.
async fn try_on_sample_readers(
    config: &Config,
    runtime: &Arc<PluginRuntime>,
    upload: &Upload,
) -> anyhow::Result<String> {
    let manifest = Manifest::from_toml(&upload.manifest).map_err(anyhow::Error::msg)?;
    let caps = runtime.settings().caps;
    let checked = manifest
        .clone()
        .check(caps)
        .map_err(|_| anyhow::anyhow!("the manifest is refused"))?;
    let settings = manifest
        .resolve_config(&BTreeMap::new())
        .map_err(|_| anyhow::anyhow!("the manifest's [config] defaults are refused"))?;
    let clock = SystemClock;
    let (per_call, calls) = sample_shape(manifest.kind, config.plugins.batch_size);
    let (context, records) =
        Input::Readers(super::sample::readers(per_call * calls, clock.today()))
            .into_batch(clock.today())
            .map_err(anyhow::Error::msg)?;
    let call = invocation(runtime, &manifest, checked.limits, upload, settings)?;
    let limits = checked.limits;
    let mut most = crate::runtime::outcome::Stats::default();
    let mut refused = Vec::new();
    for batch in records.chunks(per_call) {
        let batch: Vec<_> = batch
            .iter()
            .map(|r| restrict(r.clone(), checked.fields, checked.wants_pii))
            .collect();
        let numbers: Vec<u64> = batch.iter().map(|r| r.number).collect();
        let outcome = call_as_kind(
            runtime,
            call.clone(),
            context.clone(),
            batch,
            OccasionArg::Renewal,
            ChannelArg::Email,
        )
        .await;
        let report = outcome.map_err(|failure| {
            let what = if per_call == 1 {
                format!("a call on sample reader {}", numbers[0])
            } else {
                format!("a batch of {per_call} sample readers")
            };
            anyhow::anyhow!(
                "{what} failed ({}): {} [{}]; {}",
                failure.cause.as_str(),
                failure.message,
                cost(&failure.stats, limits),
                advice(&failure, caps)
            )
        })?;
        most.fuel_used = most.fuel_used.max(report.stats.fuel_used);
        most.peak_memory_bytes = most.peak_memory_bytes.max(report.stats.peak_memory_bytes);
        most.duration = most.duration.max(report.stats.duration);
        refused.extend(
            numbers
                .iter()
                .zip(report.results)
                .filter_map(|(number, r)| r.err().map(|e| (*number, e))),
        );
    }
    let shape = if per_call == 1 {
        format!("{calls} calls of one sample reader")
    } else {
        format!("a batch of {per_call} sample readers")
    };
    let errors = match refused.first() {
        None => String::new(),
        Some((number, e)) => format!(
            "; {} readers answered an error, the first {number}: {e}",
            refused.len()
        ),
    };
    Ok(format!("{shape}: at most {}{errors}", cost(&most, limits)))
}

/// What to change in the package after a failed sample run.
fn advice(failure: &Failure, caps: Limits) -> String {
    match failure.cause {
        // Nothing ran: the component's own initial memory is over the limit.
        Cause::Memory if failure.stats.fuel_used == 0 => format!(
            "the component does not even start in that much memory; raise memory_mib under \
             [limits] in masthead-plugin.toml (this host allows up to {} MiB)",
            caps.memory_mib
        ),
        Cause::Memory => format!(
            "raise memory_mib under [limits] in masthead-plugin.toml (this host allows up to {} \
             MiB), or hold less per batch",
            caps.memory_mib
        ),
        Cause::Fuel => format!(
            "raise fuel_per_batch under [limits] (this host allows up to {}), or do less work \
             per reader",
            caps.fuel_per_batch
        ),
        Cause::Deadline => format!(
            "raise deadline_ms under [limits] (this host allows up to {} ms), or do less work \
             per batch",
            caps.deadline_ms
        ),
        Cause::Configure => {
            "the plugin's configure refuses the defaults under [config]; make them agree".into()
        }
        Cause::Malformed => {
            "answer once per reader, within the host's cap on the size of results".into()
        }
        Cause::Trap => "try it natively with `cargo test`, or with `masthead plugin run` on \
                        readers like these"
            .into(),
        Cause::Host => "the host could not run the check; try again".into(),
    }
}

/// The fuel, memory and time of a call against the limits it ran under.
fn cost(stats: &crate::runtime::outcome::Stats, limits: Limits) -> String {
    format!(
        "fuel {} of {}; peak memory {:.1} MiB of {} MiB; {:.2} ms",
        stats.fuel_used,
        limits.fuel_per_batch,
        stats.peak_memory_bytes as f64 / (1 << 20) as f64,
        limits.memory_mib,
        stats.duration.as_secs_f64() * 1e3
    )
}

/// Calls the plugin the way its kind is called, each record's answer as text.
async fn call_as_kind(
    runtime: &Arc<PluginRuntime>,
    call: Invocation,
    context: wit::Context,
    records: Vec<wit::Subscriber>,
    occasion: OccasionArg,
    channel: ChannelArg,
) -> Result<Report<String>, Failure> {
    match call.plugin.kind() {
        PluginKind::Segmenter => runtime.segment(call, context, records).await.map(shown),
        PluginKind::Targeter => {
            let channel = match channel {
                ChannelArg::Email => ConsentPurpose::MarketingEmail,
                ChannelArg::Phone => ConsentPurpose::MarketingPhone,
                ChannelArg::Post => ConsentPurpose::MarketingPost,
            };
            let campaign = Campaign {
                name: "plugin run".into(),
                channel: purpose_of(channel),
                segment: "input".into(),
            };
            runtime
                .target(call, context, campaign, records)
                .await
                .map(shown)
        }
        PluginKind::OfferProvider => {
            let occasion = match occasion {
                OccasionArg::Renewal => Occasion::Renewal,
                OccasionArg::ServiceCall => Occasion::ServiceCall,
                OccasionArg::Web => Occasion::Web,
            };
            runtime
                .propose(call, context, occasion, records)
                .await
                .map(shown)
        }
    }
}

fn shown<T: Answer>(report: Report<T>) -> Report<String> {
    Report {
        results: report
            .results
            .into_iter()
            .map(|r| r.map(|answer| answer.shown()))
            .collect(),
        stats: report.stats,
    }
}

/// Prints one line per record and the plugin's log; returns the call's cost.
fn print_report(
    outcome: Result<Report<String>, Failure>,
    numbers: &[u64],
) -> Result<crate::runtime::outcome::Stats, Failure> {
    let report = outcome?;
    for line in &report.stats.log {
        eprintln!("log {}: {}", line.level, line.message);
    }
    if report.stats.dropped_log_lines > 0 {
        eprintln!(
            "({} more log lines dropped)",
            report.stats.dropped_log_lines
        );
    }
    for (number, result) in numbers.iter().zip(&report.results) {
        match result {
            Ok(answer) => println!("{number}\t{answer}"),
            Err(e) => println!("{number}\terror: {e}"),
        }
    }
    Ok(report.stats)
}

/// One record's answer, as a plugin author reads it in a terminal.
trait Answer {
    fn shown(&self) -> String;
}

impl Answer for Vec<String> {
    fn shown(&self) -> String {
        if self.is_empty() {
            "in no segment".into()
        } else {
            format!("segments: {}", self.join(", "))
        }
    }
}

impl Answer for Targeting {
    fn shown(&self) -> String {
        match self {
            Targeting::Score(score) => format!("score {score}"),
            Targeting::Exclude(reason) => format!("excluded: {reason}"),
        }
    }
}

impl Answer for Vec<Offer> {
    fn shown(&self) -> String {
        if self.is_empty() {
            return "no offer".into();
        }
        let offers: Vec<_> = self
            .iter()
            .map(|o| {
                let format = match o.format {
                    wit::Format::Print => "print",
                    wit::Format::Digital => "digital",
                    wit::Format::Bundle => "bundle",
                };
                let pricing = match o.pricing {
                    Pricing::Price(price) => format!("at {price} (minor units)"),
                    Pricing::PercentOff(bp) => format!("{}.{:02} % off", bp / 100, bp % 100),
                    Pricing::AmountOff(amount) => format!("{amount} (minor units) off"),
                };
                let until = o.valid_until;
                format!(
                    "offer {} \"{}\": {} {format}, {} months, {pricing}, valid until \
                     {:04}-{:02}-{:02}, score {}; reason: {}",
                    o.code,
                    o.title,
                    o.publication,
                    o.months,
                    until.year,
                    until.month,
                    until.day,
                    o.score,
                    o.reason
                )
            })
            .collect();
        offers.join("\n\t")
    }
}

fn new_crate(
    name: &str,
    kind: KindArg,
    dir: Option<PathBuf>,
    sdk: Option<PathBuf>,
) -> anyhow::Result<()> {
    let probe = Manifest::from_toml(&format!(
        "id = \"{name}\"\nversion = \"0.1.0\"\nkind = \"segmenter\"\napi_version = \"1.0.0\"\n"
    ))
    .map_err(anyhow::Error::msg)?;
    let caps = crate::domain::plugin::Limits {
        memory_mib: 1,
        fuel_per_batch: 1,
        deadline_ms: 1,
    };
    if let Err(errors) = probe.check(caps)
        && let Some(e) = errors.iter().find(|e| e.field == "id")
    {
        anyhow::bail!("the name \"{name}\" cannot be a plugin id: {}", e.message);
    }
    let dir = dir.unwrap_or_else(|| PathBuf::from(name));
    anyhow::ensure!(!dir.exists(), "{} exists already", dir.display());
    let sdk = match sdk {
        Some(path) => path,
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../sdk"),
    };
    let sdk = sdk.canonicalize().map_err(|e| {
        anyhow::anyhow!(
            "the SDK at {} cannot be found ({e}); name it with --sdk",
            sdk.display()
        )
    })?;
    let (kind, feature, template, fields) = match kind {
        KindArg::Segmenter => (
            PluginKind::Segmenter,
            "segmenter",
            include_str!("templates/segmenter.rs.txt"),
            "[\"status\", \"tenure\"]",
        ),
        KindArg::Targeter => (
            PluginKind::Targeter,
            "targeter",
            include_str!("templates/targeter.rs.txt"),
            "[\"status\", \"lifetime-revenue\"]",
        ),
        KindArg::OfferProvider => (
            PluginKind::OfferProvider,
            "offer-provider",
            include_str!("templates/offer-provider.rs.txt"),
            "[\"status\", \"tenure\", \"terms\"]",
        ),
    };
    let config = match kind {
        PluginKind::Segmenter => {
            "\n[config.min_years]\ntype = \"integer\"\ndefault = 5\ndescription = \"Whole years of tenure to be long-standing\"\n"
        }
        PluginKind::Targeter => "",
        PluginKind::OfferProvider => {
            "\n[config.percent]\ntype = \"integer\"\ndefault = 10\ndescription = \"Discount offered, in percent\"\n"
        }
    };
    std::fs::create_dir_all(dir.join("src"))?;
    std::fs::write(
        dir.join("Cargo.toml"),
        format!(
            "[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2024\"\npublish = false\n\n\
             [lib]\ncrate-type = [\"cdylib\", \"rlib\"]\n\n\
             [dependencies]\n# The dependency must be named masthead-sdk; the feature names the kind.\n\
             masthead-sdk = {{ path = {}, features = [\"{feature}\"] }}\n\n\
             # A crate of its own, not part of an enclosing workspace.\n[workspace]\n",
            toml::Value::String(sdk.display().to_string())
        ),
    )?;
    std::fs::write(dir.join("src/lib.rs"), template.replace("{{name}}", name))?;
    std::fs::write(
        dir.join("masthead-plugin.toml"),
        format!(
            "# Read by Masthead on upload; `masthead plugin upload` fills in sha256.\n\
             id = \"{name}\"\nversion = \"0.1.0\"\nkind = \"{}\"\napi_version = \"{}\"\n\
             description = \"\"\n# The subscriber fields the plugin reads; the host fills only these.\n\
             fields = {fields}\npermissions = []\n\n[limits]\n# Ask for less than the host's caps if you can.\nmemory_mib = 16\n{config}",
            kind.as_str(),
            crate::domain::plugin::API_VERSION
        ),
    )?;
    std::fs::write(dir.join(".gitignore"), "/target\n")?;
    println!(
        "created {} ({}). Next:\n  cd {}\n  cargo test                                      # your logic, natively\n  \
         cargo build --release --target wasm32-wasip2    # the component\n  \
         masthead plugin run --input readers.json        # with the production limits\n  \
         masthead plugin upload && masthead plugin enable {name}",
        dir.display(),
        kind.as_str(),
        dir.display()
    );
    Ok(())
}
