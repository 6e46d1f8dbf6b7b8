//! The batched paths of the legacy import and the export: many rows per statement, one
//! transaction per batch.

use std::collections::HashSet;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use sqlx::FromRow;
use sqlx::types::Json;

use super::audit::insert_audit;
use super::jobs::fenced_in;
use super::subscribers::{CARD_COLUMNS, CardRow, LIVE, ProfileColumns};
use super::terms::{TERM_COLUMNS, TermRow};
use super::{Connection, Db, Query};
use crate::domain::search::TermKind;
use crate::domain::{Consents, SubscriberNumber};
use crate::store::backend::{Backend, SqlStore, enum_text};
use crate::store::{
    AuditEntry, BulkStore, ExportedSubscriber, ExportedTerm, Fence, ImportedTerm, KnownSubscriber,
    StoreResult, SubscriberBatch,
};

/// Parameters `from` to `from + count - 1`, comma-separated, in the backend's style.
fn placeholders(from: usize, count: usize) -> String {
    (from..from + count)
        .map(Db::param)
        .collect::<Vec<_>>()
        .join(", ")
}

/// `(p1, p2), (p3, p4), ...`: `rows` groups of `width` parameters.
pub(super) fn value_rows(rows: usize, width: usize) -> String {
    (0..rows)
        .map(|r| format!("({})", placeholders(r * width + 1, width)))
        .collect::<Vec<_>>()
        .join(", ")
}

#[derive(FromRow)]
struct KnownRow {
    id: i64,
    legacy_id: Option<String>,
    merged_into: Option<i64>,
}

impl From<KnownRow> for KnownSubscriber {
    fn from(row: KnownRow) -> Self {
        Self {
            sequence: row.id,
            legacy_id: row.legacy_id,
            merged_into: row.merged_into,
        }
    }
}

#[derive(FromRow)]
struct ExportRow {
    #[sqlx(flatten)]
    card: CardRow,
    legacy_id: Option<String>,
}

#[derive(FromRow)]
struct ExportTermRow {
    #[sqlx(flatten)]
    term: TermRow,
    legacy_id: Option<String>,
}

/// The text of a multi-row `INSERT` split into chunks of `size` rows: built once for the full
/// chunks and once for the last.
struct ChunkSql {
    size: usize,
    full: String,
    last: String,
}

impl ChunkSql {
    fn new((head, tail): (&str, &str), values: usize, rows: usize, size: usize) -> Self {
        let text = |rows| format!("{head} VALUES {}{tail}", value_rows(rows, values));
        Self {
            size,
            full: text(size.min(rows)),
            last: match rows % size {
                rest if rest != 0 && rows > size => text(rest),
                _ => String::new(),
            },
        }
    }

    fn for_chunk(&self, rows: usize) -> &str {
        if rows == self.size || self.last.is_empty() {
            &self.full
        } else {
            &self.last
        }
    }
}

/// Inserts `rows` chunk by chunk. The next chunk's arguments are bound while SQLite runs the
/// current one: binding is this task's work, running is the database's, and done in turn
/// they would leave each waiting on the other.
async fn insert_chunks<'q, T: Sync>(
    conn: &mut Connection,
    sql: &'q ChunkSql,
    rows: &'q [T],
    bind: impl Fn(&'q [T], &'q str) -> Query<'q> + Sync,
) -> StoreResult<()> {
    let mut chunks = rows.chunks(sql.size);
    let mut next = chunks.next().map(|c| bind(c, sql.for_chunk(c.len())));
    while let Some(query) = next {
        let (done, following) = futures::join!(query.execute(&mut *conn), async {
            chunks.next().map(|c| bind(c, sql.for_chunk(c.len())))
        });
        done?;
        next = following;
    }
    Ok(())
}

