//! The legacy import checked row by row: the same rules as the API, and each rejected row
//! reported on the physical line where it starts, in LF and CRLF files alike.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{problem, spawn_app};
use crate::money::import;
use crate::renewals::{print_year, publication, reader, subscribe};

/// Line and reason of each rejection in an import's answer.
fn rejections(answer: &Value) -> Vec<(i64, String)> {
    answer["rejections"]
        .as_array()
        .expect("rejections")
        .iter()
        .map(|r| {
            (
                r["line"].as_i64().unwrap_or(0),
                r["reason"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

/// Readers with rejected rows at lines 3, 6 (after a quoted street over lines 4 and 5), 7
/// (a row with one field too many) and 8.
const READERS: &str = "legacy_id,given_name,family_name,street,postal_code,city\n\
A-1,Ann,Lee,,,\n\
A-2,,,,,\n\
A-3,Bob,Ray,\"1 High Street\n\
Flat 2\",SW1A 1AA,London\n\
A-4,,,,,\n\
A-5,Cy,Day,,,,extra\n\
A-6,,,,,\n";

#[tokio::test]
async fn rejected_rows_are_reported_on_the_line_where_they_start_in_lf_files() {
    let app = spawn_app().await;

    let answer = import(&app, "subscribers", READERS).await;

    assert_eq!(answer["report"]["created"], 2, "{answer}");
    let found = rejections(&answer);
    let lines: Vec<i64> = found.iter().map(|r| r.0).collect();
    assert_eq!(lines, [3, 6, 7, 8], "{found:?}");
    assert!(found[2].1.starts_with("unreadable CSV: "), "{}", found[2].1);
    assert!(found[2].1.contains("7 fields"), "{}", found[2].1);
    assert!(!found[2].1.contains("line:"), "{}", found[2].1);
}

#[tokio::test]
async fn rejected_rows_are_reported_on_the_same_lines_in_crlf_files() {
    let app = spawn_app().await;

    let answer = import(&app, "subscribers", &READERS.replace('\n', "\r\n")).await;

    assert_eq!(answer["report"]["created"], 2, "{answer}");
    let lines: Vec<i64> = rejections(&answer).iter().map(|r| r.0).collect();
    assert_eq!(lines, [3, 6, 7, 8]);
    let street = app.search("Ray").await;
    assert_eq!(street.len(), 1);
}

#[tokio::test]
async fn the_import_refuses_the_refunds_and_prices_the_api_refuses_with_the_same_words() {
    // Arrange: the API's answer to a refund above the price paid.
    let app = spawn_app().await;
    publication(&app, "DAILY", &[("2019-01-01", 20_000)]).await;
    let number = reader(&app, "Known").await;
    app.set_today("2024-01-01");
    let order = subscribe(&app, &number, print_year("DAILY", "2024-01-01")).await;
    let term = order["terms"][0]["id"].as_i64().expect("id");
    let refused = problem(
        app.post(
            &format!("/api/v1/subscribers/{number}/terms/{term}/cancellation"),
            &app.staff,
            &json!({ "effective": "2024-07-01", "reason": "moved", "refund": 30_000 }),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    let api_says = refused["errors"][0]["message"].as_str().expect("message");
    let readers = "legacy_id,given_name,family_name\nL-1,Ada,Imported\n";
    assert_eq!(
        import(&app, "subscribers", readers).await["report"]["created"],
        1
    );

    // Act: the same and other mistakes in a terms file.
    let terms = "legacy_id,publication,format,months,start,list_price,price_paid,cancelled_effective,refund\n\
        L-1,DAILY,print,12,2020-01-01,20000,20000,2020-07-01,30000\n\
        L-1,DAILY,print,12,2021-01-01,20000,25000,,\n\
        L-1,DAILY,print,12,2022-01-01,20000,20000,,5000\n\
        L-1,DAILY,print,12,2023-01-01,20000,20000,2025-01-01,\n\
        L-1,DAILY,print,12,2019-01-01,20000,18000,2019-07-01,18000\n";
    let answer = import(&app, "terms", terms).await;

    // Assert: one row is written, each other is refused as the API would refuse it.
    assert_eq!(answer["report"]["created"], 1, "{answer}");
    let found = rejections(&answer);
    assert_eq!(found.len(), 4, "{found:?}");
    assert_eq!(found[0], (2, format!("refund: {api_says}")));
    assert_eq!(
        found[1],
        (
            3,
            "price_paid: the price paid, 250.00 GBP, is above the list price, 200.00 GBP; \
             a term costs its list price less its discounts"
                .to_owned()
        )
    );
    assert_eq!(found[2].0, 4);
    assert!(
        found[2]
            .1
            .starts_with("refund: a refund comes with a cancellation")
    );
    assert_eq!(found[3].0, 5);
    assert!(
        found[3]
            .1
            .starts_with("cancelled_effective: a cancellation of this term takes effect from 2023-01-01 to 2024-01-01"),
        "{}",
        found[3].1
    );
}
