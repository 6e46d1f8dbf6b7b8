//! The `masthead` command line: keys created, listed and revoked straight in the database.

use clap::Parser;
use masthead::cli::{self, Cli};
use masthead::domain::Role;

#[tokio::test]
async fn keys_commands_create_list_and_revoke() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("cli.db").display());
    let args = |rest: &[&str]| {
        let mut all = vec!["masthead", "--database-url", url.as_str()];
        all.extend_from_slice(rest);
        Cli::parse_from(all)
    };
    let run = |parsed: Cli| async move {
        let config = parsed.config().expect("config");
        cli::run(parsed, config).await
    };

    run(args(&[
        "keys",
        "create",
        "--role",
        "staff",
        "--name",
        "reception desk",
    ]))
    .await
    .expect("create");
    run(args(&["keys", "list"])).await.expect("list");
    let store = masthead::store::open(&url).await.expect("open");
    let keys = store.list_api_keys().await.expect("keys");
    assert_eq!(keys.len(), 1);
    assert_eq!(
        (keys[0].role, keys[0].name.as_str()),
        (Role::Staff, "reception desk")
    );

    run(args(&["keys", "revoke", &keys[0].id.to_string()]))
        .await
        .expect("revoke");
    assert!(
        store.list_api_keys().await.expect("keys")[0]
            .revoked_at
            .is_some()
    );
    let missing = run(args(&["keys", "revoke", "999"]))
        .await
        .expect_err("no such key");
    assert!(missing.to_string().contains("masthead keys list"));
    let blank = run(args(&["keys", "create", "--role", "admin", "--name", " "])).await;
    assert!(blank.is_err());
}

#[tokio::test]
async fn a_fresh_install_writes_its_first_admin_key_to_a_private_file_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("fresh.db").display());
    let store = masthead::store::open(&url).await.expect("open");
    let path = masthead::services::keys::bootstrap_admin(
        &*store,
        &masthead::services::clock::SystemClock,
        dir.path(),
    )
    .await
    .expect("bootstrap")
    .expect("a key was made");
    let token = std::fs::read_to_string(&path).expect("read");
    assert!(masthead::domain::api_key::looks_like_token(token.trim()));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let again = masthead::services::keys::bootstrap_admin(
        &*store,
        &masthead::services::clock::SystemClock,
        dir.path(),
    )
    .await
    .expect("bootstrap");
    assert!(
        again.is_none(),
        "an install with an admin key gets no second one"
    );
}

