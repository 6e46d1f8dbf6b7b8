//! The plugin host over HTTP with real components built from `plugins/` and `tests/plugins/`:
//! upload checks, the lifecycle, offers, segment refreshes, and hostile plugins contained.

use std::time::Duration;

use reqwest::multipart::{Form, Part};
use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::helpers::{TestApp, problem, spawn_app, spawn_app_with};
use crate::renewals::{history, print_year, publication, reader, renew, subscribe};

pub(crate) fn component(name: &str) -> Vec<u8> {
    let path = format!("{}/{name}.wasm", env!("WASM_TEST_PLUGINS"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e} (built by tests/build.rs)"))
}

pub(crate) fn sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The example plugin's own manifest, with the component's SHA-256 filled in.
pub(crate) fn example_manifest(dir: &str, wasm: &[u8]) -> String {
    let path = format!(
        "{}/../plugins/{dir}/masthead-plugin.toml",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).expect("example manifest");
    format!("sha256 = \"{}\"\n{text}", sha256(wasm))
}

/// A manifest for a test segmenter reading `fields`.
fn segmenter_manifest(id: &str, fields: &str, wasm: &[u8]) -> String {
    format!(
        "id = \"{id}\"\nversion = \"1.0.0\"\nkind = \"segmenter\"\napi_version = \"1.0.0\"\n\
         fields = [{fields}]\nsha256 = \"{}\"\n",
        sha256(wasm)
    )
}

async fn upload(app: &TestApp, manifest: &str, wasm: &[u8], grant_pii: bool) -> Response {
    let form = Form::new().text("manifest", manifest.to_string()).part(
        "component",
        Part::bytes(wasm.to_vec()).file_name("plugin.wasm"),
    );
    app.request(Method::POST, "/api/v1/plugins", &app.admin)
        .query(&[("grant_pii", grant_pii)])
        .multipart(form)
        .send()
        .await
        .expect("request")
}

/// Uploads and enables a plugin; panics unless both succeed.
pub(crate) async fn install(app: &TestApp, manifest: &str, wasm: &[u8]) -> Value {
    let response = upload(app, manifest, wasm, false).await;
    let status = response.status();
    let body: Value = response.json().await.expect("json");
    assert_eq!(status, StatusCode::CREATED, "upload failed: {body}");
    let id = body["id"].as_str().expect("id").to_string();
    let response = app
        .post(
            &format!("/api/v1/plugins/{id}/enable"),
            &app.admin,
            &json!({}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.expect("json")
}

async fn enable_version(app: &TestApp, id: &str, version: &str) -> Value {
    let path = format!("/api/v1/plugins/{id}/enable");
    let response = app
        .post(&path, &app.admin, &json!({ "version": version }))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.expect("json")
}

async fn offers(app: &TestApp, number: &str) -> Value {
    let response = app
        .get(&format!("/api/v1/subscribers/{number}/offers"), &app.staff)
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.expect("json")
}

/// Starts a refresh of `segment` and waits for it to end; returns the finished refresh.
pub(crate) async fn refresh(app: &TestApp, segment: &str) -> Value {
    let path = format!("/api/v1/segments/{segment}/refresh");
    let response = app.post(&path, &app.staff, &json!({})).await;
    let status = response.status();
    let job: Value = response.json().await.expect("json");
    assert_eq!(status, StatusCode::ACCEPTED, "refresh refused: {job}");
    for _ in 0..600 {
        let view: Value = app
            .get(&format!("/api/v1/segments/{segment}"), &app.staff)
            .await
            .json()
            .await
            .expect("json");
        let latest = view["refreshes"][0].clone();
        if latest["id"] == job["id"] && latest["state"] != "running" {
            return latest;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the refresh of {segment} did not finish");
}

pub(crate) async fn segment(app: &TestApp, name: &str, plugin: &str, key: &str) {
    let body = json!({ "name": name, "plugin": plugin, "key": key });
    let response = app.post("/api/v1/segments", &app.staff, &body).await;
    let status = response.status();
    let view: Value = response.json().await.expect("json");
    assert_eq!(status, StatusCode::CREATED, "segment refused: {view}");
}

async fn enable(app: &TestApp, plugin: &str) {
    let path = format!("/api/v1/plugins/{plugin}/enable");
    let response = app.post(&path, &app.admin, &json!({})).await;
    assert_eq!(response.status(), StatusCode::OK);
}

/// A reader of the daily `DT` since 2023-12-01 (three yearly print terms, today 2026-11-23),
/// and the `loyalty-offers` example's component and manifest, not yet uploaded.
async fn reader_of_three_years() -> (TestApp, String, Vec<u8>, String) {
    let app = spawn_app().await;
    app.set_today("2026-11-23");
    publication(&app, "DT", &[("2020-01-01", 30_000)]).await;
    let number = reader(&app, "Lovelace").await;
    for start in ["2023-12-01", "2024-12-01", "2025-12-01"] {
        subscribe(&app, &number, print_year("DT", start)).await;
    }
    let wasm = component("loyalty_offers");
    let manifest = example_manifest("loyalty-offers", &wasm);
    (app, number, wasm, manifest)
}

#[tokio::test]
async fn an_offer_provider_proposes_priced_offers_with_reasons_and_can_be_configured_and_rolled_back()
 {
    let (app, number, wasm, manifest) = reader_of_three_years().await;
    let response = upload(&app, &manifest, &wasm, false).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let uploaded: Value = response.json().await.expect("json");
    assert_eq!(uploaded["enabled"], false);
    assert_eq!(uploaded["versions"][0]["limits"]["memory_mib"], 16);
    // Uploaded is not running: no offers yet.
    assert_eq!(offers(&app, &number).await["offers"], json!([]));

    enable(&app, "loyalty-offers").await;
    let answer = offers(&app, &number).await;
    assert_eq!(answer["errors"], json!([]), "{answer}");
    let offer = &answer["offers"][0];
    assert_eq!(offer["plugin"], "loyalty-offers");
    assert_eq!(offer["code"], "loyal-dt-12");
    assert_eq!(offer["list_price"]["amount"], 30_000);
    // 2 full years (since 2023-12-01) x 1.5 % = 3 % off.
    assert_eq!(offer["price"]["amount"], 29_100);
    assert_eq!(offer["valid_until"], "2026-12-23");
    let reason = offer["reason"].as_str().expect("reason");
    assert!(reason.contains("2 full years of tenure"), "{reason}");

    // Configuration: overrides are checked against the manifest's schema.
    let path = "/api/v1/plugins/loyalty-offers/config";
    let bad = app
        .request(Method::PUT, path, &app.admin)
        .json(&json!({ "percent_per_year": "lots", "colour": "red" }))
        .send()
        .await
        .expect("request");
    let bad = problem(bad, StatusCode::UNPROCESSABLE_ENTITY).await;
    let fields: Vec<_> = bad["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| e["field"].clone())
        .collect();
    assert_eq!(
        fields,
        [json!("config.colour"), json!("config.percent_per_year")]
    );
    let ok = app
        .request(Method::PUT, path, &app.admin)
        .json(&json!({ "percent_per_year": 5 }))
        .send()
        .await
        .expect("request");
    assert_eq!(ok.status(), StatusCode::OK);
    assert_eq!(
        offers(&app, &number).await["offers"][0]["price"]["amount"],
        27_000
    );

    // A second version, then a rollback to the first.
    let v2 = manifest.replace("version = \"1.0.0\"\nkind", "version = \"1.1.0\"\nkind");
    assert_eq!(
        upload(&app, &v2, &wasm, false).await.status(),
        StatusCode::CREATED
    );
    let again = problem(upload(&app, &v2, &wasm, false).await, StatusCode::CONFLICT).await;
    assert!(
        again["detail"]
            .as_str()
            .expect("detail")
            .contains("already uploaded")
    );
    let switched = enable_version(&app, "loyalty-offers", "1.1.0").await;
    assert_eq!(switched["active_version"], "1.1.0");
    assert_eq!(
        offers(&app, &number).await["offers"][0]["plugin_version"],
        "1.1.0"
    );
    let rolled = enable_version(&app, "loyalty-offers", "1.0.0").await;
    assert_eq!(rolled["active_version"], "1.0.0");
    let actions: Vec<_> = rolled["history"]
        .as_array()
        .expect("history")
        .iter()
        .map(|e| e["action"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(
        actions,
        [
            "uploaded",
            "enabled",
            "configured",
            "uploaded",
            "switched version",
            "switched version"
        ]
    );
    let missing = app
        .post(
            "/api/v1/plugins/loyalty-offers/enable",
            &app.admin,
            &json!({ "version": "9.9.9" }),
        )
        .await;
    problem(missing, StatusCode::UNPROCESSABLE_ENTITY).await;

    // Disabled: no offers, and the reason is on the plugin.
    let off = app
        .post(
            "/api/v1/plugins/loyalty-offers/disable",
            &app.admin,
            &json!({ "reason": "campaign over" }),
        )
        .await;
    assert_eq!(off.status(), StatusCode::OK);
    assert_eq!(offers(&app, &number).await["offers"], json!([]));
    let shown: Value = app
        .get("/api/v1/plugins/loyalty-offers", &app.staff)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(shown["disabled_reason"], "campaign over");

    // Offers for a reader who does not exist, or a mistyped number.
    let nobody = masthead::domain::SubscriberNumber::from_sequence(9_999_999).to_string();
    problem(
        app.get(&format!("/api/v1/subscribers/{nobody}/offers"), &app.staff)
            .await,
        StatusCode::NOT_FOUND,
    )
    .await;
    let typo = number.replace(
        &number[number.len() - 1..],
        if number.ends_with('0') { "1" } else { "0" },
    );
    problem(
        app.get(&format!("/api/v1/subscribers/{typo}/offers"), &app.staff)
            .await,
        StatusCode::BAD_REQUEST,
    )
    .await;
}

#[tokio::test]
async fn an_accepted_offer_prices_the_renewal_and_is_recorded_on_its_term() {
    let (app, number, wasm, manifest) = reader_of_three_years().await;
    assert_eq!(
        upload(&app, &manifest, &wasm, false).await.status(),
        StatusCode::CREATED
    );
    let terms = |history: &Value| {
        history["titles"]
            .as_array()
            .expect("titles")
            .iter()
            .map(|t| t["terms"].as_array().map_or(0, Vec::len))
            .sum::<usize>()
    };
    let accept = |code: &str| json!({ "offer": { "plugin": "loyalty-offers", "code": code } });

    // Not enabled yet: the plugin makes no offer, so none can be accepted.
    let refused = problem(
        renew(&app, &number, "offer-1", Some(&accept("loyal-dt-12"))).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(refused["errors"][0]["field"], "offer", "{refused}");
    enable(&app, "loyalty-offers").await;

    // An offer never made, and a change that contradicts the offer, are refused; nothing is
    // written.
    let refused = problem(
        renew(
            &app,
            &number,
            "offer-2",
            Some(&accept("half-price-forever")),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    let message = refused["errors"][0]["message"].as_str().expect("message");
    assert!(message.contains("/offers"), "{message}");
    let mut contradicts = accept("loyal-dt-12");
    contradicts["drop"] = json!(["DT"]);
    let refused = problem(
        renew(&app, &number, "offer-3", Some(&contradicts)).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(refused["errors"][0]["field"], "drop", "{refused}");
    let mut contradicts = accept("loyal-dt-12");
    contradicts["change"] = json!([{ "publication": "DT", "months": 6 }]);
    let refused = problem(
        renew(&app, &number, "offer-4", Some(&contradicts)).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(refused["errors"][0]["field"], "offer", "{refused}");
    assert_eq!(terms(&history(&app, &number).await), 3);

    // Accepted: the title renews at the offer's price (2 years x 1.5 % = 3 % off), with the
    // offer as its only discount, naming the plugin version and the code.
    let response = renew(&app, &number, "offer-5", Some(&accept("loyal-dt-12"))).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let order: Value = response.json().await.expect("json");
    let term = &order["terms"][0];
    assert_eq!(term["start"], "2026-12-01");
    assert_eq!(term["price_paid"]["amount"], 29_100);
    let discounts = term["discounts"].as_array().expect("discounts");
    assert_eq!(discounts.len(), 1, "{discounts:?}");
    assert_eq!(discounts[0]["kind"], "offer");
    assert_eq!(discounts[0]["amount"]["amount"], 900);
    assert_eq!(
        discounts[0]["offer"],
        json!({ "plugin": "loyalty-offers", "plugin_version": "1.0.0", "code": "loyal-dt-12" })
    );
    let reason = discounts[0]["reason"].as_str().expect("reason");
    assert!(reason.contains("2 full years of tenure"), "{reason}");

    // A retry answers the same order without asking again; the history keeps the offer.
    let again = renew(&app, &number, "offer-5", Some(&accept("loyal-dt-12"))).await;
    assert_eq!(again.status(), StatusCode::CREATED);
    assert_eq!(
        again
            .headers()
            .get("idempotent-replayed")
            .map(|v| v.as_bytes()),
        Some(&b"true"[..])
    );
    let replayed: Value = again.json().await.expect("json");
    assert_eq!(replayed["id"], order["id"]);
    let history = history(&app, &number).await;
    assert_eq!(terms(&history), 4);
    assert_eq!(
        history["titles"][0]["terms"][0]["discounts"][0]["offer"]["code"],
        "loyal-dt-12"
    );
}

#[tokio::test]
async fn plugins_live_in_the_database_so_another_instance_runs_them() {
    let app = spawn_app().await;
    app.set_today("2026-11-23");
    publication(&app, "DT", &[("2020-01-01", 30_000)]).await;
    let number = reader(&app, "Hopper").await;
    subscribe(&app, &number, print_year("DT", "2022-01-01")).await;
    subscribe(&app, &number, print_year("DT", "2023-01-01")).await;
    subscribe(&app, &number, print_year("DT", "2024-01-01")).await;
    subscribe(&app, &number, print_year("DT", "2025-01-01")).await;
    subscribe(&app, &number, print_year("DT", "2026-01-01")).await;
    let wasm = component("loyalty_offers");
    install(&app, &example_manifest("loyalty-offers", &wasm), &wasm).await;
    let here = offers(&app, &number).await;
    let other = app.another_instance().await;
    let there: Value = app
        .client
        .get(format!("{other}/api/v1/subscribers/{number}/offers"))
        .bearer_auth(&app.staff)
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json");
    assert_eq!(there["offers"], here["offers"]);
    assert_eq!(
        there["offers"][0]["price"]["amount"],
        30_000 - 30_000 * 600 / 10_000
    );
    let codes: Vec<_> = there["offers"]
        .as_array()
        .expect("offers")
        .iter()
        .map(|o| o["code"].clone())
        .collect();
    assert_eq!(codes, [json!("loyal-dt-12")]);
    // The plugin also proposed a bundle, which this title is not sold as: the host dropped it
    // and says why, instead of showing staff an offer that cannot be sold.
    let dropped = &there["errors"][0];
    assert_eq!(dropped["plugin"], "loyalty-offers");
    assert_eq!(dropped["cause"], "malformed");
    let message = dropped["message"].as_str().expect("message");
    assert!(
        message.contains("\"bundle-dt-12\" was dropped: DT is not sold as bundle"),
        "{message}"
    );
}

#[tokio::test]
async fn uploads_are_checked_and_refused_with_the_reason() {
    let app = spawn_app().await;
    let wasm = component("churn_risk");
    let good = example_manifest("churn-risk", &wasm);

    let tampered = good.replace(&sha256(&wasm), &"0".repeat(64));
    let body = problem(
        upload(&app, &tampered, &wasm, false).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(body["errors"][0]["field"], "manifest.sha256");

    let wrong_kind = good.replace("kind = \"segmenter\"", "kind = \"targeter\"");
    let body = problem(
        upload(&app, &wrong_kind, &wasm, false).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(body["errors"][0]["field"], "component");
    let message = body["errors"][0]["message"].as_str().expect("message");
    assert!(
        message.contains("must export masthead:plugin/target-api@1.0.0"),
        "{message}"
    );

    let future = component("hostile_future");
    let manifest = segmenter_manifest("future", "", &future);
    let body = problem(
        upload(&app, &manifest, &future, false).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    let message = body["errors"][0]["message"].as_str().expect("message");
    assert!(
        message.contains("built for masthead:plugin@2.0.0"),
        "{message}"
    );
    assert!(
        message.contains("serves masthead:plugin@1.0.0"),
        "{message}"
    );

    // A component importing a capability the host does not provide is refused at upload,
    // naming the import, before anything runs.
    let smuggle = component("hostile_smuggle");
    let manifest = segmenter_manifest("smuggle", "", &smuggle);
    let body = problem(
        upload(&app, &manifest, &smuggle, false).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(body["errors"][0]["field"], "component");
    let message = body["errors"][0]["message"].as_str().expect("message");
    assert!(
        message.contains("does not provide") && message.contains("hostile:smuggle/exfiltrate"),
        "{message}"
    );
    let listed = app.get("/api/v1/plugins", &app.admin).await;
    let listed: Value = listed.json().await.expect("json");
    assert!(!listed.to_string().contains("smuggle"), "{listed}");

    let junk = b"\0asm this is not a component".to_vec();
    let body = problem(
        upload(&app, &segmenter_manifest("junk", "", &junk), &junk, false).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .expect("m")
            .contains("not a valid WebAssembly component")
    );

    let greedy = format!(
        "{}\n[limits]\nmemory_mib = 4096\n",
        segmenter_manifest("greedy", "\"status\", \"shoe-size\", \"contact\"", &wasm)
    );
    let body = problem(
        upload(&app, &greedy, &wasm, true).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    let fields: Vec<_> = body["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| e["field"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(
        fields,
        [
            "manifest.fields[1]",
            "manifest.fields",
            "manifest.limits.memory_mib"
        ]
    );

    let no_pii = segmenter_manifest("nosy", "\"status\"", &wasm);
    let body = problem(
        upload(&app, &no_pii, &wasm, true).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(body["errors"][0]["field"], "grant_pii");

    let half = app
        .request(Method::POST, "/api/v1/plugins", &app.admin)
        .multipart(Form::new().text("manifest", good.clone()))
        .send()
        .await
        .expect("request");
    problem(half, StatusCode::BAD_REQUEST).await;

    // Nothing was stored by any refused upload.
    let listed: Value = app
        .get("/api/v1/plugins", &app.staff)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(listed, json!([]));
    assert_eq!(
        upload(&app, &good, &wasm, false).await.status(),
        StatusCode::CREATED
    );
    problem(
        app.get("/api/v1/plugins/nope", &app.staff).await,
        StatusCode::NOT_FOUND,
    )
    .await;
}

#[tokio::test]
async fn a_segmenter_refreshes_segments_over_every_reader_in_batches() {
    let app = spawn_app_with(|c| c.plugins.batch_size = 2).await;
    app.set_today("2026-11-23");
    publication(&app, "DT", &[("2020-01-01", 30_000)]).await;
    // Ends in 8 days, no auto-renewal, first year: 2 + 1 + 1 points = high.
    let ending = reader(&app, "Ending").await;
    subscribe(&app, &ending, print_year("DT", "2025-12-01")).await;
    // Ends in ten months, no auto-renewal, first year: 2 + 1 = medium.
    let steady = reader(&app, "Steady").await;
    subscribe(&app, &steady, print_year("DT", "2026-09-01")).await;
    // Auto-renews: only the first-year point = low.
    let loyal = reader(&app, "Loyal").await;
    let mut body = print_year("DT", "2026-09-01");
    body["auto_renew"] = json!(true);
    subscribe(&app, &loyal, body).await;
    // Lapsed, and never subscribed: in no band.
    let gone = reader(&app, "Gone").await;
    subscribe(&app, &gone, print_year("DT", "2020-01-01")).await;
    reader(&app, "Never").await;

    let wasm = component("churn_risk");
    install(&app, &example_manifest("churn-risk", &wasm), &wasm).await;
    for band in ["high", "medium", "low"] {
        segment(
            &app,
            &format!("churn-{band}"),
            "churn-risk",
            &format!("churn-{band}"),
        )
        .await;
    }
    for band in ["high", "medium", "low"] {
        let done = refresh(&app, &format!("churn-{band}")).await;
        assert_eq!(done["state"], "done", "{done}");
        assert_eq!(done["processed"], 5);
        assert_eq!(done["total"], 5);
        assert_eq!(done["size"], 1);
        assert_eq!(done["failed_records"], 0);
    }
    let members = |name: &'static str| {
        let app = &app;
        async move {
            let page: Value = app
                .get(&format!("/api/v1/segments/{name}/members"), &app.staff)
                .await
                .json()
                .await
                .expect("json");
            page["items"]
                .as_array()
                .expect("items")
                .iter()
                .map(|m| m["number"].as_str().unwrap_or("").to_string())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(members("churn-high").await, std::slice::from_ref(&ending));
    assert_eq!(members("churn-medium").await, [steady]);
    assert_eq!(members("churn-low").await, [loyal]);
    let view: Value = app
        .get("/api/v1/segments/churn-high", &app.staff)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(view["size"], 1);
    assert!(view["refreshed_at"].is_string());

    // Pagination over a bigger segment: everyone current is in some band.
    segment(&app, "everyone-low", "churn-risk", "churn-low").await;
    let page: Value = app
        .get("/api/v1/segments/churn-low/members?limit=1", &app.staff)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(page["next_cursor"], Value::Null);

    // Bad definitions, and a refresh of a disabled plugin.
    let dup = app
        .post(
            "/api/v1/segments",
            &app.staff,
            &json!({ "name": "churn-high", "plugin": "churn-risk", "key": "x" }),
        )
        .await;
    problem(dup, StatusCode::CONFLICT).await;
    let bad = app
        .post(
            "/api/v1/segments",
            &app.staff,
            &json!({ "name": "Bad Name", "plugin": "nope", "key": "" }),
        )
        .await;
    let bad = problem(bad, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(bad["errors"].as_array().expect("errors").len(), 3);
    app.post(
        "/api/v1/plugins/churn-risk/disable",
        &app.admin,
        &json!({ "reason": "retraining" }),
    )
    .await;
    let refused = app
        .post(
            "/api/v1/segments/churn-high/refresh",
            &app.staff,
            &json!({}),
        )
        .await;
    let refused = problem(refused, StatusCode::CONFLICT).await;
    assert!(
        refused["detail"]
            .as_str()
            .expect("detail")
            .contains("retraining")
    );
    // The members of the last good refresh stay.
    assert_eq!(members("churn-high").await, [ending]);
    let in_use = app
        .request(Method::DELETE, "/api/v1/plugins/churn-risk", &app.admin)
        .send()
        .await
        .expect("request");
    problem(in_use, StatusCode::CONFLICT).await;
}

#[tokio::test]
async fn segmenters_see_the_complaints_of_a_reader() {
    let app = spawn_app().await;
    app.set_today("2026-11-23");
    publication(&app, "DT", &[("2020-01-01", 30_000)]).await;
    // Auto-renews in the first year: one point, churn-low.
    let vocal = reader(&app, "Vocal").await;
    let mut body = print_year("DT", "2026-09-01");
    body["auto_renew"] = json!(true);
    subscribe(&app, &vocal, body).await;
    let wasm = component("churn_risk");
    install(&app, &example_manifest("churn-risk", &wasm), &wasm).await;
    segment(&app, "churn-high", "churn-risk", "churn-high").await;
    assert_eq!(refresh(&app, "churn-high").await["size"], 0);
    // Two open complaints add two points each: churn-high.
    for _ in 0..2 {
        let response = app
            .post(
                "/api/v1/interactions",
                &app.staff,
                &json!({ "subscriber": vocal, "kind": "complaint", "channel": "phone",
                         "category": "missed_delivery", "text": "No paper again" }),
            )
            .await;
        assert_eq!(response.status(), StatusCode::CREATED);
    }
    let done = refresh(&app, "churn-high").await;
    assert_eq!(done["size"], 1, "{done}");
}

#[tokio::test]
async fn club_rules_ask_segmenters_and_offer_providers_see_club_tiers() {
    let app = spawn_app().await;
    app.set_today("2026-11-23");
    publication(&app, "DT", &[("2020-01-01", 30_000)]).await;
    let (vocal, quiet) = (reader(&app, "Vocal").await, reader(&app, "Quiet").await);
    for number in [&vocal, &quiet] {
        let mut body = print_year("DT", "2026-09-01");
        body["auto_renew"] = json!(true);
        subscribe(&app, number, body).await;
    }
    for _ in 0..2 {
        let response = app
            .post(
                "/api/v1/interactions",
                &app.staff,
                &json!({ "subscriber": vocal, "kind": "complaint", "channel": "phone",
                         "category": "missed_delivery", "text": "No paper again" }),
            )
            .await;
        assert_eq!(response.status(), StatusCode::CREATED);
    }
    let club = json!({ "code": "care", "name": "Care list", "description": null,
        "tiers": [{ "code": "watch", "name": "Watch",
                    "rule": { "plugin": { "id": "churn-risk", "key": "churn-high" } } }] });
    // A rule may only name a segmenter that exists.
    let response = app.post("/api/v1/clubs", &app.admin, &club).await;
    let body = problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(
        body["errors"][0]["message"],
        "there is no plugin churn-risk"
    );
    let wasm = component("churn_risk");
    install(&app, &example_manifest("churn-risk", &wasm), &wasm).await;
    let response = app.post("/api/v1/clubs", &app.admin, &club).await;
    assert_eq!(response.status(), StatusCode::CREATED);

    // The plugin's verdict decides, and is the explanation.
    let job = recompute_club(&app, "care").await;
    assert_eq!(
        (job["joined"].clone(), job["undecided"].clone()),
        (json!(1), json!(0))
    );
    let card: Value = app
        .get(&format!("/api/v1/subscribers/{vocal}/clubs"), &app.staff)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        card["memberships"][0]["because"],
        "Watch: plugin churn-risk puts the reader in churn-high"
    );

    // An offer provider reading club tiers sees the tier (rank 1, the club's lowest).
    let wasm = component("loyalty_offers");
    install(&app, &example_manifest("loyalty-offers", &wasm), &wasm).await;
    let answer = offers(&app, &vocal).await;
    let reason = answer["offers"][0]["reason"].as_str().expect("reason");
    assert!(reason.contains("club tier rank 1"), "{reason}");
    let plain = offers(&app, &quiet).await;
    let reason = plain["offers"][0]["reason"].as_str().unwrap_or("");
    assert!(!reason.contains("club tier"), "{reason}");

    // With the plugin off, nobody is decided by it: standings stay as they were.
    let response = app
        .post(
            "/api/v1/plugins/churn-risk/disable",
            &app.admin,
            &json!({ "reason": "maintenance" }),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let job = recompute_club(&app, "care").await;
    assert_eq!(
        (job["left"].clone(), job["undecided"].clone()),
        (json!(0), json!(2))
    );
}

/// Runs a club's recomputation and waits for it to finish.
pub(crate) async fn recompute_club(app: &TestApp, code: &str) -> Value {
    let path = format!("/api/v1/clubs/{code}/recomputations");
    let response = app.post(&path, &app.admin, &json!({})).await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let job: Value = response.json().await.expect("json");
    for _ in 0..200 {
        let current: Value = app
            .get(&format!("{path}/{}", job["id"]), &app.staff)
            .await
            .json()
            .await
            .expect("json");
        if current["state"] != "running" {
            return current;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the recomputation did not finish");
}

#[tokio::test]
async fn hostile_plugins_are_stopped_recorded_and_tripped_while_the_service_keeps_answering() {
    let app = spawn_app_with(|c| {
        c.plugins.fuel_per_batch = 200_000_000;
        c.plugins.deadline_ms = 5_000;
        c.plugins.max_memory_mib = 32;
        c.plugins.max_result_bytes = 1 << 20;
        c.plugins.failure_threshold = 2;
        c.plugins.batch_size = 50;
    })
    .await;
    for name in ["One", "Two", "Three", "Four", "Five", "Six"] {
        reader(&app, name).await;
    }
    let cases = [
        ("hostile_spin", "fuel", "fuel budget"),
        ("hostile_hog", "memory", "memory cap of 32 MiB"),
        ("hostile_recurse", "trap", "overflowed its stack"),
        ("hostile_panic", "trap", "hostile plugin gave up on reader"),
        ("hostile_flood", "malformed", "over the cap of 1048576"),
    ];
    for (file, cause, says) in cases {
        let id = file.replace('_', "-");
        let wasm = component(file);
        install(&app, &segmenter_manifest(&id, "\"status\"", &wasm), &wasm).await;
        segment(&app, &id, &id, "any").await;
        let (done, card) = tokio::join!(refresh(&app, &id), async {
            // The service keeps answering while the plugin misbehaves.
            app.get("/healthz", &app.staff).await.status()
        });
        assert_eq!(card, StatusCode::OK);
        assert_eq!(done["state"], "failed", "{id}: {done}");
        let error = done["error"].as_str().expect("error");
        assert!(error.contains(says), "{id}: {error}");
        let detail: Value = app
            .get(&format!("/api/v1/plugins/{id}"), &app.staff)
            .await
            .json()
            .await
            .expect("json");
        assert_eq!(
            detail["recent_failures"][0]["cause"], cause,
            "{id}: {detail}"
        );
        assert_eq!(
            detail["enabled"], true,
            "one failure does not trip the breaker"
        );

        // The second consecutive failure trips the circuit breaker.
        let second = refresh(&app, &id).await;
        assert_eq!(second["state"], "failed");
        let detail: Value = app
            .get(&format!("/api/v1/plugins/{id}"), &app.staff)
            .await
            .json()
            .await
            .expect("json");
        assert_eq!(detail["enabled"], false, "{id}: {detail}");
        let reason = detail["disabled_reason"].as_str().expect("reason");
        assert!(
            reason.starts_with("circuit breaker: 2 consecutive failing batches"),
            "{reason}"
        );
        let refused = app
            .post(
                &format!("/api/v1/segments/{id}/refresh"),
                &app.staff,
                &json!({}),
            )
            .await;
        problem(refused, StatusCode::CONFLICT).await;
    }

    // A well-behaved plugin keeps working next to the tripped ones.
    let wasm = component("churn_risk");
    install(&app, &example_manifest("churn-risk", &wasm), &wasm).await;
    segment(&app, "churn-low", "churn-risk", "churn-low").await;
    assert_eq!(refresh(&app, "churn-low").await["state"], "done");

    let metrics = app
        .get("/metrics", &app.staff)
        .await
        .text()
        .await
        .expect("text");
    assert!(
        metrics.contains("masthead_plugin_calls_total{plugin=\"churn-risk\",version=\"1.0.0\"}"),
        "{metrics}"
    );
    assert!(metrics.contains(
        "masthead_plugin_errors_total{plugin=\"hostile-spin\",version=\"1.0.0\",cause=\"fuel\"}"
    ));
}

#[tokio::test]
async fn a_plugin_sees_no_files_environment_network_or_real_clock() {
    let app = spawn_app().await;
    // The service clock reads noon; the plugin's wall clock reads the batch's day.
    app.set_today("2026-11-23");
    for name in ["One", "Two"] {
        reader(&app, name).await;
    }
    let wasm = component("hostile_snoop");
    install(&app, &segmenter_manifest("snoop", "", &wasm), &wasm).await;
    let today = chrono::DateTime::parse_from_rfc3339("2026-11-23T00:00:00Z")
        .expect("time")
        .timestamp();
    for key in [
        "files-closed",
        "env-closed",
        "network-closed",
        &format!("clock-{today}"),
        // A day's sleep returns at once, with the monotonic clock a day on.
        "slept-86400",
    ] {
        let name = key.replace(|c: char| !c.is_ascii_alphanumeric(), "-");
        segment(&app, &name, "snoop", key).await;
        let done = refresh(&app, &name).await;
        assert_eq!(done["size"], 2, "{key}: {done}");
    }
}

#[tokio::test]
async fn a_campaign_preview_ranks_consenting_members_with_a_targeter() {
    let app = spawn_app().await;
    app.set_today("2026-11-23");
    publication(&app, "DT", &[("2020-01-01", 30_000)]).await;
    let consent = |granted: bool| json!([{ "purpose": "marketing_email", "granted": granted, "channel": "web" }]);
    let lapsed = async |family: &str, granted: Option<bool>, start: &str, percent_off: f64| {
        let mut body = crate::helpers::person("Ada", family);
        if let Some(granted) = granted {
            body["consents"] = consent(granted);
        }
        let number = app.create(body).await["number"]
            .as_str()
            .expect("number")
            .to_string();
        let mut term = print_year("DT", start);
        if percent_off > 0.0 {
            term["discounts"] = json!([{ "percent": percent_off, "reason": "agent deal" }]);
        }
        subscribe(&app, &number, term).await;
        number
    };
    let rich = lapsed("Rich", Some(true), "2025-01-01", 0.0).await;
    let modest = lapsed("Modest", Some(true), "2025-01-01", 60.0).await;
    let _silent = lapsed("Silent", None, "2025-01-01", 0.0).await;
    let _refused = lapsed("Refused", Some(false), "2025-01-01", 0.0).await;
    let _long_gone = lapsed("Longgone", Some(true), "2020-01-01", 0.0).await;

    let churn = component("churn_risk");
    install(&app, &example_manifest("churn-risk", &churn), &churn).await;
    segment(&app, "lapsed", "churn-risk", "lapsed").await;
    assert_eq!(refresh(&app, "lapsed").await["size"], 5);
    let win_back = component("win_back");
    install(&app, &example_manifest("win-back", &win_back), &win_back).await;

    let request = json!({ "name": "winter win-back", "segment": "lapsed", "targeter": "win-back", "channel": "marketing_email" });
    let response = app
        .post("/api/v1/campaigns/preview", &app.staff, &request)
        .await;
    let status = response.status();
    let preview: Value = response.json().await.expect("json");
    assert_eq!(status, StatusCode::OK, "{preview}");
    assert_eq!(preview["members"], 5);
    assert_eq!(
        preview["without_consent"], 2,
        "no consent, or consent refused"
    );
    assert_eq!(preview["excluded"], json!({ "gone 2153 days": 1 }));
    assert_eq!(preview["contactable"], 2);
    let ranked: Vec<_> = preview["audience"]
        .as_array()
        .expect("audience")
        .iter()
        .map(|r| r["number"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(ranked, [rich, modest]);

    // Bad requests name every problem; a segmenter is not a targeter.
    let bad = json!({ "name": "x", "segment": "nope", "targeter": "churn-risk", "channel": "third_party_audiences", "limit": 0 });
    let bad = problem(
        app.post("/api/v1/campaigns/preview", &app.staff, &bad)
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    let fields: Vec<_> = bad["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| e["field"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(fields, ["channel", "limit", "segment", "targeter"]);
}

#[tokio::test]
async fn plugins_see_only_the_fields_they_read_and_contact_details_only_when_granted() {
    let app = spawn_app().await;
    app.set_today("2026-11-23");
    publication(&app, "DT", &[("2020-01-01", 30_000)]).await;
    let mut body = crate::helpers::person("Ada", "Byron");
    body["addresses"] = json!([{ "kind": "delivery", "lines": ["1 High St"], "postal_code": "N1 1AA", "city": "London", "region": "North" }]);
    let number = app.create(body).await["number"]
        .as_str()
        .expect("number")
        .to_string();
    subscribe(&app, &number, print_year("DT", "2026-01-01")).await;

    let wasm = component("hostile_peek");
    let sizes = async |manifest: &str, grant: bool, keys: &[&str]| {
        let response = upload(&app, manifest, &wasm, grant).await;
        let status = response.status();
        let uploaded: Value = response.json().await.expect("json");
        assert_eq!(status, StatusCode::CREATED, "{uploaded}");
        let version = uploaded["versions"]
            .as_array()
            .expect("versions")
            .last()
            .expect("v")["version"]
            .as_str()
            .expect("version")
            .to_string();
        enable_version(&app, "peek", &version).await;
        let mut found = Vec::new();
        for key in keys {
            let name = format!(
                "{}-{}",
                key.replace(|c: char| !c.is_ascii_alphanumeric(), "-")
                    .to_lowercase(),
                version.replace('.', "-")
            );
            let body =
                json!({ "name": name, "plugin": "peek", "key": key, "plugin_version": version });
            assert_eq!(
                app.post("/api/v1/segments", &app.staff, &body)
                    .await
                    .status(),
                StatusCode::CREATED
            );
            found.push(refresh(&app, &name).await["size"].as_i64().expect("size"));
        }
        found
    };
    // Reads the region only: no terms, no status, no contact.
    let region_only = segmenter_manifest("peek", "\"region\"", &wasm);
    assert_eq!(
        sizes(
            &region_only,
            false,
            &["region-North", "terms-0", "contact-none", "status-none"]
        )
        .await,
        [1, 1, 1, 1]
    );
    // Asks for contact details, but no admin granted them: still none.
    let asks = format!(
        "{}permissions = [\"pii\"]\n",
        segmenter_manifest("peek", "\"contact\", \"terms\", \"status\"", &wasm)
    )
    .replace("version = \"1.0.0\"\nkind", "version = \"1.1.0\"\nkind");
    assert_eq!(
        sizes(
            &asks,
            false,
            &["contact-none", "terms-1", "region-none", "status-active"]
        )
        .await,
        [1, 1, 1, 1]
    );
    // Granted on upload: the plugin sees the name, and the grant is in the audit log.
    let granted = asks.replace("version = \"1.1.0\"\nkind", "version = \"1.2.0\"\nkind");
    assert_eq!(sizes(&granted, true, &["contact-Byron"]).await, [1]);
    let audit: Value = app
        .get("/api/v1/audit?action=plugin.pii_granted", &app.admin)
        .await
        .json()
        .await
        .expect("json");
    let entries = audit["items"].as_array().expect("items");
    assert_eq!(entries.len(), 1, "{audit}");
    assert_eq!(entries[0]["actor"]["name"], "test admin");
    assert_eq!(
        entries[0]["detail"],
        json!({ "plugin": "peek", "version": "1.2.0" })
    );
}

#[tokio::test]
async fn a_call_past_its_deadline_is_stopped_by_the_epoch_even_with_fuel_to_spare() {
    let app = spawn_app_with(|c| {
        c.plugins.fuel_per_batch = u64::MAX / 2;
        c.plugins.deadline_ms = 50;
    })
    .await;
    reader(&app, "Patient").await;
    let wasm = component("hostile_spin");
    install(&app, &segmenter_manifest("spin", "", &wasm), &wasm).await;
    segment(&app, "spin", "spin", "any").await;
    let done = refresh(&app, "spin").await;
    assert_eq!(done["state"], "failed");
    let error = done["error"].as_str().expect("error");
    assert!(error.contains("deadline of 50 ms"), "{error}");
    let detail: Value = app
        .get("/api/v1/plugins/spin", &app.staff)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(detail["recent_failures"][0]["cause"], "deadline");
}

async fn plugin(app: &TestApp, id: &str) -> Value {
    let response = app.get(&format!("/api/v1/plugins/{id}"), &app.staff).await;
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.expect("json")
}

#[tokio::test]
async fn a_plugin_waiting_on_clocks_and_streams_is_stopped_at_its_deadline_and_tripped() {
    let app = spawn_app_with(|c| {
        c.plugins.fuel_per_batch = u64::MAX / 2;
        c.plugins.deadline_ms = 300;
        c.plugins.failure_threshold = 2;
    })
    .await;
    reader(&app, "Sleepy").await;
    let wasm = component("hostile_sleep");
    install(&app, &segmenter_manifest("sleep", "", &wasm), &wasm).await;
    segment(&app, "sleep", "sleep", "any").await;

    let started = std::time::Instant::now();
    let done = refresh(&app, "sleep").await;

    // Its sleeps, timers, polls, reads and flushes return at once, so it spins in its own code
    // until the epoch stops it, and the failure is the plugin's.
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(done["state"], "failed");
    let error = done["error"].as_str().expect("error");
    assert!(error.contains("deadline of 300 ms"), "{error}");
    let detail = plugin(&app, "sleep").await;
    assert_eq!(
        detail["recent_failures"][0]["cause"], "deadline",
        "{detail}"
    );
    assert_eq!(detail["enabled"], true);
    assert_eq!(refresh(&app, "sleep").await["state"], "failed");
    let detail = plugin(&app, "sleep").await;
    assert_eq!(detail["enabled"], false, "the breaker trips: {detail}");
}

#[tokio::test]
async fn forty_stalled_offer_calls_leave_a_healthy_plugin_answering_and_trip_the_breaker() {
    let app = spawn_app_with(|c| {
        // Each plugin version may hold 4 of the 8 slots.
        c.plugins.max_instances = 8;
        c.plugins.failure_threshold = 3;
        c.request_timeout_secs = 10;
    })
    .await;
    app.set_today("2026-11-23");
    publication(&app, "DT", &[("2020-01-01", 30_000)]).await;
    let number = reader(&app, "Lovelace").await;
    for start in ["2023-12-01", "2024-12-01", "2025-12-01"] {
        subscribe(&app, &number, print_year("DT", start)).await;
    }
    // The healthy plugin may wait (and run) up to 2 s on a machine busy with other work;
    // the stalling one is stopped after 300 ms.
    let wasm = component("loyalty_offers");
    let manifest = example_manifest("loyalty-offers", &wasm)
        .replace("deadline_ms = 200", "deadline_ms = 2000");
    install(&app, &manifest, &wasm).await;
    let wasm = component("hostile_stall");
    let manifest = format!(
        "id = \"stall\"\nversion = \"1.0.0\"\nkind = \"offer-provider\"\n\
         api_version = \"1.0.0\"\nfields = []\nsha256 = \"{}\"\n[limits]\ndeadline_ms = 300\n",
        sha256(&wasm)
    );
    install(&app, &manifest, &wasm).await;

    let started = std::time::Instant::now();
    let path = format!("/api/v1/subscribers/{number}/offers");
    let answers = futures::future::join_all((0..40).map(|_| app.get(&path, &app.staff))).await;
    let health = app.get("/healthz", &app.staff).await;

    assert_eq!(health.status(), StatusCode::OK);
    let mut causes = Vec::new();
    for response in answers {
        assert_eq!(response.status(), StatusCode::OK);
        let body: Value = response.json().await.expect("json");
        let offers = body["offers"].as_array().expect("offers");
        assert!(
            offers.iter().any(|o| o["plugin"] == "loyalty-offers"),
            "{body}"
        );
        let errors = body["errors"].as_array().expect("errors");
        assert!(errors.iter().all(|e| e["plugin"] == "stall"), "{body}");
        causes.extend(errors.iter().map(|e| e["cause"].clone()));
    }
    // Calls beyond the plugin's share waited, then failed as the host's condition.
    assert!(causes.contains(&json!("host")), "{causes:?}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    let stall = plugin(&app, "stall").await;
    assert_eq!(stall["enabled"], false, "{stall}");
    assert_eq!(stall["recent_failures"][0]["cause"], "deadline", "{stall}");
    let healthy = plugin(&app, "loyalty-offers").await;
    assert_eq!(healthy["enabled"], true, "{healthy}");
    assert_eq!(healthy["recent_failures"], json!([]), "{healthy}");
}

#[tokio::test]
async fn a_renewal_answers_once_committed_while_the_plugin_its_club_rule_names_is_stopped() {
    let app = spawn_app_with(|c| {
        c.plugins.fuel_per_batch = u64::MAX / 2;
        // Longer than a request may take: waiting on it would answer 503 after the commit.
        c.plugins.deadline_ms = 12_000;
        c.request_timeout_secs = 10;
    })
    .await;
    app.set_today("2026-11-23");
    publication(&app, "DT", &[("2020-01-01", 30_000)]).await;
    let number = reader(&app, "Dreamer").await;
    subscribe(&app, &number, print_year("DT", "2025-12-01")).await;
    let wasm = component("hostile_sleep");
    install(&app, &segmenter_manifest("sleep", "", &wasm), &wasm).await;
    let club = json!({ "code": "dreamers", "name": "Dreamers", "description": null,
        "tiers": [{ "code": "deep", "name": "Deep",
                    "rule": { "plugin": { "id": "sleep", "key": "deep" } } }] });
    let response = app.post("/api/v1/clubs", &app.admin, &club).await;
    assert_eq!(response.status(), StatusCode::CREATED);

    let response = renew(&app, &number, "renew-2026", None).await;

    assert_eq!(response.status(), StatusCode::CREATED);
    let history = history(&app, &number).await;
    let terms = history["titles"][0]["terms"].as_array().expect("terms");
    assert_eq!(terms.len(), 2, "{history}");
    // The tier is recomputed in the background: the plugin's failure is recorded against
    // it, and the reader, undecided, stays out of the club.
    let mut detail = plugin(&app, "sleep").await;
    for _ in 0..600 {
        if detail["recent_failures"][0]["cause"] == "deadline" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        detail = plugin(&app, "sleep").await;
    }
    assert_eq!(
        detail["recent_failures"][0]["cause"], "deadline",
        "{detail}"
    );
    let clubs: Value = app
        .get(&format!("/api/v1/subscribers/{number}/clubs"), &app.staff)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(clubs["memberships"], json!([]), "{clubs}");
}

#[tokio::test]
async fn a_refresh_abandoned_by_a_stopped_host_is_taken_over_once_its_lease_runs_out() {
    let app = spawn_app_with(|c| c.jobs.concurrency = 0).await;
    app.set_today("2026-11-23");
    reader(&app, "Someone").await;
    let wasm = component("churn_risk");
    install(&app, &example_manifest("churn-risk", &wasm), &wasm).await;
    segment(&app, "churn-low", "churn-risk", "churn-low").await;
    // This instance runs no jobs: the refresh stays queued until a host claims it.
    let path = "/api/v1/segments/churn-low/refresh";
    let response = app.post(path, &app.staff, &json!({})).await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let queued: Value = response.json().await.expect("json");
    let id = queued["id"].as_i64().expect("id");
    assert_eq!(queued["job"], format!("/api/v1/jobs/{id}"));
    // A host claimed it and stopped before finishing: its lease ran out a second ago.
    let url = app.config.database_url.clone().expect("url");
    let store = masthead::store::open(&url).await.expect("open");
    let now = chrono::Utc::now();
    let claimed = store
        .claim_job(masthead::store::Claim {
            host: "a-stopped-host:1:0",
            now: now - chrono::Duration::seconds(20),
            lease_until: now - chrono::Duration::seconds(1),
            max_attempts: 5,
            only: Some(id),
        })
        .await
        .expect("claim")
        .expect("the queued refresh");
    assert_eq!(claimed.attempts, 1);
    problem(
        app.post(path, &app.staff, &json!({})).await,
        StatusCode::CONFLICT,
    )
    .await;
    // Another host (one that runs jobs) takes it over and finishes it.
    let _host = app.another_instance_with(|c| c.jobs.concurrency = 1).await;
    let done = refresh_done(&app, "churn-low", id).await;
    assert_eq!(done["state"], "done", "{done}");
    let job: Value = app
        .get(&format!("/api/v1/jobs/{id}"), &app.staff)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(job["attempts"], 2, "{job}");
    assert_eq!(job["runs"][0]["host"], "a-stopped-host:1:0");
    assert_eq!(job["runs"][0]["outcome"], "lapsed");
    assert_eq!(job["runs"][1]["outcome"], "succeeded");
}

/// Waits for the refresh job `id` of `segment` to end; returns it as the segment shows it.
async fn refresh_done(app: &TestApp, segment: &str, id: i64) -> Value {
    for _ in 0..600 {
        let view: Value = app
            .get(&format!("/api/v1/segments/{segment}"), &app.staff)
            .await
            .json()
            .await
            .expect("json");
        let latest = view["refreshes"][0].clone();
        if latest["id"] == id && latest["state"] != "running" {
            return latest;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the refresh of {segment} did not finish");
}

/// A manifest for a test offer provider reading `fields`, with `extra` TOML after it.
fn offer_manifest(id: &str, version: &str, fields: &str, wasm: &[u8], extra: &str) -> String {
    format!(
        "id = \"{id}\"\nversion = \"{version}\"\nkind = \"offer-provider\"\napi_version = \"1.0.0\"\n\
         fields = [{fields}]\nsha256 = \"{}\"\n{extra}",
        sha256(wasm)
    )
}

/// The errors one plugin gave in an offers answer.
fn errors_of<'a>(answer: &'a Value, plugin: &str) -> Vec<&'a Value> {
    answer["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .filter(|e| e["plugin"] == plugin)
        .collect()
}

/// How many failures of `plugin` the database holds, and the bytes of their messages.
async fn stored_failures(app: &TestApp, plugin: &str) -> (i64, i64) {
    let url = app.config.database_url.clone().expect("a database url");
    let sql = "SELECT COUNT(*), COALESCE(SUM(LENGTH(message)), 0) FROM plugin_errors \
               WHERE plugin_id = $1";
    if let Some(path) = url.strip_prefix("sqlite://") {
        // The plugins' failures live in the logs file beside the database file.
        let logs = masthead::store::sqlite_logs_file(std::path::Path::new(path));
        let url = format!("sqlite://{}", logs.display());
        let pool = sqlx::SqlitePool::connect(&url).await.expect("open sqlite");
        let row = sqlx::query_as(sql).bind(plugin).fetch_one(&pool).await;
        row.expect("count failures")
    } else {
        let pool = sqlx::PgPool::connect(&url).await.expect("open postgres");
        let row = sqlx::query_as(sql).bind(plugin).fetch_one(&pool).await;
        row.expect("count failures")
    }
}

#[tokio::test]
async fn a_huge_configure_error_is_kept_and_shown_capped_and_old_failures_are_pruned() {
    let app = spawn_app_with(|c| c.plugins.failure_threshold = 1_000).await;
    let number = reader(&app, "Patient").await;
    let wasm = component("hostile_verbose");
    // Its configure refuses with 50 MB of text.
    let setting = "[config.refuse_bytes]\ntype = \"integer\"\ndefault = 50000000\n";
    let manifest = offer_manifest("verbose", "1.0.0", "", &wasm, setting);
    install(&app, &manifest, &wasm).await;

    for _ in 0..5 {
        let answer = offers(&app, &number).await;
        let errors = errors_of(&answer, "verbose");
        assert_eq!(errors.len(), 1, "{answer}");
        assert_eq!(errors[0]["cause"], "configure");
        let message = errors[0]["message"].as_str().expect("message");
        assert!(message.len() < 5_000, "{} bytes shown", message.len());
        assert!(
            message.starts_with("configure refused the configuration: refused: xxx"),
            "{}",
            &message[..100]
        );
        assert!(
            message.ends_with("more bytes cut]"),
            "{}",
            &message[4_000..]
        );
    }
    let detail = app.get("/api/v1/plugins/verbose", &app.staff).await;
    assert_eq!(detail.status(), StatusCode::OK);
    let text = detail.text().await.expect("text");
    assert!(
        text.len() < 64 << 10,
        "the plugin's page is {} bytes",
        text.len()
    );
    let detail: Value = serde_json::from_str(&text).expect("json");
    assert_eq!(detail["recent_failures"].as_array().map(Vec::len), Some(5));
    let (count, bytes) = stored_failures(&app, "verbose").await;
    assert_eq!(count, 5);
    assert!(
        bytes < 5 * 5_000,
        "5 failures take {bytes} bytes in the database"
    );

    // A version that refuses briefly, failing 200 times more: only the newest 200 failures
    // of the plugin are kept, so the five long ones are gone.
    let brief = "[config.refuse_bytes]\ntype = \"integer\"\ndefault = 30\n";
    let manifest = offer_manifest("verbose", "1.1.0", "", &wasm, brief);
    assert_eq!(
        upload(&app, &manifest, &wasm, false).await.status(),
        StatusCode::CREATED
    );
    enable_version(&app, "verbose", "1.1.0").await;
    for _ in 0..200 {
        assert_eq!(errors_of(&offers(&app, &number).await, "verbose").len(), 1);
    }
    let (count, bytes) = stored_failures(&app, "verbose").await;
    assert_eq!(count, 200);
    assert!(
        bytes < 200 * 100,
        "{bytes} bytes: the long failures were not pruned"
    );
}

#[tokio::test]
async fn a_component_with_the_right_names_and_wrong_signatures_is_refused_at_upload() {
    let app = spawn_app().await;
    let wasm = component("hostile_mismatch");
    let body = problem(
        upload(
            &app,
            &segmenter_manifest("mismatch", "", &wasm),
            &wasm,
            false,
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(body["errors"][0]["field"], "component");
    let message = body["errors"][0]["message"].as_str().expect("message");
    assert!(
        message
            .contains("`segment` in masthead:plugin/segment-api@1.0.0 does not have the signature"),
        "{message}"
    );
    let listed: Value = app
        .get("/api/v1/plugins", &app.staff)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(listed, json!([]));
}

/// A component built from WAT text: `modules` instances of a core module with `pages` of
/// memory (none for 0), and an empty instance exported under the segmenter's name.
fn many_modules(modules: usize, pages: u32) -> Vec<u8> {
    let memory = if pages > 0 {
        format!("(memory {pages})")
    } else {
        String::new()
    };
    let instances: String = (0..modules)
        .map(|_| "(core instance (instantiate $m))\n")
        .collect();
    let text = format!(
        "(component\n(core module $m {memory})\n{instances}(instance $api)\n\
         (export \"masthead:plugin/segment-api@1.0.0\" (instance $api)))"
    );
    wat::parse_str(&text).expect("valid component text")
}

#[tokio::test]
async fn components_over_the_instance_memory_or_total_memory_caps_are_refused_at_upload() {
    let app = spawn_app_with(|c| c.plugins.max_memory_mib = 64).await;
    let refused = async |name: &str, wasm: Vec<u8>| {
        let body = problem(
            upload(&app, &segmenter_manifest(name, "", &wasm), &wasm, false).await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        assert_eq!(body["errors"][0]["field"], "component", "{body}");
        body["errors"][0]["message"]
            .as_str()
            .expect("message")
            .to_string()
    };
    // 40 modules of 64 MiB each: 2.5 GiB for one plugin with a 64 MiB cap.
    let message = refused("forty", many_modules(40, 1_024)).await;
    assert!(
        message.contains("40 core module instances") && message.contains("can never run"),
        "{message}"
    );
    let message = refused("memories", many_modules(20, 1_024)).await;
    assert!(message.contains("20 Wasm linear memories"), "{message}");
    // Two memories of 40 MiB: each under the cap, together over it.
    let message = refused("sum", many_modules(2, 640)).await;
    assert!(
        message.contains("cannot start") && message.contains("memory cap of 64 MiB"),
        "{message}"
    );
    let listed: Value = app
        .get("/api/v1/plugins", &app.staff)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(listed, json!([]));
}

#[tokio::test]
async fn a_success_ends_the_failing_streak_so_only_consecutive_failures_trip_the_breaker() {
    let app = spawn_app_with(|c| c.plugins.failure_threshold = 2).await;
    app.set_today("2026-11-23");
    publication(&app, "DT", &[("2020-01-01", 30_000)]).await;
    // The plugin traps on a reader without terms and answers for a reader with one.
    let bare = reader(&app, "Bare").await;
    let paid = reader(&app, "Paid").await;
    subscribe(&app, &paid, print_year("DT", "2026-01-01")).await;
    let wasm = component("hostile_fickle");
    install(
        &app,
        &offer_manifest("fickle", "1.0.0", "\"terms\"", &wasm, ""),
        &wasm,
    )
    .await;
    let detail = async || -> Value {
        let response = app.get("/api/v1/plugins/fickle", &app.staff).await;
        response.json().await.expect("json")
    };

    // Failing every other call: never two failures in a row, so the plugin stays on.
    for round in 0..4 {
        let failed = offers(&app, &bare).await;
        let errors = errors_of(&failed, "fickle");
        assert_eq!(errors.len(), 1, "round {round}: {failed}");
        assert_eq!(errors[0]["cause"], "trap");
        assert_eq!(detail().await["versions"][0]["consecutive_failures"], 1);
        let answered = offers(&app, &paid).await;
        assert_eq!(errors_of(&answered, "fickle").len(), 0, "{answered}");
        let shown = detail().await;
        assert_eq!(shown["enabled"], true, "round {round}: {shown}");
        assert_eq!(shown["versions"][0]["consecutive_failures"], 0);
    }

    // Two failures in a row trip it.
    offers(&app, &bare).await;
    offers(&app, &bare).await;
    let shown = detail().await;
    assert_eq!(shown["enabled"], false, "{shown}");
    let reason = shown["disabled_reason"].as_str().expect("reason");
    assert!(
        reason.starts_with("circuit breaker: 2 consecutive failing batches"),
        "{reason}"
    );
    assert_eq!(errors_of(&offers(&app, &paid).await, "fickle").len(), 0);
}

#[tokio::test]
async fn offers_repeating_a_code_are_refused_and_recorded_while_other_plugins_offers_stand() {
    let (app, number, wasm, manifest) = reader_of_three_years().await;
    install(&app, &manifest, &wasm).await;
    let twins = component("hostile_twins");
    install(
        &app,
        &offer_manifest("twins", "1.0.0", "\"terms\"", &twins, ""),
        &twins,
    )
    .await;

    let answer = offers(&app, &number).await;
    let plugins: Vec<_> = answer["offers"]
        .as_array()
        .expect("offers")
        .iter()
        .map(|o| (o["plugin"].clone(), o["code"].clone()))
        .collect();
    assert_eq!(plugins, [(json!("loyalty-offers"), json!("loyal-dt-12"))]);
    let errors = errors_of(&answer, "twins");
    assert_eq!(errors.len(), 1, "{answer}");
    assert_eq!(errors[0]["cause"], "malformed");
    let message = errors[0]["message"].as_str().expect("message");
    assert!(
        message.contains("two offers with the code \"twin-12\""),
        "{message}"
    );
    let detail: Value = app
        .get("/api/v1/plugins/twins", &app.staff)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(detail["recent_failures"][0]["cause"], "malformed");

    // The code cannot be accepted, so neither price is charged; nothing is written.
    let accept = json!({ "offer": { "plugin": "twins", "code": "twin-12" } });
    let refused = problem(
        renew(&app, &number, "twins-1", Some(&accept)).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(refused["errors"][0]["field"], "offer", "{refused}");
    let history = history(&app, &number).await;
    assert_eq!(
        history["titles"][0]["terms"].as_array().map(Vec::len),
        Some(3)
    );

    // One offer with a 5,000-byte reason: dropped, and said so in a few words.
    let wordy = "[config.reason_bytes]\ntype = \"integer\"\ndefault = 5000\n";
    install(
        &app,
        &offer_manifest("wordy", "1.0.0", "\"terms\"", &twins, wordy),
        &twins,
    )
    .await;
    let answer = offers(&app, &number).await;
    let errors = errors_of(&answer, "wordy");
    assert_eq!(errors.len(), 1, "{answer}");
    assert_eq!(
        errors[0]["message"],
        "offer \"wordy-12\" was dropped: its reason is 5000 bytes long, over the limit of 1000"
    );
    assert!(
        answer["offers"]
            .as_array()
            .expect("offers")
            .iter()
            .all(|o| o["plugin"] != "wordy")
    );
}

async fn put_config(app: &TestApp, id: &str, body: &Value) -> Response {
    app.request(
        Method::PUT,
        &format!("/api/v1/plugins/{id}/config"),
        &app.admin,
    )
    .json(body)
    .send()
    .await
    .expect("request")
}

#[tokio::test]
async fn a_configuration_the_plugin_refuses_is_answered_422_with_its_message_and_not_kept() {
    let app = spawn_app().await;
    let wasm = component("churn_risk");
    let manifest = example_manifest("churn-risk", &wasm);
    assert_eq!(
        upload(&app, &manifest, &wasm, false).await.status(),
        StatusCode::CREATED
    );

    // Not enabled yet: the latest version, the one enabling would run, is asked.
    let refused = put_config(&app, "churn-risk", &json!({ "horizon_days": -1 })).await;
    let refused = problem(refused, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(refused["errors"][0]["field"], "config");
    let message = refused["errors"][0]["message"].as_str().expect("message");
    assert!(
        message.contains("version 1.0.0")
            && message.contains("horizon_days must be positive, not -1"),
        "{message}"
    );

    enable(&app, "churn-risk").await;
    let refused = put_config(&app, "churn-risk", &json!({ "high_points": 1 })).await;
    let refused = problem(refused, StatusCode::UNPROCESSABLE_ENTITY).await;
    let message = refused["errors"][0]["message"].as_str().expect("message");
    assert!(
        message.contains("high_points must be at least 2, not 1"),
        "{message}"
    );

    // Nothing of the refused values was kept, and the plugin was not blamed for them.
    let shown: Value = app
        .get("/api/v1/plugins/churn-risk", &app.admin)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(shown["config"], json!({}));
    assert_eq!(shown["enabled"], true);
    assert_eq!(shown["recent_failures"], json!([]));
    assert_eq!(shown["versions"][0]["consecutive_failures"], 0);
    assert!(
        !shown["history"].to_string().contains("configured"),
        "{}",
        shown["history"]
    );

    let accepted = put_config(&app, "churn-risk", &json!({ "horizon_days": 30 })).await;
    assert_eq!(accepted.status(), StatusCode::OK);
    let accepted: Value = accepted.json().await.expect("json");
    assert_eq!(accepted["config"], json!({ "horizon_days": 30 }));

    // A version whose schema has no place for the stored configuration does not go live.
    let narrower = manifest
        .replace("version = \"1.0.0\"\nkind", "version = \"1.1.0\"\nkind")
        .replace("[config.horizon_days]", "[config.horizon_weeks]")
        .replace("default = 60", "default = 8");
    assert_eq!(
        upload(&app, &narrower, &wasm, false).await.status(),
        StatusCode::CREATED
    );
    let refused = app
        .post(
            "/api/v1/plugins/churn-risk/enable",
            &app.admin,
            &json!({ "version": "1.1.0" }),
        )
        .await;
    let refused = problem(refused, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(refused["errors"][0]["field"], "version");
    let message = refused["errors"][0]["message"].as_str().expect("message");
    assert!(
        message.contains("config.horizon_days")
            && message.contains("PUT /api/v1/plugins/churn-risk/config"),
        "{message}"
    );
}

#[tokio::test]
async fn a_long_refusal_from_configure_is_cut_before_it_is_answered() {
    let app = spawn_app().await;
    let wasm = component("hostile_grumble");
    let manifest = format!(
        "{}[config.words]\ntype = \"integer\"\ndefault = 0\n",
        segmenter_manifest("grumble", "", &wasm)
    );
    install(&app, &manifest, &wasm).await;
    let refused = put_config(&app, "grumble", &json!({ "words": 200_000 })).await;
    let refused = problem(refused, StatusCode::UNPROCESSABLE_ENTITY).await;
    let message = refused["errors"][0]["message"].as_str().expect("message");
    assert!(
        message.starts_with("version 1.0.0 refuses it: "),
        "{message}"
    );
    assert!(message.contains("no and no"), "{message}");
    assert!(message.ends_with("(cut at 500 characters)"), "{message}");
    assert!(
        message.chars().count() < 600,
        "{} characters",
        message.len()
    );
    let shown: Value = app
        .get("/api/v1/plugins/grumble", &app.admin)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(shown["config"], json!({}));
}

#[tokio::test]
async fn plugin_mistakes_are_answered_in_words_not_in_rust_debug_text() {
    let app = spawn_app().await;
    let wasm = component("churn_risk");
    let manifest = example_manifest("churn-risk", &wasm);
    install(&app, &manifest, &wasm).await;

    let missing = app
        .post(
            "/api/v1/plugins/churn-risk/enable",
            &app.admin,
            &json!({ "version": "9.9.9" }),
        )
        .await;
    let missing = problem(missing, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(missing["errors"][0]["field"], "version");
    assert_eq!(
        missing["errors"][0]["message"],
        "plugin churn-risk has no version 9.9.9; uploaded: 1.0.0"
    );

    let form = Form::new()
        .text("manifest", manifest.clone())
        .part(
            "component",
            Part::bytes(wasm.clone()).file_name("plugin.wasm"),
        )
        .text("extra", "anything");
    let extra = app
        .request(Method::POST, "/api/v1/plugins", &app.admin)
        .multipart(form)
        .send()
        .await
        .expect("request");
    let extra = problem(extra, StatusCode::BAD_REQUEST).await;
    let detail = extra.to_string();
    assert!(detail.contains("unexpected part `extra`"), "{detail}");

    let listed = put_config(&app, "churn-risk", &json!({ "horizon_days": [30, 60] })).await;
    let listed = problem(listed, StatusCode::UNPROCESSABLE_ENTITY).await;
    let detail = listed["detail"].as_str().expect("detail");
    assert!(detail.contains("horizon_days"), "{detail}");
    assert!(
        detail.contains("true or false, a number or a text"),
        "{detail}"
    );

    let typed = put_config(&app, "churn-risk", &json!({ "horizon_days": "soon" })).await;
    let typed = problem(typed, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(typed["errors"][0]["message"], "must be a whole number");

    for body in [&missing, &extra, &listed, &typed] {
        let text = body.to_string();
        for debug in ["Some(", "None", "untagged", "Integer", "Text("] {
            assert!(!text.contains(debug), "{debug} in {text}");
        }
    }
}
