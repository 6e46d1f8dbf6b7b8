//! Backup and restore of the whole database: every table read in one snapshot as portable
//! rows, and loaded into an empty database of either backend in one transaction.
//!
//! A row is a JSON array of its column values in the order its table's header names them.
//! Values are written the way the SQLite backend stores them, which PostgreSQL reads back by
//! casting to each column's type: JSON columns as their text, booleans as JSON booleans or
//! 0/1, timestamps as RFC 3339 in UTC (as sqlx writes them), binary columns as hex.

use std::collections::{BTreeMap, BTreeSet};

use async_trait::async_trait;
use futures::TryStreamExt;
use sqlx::{Postgres, Sqlite};

use super::{SqlStore, StoreError};

/// What a backup says about where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupHeader {
    /// "sqlite" or "postgres".
    pub backend: String,
    /// The last migration applied to the database backed up.
    pub schema: i64,
}

/// Receives a backup as the store reads it: the header, then each table's columns followed by
/// its rows, then the last value each table's id sequence handed out.
pub trait BackupSink: Send {
    fn begin(&mut self, header: &BackupHeader) -> std::io::Result<()>;
    fn table(&mut self, name: &str, columns: &[String]) -> std::io::Result<()>;
    /// One row: a JSON array of the table's column values.
    fn row(&mut self, row: &str) -> std::io::Result<()>;
    fn sequences(&mut self, last_issued: &BTreeMap<String, i64>) -> std::io::Result<()>;
}

/// One step of a backup being restored.
#[derive(Debug)]
pub enum BackupItem {
    /// The rows that follow belong to this table, with these columns.
    Table { name: String, columns: Vec<String> },
    /// Some rows of the current table, as one JSON array of row arrays.
    Rows(String),
    /// The last value each table's id sequence handed out, by table.
    Sequences(BTreeMap<String, i64>),
}

/// A backup being read; it checks itself.
pub trait BackupSource: Send {
    fn header(&self) -> &BackupHeader;
    /// The next step, or `None` once the end has been read and the backup's checksum holds.
    fn next_item(&mut self) -> Result<Option<BackupItem>, BackupError>;
}

/// Why a backup or a restore stopped. A restore that stops has written nothing.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// The backup file is unreadable, damaged, or not a backup.
    #[error("{0}")]
    File(String),
    #[error(
        "the database already holds data ({0}); a backup is restored only into an empty \
         database, so that nothing in it is mixed with or overwritten by the backup"
    )]
    NotEmpty(String),
    #[error(
        "the backup was made at schema version {backup} and this database is at {database}; \
         restore it with the masthead release that made it"
    )]
    Schema { backup: i64, database: i64 },
    /// The backup names a table or a column this database does not have.
    #[error("{0}")]
    Mismatch(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for BackupError {
    fn from(e: sqlx::Error) -> Self {
        Self::Store(e.into())
    }
}

impl From<std::io::Error> for BackupError {
    fn from(e: std::io::Error) -> Self {
        Self::File(format!("the backup could not be written: {e}"))
    }
}

/// Tables and rows copied.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BackupCounts {
    pub tables: u64,
    pub rows: u64,
}

#[async_trait]
pub trait BackupStore {
    /// Writes every table as it stood at one instant, while the service goes on serving.
    async fn write_backup(&self, sink: &mut dyn BackupSink) -> Result<BackupCounts, BackupError>;
    /// Loads a backup into this database, which must be empty and at the backup's schema
    /// version; all of it or, on any error, nothing.
    async fn restore_backup(
        &self,
        source: &mut dyn BackupSource,
    ) -> Result<BackupCounts, BackupError>;
}

/// Tables that are the migrator's own, or derived from the others and made again from them
/// after a restore (the restored readers are all logged as changed), never copied.
const NOT_COPIED: &[&str] = &[
    "_sqlx_migrations",
    "reader_facts",
    "reader_changes",
    "reader_facts_lease",
];

