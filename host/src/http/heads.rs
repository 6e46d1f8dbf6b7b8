//! Request heads read before hyper sees them, so that an over-long or unreadable head is
//! answered with a problem+json instead of hyper's empty 400, 414 or 431.
//!
//! [`GuardedStream`] wraps each accepted connection. It holds back the bytes of a request
//! head until the head is complete and checked, passes bodies through as they come (it
//! follows `Content-Length` and chunked framing to know where the next head starts), and
//! keeps at most [`MAX_HEAD_BYTES`] of a head, so a hostile client cannot make it buffer
//! more. A head it refuses is never shown to hyper: hyper reads the end of the stream
//! there, finishes the responses before it and closes; the stream then writes its own
//! answer, closes its side and reads what the client still sends for a moment (closing on
//! unread bytes would reset the connection before the client reads the answer).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::http::{Method, StatusCode, Uri};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::document::MAX_URI_BYTES;
use super::error::{PROBLEM, Problem};

/// The longest request head (request line and header fields) read.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;
/// The most header fields one request may carry (hyper's own limit).
pub const MAX_HEADERS: usize = 100;
/// How long a refused client may go on sending before the connection closes.
const LINGER: Duration = Duration::from_secs(2);
/// ... and how much of it is read and thrown away.
const LINGER_BYTES: usize = 4 << 20;
/// A chunk-size line or a trailer longer than this is left to hyper, which refuses it.
const MAX_CHUNK_LINE: usize = 16 * 1024;
/// Bytes read from the socket at once.
const READ_CHUNK: usize = 16 * 1024;

/// A head the service refuses to read, as the problem it answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub status: StatusCode,
    slug: &'static str,
    title: &'static str,
    pub detail: String,
}

impl Refusal {
    fn bad(detail: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            slug: "malformed-request",
            title: "Bad request",
            detail: detail.into(),
        }
    }

    fn too_large(detail: impl Into<String>) -> Self {
        Self {
            status: StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            slug: "header-fields-too-large",
            title: "Request header fields too large",
            detail: detail.into(),
        }
    }

    fn uri_too_long() -> Self {
        Self {
            status: StatusCode::URI_TOO_LONG,
            slug: "uri-too-long",
            title: "URI too long",
            detail: format!(
                "the request line is longer than {MAX_HEAD_BYTES} bytes; this service reads a \
                 path and query of at most {MAX_URI_BYTES} bytes"
            ),
        }
    }

    /// The whole HTTP/1.1 response, closing the connection.
    pub fn response(&self) -> Vec<u8> {
        let problem = Problem {
            kind: format!("urn:masthead:problem:{}", self.slug),
            title: self.title,
            status: self.status.as_u16(),
            detail: self.detail.clone(),
            errors: Vec::new(),
            candidates: Vec::new(),
            refills_at: None,
        };
        let body = serde_json::to_vec(&problem).unwrap_or_default();
        let mut response = format!(
            "HTTP/1.1 {} {}\r\ncontent-type: {PROBLEM}\r\ncontent-length: {}\r\n\
             connection: close\r\n\r\n",
            self.status.as_u16(),
            self.status.canonical_reason().unwrap_or(""),
            body.len()
        )
        .into_bytes();
        response.extend_from_slice(&body);
        response
    }
}

/// Where the reader is in the stream of requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    Head,
    /// A body of this many more bytes.
    Body(u64),
    Chunked(Chunk),
    /// Framing this reader does not follow; hyper refuses what comes (and closes).
    Opaque,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    /// The chunk-size line: its length so far, the size read, its digits, whether an
    /// extension began.
    Size {
        line: usize,
        size: u64,
        digits: u8,
        extension: bool,
    },
    Data(u64),
    /// The line end after a chunk's data.
    DataEnd,
    /// The trailer fields after the last chunk: the current line's length, all of them.
    Trailer {
        line: usize,
        total: usize,
    },
}

const CHUNK_SIZE: Chunk = Chunk::Size {
    line: 0,
    size: 0,
    digits: 0,
    extension: false,
};

/// Follows one connection's bytes: holds back each head until it is complete and checked.
#[derive(Debug)]
pub struct Heads {
    framing: Framing,
    /// The head being read.
    head: Vec<u8>,
    /// Where its current line starts.
    line_start: usize,
    /// Whether its request line is complete.
    request_line: bool,
    header_fields: usize,
}

