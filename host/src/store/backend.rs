//! `SqlStore`, the one implementation of the store, and the SQL that differs by backend.
//!
//! The shared SQL is not generic over the database: sqlx's bounds would have to be repeated on
//! every `impl` (the compiler does not carry them from a trait alias). It is written once
//! against a concrete `Db` and compiled for each backend instead (see `shared.rs`).

use std::time::Duration;

use sqlx::pool::PoolOptions;
use sqlx::{Connection, Database, Pool};

use super::StoreResult;
use super::replica::StandbyPool;

/// The sqlx backends Masthead runs on, and the bits of SQL that differ between them.
pub trait Backend: Database {
    const SCHEME: &'static str;
    /// Appended to a `SELECT` that reads a row about to be changed.
    const LOCK_ROW: &'static str;
    /// Ends a correlated `EXISTS` subquery that must stay a per-row probe rather than be
    /// turned into a join over all its matches (which would defeat an early `LIMIT`).
    const PER_ROW_PROBE: &'static str;

    /// Brings the planner's statistics of the tables a bulk import grows up to date; empty
    /// where the planner needs none.
    const REFRESH_STATISTICS: &'static str;

    /// The `i`th (1-based) bind parameter of a statement with many of them, bound in order.
    fn param(i: usize) -> String;

    /// An aggregate gathering the group's `values` into one JSON array of arrays, as text, in
    /// the given order: one row per group costs far less to hand over than one per value.
    fn json_rows(values: &str, order: &str) -> String;

    /// A stored JSON column as a JSON value inside such an array (not as a string).
    fn json(column: &str) -> String;

    /// Like `json_rows`, each array ending with the JSON array the scalar subquery `nested`
    /// answers (a `json_rows` of its own). The last of `values` must be a non-null string.
    fn json_rows_nesting(values: &str, nested: &str, order: &str) -> String;

    /// Run first in a read transaction that must see one snapshot throughout; empty where
    /// every read transaction does.
    const SNAPSHOT: &'static str;

    /// A statement that takes `count` new ids of `table` (an identity column `id`) which no
    /// other writer can be given, answering them as `(first, last)` runs: a bulk insert then
    /// names its ids instead of having each sent back.
    fn reserve_ids(table: &str, count: usize) -> String;

    /// A statement after which the ids `table` hands out are all above `at_least`: ids at or
    /// below it may then be given explicitly.
    fn advance_ids(table: &str, at_least: i64) -> String;
}

impl Backend for sqlx::Sqlite {
    const SCHEME: &'static str = "sqlite";
    // The single writer connection already serialises every write transaction.
    const LOCK_ROW: &'static str = "";
    const PER_ROW_PROBE: &'static str = "";
    // SQLite's planner picks the indexes these statements name without statistics.
    const REFRESH_STATISTICS: &'static str = "";

    // Anonymous: SQLite looks a numbered parameter's name up by a linear scan, which makes a
    // statement with thousands of `$n` quadratic to bind.
    fn param(_: usize) -> String {
        "?".to_owned()
    }

    fn json_rows(values: &str, order: &str) -> String {
        format!("json_group_array(json_array({values}) ORDER BY {order})")
    }

    fn json(column: &str) -> String {
        format!("json({column})")
    }

    // Spliced as text: wrapping the subquery in `json()` would parse every nested array
    // again, which doubled the cost of a page.
    fn json_rows_nesting(values: &str, nested: &str, order: &str) -> String {
        format!(
            "'[' || group_concat(rtrim(json_array({values}), ']') || ',' || \
             coalesce(({nested}), '[]') || ']', ',' ORDER BY {order}) || ']'"
        )
    }

    // In WAL mode a read transaction sees the database as of its first read.
    const SNAPSHOT: &'static str = "";

    // One run: AUTOINCREMENT never hands out an id at or below the table's `seq`, and the
    // update holds the write lock until the rows are in.
    fn reserve_ids(table: &str, count: usize) -> String {
        format!(
            "UPDATE sqlite_sequence SET seq = seq + {count} WHERE name = '{table}' \
             RETURNING seq - {count} + 1, seq"
        )
    }

