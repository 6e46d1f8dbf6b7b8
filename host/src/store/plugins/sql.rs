//! Plugins in storage: versions with their component and compiled artefact, the lifecycle
//! history, failures and the circuit breaker.

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::types::Json;
use sqlx::{Executor, FromRow};

use super::Db;
use crate::domain::plugin::{Manifest, SettingValue};
use crate::store::backend::{SqlStore, enum_text, parse_enum};
use crate::store::{
    NewPluginVersion, PluginEvent, PluginFailureRecord, PluginRecord, PluginStateChange,
    PluginStore, PluginVersionRecord, StoreError, StoreResult,
};

#[derive(FromRow)]
struct PluginRow {
    id: String,
    kind: String,
    active_version: Option<String>,
    enabled: bool,
    disabled_reason: Option<String>,
    config: Json<BTreeMap<String, SettingValue>>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

#[derive(FromRow)]
struct VersionRow {
    plugin_id: String,
    version: String,
    manifest: Json<Manifest>,
    api_version: String,
    sha256: String,
    size_bytes: i64,
    pii_granted: bool,
    uploaded_by: String,
    uploaded_at: DateTime<Utc>,
    consecutive_failures: i64,
}

/// Failures kept per plugin, newest first (the plugin's page shows the latest 20).
const FAILURES_KEPT: i64 = 200;

const PLUGIN_COLUMNS: &str =
    "id, kind, active_version, enabled, disabled_reason, config, created_at, updated_at";
const VERSION_COLUMNS: &str = "v.plugin_id, v.version, v.manifest, v.api_version, v.sha256, \
     v.size_bytes, v.pii_granted, v.uploaded_by, v.uploaded_at, \
     COALESCE(s.consecutive_failures, 0) AS consecutive_failures";

impl TryFrom<PluginRow> for PluginRecord {
    type Error = StoreError;