impl Default for Heads {
    fn default() -> Self {
        Self {
            framing: Framing::Head,
            head: Vec::new(),
            line_start: 0,
            request_line: false,
            header_fields: 0,
        }
    }
}

impl Heads {
    /// Reads `input`, appending to `out` what may go on to hyper now (checked heads, bodies);
    /// the start of a head stays here until its end arrives. A refused head is dropped, and
    /// `out` holds what came before it.
    pub fn feed(&mut self, mut input: &[u8], out: &mut Vec<u8>) -> Result<(), Refusal> {
        while !input.is_empty() {
            input = match self.framing {
                Framing::Opaque => {
                    out.extend_from_slice(input);
                    &[]
                }
                Framing::Body(left) => {
                    let take = usize::try_from(left).map_or(input.len(), |l| l.min(input.len()));
                    out.extend_from_slice(&input[..take]);
                    let left = left - take as u64;
                    self.framing = if left == 0 {
                        Framing::Head
                    } else {
                        Framing::Body(left)
                    };
                    &input[take..]
                }
                Framing::Chunked(Chunk::Data(left)) => {
                    let take = usize::try_from(left).map_or(input.len(), |l| l.min(input.len()));
                    out.extend_from_slice(&input[..take]);
                    let left = left - take as u64;
                    self.framing = Framing::Chunked(if left == 0 {
                        Chunk::DataEnd
                    } else {
                        Chunk::Data(left)
                    });
                    &input[take..]
                }
                Framing::Chunked(chunk) => {
                    out.push(input[0]);
                    self.framing = next_chunk_state(chunk, input[0]);
                    &input[1..]
                }
                Framing::Head => self.read_head(input, out)?,
            };
        }
        Ok(())
    }

    /// Takes head bytes up to the end of the current line (or of `input`).
    fn read_head<'a>(&mut self, input: &'a [u8], out: &mut Vec<u8>) -> Result<&'a [u8], Refusal> {
        let (taken, rest, line_ended) = match input.iter().position(|&b| b == b'\n') {
            Some(i) => (&input[..=i], &input[i + 1..], true),
            None => (input, &[][..], false),
        };
        let room = MAX_HEAD_BYTES.saturating_sub(self.head.len());
        if taken.len() > room {
            self.head.extend_from_slice(&taken[..room]);
            return Err(self.over_long());
        }
        self.head.extend_from_slice(taken);
        if !self.request_line {
            // A request line is refused as soon as it goes wrong, as hyper would, rather
            // than once the head ends (a client speaking another protocol never ends it).
            let mut request = httparse::Request::new(&mut []);
            if let Err(e) = request.parse(&self.head) {
                return Err(unreadable(e, request.method.is_some()));
            }
        }
        if !line_ended {
            return Ok(rest);
        }
        let line = &self.head[self.line_start..];
        let blank = matches!(line, b"\n" | b"\r\n");
        self.line_start = self.head.len();
        if !self.request_line {
            // Blank lines before a request line are allowed (and skipped by hyper).
            self.request_line = !blank;
        } else if blank {
            self.framing = check(&self.head)?;
            out.extend_from_slice(&self.head);
            self.reset();
        } else {
            self.header_fields += 1;
            if self.header_fields > MAX_HEADERS {
                return Err(Refusal::too_large(format!(
                    "the request has more than {MAX_HEADERS} header fields; send at most \
                     {MAX_HEADERS}"
                )));
            }
        }
        Ok(rest)
    }

    fn over_long(&self) -> Refusal {
        if self.request_line {
            return Refusal::too_large(format!(
                "the request line and header fields are longer than {MAX_HEAD_BYTES} bytes; \
                 send fewer or shorter header fields"
            ));
        }
        let line = self.head.trim_ascii_start();
        if line.contains(&b' ') {
            Refusal::uri_too_long()
        } else {
            Refusal::bad(format!(
                "the request line is not `METHOD /path HTTP/1.1` (no space in its first \
                 {MAX_HEAD_BYTES} bytes)"
            ))
        }
    }

    fn reset(&mut self) {
        self.head.clear();
        // One large head does not keep its buffer for the connection's life.
        self.head.shrink_to(4096);
        self.line_start = 0;
        self.request_line = false;
        self.header_fields = 0;
    }
}

