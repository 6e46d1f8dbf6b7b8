//! Staff in the store: `StaffStore` and its records; `sql.rs` holds the SQL both backends run.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::StoreResult;

#[async_trait]
pub trait StaffStore: Send + Sync {
    async fn create_staff(&self, staff: NewStaff) -> StoreResult<Staff>;
    async fn list_staff(&self) -> StoreResult<Vec<Staff>>;
    async fn get_staff(&self, id: i64) -> StoreResult<Option<Staff>>;
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Staff {
    pub id: i64,
    pub name: String,
    pub email: Option<String>,
    pub active: bool,
    pub created_at: DateTime<Utc>,
}

pub struct NewStaff {
    pub name: String,
    pub email: Option<String>,
    pub created_at: DateTime<Utc>,
}
