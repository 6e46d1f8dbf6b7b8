//! Registry benchmark: loads N generated subscribers in the import's batches, then measures card
//! reads and search-as-you-type against a `SELECT 1` round trip on the same pool.
//!
//! `cargo bench -p masthead --bench registry` (defaults: 1,000,000 subscribers, SQLite in a
//! temp folder). `BENCH_SUBSCRIBERS=N` and `BENCH_DATABASE_URL=postgres://...` (an empty
//! database) change them. A database that already holds the N readers is reused as it is.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use masthead::domain::subscriber::{Address, AddressKind, EmailEntry, PhoneEntry};
use masthead::domain::{CountryCode, Profile, ProfileDraft, Role, SubscriberNumber, search};
use masthead::services::audit::AuditLog;
use masthead::services::subscribers::{Caller, Registry};
use masthead::store::{Actor, AuditEntry, ImportedSubscriber, Store, SubscriberBatch};

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
const SUFFIX: &[&str] = &[
    "", "son", "ford", "ley", "er", "ton", "by", "wick", "ova", "ski",
];

/// A small deterministic generator (SplitMix64), so every run loads the same readers.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next() % items.len() as u64) as usize]
    }
}

fn reader(i: u64, rng: &mut Rng, home: CountryCode) -> Profile {
    let family = rng.pick(FAMILY);
    let family = if family.is_ascii() {
        format!("{family}{}", rng.pick(SUFFIX))
    } else {
        family.to_owned()
    };
    let draft = ProfileDraft {
        given_name: Some(rng.pick(GIVEN).to_owned()),
        family_name: Some(family),
        emails: vec![EmailEntry {
            address: format!("reader{i}@example.com"),
            label: None,
        }],
        phones: vec![PhoneEntry {
            number: format!("+44 7400 {:06}", i % 1_000_000),
            label: None,
        }],
        addresses: vec![Address {
            kind: AddressKind::Delivery,
            lines: vec![format!("{} High Street", 1 + i % 200)],
            postal_code: format!("AB{} {}CD", 1 + i % 99, i % 10),
            city: "Aberdeen".into(),
            region: Some("Scotland".into()),
            country: None,
        }],
        ..ProfileDraft::default()
    };
    Profile::parse(draft, home, Utc::now().date_naive()).expect("generated readers are valid")
}

fn actor() -> Actor {
    Actor {
        key_id: None,
        name: "benchmark".into(),
        role: Role::Admin,
    }
}

struct Stats {
    p50: Duration,
    p99: Duration,
}

fn stats(mut samples: Vec<Duration>) -> Stats {
    samples.sort();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q) as usize];
    Stats {
        p50: at(0.50),
        p99: at(0.99),
    }
}

fn micros(d: Duration) -> String {
    format!("{:.0} µs", d.as_secs_f64() * 1e6)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let count: u64 = std::env::var("BENCH_SUBSCRIBERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir()?;
    let url = std::env::var("BENCH_DATABASE_URL")
        .unwrap_or_else(|_| format!("sqlite://{}", dir.path().join("bench.db").display()));
    let store: Arc<dyn Store> = masthead::store::open(&url).await?;
    let home = CountryCode::parse("GB").map_err(anyhow::Error::msg)?;

    let first = 100_000i64;
    let last = SubscriberNumber::from_sequence(first + count as i64 - 1);
    if store.get_subscriber(last).await?.is_some() {
        println!(
            "backend {} | reusing the {count} subscribers already loaded",
            store.backend()
        );
    } else {
        load(&store, count, home).await?;
    }
    measure(store, count, first, home).await
}

/// Loads through the import's batched write (5,000 readers a transaction, search terms
/// included), the path by which a publisher's readers arrive in bulk.
async fn load(store: &Arc<dyn Store>, count: u64, home: CountryCode) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut rng = Rng(42);
    let mut i = 0;
    while i < count {
        let end = (i + 5_000).min(count);
        let batch = SubscriberBatch {
            new: (i..end)
                .map(|n| {
                    let profile = reader(n, &mut rng, home);
                    ImportedSubscriber {
                        number: None,
                        legacy_id: Some(format!("bench-{n}")),
                        terms: search::terms_for(&profile),
                        profile,
                    }
                })
                .collect(),
            tag: Vec::new(),
        };
        let audit = AuditEntry {
            at: Utc::now(),
            actor: actor(),
            action: "subscriber.import",
            subscriber: None,
            request_id: None,
            detail: serde_json::json!({ "rows": end - i }),
        };
        store.import_subscribers(&batch, audit, None, true).await?;
        i = end;
    }
    let load = started.elapsed();
    println!(
        "backend {} | {count} subscribers loaded in {:.1} s ({:.0}/s, batches of 5,000)",
        store.backend(),
        load.as_secs_f64(),
        count as f64 / load.as_secs_f64()
    );
    Ok(())
}

async fn measure(
    store: Arc<dyn Store>,
    count: u64,
    first: i64,
    home: CountryCode,
) -> anyhow::Result<()> {
    let (audit, _writer) = AuditLog::start(Arc::clone(&store));
    let registry = Registry::new(Arc::clone(&store), audit, home);
    let caller = Caller {
        actor: actor(),
        request_id: None,
        now: chrono::Utc::now(),
    };
    let mut rng = Rng(7);
    let iterations = 5_000;

    let mut baseline = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        let t = Instant::now();
        store.ping().await?;
        baseline.push(t.elapsed());
    }
    let baseline = stats(baseline);
    println!("\n| what | p50 | p99 | p50 vs SELECT 1 |\n| --- | --- | --- | --- |");
    println!(
        "| baseline: `SELECT 1` on the read pool | {} | {} | 1.0x |",
        micros(baseline.p50),
        micros(baseline.p99)
    );

    let mut card = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        let number = SubscriberNumber::from_sequence(first + (rng.next() % count) as i64);
        let t = Instant::now();
        registry.get(&caller, number).await?;
        card.push(t.elapsed());
    }
    let card = stats(card);
    println!(
        "| card by number (service + store, audited) | {} | {} | {:.1}x |",
        micros(card.p50),
        micros(card.p99),
        card.p50.as_secs_f64() / baseline.p50.as_secs_f64()
    );

    let some_number = SubscriberNumber::from_sequence(first + count as i64 / 2).to_string();
    let queries = [
        ("name prefix, 1 letter", "s".to_owned()),
        ("name prefix, 3 letters", "smi".to_owned()),
        ("whole name word", "thornbury".to_owned()),
        ("two name words", "anna smi".to_owned()),
        ("Cyrillic prefix", "иван".to_owned()),
        ("Chinese name", "王小".to_owned()),
        ("subscriber number", some_number),
        ("email", format!("reader{}@example.com", count / 3)),
        ("phone, national form", "07400 000123".to_owned()),
        ("postal code prefix", "AB12".to_owned()),
    ];
    for (label, query) in queries {
        let mut samples = Vec::with_capacity(1_000);
        let mut hits = 0;
        for _ in 0..1_000 {
            let t = Instant::now();
            hits = registry.search(&caller, &query, 20).await?.len();
            samples.push(t.elapsed());
        }
        let s = stats(samples);
        println!(
            "| search: {label} (`{query}`, {hits} hits) | {} | {} | {:.1}x |",
            micros(s.p50),
            micros(s.p99),
            s.p50.as_secs_f64() / baseline.p50.as_secs_f64()
        );
    }
    Ok(())
}
