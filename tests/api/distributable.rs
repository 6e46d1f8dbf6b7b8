//! The distributable schema: every table that belongs to one subscriber is keyed by the
//! subscriber's id, checked against the catalog of a freshly migrated database.

use std::collections::{BTreeMap, BTreeSet};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{empty_database, postgres_server, spawn_app};
use crate::renewals::{history, print_year, publication, reader, renew, subscribe};

/// Where a table's rows go when the database is spread over several machines (Citus terms).
#[derive(Clone, Copy, Debug, PartialEq)]
enum Placement {
    /// Hash-distributed by `column`, on the same machines as the other tables of `group`
    /// (the group is named after its first table).
    Distributed {
        column: &'static str,
        group: &'static str,
    },
    /// Small and read everywhere: a copy on every machine.
    Reference,
    /// Stays on the coordinator.
    Local,
}

use Placement::{Distributed, Local, Reference};

const BY_SUBSCRIBER: Placement = Distributed {
    column: "subscriber_id",
    group: "subscribers",
};

/// Every table, in the order README "Distributing the database" distributes them: a table
/// comes after every table it refers to.
const TABLES: &[(&str, Placement)] = &[
    ("advertisers", Reference),
    ("api_keys", Reference),
    ("staff", Reference),
    ("publications", Reference),
    ("price_lists", Reference),
    ("plugins", Reference),
    ("plugin_versions", Reference),
    ("plugin_events", Reference),
    ("plugin_errors", Reference),
    ("plugin_streaks", Reference),
    ("segments", Reference),
    ("clubs", Reference),
    ("club_events", Reference),
    // A publisher's audiences and their releases: a few a day, aggregates only.
    ("audiences", Reference),
    ("audience_advertisers", Reference),
    ("audience_releases", Reference),
    ("audience_bookings", Reference),
    (
        "subscribers",
        Distributed {
            column: "id",
            group: "subscribers",
        },
    ),
    ("search_terms", BY_SUBSCRIBER),
    ("consent_events", BY_SUBSCRIBER),
    ("orders", BY_SUBSCRIBER),
    ("terms", BY_SUBSCRIBER),
    ("holds", BY_SUBSCRIBER),
    ("compensations", BY_SUBSCRIBER),
    ("segment_members", BY_SUBSCRIBER),
    ("club_memberships", BY_SUBSCRIBER),
    ("tier_changes", BY_SUBSCRIBER),
    ("tier_overrides", BY_SUBSCRIBER),
    ("event_invitations", BY_SUBSCRIBER),
    // The reader pipeline's log of changed readers, written with each change.
    ("reader_changes", BY_SUBSCRIBER),
    // A contact may never be linked to a reader, and a link is made later: by its own id.
    (
        "interactions",
        Distributed {
            column: "id",
            group: "interactions",
        },
    ),
    (
        "interaction_steps",
        Distributed {
            column: "interaction_id",
            group: "interactions",
        },
    ),
    // Most entries name no reader, and the log outlives an erasure: spread by its own id.
    (
        "audit_log",
        Distributed {
            column: "id",
            group: "audit_log",
        },
    ),
    // Every advertiser request, the audit the publisher keeps of them: spread by its own id.
    (
        "audience_requests",
        Distributed {
            column: "id",
            group: "audience_requests",
        },
    ),
    // Every host's claims and heartbeats: row locks on one machine.
    ("jobs", Local),
    ("job_runs", Local),
    // An import's file while its job runs, and the rows it rejected: kept with the job.
    ("import_files", Local),
    ("import_rejections", Local),
    // The reader pipeline's kept chunks, each of many readers, and the lease to bring them
    // up to date.
    ("reader_facts", Local),
    ("reader_facts_lease", Local),
    ("_sqlx_migrations", Local),
];

/// Unique keys over all readers that the service relies on and a distributed table cannot
/// enforce (a shard sees only its own rows): what each guards, and what distributing needs.
const GLOBAL_KEYS: &[(&str, &str, &str)] = &[
    (
        "subscribers",
        "subscribers_by_legacy_id",
        "an import finds a reader again by the publisher's own id",
    ),
    (
        "orders",
        "orders_idempotency_key_key",
        "an idempotency key names one request, whichever reader or route it was sent to",
    ),
];

