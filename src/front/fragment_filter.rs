//! Refusal of request targets that carry a fragment (`#`).
//!
//! A raw `#` is not allowed in an HTTP/1.1 request-target (RFC 9112 §3.2:
//! `origin-form = absolute-path [ "?" query ]`), but the `http` crate's URI
//! parser silently drops everything from `#` on, so `DELETE /dir/#frag`
//! would reach us as `DELETE /dir/` and remove the collection.
//!
//! [`FragmentFilter`] wraps a connection's plaintext stream (inside TLS) and
//! follows the HTTP/1.1 message framing of the incoming bytes with a
//! [`Tracker`]. Inside a request-target only, it replaces every `#` in place
//! with [`SUBSTITUTE`] (`0xFF`, never valid UTF-8). httparse accepts that
//! byte, the `http` crate then refuses the target as invalid UTF-8, and hyper
//! answers `400 Bad Request` itself and closes the connection; the request
//! never reaches the front layer. The filter logs one warning per such target.
//!
//! Body bytes are never modified. Whenever the tracker cannot be sure of the
//! framing (conflicting or unparsable lengths, a transfer coding other than
//! plain `chunked`, `Upgrade`, `CONNECT`, malformed chunk framing, an
//! oversized head), it stops touching the stream for the rest of the
//! connection; hyper rejects malformed input on its own.

use std::{
    io,
    net::SocketAddr,
    pin::Pin,
    task::{Context, Poll, ready},
};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The byte a `#` in a request-target is replaced with.
pub const SUBSTITUTE: u8 = 0xFF;

/// Bytes of a request head (request line and header lines) after which the
/// tracker gives up. Larger than hyper's read buffer, so hyper has refused
/// such a head before.
const MAX_HEAD_BYTES: usize = 1024 * 1024;

/// Header fields that matter for framing, matched case-insensitively.
const FIELDS: [(&[u8], Field); 3] = [
    (b"content-length", Field::ContentLength),
    (b"transfer-encoding", Field::TransferEncoding),
    (b"upgrade", Field::Upgrade),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    ContentLength,
    TransferEncoding,
    Upgrade,
    Other,
}

/// Where in the incoming byte stream the tracker is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Between messages; empty lines are skipped (as httparse does).
    Idle,
    /// In the method token.
    Method,
    /// After the method, before the first byte of the request-target.
    TargetStart,
    /// In the request-target: `#` is replaced here.
    Target,
    /// In the rest of the request line.
    Version,
    /// At the start of a header line or of the empty line ending the head.
    LineStart,
    /// After a CR at the start of a line: the head ends at the LF.
    HeadEndLf,
    /// In a header field name.
    Name,
    /// In a header field value.
    Value,
    /// In a `Content-Length` body; the count of bytes still to come.
    Body(u64),
    /// First hex digit of a chunk size (hyper's `Start`).
    ChunkStart,
    /// Further hex digits of a chunk size.
    ChunkSize,
    /// Whitespace after a chunk size.
    ChunkLws,
    /// A chunk extension, up to CR.
    ChunkExt,
    /// The LF of a chunk-size line.
    ChunkSizeLf,
    /// Chunk data; the count of bytes still to come.
    ChunkData(u64),
    /// The CR after chunk data.
    ChunkDataCr,
    /// The LF after chunk data.
    ChunkDataLf,
    /// After the last chunk or a trailer line: CR ends the message,
    /// anything else starts a trailer line.
    EndCr,
    /// The final LF of a chunked message.
    EndLf,
    /// In a trailer line, up to CR.
    Trailer,
    /// The LF of a trailer line.
    TrailerLf,
    /// Unsure of the framing: the rest of the connection passes untouched.
    PassThrough,
}