/// Rows per multi-row `INSERT`, kept under SQLite's 32,766 bound parameters.
const SUBSCRIBER_ROWS: usize = 1_000;
const TERM_ROWS: usize = 1_000;
const SEARCH_TERM_ROWS: usize = 5_000;

#[async_trait]
impl BulkStore for SqlStore<Db> {
    #[tracing::instrument(level = "debug", skip_all)]
    async fn subscribers_by_legacy_id(&self, ids: &[String]) -> StoreResult<Vec<KnownSubscriber>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT id, legacy_id, merged_into FROM subscribers WHERE legacy_id IN ({})",
            placeholders(1, ids.len())
        );
        let mut query = sqlx::query_as::<Db, KnownRow>(&sql);
        for id in ids {
            query = query.bind(id.as_str());
        }
        let rows = query.fetch_all(&self.read).await?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn subscribers_by_sequence(&self, ids: &[i64]) -> StoreResult<Vec<KnownSubscriber>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT id, legacy_id, merged_into FROM subscribers WHERE id IN ({})",
            placeholders(1, ids.len())
        );
        let mut query = sqlx::query_as::<Db, KnownRow>(&sql);
        for id in ids {
            query = query.bind(*id);
        }
        let rows = query.fetch_all(&self.read).await?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn subscribers_by_terms(
        &self,
        kind: TermKind,
        terms: &[String],
    ) -> StoreResult<Vec<(String, KnownSubscriber)>> {
        if terms.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT t.term, s.id, s.legacy_id, s.merged_into FROM search_terms t \
             JOIN subscribers s ON s.id = t.subscriber_id \
             WHERE t.kind = {} AND s.{LIVE} AND t.term IN ({})",
            Db::param(1),
            placeholders(2, terms.len())
        );
        let mut query = sqlx::query_as::<Db, (String, i64, Option<String>, Option<i64>)>(&sql)
            .bind(kind.as_str());
        for term in terms {
            query = query.bind(term.as_str());
        }
        let rows = query.fetch_all(&self.read).await?;
        Ok(rows
            .into_iter()
            .map(|(term, id, legacy_id, merged_into)| {
                (
                    term,
                    KnownSubscriber {
                        sequence: id,
                        legacy_id,
                        merged_into,
                    },
                )
            })
            .collect())
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn import_subscribers(
        &self,
        batch: &SubscriberBatch,
        audit: AuditEntry,
        fence: Option<&Fence>,
        commit: bool,
    ) -> StoreResult<Vec<i64>> {
        let mut tx = self.write.begin().await?;
        if let Some(fence) = fence {
            fenced_in(&mut tx, fence).await?;
        }
        // Numbers the file gives are taken out of the sequence's way first, so that no id
        // reserved next, here or by another writer, is one of them.
        if let Some(highest) = batch.new.iter().filter_map(|r| r.number).max() {
            sqlx::query(&Db::advance_ids("subscribers", highest))
                .execute(&mut *tx)
                .await?;
        }
        // The other ids are taken next, so the rows go in without sending each id back.
        let unnumbered = batch.new.iter().filter(|r| r.number.is_none()).count();
        let mut reserved = Vec::with_capacity(unnumbered);
        if unnumbered > 0 {
            let runs: Vec<(i64, i64)> = sqlx::query_as(&Db::reserve_ids("subscribers", unnumbered))
                .fetch_all(&mut *tx)
                .await?;
            reserved.extend(runs.into_iter().flat_map(|(first, last)| first..=last));
        }
        if reserved.len() != unnumbered {
            return Err(crate::store::StoreError::Corrupt(format!(
                "{} subscriber ids were reserved for {unnumbered} new readers",
                reserved.len(),
            )));
        }
        let mut reserved = reserved.into_iter();
        let ids: Vec<i64> = batch
            .new
            .iter()
            .filter_map(|r| r.number.or_else(|| reserved.next()))
            .collect();
        let consents = Json(Consents::new());
        let rows: Vec<_> = batch.new.iter().zip(&ids).collect();
        let sql = ChunkSql::new(
            (
                "INSERT INTO subscribers (id, kind, status, display_name, profile, consents, \
                 postal_code, city, region, country, birth_year, relationship_level, legacy_id, \
                 version, created_at, updated_at)",
                "",
            ),
            16,
            rows.len(),
            SUBSCRIBER_ROWS,
        );
        insert_chunks(&mut tx, &sql, &rows, |chunk, sql| {
            let mut query = sqlx::query(sql);
            for (row, id) in chunk {
                let c = ProfileColumns::of(&row.profile);
                query = query
                    .bind(**id)
                    .bind(c.kind)
                    .bind(c.status)
                    .bind(c.display_name)
                    .bind(Json(row.profile.draft().clone()))
                    .bind(consents.clone())
                    .bind(c.postal_code)
                    .bind(c.city)
                    .bind(c.region)
                    .bind(c.country)
                    .bind(c.birth_year)
                    .bind(c.relationship_level)
                    .bind(row.legacy_id.clone())
                    .bind(1_i64)
                    .bind(audit.at)
                    .bind(audit.at);
            }
            query
        })
        .await?;
        let mut search_terms: Vec<(&str, &str, i64)> = batch
            .new
            .iter()
            .zip(&ids)
            .flat_map(|(row, id)| {
                row.terms
                    .iter()
                    .map(move |t| (t.kind.as_str(), t.term.as_str(), *id))
            })
            .collect();
        // In key order, consecutive inserts land on the same pages of the index.
        search_terms.sort_unstable();
        let sql = ChunkSql::new(
            (
                "INSERT INTO search_terms (kind, term, subscriber_id)",
                " ON CONFLICT DO NOTHING",
            ),
            3,
            search_terms.len(),
            SEARCH_TERM_ROWS,
        );
        insert_chunks(&mut tx, &sql, &search_terms, |chunk, sql| {
            let mut query = sqlx::query(sql);
            for (kind, term, id) in chunk {
                query = query.bind(*kind).bind(*term).bind(*id);
            }
            query
        })
        .await?;
        for (id, legacy_id) in &batch.tag {
            sqlx::query(
                "UPDATE subscribers SET legacy_id = $2 WHERE id = $1 AND legacy_id IS NULL",
            )
            .bind(*id)
            .bind(legacy_id.as_str())
            .execute(&mut *tx)
            .await?;
        }
        insert_audit(&mut tx, &audit).await?;
        if commit {
            tx.commit().await?;
        } else {
            tx.rollback().await?;
        }
        Ok(ids)
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn existing_terms(
        &self,
        keys: &[(i64, i64, NaiveDate)],
    ) -> StoreResult<Vec<(i64, i64, NaiveDate)>> {
        let wanted: HashSet<&(i64, i64, NaiveDate)> = keys.iter().collect();
        let mut found = Vec::new();
        let mut subscribers: Vec<i64> = keys.iter().map(|k| k.0).collect();
        subscribers.sort_unstable();
        subscribers.dedup();
        for chunk in subscribers.chunks(5_000) {
            let sql = format!(
                "SELECT subscriber_id, publication_id, start_date FROM terms \
                 WHERE subscriber_id IN ({})",
                placeholders(1, chunk.len())
            );
            let mut query = sqlx::query_as::<Db, (i64, i64, NaiveDate)>(&sql);
            for id in chunk {
                query = query.bind(*id);
            }
            found.extend(
                query
                    .fetch_all(&self.read)
                    .await?
                    .into_iter()
                    .filter(|row| wanted.contains(row)),
            );
        }
        Ok(found)
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn import_terms(
        &self,
        terms: &[ImportedTerm],
        now: DateTime<Utc>,
        fence: Option<&Fence>,
        commit: bool,
    ) -> StoreResult<()> {
        let mut tx = self.write.begin().await?;
        if let Some(fence) = fence {
            fenced_in(&mut tx, fence).await?;
        }
        let sql = ChunkSql::new(
            (
                "INSERT INTO terms (subscriber_id, publication_id, format, months, start_date, \
                 end_date, extension_days, currency, list_price, discounts, price_paid, channel, \
                 payment_method, auto_renew, cancelled_effective, cancel_reason, refund, \
                 cancelled_at, cancelled_by, created_at)",
                "",
            ),
            20,
            terms.len(),
            TERM_ROWS,
        );
        insert_chunks(&mut tx, &sql, terms, |chunk, sql| {
            let mut query = sqlx::query(sql);
            for row in chunk {
                let t = &row.term;
                let (effective, reason, refund) = match &row.cancellation {
                    Some((effective, reason, refund)) => {
                        (Some(*effective), Some(reason.clone()), *refund)
                    }
                    None => (None, None, None),
                };
                let cancelled_at = effective.map(|_| now);
                let cancelled_by = effective.map(|_| "import".to_owned());
                query = query
                    .bind(row.subscriber)
                    .bind(t.publication_id)
                    .bind(enum_text(&t.format))
                    .bind(i32::try_from(t.months).unwrap_or(i32::MAX))
                    .bind(t.start)
                    .bind(t.end)
                    .bind(i32::try_from(row.extension_days).unwrap_or(i32::MAX))
                    .bind(t.list_price.currency.as_str())
                    .bind(t.list_price.amount)
                    .bind(Json(t.discounts.clone()))
                    .bind(t.price_paid.amount)
                    .bind(enum_text(&t.channel))
                    .bind(enum_text(&t.payment_method))
                    .bind(t.auto_renew)
                    .bind(effective)
                    .bind(reason)
                    .bind(refund)
                    .bind(cancelled_at)
                    .bind(cancelled_by)
                    .bind(now);
            }
            query
        })
        .await?;
        if commit {
            tx.commit().await?;
        } else {
            tx.rollback().await?;
        }
        Ok(())
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn refresh_statistics(&self) -> StoreResult<()> {
        if !Db::REFRESH_STATISTICS.is_empty() {
            sqlx::query(Db::REFRESH_STATISTICS)
                .execute(&self.write)
                .await?;
        }
        Ok(())
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn export_subscribers(
        &self,
        after: i64,
        limit: i64,
    ) -> StoreResult<Vec<ExportedSubscriber>> {
        let sql = format!(
            "SELECT {CARD_COLUMNS}, legacy_id FROM subscribers \
             WHERE id > $1 AND status <> 'merged' ORDER BY id LIMIT $2"
        );
        let rows: Vec<ExportRow> = sqlx::query_as(&sql)
            .bind(after)
            .bind(limit)
            .fetch_all(&self.read)
            .await?;
        rows.into_iter()
            .map(|row| {
                Ok(ExportedSubscriber {
                    subscriber: row.card.try_into()?,
                    legacy_id: row.legacy_id,
                })
            })
            .collect()
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn export_terms(&self, after: i64, limit: i64) -> StoreResult<Vec<ExportedTerm>> {
        let sql = format!(
            "SELECT {TERM_COLUMNS}, s.legacy_id FROM terms t \
             JOIN publications p ON p.id = t.publication_id \
             JOIN subscribers s ON s.id = t.subscriber_id \
             WHERE t.id > $1 ORDER BY t.id LIMIT $2"
        );
        let rows: Vec<ExportTermRow> = sqlx::query_as(&sql)
            .bind(after)
            .bind(limit)
            .fetch_all(&self.read)
            .await?;
        rows.into_iter()
            .map(|row| {
                let subscriber = SubscriberNumber::from_sequence(row.term.subscriber_id);
                Ok(ExportedTerm {
                    subscriber,
                    legacy_id: row.legacy_id,
                    term: row.term.into_term(Vec::new())?,
                })
            })
            .collect()
    }
}
