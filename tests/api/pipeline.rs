//! The reader pipeline over HTTP: a refresh right after a change reflects it, and a refresh
//! racing renewals and erasures sees one state of the readership, never a mix that loses a
//! reader.

use std::collections::BTreeSet;
use std::sync::Arc;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app_with};
use crate::plugins::{component, example_manifest, install, refresh, segment};
use crate::renewals::{print_year, publication, reader, subscribe};

/// An app whose refreshes run two readers a batch, with the daily `DT`, churn-risk installed
/// and its `lapsed` segment, and `count` readers whose only term ended in 2020.
async fn lapsed_readers(count: usize) -> (TestApp, Vec<String>) {
    let app = spawn_app_with(|c| c.plugins.batch_size = 2).await;
    app.set_today("2026-11-23");
    publication(&app, "DT", &[("2020-01-01", 30_000)]).await;
    let mut numbers = Vec::new();
    for k in 0..count {
        let number = reader(&app, &format!("Lapsed{k}")).await;
        subscribe(&app, &number, print_year("DT", "2020-01-01")).await;
        numbers.push(number);
    }
    let wasm = component("churn_risk");
    install(&app, &example_manifest("churn-risk", &wasm), &wasm).await;
    segment(&app, "lapsed", "churn-risk", "lapsed").await;
    (app, numbers)
}

/// The members of the segment's last refresh.
pub(crate) async fn members(app: &TestApp, name: &str) -> BTreeSet<String> {
    let page: Value = app
        .get(
            &format!("/api/v1/segments/{name}/members?limit=1000"),
            &app.staff,
        )
        .await
        .json()
        .await
        .expect("json");
    page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|m| m["number"].as_str().expect("number").to_owned())
        .collect()
}

pub(crate) async fn erase(app: &TestApp, number: &str) {
    let path = format!("/api/v1/subscribers/{number}/erase");
    let response = app.post(&path, &app.admin, &json!({})).await;
    assert_eq!(response.status(), StatusCode::OK, "erasure of {number}");
}

pub(crate) fn set(numbers: &[String]) -> BTreeSet<String> {
    numbers.iter().cloned().collect()
}