/// The tables in an order in which each comes after the tables it refers to, so that a
/// backend checking references row by row can load them as listed. A table's references to
/// itself are left to the restore.
fn restore_order(tables: &[String], references: &[(String, String)]) -> Vec<String> {
    let mut waiting: BTreeMap<&str, BTreeSet<&str>> = tables
        .iter()
        .map(|t| (t.as_str(), BTreeSet::new()))
        .collect();
    for (from, to) in references {
        if from != to
            && waiting.contains_key(to.as_str())
            && let Some(needs) = waiting.get_mut(from.as_str())
        {
            needs.insert(to.as_str());
        }
    }
    let mut order: Vec<String> = Vec::with_capacity(tables.len());
    while !waiting.is_empty() {
        let ready: Vec<&str> = waiting
            .iter()
            .filter(|(_, needs)| needs.is_empty())
            .map(|(t, _)| *t)
            .collect();
        // A cycle between tables (none in the schema today) is loaded in name order.
        let next = if ready.is_empty() {
            waiting.keys().take(1).copied().collect()
        } else {
            ready
        };
        for table in next {
            waiting.remove(table);
            for needs in waiting.values_mut() {
                needs.remove(table);
            }
            order.push(table.to_owned());
        }
    }
    order
}

/// The tables of `found` that hold rows, as "name: N rows", for the refusal.
fn describe_rows(found: &[(String, i64)]) -> String {
    found
        .iter()
        .map(|(table, n)| format!("{table}: {n} {}", if *n == 1 { "row" } else { "rows" }))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Checks a backup's table header against the database's columns of that table.
fn check_columns(
    table: &str,
    columns: &[String],
    known: Option<&Columns>,
) -> Result<(), BackupError> {
    let Some(known) = known else {
        return Err(BackupError::Mismatch(format!(
            "the backup holds a table `{table}` that this database does not have"
        )));
    };
    if let Some(unknown) = columns.iter().find(|c| !known.contains_key(c)) {
        return Err(BackupError::Mismatch(format!(
            "the backup's table `{table}` has a column `{unknown}` that this database does not have"
        )));
    }
    Ok(())
}

#[async_trait]
impl BackupStore for SqlStore<Sqlite> {
    #[tracing::instrument(level = "debug", skip_all)]
    async fn write_backup(&self, sink: &mut dyn BackupSink) -> Result<BackupCounts, BackupError> {
        // In WAL mode a read transaction sees one snapshot from its first read to its end,
        // whatever the writer commits meanwhile.
        let mut tx = self.read.begin().await?;
        let schema: i64 =
            sqlx::query_scalar("SELECT COALESCE(MAX(version), 0) FROM _sqlx_migrations")
                .fetch_one(&mut *tx)
                .await?;
        let tables = sqlite_tables(&mut tx).await?;
        let references: Vec<(String, String)> = sqlx::query_as(
            "SELECT m.name, f.\"table\" FROM sqlite_schema m, pragma_foreign_key_list(m.name) f \
             WHERE m.type = 'table'",
        )
        .fetch_all(&mut *tx)
        .await?;
        sink.begin(&BackupHeader {
            backend: "sqlite".to_owned(),
            schema,
        })?;
        let mut counts = BackupCounts::default();
        for table in restore_order(&tables, &references) {
            let columns = sqlite_columns(&mut tx, &table).await?;
            let names: Vec<String> = columns.keys().cloned().collect();
            let values: Vec<String> = columns
                .iter()
                .map(|(name, kind)| {
                    if kind.eq_ignore_ascii_case("BLOB") {
                        format!("CASE WHEN \"{name}\" IS NULL THEN NULL ELSE hex(\"{name}\") END")
                    } else {
                        format!("\"{name}\"")
                    }
                })
                .collect();
            sink.table(&table, &names)?;
            let sql = format!("SELECT json_array({}) FROM \"{table}\"", values.join(", "));
            let mut rows = sqlx::query_scalar::<_, String>(&sql).fetch(&mut *tx);
            while let Some(row) = rows.try_next().await? {
                sink.row(&row)?;
                counts.rows += 1;
            }
            counts.tables += 1;
        }
        let sequences: Vec<(String, i64)> = sqlx::query_as(
            "SELECT name, seq FROM main.sqlite_sequence \
                 UNION ALL SELECT name, seq FROM logs.sqlite_sequence ORDER BY name",
        )
        .fetch_all(&mut *tx)
        .await?;
        sink.sequences(&sequences.into_iter().collect())?;
        tx.commit().await?;
        Ok(counts)
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn restore_backup(
        &self,
        source: &mut dyn BackupSource,
    ) -> Result<BackupCounts, BackupError> {
        let mut tx = self.write.begin().await?;
        // References are checked at the commit, so rows may come in any order.
        sqlx::query("PRAGMA defer_foreign_keys = ON")
            .execute(&mut *tx)
            .await?;
        let schema: i64 =
            sqlx::query_scalar("SELECT COALESCE(MAX(version), 0) FROM _sqlx_migrations")
                .fetch_one(&mut *tx)
                .await?;
        if schema != source.header().schema {
            return Err(BackupError::Schema {
                backup: source.header().schema,
                database: schema,
            });
        }
        let tables = sqlite_tables(&mut tx).await?;
        let mut known = BTreeMap::new();
        let mut filled = Vec::new();
        for table in &tables {
            let n: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM \"{table}\""))
                .fetch_one(&mut *tx)
                .await?;
            if n > 0 {
                filled.push((table.clone(), n));
            }
            known.insert(table.clone(), sqlite_columns(&mut tx, table).await?);
        }
        if !filled.is_empty() {
            return Err(BackupError::NotEmpty(describe_rows(&filled)));
        }
        // Secondary indexes are built once over the loaded rows, a sort each, instead of
        // kept up row by row; unique ones stay, as they check the rows.
        let indexes = sqlite_secondary_indexes(&mut tx).await?;
        for (drop, _) in &indexes {
            sqlx::query(drop).execute(&mut *tx).await?;
        }
        let mut counts = BackupCounts::default();
        let mut insert = String::new();
        while let Some(item) = source.next_item()? {
            match item {
                BackupItem::Table { name, columns } => {
                    let target = known.get(&name);
                    check_columns(&name, &columns, target)?;
                    let target = target.cloned().unwrap_or_default();
                    let values: Vec<String> = columns
                        .iter()
                        .enumerate()
                        .map(|(i, c)| match target.get(c) {
                            Some(kind) if kind.eq_ignore_ascii_case("BLOB") => {
                                format!("unhex(item ->> {i})")
                            }
                            _ => format!("item ->> {i}"),
                        })
                        .collect();
                    let names: Vec<String> = columns.iter().map(|c| format!("\"{c}\"")).collect();
                    // Each row is parsed once, into SQLite's binary JSON, whose values are
                    // then read without parsing the row's text again for every column.
                    insert = format!(
                        "WITH batch (item) AS MATERIALIZED (SELECT jsonb(value) FROM json_each(?)) \
                         INSERT INTO \"{name}\" ({}) SELECT {} FROM batch",
                        names.join(", "),
                        values.join(", ")
                    );
                    counts.tables += 1;
                }
                BackupItem::Rows(rows) => {
                    if insert.is_empty() {
                        return Err(BackupError::File(
                            "the backup has rows before any table".to_owned(),
                        ));
                    }
                    let done = sqlx::query(&insert).bind(rows).execute(&mut *tx).await?;
                    counts.rows += done.rows_affected();
                }
                BackupItem::Sequences(last_issued) => {
                    for (table, last) in last_issued {
                        if !known.contains_key(&table) {
                            continue;
                        }
                        // Each file numbers its own tables.
                        let file: String = sqlx::query_scalar(
                            "SELECT CASE WHEN EXISTS (SELECT 1 FROM main.sqlite_schema \
                             WHERE name = ?1) THEN 'main' ELSE 'logs' END",
                        )
                        .bind(&table)
                        .fetch_one(&mut *tx)
                        .await?;
                        // The backup's value, or the largest id restored if that is higher.
                        sqlx::query(&format!(
                            "INSERT INTO {file}.sqlite_sequence (name, seq) SELECT ?1, ?2 \
                             WHERE NOT EXISTS (SELECT 1 FROM {file}.sqlite_sequence \
                             WHERE name = ?1)"
                        ))
                        .bind(&table)
                        .bind(last)
                        .execute(&mut *tx)
                        .await?;
                        sqlx::query(&format!(
                            "UPDATE {file}.sqlite_sequence SET seq = MAX(seq, ?2) WHERE name = ?1"
                        ))
                        .bind(&table)
                        .bind(last)
                        .execute(&mut *tx)
                        .await?;
                    }
                }
            }
        }
        for (_, create) in &indexes {
            sqlx::query(create).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(counts)
    }
}

/// The non-unique indexes of both files, as the statements that drop and make each again.
async fn sqlite_secondary_indexes(
    tx: &mut sqlx::SqliteConnection,
) -> Result<Vec<(String, String)>, BackupError> {
    // SQLite keeps an index's statement without its schema: `CREATE INDEX name ON ...`.
    let found: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT 'main', name, sql FROM main.sqlite_schema WHERE type = 'index' \
         AND sql LIKE 'CREATE INDEX %' UNION ALL \
         SELECT 'logs', name, sql FROM logs.sqlite_schema WHERE type = 'index' \
         AND sql LIKE 'CREATE INDEX %'",
    )
    .fetch_all(&mut *tx)
    .await?;
    Ok(found
        .into_iter()
        .filter_map(|(schema, name, sql)| {
            let rest = sql.strip_prefix("CREATE INDEX ")?;
            Some((
                format!("DROP INDEX {schema}.\"{name}\""),
                format!("CREATE INDEX {schema}.{rest}"),
            ))
        })
        .collect())
}

