//! Declarative segments over HTTP: every filter condition previewed and refreshed over a small
//! readership, filters evaluated as of a past day, refusals that say what to fix, nesting and
//! cycles, edits and deletion, and a refresh racing renewals and erasures.

use std::collections::BTreeSet;
use std::ops::RangeInclusive;
use std::sync::Arc;

use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};

use crate::complaints::fields_of;
use crate::helpers::{TestApp, person, problem, spawn_app, spawn_app_with};
use crate::pipeline::{jumping, members, refresh_racing, set};
use crate::plugins::{component, example_manifest, install, recompute_club, refresh, segment};
use crate::renewals::{print_year, publication, reader, subscribe};

/// The numbers of a list of subscriber summaries, in the order given.
fn numbers(readers: &Value) -> Vec<String> {
    readers
        .as_array()
        .expect("a list of readers")
        .iter()
        .map(|r| r["number"].as_str().expect("number").to_owned())
        .collect()
}

/// The readers at these places; readers are created in subscriber-number order.
fn pick(readers: &[String], places: &[usize]) -> Vec<String> {
    places.iter().map(|&i| readers[i].clone()).collect()
}

fn at(app: &TestApp, instant: &str) {
    app.clock.set(instant.parse().expect("an RFC 3339 instant"));
}

fn instant(value: &Value) -> chrono::DateTime<chrono::Utc> {
    let text = value.as_str().expect("an instant");
    text.parse().expect("an RFC 3339 instant")
}

/// Creates a subscriber from `body` and returns the number.
async fn enrol(app: &TestApp, body: Value) -> String {
    let card = app.create(body).await;
    card["number"].as_str().expect("number").to_owned()
}

/// A reader who has granted marketing emails.
fn consenting(family: &str) -> Value {
    let mut body = person("Ada", family);
    body["consents"] =
        json!([{ "purpose": "marketing_email", "granted": true, "channel": "phone" }]);
    body
}

async fn staff_member(app: &TestApp, name: &str) -> Value {
    let response = app
        .post("/api/v1/staff", &app.admin, &json!({ "name": name }))
        .await;
    assert!(response.status().is_success(), "staff member refused");
    let staff: Value = response.json().await.expect("json");
    staff["id"].clone()
}

/// Previews `body` as staff; it must be answered.
async fn preview(app: &TestApp, body: &Value) -> Value {
    let response = app.post("/api/v1/segments/preview", &app.staff, body).await;
    let status = response.status();
    let answer: Value = response.json().await.expect("json");
    assert_eq!(status, StatusCode::OK, "preview refused: {answer}");
    answer
}

/// The readers `filter` finds on `as_of` (today when none), in number order.
async fn matching(app: &TestApp, filter: &Value, as_of: Option<&str>) -> Vec<String> {
    let mut body = json!({ "filter": filter, "limit": 100 });
    if let Some(day) = as_of {
        body["as_of"] = json!(day);
    }
    let answer = preview(app, &body).await;
    let found = numbers(&answer["readers"]);
    assert_eq!(answer["count"], found.len(), "{body}");
    found
}

/// Asserts that each filter, previewed on `as_of` (today when none), finds exactly the readers
/// at the places given with it.
async fn assert_finds(
    app: &TestApp,
    readers: &[String],
    as_of: Option<&str>,
    cases: Vec<(Value, Vec<usize>)>,
) {
    for (filter, places) in cases {
        let found = matching(app, &filter, as_of).await;
        assert_eq!(found, pick(readers, &places), "{filter} on {as_of:?}");
    }
}

async fn post_segment(app: &TestApp, body: &Value) -> Response {
    app.post("/api/v1/segments", &app.staff, body).await
}

/// Defines the segment `name` by `filter`, evaluated on `as_of` when given; it must be created.
async fn define_on(app: &TestApp, name: &str, filter: Value, as_of: Option<&str>) -> Value {
    let mut body = json!({ "name": name, "filter": filter });
    if let Some(day) = as_of {
        body["as_of"] = json!(day);
    }
    let response = post_segment(app, &body).await;
    let status = response.status();
    let view: Value = response.json().await.expect("json");
    assert_eq!(status, StatusCode::CREATED, "segment refused: {view}");
    view
}

async fn define(app: &TestApp, name: &str, filter: Value) -> Value {
    define_on(app, name, filter, None).await
}

async fn segment_view(app: &TestApp, name: &str) -> Value {
    let response = app
        .get(&format!("/api/v1/segments/{name}"), &app.staff)
        .await;
    assert_eq!(response.status(), StatusCode::OK, "segment {name}");
    response.json().await.expect("json")
}

/// Refreshes the segment, which must succeed, and returns its new members.
async fn refreshed(app: &TestApp, name: &str) -> BTreeSet<String> {
    let done = refresh(app, name).await;
    assert_eq!(done["state"], "done", "{done}");
    let found = members(app, name).await;
    assert_eq!(done["size"], found.len(), "{done}");
    found
}

async fn patch_segment(app: &TestApp, name: &str, token: &str, body: &Value) -> Response {
    app.request(Method::PATCH, &format!("/api/v1/segments/{name}"), token)
        .json(body)
        .send()
        .await
        .expect("request")
}

