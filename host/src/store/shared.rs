//! The SQL both backends share, compiled once for each: every module below is written against
//! `Db`, the backend of the module that declares this one (`sqlite.rs`, `postgres.rs`).

use std::sync::Arc;

use async_trait::async_trait;

use super::Db;
use crate::store::backend::{Backend, SqlStore};
use crate::store::replica::{Standby, StandbyPool};
use crate::store::{Store, StoreResult};

#[path = "audiences/sql.rs"]
mod audiences;
#[path = "audit/sql.rs"]
mod audit;
#[path = "bulk/sql.rs"]
mod bulk;
#[path = "catalogue/sql.rs"]
mod catalogue;
#[path = "clubs/sql.rs"]
mod clubs;
#[path = "events/sql.rs"]
mod events;
#[path = "imports/sql.rs"]
mod imports;
#[path = "interactions/sql.rs"]
mod interactions;
#[path = "jobs/sql.rs"]
mod jobs;
#[path = "keys/sql.rs"]
mod keys;
#[path = "plugins/sql.rs"]
mod plugins;
#[path = "segments/sql.rs"]
mod segments;
#[path = "sql.rs"]
mod sql;
#[path = "staff/sql.rs"]
mod staff;
#[path = "subscribers/sql.rs"]
mod subscribers;
#[path = "terms/sql.rs"]
mod terms;
#[path = "views/sql.rs"]
mod views;

/// A connection of this backend, as a transaction lends it.
type Connection = <Db as sqlx::Database>::Connection;

/// A statement with its arguments, ready to run.
type Query<'q> = sqlx::query::Query<'q, Db, <Db as sqlx::Database>::Arguments<'q>>;

#[async_trait]
impl Store for SqlStore<Db> {
    fn backend(&self) -> &'static str {
        Db::SCHEME
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.read).await?;
        Ok(())
    }

    fn standby(&self) -> Option<Arc<Standby>> {
        self.standby.as_ref().map(StandbyPool::handle)
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn close(&self) {
        self.close_standby().await;
        if let Some(searches) = &self.searches {
            searches.close().await;
        }
        self.read.close().await;
        self.write.close().await;
    }
}