#[tokio::test]
async fn a_refresh_right_after_a_renewal_a_merge_and_an_erasure_reflects_each() {
    // Arrange
    let (app, lapsed) = lapsed_readers(4).await;
    let done = refresh(&app, "lapsed").await;
    assert_eq!(
        (done["processed"].clone(), done["size"].clone()),
        (json!(4), json!(4))
    );

    // Act and assert: a renewed reader leaves at once.
    subscribe(&app, &lapsed[0], print_year("DT", "2026-09-01")).await;
    let done = refresh(&app, "lapsed").await;
    assert_eq!(done["size"], 3, "{done}");
    assert_eq!(members(&app, "lapsed").await, set(&lapsed[1..]));

    // A reader merged into the renewed one is read no more; its old term joins the survivor's.
    let response = app
        .post(
            &format!("/api/v1/subscribers/{}/merge", lapsed[0]),
            &app.staff,
            &json!({ "source": lapsed[1] }),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let done = refresh(&app, "lapsed").await;
    assert_eq!(
        (done["processed"].clone(), done["size"].clone()),
        (json!(3), json!(2))
    );
    assert_eq!(members(&app, "lapsed").await, set(&lapsed[2..]));

    // An erased reader keeps its number and its renewal history, so its standing.
    erase(&app, &lapsed[2]).await;
    let done = refresh(&app, "lapsed").await;
    assert_eq!(
        (done["processed"].clone(), done["size"].clone()),
        (json!(3), json!(2))
    );
    assert_eq!(members(&app, "lapsed").await, set(&lapsed[2..]));
}

/// The readers in an order that jumps across pages: first, last, second, second to last, ...
pub(crate) fn jumping(readers: &[String]) -> Vec<String> {
    let mut order = Vec::new();
    let (mut low, mut high) = (0, readers.len());
    while low < high {
        order.push(readers[low].clone());
        low += 1;
        if low < high {
            high -= 1;
            order.push(readers[high].clone());
        }
    }
    order
}

/// Refreshes `segment` while one task renews the readers of `order` (in that order, a print
/// year of `DT` from September 2026) and another erases those of `erasing`; the finished
/// refresh, once both tasks are done too.
pub(crate) async fn refresh_racing(
    app: &Arc<TestApp>,
    segment: &str,
    order: &[String],
    erasing: &[String],
) -> Value {
    let renewals = {
        let (app, order) = (Arc::clone(app), order.to_vec());
        tokio::spawn(async move {
            for number in &order {
                subscribe(&app, number, print_year("DT", "2026-09-01")).await;
            }
        })
    };
    let erasures = {
        let (app, erasing) = (Arc::clone(app), erasing.to_vec());
        tokio::spawn(async move {
            for number in &erasing {
                erase(&app, number).await;
            }
        })
    };
    let done = refresh(app, segment).await;
    renewals.await.expect("renewals");
    erasures.await.expect("erasures");
    done
}

#[tokio::test]
async fn a_refresh_racing_renewals_and_erasures_sees_one_state_and_loses_no_reader() {
    // Arrange: 40 lapsed readers; 30 to be renewed in an order that jumps across the pages
    // (first, last, second, second to last, ...), the other 10 to be erased.
    let (app, lapsed) = lapsed_readers(40).await;
    let app = Arc::new(app);
    let (renewing, erasing) = lapsed.split_at(30);
    let order = jumping(renewing);

    // Act: the refresh runs while one task renews and another erases.
    let done = refresh_racing(&app, "lapsed", &order, erasing).await;

    // Assert: the members are the lapsed readers less the first k renewed, for one k; the
    // erased readers are all there.
    assert_eq!(done["state"], "done", "{done}");
    assert_eq!(done["processed"], 40);
    let seen = members(&app, "lapsed").await;
    let k = lapsed.len() - seen.len();
    let expected: BTreeSet<String> = set(&lapsed)
        .difference(&set(&order[..k.min(order.len())]))
        .cloned()
        .collect();
    assert_eq!(seen, expected, "not the state after {k} renewals");
    assert!(set(erasing).is_subset(&seen), "an erased reader was lost");

    // A refresh after the changes: only the erased readers are left.
    let done = refresh(&app, "lapsed").await;
    assert_eq!(done["size"], 10);
    assert_eq!(members(&app, "lapsed").await, set(erasing));
}

/// Runs `sql` on the app's database, as another host or an operator would.
async fn execute(app: &TestApp, sql: &str) {
    let url = app.config.database_url.clone().expect("url");
    if url.starts_with("sqlite:") {
        let pool = sqlx::SqlitePool::connect(&url).await.expect("connect");
        sqlx::query(sql).execute(&pool).await.expect(sql);
    } else {
        let pool = sqlx::PgPool::connect(&url).await.expect("connect");
        sqlx::query(sql).execute(&pool).await.expect(sql);
    }
}

async fn logged_changes(app: &TestApp) -> i64 {
    let url = app.config.database_url.clone().expect("url");
    let sql = "SELECT COUNT(*) FROM reader_changes";
    if url.starts_with("sqlite:") {
        let pool = sqlx::SqlitePool::connect(&url).await.expect("connect");
        sqlx::query_scalar(sql).fetch_one(&pool).await.expect(sql)
    } else {
        let pool = sqlx::PgPool::connect(&url).await.expect("connect");
        sqlx::query_scalar(sql).fetch_one(&pool).await.expect(sql)
    }
}

#[tokio::test]
async fn a_refresh_while_another_host_brings_the_kept_readers_up_to_date_reads_changes_from_their_tables()
 {
    // Arrange: the kept readers are up to date after a first refresh; then another host
    // holds the lease (and never finishes), so no pass here can bring them up to date.
    let (app, lapsed) = lapsed_readers(3).await;
    assert_eq!(refresh(&app, "lapsed").await["size"], 3);
    assert_eq!(logged_changes(&app).await, 0, "the first pass caught up");
    execute(
        &app,
        "UPDATE reader_facts_lease SET holder = 'another host', \
         until = '2999-01-01 00:00:00+00:00' WHERE id = 1",
    )
    .await;

    // Act: one reader renews, and a new lapsed reader arrives.
    subscribe(&app, &lapsed[0], print_year("DT", "2026-09-01")).await;
    let newcomer = reader(&app, "Newcomer").await;
    subscribe(&app, &newcomer, print_year("DT", "2020-01-01")).await;
    let done = refresh(&app, "lapsed").await;

    // Assert: both changes are seen, read from the tables; the log is still there.
    assert_eq!(
        (done["processed"].clone(), done["size"].clone()),
        (json!(4), json!(3)),
        "{done}"
    );
    let mut expected = set(&lapsed[1..]);
    expected.insert(newcomer.clone());
    assert_eq!(members(&app, "lapsed").await, expected);
    assert!(logged_changes(&app).await > 0);

    // Once the other host's lease lapses, the next pass brings the chunks up to date and
    // answers the same.
    execute(
        &app,
        "UPDATE reader_facts_lease SET until = '2000-01-01 00:00:00+00:00' WHERE id = 1",
    )
    .await;
    assert_eq!(refresh(&app, "lapsed").await["size"], 3);
    assert_eq!(logged_changes(&app).await, 0);
    assert_eq!(members(&app, "lapsed").await, expected);
}