/// Edits the segment as staff; the edit must be taken.
async fn edit(app: &TestApp, name: &str, body: Value) -> Value {
    let response = patch_segment(app, name, &app.staff, &body).await;
    let status = response.status();
    let view: Value = response.json().await.expect("json");
    assert_eq!(status, StatusCode::OK, "edit refused: {view}");
    view
}

async fn delete_segment(app: &TestApp, name: &str, token: &str) -> Response {
    app.request(Method::DELETE, &format!("/api/v1/segments/{name}"), token)
        .send()
        .await
        .expect("request")
}

/// The fields an unprocessable request names.
async fn refused_fields(response: Response) -> Vec<String> {
    let body = problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
    fields_of(&body).into_iter().map(str::to_owned).collect()
}

/// The message of the error at `field` in an unprocessable answer.
async fn refusal_at(response: Response, field: &str) -> String {
    let body = problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
    let errors = body["errors"].as_array().expect("errors");
    let message = errors
        .iter()
        .find(|e| e["field"] == field)
        .and_then(|e| e["message"].as_str());
    message
        .unwrap_or_else(|| panic!("no error at {field}: {body}"))
        .to_owned()
}

/// The club `readers`: Bronze for a title held, Silver from two years of tenure, Gold from five.
async fn define_club(app: &TestApp) {
    let club = json!({
        "code": "readers", "name": "Readers", "description": null,
        "tiers": [
            { "code": "bronze", "name": "Bronze", "rule": { "titles": { "min": 1 } } },
            { "code": "silver", "name": "Silver", "rule": { "tenure": { "min_years": 2 } } },
            { "code": "gold", "name": "Gold", "rule": { "tenure": { "min_years": 5 } } },
        ],
    });
    let response = app.post("/api/v1/clubs", &app.admin, &club).await;
    assert_eq!(response.status(), StatusCode::CREATED, "club refused");
}

async fn recompute_readers_club(app: &TestApp) {
    let job = recompute_club(app, "readers").await;
    assert_eq!(job["state"], "done", "{job}");
}

/// Installs churn-risk and its `lapsed` segment (not yet refreshed).
async fn churn_risk_lapsed(app: &TestApp) {
    let wasm = component("churn_risk");
    install(app, &example_manifest("churn-risk", &wasm), &wasm).await;
    segment(app, "lapsed", "churn-risk", "lapsed").await;
}

async fn complain(app: &TestApp, number: &str) -> Value {
    let body = json!({ "subscriber": number, "kind": "complaint", "channel": "phone",
                       "category": "missed_delivery", "text": "No paper again" });
    let response = app.post("/api/v1/interactions", &app.staff, &body).await;
    let status = response.status();
    let view: Value = response.json().await.expect("json");
    assert_eq!(status, StatusCode::CREATED, "complaint refused: {view}");
    view
}

async fn step(app: &TestApp, complaint: &Value, body: Value) {
    let path = format!("/api/v1/interactions/{}/steps", complaint["id"]);
    let response = app.post(&path, &app.staff, &body).await;
    assert_eq!(response.status(), StatusCode::OK, "{body}");
}

/// Subscribes `number` to DAILY in print for each of `years`, from 1 January.
async fn yearly(app: &TestApp, number: &str, years: RangeInclusive<i32>) {
    for year in years {
        let start = format!("{year}-01-01");
        subscribe(app, number, print_year("DAILY", &start)).await;
    }
}

/// Six readers of DAILY and WEEKLY, looked at on 1 June 2026. By place: 0 DAILY in print every
/// year since 2020; 1 DAILY digital and WEEKLY in print since January; 2 lapsed after 2022;
/// 3 never subscribed; 4 WEEKLY from September (pending); 5 DAILY in print until 14 May (in
/// grace, a year of tenure).
async fn term_readers() -> (TestApp, Vec<String>) {
    let app = spawn_app().await;
    publication(&app, "DAILY", &[("2010-01-01", 20_000)]).await;
    publication(&app, "WEEKLY", &[("2010-01-01", 8_000)]).await;
    app.set_today("2026-06-01");
    let mut readers = Vec::new();
    for family in ["Veteran", "Digital", "Lapsed", "Never", "Pending", "Grace"] {
        readers.push(reader(&app, family).await);
    }
    yearly(&app, &readers[0], 2020..=2026).await;
    let mut digital = print_year("DAILY", "2026-01-01");
    digital["format"] = json!("digital");
    subscribe(&app, &readers[1], digital).await;
    subscribe(&app, &readers[1], print_year("WEEKLY", "2026-01-01")).await;
    subscribe(&app, &readers[2], print_year("DAILY", "2022-01-01")).await;
    subscribe(&app, &readers[4], print_year("WEEKLY", "2026-09-01")).await;
    subscribe(&app, &readers[5], print_year("DAILY", "2025-05-15")).await;
    (app, readers)
}

