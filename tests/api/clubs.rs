//! Reader clubs over HTTP with the service's clock set by the test: promotion at renewal with
//! its explanation, demotion on lapse, overrides until they expire, the tier discount in the
//! renewal price, events that never overbook under concurrent answers, and bad rules.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::complaints::fields_of;
use crate::helpers::{TestApp, problem, spawn_app};
use crate::plugins::recompute_club;
use crate::renewals::{print_year, publication, reader, subscribe};

fn club() -> Value {
    json!({
        "code": "reader-club", "name": "Reader Club", "description": "For our most loyal readers",
        "tiers": [
            { "code": "silver", "name": "Silver",
              "rule": { "any": [ { "tenure": { "min_years": 2 } },
                                 { "spend": { "min": 10000, "months": 24 } } ] },
              "perks": { "renewal_discount_percent": 2, "event_access": true } },
            { "code": "gold", "name": "Gold",
              "rule": { "all": [ { "tenure": { "min_years": 10 } }, { "titles": { "min": 1 } },
                                 { "no_open_complaint": { "older_than_days": 14 } } ] },
              "perks": { "renewal_discount_percent": 5, "event_access": true } },
        ],
    })
}

async fn define(app: &TestApp, body: &Value) -> Value {
    let response = app.post("/api/v1/clubs", &app.admin, body).await;
    let status = response.status();
    let view: Value = response.json().await.expect("json");
    assert_eq!(status, StatusCode::CREATED, "club not created: {view}");
    view
}

/// Runs the recomputation job and waits for it to finish; it must succeed.
async fn recompute(app: &TestApp, code: &str) -> Value {
    let job = recompute_club(app, code).await;
    assert_eq!(job["state"], "done", "{job}");
    job
}

async fn clubs_of(app: &TestApp, number: &str) -> Value {
    let response = app
        .get(&format!("/api/v1/subscribers/{number}/clubs"), &app.staff)
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.expect("json")
}

fn tier(clubs: &Value) -> Option<&str> {
    clubs["memberships"][0]["tier"].as_str()
}

/// A reader of DAILY every year from 2016 through 2025, looked at on 20 December 2025.
async fn ten_year_reader(app: &TestApp) -> String {
    publication(app, "DAILY", &[("2014-01-01", 20_000)]).await;
    let number = reader(app, "Faithful").await;
    app.set_today("2025-12-20");
    for year in 2016..=2025 {
        subscribe(app, &number, print_year("DAILY", &format!("{year}-01-01"))).await;
    }
    number
}