const WHAT_TO_DO: &str = "classify it in TABLES in tests/api/distributable.rs: distributed by \
    subscriber_id if each row belongs to one subscriber (then subscriber_id is NOT NULL and in \
    every primary key, unique key and foreign key to another such table), a reference table if \
    it is small and shared by all, or local; then update README \"Distributing the database\"";

fn kind(placement: Option<Placement>) -> &'static str {
    match placement {
        Some(Distributed { .. }) => "distributed",
        Some(Reference) => "reference",
        Some(Local) => "local",
        None => "not placed",
    }
}

fn placement(table: &str) -> Option<Placement> {
    TABLES.iter().find(|(t, _)| *t == table).map(|(_, p)| *p)
}

/// The part of a migrated schema the rules read.
#[derive(Default)]
struct Catalog {
    /// Table -> column -> NOT NULL.
    columns: BTreeMap<String, BTreeMap<String, bool>>,
    /// (table, column) of identity and serial columns, with the column's type.
    generated: Vec<(String, String, String)>,
    /// (table, index, columns) of every primary key and unique index.
    unique: Vec<(String, String, Vec<String>)>,
    foreign: Vec<ForeignKey>,
}

#[derive(sqlx::FromRow)]
struct ForeignKey {
    name: String,
    from: String,
    columns: Vec<String>,
    to: String,
    referenced: Vec<String>,
    on_update: String,
    on_delete: String,
}

/// The rules every backend's schema follows: each table classified, and the rows that always
/// belong to one reader placed with the reader.
fn placement_violations(catalog: &Catalog) -> Vec<String> {
    let mut found = Vec::new();
    for (table, columns) in &catalog.columns {
        let Some(place) = placement(table) else {
            found.push(format!("table {table} has no placement: {WHAT_TO_DO}"));
            continue;
        };
        let subscriber = columns.get("subscriber_id");
        match place {
            Distributed { column, group } => {
                match columns.get(column) {
                    Some(true) => {}
                    Some(false) => found.push(format!(
                        "{table}.{column} distributes the table and may not be empty: make it NOT NULL"
                    )),
                    None => found.push(format!("{table} has no column {column} to distribute by")),
                }
                if group != "subscribers" && subscriber == Some(&true) {
                    found.push(format!(
                        "every {table} row belongs to a subscriber: distribute it by subscriber_id"
                    ));
                }
            }
            Reference | Local => {
                if subscriber.is_some() {
                    found.push(format!(
                        "{table} has a subscriber_id but is not distributed: {WHAT_TO_DO}"
                    ));
                }
            }
        }
    }
    for (table, _) in TABLES {
        if !catalog.columns.contains_key(*table) {
            found.push(format!(
                "TABLES names {table}, which the migrations do not create: remove it there and in README"
            ));
        }
    }
    found
}