#[tokio::test]
async fn term_conditions_match_by_status_tenure_titles_holds_spend_and_revenue() {
    // Arrange
    let (app, r) = term_readers().await;

    // Act and assert: each condition finds its readers, and only them.
    assert_finds(
        &app,
        &r,
        None,
        vec![
            (json!({ "status": { "in": ["active"] } }), vec![0, 1]),
            (
                json!({ "status": { "in": ["lapsed", "grace"] } }),
                vec![2, 5],
            ),
            (
                json!({ "status": { "in": ["pending", "none"] } }),
                vec![3, 4],
            ),
            (json!({ "tenure": { "min_years": 2 } }), vec![0]),
            (
                json!({ "tenure": { "min_years": 1, "max_years": 3 } }),
                vec![5],
            ),
            (json!({ "tenure": { "max_years": 0 } }), vec![1, 2, 3, 4]),
            (json!({ "titles": { "min": 2 } }), vec![1]),
            (json!({ "titles": { "min": 1, "max": 1 } }), vec![0, 5]),
            (json!({ "titles": { "max": 0 } }), vec![2, 3, 4]),
            (
                json!({ "holds": { "publication": "DAILY" } }),
                vec![0, 1, 5],
            ),
            (
                json!({ "holds": { "publication": "DAILY", "format": "print" } }),
                vec![0, 5],
            ),
            (
                json!({ "holds": { "publication": "DAILY", "format": "digital" } }),
                vec![1],
            ),
            (json!({ "holds": { "publication": "WEEKLY" } }), vec![1]),
            // Today, a term starting later counts in the trailing spend.
            (
                json!({ "spend": { "months": 12, "min": 1 } }),
                vec![0, 1, 4],
            ),
            (
                json!({ "spend": { "months": 12, "min": 15_000 } }),
                vec![0, 1],
            ),
            (
                json!({ "spend": { "months": 12, "max": 0 } }),
                vec![2, 3, 5],
            ),
            (json!({ "revenue": { "min": 50_000 } }), vec![0]),
            (
                json!({ "revenue": { "min": 1, "max": 30_000 } }),
                vec![1, 2, 5],
            ),
            (json!({ "revenue": { "max": 0 } }), vec![3, 4]),
        ],
    )
    .await;

    // A preview counts every match, shows the first `limit` in number order, and saves nothing.
    let everyone = json!({ "not": { "status": { "in": ["cancelled"] } } });
    let first = preview(&app, &json!({ "filter": everyone, "limit": 2 })).await;
    assert_eq!(first["count"], 6);
    assert_eq!(numbers(&first["readers"]), pick(&r, &[0, 1]));
    assert_eq!(first["day"], "2026-06-01");
    assert_eq!(first["as_of"], Value::Null);
    assert_eq!(first["readers"][0]["display_name"], "Ada Veteran");
    let listed: Value = app
        .get("/api/v1/segments", &app.staff)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(listed, json!([]), "a preview saved a segment");

    // Saved and refreshed, segments hold the same readers.
    let in_print = json!({ "holds": { "publication": "DAILY", "format": "print" } });
    define(&app, "daily-in-print", in_print).await;
    define(
        &app,
        "big-spenders",
        json!({ "revenue": { "min": 50_000 } }),
    )
    .await;
    assert_eq!(
        refreshed(&app, "daily-in-print").await,
        set(&pick(&r, &[0, 5]))
    );
    assert_eq!(refreshed(&app, "big-spenders").await, set(&pick(&r, &[0])));
}

