//! API keys in storage: created, listed, found by token hash, revoked.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::FromRow;

use super::Db;
use crate::store::backend::{SqlStore, parse_enum};
use crate::store::{ApiKey, KeyStore, NewApiKey, StoreError, StoreResult};

#[derive(FromRow)]
struct KeyRow {
    id: i64,
    name: String,
    role: String,
    hint: String,
    advertiser_id: Option<i64>,
    created_at: DateTime<Utc>,
    revoked_at: Option<DateTime<Utc>>,
}

impl TryFrom<KeyRow> for ApiKey {
    type Error = StoreError;
    fn try_from(row: KeyRow) -> StoreResult<Self> {
        Ok(Self {
            id: row.id,
            name: row.name,
            role: parse_enum(&row.role)?,
            hint: row.hint,
            advertiser_id: row.advertiser_id,
            created_at: row.created_at,
            revoked_at: row.revoked_at,
        })
    }
}

const COLUMNS: &str = "id, name, role, hint, advertiser_id, created_at, revoked_at";

#[async_trait]
impl KeyStore for SqlStore<Db> {
    #[tracing::instrument(level = "debug", skip_all)]
    async fn create_api_key(&self, key: NewApiKey) -> StoreResult<ApiKey> {
        let sql = format!(
            "INSERT INTO api_keys (name, role, token_hash, hint, advertiser_id, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING {COLUMNS}"
        );
        let row: KeyRow = sqlx::query_as(&sql)
            .bind(key.name)
            .bind(key.role.as_str())
            .bind(key.token_hash)
            .bind(key.hint)
            .bind(key.advertiser_id)
            .bind(key.created_at)
            .fetch_one(&self.write)
            .await?;
        row.try_into()
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn list_api_keys(&self) -> StoreResult<Vec<ApiKey>> {
        let sql = format!("SELECT {COLUMNS} FROM api_keys ORDER BY id");
        let rows: Vec<KeyRow> = sqlx::query_as(&sql).fetch_all(&self.read).await?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn revoke_api_key(&self, id: i64, at: DateTime<Utc>) -> StoreResult<ApiKey> {
        let sql = format!(
            "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $2) WHERE id = $1 RETURNING {COLUMNS}"
        );
        let row: Option<KeyRow> = sqlx::query_as(&sql)
            .bind(id)
            .bind(at)
            .fetch_optional(&self.write)
            .await?;
        row.ok_or(StoreError::NotFound)?.try_into()
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn find_api_key(&self, token_hash: &str) -> StoreResult<Option<ApiKey>> {
        let sql =
            format!("SELECT {COLUMNS} FROM api_keys WHERE token_hash = $1 AND revoked_at IS NULL");
        let row: Option<KeyRow> = sqlx::query_as(&sql)
            .bind(token_hash)
            .fetch_optional(&self.read)
            .await?;
        row.map(TryInto::try_into).transpose()
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn count_active_admin_keys(&self) -> StoreResult<i64> {
        let (count,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM api_keys WHERE role = 'admin' AND revoked_at IS NULL",
        )
        .fetch_one(&self.read)
        .await?;
        Ok(count)
    }
}
