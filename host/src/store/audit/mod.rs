//! The audit log in the store: `AuditStore` and its records; `sql.rs` holds the SQL both backends
//! run.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::StoreResult;
use crate::domain::{Role, SubscriberNumber};

#[async_trait]
pub trait AuditStore: Send + Sync {
    async fn append_audit(&self, entries: &[AuditEntry]) -> StoreResult<()>;
    async fn list_audit(&self, filter: &AuditFilter) -> StoreResult<Vec<AuditRecord>>;
}

/// Who did something through the API.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Actor {
    pub key_id: Option<i64>,
    pub name: String,
    pub role: Role,
}

/// One line of the audit log, before it is written. `detail` never holds personal data.
#[derive(Debug, Clone)]
pub struct AuditEntry {
    pub at: DateTime<Utc>,
    pub actor: Actor,
    pub action: &'static str,
    pub subscriber: Option<SubscriberNumber>,
    pub request_id: Option<String>,
    pub detail: serde_json::Value,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AuditRecord {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub actor: Actor,
    pub action: String,
    #[schema(value_type = Option<String>)]
    pub subscriber: Option<SubscriberNumber>,
    pub request_id: Option<String>,
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
}

/// Newest first; `before` is the last id of the previous page.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub subscriber: Option<SubscriberNumber>,
    pub action: Option<String>,
    pub before: Option<i64>,
    pub limit: i64,
}