#[tokio::test]
async fn profile_conditions_match_by_place_age_consent_relationship_and_attributes() {
    // Arrange: a Parisian, a Scot, a Breton known by a billing address only, and a reader
    // known by name only.
    let app = spawn_app().await;
    app.set_today("2026-06-01");
    let manager = staff_member(&app, "Fiona Keir").await;
    let r = vec![
        enrol(
            &app,
            json!({
                "given_name": "Amélie", "family_name": "Durand", "birth_date": "1960-05-01",
                "addresses": [{ "kind": "delivery", "lines": ["11 rue Oberkampf"],
                                "postal_code": "75011", "city": "Paris",
                                "region": "Île-de-France", "country": "FR" }],
                "consents": [{ "purpose": "marketing_email", "granted": true,
                               "channel": "phone" }],
                "relationship_level": "proactive", "relationship_manager": manager,
                "custom_attributes": { "plan": "family", "children": 2 },
            }),
        )
        .await,
        enrol(
            &app,
            json!({
                "given_name": "Iain", "family_name": "Stewart", "birth_date": "1990-01-01",
                "addresses": [{ "kind": "delivery", "lines": ["14 Elm Row"],
                                "postal_code": "EH7 4AA", "city": "Edinburgh",
                                "region": "Scotland" }],
                "consents": [{ "purpose": "marketing_email", "granted": false,
                               "channel": "phone" }],
                "relationship_manager": manager,
                "custom_attributes": { "plan": "solo", "children": 0 },
            }),
        )
        .await,
        enrol(
            &app,
            json!({
                "given_name": "Yann", "family_name": "Le Goff",
                "addresses": [{ "kind": "billing", "lines": ["2 quai de la Douane"],
                                "postal_code": "29200", "city": "Brest",
                                "region": "Bretagne", "country": "FR" }],
                "custom_attributes": { "vip": true },
            }),
        )
        .await,
        enrol(&app, person("Nobody", "Known")).await,
    ];

    // Act and assert
    assert_finds(
        &app,
        &r,
        None,
        vec![
            (json!({ "region": { "in": ["ile-de-france"] } }), vec![0]),
            (
                json!({ "region": { "in": ["BRETAGNE", "île-de-france"] } }),
                vec![0, 2],
            ),
            (
                json!({ "region": { "in": ["SCOTLAND", "Wales"] } }),
                vec![1],
            ),
            (json!({ "country": { "in": ["fr"] } }), vec![0, 2]),
            (json!({ "country": { "in": ["Gb", "de"] } }), vec![1]),
            (json!({ "postal_code": { "prefix": "eh-7" } }), vec![1]),
            (json!({ "postal_code": { "prefix": "750 1" } }), vec![0]),
            (json!({ "age": { "min": 60 } }), vec![0]),
            (json!({ "age": { "min": 30, "max": 40 } }), vec![1]),
            // Without a birth date, no age matches.
            (json!({ "not": { "age": { "min": 0 } } }), vec![2, 3]),
            (
                json!({ "consent": { "purpose": "marketing_email" } }),
                vec![0],
            ),
            (
                json!({ "not": { "consent": { "purpose": "marketing_email" } } }),
                vec![1, 2, 3],
            ),
            (json!({ "relationship": { "level": "proactive" } }), vec![0]),
            (
                json!({ "relationship": { "manager": manager } }),
                vec![0, 1],
            ),
            (
                json!({ "relationship": { "level": "basic", "manager": manager } }),
                vec![1],
            ),
            (
                json!({ "attribute": { "key": "plan", "op": "eq", "value": "family" } }),
                vec![0],
            ),
            // `ne` needs the attribute present.
            (
                json!({ "attribute": { "key": "plan", "op": "ne", "value": "family" } }),
                vec![1],
            ),
            (
                json!({ "attribute": { "key": "plan", "op": "ge", "value": "g" } }),
                vec![1],
            ),
            (
                json!({ "attribute": { "key": "plan", "op": "exists" } }),
                vec![0, 1],
            ),
            (
                json!({ "attribute": { "key": "children", "op": "gt", "value": 1 } }),
                vec![0],
            ),
            (
                json!({ "attribute": { "key": "children", "op": "le", "value": 0 } }),
                vec![1],
            ),
            (
                json!({ "attribute": { "key": "children", "op": "eq", "value": 2.0 } }),
                vec![0],
            ),
            // A number and text have no order.
            (
                json!({ "attribute": { "key": "children", "op": "lt", "value": "3" } }),
                vec![],
            ),
            (
                json!({ "attribute": { "key": "vip", "op": "eq", "value": true } }),
                vec![2],
            ),
        ],
    )
    .await;
    let french = preview(&app, &json!({ "filter": { "country": { "in": ["FR"] } } })).await;
    assert_eq!(french["readers"][0]["city"], "Paris");
    assert_eq!(french["readers"][1]["region"], "Bretagne");

    define(&app, "scots", json!({ "region": { "in": ["scotland"] } })).await;
    define(
        &app,
        "managed",
        json!({ "relationship": { "manager": manager } }),
    )
    .await;
    assert_eq!(refreshed(&app, "scots").await, set(&pick(&r, &[1])));
    assert_eq!(refreshed(&app, "managed").await, set(&pick(&r, &[0, 1])));
}

#[tokio::test]
async fn complaint_conditions_count_open_and_breached_complaints() {
    // Arrange, on Monday 9 March 2026 (London, GMT): a reader's two complaints wait past their
    // 11:00 response time; another's was answered and resolved at once; a third's came in at
    // noon and is due at 14:00; the fourth never complained.
    let app = spawn_app().await;
    let mut r = Vec::new();
    for family in ["Waiting", "Answered", "Recent", "Content"] {
        r.push(reader(&app, family).await);
    }
    at(&app, "2026-03-09T09:00:00Z");
    complain(&app, &r[0]).await;
    complain(&app, &r[0]).await;
    let answered = complain(&app, &r[1]).await;
    at(&app, "2026-03-09T09:05:00Z");
    step(&app, &answered, json!({ "action": "respond" })).await;
    at(&app, "2026-03-09T09:10:00Z");
    step(
        &app,
        &answered,
        json!({ "action": "resolve", "resolution": "redelivered" }),
    )
    .await;
    at(&app, "2026-03-09T12:00:00Z");
    complain(&app, &r[2]).await;

    // Act and assert
    at(&app, "2026-03-09T12:30:00Z");
    assert_finds(
        &app,
        &r,
        None,
        vec![
            (json!({ "complaints": { "state": "open" } }), vec![0, 2]),
            (
                json!({ "complaints": { "state": "open", "min": 2 } }),
                vec![0],
            ),
            (json!({ "complaints": { "state": "breached" } }), vec![0]),
            (
                json!({ "complaints": { "state": "breached", "min": 3 } }),
                vec![],
            ),
            (
                json!({ "not": { "complaints": { "state": "open" } } }),
                vec![1, 3],
            ),
        ],
    )
    .await;
    define(
        &app,
        "overdue",
        json!({ "complaints": { "state": "breached" } }),
    )
    .await;
    assert_eq!(refreshed(&app, "overdue").await, set(&pick(&r, &[0])));
}

