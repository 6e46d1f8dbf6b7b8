//! The audit log in storage: who read or changed personal data, and when.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::FromRow;
use sqlx::types::Json;

use super::sql::Sql;
use super::{Connection, Db, Query};
use crate::domain::SubscriberNumber;
use crate::store::backend::{Backend, SqlStore, parse_enum};
use crate::store::{Actor, AuditEntry, AuditFilter, AuditRecord, AuditStore, StoreResult};

#[derive(FromRow)]
struct AuditRow {
    id: i64,
    at: DateTime<Utc>,
    actor_key_id: Option<i64>,
    actor: String,
    role: String,
    action: String,
    subscriber_id: Option<i64>,
    request_id: Option<String>,
    detail: Json<serde_json::Value>,
}

/// The most rows one statement of a batch writes. Statements take a power of two of rows, so
/// a connection prepares at most ten shapes whatever the batch sizes.
const MAX_ROWS: usize = 512;

#[async_trait]
impl AuditStore for SqlStore<Db> {
    #[tracing::instrument(level = "debug", skip_all)]
    async fn append_audit(&self, entries: &[AuditEntry]) -> StoreResult<()> {
        if entries.is_empty() {
            return Ok(());
        }
        // One transaction for the batch: a commit per entry would cost the single writer a
        // WAL append each, and every reader its page cache. And many rows per statement: a
        // statement per row costs a round trip each, which on PostgreSQL capped audited card
        // reads at what one connection could insert (about 9,000 rows a second).
        let mut tx = self.write.begin().await?;
        let mut rest = entries;
        while !rest.is_empty() {
            let rows = 1 << rest.len().min(MAX_ROWS).ilog2();
            let (chunk, tail) = rest.split_at(rows);
            let sql = insert_rows(rows);
            let mut query = sqlx::query(&sql);
            for entry in chunk {
                query = bind_entry(query, entry);
            }
            query.execute(&mut *tx).await?;
            rest = tail;
        }
        tx.commit().await?;
        Ok(())
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn list_audit(&self, filter: &AuditFilter) -> StoreResult<Vec<AuditRecord>> {
        let mut query = Sql::new(
            "SELECT id, at, actor_key_id, actor, role, action, subscriber_id, request_id, detail \
             FROM audit_log WHERE 1 = 1",
        );
        if let Some(number) = filter.subscriber {
            query.push(" AND subscriber_id = ").bind(number.sequence());
        }
        if let Some(action) = &filter.action {
            query.push(" AND action = ").bind(action.as_str());
        }
        if let Some(before) = filter.before {
            query
                .push(" AND (at, id) < (SELECT at, id FROM audit_log WHERE id = ")
                .bind(before)
                .push(")");
        }
        query
            .push(" ORDER BY at DESC, id DESC LIMIT ")
            .bind(filter.limit);
        let rows: Vec<AuditRow> = query.query_as().fetch_all(&self.read).await?;
        rows.into_iter()
            .map(|row| {
                Ok(AuditRecord {
                    id: row.id,
                    at: row.at,
                    actor: Actor {
                        key_id: row.actor_key_id,
                        name: row.actor,
                        role: parse_enum(&row.role)?,
                    },
                    action: row.action,
                    subscriber: row.subscriber_id.map(SubscriberNumber::from_sequence),
                    request_id: row.request_id,
                    detail: row.detail.0,
                })
            })
            .collect()
    }
}

/// Writes one audit entry inside the caller's transaction, so a change and its record land
/// together or not at all.
pub(super) async fn insert_audit(conn: &mut Connection, entry: &AuditEntry) -> StoreResult<()> {
    bind_entry(sqlx::query(&insert_rows(1)), entry)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// The audit insert for `rows` rows, its placeholders numbered on from the first row's.
fn insert_rows(rows: usize) -> String {
    let values: Vec<String> = (0..rows)
        .map(|row| {
            let columns: Vec<String> = (1..=8).map(|column| Db::param(row * 8 + column)).collect();
            format!("({})", columns.join(", "))
        })
        .collect();
    format!(
        "INSERT INTO audit_log (at, actor_key_id, actor, role, action, subscriber_id, \
         request_id, detail) VALUES {}",
        values.join(", ")
    )
}

fn bind_entry<'q>(query: Query<'q>, entry: &'q AuditEntry) -> Query<'q> {
    query
        .bind(entry.at)
        .bind(entry.actor.key_id)
        .bind(entry.actor.name.as_str())
        .bind(entry.actor.role.as_str())
        .bind(entry.action)
        .bind(entry.subscriber.map(SubscriberNumber::sequence))
        .bind(entry.request_id.clone())
        .bind(Json(entry.detail.clone()))
}