async fn sqlite_tables(tx: &mut sqlx::SqliteConnection) -> Result<Vec<String>, BackupError> {
    // The database file and the logs file attached beside it (store/sqlite.rs): a backup
    // holds both, and unqualified names find each table in its own file.
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM (SELECT name, type FROM main.sqlite_schema \
         UNION ALL SELECT name, type FROM logs.sqlite_schema) \
         WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
    )
    .fetch_all(&mut *tx)
    .await?;
    Ok(names
        .into_iter()
        .filter(|n| !NOT_COPIED.contains(&n.as_str()))
        .collect())
}

/// A table's columns and their declared types, in the table's order.
async fn sqlite_columns(
    tx: &mut sqlx::SqliteConnection,
    table: &str,
) -> Result<Columns, BackupError> {
    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT name, type FROM pragma_table_info(?) ORDER BY cid")
            .bind(table)
            .fetch_all(&mut *tx)
            .await?;
    Ok(Columns(rows))
}

/// A table's columns in order, each with its type as the database names it.
#[derive(Debug, Clone, Default)]
struct Columns(Vec<(String, String)>);

impl Columns {
    fn keys(&self) -> impl Iterator<Item = &String> {
        self.0.iter().map(|(name, _)| name)
    }

    fn iter(&self) -> impl Iterator<Item = (&String, &String)> {
        self.0.iter().map(|(name, kind)| (name, kind))
    }