#[tokio::test]
async fn tier_conditions_match_exactly_or_at_least_today_and_as_of_a_day_before_a_promotion() {
    // Arrange: on 20 December 2025 reader 0 has six years of DAILY (Gold), reader 1 one year
    // (Bronze), reader 2 half a year (Bronze), reader 3 nothing; the club is computed.
    let app = spawn_app().await;
    publication(&app, "DAILY", &[("2010-01-01", 20_000)]).await;
    app.set_today("2025-12-20");
    let mut r = Vec::new();
    for family in ["Golden", "Rising", "Newcomer", "Outsider"] {
        r.push(reader(&app, family).await);
    }
    yearly(&app, &r[0], 2019..=2025).await;
    yearly(&app, &r[1], 2024..=2025).await;
    subscribe(&app, &r[2], print_year("DAILY", "2025-06-01")).await;
    define_club(&app).await;
    recompute_readers_club(&app).await;
    // On 2 January the first two renew; reader 1 completes two years and moves up to Silver.
    app.set_today("2026-01-02");
    for number in &r[..2] {
        subscribe(&app, number, print_year("DAILY", "2026-01-01")).await;
    }
    recompute_readers_club(&app).await;

    // Act and assert: today, and on Christmas Day before the promotion.
    let exactly = |tier: &str| json!({ "tier": { "club": "readers", "exactly": tier } });
    let at_least = |tier: &str| json!({ "tier": { "club": "readers", "at_least": tier } });
    assert_finds(
        &app,
        &r,
        None,
        vec![
            (exactly("gold"), vec![0]),
            (exactly("silver"), vec![1]),
            (exactly("bronze"), vec![2]),
            (at_least("silver"), vec![0, 1]),
            (at_least("bronze"), vec![0, 1, 2]),
            (json!({ "not": at_least("bronze") }), vec![3]),
        ],
    )
    .await;
    assert_finds(
        &app,
        &r,
        Some("2025-12-25"),
        vec![
            (exactly("silver"), vec![]),
            (exactly("bronze"), vec![1, 2]),
            (at_least("silver"), vec![0]),
        ],
    )
    .await;
    define(&app, "silver-and-up", at_least("silver")).await;
    assert_eq!(
        refreshed(&app, "silver-and-up").await,
        set(&pick(&r, &[0, 1]))
    );
}

#[tokio::test]
async fn segment_and_plugin_conditions_combine_with_all_any_and_not() {
    // Arrange: by place, a lapsed reader who takes marketing emails, a lapsed one who does
    // not, two current readers likewise, and one who never subscribed.
    let app = spawn_app().await;
    app.set_today("2026-11-23");
    publication(&app, "DT", &[("2020-01-01", 30_000)]).await;
    let r = vec![
        enrol(&app, consenting("Gone")).await,
        reader(&app, "Left").await,
        enrol(&app, consenting("Current")).await,
        reader(&app, "Quiet").await,
        reader(&app, "Never").await,
    ];
    for number in &r[..2] {
        subscribe(&app, number, print_year("DT", "2020-01-01")).await;
    }
    for number in &r[2..4] {
        subscribe(&app, number, print_year("DT", "2026-09-01")).await;
    }
    churn_risk_lapsed(&app).await;
    assert_eq!(refreshed(&app, "lapsed").await, set(&pick(&r, &[0, 1])));
    define(
        &app,
        "reachable",
        json!({ "consent": { "purpose": "marketing_email" } }),
    )
    .await;
    assert_eq!(refreshed(&app, "reachable").await, set(&pick(&r, &[0, 2])));

    // Act and assert
    let left = json!({ "plugin": { "id": "churn-risk", "key": "lapsed" } });
    let reachable = json!({ "segment": { "name": "reachable" } });
    let either = json!({ "any": [left, reachable] });
    let win_back = json!({ "all": [left, reachable] });
    let quiet = json!({ "all": [{ "status": { "in": ["active"] } },
                                { "not": reachable }] });
    assert_finds(
        &app,
        &r,
        None,
        vec![
            (left, vec![0, 1]),
            (reachable, vec![0, 2]),
            (win_back.clone(), vec![0]),
            (either.clone(), vec![0, 1, 2]),
            (json!({ "not": either }), vec![3, 4]),
            (quiet.clone(), vec![3]),
        ],
    )
    .await;

    // A segment of segments reads the members of their last refreshes.
    define(&app, "win-back", win_back).await;
    assert_eq!(refreshed(&app, "win-back").await, set(&pick(&r, &[0])));
    let follow_up = json!({ "any": [{ "segment": { "name": "win-back" } }, quiet] });
    define(&app, "follow-up", follow_up).await;
    assert_eq!(refreshed(&app, "follow-up").await, set(&pick(&r, &[0, 3])));
}

