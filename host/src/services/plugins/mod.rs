//! Plugins: upload with every check, the lifecycle (enable, disable, roll back, configure,
//! delete), and running the active version of a plugin with its failures recorded and its
//! circuit breaker applied.

pub mod campaigns;
pub mod offers;
pub mod view;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use super::audit::AuditLog;
use super::clock::Clock;
use super::subscribers::Caller;
use super::{ServiceError, ServiceResult};
use crate::domain::FieldErrors;
use crate::domain::plugin::{
    CheckedManifest, Limits, Manifest, PluginKind, RequestedLimits, Setting, SettingValue,
};
use crate::runtime::bindings::wit;
use crate::runtime::{Cause, Failure, Invocation, PluginRuntime, Prepared, Report};
use crate::store::{
    NewPluginVersion, PluginEvent, PluginFailureRecord, PluginRecord, PluginStateChange,
    PluginVersionRecord, Store, StoreError,
};

/// An upload: the manifest's TOML text and the component's bytes.
pub struct Upload {
    pub manifest: String,
    pub component: Vec<u8>,
    /// The admin grants the `pii` permission the manifest asks for.
    pub grant_pii: bool,
}

/// A plugin as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PluginView {
    pub id: String,
    pub kind: PluginKind,
    pub enabled: bool,
    pub active_version: Option<String>,
    /// Why the plugin is off: a person's reason or the circuit breaker's.
    pub disabled_reason: Option<String>,
    /// Installation overrides of the manifest's defaults.
    #[schema(value_type = Object)]
    pub config: BTreeMap<String, SettingValue>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// One uploaded version.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct VersionView {
    pub version: String,
    pub api_version: String,
    pub description: Option<String>,
    pub fields: Vec<String>,
    pub pii_requested: bool,
    pub pii_granted: bool,
    /// The limits it runs under: the host's caps, lowered where its manifest asks.
    pub limits: Limits,
    #[schema(value_type = Object)]
    pub config_schema: BTreeMap<String, Setting>,
    pub sha256: String,
    pub size_bytes: i64,
    pub uploaded_by: String,
    pub uploaded_at: DateTime<Utc>,
    pub consecutive_failures: i64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EventView {
    pub at: DateTime<Utc>,
    pub action: String,
    pub version: Option<String>,
    pub detail: Option<String>,
    pub actor: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FailureView {
    pub at: DateTime<Utc>,
    pub version: String,
    /// trap, fuel, deadline, memory, malformed or configure.
    pub cause: String,
    pub message: String,
    /// Records in the failed batch.
    pub records: i64,
}

/// A plugin with its versions, history and latest failures.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PluginDetail {
    #[serde(flatten)]
    pub plugin: PluginView,
    /// Oldest first.
    pub versions: Vec<VersionView>,
    pub history: Vec<EventView>,
    /// Newest first, at most 20.
    pub recent_failures: Vec<FailureView>,
}

/// Turning a plugin on, optionally at another version (a rollback or an upgrade).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnableRequest {
    /// The version to run; default: the active one, or the latest uploaded.
    pub version: Option<String>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DisableRequest {
    pub reason: String,
}

/// A plugin version ready to call, with what it may read.
pub struct Active {
    pub record: PluginRecord,
    pub version: Arc<LoadedVersion>,
    pub invocation: Invocation,
}

/// An immutable uploaded version, checked and prepared once per process.
pub struct LoadedVersion {
    pub stored: PluginVersionRecord,
    pub checked: CheckedManifest,
    pub prepared: Arc<Prepared>,
}

pub struct Plugins {
    store: Arc<dyn Store>,
    audit: AuditLog,
    runtime: Arc<PluginRuntime>,
    clock: Arc<dyn Clock>,
    failure_threshold: i64,
    loaded: Mutex<HashMap<(String, String), Arc<LoadedVersion>>>,
}

impl Plugins {
    pub fn new(
        store: Arc<dyn Store>,
        audit: AuditLog,
        runtime: Arc<PluginRuntime>,
        clock: Arc<dyn Clock>,
        failure_threshold: u32,
    ) -> Self {
        Self {
            store,
            audit,
            runtime,
            clock,
            failure_threshold: i64::from(failure_threshold.max(1)),
            loaded: Mutex::new(HashMap::new()),
        }
    }

