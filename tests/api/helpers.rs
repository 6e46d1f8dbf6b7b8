//! `spawn_app()`: the real service on port 0 over a fresh database, with a key per role.
//!
//! With `TEST_DATABASE_URL=postgres://...` every test gets its own new PostgreSQL
//! database on that server (dropped afterwards); without it, a SQLite file in a temp folder.
//! A configured database that cannot be reached fails the test; nothing is skipped.

use std::sync::Arc;

use masthead::config::Config;
use masthead::domain::Role;
use masthead::services::clock::{Clock, FixedClock};
use masthead::services::keys;
use masthead::startup::Application;
use masthead::store;
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde_json::{Value, json};

pub struct TestApp {
    pub address: String,
    pub admin: String,
    pub staff: String,
    pub advertiser: String,
    pub client: reqwest::Client,
    /// The service's clock; tests move it to a chosen day.
    pub clock: FixedClock,
    /// The configuration this instance runs with (for a second instance on the same data).
    pub config: Config,
    _database: TestDatabase,
}

enum TestDatabase {
    Sqlite(#[allow(dead_code)] tempfile::TempDir),
    Postgres {
        server: String,
        name: String,
    },
    /// Owned by the caller (a cluster a test started itself).
    External,
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let TestDatabase::Postgres { server, name } = self {
            let (server, name) = (server.clone(), name.clone());
            // Drop runs outside any runtime we may block; use a thread with its own.
            let _ = std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build();
                if let Ok(runtime) = runtime {
                    runtime.block_on(async {
                        if let Ok(pool) = sqlx::PgPool::connect(&server).await {
                            let sql = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
                            let _ = sqlx::query(&sql).execute(&pool).await;
                        }
                    });
                }
            })
            .join();
        }
    }
}

/// The PostgreSQL server the tests run on, when one is configured.
pub fn postgres_server() -> Option<String> {
    std::env::var("TEST_DATABASE_URL")
        .ok()
        .filter(|s| !s.is_empty())
}

/// A new, empty database (nothing migrated yet), dropped with the guard.
pub struct EmptyDatabase {
    pub url: String,
    _database: TestDatabase,
}

/// An empty database of the backend the tests run on.
pub async fn empty_database() -> EmptyDatabase {
    let (url, database) = fresh_database().await;
    EmptyDatabase {
        url,
        _database: database,
    }
}

/// An empty SQLite database, whatever backend the tests run on.
pub fn empty_sqlite_database() -> EmptyDatabase {
    let (url, database) = fresh_sqlite();
    EmptyDatabase {
        url,
        _database: database,
    }
}

fn fresh_sqlite() -> (String, TestDatabase) {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("masthead.db").display());
    (url, TestDatabase::Sqlite(dir))
}