    fn get(&self, name: &str) -> Option<&String> {
        self.0.iter().find(|(n, _)| n == name).map(|(_, kind)| kind)
    }

    fn contains_key(&self, name: &str) -> bool {
        self.get(name).is_some()
    }
}

#[async_trait]
impl BackupStore for SqlStore<Postgres> {
    #[tracing::instrument(level = "debug", skip_all)]
    async fn write_backup(&self, sink: &mut dyn BackupSink) -> Result<BackupCounts, BackupError> {
        let mut tx = self.read.begin().await?;
        // One snapshot for every table, taken at the first read; it blocks no writer.
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *tx)
            .await?;
        let schema: i64 =
            sqlx::query_scalar("SELECT COALESCE(MAX(version), 0) FROM _sqlx_migrations")
                .fetch_one(&mut *tx)
                .await?;
        let tables = postgres_tables(&mut tx).await?;
        let references: Vec<(String, String)> = sqlx::query_as(
            "SELECT a.relname::text, b.relname::text FROM pg_constraint k \
             JOIN pg_class a ON a.oid = k.conrelid JOIN pg_class b ON b.oid = k.confrelid \
             WHERE k.contype = 'f' AND a.relnamespace = current_schema()::regnamespace",
        )
        .fetch_all(&mut *tx)
        .await?;
        sink.begin(&BackupHeader {
            backend: "postgres".to_owned(),
            schema,
        })?;
        let mut counts = BackupCounts::default();
        for table in restore_order(&tables, &references) {
            let columns = postgres_columns(&mut tx, &table).await?;
            let names: Vec<String> = columns.keys().cloned().collect();
            let values: Vec<String> = columns
                .iter()
                .map(|(name, kind)| portable_value(name, kind))
                .collect();
            sink.table(&table, &names)?;
            let sql = format!(
                "SELECT json_build_array({})::text FROM \"{table}\"",
                values.join(", ")
            );
            let mut rows = sqlx::query_scalar::<_, String>(&sql).fetch(&mut *tx);
            while let Some(row) = rows.try_next().await? {
                sink.row(&row)?;
                counts.rows += 1;
            }
            counts.tables += 1;
        }
        // Sequences stand outside the snapshot; read after it began, each is at least as far
        // as any id the snapshot holds.
        let mut last_issued = BTreeMap::new();
        for (table, column) in postgres_serials(&mut tx).await? {
            let last: Option<i64> = sqlx::query_scalar(
                "SELECT COALESCE(s.last_value, s.start_value - s.increment_by) FROM pg_sequences s \
                 WHERE format('%I.%I', s.schemaname, s.sequencename) \
                     = pg_get_serial_sequence(quote_ident($1), $2)",
            )
            .bind(&table)
            .bind(&column)
            .fetch_optional(&mut *tx)
            .await?;
            if let Some(last) = last {
                last_issued.insert(table, last);
            }
        }
        sink.sequences(&last_issued)?;
        tx.commit().await?;
        Ok(counts)
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn restore_backup(
        &self,
        source: &mut dyn BackupSource,
    ) -> Result<BackupCounts, BackupError> {
        let mut tx = self.write.begin().await?;
        let schema: i64 =
            sqlx::query_scalar("SELECT COALESCE(MAX(version), 0) FROM _sqlx_migrations")
                .fetch_one(&mut *tx)
                .await?;
        if schema != source.header().schema {
            return Err(BackupError::Schema {
                backup: source.header().schema,
                database: schema,
            });
        }
        let tables = postgres_tables(&mut tx).await?;
        let mut known = BTreeMap::new();
        let mut filled = Vec::new();
        for table in &tables {
            let n: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM \"{table}\""))
                .fetch_one(&mut *tx)
                .await?;
            if n > 0 {
                filled.push((table.clone(), n));
            }
            known.insert(table.clone(), postgres_columns(&mut tx, table).await?);
        }
        if !filled.is_empty() {
            return Err(BackupError::NotEmpty(describe_rows(&filled)));
        }
        // References and secondary indexes are dropped for the load and made again over
        // the loaded rows: one check or one sort each, instead of one per row. Unique
        // indexes stay, as they check the rows.
        let deferred = PostgresDeferred::take(&mut tx).await?;
        let mut counts = BackupCounts::default();
        let mut last_issued = BTreeMap::new();
        let mut next = source.next_item()?;
        while let Some(item) = next {
            next = match item {
                BackupItem::Table { name, columns } => {
                    check_columns(&name, &columns, known.get(&name))?;
                    let target = known.get(&name).cloned().unwrap_or_default();
                    let (rows, after) =
                        copy_table(&mut tx, source, &name, &columns, &target).await?;
                    counts.tables += 1;
                    counts.rows += rows;
                    after
                }
                BackupItem::Rows(_) => {
                    return Err(BackupError::File(
                        "the backup has rows before any table".to_owned(),
                    ));
                }
                BackupItem::Sequences(sequences) => {
                    last_issued = sequences;
                    source.next_item()?
                }
            };
        }
        deferred.restore(&mut tx).await?;
        // Every id sequence continues after the backup's last value and after every id now
        // present, whichever is higher.
        for (table, column) in postgres_serials(&mut tx).await? {
            let last = last_issued.get(&table).copied().unwrap_or(0);
            sqlx::query(&format!(
                "SELECT setval(pg_get_serial_sequence(quote_ident($1), $2), \
                 GREATEST($3, (SELECT COALESCE(MAX(\"{column}\"), 0) FROM \"{table}\")) + 1, \
                 false)"
            ))
            .bind(&table)
            .bind(&column)
            .bind(last)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(counts)
    }
}