#[tokio::test]
async fn a_renewal_that_crosses_the_tenure_threshold_promotes_and_a_lapse_demotes() {
    // Arrange: nine full years of tenure, so Silver on the first run.
    let app = spawn_app().await;
    let number = ten_year_reader(&app).await;
    define(&app, &club()).await;
    let job = recompute(&app, "reader-club").await;
    assert_eq!(job["joined"], 1);
    let before = clubs_of(&app, &number).await;
    assert_eq!(tier(&before), Some("silver"));
    assert_eq!(
        before["memberships"][0]["because"],
        "Silver: tenure 9 y >= 2 y"
    );

    // Act: the desk renews on 2 January, inside the grace period.
    app.set_today("2026-01-02");
    let response = app
        .request(
            Method::POST,
            &format!("/api/v1/subscribers/{number}/renewals"),
            &app.staff,
        )
        .header("Idempotency-Key", "renew-2026")
        .send()
        .await
        .expect("request");

    // Assert: Silver's 2 % is in the price, named; then the renewal promoted the reader.
    assert_eq!(response.status(), StatusCode::CREATED);
    let order: Value = response.json().await.expect("json");
    let discounts = order["terms"][0]["discounts"]
        .as_array()
        .expect("discounts");
    let perk = discounts
        .iter()
        .find(|d| d["kind"] == "club")
        .expect("a club discount");
    assert_eq!(perk["amount"]["amount"], 400);
    assert_eq!(perk["reason"], "club: Silver (Reader Club) 2%");
    assert!(discounts.iter().any(|d| d["kind"] == "loyalty"));
    let after = clubs_of(&app, &number).await;
    assert_eq!(tier(&after), Some("gold"));
    assert_eq!(
        after["memberships"][0]["because"],
        "Gold: tenure 10 y >= 10 y; titles held 1 >= 1; no complaint unresolved over 14 days"
    );
    assert_eq!(after["memberships"][0]["tier_since"], "2026-01-02");
    let moves: Vec<&str> = after["history"]
        .as_array()
        .expect("history")
        .iter()
        .map(|h| h["change"].as_str().expect("change"))
        .collect();
    assert_eq!(moves, ["joined", "promoted"]);

    // A second run changes nothing.
    let again = recompute(&app, "reader-club").await;
    assert_eq!(
        (
            again["joined"].clone(),
            again["promoted"].clone(),
            again["demoted"].clone()
        ),
        (json!(0), json!(0), json!(0))
    );

    // The 2026 term ends and is not renewed: by March the reader has lapsed.
    app.set_today("2027-03-01");
    let lapse = recompute(&app, "reader-club").await;
    assert_eq!(lapse["demoted"], 1);
    let lapsed = clubs_of(&app, &number).await;
    assert_eq!(tier(&lapsed), Some("silver"));
    let because = lapsed["memberships"][0]["because"]
        .as_str()
        .expect("because");
    assert!(
        because.starts_with("Silver: spend over 24 months"),
        "{because}"
    );
    let last = lapsed["history"]
        .as_array()
        .expect("history")
        .last()
        .cloned();
    assert_eq!(last.expect("a move")["change"], "demoted");

    // The timeline shows the moves too.
    let timeline: Value = app
        .get(
            &format!("/api/v1/subscribers/{number}/timeline?kind=tier"),
            &app.staff,
        )
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(timeline["items"].as_array().map(Vec::len), Some(3));
}

#[tokio::test]
async fn an_override_holds_until_it_expires() {
    let app = spawn_app().await;
    publication(&app, "DAILY", &[("2024-01-01", 20_000)]).await;
    let number = reader(&app, "Newcomer").await;
    app.set_today("2026-06-01");
    subscribe(&app, &number, print_year("DAILY", "2026-01-01")).await;
    define(&app, &club()).await;
    recompute(&app, "reader-club").await;
    assert_eq!(tier(&clubs_of(&app, &number).await), Some("silver"));
    let path = format!("/api/v1/subscribers/{number}/clubs/reader-club/override");

    // Bad requests: no such tier, a day gone by, no reason.
    let bad = app
        .request(Method::PUT, &path, &app.staff)
        .json(
            &json!({ "tier": "platinum", "kind": "grant", "reason": "", "expires": "2026-05-01" }),
        )
        .send()
        .await
        .expect("request");
    let body = problem(bad, StatusCode::UNPROCESSABLE_ENTITY).await;
    let fields = fields_of(&body);
    assert_eq!(fields, ["tier", "reason", "expires"]);

    // Gold is granted until the end of June.
    let grant = json!({ "tier": "gold", "kind": "grant", "reason": "apology for a lost parcel",
                        "expires": "2026-06-30" });
    let response = app
        .request(Method::PUT, &path, &app.staff)
        .json(&grant)
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::OK);
    let granted: Value = response.json().await.expect("json");
    assert_eq!(tier(&granted), Some("gold"));
    assert_eq!(granted["memberships"][0]["overridden"], true);
    assert_eq!(
        granted["memberships"][0]["because"],
        "Gold: granted by reception desk until 2026-06-30 (apology for a lost parcel)"
    );
    let twice = app
        .request(Method::PUT, &path, &app.staff)
        .json(&grant)
        .send()
        .await
        .expect("request");
    problem(twice, StatusCode::CONFLICT).await;

    // The nightly run keeps it while it lasts, and lets it go after.
    app.set_today("2026-06-30");
    recompute(&app, "reader-club").await;
    assert_eq!(tier(&clubs_of(&app, &number).await), Some("gold"));
    app.set_today("2026-07-01");
    let job = recompute(&app, "reader-club").await;
    assert_eq!(job["demoted"], 1);
    let after = clubs_of(&app, &number).await;
    assert_eq!(tier(&after), Some("silver"));
    assert_eq!(after["memberships"][0]["overridden"], false);
    assert_eq!(after["overrides"][0]["ended_by"], "expiry");
    let ended = app
        .request(Method::DELETE, &path, &app.staff)
        .send()
        .await
        .expect("request");
    problem(ended, StatusCode::NOT_FOUND).await;

    // An erased reader leaves the club at the next run.
    let erase = format!("/api/v1/subscribers/{number}/erase");
    let response = app.post(&erase, &app.admin, &json!({})).await;
    assert_eq!(response.status(), StatusCode::OK);
    let job = recompute(&app, "reader-club").await;
    assert_eq!(job["left"], 1);
    let gone = clubs_of(&app, &number).await;
    assert_eq!(gone["memberships"], json!([]));
    let last = gone["history"].as_array().expect("history").last().cloned();
    assert_eq!(
        last.expect("a move")["because"],
        "the reader's personal data was erased"
    );
}