#[tokio::test]
async fn a_filter_as_of_a_past_day_reads_only_the_terms_begun_by_then() {
    // Arrange, on 1 June 2026: reader 0 took DAILY from 2023 to 2025 and lapsed; reader 1
    // started in January; reader 2 has taken it every year since 2020.
    let app = spawn_app().await;
    publication(&app, "DAILY", &[("2010-01-01", 20_000)]).await;
    app.set_today("2026-06-01");
    let mut r = Vec::new();
    for family in ["Lapsed", "Newcomer", "Faithful"] {
        r.push(reader(&app, family).await);
    }
    yearly(&app, &r[0], 2023..=2025).await;
    yearly(&app, &r[1], 2026..=2026).await;
    yearly(&app, &r[2], 2020..=2026).await;

    // Act and assert: today, a year ago, and four years ago.
    let active = json!({ "status": { "in": ["active"] } });
    let never = json!({ "status": { "in": ["none"] } });
    let tenure = |min: i64, max: i64| json!({ "tenure": { "min_years": min, "max_years": max } });
    assert_finds(
        &app,
        &r,
        None,
        vec![
            (active.clone(), vec![1, 2]),
            (tenure(6, 6), vec![2]),
            (tenure(2, 2), vec![]),
        ],
    )
    .await;
    assert_finds(
        &app,
        &r,
        Some("2025-06-01"),
        vec![
            (active.clone(), vec![0, 2]),
            (never.clone(), vec![1]),
            (tenure(5, 5), vec![2]),
            (tenure(2, 2), vec![0]),
            (tenure(6, 6), vec![]),
        ],
    )
    .await;
    assert_finds(
        &app,
        &r,
        Some("2022-06-01"),
        vec![(never, vec![0, 1]), (tenure(2, 2), vec![2])],
    )
    .await;
    let answer = preview(&app, &json!({ "filter": active, "as_of": "2025-06-01" })).await;
    assert_eq!(answer["day"], "2025-06-01");
    assert_eq!(answer["as_of"], "2025-06-01");

    // A saved segment keeps its day until the day is cleared and it is refreshed.
    let view = define_on(&app, "active-last-june", active, Some("2025-06-01")).await;
    assert_eq!(view["as_of"], "2025-06-01");
    assert_eq!(
        refreshed(&app, "active-last-june").await,
        set(&pick(&r, &[0, 2]))
    );
    let cleared = edit(&app, "active-last-june", json!({ "as_of": null })).await;
    assert_eq!(cleared["as_of"], Value::Null);
    assert_eq!(
        members(&app, "active-last-june").await,
        set(&pick(&r, &[0, 2]))
    );
    assert_eq!(
        refreshed(&app, "active-last-june").await,
        set(&pick(&r, &[1, 2]))
    );
}

