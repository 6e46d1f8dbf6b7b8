//! The audience API over HTTP: advertiser accounts and their keys, audiences published from
//! segments, releases noised under a budget, suppression, consent, differencing, what each
//! advertiser may see, and the audit of every advertiser request.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, person, problem, spawn_app};
use crate::plugins::refresh;
use crate::renewals::{print_year, publication, subscribe};

/// A reader in `region`, who granted `third_party_audiences` or not, holding a print year.
async fn enrol(app: &TestApp, family: &str, region: &str, audiences: bool) -> String {
    let mut body = person("Ada", family);
    body["addresses"] = json!([{
        "kind": "delivery", "lines": ["1 High Street"], "postal_code": "AB1 2CD",
        "city": "Town", "region": region, "country": "GB",
    }]);
    body["consents"] = json!([{
        "purpose": "third_party_audiences", "granted": audiences, "channel": "web",
    }]);
    let card = app.create(body).await;
    let number = card["number"].as_str().expect("number").to_owned();
    subscribe(app, &number, print_year("herald", "2026-01-01")).await;
    number
}

async fn withdraw(app: &TestApp, number: &str) {
    let body = json!({ "changes": [{
        "purpose": "third_party_audiences", "granted": false, "channel": "phone",
    }]});
    let path = format!("/api/v1/subscribers/{number}/consents");
    let response = app.post(&path, &app.staff, &body).await;
    assert_eq!(response.status(), StatusCode::OK, "withdrawal refused");
}

/// A declarative segment of the readers in `regions`, refreshed.
async fn regional_segment(app: &TestApp, name: &str, regions: &[&str]) {
    let body = json!({ "name": name, "filter": { "region": { "in": regions } } });
    let response = app.post("/api/v1/segments", &app.staff, &body).await;
    assert_eq!(response.status(), StatusCode::CREATED, "segment {name}");
    let done = refresh(app, name).await;
    assert_eq!(done["state"], "done", "{done}");
}

/// The readership of these tests: 50 consenting readers in the north, one in the south, and
/// seven who did not consent. Returns the numbers of the northern consenting readers.
async fn readership(app: &TestApp) -> (Vec<String>, Vec<String>) {
    app.set_today("2026-06-01");
    publication(app, "herald", &[("2025-01-01", 24000)]).await;
    let mut north = Vec::new();
    for i in 0..50 {
        north.push(enrol(app, &format!("North{i}"), "north", true).await);
    }
    let mut all = north.clone();
    all.push(enrol(app, "South", "south", true).await);
    for i in 0..5 {
        all.push(enrol(app, &format!("Private{i}"), "north", false).await);
    }
    for i in 0..2 {
        all.push(enrol(app, &format!("Hidden{i}"), "south", false).await);
    }
    regional_segment(app, "north-and-south", &["north", "south"]).await;
    (north, all)
}

/// Settings that noise with scale 1 (sensitivity 5, epsilon 5), so that a test can tell a
/// suppressed cell from a shown one without flaking; two releases per period.
fn settings() -> Value {
    json!({
        "dimensions": ["region", "format", "age_band"],
        "pairs": [["region", "format"]],
        "release_epsilon": 5.0, "budget": 10.0, "budget_days": 30,
        "release_every_days": 1, "min_cell": 10, "max_sparse_percent": 100,
    })
}

async fn open_account(app: &TestApp, name: &str) -> i64 {
    let body = json!({ "name": name, "contact_person": "Sam Seller" });
    let response = app.post("/api/v1/advertisers", &app.admin, &body).await;
    let status = response.status();
    let account: Value = response.json().await.expect("json");
    assert_eq!(status, StatusCode::CREATED, "{account}");
    account["id"].as_i64().expect("id")
}

/// A key of the account, as an admin issues it.
async fn account_key(app: &TestApp, account: Option<i64>) -> String {
    let mut body = json!({ "name": "agency desk", "role": "advertiser" });
    if let Some(account) = account {
        body["advertiser_id"] = json!(account);
    }
    let response = app.post("/api/v1/keys", &app.admin, &body).await;
    let status = response.status();
    let created: Value = response.json().await.expect("json");
    assert_eq!(status, StatusCode::CREATED, "{created}");
    created["token"].as_str().expect("token").to_owned()
}

