//! Plugins in the store: `PluginStore` and its records; `sql.rs` holds the SQL both backends run.

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::StoreResult;

/// Plugins: versions, lifecycle, failures.
#[async_trait]
pub trait PluginStore: Send + Sync {
    /// Stores a new version (creating the plugin on its first upload) with an "uploaded"
    /// event. A taken version, or a kind other than the plugin's, is a conflict.
    async fn insert_plugin_version(&self, new: NewPluginVersion) -> StoreResult<()>;
    async fn list_plugins(&self) -> StoreResult<Vec<PluginRecord>>;
    async fn get_plugin(&self, id: &str) -> StoreResult<Option<PluginRecord>>;
    /// Every version, oldest first.
    async fn plugin_versions(&self, id: &str) -> StoreResult<Vec<PluginVersionRecord>>;
    /// The component and its compiled artefact.
    async fn plugin_artefacts(
        &self,
        id: &str,
        version: &str,
    ) -> StoreResult<Option<(Vec<u8>, Vec<u8>)>>;
    async fn change_plugin_state(
        &self,
        id: &str,
        change: PluginStateChange,
    ) -> StoreResult<PluginRecord>;
    async fn set_plugin_config(
        &self,
        id: &str,
        config: &std::collections::BTreeMap<String, crate::domain::plugin::SettingValue>,
        event: PluginEvent,
    ) -> StoreResult<PluginRecord>;
    /// Removes the plugin and its versions; refused while segments use it.
    async fn delete_plugin(&self, id: &str, event: PluginEvent) -> StoreResult<()>;
    /// Records a failed batch, keeping only the plugin's newest failures; at `threshold`
    /// consecutive failures of the active version the plugin is disabled. Returns whether
    /// this failure tripped the breaker.
    async fn record_plugin_failure(
        &self,
        id: &str,
        failure: &PluginFailureRecord,
        threshold: i64,
    ) -> StoreResult<bool>;
    /// Ends the version's failing streak, if it has one.
    async fn record_plugin_success(&self, id: &str, version: &str) -> StoreResult<()>;
    /// The latest failures, newest first.
    async fn plugin_failures(&self, id: &str, limit: i64) -> StoreResult<Vec<PluginFailureRecord>>;
    async fn plugin_events(&self, id: &str) -> StoreResult<Vec<PluginEvent>>;
}

/// A plugin: its kind, which version runs, and whether it is on.
#[derive(Debug, Clone)]
pub struct PluginRecord {
    pub id: String,
    pub kind: crate::domain::plugin::PluginKind,
    pub active_version: Option<String>,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    /// Installation overrides of the manifest's configuration defaults.
    pub config: BTreeMap<String, crate::domain::plugin::SettingValue>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// One uploaded version of a plugin (without its bytes).
#[derive(Debug, Clone)]
pub struct PluginVersionRecord {
    pub plugin_id: String,
    pub version: String,
    pub manifest: crate::domain::plugin::Manifest,
    pub api_version: String,
    pub sha256: String,
    pub size_bytes: i64,
    pub pii_granted: bool,
    pub uploaded_by: String,
    pub uploaded_at: DateTime<Utc>,
    pub consecutive_failures: i64,
}

pub struct NewPluginVersion {
    pub manifest: crate::domain::plugin::Manifest,
    pub api_version: String,
    pub sha256: String,
    pub component: Vec<u8>,
    pub compiled: Vec<u8>,
    pub pii_granted: bool,
    pub uploaded_by: String,
    pub at: DateTime<Utc>,
}

/// A step in a plugin's life, for its history.
#[derive(Debug, Clone)]
pub struct PluginEvent {
    pub version: Option<String>,
    pub action: String,
    pub detail: Option<String>,
    pub actor: String,
    pub at: DateTime<Utc>,
}

/// A change of which version runs and whether the plugin is on, with the event that says why.
pub struct PluginStateChange {
    pub active_version: Option<String>,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    pub event: PluginEvent,
}

/// A failed batch of one plugin version.
#[derive(Debug, Clone)]
pub struct PluginFailureRecord {
    pub version: String,
    pub cause: String,
    pub message: String,
    pub records: i64,
    pub at: DateTime<Utc>,
}
