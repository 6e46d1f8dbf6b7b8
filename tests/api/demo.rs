//! `masthead demo-data`: a generated publisher that loads cleanly, twice, and the same seed
//! writes the same files.

use clap::Parser;
use masthead::cli::{self, Cli};
use masthead::store::SubscriberFilter;

async fn run(url: &str, rest: &[&str]) -> anyhow::Result<()> {
    let mut all = vec!["masthead", "--database-url", url];
    all.extend_from_slice(rest);
    let parsed = Cli::parse_from(all);
    let config = parsed.config()?;
    cli::run(parsed, config).await
}

#[tokio::test]
async fn demo_data_loads_a_whole_publisher_and_a_second_run_changes_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("demo.db").display());

    run(&url, &["demo-data", "--subscribers", "300", "--seed", "4"])
        .await
        .expect("loads without a rejected row");
    run(&url, &["demo-data", "--subscribers", "300", "--seed", "4"])
        .await
        .expect("loads again, matching every row");

    let store = masthead::store::open(&url).await.expect("open");
    let all = SubscriberFilter {
        limit: 500,
        ..SubscriberFilter::default()
    };
    let readers = store.list_subscribers(&all).await.expect("list");
    assert!(readers.len() >= 300, "{} readers", readers.len());
    assert_eq!(store.list_publications().await.expect("titles").len(), 4);
    let terms = store.list_terms(readers[0].number).await.expect("terms");
    assert!(!terms.is_empty());
}

#[tokio::test]
async fn the_same_seed_writes_the_same_files() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("unused.db").display());
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    for folder in [&a, &b] {
        let folder = folder.display().to_string();
        run(
            &url,
            &[
                "demo-data",
                "--subscribers",
                "200",
                "--seed",
                "9",
                "--csv",
                &folder,
            ],
        )
        .await
        .expect("writes");
    }
    for file in ["subscribers.csv", "terms.csv"] {
        let read = |f: &std::path::Path| std::fs::read(f.join(file)).expect("read");
        assert_eq!(read(&a), read(&b), "{file}");
    }
}

#[tokio::test]
async fn terms_gathered_a_row_per_reader_read_the_same_as_one_reader_at_a_time() {
    // The plugin views and the club recomputation read terms gathered into JSON per reader;
    // every field must come back as the card's own read gives it, on either backend.
    let app = crate::helpers::spawn_app().await;
    let url = app.config.database_url.clone().expect("a database url");
    run(&url, &["demo-data", "--subscribers", "150", "--seed", "11"])
        .await
        .expect("demo data");
    let store = masthead::store::open(&url).await.expect("open");
    let all = SubscriberFilter {
        limit: 500,
        ..SubscriberFilter::default()
    };
    // A renewal (a term that renews another) and its cancellation, made over the API.
    let readers = store.list_subscribers(&all).await.expect("list");
    let number = readers[0].number.to_string();
    let renewal = app
        .request(
            reqwest::Method::POST,
            &format!("/api/v1/subscribers/{number}/renewals"),
            &app.staff,
        )
        .header("Idempotency-Key", "gathered-terms")
        .send()
        .await
        .expect("renew");
    assert_eq!(renewal.status(), reqwest::StatusCode::CREATED);
    let renewal: serde_json::Value = renewal.json().await.expect("json");
    let term = &renewal["terms"][0];
    let cancel = serde_json::json!({
        "effective": term["start"], "reason": "Changed their mind", "refund": 0
    });
    let cancelled = app
        .post(
            &format!(
                "/api/v1/subscribers/{number}/terms/{}/cancellation",
                term["id"]
            ),
            &app.staff,
            &cancel,
        )
        .await;
    assert_eq!(cancelled.status(), reqwest::StatusCode::OK);

    let mut one_by_one = std::collections::BTreeMap::new();
    for reader in readers {
        for mut term in store.list_terms(reader.number).await.expect("terms") {
            term.holds.clear();
            one_by_one.insert(term.id, term);
        }
    }
    // Read from the kept chunks, as a pass reads them once it has brought them up to date.
    store.bring_facts_up_to_date().await.expect("kept chunks");
    let page = store
        .readership()
        .await
        .expect("snapshot")
        .page(0, i64::MAX, false)
        .await
        .expect("page");
    let gathered: Vec<_> = page
        .decode()
        .expect("readers")
        .into_iter()
        .flat_map(|r| r.terms.into_iter().map(move |t| (r.row.sequence, t)))
        .collect();
    assert!(
        gathered
            .windows(2)
            .all(|w| (w[0].0, w[0].1.start) <= (w[1].0, w[1].1.start)),
        "readers in order, each reader's terms oldest first"
    );
    let gathered: std::collections::BTreeMap<_, _> =
        gathered.into_iter().map(|(_, t)| (t.id, t)).collect();
    assert_eq!(gathered.len(), one_by_one.len());
    // Kept without discounts or the reason and author of a cancellation.
    for (id, term) in &one_by_one {
        let mut kept = term.clone();
        kept.discounts.clear();
        if let Some(c) = kept.cancellation.as_mut() {
            c.reason.clear();
            c.recorded_by.clear();
        }
        assert_eq!(gathered.get(id), Some(&kept), "term {id}");
    }
    let terms = || one_by_one.values();
    assert!(terms().any(|t| t.auto_renew) && terms().any(|t| !t.auto_renew));
    assert!(terms().any(|t| !t.discounts.is_empty()), "no discount read");
    assert!(terms().any(|t| t.renews.is_some()), "no renewal read");
    assert!(
        terms().any(|t| t.cancellation.is_some()),
        "no cancellation read"
    );
}
