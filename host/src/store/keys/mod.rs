//! API keys in the store: `KeyStore` and its records; `sql.rs` holds the SQL both backends run.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::StoreResult;
use crate::domain::Role;

#[async_trait]
pub trait KeyStore: Send + Sync {
    async fn create_api_key(&self, key: NewApiKey) -> StoreResult<ApiKey>;
    async fn list_api_keys(&self) -> StoreResult<Vec<ApiKey>>;
    async fn revoke_api_key(&self, id: i64, at: DateTime<Utc>) -> StoreResult<ApiKey>;
    /// The unrevoked key with this token hash.
    async fn find_api_key(&self, token_hash: &str) -> StoreResult<Option<ApiKey>>;
    async fn count_active_admin_keys(&self) -> StoreResult<i64>;
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ApiKey {
    pub id: i64,
    pub name: String,
    pub role: Role,
    /// The first characters of the token, to tell keys apart.
    pub hint: String,
    /// The advertiser account an `advertiser` key acts for; none for other roles (and for an
    /// advertiser key that reaches only `/me`).
    pub advertiser_id: Option<i64>,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

pub struct NewApiKey {
    pub name: String,
    pub role: Role,
    pub token_hash: String,
    pub hint: String,
    pub advertiser_id: Option<i64>,
    pub created_at: DateTime<Utc>,
}
