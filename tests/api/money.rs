//! Money limits over HTTP: every amount (prices, terms, refunds, credits, imported rows) is
//! bounded, refused past the limit with the field and the limit named, and sums stay true.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::complaints::fields_of;
use crate::helpers::{TestApp, problem, spawn_app};
use crate::renewals::{history, print_year, publication, reader, subscribe};

/// The most one amount may be, in minor units (1,000,000,000.00).
const MAX_AMOUNT: i64 = 100_000_000_000;

/// The message of the first error on `field`.
fn message_for<'a>(problem: &'a Value, field: &str) -> &'a str {
    problem["errors"]
        .as_array()
        .and_then(|errors| errors.iter().find(|e| e["field"] == field))
        .and_then(|e| e["message"].as_str())
        .unwrap_or_else(|| panic!("no error on {field}: {problem}"))
}

async fn price_list(app: &TestApp, code: &str, amount: i64) -> reqwest::Response {
    let prices: Vec<Value> = ["print", "digital"]
        .iter()
        .flat_map(|format| {
            [6, 12].map(|months| json!({ "format": format, "months": months, "amount": amount }))
        })
        .collect();
    app.post(
        &format!("/api/v1/publications/{code}/price-lists"),
        &app.admin,
        &json!({ "effective_from": "2024-01-01", "prices": prices }),
    )
    .await
}