#[tokio::test]
async fn bad_definitions_previews_edits_and_callers_are_refused_with_what_to_fix() {
    // Arrange: a club, churn-risk with its `lapsed` segment, and one filter segment.
    let app = spawn_app().await;
    app.set_today("2026-06-01");
    define_club(&app).await;
    churn_risk_lapsed(&app).await;
    let age = json!({ "age": { "min": 18 } });
    define(&app, "adults", age.clone()).await;

    // A filter's own mistakes, and names it cannot resolve, at their paths; for a definition
    // and for a preview alike.
    let bad_filters = [
        (
            json!({ "tenure": { "min_years": -1 } }),
            "filter.tenure.min_years",
        ),
        (json!({ "all": [] }), "filter.all"),
        (
            json!({ "all": [{ "status": { "in": ["active"] } },
                            { "holds": { "publication": "WEEKLY" } }] }),
            "filter.all[1].holds.publication",
        ),
        (
            json!({ "tier": { "club": "wine-club", "exactly": "gold" } }),
            "filter.tier.club",
        ),
        (
            json!({ "tier": { "club": "readers", "at_least": "platinum" } }),
            "filter.tier.at_least",
        ),
        (
            json!({ "any": [age,
                            { "tier": { "club": "readers", "exactly": "platinum" } }] }),
            "filter.any[1].tier.exactly",
        ),
        (
            json!({ "not": { "segment": { "name": "nobody" } } }),
            "filter.not.segment.name",
        ),
        (
            json!({ "plugin": { "id": "churn-risk", "key": "churn-high" } }),
            "filter.plugin.key",
        ),
    ];
    for (filter, field) in &bad_filters {
        let body = json!({ "name": "bad", "filter": filter });
        let fields = refused_fields(post_segment(&app, &body).await).await;
        assert_eq!(fields, [*field], "define {filter}");
        let body = json!({ "filter": filter });
        let response = app
            .post("/api/v1/segments/preview", &app.staff, &body)
            .await;
        assert_eq!(refused_fields(response).await, [*field], "preview {filter}");
    }
    // The stored plugin segment is what a plugin condition may name.
    let left = json!({ "plugin": { "id": "churn-risk", "key": "lapsed" } });
    assert_eq!(preview(&app, &json!({ "filter": left })).await["count"], 0);

    // The form of a definition.
    let bad_bodies = [
        (
            json!({ "name": "both", "plugin": "churn-risk", "key": "lapsed",
                    "filter": age }),
            "filter",
        ),
        (json!({ "name": "neither" }), "filter"),
        (json!({ "name": "keyless", "plugin": "churn-risk" }), "key"),
        (
            json!({ "name": "tomorrow", "filter": age, "as_of": "2026-06-02" }),
            "as_of",
        ),
        (
            json!({ "name": "pinned", "plugin": "churn-risk", "key": "lapsed",
                    "as_of": "2026-01-01" }),
            "as_of",
        ),
    ];
    for (body, field) in &bad_bodies {
        let fields = refused_fields(post_segment(&app, body).await).await;
        assert_eq!(fields, [*field], "{body}");
    }
    let bad_previews = [
        (json!({ "filter": age, "as_of": "2026-06-02" }), "as_of"),
        (json!({ "filter": age, "limit": 101 }), "limit"),
    ];
    for (body, field) in &bad_previews {
        let response = app.post("/api/v1/segments/preview", &app.staff, body).await;
        assert_eq!(refused_fields(response).await, [*field], "{body}");
    }
    // An unknown key inside the filter is named.
    let misspelt = json!({ "tenure": { "min_yeers": 1 } });
    for (path, body) in [
        (
            "/api/v1/segments",
            json!({ "name": "typo", "filter": misspelt }),
        ),
        ("/api/v1/segments/preview", json!({ "filter": misspelt })),
    ] {
        let response = app.post(path, &app.staff, &body).await;
        let refused = problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
        let detail = refused["detail"].as_str().expect("detail");
        assert!(detail.contains("min_yeers"), "{path}: {detail}");
    }
    // A name is taken by a segment of either kind.
    for name in ["lapsed", "adults"] {
        let body = json!({ "name": name, "filter": age });
        problem(post_segment(&app, &body).await, StatusCode::CONFLICT).await;
    }

    // Edits are checked as definitions are.
    let bad_edits = [
        ("lapsed", json!({ "filter": age }), "filter"),
        (
            "adults",
            json!({ "filter": { "tenure": { "min_years": -1 } } }),
            "filter.tenure.min_years",
        ),
        ("adults", json!({ "as_of": "2026-06-02" }), "as_of"),
    ];
    for (name, body, field) in &bad_edits {
        let response = patch_segment(&app, name, &app.staff, body).await;
        assert_eq!(refused_fields(response).await, [*field], "{name}: {body}");
    }
    let described = edit(&app, "lapsed", json!({ "description": "Readers who left" })).await;
    assert_eq!(described["description"], "Readers who left");
    assert_eq!(described["kind"], "plugin");
    assert_eq!(described["filter"], Value::Null);

    // No such segment.
    let edit_body = json!({ "description": "x" });
    for response in [
        app.post("/api/v1/segments/nobody/refresh", &app.staff, &json!({}))
            .await,
        patch_segment(&app, "nobody", &app.staff, &edit_body).await,
        app.get("/api/v1/segments/nobody/members", &app.staff).await,
        delete_segment(&app, "nobody", &app.admin).await,
    ] {
        problem(response, StatusCode::NOT_FOUND).await;
    }

    // Advertisers reach none of it; staff do not delete; without a key, nothing.
    let ads = app.advertiser.as_str();
    let create_body = json!({ "name": "ads", "filter": age });
    let preview_body = json!({ "filter": age });
    for response in [
        app.post("/api/v1/segments", ads, &create_body).await,
        app.post("/api/v1/segments/preview", ads, &preview_body)
            .await,
        app.get("/api/v1/segments/adults", ads).await,
        patch_segment(&app, "adults", ads, &edit_body).await,
        app.post("/api/v1/segments/adults/refresh", ads, &json!({}))
            .await,
        app.get("/api/v1/segments/adults/members", ads).await,
        delete_segment(&app, "adults", ads).await,
        delete_segment(&app, "adults", &app.staff).await,
    ] {
        problem(response, StatusCode::FORBIDDEN).await;
    }
    for (path, body) in [
        ("/api/v1/segments", &create_body),
        ("/api/v1/segments/preview", &preview_body),
    ] {
        let response = app
            .client
            .post(format!("{}{path}", app.address))
            .json(body)
            .send()
            .await
            .expect("request");
        problem(response, StatusCode::UNAUTHORIZED).await;
    }

    // Nothing refused was kept.
    let listed: Value = app
        .get("/api/v1/segments", &app.staff)
        .await
        .json()
        .await
        .expect("json");
    let names: BTreeSet<&str> = listed
        .as_array()
        .expect("segments")
        .iter()
        .filter_map(|s| s["name"].as_str())
        .collect();
    assert_eq!(names, BTreeSet::from(["adults", "lapsed"]));
    assert_eq!(segment_view(&app, "adults").await["filter"], age);
}