/// A column's value in the portable form (see the module's notes).
fn portable_value(name: &str, kind: &str) -> String {
    match kind {
        "bytea" => format!("encode(\"{name}\", 'hex')"),
        "json" | "jsonb" => format!("\"{name}\"::text"),
        // As sqlx writes a timestamp into SQLite: no fraction, or 3 or 6 digits of it.
        "timestamp with time zone" => {
            let at = format!("\"{name}\" AT TIME ZONE 'UTC'");
            let micros = format!("(EXTRACT(microseconds FROM \"{name}\")::bigint % 1000000)");
            format!(
                "CASE WHEN \"{name}\" IS NULL THEN NULL \
                 WHEN {micros} = 0 THEN to_char({at}, 'YYYY-MM-DD\"T\"HH24:MI:SS\"+00:00\"') \
                 WHEN {micros} % 1000 = 0 THEN to_char({at}, 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"+00:00\"') \
                 ELSE to_char({at}, 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"+00:00\"') END"
            )
        }
        _ => format!("\"{name}\""),
    }
}

/// Streams one table's rows into `COPY ... FROM STDIN`, up to the next step of the backup,
/// which it returns with the number of rows copied.
async fn copy_table(
    tx: &mut sqlx::PgConnection,
    source: &mut dyn BackupSource,
    name: &str,
    columns: &[String],
    target: &Columns,
) -> Result<(u64, Option<BackupItem>), BackupError> {
    let binary: Vec<bool> = columns
        .iter()
        .map(|c| target.get(c).is_some_and(|kind| kind == "bytea"))
        .collect();
    let names: Vec<String> = columns.iter().map(|c| format!("\"{c}\"")).collect();
    let mut copy = tx
        .copy_in_raw(&format!(
            "COPY \"{name}\" ({}) FROM STDIN",
            names.join(", ")
        ))
        .await?;
    let mut text = String::new();
    let sent = loop {
        let item = match source.next_item() {
            Ok(Some(BackupItem::Rows(rows))) => rows,
            Ok(after) => break Ok(after),
            Err(e) => break Err(e),
        };
        text.clear();
        if let Err(e) = copy_text(&item, &binary, &mut text) {
            break Err(e);
        }
        if let Err(e) = copy.send(text.as_bytes()).await {
            break Err(e.into());
        }
    };
    match sent {
        Ok(after) => Ok((copy.finish().await?, after)),
        Err(e) => {
            // Aborting leaves the connection usable for the rollback that follows.
            let _ = copy.abort("the restore stopped").await;
            Err(e)
        }
    }
}