/// Facts gathered from one request head.
#[derive(Debug, Clone, Copy, Default)]
struct Head {
    /// Bytes of the head seen so far.
    bytes: usize,
    /// Bytes of the method matched against `CONNECT` so far.
    method_len: usize,
    /// The method could still be (or is) `CONNECT`.
    maybe_connect: bool,
    /// A `#` of the current target was replaced.
    rewrote: bool,
    /// Length of the current field name.
    name_len: usize,
    /// Bit `i` set: the current name still matches `FIELDS[i]`.
    name_mask: u8,
    /// The field whose value is being read.
    field: Option<Field>,
    /// Scanner of the current value.
    value: ValueScan,
    /// `Content-Length` fields seen.
    content_lengths: u32,
    /// The value of the last valid `Content-Length`.
    content_length: u64,
    /// `Transfer-Encoding` fields seen.
    transfer_encodings: u32,
    /// The last `Transfer-Encoding` was exactly `chunked`.
    chunked: bool,
    /// Something makes the framing uncertain.
    unsure: bool,
}

/// Scans a header value for a single token surrounded by optional whitespace.
#[derive(Debug, Clone, Copy, Default)]
struct ValueScan {
    /// 0: leading whitespace, 1: in the token, 2: trailing whitespace.
    phase: u8,
    /// Token bytes accepted so far.
    len: usize,
    /// `Content-Length`: the decimal value so far.
    number: u64,
    /// The value is not the expected single token.
    bad: bool,
}

impl ValueScan {
    /// Feeds one value byte; `accept` judges token bytes (with their index).
    fn push(&mut self, b: u8, accept: impl FnOnce(&mut Self, u8) -> bool) {
        if b == b' ' || b == b'\t' {
            if self.phase == 1 {
                self.phase = 2;
            }
        } else if self.phase == 2 || !accept(self, b) {
            self.bad = true;
        } else {
            self.phase = 1;
            self.len += 1;
        }
    }
}

/// Follows the HTTP/1.1 framing of incoming request bytes and replaces `#`
/// in request-targets with [`SUBSTITUTE`]. See the module docs.
#[derive(Debug, Clone)]
pub struct Tracker {
    state: State,
    head: Head,
    /// Chunk size being read.
    chunk_size: u64,
}

impl Default for Tracker {
    fn default() -> Self {
        Self::new()
    }
}

impl Tracker {
    /// A tracker at the start of a connection.
    pub fn new() -> Self {
        Self {
            state: State::Idle,
            head: Head::default(),
            chunk_size: 0,
        }
    }

    /// Whether the tracker has given up following the framing.
    pub fn is_pass_through(&self) -> bool {
        self.state == State::PassThrough
    }

    /// Processes the next incoming bytes in place and returns how many
    /// request-targets had a `#` replaced for the first time in this call.
    pub fn feed(&mut self, buf: &mut [u8]) -> usize {
        let mut rewritten = 0;
        let mut i = 0;
        while i < buf.len() {
            match self.state {
                State::PassThrough => break,
                State::Body(left) | State::ChunkData(left) => {
                    let n = left.min((buf.len() - i) as u64);
                    i += n as usize; // n <= buf.len() - i
                    let left = left - n;
                    self.state = match (self.state, left) {
                        (State::Body(_), 0) => State::Idle,
                        (State::Body(_), _) => State::Body(left),
                        (_, 0) => State::ChunkDataCr,
                        _ => State::ChunkData(left),
                    };
                }
                _ => {
                    let before = self.head.rewrote;
                    self.step(&mut buf[i]);
                    if self.head.rewrote && !before {
                        rewritten += 1;
                    }
                    i += 1;
                }
            }
        }
        rewritten
    }

