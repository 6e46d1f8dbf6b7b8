//! Publications in the store: `CatalogueStore` and its records; `sql.rs` holds the SQL both
//! backends run.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::StoreResult;
use crate::domain::publication::{PriceListDraft, PublicationCode, PublicationDraft};

#[async_trait]
pub trait CatalogueStore: Send + Sync {
    async fn create_publication(
        &self,
        definition: &PublicationDraft,
        at: DateTime<Utc>,
    ) -> StoreResult<Publication>;
    async fn list_publications(&self) -> StoreResult<Vec<Publication>>;
    async fn get_publication(&self, code: &PublicationCode) -> StoreResult<Option<Publication>>;
    async fn update_publication(&self, id: i64, definition: &PublicationDraft) -> StoreResult<()>;
    /// Adds a list; another list of the same title from the same day is a conflict.
    async fn add_price_list(
        &self,
        publication_id: i64,
        list: &PriceListDraft,
        at: DateTime<Utc>,
        by: &str,
    ) -> StoreResult<()>;
}

/// A title with every price list it ever had, oldest first.
#[derive(Debug, Clone)]
pub struct Publication {
    pub id: i64,
    pub definition: PublicationDraft,
    pub price_lists: Vec<PriceListDraft>,
    pub created_at: DateTime<Utc>,
}