fn next_chunk_state(chunk: Chunk, byte: u8) -> Framing {
    let chunked = Framing::Chunked;
    match chunk {
        Chunk::Size { line, .. } | Chunk::Trailer { line, .. } if line >= MAX_CHUNK_LINE => {
            Framing::Opaque
        }
        Chunk::Size {
            line,
            size,
            digits,
            extension,
        } => match byte {
            b'\n' if digits == 0 => Framing::Opaque,
            b'\n' if size == 0 => chunked(Chunk::Trailer { line: 0, total: 0 }),
            b'\n' => chunked(Chunk::Data(size)),
            b'\r' => chunked(Chunk::Size {
                line: line + 1,
                size,
                digits,
                extension: true,
            }),
            _ if extension => chunked(Chunk::Size {
                line: line + 1,
                size,
                digits,
                extension,
            }),
            b';' | b' ' | b'\t' => chunked(Chunk::Size {
                line: line + 1,
                size,
                digits,
                extension: true,
            }),
            _ => match (byte as char).to_digit(16) {
                Some(d) if digits < 15 => chunked(Chunk::Size {
                    line: line + 1,
                    size: size * 16 + u64::from(d),
                    digits: digits + 1,
                    extension,
                }),
                _ => Framing::Opaque,
            },
        },
        Chunk::DataEnd => match byte {
            b'\r' => chunked(Chunk::DataEnd),
            b'\n' => chunked(CHUNK_SIZE),
            _ => Framing::Opaque,
        },
        Chunk::Trailer { total, .. } if total >= MAX_HEAD_BYTES => Framing::Opaque,
        Chunk::Trailer { line, total } => match byte {
            // An empty line ends the trailer, and the message.
            b'\n' if line == 0 => Framing::Head,
            b'\n' => chunked(Chunk::Trailer {
                line: 0,
                total: total + 1,
            }),
            b'\r' if line == 0 => chunked(Chunk::Trailer { line, total }),
            _ => chunked(Chunk::Trailer {
                line: line + 1,
                total: total + 1,
            }),
        },
        Chunk::Data(_) => unreachable!("chunk data is taken in bulk"),
    }
}

/// Parses a complete head as hyper will, refusing what hyper would refuse, and returns how
/// its body is framed.
fn check(head: &[u8]) -> Result<Framing, Refusal> {
    let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut fields);
    match request.parse(head) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => {
            return Err(Refusal::bad("the request head ended early"));
        }
        Err(e) => return Err(unreadable(e, request.method.is_some())),
    }
    let (Some(method), Some(target)) = (request.method, request.path) else {
        return Err(Refusal::bad(
            "the request line is not `METHOD /path HTTP/1.1`",
        ));
    };
    if Method::from_bytes(method.as_bytes()).is_err() {
        return Err(Refusal::bad("the request method is not a valid token"));
    }
    if Uri::try_from(target).is_err() {
        return Err(Refusal::bad(
            "the request target is not a valid URI; percent-encode spaces and other \
             reserved characters",
        ));
    }
    let http_10 = request.version == Some(0);
    let (mut length, mut chunked, mut encoded) = (None, false, false);
    for field in request.headers.iter() {
        if field.name.eq_ignore_ascii_case("transfer-encoding") {
            if http_10 {
                return Err(Refusal::bad(
                    "an HTTP/1.0 request cannot use Transfer-Encoding; send Content-Length",
                ));
            }
            encoded = true;
            length = None;
            chunked = last_coding_is_chunked(field.value);
        } else if field.name.eq_ignore_ascii_case("content-length") && !encoded {
            let Some(n) = digits(field.value.trim_ascii()) else {
                return Err(Refusal::bad(
                    "Content-Length must be one whole number of bytes",
                ));
            };
            if length.is_some_and(|before| before != n) {
                return Err(Refusal::bad(
                    "the request has two different Content-Length fields; send one",
                ));
            }
            length = Some(n);
        }
    }
    if encoded && !chunked {
        return Err(Refusal::bad(
            "Transfer-Encoding must end in `chunked`; this service reads no other framing",
        ));
    }
    Ok(match (chunked, length) {
        (true, _) => Framing::Chunked(CHUNK_SIZE),
        (false, Some(n)) if n > 0 => Framing::Body(n),
        _ => Framing::Head,
    })
}