    /// Processes one byte outside of body data.
    fn step(&mut self, byte: &mut u8) {
        let b = *byte;
        if matches!(
            self.state,
            State::Method
                | State::TargetStart
                | State::Target
                | State::Version
                | State::LineStart
                | State::HeadEndLf
                | State::Name
                | State::Value
        ) {
            self.head.bytes += 1;
            if self.head.bytes > MAX_HEAD_BYTES {
                self.state = State::PassThrough;
                return;
            }
        }
        self.state = match self.state {
            State::Idle => match b {
                b'\r' | b'\n' => State::Idle,
                _ => {
                    self.head = Head {
                        bytes: 1,
                        maybe_connect: true,
                        ..Head::default()
                    };
                    self.method_byte(b)
                }
            },
            State::Method => self.method_byte(b),
            State::TargetStart => match b {
                b' ' => State::TargetStart,
                b'\r' | b'\n' => State::PassThrough,
                _ => self.target_byte(byte),
            },
            State::Target => self.target_byte(byte),
            State::Version => match b {
                b'\n' => State::LineStart,
                _ => State::Version,
            },
            State::LineStart => match b {
                b'\r' => State::HeadEndLf,
                b'\n' => self.end_of_head(),
                // obs-fold: httparse refuses it in requests.
                b' ' | b'\t' => State::PassThrough,
                _ => {
                    self.head.name_len = 0;
                    self.head.name_mask = (1 << FIELDS.len()) - 1;
                    self.name_byte(b)
                }
            },
            State::HeadEndLf => match b {
                b'\n' => self.end_of_head(),
                _ => State::PassThrough,
            },
            State::Name => self.name_byte(b),
            State::Value => match b {
                b'\n' => self.end_of_field(),
                // A CR must be followed by LF; httparse refuses it otherwise.
                b'\r' => State::Value,
                _ => {
                    self.value_byte(b);
                    State::Value
                }
            },
            // Handled in `feed`.
            State::Body(_) | State::ChunkData(_) | State::PassThrough => self.state,
            State::ChunkStart => match hex(b) {
                Some(d) => {
                    self.chunk_size = u64::from(d);
                    State::ChunkSize
                }
                None => State::PassThrough,
            },
            State::ChunkSize => match (b, hex(b)) {
                (_, Some(d)) => match self
                    .chunk_size
                    .checked_mul(16)
                    .and_then(|s| s.checked_add(u64::from(d)))
                {
                    Some(s) => {
                        self.chunk_size = s;
                        State::ChunkSize
                    }
                    None => State::PassThrough,
                },
                (b' ' | b'\t', _) => State::ChunkLws,
                (b';', _) => State::ChunkExt,
                (b'\r', _) => State::ChunkSizeLf,
                _ => State::PassThrough,
            },
            State::ChunkLws => match b {
                b' ' | b'\t' => State::ChunkLws,
                b';' => State::ChunkExt,
                b'\r' => State::ChunkSizeLf,
                _ => State::PassThrough,
            },
            State::ChunkExt => match b {
                b'\r' => State::ChunkSizeLf,
                b'\n' => State::PassThrough,
                _ => State::ChunkExt,
            },
            State::ChunkSizeLf => match (b, self.chunk_size) {
                (b'\n', 0) => State::EndCr,
                (b'\n', size) => State::ChunkData(size),
                _ => State::PassThrough,
            },
            State::ChunkDataCr => match b {
                b'\r' => State::ChunkDataLf,
                _ => State::PassThrough,
            },
            State::ChunkDataLf => match b {
                b'\n' => State::ChunkStart,
                _ => State::PassThrough,
            },
            State::EndCr => match b {
                b'\r' => State::EndLf,
                _ => State::Trailer,
            },
            State::EndLf => match b {
                b'\n' => State::Idle,
                _ => State::PassThrough,
            },
            State::Trailer => match b {
                b'\r' => State::TrailerLf,
                _ => State::Trailer,
            },
            State::TrailerLf => match b {
                b'\n' => State::EndCr,
                _ => State::PassThrough,
            },
        };
    }

    fn method_byte(&mut self, b: u8) -> State {
        const CONNECT: &[u8] = b"CONNECT";
        match b {
            b' ' => {
                self.head.maybe_connect &= self.head.method_len == CONNECT.len();
                State::TargetStart
            }
            b'\r' | b'\n' => State::PassThrough,
            _ => {
                let i = self.head.method_len;
                self.head.maybe_connect &= CONNECT.get(i) == Some(&b);
                self.head.method_len = i.saturating_add(1);
                State::Method
            }
        }
    }

    fn target_byte(&mut self, byte: &mut u8) -> State {
        match *byte {
            b'#' => {
                *byte = SUBSTITUTE;
                self.head.rewrote = true;
                State::Target
            }
            b' ' => State::Version,
            // A request line without a version: hyper refuses it.
            b'\r' | b'\n' => State::PassThrough,
            _ => State::Target,
        }
    }