#[tokio::test]
async fn concurrent_answers_never_overbook_and_the_waitlist_moves_up_in_order() {
    // Arrange: six Silver readers and a concert with three places.
    let app = spawn_app().await;
    publication(&app, "DAILY", &[("2024-01-01", 20_000)]).await;
    app.set_today("2026-03-01");
    let mut readers = Vec::new();
    for i in 0..6 {
        let number = reader(&app, &format!("Guest{i}")).await;
        subscribe(&app, &number, print_year("DAILY", "2026-01-01")).await;
        readers.push(number);
    }
    define(&app, &club()).await;
    recompute(&app, "reader-club").await;
    let event = json!({ "title": "New Year concert", "kind": "concert",
                        "starts_at": "2026-04-10T19:00:00Z", "place": "City Hall",
                        "capacity": 3, "eligible_tiers": ["silver", "gold"] });
    let response = app
        .post("/api/v1/clubs/reader-club/events", &app.staff, &event)
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let id = response.json::<Value>().await.expect("json")["id"].clone();
    let invited: Value = app
        .post(
            &format!("/api/v1/events/{id}/invitations"),
            &app.staff,
            &json!({}),
        )
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(invited["invited"], 6);

    // Act: all six say yes at once.
    let answer = |number: String| {
        let app = &app;
        let id = id.clone();
        async move {
            app.post(
                &format!("/api/v1/events/{id}/invitations/{number}/answer"),
                &app.staff,
                &json!({ "answer": "yes" }),
            )
            .await
            .json::<Value>()
            .await
            .expect("json")
        }
    };
    let answers = futures::future::join_all(readers.iter().cloned().map(answer)).await;

    // Assert: three places taken, three waiting in the order they answered.
    let states = |s: &str| {
        answers
            .iter()
            .filter(|a| a["invitation"]["state"] == s)
            .count()
    };
    assert_eq!((states("accepted"), states("waitlisted")), (3, 3));
    let counts: Value = app
        .get(&format!("/api/v1/events/{id}"), &app.staff)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(counts["counts"]["accepted"], 3);
    let mut waiting: Vec<(i64, String)> = answers
        .iter()
        .filter(|a| a["invitation"]["state"] == "waitlisted")
        .map(|a| {
            let position = a["invitation"]["position"].as_i64().expect("position");
            (
                position,
                a["invitation"]["subscriber"]
                    .as_str()
                    .expect("number")
                    .to_owned(),
            )
        })
        .collect();
    waiting.sort();

    // One guest gives their place back: the first on the waitlist gets it, then the next.
    let leaving = answers
        .iter()
        .find(|a| a["invitation"]["state"] == "accepted")
        .expect("an accepted guest")["invitation"]["subscriber"]
        .as_str()
        .expect("number")
        .to_owned();
    let declined: Value = app
        .post(
            &format!("/api/v1/events/{id}/invitations/{leaving}/answer"),
            &app.staff,
            &json!({ "answer": "no" }),
        )
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(declined["invitation"]["state"], "declined");
    assert_eq!(declined["promoted"]["subscriber"], waiting[0].1.as_str());
    assert_eq!(declined["promoted"]["state"], "accepted");

    // Check-in on the day: an accepted guest comes, a waiting one cannot.
    app.clock
        .set("2026-04-10T18:30:00Z".parse().expect("instant"));
    let checked = app
        .post(
            &format!("/api/v1/events/{id}/invitations/{}/check-in", waiting[0].1),
            &app.staff,
            &json!({}),
        )
        .await;
    assert_eq!(checked.status(), StatusCode::OK);
    let refused = app
        .post(
            &format!("/api/v1/events/{id}/invitations/{}/check-in", waiting[1].1),
            &app.staff,
            &json!({}),
        )
        .await;
    problem(refused, StatusCode::CONFLICT).await;
    let card = clubs_of(&app, &waiting[0].1).await;
    assert_eq!(card["events"][0]["state"], "attended");
    assert_eq!(card["events"][0]["title"], "New Year concert");

    // The report: one of three places was used.
    app.set_today("2026-05-01");
    let report: Value = app
        .get(
            "/api/v1/clubs/reader-club/report?from=2026-03-01&to=2026-04-30",
            &app.staff,
        )
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(report["events"][0]["places_taken"], 3);
    assert_eq!(report["events"][0]["attended"], 1);
    let rate = report["attendance_rate"].as_f64().expect("rate");
    assert!((rate - 1.0 / 3.0).abs() < 1e-9, "{rate}");
    assert_eq!(report["members"][0]["on"], "2026-03-31");
    assert_eq!(report["members"][0]["tiers"]["silver"], 6);
    let silver = &report["moves"][0];
    assert_eq!(
        (silver["tier"].clone(), silver["joined"].clone()),
        (json!("silver"), json!(6))
    );

    // A reader who was never invited cannot answer.
    let stranger = reader(&app, "Stranger").await;
    app.set_today("2026-04-01");
    let response = app
        .post(
            &format!("/api/v1/events/{id}/invitations/{stranger}/answer"),
            &app.staff,
            &json!({ "answer": "yes" }),
        )
        .await;
    problem(response, StatusCode::NOT_FOUND).await;
}