/// Rows (a JSON array of row arrays, portable values) in `COPY`'s text format.
fn copy_text(rows: &str, binary: &[bool], out: &mut String) -> Result<(), BackupError> {
    let rows: Vec<Vec<serde_json::Value>> = serde_json::from_str(rows).map_err(|_| {
        BackupError::File("the backup is damaged: a row is not an array of values".to_owned())
    })?;
    for row in rows {
        for (i, value) in row.iter().enumerate() {
            if i > 0 {
                out.push('\t');
            }
            match value {
                serde_json::Value::Null => out.push_str("\\N"),
                serde_json::Value::String(text) if binary.get(i) == Some(&true) => {
                    // bytea's hex input, its backslash escaped for COPY.
                    out.push_str("\\\\x");
                    out.push_str(text);
                }
                serde_json::Value::String(text) => escape_copy(text, out),
                serde_json::Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
                serde_json::Value::Number(n) => out.push_str(&n.to_string()),
                nested => escape_copy(&nested.to_string(), out),
            }
        }
        out.push('\n');
    }
    Ok(())
}

fn escape_copy(text: &str, out: &mut String) {
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
}

/// The foreign keys and non-unique indexes of the schema, dropped for a restore, with the
/// statements that make them again.
struct PostgresDeferred {
    make_again: Vec<String>,
}

