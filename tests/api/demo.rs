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