/// The account the test app's advertiser key acts for.
async fn own_account(app: &TestApp) -> i64 {
    let me: Value = app
        .get("/api/v1/me", &app.advertiser)
        .await
        .json()
        .await
        .expect("json");
    me["advertiser"]["id"].as_i64().expect("the key's account")
}

async fn publish(app: &TestApp, name: &str, segment: &str, accounts: &[i64]) -> reqwest::Response {
    let body = json!({
        "name": name, "description": "Readers of the Herald", "segment": segment,
        "advertisers": accounts, "settings": settings(),
    });
    app.post("/api/v1/audiences", &app.staff, &body).await
}

async fn json_of(response: reqwest::Response, status: StatusCode) -> Value {
    let got = response.status();
    let body: Value = response.json().await.expect("json");
    assert_eq!(got, status, "{body}");
    body
}

/// The released cell of `value` in the dimension `dimension`.
fn cell<'a>(figures: &'a Value, dimension: &str, value: &str) -> &'a Value {
    let dimensions = figures["dimensions"].as_array().expect("dimensions");
    let cells = dimensions
        .iter()
        .find(|d| d["dimension"] == dimension)
        .expect("the dimension")["cells"]
        .as_array()
        .expect("cells");
    cells
        .iter()
        .find(|c| c["value"] == value)
        .expect("the value")
}

