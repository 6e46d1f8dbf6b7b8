//! Import benchmark: generates a circulation file (N subscribers, 3 terms each), times
//! `masthead import` of it next to the `sqlite3` shell's own `.import` of the same two files
//! into bare tables, measured in the same run.
//!
//! On SQLite it also measures the schema floor: the `sqlite3` shell copying the rows masthead
//! wrote, already formed, into an empty database with the full schema, in one transaction per
//! table. No import on this schema can be faster than SQLite writing its rows and indexes.
//!
//! `cargo bench -p masthead --bench import` (default 1,000,000 subscribers on SQLite in a temp
//! folder). `BENCH_SUBSCRIBERS=N` changes the size; `BENCH_DATABASE_URL=postgres://...` (an
//! empty database) imports into PostgreSQL instead; `BENCH_BATCH` sets rows per batch.

use std::io::{BufWriter, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use masthead::domain::CountryCode;
use masthead::domain::Role;
use masthead::domain::money::Currency;
use masthead::domain::publication::PublicationDraft;
use masthead::services::clock::SystemClock;
use masthead::services::legacy::{ImportObserver, ImportOptions, Importer, Rejection};
use masthead::store::{self, Actor};

const GIVEN: &[&str] = &[
    "Anna",
    "Maria",
    "Olga",
    "Ivan",
    "Peter",
    "John",
    "Margaret",
    "Thomas",
    "Sophie",
    "José",
    "Zoë",
    "Ингрид",
    "Алексей",
    "Наталья",
    "小明",
    "伟",
    "芳",
    "Chloé",
    "Lars",
    "Fatima",
];
const FAMILY: &[&str] = &[
    "Smith",
    "Jones",
    "Thornbury",
    "Müller",
    "García",
    "Иванов",
    "Петрова",
    "Соколова",
    "王",
    "李",
    "张",
    "Nakamura",
    "O'Neill",
    "Kowalski",
    "Dubois",
    "Rossi",
    "Hansen",
    "Novak",
    "Silva",
    "Brown",
];
const CITIES: &[(&str, &str)] = &[
    ("London", "Greater London"),
    ("Manchester", "Greater Manchester"),
    ("Leeds", "West Yorkshire"),
    ("Bristol", "Bristol"),
    ("Glasgow", "Scotland"),
];
const TITLES: &[&str] = &["DAILY", "SUNDAY", "WEEKLY", "MAG"];

/// Writes the two files; every reader is distinct by email, phone and name with postcode.
fn generate(dir: &Path, n: usize) -> std::io::Result<()> {
    let mut readers = BufWriter::new(std::fs::File::create(dir.join("subscribers.csv"))?);
    writeln!(
        readers,
        "legacy_id,kind,given_name,family_name,email,phone,street,postal_code,city,region,country,birth_date"
    )?;
    let mut terms = BufWriter::new(std::fs::File::create(dir.join("terms.csv"))?);
    writeln!(
        terms,
        "legacy_id,publication,format,months,start,list_price,price_paid,channel,payment_method,auto_renew"
    )?;
    for i in 0..n {
        let given = GIVEN[i % GIVEN.len()];
        let family = FAMILY[(i / GIVEN.len()) % FAMILY.len()];
        let (city, region) = CITIES[i % CITIES.len()];
        let district = i / (GIVEN.len() * FAMILY.len());
        writeln!(
            readers,
            "L{i},person,{given},{family},reader{i}@example.org,074{:08},{} High Street,\
             AB{} {}CD,{city},{region},GB,{}-{:02}-15",
            i,
            i % 200 + 1,
            district / 10,
            district % 10,
            1940 + i % 60,
            i % 12 + 1
        )?;
        let title = TITLES[i % TITLES.len()];
        for year in 0..3 {
            let paid = 24_000 - (i % 5) as i64 * 500;
            writeln!(
                terms,
                "L{i},{title},print,12,{}-{:02}-01,24000,{paid},phone,direct_debit,{}",
                2021 + year,
                i % 12 + 1,
                year == 2
            )?;
        }
    }
    readers.flush()?;
    terms.flush()
}

/// Runs a script through the `sqlite3` shell on `db`; returns how long the shell took.
fn sqlite_shell(db: &Path, script: &str) -> Duration {
    let started = Instant::now();
    let mut shell = Command::new("sqlite3")
        .arg(db)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("run the sqlite3 shell (apt install sqlite3)");
    if let Some(mut stdin) = shell.stdin.take() {
        stdin.write_all(script.as_bytes()).expect("send the script");
    }
    let status = shell.wait().expect("sqlite3 finished");
    assert!(status.success(), "the sqlite3 shell failed on: {script}");
    started.elapsed()
}

/// The `sqlite3` shell's own CSV import of both files into bare tables.
fn sqlite_shell_import(dir: &Path) -> Duration {
    let db = dir.join("baseline.db");
    let _ = std::fs::remove_file(&db);
    let script = format!(
        ".bail on\n.mode csv\n.import {} subscribers\n.import {} terms\n",
        dir.join("subscribers.csv").display(),
        dir.join("terms.csv").display()
    );
    sqlite_shell(&db, &script)
}

/// The schema floor: the rows masthead wrote into `imported`, copied by the `sqlite3` shell
/// into `empty` (migrated, with the same catalogue), one transaction per table, with the
/// connection settings masthead uses. Only the copy is timed; the staging copy it reads from
/// (a plain file: readers and terms in id order, search terms in key order within each run of
/// `batch` ids, as the import writes them) is made first.
fn schema_floor(
    dir: &Path,
    imported: &Path,
    empty: &Path,
    batch: usize,
) -> [(&'static str, Duration); 3] {
    let staging = dir.join("staging.db");
    let _ = std::fs::remove_file(&staging);
    sqlite_shell(
        &staging,
        &format!(
            ".bail on\n\
             ATTACH '{}' AS m;\n\
             CREATE TABLE subscribers AS SELECT * FROM m.subscribers ORDER BY id;\n\
             CREATE TABLE search_terms AS SELECT * FROM m.search_terms \
             ORDER BY subscriber_id / {batch}, kind, term, subscriber_id;\n\
             CREATE TABLE terms AS SELECT * FROM m.terms ORDER BY id;\n",
            imported.display()
        ),
    );
    let steps = ["subscribers", "search_terms", "terms"].map(|table| {
        let took = sqlite_shell(
            empty,
            &format!(
                ".bail on\n\
                 PRAGMA synchronous = NORMAL;\n\
                 PRAGMA foreign_keys = ON;\n\
                 PRAGMA cache_size = -65536;\n\
                 PRAGMA temp_store = memory;\n\
                 ATTACH '{}' AS st;\n\
                 BEGIN;\n\
                 INSERT INTO {table} SELECT * FROM st.{table};\n\
                 COMMIT;\n",
                staging.display()
            ),
        );
        (table, took)
    });
    let _ = std::fs::remove_file(&staging);
    steps
}

/// A store with the bench's titles in its catalogue.
async fn open_with_titles(url: &str) -> anyhow::Result<Arc<dyn store::Store>> {
    let store = store::open(url).await?;
    for code in TITLES {
        let draft: PublicationDraft = serde_json::from_value(serde_json::json!({
            "code": code, "title": code, "kind": "daily",
            "formats": ["print", "digital"], "term_months": [12],
        }))?;
        store.create_publication(&draft, chrono::Utc::now()).await?;
    }
    Ok(store)
}

struct Count(u64);

impl ImportObserver for Count {
    fn rejected(&mut self, rejection: Rejection) {
        if self.0 < 5 {
            eprintln!("rejected line {}: {}", rejection.line, rejection.reason);
        }
        self.0 += 1;
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let n: usize = std::env::var("BENCH_SUBSCRIBERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let batch_size = std::env::var("BENCH_BATCH")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5_000);
    let dir = tempfile::tempdir()?;
    let started = Instant::now();
    generate(dir.path(), n)?;
    println!(
        "generated {n} subscribers and {} terms in {:.1} s ({} MB)",
        n * 3,
        started.elapsed().as_secs_f64(),
        (std::fs::metadata(dir.path().join("subscribers.csv"))?.len()
            + std::fs::metadata(dir.path().join("terms.csv"))?.len())
            / 1_000_000
    );

    let baseline = sqlite_shell_import(dir.path());
    println!(
        "sqlite3 shell .import (bare tables):  {:>7.2} s",
        baseline.as_secs_f64()
    );

    let own_database = std::env::var("BENCH_DATABASE_URL").ok();
    let masthead_db = dir.path().join("masthead.db");
    let url = own_database
        .clone()
        .unwrap_or_else(|| format!("sqlite://{}", masthead_db.display()));
    let store = open_with_titles(&url).await?;
    let importer = Importer::new(
        Arc::clone(&store),
        Arc::new(SystemClock),
        CountryCode::parse("GB").map_err(anyhow::Error::msg)?,
        Currency::parse("GBP").map_err(anyhow::Error::msg)?,
        Actor {
            key_id: None,
            name: "bench".into(),
            role: Role::Admin,
        },
    );
    let options = ImportOptions {
        dry_run: false,
        batch_size,
    };
    let mut rejected = Count(0);
    let started = Instant::now();
    let readers = importer
        .import_subscribers(
            std::fs::File::open(dir.path().join("subscribers.csv"))?,
            &options,
            &mut rejected,
        )
        .await?;
    let readers_took = started.elapsed();
    let started = Instant::now();
    let terms = importer
        .import_terms(
            std::fs::File::open(dir.path().join("terms.csv"))?,
            &options,
            &mut rejected,
        )
        .await?;
    let terms_took = started.elapsed();
    anyhow::ensure!(
        readers.created == n as u64 && terms.created == 3 * n as u64 && rejected.0 == 0,
        "the generated file did not import cleanly: {readers:?} {terms:?}"
    );
    let total = readers_took + terms_took;
    println!(
        "masthead import ({}): subscribers {:.2} s ({} created), terms {:.2} s ({} created), \
         rejected {}",
        store.backend(),
        readers_took.as_secs_f64(),
        readers.created,
        terms_took.as_secs_f64(),
        terms.created,
        rejected.0
    );
    println!(
        "masthead import total:                {:>7.2} s = {:.2}x the sqlite3 shell",
        total.as_secs_f64(),
        total.as_secs_f64() / baseline.as_secs_f64()
    );
    store.close().await;
    if own_database.is_none() {
        let floor_db = dir.path().join("floor.db");
        open_with_titles(&format!("sqlite://{}", floor_db.display()))
            .await?
            .close()
            .await;
        let steps = schema_floor(dir.path(), &masthead_db, &floor_db, batch_size);
        for (table, took) in &steps {
            println!("schema floor: {table:<12} {:>7.2} s", took.as_secs_f64());
        }
        let floor: Duration = steps.iter().map(|(_, took)| *took).sum();
        println!(
            "schema floor (sqlite3 shell copying the same rows into the full schema): {:>7.2} s \
             = {:.2}x the sqlite3 shell; masthead = {:.2}x the floor",
            floor.as_secs_f64(),
            floor.as_secs_f64() / baseline.as_secs_f64(),
            total.as_secs_f64() / floor.as_secs_f64()
        );
    }
    Ok(())
}
