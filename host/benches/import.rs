//! Import benchmark: generates a circulation file (N subscribers, 3 terms each), times
//! `masthead import` of it next to the `sqlite3` shell's own `.import` of the same two files
//! into bare tables, measured in the same run.
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

/// The `sqlite3` shell's own CSV import of both files into bare tables.
fn sqlite_shell_import(dir: &Path) -> Duration {
    let db = dir.join("baseline.db");
    let _ = std::fs::remove_file(&db);
    let script = format!(
        ".mode csv\n.import {} subscribers\n.import {} terms\n",
        dir.join("subscribers.csv").display(),
        dir.join("terms.csv").display()
    );
    let started = Instant::now();
    let mut shell = Command::new("sqlite3")
        .arg(&db)
        .stdin(Stdio::piped())
        .spawn()
        .expect("run the sqlite3 shell (apt install sqlite3)");
    if let Some(mut stdin) = shell.stdin.take() {
        stdin.write_all(script.as_bytes()).expect("send the script");
    }
    let status = shell.wait().expect("sqlite3 finished");
    assert!(status.success(), "sqlite3 .import failed");
    started.elapsed()
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

    let url = std::env::var("BENCH_DATABASE_URL")
        .unwrap_or_else(|_| format!("sqlite://{}", dir.path().join("masthead.db").display()));
    let store = store::open(&url).await?;
    for code in TITLES {
        let draft: PublicationDraft = serde_json::from_value(serde_json::json!({
            "code": code, "title": code, "kind": "daily",
            "formats": ["print", "digital"], "term_months": [12],
        }))?;
        store.create_publication(&draft, chrono::Utc::now()).await?;
    }
    let importer = Importer::new(
        Arc::clone(&store),
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
    Ok(())
}