#[tokio::test]
async fn plugin_commands_check_run_upload_enable_and_roll_back() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("plugins.db").display());
    let built = env!("WASM_TEST_PLUGINS");
    let example = format!("{}/../plugins/churn-risk", env!("CARGO_MANIFEST_DIR"));
    let churn = format!("{built}/churn_risk.wasm");
    let args = |rest: &[&str]| {
        let mut all = vec!["masthead", "--database-url", url.as_str(), "plugin"];
        all.extend_from_slice(rest);
        Cli::parse_from(all)
    };
    let run = |parsed: Cli| async move {
        let config = parsed.config().expect("config");
        cli::run(parsed, config).await
    };

    run(args(&["check", &example, "--component", &churn]))
        .await
        .expect("the example passes the checks");
    let future = format!("{built}/hostile_future.wasm");
    let refused = run(args(&["check", &example, "--component", &future]))
        .await
        .expect_err("built for another contract version");
    assert!(
        refused.to_string().contains("masthead:plugin@2.0.0"),
        "{refused}"
    );

    let input = dir.path().join("readers.json");
    std::fs::write(
        &input,
        r#"[{"number": 1000007, "status": "active", "tenure_days": 100,
             "terms": [{"publication": "DT", "start": "2026-01-01", "end": "2026-12-31"}]}]"#,
    )
    .expect("write input");
    let input = input.display().to_string();
    run(args(&[
        "run",
        &example,
        "--component",
        &churn,
        "--input",
        &input,
    ]))
    .await
    .expect("runs");
    let bad_setting = run(args(&[
        "run",
        &example,
        "--component",
        &churn,
        "--input",
        &input,
        "--set",
        "horizon_days=-1",
    ]))
    .await
    .expect_err("configure refuses it");
    assert!(
        bad_setting
            .to_string()
            .contains("horizon_days must be positive")
    );
    let spin = format!("{built}/hostile_spin.wasm");
    let manifest_dir = dir.path().join("spin");
    std::fs::create_dir(&manifest_dir).expect("dir");
    std::fs::write(
        manifest_dir.join("masthead-plugin.toml"),
        "id = \"spin\"\nversion = \"1.0.0\"\nkind = \"segmenter\"\napi_version = \"1.0.0\"\n[limits]\nfuel_per_batch = 1000000\n",
    )
    .expect("manifest");
    let stopped = run(args(&[
        "run",
        &manifest_dir.display().to_string(),
        "--component",
        &spin,
        "--input",
        &input,
    ]))
    .await
    .expect_err("the loop is stopped");
    assert!(stopped.to_string().contains("(fuel)"), "{stopped}");

    run(args(&["upload", &example, "--component", &churn]))
        .await
        .expect("upload");
    let v2 = dir.path().join("v2");
    std::fs::create_dir(&v2).expect("dir");
    let text =
        std::fs::read_to_string(format!("{example}/masthead-plugin.toml")).expect("manifest");
    std::fs::write(
        v2.join("masthead-plugin.toml"),
        text.replace("version = \"1.0.0\"\nkind", "version = \"1.1.0\"\nkind"),
    )
    .expect("manifest");
    run(args(&[
        "upload",
        &v2.display().to_string(),
        "--component",
        &churn,
    ]))
    .await
    .expect("upload v2");
    run(args(&["enable", "churn-risk"])).await.expect("enable");
    run(args(&["enable", "churn-risk", "--version", "1.0.0"]))
        .await
        .expect("roll back");
    run(args(&["list"])).await.expect("list");
    run(args(&["show", "churn-risk"])).await.expect("show");
    let store = masthead::store::open(&url).await.expect("open");
    let plugin = store
        .get_plugin("churn-risk")
        .await
        .expect("read")
        .expect("stored");
    assert!(plugin.enabled);
    assert_eq!(plugin.active_version.as_deref(), Some("1.0.0"));
    run(args(&[
        "disable",
        "churn-risk",
        "--reason",
        "end of season",
    ]))
    .await
    .expect("disable");
    run(args(&["delete", "churn-risk"])).await.expect("delete");
    assert!(
        store
            .get_plugin("churn-risk")
            .await
            .expect("read")
            .is_none()
    );
    let gone = run(args(&["show", "churn-risk"]))
        .await
        .expect_err("deleted");
    assert!(gone.to_string().contains("no plugin churn-risk"));
}

#[tokio::test]
async fn plugin_new_creates_a_crate_with_a_manifest_the_host_accepts() {
    let dir = tempfile::tempdir().expect("temp dir");
    let target = dir.path().join("gold-offers");
    let parsed = Cli::parse_from([
        "masthead",
        "plugin",
        "new",
        "gold-offers",
        "--kind",
        "offer-provider",
        "--dir",
        &target.display().to_string(),
    ]);
    let config = parsed.config().expect("config");
    cli::run(parsed, config).await.expect("created");
    let manifest = std::fs::read_to_string(target.join("masthead-plugin.toml")).expect("manifest");
    let parsed = masthead::domain::plugin::Manifest::from_toml(&manifest).expect("parses");
    let caps = masthead::config::Config::default().plugins.runtime().caps;
    let checked = parsed.check(caps).expect("valid");
    assert_eq!(checked.manifest.id, "gold-offers");
    let cargo = std::fs::read_to_string(target.join("Cargo.toml")).expect("Cargo.toml");
    assert!(cargo.contains("features = [\"offer-provider\"]"));
    assert!(
        std::fs::read_to_string(target.join("src/lib.rs"))
            .expect("lib")
            .contains("export_offer_provider!")
    );
    let again = Cli::parse_from([
        "masthead",
        "plugin",
        "new",
        "gold-offers",
        "--kind",
        "segmenter",
        "--dir",
        &target.display().to_string(),
    ]);
    let config = again.config().expect("config");
    assert!(
        cli::run(again, config).await.is_err(),
        "an existing folder is not overwritten"
    );
    let bad = Cli::parse_from([
        "masthead",
        "plugin",
        "new",
        "Gold Offers",
        "--kind",
        "segmenter",
    ]);
    let config = bad.config().expect("config");
    assert!(
        cli::run(bad, config)
            .await
            .expect_err("bad id")
            .to_string()
            .contains("cannot be a plugin id")
    );
}