impl PostgresDeferred {
    async fn take(tx: &mut sqlx::PgConnection) -> Result<Self, BackupError> {
        let references: Vec<(String, String, String)> = sqlx::query_as(
            "SELECT conrelid::regclass::text, quote_ident(conname), pg_get_constraintdef(oid) \
             FROM pg_constraint WHERE contype = 'f' \
             AND connamespace = current_schema()::regnamespace",
        )
        .fetch_all(&mut *tx)
        .await?;
        // Indexes that back a constraint (keys, exclusions) stay.
        let indexes: Vec<(String, String)> = sqlx::query_as(
            "SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid) FROM pg_index i \
             JOIN pg_class t ON t.oid = i.indrelid \
             WHERE t.relnamespace = current_schema()::regnamespace AND NOT i.indisunique \
             AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)",
        )
        .fetch_all(&mut *tx)
        .await?;
        let mut make_again = Vec::with_capacity(references.len() + indexes.len());
        for (table, name, definition) in references {
            sqlx::query(&format!("ALTER TABLE {table} DROP CONSTRAINT {name}"))
                .execute(&mut *tx)
                .await?;
            make_again.push(format!(
                "ALTER TABLE {table} ADD CONSTRAINT {name} {definition}"
            ));
        }
        for (index, definition) in indexes {
            sqlx::query(&format!("DROP INDEX {index}"))
                .execute(&mut *tx)
                .await?;
            make_again.push(definition);
        }
        Ok(Self { make_again })
    }

    /// Makes every reference and index again; a row referring to nothing fails the restore.
    async fn restore(self, tx: &mut sqlx::PgConnection) -> Result<(), BackupError> {
        for statement in &self.make_again {
            sqlx::query(statement).execute(&mut *tx).await?;
        }
        Ok(())
    }
}

async fn postgres_tables(tx: &mut sqlx::PgConnection) -> Result<Vec<String>, BackupError> {
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT relname::text FROM pg_class WHERE relnamespace = current_schema()::regnamespace \
         AND relkind IN ('r', 'p') ORDER BY relname",
    )
    .fetch_all(&mut *tx)
    .await?;
    Ok(names
        .into_iter()
        .filter(|n| !NOT_COPIED.contains(&n.as_str()))
        .collect())
}

async fn postgres_columns(
    tx: &mut sqlx::PgConnection,
    table: &str,
) -> Result<Columns, BackupError> {
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT attname::text, format_type(atttypid, atttypmod) FROM pg_attribute \
         WHERE attrelid = quote_ident($1)::regclass AND attnum > 0 AND NOT attisdropped \
         ORDER BY attnum",
    )
    .bind(table)
    .fetch_all(&mut *tx)
    .await?;
    Ok(Columns(rows))
}

/// Each table's column fed by a sequence (identity or serial), as `(table, column)`.
async fn postgres_serials(
    tx: &mut sqlx::PgConnection,
) -> Result<Vec<(String, String)>, BackupError> {
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT DISTINCT ON (table_name) table_name::text, column_name::text \
         FROM information_schema.columns WHERE table_schema = current_schema() \
         AND (is_identity = 'YES' OR column_default LIKE 'nextval(%') \
         ORDER BY table_name, ordinal_position",
    )
    .fetch_all(&mut *tx)
    .await?;
    Ok(rows
        .into_iter()
        .filter(|(t, _)| !NOT_COPIED.contains(&t.as_str()))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::restore_order;

    #[test]
    fn tables_come_after_the_tables_they_refer_to() {
        let tables: Vec<String> = ["terms", "subscribers", "orders", "staff"]
            .map(String::from)
            .to_vec();
        let refs: Vec<(String, String)> = [
            ("terms", "orders"),
            ("terms", "subscribers"),
            ("terms", "terms"),
            ("orders", "subscribers"),
            ("subscribers", "staff"),
        ]
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
        .to_vec();
        assert_eq!(
            restore_order(&tables, &refs),
            ["staff", "subscribers", "orders", "terms"]
        );
    }
}