#[tokio::test]
async fn admins_open_advertiser_accounts_and_bind_keys_to_them() {
    let app = spawn_app().await;
    problem(
        app.post(
            "/api/v1/advertisers",
            &app.staff,
            &json!({ "name": "Acme" }),
        )
        .await,
        StatusCode::FORBIDDEN,
    )
    .await;
    let bad = problem(
        app.post("/api/v1/advertisers", &app.admin, &json!({ "name": " " }))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(bad["errors"][0]["field"], "name");
    let acme = open_account(&app, "Acme Travel").await;
    problem(
        app.post(
            "/api/v1/advertisers",
            &app.admin,
            &json!({ "name": "Acme Travel" }),
        )
        .await,
        StatusCode::CONFLICT,
    )
    .await;
    let changed = json_of(
        app.request(
            Method::PUT,
            &format!("/api/v1/advertisers/{acme}"),
            &app.admin,
        )
        .json(&json!({ "name": "Acme Holidays", "notes": "renewed 2027" }))
        .send()
        .await
        .expect("request"),
        StatusCode::OK,
    )
    .await;
    assert_eq!(changed["name"], "Acme Holidays");
    assert_eq!(changed["contact_person"], Value::Null);
    problem(
        app.get("/api/v1/advertisers/999999", &app.admin).await,
        StatusCode::NOT_FOUND,
    )
    .await;

    // Keys: only advertiser keys act for an account, and only for one that exists.
    let wrong_role = json!({ "name": "desk", "role": "staff", "advertiser_id": acme });
    let refused = problem(
        app.post("/api/v1/keys", &app.admin, &wrong_role).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(refused["errors"][0]["field"], "advertiser_id");
    let unknown = json!({ "name": "desk", "role": "advertiser", "advertiser_id": 999999 });
    problem(
        app.post("/api/v1/keys", &app.admin, &unknown).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    let bound = account_key(&app, Some(acme)).await;
    let me = json_of(app.get("/api/v1/me", &bound).await, StatusCode::OK).await;
    assert_eq!(me["advertiser"]["name"], "Acme Holidays");
    let shared = json_of(
        app.get("/api/v1/shared-audiences", &bound).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(shared, json!([]));

    // A key bound to no account reaches its identity and nothing else.
    let loose = account_key(&app, None).await;
    let me = json_of(app.get("/api/v1/me", &loose).await, StatusCode::OK).await;
    assert_eq!(me["advertiser"], Value::Null);
    problem(
        app.get("/api/v1/shared-audiences", &loose).await,
        StatusCode::FORBIDDEN,
    )
    .await;
}

#[tokio::test]
async fn audiences_are_released_noised_suppressed_and_shown_only_to_their_accounts() {
    let app = spawn_app().await;
    let (north, readers) = readership(&app).await;
    let mine = own_account(&app).await;
    let other = open_account(&app, "Other Agency").await;
    let other_key = account_key(&app, Some(other)).await;

    // Refusals that say what to fix; advertisers cannot publish.
    problem(
        app.post("/api/v1/audiences", &app.advertiser, &json!({}))
            .await,
        StatusCode::FORBIDDEN,
    )
    .await;
    let mut bad = json!({
        "name": "x", "segment": "nowhere", "advertisers": [999999],
        "settings": { "dimensions": ["region", "region"], "min_cell": 3 },
    });
    let refused = problem(
        app.post("/api/v1/audiences", &app.staff, &bad).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    let fields: Vec<&str> = refused["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| e["field"].as_str().expect("field"))
        .collect();
    assert_eq!(
        fields,
        [
            "advertisers[0]",
            "settings.dimensions",
            "settings.min_cell",
            "segment"
        ]
    );
    bad["settings"] = json!({ "dimensions": ["shoe_size"] });
    problem(
        app.post("/api/v1/audiences", &app.staff, &bad).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;

    let audience = json_of(
        publish(&app, "Herald readers", "north-and-south", &[mine]).await,
        StatusCode::CREATED,
    )
    .await;
    let id = audience["id"].as_i64().expect("id");
    assert_eq!(audience["releases"], 1);
    assert_eq!(audience["budget"]["spent"], 5.0);
    assert_eq!(audience["budget"]["left"], 5.0);

    // The account it is shared with sees it; another sees nothing of it.
    let shared = json_of(
        app.get("/api/v1/shared-audiences", &app.advertiser).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(shared.as_array().expect("list").len(), 1);
    assert_eq!(shared[0]["name"], "Herald readers");
    let theirs = json_of(
        app.get("/api/v1/shared-audiences", &other_key).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(theirs, json!([]));
    let release_path = format!("/api/v1/shared-audiences/{id}/release");
    for path in [
        format!("/api/v1/shared-audiences/{id}"),
        release_path.clone(),
        format!("/api/v1/shared-audiences/{id}/release.csv"),
        format!("/api/v1/shared-audiences/{id}/sizes"),
    ] {
        problem(app.get(&path, &other_key).await, StatusCode::NOT_FOUND).await;
    }
    problem(
        app.get("/api/v1/shared-audiences", &app.staff).await,
        StatusCode::FORBIDDEN,
    )
    .await;

    // The release: noised, with its interval, the small cells suppressed.
    let release = json_of(
        app.get(&release_path, &app.advertiser).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(release["privacy"]["mechanism"], "discrete_laplace");
    assert_eq!(release["privacy"]["epsilon"], 5.0);
    assert_eq!(release["privacy"]["sensitivity"], 5);
    assert_eq!(release["budget"]["left"], 5.0);
    let figures = &release["figures"];
    let total = figures["total"]["count"].as_i64().expect("a total");
    assert!(
        (43..=59).contains(&total),
        "51 readers consented, released {total}"
    );
    let [low, high] = [0, 1].map(|i| figures["total"]["interval"][i].as_i64().expect("interval"));
    assert!(low < total && total < high);
    let south = cell(figures, "region", "south");
    assert_eq!(south["suppressed"], true, "{south}");
    assert_eq!(south["count"], Value::Null);
    assert_eq!(cell(figures, "region", "north")["suppressed"], false);
    assert_eq!(cell(figures, "format", "digital")["suppressed"], true);
    let pairs = figures["pairs"].as_array().expect("pairs");
    assert_eq!(pairs[0]["dimensions"], json!(["region", "format"]));

    // Asking again, or as CSV, reveals nothing new and spends nothing.
    let again = json_of(
        app.get(&release_path, &app.advertiser).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(again, release);
    let csv = app
        .get(&format!("{release_path}.csv"), &app.advertiser)
        .await;
    assert_eq!(csv.status(), StatusCode::OK);
    assert!(
        csv.headers()["content-type"]
            .to_str()
            .expect("type")
            .starts_with("text/csv")
    );
    let csv = csv.text().await.expect("csv");
    assert!(csv.starts_with("part,dimension_1,value_1"));
    assert!(csv.contains(&format!("total,,,,,{total},")), "{csv}");
    let sizes = json_of(
        app.get(
            &format!("/api/v1/shared-audiences/{id}/sizes"),
            &app.advertiser,
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(sizes[0]["total"], figures["total"]);

    // Nothing an advertiser was shown holds anything of one reader.
    let shown = format!("{shared}{release}{csv}{sizes}");
    for number in &readers {
        assert!(!shown.contains(number.as_str()), "reader {number} shown");
    }
    for name in ["North1", "South", "Private0", "High Street", "AB1"] {
        assert!(!shown.contains(name), "{name} shown");
    }

    // Staff see the exact figures next to what was shown.
    let releases = json_of(
        app.get(&format!("/api/v1/audiences/{id}/releases"), &app.staff)
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(releases[0]["exact"]["total"]["count"], 51);
    assert_eq!(cell(&releases[0]["exact"], "region", "south")["count"], 1);
    assert_eq!(releases[0]["released"], *figures);
    problem(
        app.get(&format!("/api/v1/audiences/{id}/releases"), &app.advertiser)
            .await,
        StatusCode::FORBIDDEN,
    )
    .await;

    // An audience one reader away from the published one cannot be published.
    regional_segment(&app, "north-only", &["north"]).await;
    let near = problem(
        publish(&app, "Northern readers", "north-only", &[mine]).await,
        StatusCode::CONFLICT,
    )
    .await;
    assert!(
        near["detail"]
            .as_str()
            .expect("detail")
            .contains("by 1 reader"),
        "{near}"
    );

    // Releases: at most one a day; held while only a few readers changed; the readers who
    // withdrew their consent are gone from the next one.
    let make = format!("/api/v1/audiences/{id}/releases");
    problem(
        app.post(&make, &app.staff, &json!({})).await,
        StatusCode::CONFLICT,
    )
    .await;
    app.set_today("2026-06-02");
    withdraw(&app, &north[0]).await;
    let held = problem(
        app.post(&make, &app.staff, &json!({})).await,
        StatusCode::CONFLICT,
    )
    .await;
    assert!(
        held["detail"].as_str().expect("detail").starts_with("held"),
        "{held}"
    );
    for number in &north[1..10] {
        withdraw(&app, number).await;
    }
    // Two releases asked at once: one is made, the other is refused.
    let empty = json!({});
    let (first, second) = tokio::join!(
        app.post(&make, &app.staff, &empty),
        app.post(&make, &app.staff, &empty)
    );
    let mut statuses = [first.status(), second.status()];
    statuses.sort();
    assert_eq!(statuses, [StatusCode::CREATED, StatusCode::CONFLICT]);
    let releases = json_of(app.get(&make, &app.staff).await, StatusCode::OK).await;
    assert_eq!(releases.as_array().expect("releases").len(), 2);
    assert_eq!(releases[0]["exact"]["total"]["count"], 41);
    let sizes = json_of(
        app.get(
            &format!("/api/v1/shared-audiences/{id}/sizes"),
            &app.advertiser,
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(sizes.as_array().expect("sizes").len(), 2);

    // The budget is spent: the next release is refused until it refills.
    app.set_today("2026-06-03");
    let spent = problem(
        app.post(&make, &app.staff, &json!({})).await,
        StatusCode::CONFLICT,
    )
    .await;
    assert_eq!(spent["type"], "urn:masthead:problem:budget-spent");
    let refills: chrono::DateTime<chrono::Utc> = spent["refills_at"]
        .as_str()
        .expect("refills_at")
        .parse()
        .expect("an instant");
    let published: chrono::DateTime<chrono::Utc> = audience["published_at"]
        .as_str()
        .expect("published_at")
        .parse()
        .expect("an instant");
    assert_eq!(refills, published + chrono::Duration::days(30));
    let view = json_of(
        app.get(&format!("/api/v1/audiences/{id}"), &app.staff)
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(view["budget"]["left"], 0.0);

    // Every advertiser request is on record, the other account's probes included.
    let audit = json_of(
        app.get(
            &format!("/api/v1/audiences/{id}/requests?limit=500"),
            &app.staff,
        )
        .await,
        StatusCode::OK,
    )
    .await;
    let items = audit["items"].as_array().expect("items");
    let by = |account: i64| {
        items
            .iter()
            .filter(|r| r["advertiser_id"] == account)
            .count()
    };
    assert_eq!(by(mine), 5, "{audit}");
    assert_eq!(by(other), 4, "{audit}");
    let first_release = releases[1]["release_id"].clone();
    assert!(
        items
            .iter()
            .any(|r| r["what"] == "release" && r["release_id"] == first_release)
    );
    assert!(
        items
            .iter()
            .all(|r| r["advertiser_id"] != other || r["release_id"].is_null())
    );

    // Unpublishing stops all access at once.
    json_of(
        app.post(
            &format!("/api/v1/audiences/{id}/unpublish"),
            &app.staff,
            &json!({}),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    problem(
        app.get(&release_path, &app.advertiser).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    let shared = json_of(
        app.get("/api/v1/shared-audiences", &app.advertiser).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(shared, json!([]));
    // The segment an audience was made from stays.
    let delete = app
        .request(
            Method::DELETE,
            "/api/v1/segments/north-and-south",
            &app.admin,
        )
        .send()
        .await
        .expect("request");
    problem(delete, StatusCode::CONFLICT).await;
}

#[tokio::test]
async fn a_refreshed_segment_releases_its_audiences_when_their_checks_allow() {
    let app = spawn_app().await;
    readership(&app).await;
    let mine = own_account(&app).await;
    let audience = json_of(
        publish(&app, "Herald readers", "north-and-south", &[mine]).await,
        StatusCode::CREATED,
    )
    .await;
    let releases = format!("/api/v1/audiences/{}/releases", audience["id"]);
    let count = |body: &Value| body.as_array().expect("releases").len();

    // The same day: too soon, so the refresh releases nothing (and does not fail).
    let done = refresh(&app, "north-and-south").await;
    assert_eq!(done["state"], "done", "{done}");

    // A day on, with a dozen new consenting readers, the refresh releases. The release
    // follows the refresh's ending, so it is waited for.
    app.set_today("2026-06-02");
    for i in 0..12 {
        enrol(&app, &format!("Newcomer{i}"), "south", true).await;
    }
    let done = refresh(&app, "north-and-south").await;
    assert_eq!(done["state"], "done", "{done}");
    let mut listed = Value::Null;
    for _ in 0..200 {
        listed = json_of(app.get(&releases, &app.staff).await, StatusCode::OK).await;
        if count(&listed) > 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // Two, not three: the refresh of the first day released nothing.
    assert_eq!(count(&listed), 2, "{listed}");
    assert_eq!(listed[0]["exact"]["total"]["count"], 63);
    assert_eq!(cell(&listed[0]["exact"], "region", "south")["count"], 13);
}

async fn book(app: &TestApp, token: &str, audience: i64, body: Value) -> reqwest::Response {
    let path = format!("/api/v1/shared-audiences/{audience}/bookings");
    app.post(&path, token, &body).await
}

#[tokio::test]
async fn advertisers_book_placements_and_see_only_the_noised_reach() {
    let app = spawn_app().await;
    readership(&app).await;
    let mine = own_account(&app).await;
    let other = open_account(&app, "Other Agency").await;
    let other_key = account_key(&app, Some(other)).await;
    let audience = json_of(
        publish(&app, "Herald readers", "north-and-south", &[mine]).await,
        StatusCode::CREATED,
    )
    .await;
    let id = audience["id"].as_i64().expect("id");
    let insert = json!({ "placement": "print_insert", "starts_on": "2026-06-05",
                         "ends_on": "2026-06-10", "note": "summer brochure" });

    // Bad dates are refused by field; another account cannot book it.
    let past =
        json!({ "placement": "digital", "starts_on": "2026-05-01", "ends_on": "2026-04-01" });
    let refused = problem(
        book(&app, &app.advertiser, id, past).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    let fields: Vec<&str> = refused["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| e["field"].as_str().expect("field"))
        .collect();
    assert_eq!(fields, ["starts_on", "ends_on"]);
    problem(
        book(&app, &other_key, id, insert.clone()).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    problem(
        book(&app, &app.staff, id, insert.clone()).await,
        StatusCode::FORBIDDEN,
    )
    .await;

    let booking = json_of(
        book(&app, &app.advertiser, id, insert).await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(booking["state"], "requested");
    let booking_id = booking["id"].as_i64().expect("id");
    let decide = format!("/api/v1/bookings/{booking_id}/decision");
    let deliver = format!("/api/v1/bookings/{booking_id}/delivery");

    // Staff decide once; a decline needs its reason.
    let refused = problem(
        app.post(&decide, &app.staff, &json!({ "accept": false }))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(refused["errors"][0]["field"], "reason");
    problem(
        app.post(&decide, &app.advertiser, &json!({ "accept": true }))
            .await,
        StatusCode::FORBIDDEN,
    )
    .await;
    let accepted = json_of(
        app.post(&decide, &app.staff, &json!({ "accept": true }))
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(accepted["state"], "accepted");
    assert_eq!(accepted["decided_by"], "reception desk");
    problem(
        app.post(
            &decide,
            &app.staff,
            &json!({ "accept": false, "reason": "full" }),
        )
        .await,
        StatusCode::CONFLICT,
    )
    .await;

    // Delivered once its last day has passed, once.
    problem(
        app.post(&deliver, &app.staff, &json!({})).await,
        StatusCode::CONFLICT,
    )
    .await;
    app.set_today("2026-06-11");
    let delivered = json_of(
        app.post(&deliver, &app.staff, &json!({})).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(delivered["state"], "delivered");
    assert_eq!(delivered["exact_reach"], 51);
    assert_eq!(delivered["reach_epsilon"], 5.0);
    problem(
        app.post(&deliver, &app.staff, &json!({})).await,
        StatusCode::CONFLICT,
    )
    .await;

    // The advertiser sees the reach noised, never exact, and nothing of a reader.
    let theirs = json_of(
        app.get(
            &format!("/api/v1/shared-audiences/{id}/bookings"),
            &app.advertiser,
        )
        .await,
        StatusCode::OK,
    )
    .await;
    let shown = &theirs[0];
    assert_eq!(shown["state"], "delivered");
    assert!(shown.get("exact_reach").is_none(), "{shown}");
    let reach = shown["reach"]["count"].as_i64().expect("a reach");
    assert!((41..=61).contains(&reach), "51 reached, released {reach}");
    let others = json_of(
        app.get(
            &format!("/api/v1/shared-audiences/{id}/bookings"),
            &other_key,
        )
        .await,
        StatusCode::NOT_FOUND,
    )
    .await;
    assert_eq!(others["status"], 404);

    // The reach spent the rest of the budget: a second delivery waits for it to refill.
    let digital =
        json!({ "placement": "digital", "starts_on": "2026-06-12", "ends_on": "2026-06-13" });
    let second = json_of(
        book(&app, &app.advertiser, id, digital).await,
        StatusCode::CREATED,
    )
    .await;
    let second_id = second["id"].as_i64().expect("id");
    json_of(
        app.post(
            &format!("/api/v1/bookings/{second_id}/decision"),
            &app.staff,
            &json!({ "accept": true }),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    app.set_today("2026-06-14");
    let spent = problem(
        app.post(
            &format!("/api/v1/bookings/{second_id}/delivery"),
            &app.staff,
            &json!({}),
        )
        .await,
        StatusCode::CONFLICT,
    )
    .await;
    assert_eq!(spent["type"], "urn:masthead:problem:budget-spent");
    let staff = json_of(
        app.get(&format!("/api/v1/audiences/{id}/bookings"), &app.staff)
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(staff.as_array().expect("bookings").len(), 2);
    assert_eq!(staff[1]["exact_reach"], 51);
}