async fn fresh_database() -> (String, TestDatabase) {
    match postgres_server() {
        Some(server) => {
            assert!(
                server.starts_with("postgres://") || server.starts_with("postgresql://"),
                "TEST_DATABASE_URL must be a postgres:// URL, got {server}"
            );
            let pool = sqlx::PgPool::connect(&server).await.unwrap_or_else(|e| {
                panic!("TEST_DATABASE_URL={server} is configured but unreachable: {e}")
            });
            let name = format!("masthead_test_{}", uuid::Uuid::new_v4().simple());
            sqlx::query(&format!("CREATE DATABASE \"{name}\""))
                .execute(&pool)
                .await
                .expect("create the test database");
            pool.close().await;
            let base = server.rsplit_once('/').map_or(server.as_str(), |(b, _)| b);
            (
                format!("{base}/{name}"),
                TestDatabase::Postgres { server, name },
            )
        }
        None => fresh_sqlite(),
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(adjust: impl FnOnce(&mut Config)) -> TestApp {
    let (url, database) = fresh_database().await;
    let mut config = Config {
        listen: "127.0.0.1:0".parse().expect("address"),
        database_url: Some(url.clone()),
        ..Config::default()
    };
    // Scheduled work would run at each start; the tests of schedules turn it on.
    config.jobs.recompute_enabled = false;
    config.jobs.renewals_enabled = false;
    adjust(&mut config);
    let store = store::open(&url).await.expect("open the test database");
    serve(config, store, database).await
}

/// The service on an already opened store whose database the caller owns.
pub async fn spawn_app_on(config: Config, store: Arc<dyn store::Store>) -> TestApp {
    serve(config, store, TestDatabase::External).await
}

async fn serve(config: Config, store: Arc<dyn store::Store>, database: TestDatabase) -> TestApp {
    if std::env::var("TEST_LOG").is_ok() {
        masthead::telemetry::init_logging(masthead::config::LogFormat::Human, "debug");
    }
    let clock = FixedClock::at(chrono::Utc::now());
    let app = Application::build_with_clock(&config, Arc::clone(&store), Arc::new(clock.clone()))
        .await
        .expect("build the app");
    let address = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped(std::future::pending()));
    let token = |role, name| {
        let store = Arc::clone(&store);
        let clock = clock.clone();
        async move {
            keys::issue(&*store, &clock, name, role)
                .await
                .expect("issue key")
                .token
        }
    };
    // The advertiser key acts for an account of its own, as a publisher issues them.
    let account = store::AdvertiserDraft {
        name: "Test Agency".into(),
        contact_person: None,
        notes: None,
    };
    let account = store
        .insert_advertiser(&account, clock.now())
        .await
        .expect("advertiser account");
    let advertiser = keys::issue_for(
        &*store,
        &clock,
        "ad agency",
        Role::Advertiser,
        Some(account.id),
    )
    .await
    .expect("issue key")
    .token;
    TestApp {
        address,
        admin: token(Role::Admin, "test admin").await,
        staff: token(Role::Staff, "reception desk").await,
        advertiser,
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client"),
        clock,
        config,
        _database: database,
    }
}

impl TestApp {
    /// Starts another instance of the service on the same database (as a second host behind
    /// a load balancer, or the same host after a restart) and returns its address.
    pub async fn another_instance(&self) -> String {
        self.another_instance_with(|_| {}).await
    }

    /// Another instance, with its configuration adjusted.
    pub async fn another_instance_with(&self, adjust: impl FnOnce(&mut Config)) -> String {
        let url = self.config.database_url.clone().expect("a database url");
        let store = store::open(&url).await.expect("open the database again");
        let mut config = self.config.clone();
        adjust(&mut config);
        let app = Application::build_with_clock(&config, store, Arc::new(self.clock.clone()))
            .await
            .expect("build the second instance");
        let address = format!("http://127.0.0.1:{}", app.port());
        tokio::spawn(app.run_until_stopped(std::future::pending()));
        address
    }

    /// Moves the service's clock to noon (UTC) on `day` (YYYY-MM-DD).
    pub fn set_today(&self, day: &str) {
        let noon = format!("{day}T12:00:00Z")
            .parse()
            .expect("a YYYY-MM-DD day");
        self.clock.set(noon);
    }

    pub fn request(&self, method: Method, path: &str, token: &str) -> RequestBuilder {
        self.client
            .request(method, format!("{}{path}", self.address))
            .bearer_auth(token)
    }

    pub async fn get(&self, path: &str, token: &str) -> Response {
        self.request(Method::GET, path, token)
            .send()
            .await
            .expect("request")
    }

    pub async fn post(&self, path: &str, token: &str, body: &Value) -> Response {
        self.request(Method::POST, path, token)
            .json(body)
            .send()
            .await
            .expect("request")
    }

    pub async fn patch(&self, path: &str, token: &str, version: i64, body: &Value) -> Response {
        self.request(Method::PATCH, path, token)
            .header("If-Match", format!("\"{version}\""))
            .json(body)
            .send()
            .await
            .expect("request")
    }

    /// Creates a subscriber as staff and returns the card; panics unless it is created.
    pub async fn create(&self, body: Value) -> Value {
        let response = self.post("/api/v1/subscribers", &self.staff, &body).await;
        let status = response.status();
        let card: Value = response.json().await.expect("json");
        assert_eq!(status, StatusCode::CREATED, "create failed: {card}");
        card
    }

    pub async fn card(&self, number: &str) -> Value {
        let response = self
            .get(&format!("/api/v1/subscribers/{number}"), &self.staff)
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.expect("json")
    }

    pub async fn search(&self, query: &str) -> Vec<Value> {
        let response = self
            .request(Method::GET, "/api/v1/search", &self.staff)
            .query(&[("q", query)])
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), StatusCode::OK, "search {query}");
        let body: Value = response.json().await.expect("json");
        body["items"].as_array().cloned().unwrap_or_default()
    }
}

/// A person with the given names and nothing else.
pub fn person(given: &str, family: &str) -> Value {
    json!({ "given_name": given, "family_name": family })
}

/// Reads a problem+json answer and checks its status and content type.
pub async fn problem(response: Response, status: StatusCode) -> Value {
    assert_eq!(response.status(), status);
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    assert_eq!(content_type, "application/problem+json");
    let body: Value = response.json().await.expect("problem body");
    assert_eq!(body["status"], status.as_u16());
    assert!(body["detail"].as_str().is_some_and(|d| !d.is_empty()));
    body
}