#[tokio::test]
async fn nested_segments_refuse_cycles_keep_members_until_refreshed_and_go_only_unreferenced() {
    // Arrange: readers born in 1950, 1980 and 2000, looked at on 1 June 2026.
    let app = spawn_app().await;
    app.set_today("2026-06-01");
    let mut r = Vec::new();
    for (family, born) in [
        ("Elder", "1950-03-01"),
        ("Middle", "1980-03-01"),
        ("Young", "2000-03-01"),
    ] {
        let mut body = person("Ada", family);
        body["birth_date"] = json!(born);
        r.push(enrol(&app, body).await);
    }
    let over_forty = json!({ "age": { "min": 40 } });
    let view = define(&app, "over-forty", over_forty.clone()).await;
    assert_eq!(view["kind"], "filter");
    assert_eq!(view["filter"], over_forty);
    for field in ["plugin", "key", "as_of", "size", "refreshed_at"] {
        assert_eq!(view[field], Value::Null, "{field}: {view}");
    }
    assert_eq!(view["created_by"], "reception desk");
    assert_eq!(refreshed(&app, "over-forty").await, set(&pick(&r, &[0, 1])));
    let view = segment_view(&app, "over-forty").await;
    assert_eq!(view["size"], 2);
    assert_eq!(view["refreshes"][0]["plugin_version"], Value::Null);
    let seniors = json!({ "all": [{ "segment": { "name": "over-forty" } },
                                  { "age": { "min": 60 } }] });
    define(&app, "seniors", seniors).await;
    assert_eq!(refreshed(&app, "seniors").await, set(&pick(&r, &[0])));

    // Cycles are refused, naming the segments on the way round.
    let own = json!({ "name": "loop",
                      "filter": { "any": [over_forty,
                                          { "segment": { "name": "loop" } }] } });
    let message = refusal_at(post_segment(&app, &own).await, "filter").await;
    assert!(message.contains("loop"), "{message}");
    let back = json!({ "filter": { "not": { "segment": { "name": "seniors" } } } });
    let response = patch_segment(&app, "over-forty", &app.staff, &back).await;
    let message = refusal_at(response, "filter").await;
    assert!(
        message.contains("over-forty") && message.contains("seniors"),
        "{message}"
    );
    assert_eq!(segment_view(&app, "over-forty").await["filter"], over_forty);

    // An edit changes the definition at once, the members at the next refresh.
    at(&app, "2026-06-01T15:00:00Z");
    let twenty = json!({ "age": { "min": 20 } });
    let edited = edit(
        &app,
        "over-forty",
        json!({ "description": "Readers of twenty and over", "filter": twenty }),
    )
    .await;
    assert_eq!(edited["description"], "Readers of twenty and over");
    assert_eq!(edited["filter"], twenty);
    assert!(
        instant(&edited["updated_at"]) > instant(&edited["created_at"]),
        "{edited}"
    );
    assert_eq!(edited["size"], 2);
    assert_eq!(members(&app, "over-forty").await, set(&pick(&r, &[0, 1])));
    assert_eq!(
        refreshed(&app, "over-forty").await,
        set(&pick(&r, &[0, 1, 2]))
    );

    // A segment another one names stays until that one goes.
    let refused = problem(
        delete_segment(&app, "over-forty", &app.admin).await,
        StatusCode::CONFLICT,
    )
    .await;
    let detail = refused["detail"].as_str().expect("detail");
    assert!(detail.contains("seniors"), "{detail}");
    for name in ["seniors", "over-forty"] {
        let response = delete_segment(&app, name, &app.admin).await;
        assert_eq!(response.status(), StatusCode::NO_CONTENT, "delete {name}");
    }
    problem(
        app.get("/api/v1/segments/over-forty", &app.staff).await,
        StatusCode::NOT_FOUND,
    )
    .await;
}

#[tokio::test]
async fn a_filter_refresh_racing_renewals_and_erasures_loses_no_unchanged_reader() {
    // Arrange: two readers a batch; 40 readers whose only term ended in 2020, 30 to be renewed
    // in an order that jumps across the batches (first, last, second, ...), the other 10 to be
    // erased, which takes them out of every filter.
    let app = spawn_app_with(|c| c.plugins.batch_size = 2).await;
    app.set_today("2026-11-23");
    publication(&app, "DT", &[("2020-01-01", 30_000)]).await;
    let mut lapsed = Vec::new();
    for k in 0..40 {
        let number = reader(&app, &format!("Lapsed{k}")).await;
        subscribe(&app, &number, print_year("DT", "2020-01-01")).await;
        lapsed.push(number);
    }
    define(
        &app,
        "lapsed-readers",
        json!({ "status": { "in": ["lapsed"] } }),
    )
    .await;
    let app = Arc::new(app);
    let (renewing, erasing) = lapsed.split_at(30);
    let order = jumping(renewing);

    // Act: the refresh runs while one task renews and another erases.
    let done = refresh_racing(&app, "lapsed-readers", &order, erasing).await;

    // Assert: one state of the readership, the one after the first k renewals and the first
    // j erasures: no reader left out who was neither, none kept who was renewed before one
    // who is out.
    assert_eq!(done["state"], "done", "{done}");
    assert_eq!(done["processed"], 40);
    let seen = members(&app, "lapsed-readers").await;
    assert_eq!(done["size"], seen.len());
    let k = renewing.iter().filter(|n| !seen.contains(*n)).count();
    let j = erasing.iter().filter(|n| !seen.contains(*n)).count();
    let expected: BTreeSet<String> = set(&lapsed)
        .difference(&set(&order[..k]))
        .filter(|n| !erasing[..j].contains(n))
        .cloned()
        .collect();
    assert_eq!(
        seen, expected,
        "not the state after {k} renewals and {j} erasures"
    );

    // A refresh after the changes: the renewed are active, the erased match nothing.
    assert_eq!(refreshed(&app, "lapsed-readers").await, BTreeSet::new());
}