#[tokio::test]
async fn clubs_recompute_reruns_over_the_demo_club_and_changes_nothing_twice() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("clubs.db").display());
    let run = |rest: &[&str]| {
        let mut all = vec!["masthead", "--database-url", url.as_str()];
        all.extend_from_slice(rest);
        let parsed = Cli::parse_from(all);
        async move {
            let config = parsed.config().expect("config");
            cli::run(parsed, config).await
        }
    };
    run(&["demo-data", "--subscribers", "300"])
        .await
        .expect("demo data");
    // The demo publisher comes with its reader club, every reader already placed.
    let store = masthead::store::open(&url).await.expect("open");
    let record = store
        .get_club("reader-club")
        .await
        .expect("club")
        .expect("the demo club");
    run(&["clubs", "recompute"]).await.expect("a nightly run");
    let held: i64 = store
        .members_by_tier(record.id)
        .await
        .expect("tiers")
        .iter()
        .map(|(_, n)| n)
        .sum();
    assert!(held > 0, "nobody joined");
    run(&["clubs", "recompute", "--club", "reader-club"])
        .await
        .expect("second run");
    let jobs = store
        .list_jobs(&masthead::store::JobFilter {
            kind: Some("club_recompute".into()),
            subject: Some(format!("club:{}", record.id)),
            limit: 5,
            ..Default::default()
        })
        .await
        .expect("jobs");
    assert_eq!(jobs.len(), 3);
    let counts = |job: &masthead::store::JobRecord| {
        let result = job.result.clone().expect("a result");
        let count = |key: &str| result[key].as_i64().expect("a count");
        (
            count("processed"),
            count("joined"),
            count("promoted"),
            count("demoted"),
            count("left"),
        )
    };
    assert_eq!(counts(&jobs[2]).1, held, "the demo's run placed everyone");
    let second = counts(&jobs[0]);
    assert_eq!((second.1, second.2, second.3, second.4), (0, 0, 0, 0));
    assert_eq!(second.0, counts(&jobs[2]).0);
    assert_eq!(counts(&jobs[1]).1, 0);
    let missing = run(&["clubs", "recompute", "--club", "no-such-club"])
        .await
        .expect_err("no such club");
    assert!(
        missing.to_string().contains("no club no-such-club"),
        "{missing}"
    );
}

/// Runs `masthead plugin ARGS...` against a throwaway database.
async fn plugin_command(database: &std::path::Path, rest: &[&str]) -> anyhow::Result<()> {
    let url = format!("sqlite://{}", database.display());
    let mut all = vec!["masthead", "--database-url", url.as_str(), "plugin"];
    all.extend_from_slice(rest);
    let parsed = Cli::parse_from(all);
    let config = parsed.config().expect("config");
    cli::run(parsed, config).await
}

#[tokio::test]
async fn plugin_run_names_the_place_of_a_mistake_in_its_input_and_what_to_send() {
    let dir = tempfile::tempdir().expect("temp dir");
    let database = dir.path().join("run.db");
    let example = format!("{}/../plugins/churn-risk", env!("CARGO_MANIFEST_DIR"));
    let churn = format!("{}/churn_risk.wasm", env!("WASM_TEST_PLUGINS"));
    let cases: &[(&str, &[&str])] = &[
        (
            r#"[{"number": 1000007}, {"number": 1000015, "tenure_days": "ten"}]"#,
            &[
                "[1].tenure_days: invalid type",
                "send a whole number of days",
            ],
        ),
        (
            r#"{"today": "23/11/2026", "subscribers": []}"#,
            &["today: ", "send a date as YYYY-MM-DD"],
        ),
        (
            r#"{"subscribers": [{"number": 1000007,
                "terms": [{"publication": "DT", "start": "2026-01-01"}]}]}"#,
            &["subscribers[0].terms[0]", "missing field `end`", "line 2"],
        ),
        (
            r#"[{"number": 1000007, "staus": "active"}]"#,
            &["unknown field `staus`", "`status`"],
        ),
        (
            r#"[{"number": 1000007, "status": "sleeping"}]"#,
            &["[0]: status \"sleeping\" is not none, pending, active"],
        ),
        (
            r#"{"subscribers": [{"number": 1000007, "consents": {"marketing_fax": true}}]}"#,
            &["subscribers[0]: consent purpose \"marketing_fax\" is not marketing_email"],
        ),
        (r#""readers""#, &["send a JSON array of readers"]),
    ];
    for (i, (text, expected)) in cases.iter().enumerate() {
        let input = dir.path().join(format!("readers-{i}.json"));
        std::fs::write(&input, text).expect("write input");
        let input = input.display().to_string();
        let refused = plugin_command(
            &database,
            &["run", &example, "--component", &churn, "--input", &input],
        )
        .await
        .expect_err("a mistake in the input");
        let message = refused.to_string();
        assert!(message.starts_with(&format!("{input}: ")), "{message}");
        for part in *expected {
            assert!(message.contains(part), "{part} not in: {message}");
        }
        for debug in ["untagged", "Some(", "Input"] {
            assert!(!message.contains(debug), "{debug} in: {message}");
        }
    }
    let input = dir.path().join("readers-0.json").display().to_string();
    let set = plugin_command(
        &database,
        &[
            "run",
            &example,
            "--component",
            &churn,
            "--input",
            &input,
            "--set",
            "horizon_days=[1]",
        ],
    )
    .await
    .expect_err("a list is no setting");
    let message = set.to_string();
    assert!(
        message.starts_with("--set horizon_days: ") && message.contains("a number or a text"),
        "{message}"
    );
}