    fn advance_ids(table: &str, at_least: i64) -> String {
        format!("UPDATE sqlite_sequence SET seq = MAX(seq, {at_least}) WHERE name = '{table}'")
    }
}

impl Backend for sqlx::Postgres {
    const SCHEME: &'static str = "postgres";
    const LOCK_ROW: &'static str = " FOR UPDATE";
    // PostgreSQL flattens EXISTS into a semi-join unless the subquery has an OFFSET.
    const PER_ROW_PROBE: &'static str = " OFFSET 0";
    // Without it, a database loaded from empty keeps the plans of an empty one (a scan of
    // every search term per lookup) until autovacuum gets round to analysing it.
    const REFRESH_STATISTICS: &'static str = "ANALYZE subscribers, search_terms, terms";

    fn param(i: usize) -> String {
        format!("${i}")
    }

    fn json_rows(values: &str, order: &str) -> String {
        format!("json_agg(json_build_array({values}) ORDER BY {order})::text")
    }

    fn json(column: &str) -> String {
        column.to_owned()
    }

    fn json_rows_nesting(values: &str, nested: &str, order: &str) -> String {
        Self::json_rows(&format!("{values}, (({nested}))::json"), order)
    }

    const SNAPSHOT: &'static str = "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY";

    // A run per id: other sessions may take values of the sequence in between.
    fn reserve_ids(table: &str, count: usize) -> String {
        format!(
            "SELECT id, id FROM (SELECT nextval(pg_get_serial_sequence('{table}', 'id')) AS id \
             FROM generate_series(1, {count})) ids"
        )
    }

    // Never below the sequence's start: an unused sequence then still starts where it would.
    fn advance_ids(table: &str, at_least: i64) -> String {
        format!(
            "SELECT setval(s, GREATEST({at_least}, \
                 COALESCE(pg_sequence_last_value(s::regclass), 0), \
                 (SELECT seqstart - 1 FROM pg_sequence WHERE seqrelid = s::regclass))) \
             FROM (SELECT pg_get_serial_sequence('{table}', 'id') AS s) q"
        )
    }
}

/// The store over one database. Reads use `read`; writes use `write`, which for SQLite is a
/// single connection so that writers queue in the host instead of failing with "database is
/// locked". For PostgreSQL both are the same pool, `searches` holds the connections that
/// serve searches, and `standby` may take some reads.
pub struct SqlStore<DB: Database> {
    pub(super) read: Pool<DB>,
    pub(super) write: Pool<DB>,
    pub(super) searches: Option<Pool<DB>>,
    pub(super) standby: Option<StandbyPool<DB>>,
}

impl<DB: Database> SqlStore<DB> {
    pub(super) fn new(read: Pool<DB>, write: Pool<DB>) -> Self {
        Self {
            read,
            write,
            searches: None,
            standby: None,
        }
    }
}

/// A connection idle for longer than this is checked with a round trip before it is lent
/// (the server may have been restarted, or a firewall may have dropped it meanwhile).
const CHECK_AFTER_IDLE: Duration = Duration::from_secs(10);

/// The pool settings every pool of the store starts from. sqlx's default checks each
/// connection with a round trip before lending it, on PostgreSQL a second round trip for
/// every one-query request such as a card read, on SQLite a second hand-off to the
/// connection's thread; here only a connection that sat idle is checked.
pub(super) fn pool_options<DB: Database>() -> PoolOptions<DB> {
    PoolOptions::new()
        .test_before_acquire(false)
        .before_acquire(|conn: &mut DB::Connection, meta| {
            Box::pin(async move {
                if meta.idle_for > CHECK_AFTER_IDLE {
                    conn.ping().await?;
                }
                Ok(true)
            })
        })
}

/// Reads a snake_case enum that was written with serde.
pub(super) fn parse_enum<T: serde::de::DeserializeOwned>(text: &str) -> StoreResult<T> {
    serde_json::from_value(serde_json::Value::String(text.to_owned()))
        .map_err(|_| super::StoreError::Corrupt(format!("unknown value `{text}`")))
}

/// Writes a snake_case enum as serde names it.
pub(super) fn enum_text<T: serde::Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        other => unreachable!("enums serialise as strings, got {other:?}"),
    }
}