    fn try_from(row: PluginRow) -> StoreResult<Self> {
        Ok(Self {
            kind: parse_enum(&row.kind)?,
            id: row.id,
            active_version: row.active_version,
            enabled: row.enabled,
            disabled_reason: row.disabled_reason,
            config: row.config.0,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}

impl From<VersionRow> for PluginVersionRecord {
    fn from(row: VersionRow) -> Self {
        Self {
            plugin_id: row.plugin_id,
            version: row.version,
            manifest: row.manifest.0,
            api_version: row.api_version,
            sha256: row.sha256,
            size_bytes: row.size_bytes,
            pii_granted: row.pii_granted,
            uploaded_by: row.uploaded_by,
            uploaded_at: row.uploaded_at,
            consecutive_failures: row.consecutive_failures,
        }
    }
}

#[async_trait]
impl PluginStore for SqlStore<Db> {
    #[tracing::instrument(level = "debug", skip_all)]
    async fn insert_plugin_version(&self, new: NewPluginVersion) -> StoreResult<()> {
        let manifest = &new.manifest;
        let kind = enum_text(&manifest.kind);
        let mut tx = self.write.begin().await?;
        let existing: Option<(String,)> = sqlx::query_as("SELECT kind FROM plugins WHERE id = $1")
            .bind(manifest.id.as_str())
            .fetch_optional(&mut *tx)
            .await?;
        match existing {
            Some((stored,)) if stored != kind => {
                tx.rollback().await?;
                return Err(StoreError::Conflict(format!(
                    "plugin {} is a {stored}; a new version cannot be a {kind}",
                    manifest.id
                )));
            }
            Some(_) => {}
            None => {
                sqlx::query(
                    "INSERT INTO plugins (id, kind, enabled, config, created_at, updated_at) \
                     VALUES ($1, $2, FALSE, $3, $4, $4)",
                )
                .bind(manifest.id.as_str())
                .bind(kind.as_str())
                .bind(Json(BTreeMap::<String, SettingValue>::new()))
                .bind(new.at)
                .execute(&mut *tx)
                .await?;
            }
        }
        let inserted = sqlx::query(
            "INSERT INTO plugin_versions (plugin_id, version, manifest, api_version, sha256, \
             size_bytes, component, compiled, pii_granted, uploaded_by, uploaded_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(manifest.id.as_str())
        .bind(manifest.version.as_str())
        .bind(Json(manifest.clone()))
        .bind(new.api_version.as_str())
        .bind(new.sha256.as_str())
        .bind(new.component.len() as i64)
        .bind(new.component)
        .bind(new.compiled)
        .bind(new.pii_granted)
        .bind(new.uploaded_by.as_str())
        .bind(new.at)
        .execute(&mut *tx)
        .await;
        if let Err(e) = inserted {
            tx.rollback().await?;
            return Err(match StoreError::from(e) {
                StoreError::Conflict(_) => StoreError::Conflict(format!(
                    "version {} of plugin {} is already uploaded; raise the version",
                    manifest.version, manifest.id
                )),
                other => other,
            });
        }
        let detail = new.pii_granted.then(|| "pii granted".to_string());
        insert_event(
            &mut *tx,
            &manifest.id,
            &PluginEvent {
                version: Some(manifest.version.clone()),
                action: "uploaded".into(),
                detail,
                actor: new.uploaded_by,
                at: new.at,
            },
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn list_plugins(&self) -> StoreResult<Vec<PluginRecord>> {
        let sql = format!("SELECT {PLUGIN_COLUMNS} FROM plugins ORDER BY id");
        let rows: Vec<PluginRow> = sqlx::query_as(&sql).fetch_all(&self.read).await?;
        rows.into_iter().map(PluginRecord::try_from).collect()
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn get_plugin(&self, id: &str) -> StoreResult<Option<PluginRecord>> {
        let sql = format!("SELECT {PLUGIN_COLUMNS} FROM plugins WHERE id = $1");
        let row: Option<PluginRow> = sqlx::query_as(&sql)
            .bind(id)
            .fetch_optional(&self.read)
            .await?;
        row.map(PluginRecord::try_from).transpose()
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn plugin_versions(&self, id: &str) -> StoreResult<Vec<PluginVersionRecord>> {
        let sql = format!(
            "SELECT {VERSION_COLUMNS} FROM plugin_versions v LEFT JOIN plugin_streaks s \
             ON s.plugin_id = v.plugin_id AND s.version = v.version WHERE v.plugin_id = $1 \
             ORDER BY v.uploaded_at, v.version"
        );
        let rows: Vec<VersionRow> = sqlx::query_as(&sql).bind(id).fetch_all(&self.read).await?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn plugin_artefacts(
        &self,
        id: &str,
        version: &str,
    ) -> StoreResult<Option<(Vec<u8>, Vec<u8>)>> {
        let row: Option<(Vec<u8>, Vec<u8>)> = sqlx::query_as(
            "SELECT component, compiled FROM plugin_versions WHERE plugin_id = $1 AND version = $2",
        )
        .bind(id)
        .bind(version)
        .fetch_optional(&self.read)
        .await?;
        Ok(row)
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn change_plugin_state(
        &self,
        id: &str,
        change: PluginStateChange,
    ) -> StoreResult<PluginRecord> {
        let mut tx = self.write.begin().await?;
        let sql = format!(
            "UPDATE plugins SET active_version = $2, enabled = $3, disabled_reason = $4, \
             updated_at = $5 WHERE id = $1 RETURNING {PLUGIN_COLUMNS}"
        );
        let row: Option<PluginRow> = sqlx::query_as(&sql)
            .bind(id)
            .bind(change.active_version)
            .bind(change.enabled)
            .bind(change.disabled_reason)
            .bind(change.event.at)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(row) = row else {
            tx.rollback().await?;
            return Err(StoreError::NotFound);
        };
        if change.enabled {
            // A person turning a plugin on gives its failing streak a fresh start.
            sqlx::query("DELETE FROM plugin_streaks WHERE plugin_id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        insert_event(&mut *tx, id, &change.event).await?;
        tx.commit().await?;
        row.try_into()
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn set_plugin_config(
        &self,
        id: &str,
        config: &BTreeMap<String, SettingValue>,
        event: PluginEvent,
    ) -> StoreResult<PluginRecord> {
        let mut tx = self.write.begin().await?;
        let sql = format!(
            "UPDATE plugins SET config = $2, updated_at = $3 WHERE id = $1 RETURNING {PLUGIN_COLUMNS}"
        );
        let row: Option<PluginRow> = sqlx::query_as(&sql)
            .bind(id)
            .bind(Json(config.clone()))
            .bind(event.at)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(row) = row else {
            tx.rollback().await?;
            return Err(StoreError::NotFound);
        };
        insert_event(&mut *tx, id, &event).await?;
        tx.commit().await?;
        row.try_into()
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn delete_plugin(&self, id: &str, event: PluginEvent) -> StoreResult<()> {
        let mut tx = self.write.begin().await?;
        let (users,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM segments WHERE plugin_id = $1")
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
        if users > 0 {
            tx.rollback().await?;
            return Err(StoreError::Conflict(format!(
                "{users} segment(s) are defined by plugin {id}; delete them first"
            )));
        }
        for table in ["plugin_streaks", "plugin_versions"] {
            sqlx::query(&format!("DELETE FROM {table} WHERE plugin_id = $1"))
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        let deleted: Option<(String,)> =
            sqlx::query_as("DELETE FROM plugins WHERE id = $1 RETURNING id")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
        if deleted.is_none() {
            tx.rollback().await?;
            return Err(StoreError::NotFound);
        }
        insert_event(&mut *tx, id, &event).await?;
        tx.commit().await?;
        Ok(())
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn record_plugin_failure(
        &self,
        id: &str,
        failure: &PluginFailureRecord,
        threshold: i64,
    ) -> StoreResult<bool> {
        let mut tx = self.write.begin().await?;
        sqlx::query(
            "INSERT INTO plugin_errors (plugin_id, version, cause, message, records, at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(id)
        .bind(failure.version.as_str())
        .bind(failure.cause.as_str())
        .bind(failure.message.as_str())
        .bind(failure.records)
        .bind(failure.at)
        .execute(&mut *tx)
        .await?;
        // Keep the newest failures of the plugin only, whatever their age: a plugin failing
        // on every call cannot grow the table, and a plugin that fails once a year keeps the
        // record of it.
        sqlx::query(
            "DELETE FROM plugin_errors WHERE plugin_id = $1 AND id <= \
             (SELECT id FROM plugin_errors WHERE plugin_id = $1 ORDER BY id DESC LIMIT 1 OFFSET $2)",
        )
        .bind(id)
        .bind(FAILURES_KEPT)
        .execute(&mut *tx)
        .await?;
        // The streak lives beside the failures, not in `plugin_versions`: on SQLite a failure
        // then writes only the logs file (store/sqlite.rs), whose commits leave the readers'
        // page caches alone however often a plugin fails.
        let (streak,): (i64,) = sqlx::query_as(
            "INSERT INTO plugin_streaks (plugin_id, version, consecutive_failures) \
             VALUES ($1, $2, 1) ON CONFLICT (plugin_id, version) \
             DO UPDATE SET consecutive_failures = plugin_streaks.consecutive_failures + 1 \
             RETURNING consecutive_failures",
        )
        .bind(id)
        .bind(failure.version.as_str())
        .fetch_one(&mut *tx)
        .await?;
        let mut tripped = false;
        if streak >= threshold {
            let reason = format!(
                "circuit breaker: {streak} consecutive failing batches of version {}; last: {}: {}",
                failure.version, failure.cause, failure.message
            );
            let off: Option<(String,)> = sqlx::query_as(
                "UPDATE plugins SET enabled = FALSE, disabled_reason = $3, updated_at = $4 \
                 WHERE id = $1 AND active_version = $2 AND enabled RETURNING id",
            )
            .bind(id)
            .bind(failure.version.as_str())
            .bind(reason.as_str())
            .bind(failure.at)
            .fetch_optional(&mut *tx)
            .await?;
            tripped = off.is_some();
            if tripped {
                let event = PluginEvent {
                    version: Some(failure.version.clone()),
                    action: "disabled".into(),
                    detail: Some(reason),
                    actor: "circuit breaker".into(),
                    at: failure.at,
                };
                insert_event(&mut *tx, id, &event).await?;
            }
        }
        tx.commit().await?;
        Ok(tripped)
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn record_plugin_success(&self, id: &str, version: &str) -> StoreResult<()> {
        // Nearly every batch succeeds with no streak to end: a read answers that without
        // queueing for the writer. (On a lagging replica a failure written a moment ago can
        // be missed; the next success ends that streak.)
        let streak: Option<(i64,)> = sqlx::query_as(
            "SELECT consecutive_failures FROM plugin_streaks WHERE plugin_id = $1 AND version = $2",
        )
        .bind(id)
        .bind(version)
        .fetch_optional(&self.read)
        .await?;
        if streak.is_none() {
            return Ok(());
        }
        sqlx::query("DELETE FROM plugin_streaks WHERE plugin_id = $1 AND version = $2")
            .bind(id)
            .bind(version)
            .execute(&self.write)
            .await?;
        Ok(())
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn plugin_failures(&self, id: &str, limit: i64) -> StoreResult<Vec<PluginFailureRecord>> {
        let rows: Vec<(String, String, String, i64, DateTime<Utc>)> = sqlx::query_as(
            "SELECT version, cause, message, records, at FROM plugin_errors \
             WHERE plugin_id = $1 ORDER BY id DESC LIMIT $2",
        )
        .bind(id)
        .bind(limit)
        .fetch_all(&self.read)
        .await?;
        Ok(rows
            .into_iter()
            .map(
                |(version, cause, message, records, at)| PluginFailureRecord {
                    version,
                    cause,
                    message,
                    records,
                    at,
                },
            )
            .collect())
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn plugin_events(&self, id: &str) -> StoreResult<Vec<PluginEvent>> {
        let rows: Vec<(
            Option<String>,
            String,
            Option<String>,
            String,
            DateTime<Utc>,
        )> = sqlx::query_as(
            "SELECT version, action, detail, actor, at FROM plugin_events \
                 WHERE plugin_id = $1 ORDER BY id",
        )
        .bind(id)
        .fetch_all(&self.read)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(version, action, detail, actor, at)| PluginEvent {
                version,
                action,
                detail,
                actor,
                at,
            })
            .collect())
    }
}

async fn insert_event<'e, E>(executor: E, id: &str, event: &PluginEvent) -> StoreResult<()>
where
    E: Executor<'e, Database = Db>,
{
    sqlx::query(
        "INSERT INTO plugin_events (plugin_id, version, action, detail, actor, at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(id)
    .bind(event.version.clone())
    .bind(event.action.as_str())
    .bind(event.detail.clone())
    .bind(event.actor.as_str())
    .bind(event.at)
    .execute(executor)
    .await?;
    Ok(())
}