/// The rules a distributed PostgreSQL engine (Citus) puts on keys, on top of the placements.
fn key_violations(catalog: &Catalog) -> Vec<String> {
    let mut found = Vec::new();
    let column_of = |table: &str| match placement(table) {
        Some(Distributed { column, .. }) => Some(column),
        _ => None,
    };
    for (table, column, kind) in &catalog.generated {
        if column_of(table.as_str()).is_some() && kind != "bigint" {
            found.push(format!(
                "{table}.{column} is generated as {kind}; identity columns of distributed tables are BIGINT"
            ));
        }
    }
    for (table, index, columns) in &catalog.unique {
        let Some(column) = column_of(table.as_str()) else {
            continue;
        };
        let global = GLOBAL_KEYS
            .iter()
            .any(|(t, i, _)| *t == table.as_str() && *i == index.as_str());
        let includes = columns.iter().any(|c| c == column);
        match (includes, global) {
            (false, false) => found.push(format!(
                "unique key {index} on {table} ({}) must include {column}: a shard only sees its own rows",
                columns.join(", ")
            )),
            (true, true) => found.push(format!(
                "{index} now includes {column}: remove it from GLOBAL_KEYS and from README"
            )),
            _ => {}
        }
    }
    for (table, index, _) in GLOBAL_KEYS {
        if !catalog
            .unique
            .iter()
            .any(|(t, i, _)| t == *table && i == *index)
        {
            found.push(format!(
                "GLOBAL_KEYS names {index} on {table}, which no longer exists: remove it there and in README"
            ));
        }
    }
    for fk in &catalog.foreign {
        let (from, to) = (placement(&fk.from), placement(&fk.to));
        let name = &fk.name;
        match (from, to) {
            (
                Some(Distributed { column, group }),
                Some(Distributed {
                    column: target,
                    group: to_group,
                }),
            ) => {
                if group != to_group {
                    found.push(format!(
                        "{name}: {} and {} are distributed apart; a foreign key joins tables of one group only",
                        fk.from, fk.to
                    ));
                    continue;
                }
                let aligned = fk
                    .columns
                    .iter()
                    .zip(&fk.referenced)
                    .any(|(c, r)| c == column && r == target);
                if !aligned {
                    found.push(format!(
                        "{name}: the foreign key from {} ({}) to {} ({}) must pair {column} with {target}",
                        fk.from,
                        fk.columns.join(", "),
                        fk.to,
                        fk.referenced.join(", ")
                    ));
                }
                if !matches!(fk.on_update.as_str(), "a" | "r") {
                    found.push(format!(
                        "{name}: ON UPDATE may only be NO ACTION or RESTRICT between distributed tables"
                    ));
                }
                if matches!(fk.on_delete.as_str(), "n" | "d") {
                    found.push(format!(
                        "{name}: ON DELETE SET NULL/SET DEFAULT is refused when the key holds {column}"
                    ));
                }
            }
            (Some(Distributed { .. }), Some(Reference)) => {}
            (Some(Reference), Some(Reference)) => {}
            (Some(Local), Some(Reference | Local)) => {}
            _ => found.push(format!(
                "{name}: {} ({}) cannot refer to {} ({}); only a distributed or local table may \
                 refer to a reference table, and a distributed table to one of its group",
                fk.from,
                kind(from),
                fk.to,
                kind(to)
            )),
        }
    }
    found
}

async fn postgres_catalog(url: &str) -> Catalog {
    let pool = sqlx::PgPool::connect(url).await.expect("connect");
    let mut catalog = Catalog::default();
    let columns: Vec<(String, String, bool, String, bool)> = sqlx::query_as(
        "SELECT table_name::text, column_name::text, is_nullable = 'NO', data_type::text, \
         is_identity = 'YES' OR COALESCE(column_default LIKE 'nextval(%', FALSE) \
         FROM information_schema.columns c JOIN information_schema.tables t USING (table_schema, table_name) \
         WHERE table_schema = current_schema() AND t.table_type = 'BASE TABLE'",
    )
    .fetch_all(&pool)
    .await
    .expect("columns");
    for (table, column, not_null, kind, generated) in columns {
        if generated {
            catalog
                .generated
                .push((table.clone(), column.clone(), kind));
        }
        catalog
            .columns
            .entry(table)
            .or_default()
            .insert(column, not_null);
    }
    catalog.unique = sqlx::query_as(
        "SELECT t.relname::text, i.relname::text, ARRAY(SELECT a.attname::text \
         FROM unnest(x.indkey) WITH ORDINALITY k(attnum, n) \
         JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.attnum ORDER BY k.n) \
         FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid \
         WHERE x.indisunique AND t.relnamespace = current_schema()::text::regnamespace",
    )
    .fetch_all(&pool)
    .await
    .expect("unique keys");
    catalog.foreign = sqlx::query_as(
        "SELECT c.conname::text AS name, f.relname::text AS \"from\", \
         ARRAY(SELECT a.attname::text FROM unnest(c.conkey) WITH ORDINALITY k(attnum, n) \
               JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum ORDER BY k.n) \
               AS columns, \
         t.relname::text AS \"to\", \
         ARRAY(SELECT a.attname::text FROM unnest(c.confkey) WITH ORDINALITY k(attnum, n) \
               JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.attnum ORDER BY k.n) \
               AS referenced, \
         c.confupdtype::text AS on_update, c.confdeltype::text AS on_delete \
         FROM pg_constraint c JOIN pg_class f ON f.oid = c.conrelid JOIN pg_class t ON t.oid = c.confrelid \
         WHERE c.contype = 'f' AND c.connamespace = current_schema()::text::regnamespace",
    )
    .fetch_all(&pool)
    .await
    .expect("foreign keys");
    pool.close().await;
    catalog
}