#[tokio::test]
async fn bad_rules_and_wrong_roles_are_refused_with_what_to_fix() {
    let app = spawn_app().await;
    publication(&app, "DAILY", &[("2024-01-01", 20_000)]).await;

    // An unknown field names itself.
    let mut unknown = club();
    unknown["tiers"][0]["rule"] = json!({ "tenure": { "min_yeers": 2 } });
    let response = app.post("/api/v1/clubs", &app.admin, &unknown).await;
    let body = problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
    let detail = body["detail"].as_str().expect("detail");
    assert!(detail.contains("min_yeers"), "{detail}");

    // Negative thresholds, a missing title and a bad discount, each by its path.
    let mut negative = club();
    negative["tiers"][0]["rule"] = json!({ "any": [ { "tenure": { "min_years": -1 } },
                                                     { "holds": { "publication": "WEEKLY" } } ] });
    negative["tiers"][1]["perks"]["renewal_discount_percent"] = json!(120);
    let response = app.post("/api/v1/clubs", &app.admin, &negative).await;
    let body = problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
    let fields = fields_of(&body);
    assert_eq!(
        fields,
        [
            "tiers[0].rule.any[0].tenure.min_years",
            "tiers[1].perks.renewal_discount_percent"
        ]
    );
    let mut missing = club();
    missing["tiers"][0]["rule"] = json!({ "holds": { "publication": "WEEKLY" } });
    let response = app.post("/api/v1/clubs", &app.admin, &missing).await;
    let body = problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(
        body["errors"][0]["message"],
        "there is no publication WEEKLY"
    );

    // Staff read clubs but do not define them; advertisers reach neither.
    let response = app.post("/api/v1/clubs", &app.staff, &club()).await;
    problem(response, StatusCode::FORBIDDEN).await;
    let response = app.get("/api/v1/clubs", &app.advertiser).await;
    problem(response, StatusCode::FORBIDDEN).await;
    define(&app, &club()).await;
    let response = app.post("/api/v1/clubs", &app.admin, &club()).await;
    problem(response, StatusCode::CONFLICT).await;
    let response = app.get("/api/v1/clubs/no-such-club", &app.staff).await;
    problem(response, StatusCode::NOT_FOUND).await;

    // An edit needs the version it is based on, and keeps the code.
    let path = "/api/v1/clubs/reader-club";
    let mut edited = club();
    edited["name"] = json!("Readers' Circle");
    let stale = app
        .request(Method::PUT, path, &app.admin)
        .header("If-Match", "\"7\"")
        .json(&edited)
        .send()
        .await
        .expect("request");
    problem(stale, StatusCode::CONFLICT).await;
    let fresh = app
        .request(Method::PUT, path, &app.admin)
        .header("If-Match", "\"1\"")
        .json(&edited)
        .send()
        .await
        .expect("request");
    assert_eq!(fresh.status(), StatusCode::OK);
    let view: Value = fresh.json().await.expect("json");
    assert_eq!(
        (view["name"].clone(), view["version"].clone()),
        (json!("Readers' Circle"), json!(2))
    );

    // An event for a tier without event access, or in the past, is refused.
    let mut no_access = club();
    no_access["code"] = json!("friends");
    no_access["tiers"][0]["perks"]["event_access"] = json!(false);
    define(&app, &no_access).await;
    let event = json!({ "title": "Forum", "kind": "forum", "starts_at": "2000-01-01T10:00:00Z",
                        "place": "Hall", "capacity": 0, "eligible_tiers": ["silver", "bronze"] });
    let response = app
        .post("/api/v1/clubs/friends/events", &app.staff, &event)
        .await;
    let body = problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
    let fields = fields_of(&body);
    assert_eq!(
        fields,
        [
            "capacity",
            "starts_at",
            "eligible_tiers[0]",
            "eligible_tiers[1]"
        ]
    );
}