    fn name_byte(&mut self, b: u8) -> State {
        let head = &mut self.head;
        match b {
            b':' => {
                head.field = Some(Field::Other);
                for (i, (name, field)) in FIELDS.iter().enumerate() {
                    if head.name_mask & (1 << i) != 0 && name.len() == head.name_len {
                        head.field = Some(*field);
                    }
                }
                head.value = ValueScan::default();
                State::Value
            }
            // A line without a colon: httparse refuses it.
            b'\r' | b'\n' => State::PassThrough,
            _ => {
                let lower = b.to_ascii_lowercase();
                for (i, (name, _)) in FIELDS.iter().enumerate() {
                    if name.get(head.name_len) != Some(&lower) {
                        head.name_mask &= !(1 << i);
                    }
                }
                head.name_len = head.name_len.saturating_add(1);
                State::Name
            }
        }
    }

    fn value_byte(&mut self, b: u8) {
        let head = &mut self.head;
        match head.field {
            Some(Field::ContentLength) => head.value.push(b, |scan, b| {
                let digit = b.checked_sub(b'0').filter(|d| *d <= 9);
                match digit.and_then(|d| {
                    scan.number
                        .checked_mul(10)
                        .and_then(|n| n.checked_add(u64::from(d)))
                }) {
                    Some(n) => {
                        scan.number = n;
                        true
                    }
                    None => false,
                }
            }),
            Some(Field::TransferEncoding) => head.value.push(b, |scan, b| {
                b"chunked".get(scan.len) == Some(&b.to_ascii_lowercase())
            }),
            _ => {}
        }
    }

    fn end_of_field(&mut self) -> State {
        let head = &mut self.head;
        let value = head.value;
        match head.field {
            Some(Field::ContentLength) => {
                head.content_lengths += 1;
                head.content_length = value.number;
                head.unsure |= value.bad || value.len == 0;
            }
            Some(Field::TransferEncoding) => {
                head.transfer_encodings += 1;
                head.chunked = !value.bad && value.len == b"chunked".len();
            }
            Some(Field::Upgrade) => head.unsure = true,
            Some(Field::Other) | None => {}
        }
        State::LineStart
    }