async fn sqlite_catalog(url: &str) -> Catalog {
    let pool = sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(1)
        .connect(url)
        .await
        .expect("connect");
    // The logs file beside the database holds the audit log and the plugins' failures.
    let path = url.strip_prefix("sqlite://").expect("a sqlite:// url");
    let logs = masthead::store::sqlite_logs_file(std::path::Path::new(path));
    sqlx::query("ATTACH DATABASE ?1 AS logs")
        .bind(logs.display().to_string())
        .execute(&pool)
        .await
        .expect("attach the logs file");
    let columns: Vec<(String, String, bool)> = sqlx::query_as(
        "SELECT m.name, p.name, p.\"notnull\" OR p.pk > 0 FROM \
         (SELECT name, type FROM main.sqlite_master UNION ALL \
          SELECT name, type FROM logs.sqlite_master) m \
         JOIN pragma_table_info(m.name) p WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%'",
    )
    .fetch_all(&pool)
    .await
    .expect("columns");
    let mut catalog = Catalog::default();
    for (table, column, not_null) in columns {
        catalog
            .columns
            .entry(table)
            .or_default()
            .insert(column, not_null);
    }
    pool.close().await;
    catalog
}

fn assert_none(found: Vec<String>) {
    assert!(
        found.is_empty(),
        "the schema is not distributable:\n- {}",
        found.join("\n- ")
    );
}

#[tokio::test]
async fn every_table_is_placed_and_subscriber_rows_are_keyed_by_the_subscriber() {
    // Arrange: a fresh database, migrated as the service migrates it.
    let database = empty_database().await;
    masthead::store::open(&database.url).await.expect("migrate");

    // Act
    let catalog = if postgres_server().is_some() {
        postgres_catalog(&database.url).await
    } else {
        sqlite_catalog(&database.url).await
    };

    // Assert: a SQLite file is never distributed, but its tables are placed like PostgreSQL's
    // so that both schemas keep one shape; the keys are checked where they matter.
    let mut found = placement_violations(&catalog);
    if postgres_server().is_some() {
        found.extend(key_violations(&catalog));
    }
    assert_none(found);
}

#[test]
fn the_rules_catch_a_table_nobody_placed_and_a_key_without_the_subscriber() {
    let mut catalog = Catalog::default();
    for (table, place) in TABLES {
        let column = match place {
            Distributed { column, .. } => *column,
            _ => "id",
        };
        let mut columns = BTreeMap::from([(column.to_owned(), true)]);
        if *place == BY_SUBSCRIBER {
            columns.insert("id".into(), true);
        }
        catalog.columns.insert((*table).into(), columns);
    }
    for (table, index, _) in GLOBAL_KEYS {
        catalog
            .unique
            .push(((*table).into(), (*index).into(), vec!["key".into()]));
    }
    assert_none(placement_violations(&catalog));
    assert_none(key_violations(&catalog));

    catalog.columns.insert(
        "gifts".into(),
        BTreeMap::from([("subscriber_id".into(), true)]),
    );
    catalog
        .unique
        .push(("terms".into(), "terms_pkey".into(), vec!["id".into()]));
    catalog.foreign.push(ForeignKey {
        name: "holds_term_id_fkey".into(),
        from: "holds".into(),
        columns: vec!["term_id".into()],
        to: "terms".into(),
        referenced: vec!["id".into()],
        on_update: "c".into(),
        on_delete: "a".into(),
    });
    let placed = placement_violations(&catalog);
    assert_eq!(placed.len(), 1, "{placed:?}");
    assert!(placed[0].contains("gifts has no placement: classify it in TABLES"));
    let keys = key_violations(&catalog).join("\n");
    assert!(keys.contains("terms_pkey on terms (id) must include subscriber_id"));
    assert!(keys.contains("must pair subscriber_id with subscriber_id"));
    assert!(keys.contains("ON UPDATE may only be NO ACTION"));
}