    pub fn runtime(&self) -> &Arc<PluginRuntime> {
        &self.runtime
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// Checks a package the way an upload does, without storing anything.
    pub async fn check(&self, upload: &Upload) -> ServiceResult<(CheckedManifest, String)> {
        let manifest = Manifest::from_toml(&upload.manifest)
            .map_err(|e| ServiceError::Invalid(FieldErrors::single("manifest", e)))?;
        let checked = manifest
            .check(self.runtime.settings().caps)
            .map_err(|e| ServiceError::Invalid(prefixed("manifest", e)))?;
        let sha256 = hex(&Sha256::digest(&upload.component));
        let mut errors = FieldErrors::default();
        match &checked.manifest.sha256 {
            None => errors.add("manifest.sha256", "give the SHA-256 of the component"),
            Some(declared) if !declared.eq_ignore_ascii_case(&sha256) => errors.add(
                "manifest.sha256",
                format!("does not match the component, whose SHA-256 is {sha256}"),
            ),
            Some(_) => {}
        }
        if upload.grant_pii && !checked.wants_pii {
            errors.add(
                "grant_pii",
                "the manifest does not ask for the \"pii\" permission",
            );
        }
        if !errors.is_empty() {
            return Err(ServiceError::Invalid(errors));
        }
        Ok((checked, sha256))
    }

    /// Validates, precompiles and stores a new version; it runs only once enabled.
    pub async fn upload(&self, caller: &Caller, upload: Upload) -> ServiceResult<PluginDetail> {
        let (checked, sha256) = self.check(&upload).await?;
        let runtime = Arc::clone(&self.runtime);
        let kind = checked.manifest.kind;
        let component = upload.component;
        let (inspected, component) = tokio::task::spawn_blocking(move || {
            let inspected = runtime.inspect(&component, kind);
            (inspected, component)
        })
        .await
        .map_err(|e| ServiceError::Conflict(format!("the component check failed: {e}")))?;
        let inspected = inspected
            .map_err(|reason| ServiceError::Invalid(FieldErrors::single("component", reason)))?;
        if inspected.api_version != checked.api_version {
            return Err(ServiceError::Invalid(FieldErrors::single(
                "manifest.api_version",
                format!(
                    "says {} but the component was built for {}",
                    checked.api_version, inspected.api_version
                ),
            )));
        }
        let id = checked.manifest.id.clone();
        let version = checked.manifest.version.clone();
        let mut manifest = checked.manifest;
        manifest.sha256 = Some(sha256.clone());
        self.store
            .insert_plugin_version(NewPluginVersion {
                manifest,
                api_version: inspected.api_version.to_string(),
                sha256,
                component,
                compiled: inspected.compiled,
                pii_granted: upload.grant_pii,
                uploaded_by: caller.actor.name.clone(),
                at: self.clock.now(),
            })
            .await?;
        if upload.grant_pii {
            let entry = caller.audit(
                "plugin.pii_granted",
                None,
                serde_json::json!({ "plugin": id, "version": version }),
            );
            self.audit.record(entry).await;
        }
        tracing::info!(plugin = %id, %version, "plugin uploaded");
        self.show(&id).await
    }

    pub async fn list(&self) -> ServiceResult<Vec<PluginView>> {
        let plugins = self.store.list_plugins().await?;
        Ok(plugins.into_iter().map(view).collect())
    }

    pub async fn show(&self, id: &str) -> ServiceResult<PluginDetail> {
        let plugin = self.get(id).await?;
        let caps = self.runtime.settings().caps;
        let versions = self.store.plugin_versions(id).await?;
        let history = self.store.plugin_events(id).await?;
        let failures = self.store.plugin_failures(id, 20).await?;
        Ok(PluginDetail {
            plugin: view(plugin),
            versions: versions
                .into_iter()
                .map(|v| version_view(v, caps))
                .collect(),
            history: history
                .into_iter()
                .map(|e| EventView {
                    at: e.at,
                    action: e.action,
                    version: e.version,
                    detail: e.detail,
                    actor: e.actor,
                })
                .collect(),
            recent_failures: failures
                .into_iter()
                .map(|f| FailureView {
                    at: f.at,
                    version: f.version,
                    cause: f.cause,
                    message: f.message,
                    records: f.records,
                })
                .collect(),
        })
    }

    pub async fn enable(
        &self,
        caller: &Caller,
        id: &str,
        request: EnableRequest,
    ) -> ServiceResult<PluginDetail> {
        let plugin = self.get(id).await?;
        let versions = self.store.plugin_versions(id).await?;
        let wanted = request
            .version
            .or(plugin.active_version.clone())
            .or_else(|| versions.last().map(|v| v.version.clone()));
        let Some(version) = versions
            .iter()
            .find(|v| Some(&v.version) == wanted.as_ref())
        else {
            let known: Vec<_> = versions.iter().map(|v| v.version.as_str()).collect();
            let message = match wanted {
                Some(wanted) => format!(
                    "plugin {id} has no version {wanted}; uploaded: {}",
                    known.join(", ")
                ),
                None => format!("plugin {id} has no version yet; upload one first"),
            };
            return Err(ServiceError::Invalid(FieldErrors::single(
                "version", message,
            )));
        };
        // A version that cannot be prepared on this host must not go live, nor one whose
        // schema does not take the stored configuration: each of its calls would fail.
        let loaded = self.load(id, version).await?;
        if let Err(errors) = loaded.checked.manifest.resolve_config(&plugin.config) {
            let wrong: Vec<_> = errors
                .iter()
                .map(|e| format!("{}: {}", e.field, e.message))
                .collect();
            return Err(ServiceError::Invalid(FieldErrors::single(
                "version",
                format!(
                    "version {} does not take the configuration set ({}); change it with \
                     PUT /api/v1/plugins/{id}/config first",
                    version.version,
                    wrong.join("; ")
                ),
            )));
        }
        let action = match &plugin.active_version {
            Some(active) if *active != version.version => "switched version",
            _ => "enabled",
        };
        let detail = plugin
            .active_version
            .as_ref()
            .filter(|a| **a != version.version)
            .map(|from| format!("from {from}"));
        self.store
            .change_plugin_state(
                id,
                PluginStateChange {
                    active_version: Some(version.version.clone()),
                    enabled: true,
                    disabled_reason: None,
                    event: self.event(caller, Some(version.version.clone()), action, detail),
                },
            )
            .await?;
        self.show(id).await
    }

    pub async fn disable(
        &self,
        caller: &Caller,
        id: &str,
        request: DisableRequest,
    ) -> ServiceResult<PluginDetail> {
        let reason = request.reason.trim();
        if reason.is_empty() {
            return Err(ServiceError::Invalid(FieldErrors::single(
                "reason",
                "say why the plugin is turned off",
            )));
        }
        let plugin = self.get(id).await?;
        let event = self.event(
            caller,
            plugin.active_version.clone(),
            "disabled",
            Some(reason.to_string()),
        );
        self.store
            .change_plugin_state(
                id,
                PluginStateChange {
                    active_version: plugin.active_version,
                    enabled: false,
                    disabled_reason: Some(reason.to_string()),
                    event,
                },
            )
            .await?;
        self.show(id).await
    }

    /// Replaces the installation's configuration overrides, checked against the schema of the
    /// version that would run (the active one, or the latest) and then by that version's own
    /// `configure`: a configuration it refuses would fail every call and trip the breaker.
    pub async fn configure(
        &self,
        caller: &Caller,
        id: &str,
        overrides: BTreeMap<String, SettingValue>,
    ) -> ServiceResult<PluginDetail> {
        let plugin = self.get(id).await?;
        let versions = self.store.plugin_versions(id).await?;
        let would_run = plugin
            .active_version
            .as_ref()
            .and_then(|a| versions.iter().find(|v| v.version == *a))
            .or(versions.last())
            .ok_or_else(|| ServiceError::NotFound(format!("plugin {id} has no versions")))?;
        let resolved = would_run
            .manifest
            .resolve_config(&overrides)
            .map_err(ServiceError::Invalid)?;
        let loaded = self.load(id, would_run).await?;
        self.try_configuration(&loaded, resolved).await?;
        let keys: Vec<_> = overrides.keys().cloned().collect();
        let event = self.event(
            caller,
            plugin.active_version.clone(),
            "configured",
            Some(format!("overrides: {}", keys.join(", "))),
        );
        self.store.set_plugin_config(id, &overrides, event).await?;
        self.show(id).await
    }

    pub async fn delete(&self, caller: &Caller, id: &str) -> ServiceResult<()> {
        let versions = self.store.plugin_versions(id).await?;
        match self
            .store
            .delete_plugin(id, self.event(caller, None, "deleted", None))
            .await
        {
            Err(StoreError::NotFound) => Err(not_found(id)),
            Err(e) => Err(e.into()),
            Ok(()) => {
                let mut loaded = self.lock_loaded();
                for v in versions {
                    loaded.remove(&(id.to_string(), v.version.clone()));
                    self.runtime.forget(id, &v.version);
                }
                Ok(())
            }
        }
    }

    /// The version to run for `id` (pinned, or the active one), if the plugin is on.
    pub async fn active(&self, id: &str, pinned: Option<&str>) -> ServiceResult<Active> {
        let record = self.get(id).await?;
        if !record.enabled {
            let why = record
                .disabled_reason
                .as_deref()
                .unwrap_or("not enabled yet");
            return Err(ServiceError::Conflict(format!(
                "plugin {id} is disabled ({why})"
            )));
        }
        let Some(version) = pinned.map(str::to_string).or(record.active_version.clone()) else {
            return Err(ServiceError::Conflict(format!(
                "plugin {id} has no active version"
            )));
        };
        let versions = self.store.plugin_versions(id).await?;
        let stored = versions
            .into_iter()
            .find(|v| v.version == version)
            .ok_or_else(|| {
                ServiceError::NotFound(format!("plugin {id} has no version {version}"))
            })?;
        let version = self.load(id, &stored).await?;
        let config = version
            .checked
            .manifest
            .resolve_config(&record.config)
            .map_err(ServiceError::Invalid)?;
        let invocation = self.invocation(&version, config);
        Ok(Active {
            record,
            version,
            invocation,
        })
    }

    /// Every enabled plugin of a kind, ready to call; one that cannot load is skipped.
    pub async fn enabled_of_kind(&self, kind: PluginKind) -> ServiceResult<Vec<Active>> {
        let mut active = Vec::new();
        for plugin in self.store.list_plugins().await? {
            if plugin.kind != kind || !plugin.enabled {
                continue;
            }
            match self.active(&plugin.id, None).await {
                Ok(a) => active.push(a),
                Err(e) => tracing::warn!(plugin = %plugin.id, error = %e, "plugin skipped"),
            }
        }
        Ok(active)
    }

    /// Records how a batch went: a failure counts towards the circuit breaker, a success
    /// resets it; the plugin's log lines go to the host log.
    pub async fn settle<T>(
        &self,
        active: &Active,
        outcome: &Result<Report<T>, Failure>,
        records: usize,
    ) {
        let id = &active.record.id;
        let version = &active.version.stored.version;
        let stats = match outcome {
            Ok(report) => &report.stats,
            Err(failure) => &failure.stats,
        };
        for line in &stats.log {
            line.write_to_host_log(id, version);
        }
        let result = match outcome {
            // The streak in the database, not the one read when this version was loaded:
            // failures since then (on any host) are what a success ends.
            Ok(_) => self.store.record_plugin_success(id, version).await,
            Err(failure) if !failure.cause.is_plugin_fault() => {
                tracing::warn!(plugin = %id, %version, %failure, "plugin call failed on the host side");
                Ok(())
            }
            Err(failure) => {
                tracing::warn!(plugin = %id, %version, %failure, "plugin batch failed");
                let record = PluginFailureRecord {
                    version: version.clone(),
                    cause: failure.cause.as_str().to_string(),
                    message: failure.message.clone(),
                    records: records as i64,
                    at: self.clock.now(),
                };
                match self
                    .store
                    .record_plugin_failure(id, &record, self.failure_threshold)
                    .await
                {
                    Ok(true) => {
                        tracing::error!(plugin = %id, %version, "circuit breaker tripped: plugin disabled");
                        Ok(())
                    }
                    other => other.map(|_| ()),
                }
            }
        };
        if let Err(e) = result {
            tracing::error!(plugin = %id, error = %e, "could not record the plugin's outcome");
        }
    }

    fn invocation(
        &self,
        version: &LoadedVersion,
        config: Vec<(String, SettingValue)>,
    ) -> Invocation {
        Invocation {
            plugin: Arc::clone(&version.prepared),
            limits: version.checked.limits,
            config: config
                .into_iter()
                .map(|(k, v)| (k, config_value(v)))
                .collect(),
        }
    }

    /// Asks `version`'s own `configure` whether it takes `config`; a refusal is the caller's
    /// to fix and carries the plugin's message. Nothing is recorded against the plugin: this
    /// is a trial, not a call.
    async fn try_configuration(
        &self,
        version: &LoadedVersion,
        config: Vec<(String, SettingValue)>,
    ) -> ServiceResult<()> {
        let failure = match self
            .runtime
            .configure(self.invocation(version, config))
            .await
        {
            Ok(_) => return Ok(()),
            Err(failure) => failure,
        };
        let number = &version.stored.version;
        let message = capped(&failure.message, MAX_PLUGIN_MESSAGE_CHARS);
        match failure.cause {
            Cause::Host => Err(ServiceError::Conflict(format!(
                "the configuration could not be tried on version {number} now ({message}); \
                 nothing was changed, try again"
            ))),
            Cause::Configure => Err(ServiceError::Invalid(FieldErrors::single(
                "config",
                format!("version {number} refuses it: {message}"),
            ))),
            cause => Err(ServiceError::Invalid(FieldErrors::single(
                "config",
                format!(
                    "version {number} failed while reading it ({}): {message}",
                    cause.as_str()
                ),
            ))),
        }
    }

    async fn get(&self, id: &str) -> ServiceResult<PluginRecord> {
        self.store
            .get_plugin(id)
            .await?
            .ok_or_else(|| not_found(id))
    }

    async fn load(
        &self,
        id: &str,
        stored: &PluginVersionRecord,
    ) -> ServiceResult<Arc<LoadedVersion>> {
        let key = (id.to_string(), stored.version.clone());
        if let Some(found) = self.lock_loaded().get(&key) {
            return Ok(Arc::clone(found));
        }
        let checked = stored
            .manifest
            .clone()
            .check(self.runtime.settings().caps)
            .map_err(|e| {
                ServiceError::Conflict(format!(
                    "version {} no longer fits this host's limits: {}",
                    stored.version,
                    e.iter()
                        .map(|e| format!("{}: {}", e.field, e.message))
                        .collect::<Vec<_>>()
                        .join("; ")
                ))
            })?;
        let (component, compiled) = self
            .store
            .plugin_artefacts(id, &stored.version)
            .await?
            .ok_or_else(|| not_found(id))?;
        let runtime = Arc::clone(&self.runtime);
        let (id_owned, version, kind) = (
            id.to_string(),
            stored.version.clone(),
            checked.manifest.kind,
        );
        let prepared = tokio::task::spawn_blocking(move || {
            runtime.prepare(&id_owned, &version, kind, &compiled, &component)
        })
        .await
        .map_err(|e| ServiceError::Conflict(format!("loading the plugin failed: {e}")))?
        .map_err(|e| ServiceError::Conflict(format!("the plugin cannot be loaded: {e:#}")))?;
        let loaded = Arc::new(LoadedVersion {
            stored: stored.clone(),
            checked,
            prepared,
        });
        self.lock_loaded().insert(key, Arc::clone(&loaded));
        Ok(loaded)
    }

    fn lock_loaded(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<(String, String), Arc<LoadedVersion>>> {
        self.loaded.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn event(
        &self,
        caller: &Caller,
        version: Option<String>,
        action: &str,
        detail: Option<String>,
    ) -> PluginEvent {
        PluginEvent {
            version,
            action: action.to_string(),
            detail,
            actor: caller.actor.name.clone(),
            at: self.clock.now(),
        }
    }
}

/// How much of a plugin's own text an answer repeats: enough to act on, never a flood.
const MAX_PLUGIN_MESSAGE_CHARS: usize = 500;

/// `text` cut to at most `max` characters, saying so when it was cut.
fn capped(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        None => text.to_string(),
        Some((end, _)) => format!("{} (cut at {max} characters)", &text[..end]),
    }
}

fn not_found(id: &str) -> ServiceError {
    ServiceError::NotFound(format!("there is no plugin {id}"))
}

fn view(p: PluginRecord) -> PluginView {
    PluginView {
        id: p.id,
        kind: p.kind,
        enabled: p.enabled,
        active_version: p.active_version,
        disabled_reason: p.disabled_reason,
        config: p.config,
        created_at: p.created_at,
        updated_at: p.updated_at,
    }
}

fn version_view(v: PluginVersionRecord, caps: Limits) -> VersionView {
    let limits = caps
        .within(v.manifest.limits)
        .unwrap_or_else(|_| caps.within(RequestedLimits::default()).unwrap_or(caps));
    VersionView {
        api_version: v.api_version,
        description: v.manifest.description.clone(),
        fields: v.manifest.fields.clone(),
        pii_requested: v.manifest.permissions.iter().any(|p| p == "pii"),
        pii_granted: v.pii_granted,
        limits,
        config_schema: v.manifest.config.clone(),
        sha256: v.sha256,
        size_bytes: v.size_bytes,
        uploaded_by: v.uploaded_by,
        uploaded_at: v.uploaded_at,
        consecutive_failures: v.consecutive_failures,
        version: v.version,
    }
}

pub(crate) fn config_value(v: SettingValue) -> wit::ConfigValue {
    match v {
        SettingValue::Boolean(b) => wit::ConfigValue::Boolean(b),
        SettingValue::Integer(i) => wit::ConfigValue::Integer(i),
        SettingValue::Float(f) => wit::ConfigValue::Float(f),
        SettingValue::Text(t) => wit::ConfigValue::Text(t),
    }
}

fn prefixed(prefix: &str, errors: FieldErrors) -> FieldErrors {
    let mut out = FieldErrors::default();
    for e in errors.into_vec() {
        out.add(format!("{prefix}.{}", e.field), e.message);
    }
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