    fn end_of_head(&mut self) -> State {
        let head = &self.head;
        let unsure = head.unsure
            || head.maybe_connect
            || head.content_lengths > 1
            || head.transfer_encodings > 1
            || (head.transfer_encodings == 1 && (head.content_lengths > 0 || !head.chunked));
        if unsure {
            State::PassThrough
        } else if head.transfer_encodings == 1 {
            State::ChunkStart
        } else if head.content_lengths == 1 && head.content_length > 0 {
            State::Body(head.content_length)
        } else {
            State::Idle
        }
    }
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// A connection stream whose incoming bytes pass through a [`Tracker`].
/// Writes are forwarded untouched.
#[derive(Debug)]
pub struct FragmentFilter<I> {
    inner: I,
    tracker: Tracker,
    peer: SocketAddr,
}

impl<I> FragmentFilter<I> {
    /// Wraps the plaintext stream of the connection from `peer`.
    pub fn new(inner: I, peer: SocketAddr) -> Self {
        Self {
            inner,
            tracker: Tracker::new(),
            peer,
        }
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for FragmentFilter<I> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let start = buf.filled().len();
        ready!(Pin::new(&mut this.inner).poll_read(cx, buf))?;
        let new = buf.filled_mut().get_mut(start..).unwrap_or_default();
        for _ in 0..this.tracker.feed(new) {
            tracing::warn!(
                peer = %this.peer,
                "request target contains a fragment ('#'); refusing the request with 400"
            );
        }
        Poll::Ready(Ok(()))
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for FragmentFilter<I> {
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
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// Feeds `input` cut at `cuts` and returns the output and the count of
    /// rewritten targets.
    fn run(input: &[u8], cuts: &[usize]) -> (Vec<u8>, usize, Tracker) {
        let mut tracker = Tracker::new();
        let mut out = input.to_vec();
        let mut points: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
        points.push(0);
        points.push(input.len());
        points.sort_unstable();
        let mut rewritten = 0;
        for w in points.windows(2) {
            rewritten += tracker.feed(&mut out[w[0]..w[1]]);
        }
        (out, rewritten, tracker)
    }

    fn filtered(input: &[u8]) -> Vec<u8> {
        run(input, &[]).0
    }

    #[test]
    fn fragment_in_target_is_replaced() {
        let out = filtered(b"DELETE /litmus/frag/#ment HTTP/1.1\r\nHost: h\r\n\r\n");
        assert_eq!(
            out,
            b"DELETE /litmus/frag/\xFFment HTTP/1.1\r\nHost: h\r\n\r\n".to_vec()
        );
        let out = filtered(b"GET /a?x#y#z HTTP/1.1\r\n\r\n");
        assert_eq!(out, b"GET /a?x\xFFy\xFFz HTTP/1.1\r\n\r\n".to_vec());
        let (_, n, _) = run(b"GET /#a#b HTTP/1.1\r\n\r\nGET /#c HTTP/1.1\r\n\r\n", &[]);
        assert_eq!(n, 2, "one per target");
    }

    #[test]
    fn method_version_and_headers_are_untouched() {
        let input = b"GE#T /a HTTP/1.1#\r\nX-A: #b\r\n\r\n";
        assert_eq!(filtered(input), input.to_vec());
    }

    #[test]
    fn bodies_are_untouched() {
        let input =
            b"PUT /a HTTP/1.1\r\ncontent-LENGTH:  27 \r\n\r\n#\r\n\r\nDELETE /#x HTTP/1.1\r\n\r\n\
            POST /b HTTP/1.1\r\nTransfer-Encoding: Chunked\r\n\r\n\
            5;x=#\r\n#a#b#\r\n3\r\n\r\n#\r\n0\r\nX-T: #\r\n\r\n\
            GET /#c HTTP/1.1\r\n\r\n";
        let mut expected = input.to_vec();
        let at = expected.len() - b"c HTTP/1.1\r\n\r\n".len() - 1;
        assert_eq!(expected[at], b'#');
        expected[at] = SUBSTITUTE;
        let (out, n, t) = run(input, &[]);
        assert_eq!(out, expected);
        assert_eq!(n, 1);
        assert!(!t.is_pass_through());
    }

    #[test]
    fn bare_lf_heads_and_leading_empty_lines() {
        let out = filtered(b"\r\n\nGET /#a HTTP/1.1\nContent-Length: 1\n\n#GET /#b HTTP/1.1\n\n");
        assert_eq!(
            out,
            b"\r\n\nGET /\xFFa HTTP/1.1\nContent-Length: 1\n\n#GET /\xFFb HTTP/1.1\n\n".to_vec()
        );
    }

    #[test]
    fn uncertain_framing_passes_everything_through() {
        for head in [
            "PUT /a HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n",
            "PUT /a HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
            "PUT /a HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
            "PUT /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
            "PUT /a HTTP/1.1\r\nContent-Length: +3\r\n\r\n",
            "PUT /a HTTP/1.1\r\nContent-Length: 3 4\r\n\r\n",
            "PUT /a HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n",
            "PUT /a HTTP/1.1\r\nContent-Length:\r\n\r\n",
            "GET /a HTTP/1.1\r\nUpgrade: h2c\r\n\r\n",
            "CONNECT h:1 HTTP/1.1\r\n\r\n",
            "GET /a HTTP/1.1\r\nX: a\r\n folded\r\n\r\n",
            "GET /a HTTP/1.1\r\nno colon\r\n\r\n",
            "GET /a\r\n\r\n",
            "PUT /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nx\r\n",
            "PUT /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nab\r\n",
            "PUT /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1;a\nb\r\n",
            "PUT /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n11111111111111111\r\n",
        ] {
            let input = format!("{head}GET /#x HTTP/1.1\r\n\r\n");
            let (out, n, t) = run(input.as_bytes(), &[]);
            assert_eq!(out, input.as_bytes(), "{head:?}");
            assert_eq!(n, 0, "{head:?}");
            assert!(t.is_pass_through(), "{head:?}");
        }
    }

    #[test]
    fn followed_framing_is_not_uncertain() {
        for head in [
            "PUT /a HTTP/1.1\r\ncontent-length:3\r\n\r\nabc",
            "PUT /a HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
            "PUT /a HTTP/1.1\r\nContent-Lengthy: 3\r\n\r\n",
            "PUT /a HTTP/1.1\r\nUpgrade-Insecure-Requests: 1\r\n\r\n",
            "CONNECTX /a HTTP/1.1\r\n\r\n",
            "PUT /a HTTP/1.1\r\nTRANSFER-ENCODING:\tchunked\t\r\n\r\n1 ; a=\"#\"\r\n#\r\n00\r\n\r\n",
        ] {
            let input = format!("{head}GET /#x HTTP/1.1\r\n\r\n");
            let (out, n, t) = run(input.as_bytes(), &[]);
            let mut expected = input.clone().into_bytes();
            expected[head.len() + 5] = SUBSTITUTE;
            assert_eq!(out, expected, "{head:?}");
            assert_eq!(n, 1, "{head:?}");
            assert!(!t.is_pass_through(), "{head:?}");
        }
    }

    #[test]
    fn oversized_head_gives_up() {
        let mut input = b"GET /".to_vec();
        input.resize(MAX_HEAD_BYTES + 10, b'a');
        input.extend_from_slice(b"# HTTP/1.1\r\n\r\n");
        let (out, n, t) = run(&input, &[4096]);
        assert_eq!(out, input);
        assert_eq!(n, 0);
        assert!(t.is_pass_through());
    }

    /// One generated request: the bytes on the wire, the bytes the tracker
    /// must produce, and whether its target had a `#`.
    #[derive(Debug, Clone)]
    struct Message {
        input: Vec<u8>,
        expected: Vec<u8>,
        has_fragment: bool,
    }

    fn token_bytes(alphabet: &'static [u8], max: usize) -> impl Strategy<Value = Vec<u8>> {
        prop::collection::vec(prop::sample::select(alphabet), 0..max)
    }

    /// Body bytes rich in things that look like framing.
    fn body() -> impl Strategy<Value = Vec<u8>> {
        let piece = prop_oneof![
            prop::collection::vec(any::<u8>(), 0..12),
            prop::sample::select(vec![
                &b"#"[..],
                b"\r\n\r\n",
                b"\r\n",
                b"\n\n",
                b"DELETE /#x HTTP/1.1\r\n",
                b"GET /a#b HTTP/1.1\r\nContent-Length: 3\r\n\r\n",
                b"0\r\n\r\n",
                b"Transfer-Encoding: chunked\r\n",
            ])
            .prop_map(<[u8]>::to_vec),
        ];
        prop::collection::vec(piece, 0..6).prop_map(|v| v.concat())
    }

    #[derive(Debug, Clone)]
    enum Framing {
        None,
        Length(Vec<u8>),
        /// Chunks (non-empty data, extension), trailer lines.
        Chunked(Vec<(Vec<u8>, Option<&'static str>)>, Vec<Vec<u8>>),
    }

    fn framing() -> impl Strategy<Value = Framing> {
        let chunk = (
            body().prop_filter("chunks are not empty", |b| !b.is_empty()),
            prop::option::of(prop::sample::select(vec![";a=b", ";x=\"#\"", " ", "\t;e"])),
        );
        prop_oneof![
            Just(Framing::None),
            body().prop_map(Framing::Length),
            (
                prop::collection::vec(chunk, 0..4),
                prop::collection::vec(token_bytes(b"abc#: ", 10), 0..3),
            )
                .prop_map(|(c, t)| Framing::Chunked(c, t)),
        ]
    }

    fn message() -> impl Strategy<Value = Message> {
        (
            prop::sample::select(vec!["GET", "PUT", "DELETE", "PROPFIND", "MKCOL", "POST"]),
            token_bytes(b"ab/#?%.-~", 16),
            prop::collection::vec(
                (
                    prop::sample::select(vec!["Host", "X-A", "Depth", "Content-Lengt"]),
                    token_bytes(b"ab #:;/,", 10),
                ),
                0..4,
            ),
            prop::sample::select(vec!["Content-Length", "content-length", "CONTENT-LENGTH"]),
            prop::sample::select(vec!["Transfer-Encoding", "transfer-encoding"]),
            prop::sample::select(vec!["chunked", "Chunked", " chunked ", "CHUNKED"]),
            any::<bool>(),
            framing(),
        )
            .prop_map(|(method, path, extra, cl, te, chunked, bare_lf, framing)| {
                let eol: &[u8] = if bare_lf { b"\n" } else { b"\r\n" };
                let mut target = b"/".to_vec();
                target.extend_from_slice(&path);
                let has_fragment = target.contains(&b'#');
                let mut head = Vec::new();
                head.extend_from_slice(method.as_bytes());
                head.push(b' ');
                let target_at = head.len();
                head.extend_from_slice(&target);
                head.extend_from_slice(b" HTTP/1.1");
                head.extend_from_slice(eol);
                for (name, value) in extra {
                    head.extend_from_slice(format!("{name}: ").as_bytes());
                    head.extend_from_slice(value.trim_ascii());
                    head.extend_from_slice(eol);
                }
                let mut body_bytes = Vec::new();
                match &framing {
                    Framing::None => {}
                    Framing::Length(b) => {
                        head.extend_from_slice(format!("{cl}: {}", b.len()).as_bytes());
                        head.extend_from_slice(eol);
                        body_bytes.extend_from_slice(b);
                    }
                    Framing::Chunked(chunks, trailers) => {
                        head.extend_from_slice(format!("{te}:{chunked}").as_bytes());
                        head.extend_from_slice(eol);
                        for (i, (data, ext)) in chunks.iter().enumerate() {
                            let size = if i % 2 == 0 {
                                format!("{:x}", data.len())
                            } else {
                                format!("0{:X}", data.len())
                            };
                            body_bytes.extend_from_slice(size.as_bytes());
                            body_bytes.extend_from_slice(ext.unwrap_or("").as_bytes());
                            body_bytes.extend_from_slice(b"\r\n");
                            body_bytes.extend_from_slice(data);
                            body_bytes.extend_from_slice(b"\r\n");
                        }
                        body_bytes.extend_from_slice(b"0\r\n");
                        for t in trailers {
                            body_bytes.extend_from_slice(b"X-T: ");
                            body_bytes.extend_from_slice(t);
                            body_bytes.extend_from_slice(b"\r\n");
                        }
                        body_bytes.extend_from_slice(b"\r\n");
                    }
                }
                head.extend_from_slice(eol);
                let mut expected = head.clone();
                for b in &mut expected[target_at..target_at + target.len()] {
                    if *b == b'#' {
                        *b = SUBSTITUTE;
                    }
                }
                let mut input = head;
                input.extend_from_slice(&body_bytes);
                expected.extend_from_slice(&body_bytes);
                Message {
                    input,
                    expected,
                    has_fragment,
                }
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Pipelined requests cut at random read boundaries: only `#` in
        /// request targets changes; heads and bodies arrive byte-exact.
        #[test]
        fn pipelined_requests(
            messages in prop::collection::vec(message(), 1..6),
            cuts in prop::collection::vec(any::<usize>(), 0..12),
        ) {
            let input: Vec<u8> = messages.iter().flat_map(|m| m.input.clone()).collect();
            let expected: Vec<u8> = messages.iter().flat_map(|m| m.expected.clone()).collect();
            let (out, n, t) = run(&input, &cuts);
            prop_assert_eq!(out, expected);
            prop_assert_eq!(n, messages.iter().filter(|m| m.has_fragment).count());
            prop_assert!(!t.is_pass_through());
        }

        /// Arbitrary bytes: no panic, and the only change ever made is
        /// `#` → SUBSTITUTE; the result does not depend on read boundaries.
        #[test]
        fn arbitrary_bytes(
            input in prop::collection::vec(
                prop_oneof![any::<u8>(), prop::sample::select(b"# \r\n:0aC".to_vec())],
                0..300,
            ),
            cuts in prop::collection::vec(any::<usize>(), 0..8),
        ) {
            let (whole, n_whole, _) = run(&input, &[]);
            let (out, n, _) = run(&input, &cuts);
            prop_assert_eq!(&out, &whole);
            prop_assert_eq!(n, n_whole);
            for (a, b) in input.iter().zip(&out) {
                prop_assert!(a == b || (*a == b'#' && *b == SUBSTITUTE));
            }
        }
    }
}