/// The statements that distribute the schema, in order.
fn distribution_statements() -> Vec<String> {
    let mut statements = Vec::new();
    let mut anchors = BTreeSet::new();
    for (table, place) in TABLES {
        statements.push(match place {
            Reference => format!("SELECT create_reference_table('{table}');"),
            Distributed { column, group } if anchors.insert(*group) => {
                if *group == "subscribers" {
                    format!("SELECT create_distributed_table('{table}', '{column}');")
                } else {
                    format!(
                        "SELECT create_distributed_table('{table}', '{column}', colocate_with => 'none');"
                    )
                }
            }
            Distributed { column, group } => format!(
                "SELECT create_distributed_table('{table}', '{column}', colocate_with => '{group}');"
            ),
            Local => continue,
        });
    }
    statements
}

#[test]
fn the_readme_distributes_every_table_in_order() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))
        .expect("README.md");
    let block = distribution_statements().join("\n");
    assert!(
        readme.contains(&block),
        "README \"Distributing the database\" must list, in this order:\n{block}"
    );
    for (_, index, _) in GLOBAL_KEYS {
        assert!(
            readme.contains(index),
            "README must say what to do about {index}"
        );
    }
}

#[tokio::test]
async fn a_merge_moves_orders_renewals_holds_and_compensations_with_the_reader() {
    // Arrange: the duplicate holds a renewed subscription, a hold and a compensation; the
    // keys tying them together carry its number.
    let app = spawn_app().await;
    publication(&app, "DAILY", &[("2024-01-01", 20_000)]).await;
    let kept = reader(&app, "Kept").await;
    let duplicate = reader(&app, "Duplicate").await;
    app.set_today("2024-01-01");
    let order = subscribe(&app, &duplicate, print_year("DAILY", "2024-01-01")).await;
    let term = order["terms"][0]["id"].as_i64().expect("term id");
    let held = app
        .post(
            &format!("/api/v1/subscribers/{duplicate}/terms/{term}/holds"),
            &app.staff,
            &json!({ "from": "2024-07-01", "to": "2024-07-07" }),
        )
        .await;
    assert_eq!(held.status(), StatusCode::CREATED);
    let complaint: Value = app
        .post(
            "/api/v1/interactions",
            &app.staff,
            &json!({ "subscriber": duplicate, "kind": "complaint", "channel": "phone",
                     "category": "missed_delivery", "text": "No paper today" }),
        )
        .await
        .json()
        .await
        .expect("json");
    let resolved = app
        .post(
            &format!("/api/v1/interactions/{}/steps", complaint["id"]),
            &app.staff,
            &json!({ "action": "resolve", "resolution": "a day added",
                     "compensation": { "kind": "extension", "term": term, "days": 1,
                                       "reason": "missed delivery" } }),
        )
        .await;
    assert_eq!(resolved.status(), StatusCode::OK);
    app.set_today("2024-12-15");
    assert_eq!(
        renew(&app, &duplicate, "before-merge", None).await.status(),
        StatusCode::CREATED
    );
    let mut before = history(&app, &duplicate).await;
    for compensation in before["compensations"]
        .as_array_mut()
        .expect("compensations")
    {
        compensation["subscriber"] = json!(kept);
    }

    // Act
    let merged = app
        .post(
            &format!("/api/v1/subscribers/{kept}/merge"),
            &app.staff,
            &json!({ "source": duplicate }),
        )
        .await;

    // Assert: the kept number holds the whole history, unchanged, and renews from it.
    assert_eq!(merged.status(), StatusCode::OK);
    let after = history(&app, &kept).await;
    assert_eq!(after["titles"], before["titles"]);
    assert_eq!(after["compensations"], before["compensations"]);
    assert_eq!(
        after["titles"][0]["terms"].as_array().map(Vec::len),
        Some(2)
    );
    let linked: Value = app
        .get(
            &format!("/api/v1/interactions/{}", complaint["id"]),
            &app.staff,
        )
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(linked["subscriber"], kept.as_str());
    app.set_today("2025-12-15");
    let renewal = renew(&app, &kept, "after-merge", None).await;
    assert_eq!(renewal.status(), StatusCode::CREATED);
}
