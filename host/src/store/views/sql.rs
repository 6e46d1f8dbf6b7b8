//! The reads behind the reader pipeline: a snapshot of the readership, its pages of kept
//! chunks (or of readers gathered from their tables by the database into one JSON value), and
//! bringing the kept chunks of changed readers up to date.

use std::collections::BTreeSet;

use async_trait::async_trait;
use chrono::{Duration, Utc};
use sqlx::Transaction;

use super::Db;
use super::terms::{TermRow, TermTuple, term_json_columns};
use crate::domain::subscriber::ProfileDraft;
use crate::domain::{Consents, Profile};
use crate::store::backend::{Backend, SqlStore};
use crate::store::replica::Freshness;
use crate::store::views::facts::{self, CHUNK, bounds, chunk_of};
use crate::store::views::{Part, Profiles};
use crate::store::{
    ComplaintTally, FactsCaughtUp, GatheredPage, Reader, ReaderRow, Readership, StoreError,
    StoreResult, ViewStore,
};

/// How long a pass bringing the kept chunks up to date may hold the lease without showing
/// progress; a host that died holding it holds it no longer than this.
const LEASE: Duration = Duration::minutes(5);

/// Chunks made again from the tables, then written, at a time.
const CHUNKS_WRITTEN: usize = 16;

/// One element of the array a page gathers, in the order of the columns it names.
#[derive(serde::Deserialize)]
struct ReaderTuple(
    i64,
    Option<String>,
    Option<String>,
    Option<i32>,
    Option<String>,
    String,
    Option<i64>,
    Consents,
    Option<ProfileDraft>,
    String,
    Option<Vec<TermTuple>>,
);