#[tokio::test]
async fn a_cancellation_recomputes_the_reader_at_once() {
    let app = spawn_app().await;
    publication(&app, "DAILY", &[("2024-01-01", 20_000)]).await;
    let number = reader(&app, "Brief").await;
    app.set_today("2026-02-01");
    let order = subscribe(&app, &number, print_year("DAILY", "2026-01-01")).await;
    define(&app, &club()).await;
    recompute(&app, "reader-club").await;
    let before = clubs_of(&app, &number).await;
    assert_eq!(tier(&before), Some("silver"));

    // Cancelled from 1 February with everything refunded: nothing spent, nothing held.
    let term = &order["terms"][0];
    let response = app
        .post(
            &format!(
                "/api/v1/subscribers/{number}/terms/{}/cancellation",
                term["id"]
            ),
            &app.staff,
            &json!({ "effective": "2026-02-01", "reason": "moved abroad",
                     "refund": term["price_paid"]["amount"] }),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);

    let after = clubs_of(&app, &number).await;
    assert_eq!(after["memberships"], json!([]));
    let last = after["history"]
        .as_array()
        .expect("history")
        .last()
        .cloned();
    let last = last.expect("a move");
    assert_eq!(last["change"], "left");
    assert_eq!(last["by"], "reception desk");
    let because = last["because"].as_str().expect("because");
    assert!(because.starts_with("not Silver: none of:"), "{because}");
}
