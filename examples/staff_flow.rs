//! A staff member's day at the reception desk, against a running Masthead:
//! create a reader (or find the existing card), search for them as you type, update the card,
//! subscribe them to a title and renew it "like last year" in one step. (The catalogue step
//! needs an admin key, as the initial one is.)
//!
//! ```sh
//! cargo run -p masthead -- serve &            # first start writes data/initial-admin-key
//! MASTHEAD_KEY=$(cat data/initial-admin-key) cargo run -p masthead-examples --example staff_flow
//! ```
//! `MASTHEAD_URL` defaults to http://127.0.0.1:8080.

use anyhow::{Context, bail};
use reqwest::StatusCode;
use serde_json::{Value, json};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let base = std::env::var("MASTHEAD_URL").unwrap_or_else(|_| "http://127.0.0.1:8080".into());
    let key = match std::env::var("MASTHEAD_KEY") {
        Ok(key) => key,
        Err(_) => std::fs::read_to_string("data/initial-admin-key")
            .context("set MASTHEAD_KEY to an API key (staff or admin)")?,
    };
    let key = key.trim().to_owned();
    let client = reqwest::Client::new();
    let api = |path: &str| format!("{base}/api/v1{path}");

    // 1. A reader calls in: take down their details.
    let reader = json!({
        "given_name": "Ingrid",
        "family_name": "Søderberg",
        "emails": [{ "address": "ingrid.soderberg@example.no" }],
        "phones": [{ "number": "+47 22 12 34 56" }],
        "addresses": [{ "kind": "delivery", "lines": ["Storgata 1"], "postal_code": "0155", "city": "Oslo", "country": "NO" }],
        "preferences": { "delivery_method": "letterbox", "contact_channel": "email" },
        "consents": [{ "purpose": "marketing_email", "granted": true, "channel": "phone" }]
    });
    let response = client
        .post(api("/subscribers"))
        .bearer_auth(&key)
        .json(&reader)
        .send()
        .await?;
    let number = match response.status() {
        StatusCode::CREATED => {
            let card: Value = response.json().await?;
            println!(
                "created subscriber {} ({})",
                card["number"], card["display_name"]
            );
            card["number"].as_str().unwrap_or_default().to_owned()
        }
        StatusCode::CONFLICT => {
            let problem: Value = response.json().await?;
            let existing = &problem["candidates"][0];
            println!(
                "{} is already a subscriber as {} (matched on {}); using that card",
                existing["display_name"], existing["number"], existing["matched_on"]
            );
            existing["number"].as_str().unwrap_or_default().to_owned()
        }
        status => bail!(
            "creating the reader failed with {status}: {}",
            response.text().await?
        ),
    };

    // 2. Later, a colleague types the first letters of the name into the search box.
    for typed in ["sø", "soder", &number[..number.len() - 1]] {
        let hits: Value = client
            .get(api("/search"))
            .query(&[("q", typed)])
            .bearer_auth(&key)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let names: Vec<String> = hits["items"]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .map(|h| format!("{} {} ({})", h["number"], h["display_name"], h["matched"]))
                    .collect()
            })
            .unwrap_or_default();
        println!("search {typed:?}: {}", names.join(", "));
    }

    // 3. The reader moved: update the card, sending the version we read in If-Match.
    let response = client
        .get(api(&format!("/subscribers/{number}")))
        .bearer_auth(&key)
        .send()
        .await?;
    let version = response
        .headers()
        .get("etag")
        .and_then(|v| v.to_str().ok())
        .context("the card has an ETag")?
        .to_owned();
    let change = json!({
        "addresses": [{ "kind": "delivery", "lines": ["Kirkeveien 64"], "postal_code": "0364", "city": "Oslo", "country": "NO" }]
    });
    let response = client
        .patch(api(&format!("/subscribers/{number}")))
        .bearer_auth(&key)
        .header("If-Match", version)
        .json(&change)
        .send()
        .await?;
    if response.status() != StatusCode::OK {
        bail!("the update failed: {}", response.text().await?);
    }
    let card: Value = response.json().await?;
    println!(
        "updated {}: now at {} {}, version {}",
        card["number"],
        card["addresses"][0]["lines"][0],
        card["addresses"][0]["city"],
        card["version"]
    );

    // 4. The reader takes the daily newspaper: make sure the title and a price list exist.
    let title = json!({
        "code": "DAILY", "title": "The Daily Courier", "kind": "daily",
        "formats": ["print", "digital"], "term_months": [12]
    });
    let response = client
        .post(api("/publications"))
        .bearer_auth(&key)
        .json(&title)
        .send()
        .await?;
    if response.status() == StatusCode::CREATED {
        let prices = json!({ "effective_from": "2020-01-01", "prices": [
            { "format": "print", "months": 12, "amount": 24000 },
            { "format": "digital", "months": 12, "amount": 12000 }
        ]});
        client
            .post(api("/publications/DAILY/price-lists"))
            .bearer_auth(&key)
            .json(&prices)
            .send()
            .await?
            .error_for_status()?;
    }
    let history: Value = client
        .get(api(&format!("/subscribers/{number}/terms")))
        .bearer_auth(&key)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    if history["titles"].as_array().is_none_or(Vec::is_empty) {
        let subscription = json!({
            "publication": "DAILY", "format": "print", "months": 12,
            "channel": "phone", "payment_method": "direct_debit", "auto_renew": true
        });
        let order: Value = client
            .post(api(&format!("/subscribers/{number}/terms")))
            .bearer_auth(&key)
            .header("Idempotency-Key", uuid_like(&number, "first"))
            .json(&subscription)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let term = &order["terms"][0];
        println!(
            "subscribed to {} from {} to {} for {}",
            term["publication"], term["start"], term["end"], order["total"]["total"]["amount"]
        );
    }

    // 5. The reader calls to renew: one step, "like last year". A retry with the same key is
    // answered with the same renewal; a title already renewed is not renewed twice.
    let response = client
        .post(api(&format!("/subscribers/{number}/renewals")))
        .bearer_auth(&key)
        .header("Idempotency-Key", uuid_like(&number, "renewal"))
        .send()
        .await?;
    let status = response.status();
    let body: Value = response.json().await?;
    match status {
        StatusCode::CREATED => {
            for term in body["terms"].as_array().into_iter().flatten() {
                println!(
                    "renewed {} from {}: list {}, paid {} ({} discounts)",
                    term["publication"],
                    term["start"],
                    term["list_price"]["amount"],
                    term["price_paid"]["amount"],
                    term["discounts"].as_array().map_or(0, Vec::len)
                );
            }
        }
        StatusCode::UNPROCESSABLE_ENTITY => println!("no renewal: {}", body["detail"]),
        other => bail!("the renewal failed with {other}: {body}"),
    }
    Ok(())
}

/// An idempotency key for one intended order of this reader (a real client uses a UUID).
fn uuid_like(number: &str, purpose: &str) -> String {
    format!("staff-flow-{number}-{purpose}")
}