#[async_trait]
impl ViewStore for SqlStore<Db> {
    #[tracing::instrument(level = "debug", skip_all)]
    async fn count_readers(&self) -> StoreResult<i64> {
        let (n,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM subscribers WHERE merged_into IS NULL")
                .fetch_one(&mut *self.reader(Freshness::Committed).await?)
                .await?;
        Ok(n)
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn readership(&self) -> StoreResult<Box<dyn Readership>> {
        let mut snapshot = self.snapshot().await?;
        let changed: Vec<i64> = sqlx::query_scalar(&format!(
            "SELECT DISTINCT subscriber_id / {CHUNK} FROM reader_changes"
        ))
        .fetch_all(&mut *snapshot)
        .await?;
        Ok(Box::new(Snapshot {
            tx: snapshot,
            changed: changed.into_iter().collect(),
        }))
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn readers_between(
        &self,
        first: i64,
        last: i64,
        with_profile: bool,
    ) -> StoreResult<GatheredPage> {
        let mut connection = self.reader(Freshness::Committed).await?;
        let text = gather_text(&mut connection, first - 1, last, with_profile).await?;
        Ok(GatheredPage {
            parts: text.map(Part::Gathered).into_iter().collect(),
            last: Some(last),
            ..empty_page(first - 1)
        })
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn bring_facts_up_to_date(&self) -> StoreResult<FactsCaughtUp> {
        let holder = uuid::Uuid::new_v4().to_string();
        let now = Utc::now();
        let taken = sqlx::query(
            "UPDATE reader_facts_lease SET holder = $1, until = $2 \
             WHERE id = 1 AND (holder IS NULL OR until < $3)",
        )
        .bind(&holder)
        .bind(now + LEASE)
        .bind(now)
        .execute(&self.write)
        .await?;
        if taken.rows_affected() == 0 {
            return Ok(FactsCaughtUp {
                skipped: true,
                ..FactsCaughtUp::default()
            });
        }
        let caught_up = self.catch_up(&holder).await;
        sqlx::query(
            "UPDATE reader_facts_lease SET holder = NULL, until = NULL \
             WHERE id = 1 AND holder = $1",
        )
        .bind(&holder)
        .execute(&self.write)
        .await?;
        caught_up
    }
}

impl SqlStore<Db> {
    /// A read transaction that sees one state of the database throughout: on the standby
    /// when it has replayed every committed write, else on the primary. Any such state will
    /// do, the log of changes being written with the changes.
    async fn snapshot(&self) -> StoreResult<Transaction<'static, Db>> {
        let connection = self.reader(Freshness::Committed).await?;
        let mut snapshot = Transaction::begin(connection, None).await?;
        if !Db::SNAPSHOT.is_empty() {
            sqlx::query(Db::SNAPSHOT).execute(&mut *snapshot).await?;
        }
        Ok(snapshot)
    }

    /// Makes again, from one snapshot, every kept chunk holding a reader logged as changed in
    /// it, then deletes the log rows it saw, each write only while `holder` holds the lease.
    async fn catch_up(&self, holder: &str) -> StoreResult<FactsCaughtUp> {
        let mut snapshot = self.snapshot().await?;
        // The log rows seen, as runs of consecutive ids: on PostgreSQL an id of a writer
        // still running is not seen, and falls between two runs, so it is not deleted.
        let runs: Vec<(i64, i64)> = sqlx::query_as(
            "SELECT MIN(id), MAX(id) FROM (SELECT id, id - ROW_NUMBER() OVER (ORDER BY id) \
             AS island FROM reader_changes) r GROUP BY island ORDER BY 1",
        )
        .fetch_all(&mut *snapshot)
        .await?;
        if runs.is_empty() {
            return Ok(FactsCaughtUp::default());
        }
        let chunks: Vec<i64> = sqlx::query_scalar(&format!(
            "SELECT DISTINCT subscriber_id / {CHUNK} FROM reader_changes ORDER BY 1"
        ))
        .fetch_all(&mut *snapshot)
        .await?;
        for batch in chunks.chunks(CHUNKS_WRITTEN) {
            let mut gathered = Vec::with_capacity(batch.len());
            for &chunk in batch {
                let (first, last) = bounds(chunk);
                gathered.push((
                    chunk,
                    gather_text(&mut snapshot, first - 1, last, false).await?,
                ));
            }
            let bodies = tokio::task::spawn_blocking(move || encode_chunks(gathered))
                .await
                .map_err(|e| StoreError::Corrupt(format!("encoding chunks of readers: {e}")))??;
            let mut tx = self.write.begin().await?;
            hold_lease(&mut tx, holder).await?;
            for (chunk, body) in bodies {
                match body {
                    Some(body) => {
                        sqlx::query(
                            "INSERT INTO reader_facts (chunk, body) VALUES ($1, $2) \
                             ON CONFLICT (chunk) DO UPDATE SET body = excluded.body",
                        )
                        .bind(chunk)
                        .bind(body)
                        .execute(&mut *tx)
                        .await?;
                    }
                    None => {
                        sqlx::query("DELETE FROM reader_facts WHERE chunk = $1")
                            .bind(chunk)
                            .execute(&mut *tx)
                            .await?;
                    }
                }
            }
            tx.commit().await?;
        }
        snapshot.rollback().await?;
        let mut tx = self.write.begin().await?;
        hold_lease(&mut tx, holder).await?;
        let mut changes = 0;
        for (first, last) in runs {
            changes += sqlx::query("DELETE FROM reader_changes WHERE id BETWEEN $1 AND $2")
                .bind(first)
                .bind(last)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        }
        tx.commit().await?;
        Ok(FactsCaughtUp {
            changes,
            chunks: chunks.len() as u64,
            skipped: false,
        })
    }
}

/// Extends the lease of `holder`, or fails if another pass has taken it meanwhile.
async fn hold_lease(tx: &mut Transaction<'static, Db>, holder: &str) -> StoreResult<()> {
    let held = sqlx::query("UPDATE reader_facts_lease SET until = $2 WHERE id = 1 AND holder = $1")
        .bind(holder)
        .bind(Utc::now() + LEASE)
        .execute(&mut **tx)
        .await?;
    if held.rows_affected() == 0 {
        return Err(StoreError::Conflict(
            "another pass took over bringing the kept readers up to date".into(),
        ));
    }
    Ok(())
}

/// The bodies of chunks gathered from their tables; `None` for a chunk with no live reader.
fn encode_chunks(gathered: Vec<(i64, Option<String>)>) -> StoreResult<Vec<(i64, Option<Vec<u8>>)>> {
    gathered
        .into_iter()
        .map(|(chunk, text)| {
            let readers = match text {
                Some(text) => decode(&text)?,
                None => Vec::new(),
            };
            let body = if readers.is_empty() {
                None
            } else {
                Some(facts::encode(&readers)?)
            };
            Ok((chunk, body))
        })
        .collect()
}

/// A snapshot of the readership, and the chunks holding readers logged as changed in it.
struct Snapshot {
    tx: Transaction<'static, Db>,
    changed: BTreeSet<i64>,
}

#[async_trait]
impl Readership for Snapshot {
    #[tracing::instrument(level = "debug", skip_all)]
    async fn page(
        &mut self,
        after: i64,
        limit: i64,
        with_profile: bool,
    ) -> StoreResult<GatheredPage> {
        let from = chunk_of(after + 1);
        let wanted = usize::try_from((limit.max(1) - 1) / CHUNK + 1).unwrap_or(1);
        let kept: Vec<(i64, Vec<u8>)> = sqlx::query_as(
            "SELECT chunk, body FROM reader_facts WHERE chunk >= $1 ORDER BY chunk LIMIT $2",
        )
        .bind(from)
        .bind(wanted as i64)
        .fetch_all(&mut *self.tx)
        .await?;
        // The page's chunks: the next `wanted` of those kept and those changed.
        let mut chunks: Vec<(i64, Option<Vec<u8>>)> = kept
            .into_iter()
            .map(|(chunk, body)| (chunk, Some(body)))
            .chain(self.changed.range(from..).take(wanted).map(|c| (*c, None)))
            .collect();
        chunks.sort_by_key(|(chunk, _)| *chunk);
        chunks.dedup_by_key(|(chunk, _)| *chunk);
        chunks.truncate(wanted);
        let Some(&(last_chunk, _)) = chunks.last() else {
            return Ok(empty_page(after));
        };
        let mut parts = Vec::with_capacity(chunks.len());
        for (chunk, body) in chunks {
            match body {
                Some(body) if !self.changed.contains(&chunk) && facts::is_current(&body) => {
                    parts.push(Part::Kept(body));
                }
                _ => {
                    let (first, last) = bounds(chunk);
                    let text = gather_text(&mut self.tx, first - 1, last, false).await?;
                    parts.extend(text.map(Part::Gathered));
                }
            }
        }
        let last = bounds(last_chunk).1;
        let profiles = if with_profile {
            profiles(&mut self.tx, after, last).await?
        } else {
            None
        };
        Ok(GatheredPage {
            after,
            parts,
            profiles,
            last: Some(last),
            decode_gathered: decode,
            decode_profiles,
        })
    }
}

fn empty_page(after: i64) -> GatheredPage {
    GatheredPage {
        after,
        parts: Vec::new(),
        profiles: None,
        last: None,
        decode_gathered: decode,
        decode_profiles,
    }
}

/// The profiles of the live readers `after + 1..=last`, gathered into one value.
async fn profiles(
    connection: &mut <Db as sqlx::Database>::Connection,
    after: i64,
    last: i64,
) -> StoreResult<Option<String>> {
    let sql = format!(
        "SELECT {} FROM subscribers s WHERE id > $1 AND id <= $2 AND merged_into IS NULL",
        Db::json_rows(&format!("s.id, {}", Db::json("s.profile")), "s.id")
    );
    Ok(sqlx::query_scalar(&sql)
        .bind(after)
        .bind(last)
        .fetch_one(connection)
        .await?)
}

fn decode_profiles(text: &str) -> StoreResult<Profiles> {
    let rows: Vec<(i64, ProfileDraft)> = serde_json::from_str(text)
        .map_err(|e| StoreError::Corrupt(format!("gathered profiles: {e}")))?;
    Ok(rows
        .into_iter()
        .map(|(sequence, draft)| (sequence, Profile::from_stored(draft)))
        .collect())
}

/// The live readers `after + 1..=through`, with their terms, gathered into one value (`None`
/// when there is none).
async fn gather_text(
    connection: &mut <Db as sqlx::Database>::Connection,
    after: i64,
    through: i64,
    with_profile: bool,
) -> StoreResult<Option<String>> {
    let profile = if with_profile {
        Db::json("s.profile")
    } else {
        "NULL".to_owned()
    };
    let terms = format!(
        "SELECT {} FROM terms t JOIN publications p ON p.id = t.publication_id \
         WHERE t.subscriber_id = s.id",
        Db::json_rows(
            &term_json_columns(&Db::json("t.discounts")),
            "t.start_date, t.id"
        )
    );
    let readers = Db::json_rows_nesting(
        &format!(
            "s.id, s.region, s.postal_code, s.birth_year, s.country, s.relationship_level, \
             s.relationship_manager_id, {}, {profile}, s.status",
            Db::json("s.consents")
        ),
        &terms,
        "s.id",
    );
    let sql = format!(
        "SELECT {readers} FROM (SELECT * FROM subscribers \
         WHERE id > $1 AND id <= $2 AND merged_into IS NULL ORDER BY id) s"
    );
    Ok(sqlx::query_scalar(&sql)
        .bind(after)
        .bind(through)
        .fetch_one(connection)
        .await?)
}

/// The readers of a gathered page.
fn decode(text: &str) -> StoreResult<Vec<Reader>> {
    let tuples: Vec<ReaderTuple> = serde_json::from_str(text)
        .map_err(|e| StoreError::Corrupt(format!("gathered readers: {e}")))?;
    tuples
        .into_iter()
        .map(|r| {
            let terms =
                r.10.unwrap_or_default()
                    .into_iter()
                    .map(|t| TermRow::from(t).into_term(Vec::new()))
                    .collect::<StoreResult<_>>()?;
            Ok(Reader {
                row: ReaderRow {
                    sequence: r.0,
                    region: r.1,
                    postal_code: r.2,
                    birth_year: r.3.and_then(|y| u16::try_from(y).ok()),
                    country: r.4,
                    relationship_level: r.5,
                    relationship_manager: r.6,
                    consents: r.7,
                    profile: r.8.map(Profile::from_stored),
                    complaints: ComplaintTally::default(),
                    club_tiers: Vec::new(),
                    erased: r.9 == "erased",
                },
                terms,
            })
        })
        .collect()
}
