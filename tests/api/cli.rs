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
    let path = masthead::services::keys::bootstrap_admin(&*store, dir.path())
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
    let again = masthead::services::keys::bootstrap_admin(&*store, dir.path())
        .await
        .expect("bootstrap");
    assert!(
        again.is_none(),
        "an install with an admin key gets no second one"
    );
}
