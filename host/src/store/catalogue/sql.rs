//! The publications catalogue in storage: titles and their price lists.

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use sqlx::FromRow;
use sqlx::types::Json;

use super::Db;
use crate::domain::publication::{PriceEntry, PriceListDraft, PublicationCode, PublicationDraft};
use crate::store::backend::SqlStore;
use crate::store::{CatalogueStore, Publication, StoreResult};

#[derive(FromRow)]
struct PublicationRow {
    id: i64,
    definition: Json<PublicationDraft>,
    created_at: DateTime<Utc>,
}

#[derive(FromRow)]
struct PriceListRow {
    publication_id: i64,
    effective_from: NaiveDate,
    prices: Json<Vec<PriceEntry>>,
}

const PUBLICATION_COLUMNS: &str = "id, definition, created_at";
const PRICE_LIST_COLUMNS: &str = "publication_id, effective_from, prices";

#[async_trait]
impl CatalogueStore for SqlStore<Db> {
    #[tracing::instrument(level = "debug", skip_all)]
    async fn create_publication(
        &self,
        definition: &PublicationDraft,
        at: DateTime<Utc>,
    ) -> StoreResult<Publication> {
        let sql = format!(
            "INSERT INTO publications (code, definition, created_at) VALUES ($1, $2, $3) \
             RETURNING {PUBLICATION_COLUMNS}"
        );
        let row: PublicationRow = sqlx::query_as(&sql)
            .bind(definition.code.as_str())
            .bind(Json(definition.clone()))
            .bind(at)
            .fetch_one(&self.write)
            .await?;
        Ok(assemble(row, Vec::new()))
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn list_publications(&self) -> StoreResult<Vec<Publication>> {
        let sql = format!("SELECT {PUBLICATION_COLUMNS} FROM publications ORDER BY code");
        let rows: Vec<PublicationRow> = sqlx::query_as(&sql).fetch_all(&self.read).await?;
        let sql = format!(
            "SELECT {PRICE_LIST_COLUMNS} FROM price_lists ORDER BY publication_id, effective_from"
        );
        let lists: Vec<PriceListRow> = sqlx::query_as(&sql).fetch_all(&self.read).await?;
        let mut by_publication: BTreeMap<i64, Vec<PriceListDraft>> = BTreeMap::new();
        for list in lists {
            by_publication
                .entry(list.publication_id)
                .or_default()
                .push(PriceListDraft {
                    effective_from: list.effective_from,
                    prices: list.prices.0,
                });
        }
        Ok(rows
            .into_iter()
            .map(|row| {
                let lists = by_publication.remove(&row.id).unwrap_or_default();
                assemble(row, lists)
            })
            .collect())
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn get_publication(&self, code: &PublicationCode) -> StoreResult<Option<Publication>> {
        let sql = format!("SELECT {PUBLICATION_COLUMNS} FROM publications WHERE code = $1");
        let row: Option<PublicationRow> = sqlx::query_as(&sql)
            .bind(code.as_str())
            .fetch_optional(&self.read)
            .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let sql = format!(
            "SELECT {PRICE_LIST_COLUMNS} FROM price_lists WHERE publication_id = $1 \
             ORDER BY effective_from"
        );
        let lists: Vec<PriceListRow> = sqlx::query_as(&sql)
            .bind(row.id)
            .fetch_all(&self.read)
            .await?;
        let lists = lists
            .into_iter()
            .map(|l| PriceListDraft {
                effective_from: l.effective_from,
                prices: l.prices.0,
            })
            .collect();
        Ok(Some(assemble(row, lists)))
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn update_publication(&self, id: i64, definition: &PublicationDraft) -> StoreResult<()> {
        sqlx::query("UPDATE publications SET definition = $2 WHERE id = $1")
            .bind(id)
            .bind(Json(definition.clone()))
            .execute(&self.write)
            .await?;
        Ok(())
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn add_price_list(
        &self,
        publication_id: i64,
        list: &PriceListDraft,
        at: DateTime<Utc>,
        by: &str,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO price_lists (publication_id, effective_from, prices, created_at, created_by) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(publication_id)
        .bind(list.effective_from)
        .bind(Json(list.prices.clone()))
        .bind(at)
        .bind(by)
        .execute(&self.write)
        .await?;
        Ok(())
    }
}

fn assemble(row: PublicationRow, price_lists: Vec<PriceListDraft>) -> Publication {
    Publication {
        id: row.id,
        definition: row.definition.0,
        price_lists,
        created_at: row.created_at,
    }
}