#[tokio::test]
async fn plugin_check_runs_sample_readers_under_the_manifest_limits_and_says_what_failed() {
    let dir = tempfile::tempdir().expect("temp dir");
    let database = dir.path().join("check.db");
    let built = env!("WASM_TEST_PLUGINS");
    let example = format!("{}/../plugins/churn-risk", env!("CARGO_MANIFEST_DIR"));
    let churn = format!("{built}/churn_risk.wasm");
    plugin_command(&database, &["check", &example, "--component", &churn])
        .await
        .expect("the example runs on the sample readers within its limits");

    // The same plugin reading every field, with memory enough for one reader but not for a
    // refresh's batch: `plugin run` on one reader passes, every refresh would fail.
    let tight = dir.path().join("tight");
    std::fs::create_dir(&tight).expect("dir");
    let manifest =
        std::fs::read_to_string(format!("{example}/masthead-plugin.toml")).expect("manifest");
    let every_field = "fields = [\"status\", \"region\", \"postal-code\", \"birth-year\", \
                       \"tenure\", \"lifetime-revenue\", \"share-of-wallet\", \"terms\", \
                       \"club-tiers\", \"complaints\", \"consents\", \"attributes\"]";
    let narrow = "fields = [\"status\", \"tenure\", \"terms\", \"complaints\"]";
    assert!(manifest.contains(narrow) && manifest.contains("memory_mib = 32"));
    std::fs::write(
        tight.join("masthead-plugin.toml"),
        manifest
            .replace(narrow, every_field)
            .replace("memory_mib = 32", "memory_mib = 2"),
    )
    .expect("manifest");
    let tight = tight.display().to_string();
    let one = dir.path().join("one-reader.json");
    std::fs::write(
        &one,
        r#"[{"number": 1000007, "status": "active", "tenure_days": 100}]"#,
    )
    .expect("input");
    plugin_command(
        &database,
        &[
            "run",
            &tight,
            "--component",
            &churn,
            "--input",
            &one.display().to_string(),
        ],
    )
    .await
    .expect("one reader fits in 2 MiB");
    let failed = plugin_command(&database, &["check", &tight, "--component", &churn])
        .await
        .expect_err("a batch of readers does not fit in 2 MiB");
    let message = failed.to_string();
    for part in [
        "a batch of 1000 sample readers failed (memory)",
        "memory cap of 2 MiB",
        "fuel ",
        "peak memory ",
        "of 2 MiB",
        "raise memory_mib under [limits]",
    ] {
        assert!(message.contains(part), "{part} not in: {message}");
    }

    // Too little for the component even to start.
    std::fs::write(
        dir.path().join("tight/masthead-plugin.toml"),
        manifest.replace("memory_mib = 32", "memory_mib = 1"),
    )
    .expect("manifest");
    let failed = plugin_command(&database, &["check", &tight, "--component", &churn])
        .await
        .expect_err("the component does not start in 1 MiB");
    let message = failed.to_string();
    assert!(
        message.contains("failed (memory)") && message.contains("does not even start"),
        "{message}"
    );

    // A plugin that loops runs out of its fuel on the sample readers.
    let spin = dir.path().join("spin");
    std::fs::create_dir(&spin).expect("dir");
    std::fs::write(
        spin.join("masthead-plugin.toml"),
        "id = \"spin\"\nversion = \"1.0.0\"\nkind = \"segmenter\"\napi_version = \"1.0.0\"\n\
         fields = [\"status\"]\n[limits]\nfuel_per_batch = 1000000\n",
    )
    .expect("manifest");
    let spun = plugin_command(
        &database,
        &[
            "check",
            &spin.display().to_string(),
            "--component",
            &format!("{built}/hostile_spin.wasm"),
        ],
    )
    .await
    .expect_err("the loop is stopped");
    let message = spun.to_string();
    assert!(
        message.contains("failed (fuel)") && message.contains("fuel 1000000 of 1000000"),
        "{message}"
    );
    assert!(message.contains("raise fuel_per_batch"), "{message}");
}
