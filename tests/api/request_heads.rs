//! Request heads over raw TCP: too long, too many fields, unreadable; each answered with a
//! problem+json whatever its size, while keep-alive and pipelined requests go on working.

use reqwest::StatusCode;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::helpers::{TestApp, spawn_app};

struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The problem body, checked to be one.
    fn problem(&self, status: StatusCode) -> Value {
        assert_eq!(self.status, status.as_u16(), "{:?}", self.headers);
        assert_eq!(
            self.header("content-type"),
            Some("application/problem+json")
        );
        let body: Value = serde_json::from_slice(&self.body).expect("a JSON body");
        assert_eq!(body["status"], status.as_u16());
        assert!(
            body["detail"].as_str().is_some_and(|d| d.len() > 20),
            "{body}"
        );
        body
    }
}

async fn connect(app: &TestApp) -> BufReader<TcpStream> {
    let address = app.address.trim_start_matches("http://");
    BufReader::new(TcpStream::connect(address).await.expect("connect"))
}

/// Reads one response (framed by its Content-Length) from the connection.
async fn read_answer(stream: &mut BufReader<TcpStream>) -> Answer {
    let mut status_line = String::new();
    stream
        .read_line(&mut status_line)
        .await
        .expect("a status line");
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not a status line: {status_line:?}"));
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        stream.read_line(&mut line).await.expect("a header line");
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':').expect("name: value");
        headers.push((name.to_owned(), value.trim().to_owned()));
    }
    let mut answer = Answer {
        status,
        headers,
        body: Vec::new(),
    };
    let length: usize = answer
        .header("content-length")
        .and_then(|l| l.parse().ok())
        .expect("a content-length");
    answer.body = vec![0; length];
    stream.read_exact(&mut answer.body).await.expect("the body");
    answer
}

/// Sends `request` on a new connection and reads the answer, then the connection's end.
async fn send_alone(app: &TestApp, request: &[u8]) -> Answer {
    let mut stream = connect(app).await;
    stream
        .get_mut()
        .write_all(request)
        .await
        .expect("the whole request is read, even when refused");
    let answer = read_answer(&mut stream).await;
    let mut rest = Vec::new();
    stream.read_to_end(&mut rest).await.expect("a clean close");
    assert!(rest.is_empty(), "nothing after the refusal");
    answer
}

async fn still_answers(app: &TestApp) {
    let response = app
        .client
        .get(format!("{}/healthz", app.address))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::OK);
}

fn get(target: &str, fields: &str) -> Vec<u8> {
    format!("GET {target} HTTP/1.1\r\nHost: masthead\r\n{fields}\r\n").into_bytes()
}

#[tokio::test]
async fn a_uri_past_the_connection_limit_gets_a_414_problem_at_any_size() {
    let app = spawn_app().await;

    for length in [70 << 10, 1 << 20] {
        let target = format!("/api/v1/search?q={}", "a".repeat(length));
        let answer = send_alone(&app, &get(&target, "")).await;

        let body = answer.problem(StatusCode::URI_TOO_LONG);
        assert_eq!(body["type"], "urn:masthead:problem:uri-too-long");
        assert!(body["detail"].as_str().is_some_and(|d| d.contains("8192")));
        assert_eq!(answer.header("connection"), Some("close"));
        still_answers(&app).await;
    }
}

#[tokio::test]
async fn a_large_header_field_or_too_many_get_a_431_problem() {
    let app = spawn_app().await;
    let large = format!("X-Large: {}\r\n", "b".repeat(100 << 10));
    let many: String = (0..200).map(|i| format!("X-Field-{i}: {i}\r\n")).collect();

    for (fields, says) in [(large, "shorter"), (many, "at most 100")] {
        let answer = send_alone(&app, &get("/healthz", &fields)).await;

        let body = answer.problem(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
        assert_eq!(body["type"], "urn:masthead:problem:header-fields-too-large");
        assert!(
            body["detail"].as_str().is_some_and(|d| d.contains(says)),
            "{body}"
        );
        still_answers(&app).await;
    }
}

#[tokio::test]
async fn an_unreadable_request_gets_a_400_problem() {
    let app = spawn_app().await;

    for request in [
        &b"HELLO THERE\r\n\r\n"[..],
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
        b"GET /a b c HTTP/1.1\r\nHost: masthead\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost masthead\r\n\r\n",
        b"POST /api/v1/subscribers HTTP/1.1\r\nHost: m\r\nContent-Length: ten\r\n\r\n",
    ] {
        let answer = send_alone(&app, request).await;

        let body = answer.problem(StatusCode::BAD_REQUEST);
        assert_eq!(body["type"], "urn:masthead:problem:malformed-request");
        still_answers(&app).await;
    }
}

#[tokio::test]
async fn one_keep_alive_connection_serves_several_requests_with_bodies() {
    let app = spawn_app().await;
    let mut stream = connect(&app).await;

    for _ in 0..3 {
        stream
            .get_mut()
            .write_all(&get("/healthz", ""))
            .await
            .expect("write");
        let answer = read_answer(&mut stream).await;
        assert_eq!(answer.status, 200);
    }
    // A chunked body, then a sized one: both read to their end, the connection goes on.
    let token = &app.staff;
    let chunks: String = ["{\"kind\": \"person\", ", "\"given_name\": ", "\"Ada\"}"]
        .iter()
        .map(|piece| format!("{:x};note=1\r\n{piece}\r\n", piece.len()))
        .collect();
    let chunked = format!(
        "POST /api/v1/subscribers HTTP/1.1\r\nHost: m\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n{chunks}0\r\n\r\n"
    );
    stream
        .get_mut()
        .write_all(chunked.as_bytes())
        .await
        .expect("write");
    let created = read_answer(&mut stream).await;
    assert_eq!(
        created.status,
        201,
        "{}",
        String::from_utf8_lossy(&created.body)
    );
    let body = "{\"kind\": \"person\", \"family_name\": \"Lovelace\"}";
    let sized = format!(
        "POST /api/v1/subscribers HTTP/1.1\r\nHost: m\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream
        .get_mut()
        .write_all(sized.as_bytes())
        .await
        .expect("write");
    assert_eq!(read_answer(&mut stream).await.status, 201);
    stream
        .get_mut()
        .write_all(&get("/healthz", ""))
        .await
        .expect("write");
    assert_eq!(read_answer(&mut stream).await.status, 200);
}

#[tokio::test]
async fn pipelined_requests_are_answered_in_order_before_a_refused_head() {
    let app = spawn_app().await;
    let mut stream = connect(&app).await;
    let mut requests = get("/healthz", "");
    requests.extend(get("/api/v1/openapi.json", ""));
    requests.extend(get(&format!("/{}", "c".repeat(100 << 10)), ""));
    requests.extend(get("/healthz", ""));

    stream.get_mut().write_all(&requests).await.expect("write");

    assert_eq!(read_answer(&mut stream).await.status, 200);
    let document = read_answer(&mut stream).await;
    assert_eq!(document.status, 200);
    let document: Value = serde_json::from_slice(&document.body).expect("the document");
    assert!(document["paths"].is_object());
    read_answer(&mut stream)
        .await
        .problem(StatusCode::URI_TOO_LONG);
    let mut rest = Vec::new();
    stream.read_to_end(&mut rest).await.expect("a clean close");
    assert!(rest.is_empty(), "nothing is read past the refused head");
}