fn unreadable(e: httparse::Error, method_read: bool) -> Refusal {
    match e {
        httparse::Error::TooManyHeaders => Refusal::too_large(format!(
            "the request has more than {MAX_HEADERS} header fields; send at most {MAX_HEADERS}"
        )),
        httparse::Error::Version => Refusal::bad(
            "the request line does not end in HTTP/1.0 or HTTP/1.1; this service speaks HTTP/1",
        ),
        httparse::Error::HeaderName => {
            Refusal::bad("a header field name holds a character names may not contain")
        }
        httparse::Error::HeaderValue => {
            Refusal::bad("a header field value holds a control character")
        }
        httparse::Error::NewLine => Refusal::bad("a line of the request head is not ended by CRLF"),
        httparse::Error::Token if !method_read => {
            Refusal::bad("the request line is not `METHOD /path HTTP/1.1`")
        }
        _ => Refusal::bad("the request target holds a character it may not; percent-encode it"),
    }
}

fn last_coding_is_chunked(value: &[u8]) -> bool {
    value
        .rsplit(|&b| b == b',')
        .next()
        .is_some_and(|coding| coding.trim_ascii().eq_ignore_ascii_case(b"chunked"))
}

fn digits(bytes: &[u8]) -> Option<u64> {
    if bytes.is_empty() {
        return None;
    }
    bytes.iter().try_fold(0u64, |n, &b| {
        let d = (b as char).to_digit(10)?;
        n.checked_mul(10)?.checked_add(u64::from(d))
    })
}

/// A connection whose request heads are checked before hyper reads them.
pub struct GuardedStream<S> {
    inner: S,
    heads: Heads,
    /// Bytes hyper may read, from `ready_at` on.
    ready: Vec<u8>,
    ready_at: usize,
    eof: bool,
    refused: Option<Answer>,
}

/// The answer to a refused head, written when hyper closes the connection.
struct Answer {
    bytes: Vec<u8>,
    written: usize,
    closed: bool,
    linger: Option<Pin<Box<tokio::time::Sleep>>>,
    discarded: usize,
}