#[tokio::test]
async fn a_price_over_the_money_limit_is_refused_naming_the_field_and_the_limit() {
    let app = spawn_app().await;
    publication(&app, "DAILY", &[]).await;

    for amount in [i64::MAX, MAX_AMOUNT + 1, -1] {
        let refused = problem(
            price_list(&app, "DAILY", amount).await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        let message = message_for(&refused, "prices[0].amount");
        assert!(
            message.contains("0 to 100000000000 minor units (1000000000.00)"),
            "{message}"
        );
        assert!(!message.contains("Some("), "{message}");
    }

    assert_eq!(
        price_list(&app, "DAILY", MAX_AMOUNT).await.status(),
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn terms_at_the_highest_price_sum_to_the_true_revenue_and_keep_the_spend_tier() {
    // Arrange: a club whose Silver needs 1.5 times the highest price in 24 months.
    let app = spawn_app().await;
    publication(&app, "DAILY", &[("2023-01-01", MAX_AMOUNT)]).await;
    let club = json!({
        "code": "big-spenders", "name": "Big Spenders", "description": "Who pay the most",
        "tiers": [{ "code": "silver", "name": "Silver",
                    "rule": { "spend": { "min": MAX_AMOUNT / 2 * 3, "months": 24 } },
                    "perks": { "renewal_discount_percent": 0, "event_access": true } }],
    });
    let response = app.post("/api/v1/clubs", &app.admin, &club).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let number = reader(&app, "Wealthy").await;
    app.set_today("2024-06-01");

    // Act: two years of print at the highest price.
    subscribe(&app, &number, print_year("DAILY", "2023-01-01")).await;
    subscribe(&app, &number, print_year("DAILY", "2024-01-01")).await;

    // Assert: the revenue is the sum of what was paid, and the spend keeps the reader in Silver.
    let history = history(&app, &number).await;
    let paid: Vec<i64> = history["titles"][0]["terms"]
        .as_array()
        .expect("terms")
        .iter()
        .map(|t| t["price_paid"]["amount"].as_i64().expect("price paid"))
        .collect();
    assert_eq!(paid.len(), 2);
    assert!(paid.contains(&MAX_AMOUNT), "{paid:?}");
    let revenue = history["lifetime_revenue"]["amount"]
        .as_i64()
        .expect("revenue");
    assert_eq!(revenue, paid.iter().sum::<i64>());
    assert!(revenue > MAX_AMOUNT / 2 * 3);
    let clubs: Value = app
        .get(&format!("/api/v1/subscribers/{number}/clubs"), &app.staff)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(clubs["memberships"][0]["tier"], "silver", "{clubs}");
    let because = clubs["memberships"][0]["because"]
        .as_str()
        .expect("because");
    assert!(!because.contains('-'), "{because}");
}

#[tokio::test]
async fn refunds_and_credits_over_the_limit_are_refused_naming_the_field() {
    let app = spawn_app().await;
    publication(&app, "DAILY", &[("2024-01-01", 20_000)]).await;
    let number = reader(&app, "Refunded").await;
    app.set_today("2024-01-01");
    let order = subscribe(&app, &number, print_year("DAILY", "2024-01-01")).await;
    let term = order["terms"][0]["id"].as_i64().expect("id");

    let cancel = format!("/api/v1/subscribers/{number}/terms/{term}/cancellation");
    let huge = json!({ "effective": "2024-07-01", "reason": "moved", "refund": i64::MAX });
    let refused = problem(
        app.post(&cancel, &app.staff, &huge).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert!(message_for(&refused, "refund").contains("the price paid, 200.00"));

    let opened = app
        .post(
            "/api/v1/interactions",
            &app.staff,
            &json!({ "subscriber": number, "kind": "complaint", "channel": "phone",
                     "category": "billing", "text": "Charged twice" }),
        )
        .await;
    assert_eq!(opened.status(), StatusCode::CREATED);
    let id = opened.json::<Value>().await.expect("json")["id"].clone();
    for amount in [i64::MAX, MAX_AMOUNT + 1] {
        let refused = problem(
            app.post(
                &format!("/api/v1/interactions/{id}/steps"),
                &app.staff,
                &json!({ "action": "resolve", "resolution": "credited",
                         "compensation": { "kind": "credit", "amount": amount, "reason": "twice" } }),
            )
            .await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        assert_eq!(fields_of(&refused), ["compensation.amount"]);
        assert!(message_for(&refused, "compensation.amount").contains("100000000000 minor units"));
    }
    let resolved = app
        .post(
            &format!("/api/v1/interactions/{id}/steps"),
            &app.staff,
            &json!({ "action": "resolve", "resolution": "credited",
                     "compensation": { "kind": "credit", "amount": MAX_AMOUNT, "reason": "twice" } }),
        )
        .await;
    assert_eq!(resolved.status(), StatusCode::OK);
}

#[tokio::test]
async fn an_imported_amount_over_the_limit_is_rejected_with_its_field_and_the_limit() {
    let app = spawn_app().await;
    publication(&app, "DAILY", &[("2024-01-01", 20_000)]).await;
    let readers = "legacy_id,given_name,family_name\nL-1,Ada,Rich\n";
    assert_eq!(
        import(&app, "subscribers", readers).await["report"]["created"],
        1
    );
    let terms = format!(
        "legacy_id,publication,format,months,start,list_price,price_paid,cancelled_effective,refund\n\
         L-1,DAILY,print,12,2020-01-01,{max},{max},,\n\
         L-1,DAILY,print,12,2021-01-01,{over},{over},,\n\
         L-1,DAILY,print,12,2022-01-01,20000,20000,2022-06-01,{max}\n\
         L-1,DAILY,print,12,2023-01-01,{limit},{limit},,\n",
        max = i64::MAX,
        over = MAX_AMOUNT + 1,
        limit = MAX_AMOUNT,
    );

    let report = import(&app, "terms", &terms).await;

    assert_eq!(report["report"]["created"], 1, "{report}");
    let rejections = report["rejections"].as_array().expect("rejections");
    let lines: Vec<i64> = rejections
        .iter()
        .map(|r| r["line"].as_i64().unwrap_or(0))
        .collect();
    assert_eq!(lines, [2, 3, 4]);
    for rejection in &rejections[..2] {
        let reason = rejection["reason"].as_str().expect("reason");
        assert!(reason.starts_with("list_price: "), "{reason}");
        assert!(reason.contains("; price_paid: "), "{reason}");
        assert!(reason.contains("0 to 100000000000 minor units"), "{reason}");
    }
    let reason = rejections[2]["reason"].as_str().expect("reason");
    assert!(reason.starts_with("refund: "), "{reason}");
}

pub(crate) async fn import(app: &TestApp, what: &str, csv: &str) -> Value {
    let response = app
        .request(Method::POST, &format!("/api/v1/imports/{what}"), &app.admin)
        .query(&[("wait", 20)])
        .header("content-type", "text/csv")
        .body(csv.to_owned())
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.expect("json")
}
