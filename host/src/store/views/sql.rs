//! The lean reads behind plugin views of readers: pages of subscribers by sequence, and the
//! terms of a page in one range query.

use async_trait::async_trait;
use sqlx::FromRow;
use sqlx::types::Json;

use super::Db;
use super::terms::{TermRow, term_json_columns};
use crate::domain::subscriber::ProfileDraft;
use crate::domain::term::Term;
use crate::domain::{Consents, Profile};
use crate::store::backend::{Backend, SqlStore};
use crate::store::{ComplaintTally, ReaderRow, StoreResult, ViewStore};

#[derive(FromRow)]
struct Row {
    id: i64,
    region: Option<String>,
    postal_code: Option<String>,
    birth_year: Option<i32>,
    consents: Json<Consents>,
    profile: Option<Json<ProfileDraft>>,
    status: String,
}

#[async_trait]
impl ViewStore for SqlStore<Db> {
    #[tracing::instrument(level = "debug", skip_all)]
    async fn count_readers(&self) -> StoreResult<i64> {
        let (n,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM subscribers WHERE merged_into IS NULL")
                .fetch_one(&self.read)
                .await?;
        Ok(n)
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn reader_rows(
        &self,
        after: i64,
        through: Option<i64>,
        limit: i64,
        with_profile: bool,
    ) -> StoreResult<Vec<ReaderRow>> {
        let profile = if with_profile {
            "profile"
        } else {
            "NULL AS profile"
        };
        let sql = format!(
            "SELECT id, region, postal_code, birth_year, consents, {profile}, status FROM subscribers \
             WHERE id > $1 AND ($2 IS NULL OR id <= $2) AND merged_into IS NULL \
             ORDER BY id LIMIT $3"
        );
        let rows: Vec<Row> = sqlx::query_as(&sql)
            .bind(after)
            .bind(through)
            .bind(limit)
            .fetch_all(&self.read)
            .await?;
        Ok(rows
            .into_iter()
            .map(|r| ReaderRow {
                sequence: r.id,
                region: r.region,
                postal_code: r.postal_code,
                birth_year: r.birth_year.and_then(|y| u16::try_from(y).ok()),
                consents: r.consents.0,
                profile: r.profile.map(|p| Profile::from_stored(p.0)),
                complaints: ComplaintTally::default(),
                club_tiers: Vec::new(),
                erased: r.status == "erased",
            })
            .collect())
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn reader_terms(&self, first: i64, last: i64) -> StoreResult<Vec<(i64, Term)>> {
        // One row per reader, its terms gathered into JSON: sqlx hands rows over one at a time
        // (on SQLite, each through a channel from its worker thread), so a row per term cost
        // several times what the query itself does.
        let gathered = Db::json_rows(
            &term_json_columns(&Db::json("t.discounts")),
            "t.start_date, t.id",
        );
        let sql = format!(
            "SELECT t.subscriber_id, {gathered} FROM terms t \
             JOIN publications p ON p.id = t.publication_id \
             WHERE t.subscriber_id BETWEEN $1 AND $2 GROUP BY t.subscriber_id \
             ORDER BY t.subscriber_id"
        );
        let readers: Vec<(i64, String)> = sqlx::query_as(&sql)
            .bind(first)
            .bind(last)
            .fetch_all(&self.read)
            .await?;
        let mut terms = Vec::with_capacity(readers.len() * 4);
        for (subscriber, json) in readers {
            for row in TermRow::from_json(&json)? {
                terms.push((subscriber, row.into_term(Vec::new())?));
            }
        }
        Ok(terms)
    }
}