impl<S> GuardedStream<S> {
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            heads: Heads::default(),
            ready: Vec::new(),
            ready_at: 0,
            eof: false,
            refused: None,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for GuardedStream<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if this.ready_at < this.ready.len() {
                let n = buf.remaining().min(this.ready.len() - this.ready_at);
                buf.put_slice(&this.ready[this.ready_at..this.ready_at + n]);
                this.ready_at += n;
                if this.ready_at == this.ready.len() {
                    this.ready.clear();
                    this.ready_at = 0;
                }
                return Poll::Ready(Ok(()));
            }
            // After a refused head hyper reads the end: it answers what came before, then
            // shuts the connection down, which writes the refusal.
            if this.eof || this.refused.is_some() {
                return Poll::Ready(Ok(()));
            }
            let mut chunk = [0u8; READ_CHUNK];
            let mut read = ReadBuf::new(&mut chunk);
            ready!(Pin::new(&mut this.inner).poll_read(cx, &mut read))?;
            if read.filled().is_empty() {
                this.eof = true;
                continue;
            }
            if let Err(refusal) = this.heads.feed(read.filled(), &mut this.ready) {
                tracing::info!(status = refusal.status.as_u16(), detail = %refusal.detail, "request head refused");
                this.refused = Some(Answer {
                    bytes: refusal.response(),
                    written: 0,
                    closed: false,
                    linger: None,
                    discarded: 0,
                });
            }
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for GuardedStream<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let Some(answer) = this.refused.as_mut() else {
            return Pin::new(&mut this.inner).poll_shutdown(cx);
        };
        while answer.written < answer.bytes.len() {
            let n =
                ready!(Pin::new(&mut this.inner).poll_write(cx, &answer.bytes[answer.written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            answer.written += n;
        }
        if !answer.closed {
            ready!(Pin::new(&mut this.inner).poll_shutdown(cx))?;
            answer.closed = true;
        }
        let linger = answer
            .linger
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(LINGER)));
        while answer.discarded < LINGER_BYTES {
            if linger.as_mut().poll(cx).is_ready() {
                break;
            }
            let mut chunk = [0u8; READ_CHUNK];
            let mut read = ReadBuf::new(&mut chunk);
            match ready!(Pin::new(&mut this.inner).poll_read(cx, &mut read)) {
                Ok(()) if !read.filled().is_empty() => answer.discarded += read.filled().len(),
                _ => break,
            }
        }
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fed(chunks: &[&[u8]]) -> (Vec<u8>, Result<(), Refusal>) {
        let mut heads = Heads::default();
        let mut out = Vec::new();
        for chunk in chunks {
            if let Err(refusal) = heads.feed(chunk, &mut out) {
                return (out, Err(refusal));
            }
        }
        (out, Ok(()))
    }

    #[test]
    fn a_head_is_held_back_until_it_is_complete() {
        let (out, result) = fed(&[b"GET / HTTP/1.1\r\nHost: a\r\n", b"Accept: */*\r\n"]);
        assert!(result.is_ok());
        assert!(out.is_empty());
        let whole: &[u8] = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n";
        let (out, _) = fed(&[&whole[..5], &whole[5..]]);
        assert_eq!(out, whole);
    }

    #[test]
    fn pipelined_requests_with_bodies_pass_in_order() {
        let stream: &[u8] = b"POST /a HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello\
            POST /b HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3;x=1\r\nabc\r\n0\r\nT: 1\r\n\r\n\
            GET /c HTTP/1.1\r\n\r\n\
            GET /d HTTP/1.1\r\n";
        // Byte by byte, and at once: the same bytes pass, the unfinished last head stays.
        let bytes: Vec<&[u8]> = stream.chunks(1).collect();
        for chunks in [bytes, vec![stream]] {
            let (out, result) = fed(&chunks);
            assert!(result.is_ok());
            assert_eq!(out, &stream[..stream.len() - b"GET /d HTTP/1.1\r\n".len()]);
        }
    }

    #[test]
    fn a_body_that_looks_like_a_head_is_not_read_as_one() {
        let body = "x".repeat(MAX_HEAD_BYTES * 2);
        let stream = format!(
            "PUT / HTTP/1.1\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let (out, result) = fed(&[stream.as_bytes()]);
        assert!(result.is_ok());
        assert_eq!(out.len(), stream.len());
    }

    #[test]
    fn over_long_heads_and_too_many_fields_are_refused_with_their_status() {
        let uri = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(MAX_HEAD_BYTES));
        let field = format!(
            "GET / HTTP/1.1\r\nX: {}\r\n\r\n",
            "a".repeat(MAX_HEAD_BYTES)
        );
        let many: String = std::iter::once("GET / HTTP/1.1\r\n".to_owned())
            .chain((0..=MAX_HEADERS).map(|i| format!("X-{i}: 1\r\n")))
            .collect();
        let garbage = "\u{1}".repeat(MAX_HEAD_BYTES + 1);
        for (stream, status) in [
            (uri, StatusCode::URI_TOO_LONG),
            (field, StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE),
            (many, StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE),
            (garbage, StatusCode::BAD_REQUEST),
        ] {
            let before = "GET /first HTTP/1.1\r\n\r\n";
            let (out, result) = fed(&[before.as_bytes(), stream.as_bytes()]);
            assert_eq!(result.map_err(|r| r.status), Err(status));
            assert_eq!(out, before.as_bytes(), "what came before still passes");
        }
    }

    #[test]
    fn unreadable_heads_are_refused_as_bad_requests() {
        for head in [
            "HELLO\r\n\r\n",
            "GET / HTTP/2.0\r\n\r\n",
            "GET /a b HTTP/1.1\r\n\r\n",
            "GET / HTTP/1.1\r\nBad Name: 1\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            "POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
            "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
        ] {
            let (out, result) = fed(&[head.as_bytes()]);
            let refusal = result.expect_err(head);
            assert_eq!(refusal.status, StatusCode::BAD_REQUEST, "{head}");
            assert!(out.is_empty());
        }
    }

    #[test]
    fn the_answer_is_a_whole_problem_response() {
        let answer = String::from_utf8(Refusal::uri_too_long().response()).unwrap();
        let (head, body) = answer.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 414 URI Too Long\r\n"));
        assert!(head.contains("content-type: application/problem+json"));
        assert!(head.contains(&format!("content-length: {}", body.len())));
        let problem: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(problem["type"], "urn:masthead:problem:uri-too-long");
        assert_eq!(problem["status"], 414);
    }
}
