//! Staff members in storage: the people who manage relationships and own complaints.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::FromRow;

use super::Db;
use crate::store::backend::SqlStore;
use crate::store::{NewStaff, Staff, StaffStore, StoreResult};

#[derive(FromRow)]
struct StaffRow {
    id: i64,
    name: String,
    email: Option<String>,
    active: bool,
    created_at: DateTime<Utc>,
}

impl From<StaffRow> for Staff {
    fn from(row: StaffRow) -> Self {
        Self {
            id: row.id,
            name: row.name,
            email: row.email,
            active: row.active,
            created_at: row.created_at,
        }
    }
}

const COLUMNS: &str = "id, name, email, active, created_at";

#[async_trait]
impl StaffStore for SqlStore<Db> {
    #[tracing::instrument(level = "debug", skip_all)]
    async fn create_staff(&self, staff: NewStaff) -> StoreResult<Staff> {
        let sql = format!(
            "INSERT INTO staff (name, email, active, created_at) VALUES ($1, $2, TRUE, $3) RETURNING {COLUMNS}"
        );
        let row: StaffRow = sqlx::query_as(&sql)
            .bind(staff.name)
            .bind(staff.email)
            .bind(staff.created_at)
            .fetch_one(&self.write)
            .await?;
        Ok(row.into())
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn list_staff(&self) -> StoreResult<Vec<Staff>> {
        let sql = format!("SELECT {COLUMNS} FROM staff ORDER BY name, id");
        let rows: Vec<StaffRow> = sqlx::query_as(&sql).fetch_all(&self.read).await?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn get_staff(&self, id: i64) -> StoreResult<Option<Staff>> {
        let sql = format!("SELECT {COLUMNS} FROM staff WHERE id = $1");
        let row: Option<StaffRow> = sqlx::query_as(&sql)
            .bind(id)
            .fetch_optional(&self.read)
            .await?;
        Ok(row.map(Into::into))
    }
}
