//! Stage 3b: TLS between TCP reassembly and the HTTP/WebSocket session.
//!
//! A connection whose client opens with a TLS ClientHello record (on any port) is TLS. Its
//! reassembled byte streams are cut into TLS records (records span segments, segments carry
//! several records); plaintext handshake messages give the version, cipher suite, SNI, ALPN
//! and the client random, which finds the connection's secrets in the [`KeyLog`]. With them,
//! records are decrypted ([`crypto`]) and the application data comes out as in-order stream
//! bytes per direction, which the dissector hands to the same session code as plain TCP
//! data, at the packet that completed each record.
//!
//! TLS 1.3: handshake traffic secrets until each side's Finished, then `*_TRAFFIC_SECRET_0`,
//! moved on by KeyUpdate. If a side's handshake secret is missing, its handshake records are
//! skipped until one opens with the application key. TLS 1.2: the `CLIENT_RANDOM` master
//! secret's key block, each side from its ChangeCipherSpec on. Not decrypted: TLS 1.0/1.1
//! (another PRF), 0-RTT early data (counted as undecrypted records), renegotiation.
//! In a live capture the key log is written while packets arrive, so records whose
//! secrets are not logged yet are held (bounded) and replayed once they are. The
//! ClientHello names the client: when the TCP stage only guessed the roles (no SYN), a
//! ClientHello from its "server" swaps them. After a gap in a protected direction, the
//! first whole record after it is found by trial: a spot that looks like a record header
//! and whose record opens under one of the next sequence numbers (as many as the gap could
//! hold records). Nothing here stops the run: a missing key, an unsupported suite, a failed
//! tag or a gap that no record after it resyncs turns into a problem and the direction's
//! remaining records are counted, not decrypted.

pub mod crypto;
pub mod keylog;

pub use keylog::KeyLog;

use crate::problem::ProblemCode;
use crate::tcp::{Side, TcpEvent};
use crypto::{Decryptor, OpenError, Suite};
use keylog::Secrets;
use tls_parser::{
    parse_tls_client_hello_extensions, parse_tls_handshake_client_hello,
    parse_tls_handshake_server_hello, parse_tls_server_hello_extensions, SNIType, TlsExtension,
};

use crate::limits::{
    MAX_TLS_HANDSHAKE_MESSAGE as MAX_HANDSHAKE_MESSAGE, MAX_TLS_RECORD as MAX_RECORD,
    MAX_TLS_WAITING as MAX_WAITING,
};
/// The least protected record: header, one byte, a 16-byte tag (TLS 1.3 and ChaCha20; the
/// AES-GCM suites of TLS 1.2 add an 8-byte nonce).
const MIN_PROTECTED_RECORD: u64 = 5 + 1 + 16;
/// Records a gap is taken to have lost, at most: as many as its length could hold, and the
/// one it cut into.
const RESYNC_MAX_LOST: u64 = 256;
/// Spots that look like a record header tried after one gap; real ciphertext seldom has one.
const RESYNC_MAX_CANDIDATES: u32 = 4;
/// Bytes after a gap without a record that opens, after which its direction is given up.
const RESYNC_MAX_SKIP: usize = 2 * (MAX_RECORD + 5);
/// The longest HTTP proxy answer looked for before a server's first TLS record.
const MAX_PROXY_ANSWER: usize = 16 << 10;

/// RFC 8446 4.1.3: the ServerHello random of a HelloRetryRequest.
const HRR_RANDOM: [u8; 32] = [
    0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c, 0x02, 0x1e, 0x65, 0xb8, 0x91,
    0xc2, 0xa2, 0x11, 0x16, 0x7a, 0xbb, 0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8, 0x33, 0x9c,
];

/// What is known about a TLS connection, for its records.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsInfo {
    /// Negotiated version, e.g. `TLS 1.3` (the ClientHello's until the ServerHello is seen).
    pub version: Option<String>,
    pub cipher_suite: Option<String>,
    pub cipher_suite_id: Option<u16>,
    pub sni: Option<String>,
    pub alpn_offered: Vec<String>,
    pub alpn: Option<String>,
    /// The ClientHello random in hex: the key log's key.
    pub client_random: Option<String>,
    /// The key log had secrets for this connection.
    pub keys_found: bool,
    /// Records (application data) were decrypted.
    pub decrypted: bool,
    /// TLS stream bytes per direction (client, server).
    pub bytes: [u64; 2],
    /// Records that could not be decrypted (no key, failure, unsupported suite).
    pub undecrypted_records: u64,
    pub problems: Vec<ProblemCode>,
}

/// What the TLS stage hands on, in order.
#[derive(Debug, PartialEq, Eq)]
pub enum TlsOut {
    /// Decrypted application data.
    Data {
        from: Side,
        offset: u64,
        bytes: Vec<u8>,
    },
    /// The handshake is known (ServerHello seen, or the connection ended without one).
    Handshake,
    /// The connection carries TLS that cannot be decrypted: list it as it is.
    Opaque,
    /// ALPN rules WebSocket out (see `TlsConn::not_http1`): the connection is not listed, and
    /// its secrets are not needed either.
    NotHttp1,
    Problem {
        code: ProblemCode,
        from: Option<Side>,
        detail: String,
    },
}

/// What the dissector does with a TCP event.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// Not TLS (or not an event TLS changes): give the event to the session as it is.
    Pass,
    /// TLS consumed it; hand on [`TlsConn::take_outputs`].
    Consumed,
    /// As `Consumed`, and the side the TCP stage calls the server sent the ClientHello:
    /// the roles are swapped from this event on.
    ConsumedSwapRoles,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Mode {
    #[default]
    Undecided,
    Tls,
    Plain,
}

#[derive(Default)]
struct Dir {
    buf: Vec<u8>,
    hs: Vec<u8>,
    hs_broken: bool,
    /// The peer protects its records from now on (TLS 1.2 after ChangeCipherSpec, TLS 1.3
    /// after the ServerHello).
    encrypted: bool,
    current: Option<Decryptor>,
    /// TLS 1.3: the application epoch, installed at Finished (or by trial).
    app: Option<Decryptor>,
    app_secret: Option<Vec<u8>>,
    in_app_epoch: bool,
    /// TLS 1.2: the keys that ChangeCipherSpec turns on.
    pending: Option<Decryptor>,
    /// After a gap: the next record is looked for (see the module's documentation).
    resync: Option<Resync>,
    /// No more records are parsed or decrypted (malformed stream, gap, decrypt failure).
    dead: bool,
    /// Decryption of this direction failed; reported once.
    failed: bool,
    opened: u64,
    app_offset: u64,
    /// A record header was read in this direction.
    framed: bool,
}

/// Looking for the first record after a gap.
struct Resync {
    /// Bytes the gap lost, which bounds the records lost in it.
    gap: u64,
    /// Bytes after the gap passed over so far.
    skipped: usize,
    /// Header-like spots tried so far.
    candidates: u32,
}

/// Per-connection TLS state.
#[derive(Default)]
pub struct TlsConn {
    mode: Mode,
    info: TlsInfo,
    dirs: [Dir; 2],
    client_random: Option<[u8; 32]>,
    server_random: Option<[u8; 32]>,
    suite: Option<Suite>,
    tls13: bool,
    /// RFC 7366, from the ServerHello: CBC records are MACed after encryption.
    encrypt_then_mac: bool,
    server_hello_seen: bool,
    handshake_reported: bool,
    handshake_pending: bool,
    /// Live capture: the secrets are not all in the key log yet; protected records wait in
    /// `waiting` (in arrival order, at most `MAX_WAITING` bytes) until they are.
    awaiting: bool,
    waiting: Vec<(Side, [u8; 5], Vec<u8>)>,
    waiting_bytes: usize,
    opaque_reported: bool,
    out: Vec<TlsOut>,
}

fn idx(side: Side) -> usize {
    match side {
        Side::Client => 0,
        Side::Server => 1,
    }
}

/// A ClientHello record starts the stream: handshake (22), major version 3, then the
/// handshake type 1 after the 5-byte record header.
/// A first segment shorter than that is judged on the bytes it has.
pub fn looks_like_client_hello(data: &[u8]) -> bool {
    !data.is_empty()
        && data.first() == Some(&22)
        && data.get(1).is_none_or(|&v| v == 3)
        && data.get(2).is_none_or(|&v| v <= 4)
        && data.get(5).is_none_or(|&t| t == 1)
}

impl TlsConn {
    pub fn is_tls(&self) -> bool {
        self.mode == Mode::Tls
    }

    pub fn info(&self) -> Option<&TlsInfo> {
        self.is_tls().then_some(&self.info)
    }

    pub fn take_outputs(&mut self) -> Vec<TlsOut> {
        std::mem::take(&mut self.out)
    }

    /// Looks at one TCP event of the connection. `roles_from_syn`: the TCP stage knows who
    /// the client is; otherwise a ClientHello from the side it guessed to be the server
    /// swaps the roles ([`Step::ConsumedSwapRoles`]).
    pub fn on_tcp(&mut self, ev: &TcpEvent<'_>, roles_from_syn: bool, keys: &mut KeyLog) -> Step {
        match (self.mode, ev) {
            (Mode::Plain, _) => Step::Pass,
            (Mode::Undecided, TcpEvent::Data { from, data, .. }) => {
                if *from == Side::Client && looks_like_client_hello(data) {
                    self.mode = Mode::Tls;
                    self.on_data(*from, data, keys);
                    Step::Consumed
                } else if !roles_from_syn && looks_like_client_hello(data) {
                    self.mode = Mode::Tls;
                    self.on_data(Side::Client, data, keys);
                    Step::ConsumedSwapRoles
                } else {
                    self.mode = Mode::Plain;
                    Step::Pass
                }
            }
            (Mode::Tls, TcpEvent::Data { from, data, .. }) => {
                self.on_data(*from, data, keys);
                Step::Consumed
            }
            (Mode::Tls, TcpEvent::Gap { from, len, .. }) => {
                let d = &mut self.dirs[idx(*from)];
                // Only records of the epoch in use can be found again by their sequence
                // numbers; a live capture's waiting records keep their order.
                if !d.dead && d.encrypted && d.current.is_some() && !self.awaiting {
                    d.buf = Vec::new();
                    match &mut d.resync {
                        Some(r) => r.gap = r.gap.saturating_add(*len),
                        None => d.resync = Some(Resync { gap: *len, skipped: 0, candidates: 0 }),
                    }
                } else if !d.dead {
                    d.dead = true;
                    d.buf = Vec::new();
                    if d.encrypted && !d.failed && (d.current.is_some() || d.app.is_some()) {
                        d.failed = true;
                        self.problem(
                            ProblemCode::TlsDecryptFailed,
                            Some(*from),
                            "bytes of the TLS stream are missing; the records after the gap \
                             cannot be decrypted"
                                .into(),
                        );
                    }
                }
                // The session still reports the gap itself.
                Step::Pass
            }
            (Mode::Tls, TcpEvent::Closed { .. }) => {
                if self.awaiting {
                    self.try_keys(keys, true);
                }
                self.finish();
                Step::Pass
            }
            _ => Step::Pass,
        }
    }

    fn problem(&mut self, code: ProblemCode, from: Option<Side>, detail: String) {
        if !self.info.problems.contains(&code) {
            self.info.problems.push(code);
        }
        self.out.push(TlsOut::Problem { code, from, detail });
    }

    /// Whether ALPN rules out WebSocket: the client offered only protocols other than
    /// HTTP/1.1 (gRPC's h2 alone, say), or the server selected one that is neither HTTP/1.1
    /// nor h2 (a browser that offered both may open WebSockets over h2, RFC 8441).
    fn not_http1(&self) -> bool {
        let offered = &self.info.alpn_offered;
        let http1_offered = offered.is_empty() || offered.iter().any(|p| p == "http/1.1");
        match self.info.alpn.as_deref() {
            Some("http/1.1") => false,
            Some("h2") => !http1_offered,
            Some(_) => true,
            None => !http1_offered,
        }
    }

    fn opaque(&mut self) {
        if self.not_http1() {
            if !self.opaque_reported {
                self.opaque_reported = true;
                self.out.push(TlsOut::NotHttp1);
            }
            return;
        }
        if !self.opaque_reported {
            self.opaque_reported = true;
            self.out.push(TlsOut::Opaque);
        }
    }

    fn finish(&mut self) {
        for side in [Side::Client, Side::Server] {
            let d = &mut self.dirs[idx(side)];
            // A gap at the very end loses nothing more than itself (the session reports it).
            if let Some(r) = d.resync.take() {
                let after = r.skipped + d.buf.len();
                if after > 0 {
                    let detail = format!(
                        "after a gap of {} bytes, no record opened before the stream ended; \
                         the {after} bytes after the gap are not decrypted",
                        r.gap
                    );
                    self.give_up(side, detail);
                }
            }
        }
        if !self.handshake_reported {
            self.handshake_reported = true;
            self.out.push(TlsOut::Handshake);
            self.opaque();
        }
        for side in [Side::Client, Side::Server] {
            let d = &self.dirs[idx(side)];
            if self.info.keys_found && d.encrypted && d.opened == 0 && !d.failed && !d.dead {
                self.dirs[idx(side)].failed = true;
                self.problem(
                    ProblemCode::TlsDecryptFailed,
                    Some(side),
                    format!(
                        "no {} record decrypted with the logged secrets (wrong key log?)",
                        side.as_str()
                    ),
                );
                self.opaque();
            }
        }
    }

    fn on_data(&mut self, from: Side, data: &[u8], keys: &mut KeyLog) {
        let start = self.out.len();
        let i = idx(from);
        self.info.bytes[i] = self.info.bytes[i].saturating_add(data.len() as u64);
        if self.awaiting {
            self.try_keys(keys, false);
        }
        if self.dirs[i].dead {
            self.report_handshake(start);
            return;
        }
        self.dirs[i].buf.extend_from_slice(data);
        if !self.resync(from) {
            self.report_handshake(start);
            return;
        }
        if from == Side::Server && !self.dirs[i].framed && !self.skip_proxy_answer() {
            return;
        }
        let mut at = 0;
        loop {
            let buf = &self.dirs[i].buf;
            let Some(header) = buf.get(at..at + 5) else { break };
            let header: [u8; 5] = [header[0], header[1], header[2], header[3], header[4]];
            let len = usize::from(u16::from_be_bytes([header[3], header[4]]));
            if !(20..=24).contains(&header[0]) || header[1] != 3 || len > MAX_RECORD {
                self.dirs[i].dead = true;
                self.problem(
                    ProblemCode::TlsMalformed,
                    Some(from),
                    format!(
                        "not a TLS record header ({:02x} {:02x}{:02x}, length {len}); the rest \
                         of this direction is skipped",
                        header[0], header[1], header[2]
                    ),
                );
                self.opaque();
                break;
            }
            self.dirs[i].framed = true;
            let Some(body) = buf.get(at + 5..at + 5 + len) else { break };
            let body = body.to_vec();
            at += 5 + len;
            self.record(from, header, &body, keys);
            if self.dirs[i].dead {
                break;
            }
        }
        let d = &mut self.dirs[i];
        if d.dead {
            d.buf = Vec::new();
        } else {
            d.buf.drain(..at.min(d.buf.len()));
        }
        if self.awaiting && self.waiting_bytes > MAX_WAITING {
            self.try_keys(keys, true);
        }
        self.report_handshake(start);
    }

    /// After a gap, drops the buffer's bytes up to the first record that opens under one of
    /// the sequence numbers the gap allows, and leaves the decryptor at that record. Whether
    /// the buffer now starts with a record (or there was no gap): false while more bytes are
    /// needed, and once given up.
    /// An HTTP proxy's answer before the server's first record: its client sent the TLS
    /// handshake through a `CONNECT` the capture lacks (lost in a gap, or sent before the
    /// capture began), pipelined behind it or after it. The answer is skipped, not read as
    /// a malformed record; false while its head is still incomplete.
    fn skip_proxy_answer(&mut self) -> bool {
        const PREFIX: &[u8] = b"HTTP/1.";
        let buf = &mut self.dirs[idx(Side::Server)].buf;
        let n = buf.len().min(PREFIX.len());
        if buf[..n] != PREFIX[..n] {
            return true;
        }
        match memchr::memmem::find(buf, b"\r\n\r\n") {
            // Counted with the connection's TLS bytes, as the records around it are.
            Some(end) => {
                buf.drain(..end + 4);
                true
            }
            // Longer than any proxy answer: let it be read as the bad record it is.
            None => buf.len() > MAX_PROXY_ANSWER,
        }
    }

    fn resync(&mut self, from: Side) -> bool {
        let d = &mut self.dirs[idx(from)];
        let (Some(r), Some(dec)) = (d.resync.as_mut(), d.current.as_mut()) else {
            return true;
        };
        let lost = (r.gap / MIN_PROTECTED_RECORD + 1).min(RESYNC_MAX_LOST);
        // The next record is the one after the last opened, or after up to `lost` more.
        let next = dec.seq();
        let mut at = 0;
        while let Some(h) = d.buf.get(at..at + 5) {
            let header = [h[0], h[1], h[2], h[3], h[4]];
            let len = usize::from(u16::from_be_bytes([h[3], h[4]]));
            let plausible = (21..=23).contains(&header[0])
                && header[1..3] == [3, 3]
                && (MIN_PROTECTED_RECORD as usize - 5..=MAX_RECORD).contains(&len);
            if plausible {
                let Some(body) = d.buf.get(at + 5..at + 5 + len) else { break };
                r.candidates += 1;
                let hit =
                    (next..=next.saturating_add(lost)).find(|&seq| dec.opens_at(seq, header, body));
                if let Some(seq) = hit {
                    // Opened to test it: the record is opened again in turn, from here.
                    dec.set_seq(seq);
                    d.buf.drain(..at);
                    // The end of the record the gap cut into was passed over.
                    if r.skipped + at > 0 {
                        self.info.undecrypted_records += 1;
                    }
                    d.resync = None;
                    return true;
                }
                if r.candidates >= RESYNC_MAX_CANDIDATES {
                    at += 1;
                    break;
                }
            }
            at += 1;
        }
        r.skipped += at;
        d.buf.drain(..at.min(d.buf.len()));
        if r.skipped <= RESYNC_MAX_SKIP && r.candidates < RESYNC_MAX_CANDIDATES {
            return false;
        }
        let detail = format!(
            "after a gap of {} bytes, no record of the {} bytes that follow opened under any \
             of the next {} sequence numbers; the rest of this direction is not decrypted",
            r.gap,
            r.skipped,
            lost + 1
        );
        self.give_up(from, detail);
        false
    }

    /// Emits the handshake record once its facts are known (ALPN of TLS 1.3, and whether
    /// there are keys), ahead of what this segment produced.
    fn report_handshake(&mut self, start: usize) {
        if self.handshake_pending && !self.handshake_reported && !self.awaiting {
            self.handshake_pending = false;
            self.handshake_reported = true;
            self.out.insert(start.min(self.out.len()), TlsOut::Handshake);
        }
    }

    fn record(&mut self, from: Side, header: [u8; 5], body: &[u8], keys: &mut KeyLog) {
        let i = idx(from);
        let ctype = header[0];
        if ctype == 20 {
            // ChangeCipherSpec: TLS 1.2 turns on this side's keys; TLS 1.3 sends it only for
            // middlebox compatibility (RFC 8446 D.4), also before a ServerHello (after a
            // HelloRetryRequest, or with early data).
            if !self.tls13 && self.server_hello_seen {
                let d = &mut self.dirs[i];
                d.encrypted = true;
                d.current = d.pending.take();
            }
            return;
        }
        if !self.dirs[i].encrypted || (self.tls13 && ctype != 23) {
            match ctype {
                22 => self.handshake_bytes(from, body, keys),
                // TLS 1.3 early data (0-RTT), before the ServerHello: its secret and suite
                // are not followed.
                23 => self.info.undecrypted_records += 1,
                _ => {}
            }
            return;
        }
        if self.awaiting {
            self.waiting_bytes += body.len() + 5;
            self.waiting.push((from, header, body.to_vec()));
            return;
        }
        let Some(plain) = self.decrypt(from, header, body) else { return };
        if self.tls13 {
            // RFC 8446 5.4: the content type is the last non-zero byte of the inner plaintext.
            let Some(end) = plain.iter().rposition(|&b| b != 0) else { return };
            let inner = plain[end];
            let content = &plain[..end];
            match inner {
                23 => self.app_data(from, content),
                22 => self.handshake_bytes(from, content, keys),
                _ => {}
            }
        } else {
            match ctype {
                23 => self.app_data(from, &plain),
                22 => self.handshake_bytes(from, &plain, keys),
                _ => {}
            }
        }
    }

    fn decrypt(&mut self, from: Side, header: [u8; 5], body: &[u8]) -> Option<Vec<u8>> {
        let i = idx(from);
        let d = &mut self.dirs[i];
        if d.current.is_none() && d.app.is_none() {
            self.info.undecrypted_records += 1;
            return None;
        }
        let first = d.current.as_mut().map(|c| c.open(header, body));
        match first {
            Some(Ok(p)) => {
                d.opened += 1;
                self.info.decrypted = true;
                return Some(p);
            }
            Some(Err(OpenError::TooShort)) => {
                self.fail(from, "a protected record is shorter than its authentication tag");
                return None;
            }
            _ => {}
        }
        // TLS 1.3 without the handshake secret, or a Finished we could not see: try the
        // application epoch.
        if !d.in_app_epoch {
            if let Some(mut app) = d.app.take() {
                if let Ok(p) = app.open(header, body) {
                    d.current = Some(app);
                    d.in_app_epoch = true;
                    d.opened += 1;
                    self.info.decrypted = true;
                    return Some(p);
                }
                d.app = Some(app);
                if d.current.is_none() {
                    // Still in the handshake epoch, whose secret is not logged.
                    self.info.undecrypted_records += 1;
                    return None;
                }
            }
        }
        self.fail(from, "a record's authentication tag did not verify (wrong key log entry?)");
        None
    }

    fn fail(&mut self, from: Side, why: &str) {
        let detail = format!(
            "{} record {} of this epoch: {why}; the rest of this direction is not decrypted",
            from.as_str(),
            self.dirs[idx(from)].opened + 1
        );
        self.give_up(from, detail);
    }

    /// Stops decrypting a direction, with a record not decrypted; the first time, says why.
    fn give_up(&mut self, from: Side, detail: String) {
        self.info.undecrypted_records += 1;
        let d = &mut self.dirs[idx(from)];
        d.dead = true;
        d.resync = None;
        d.buf = Vec::new();
        if d.failed {
            return;
        }
        d.failed = true;
        self.problem(ProblemCode::TlsDecryptFailed, Some(from), detail);
        self.opaque();
    }

    fn app_data(&mut self, from: Side, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        let d = &mut self.dirs[idx(from)];
        let offset = d.app_offset;
        d.app_offset += data.len() as u64;
        self.out.push(TlsOut::Data { from, offset, bytes: data.to_vec() });
    }

    /// Handshake messages, reassembled across records.
    fn handshake_bytes(&mut self, from: Side, data: &[u8], keys: &mut KeyLog) {
        let i = idx(from);
        if self.dirs[i].hs_broken {
            return;
        }
        self.dirs[i].hs.extend_from_slice(data);
        loop {
            let hs = &self.dirs[i].hs;
            let Some(&[t, a, b, c]) = hs.get(..4) else { return };
            let len = usize::from(a) << 16 | usize::from(b) << 8 | usize::from(c);
            if len > MAX_HANDSHAKE_MESSAGE {
                // Skipped, not fatal: the messages that matter are short.
                let d = &mut self.dirs[i];
                d.hs_broken = true;
                d.hs = Vec::new();
                return;
            }
            let Some(body) = hs.get(4..4 + len) else { return };
            let body = body.to_vec();
            self.dirs[i].hs.drain(..4 + len);
            self.handshake_message(from, t, &body, keys);
        }
    }

    fn handshake_message(&mut self, from: Side, t: u8, body: &[u8], keys: &mut KeyLog) {
        match (from, t) {
            (Side::Client, 1) => self.client_hello(body),
            (Side::Server, 2) => self.server_hello(body, keys),
            (Side::Server, 8) if self.tls13 => self.encrypted_extensions(body),
            // Finished: TLS 1.3 moves this side to its application traffic keys.
            (_, 20) if self.tls13 => {
                let d = &mut self.dirs[idx(from)];
                if !d.in_app_epoch {
                    d.in_app_epoch = true;
                    d.current = d.app.take();
                }
            }
            // KeyUpdate (RFC 8446 4.6.3): the sender's next records use the next secret.
            (_, 24) if self.tls13 => self.key_update(from),
            _ => {}
        }
    }

    fn client_hello(&mut self, body: &[u8]) {
        let Ok((_, ch)) = parse_tls_handshake_client_hello(body) else {
            self.problem(
                ProblemCode::TlsMalformed,
                Some(Side::Client),
                "the ClientHello could not be parsed".into(),
            );
            return;
        };
        if let Ok(r) = <[u8; 32]>::try_from(ch.random) {
            if self.client_random.is_none() {
                self.client_random = Some(r);
                self.info.client_random = Some(keylog::hex(&r));
            }
        }
        self.info.version.get_or_insert_with(|| version_name(ch.version.0));
        let exts = ch.ext.and_then(|e| parse_tls_client_hello_extensions(e).ok()).map(|(_, v)| v);
        for ext in exts.unwrap_or_default() {
            match ext {
                TlsExtension::SNI(names) => {
                    if let Some((_, name)) = names.iter().find(|(t, _)| *t == SNIType::HostName) {
                        self.info.sni = Some(String::from_utf8_lossy(name).into_owned());
                    }
                }
                TlsExtension::ALPN(protos) => {
                    self.info.alpn_offered =
                        protos.iter().map(|p| String::from_utf8_lossy(p).into_owned()).collect();
                }
                _ => {}
            }
        }
    }

    fn server_hello(&mut self, body: &[u8], keys: &mut KeyLog) {
        let Ok((_, sh)) = parse_tls_handshake_server_hello(body) else {
            self.problem(
                ProblemCode::TlsMalformed,
                Some(Side::Server),
                "the ServerHello could not be parsed".into(),
            );
            return;
        };
        if sh.random == HRR_RANDOM {
            // HelloRetryRequest: a second ClientHello and the real ServerHello follow.
            return;
        }
        let mut version = sh.version.0;
        let exts = sh.ext.and_then(|e| parse_tls_server_hello_extensions(e).ok()).map(|(_, v)| v);
        for ext in exts.unwrap_or_default() {
            match ext {
                TlsExtension::SupportedVersions(v) => {
                    if let Some(v) = v.first() {
                        version = v.0;
                    }
                }
                TlsExtension::ALPN(protos) => {
                    self.info.alpn =
                        protos.first().map(|p| String::from_utf8_lossy(p).into_owned());
                }
                // encrypt_then_mac is extension 22 (RFC 7366); tls-parser 0.12 takes 21
                // (padding) for it and leaves 22 unknown.
                TlsExtension::Unknown(t, _) if t.0 == 22 => self.encrypt_then_mac = true,
                _ => {}
            }
        }
        self.server_hello_seen = true;
        self.server_random = <[u8; 32]>::try_from(sh.random).ok();
        self.tls13 = version == 0x0304;
        self.info.version = Some(version_name(version));
        let id = sh.cipher.0;
        self.info.cipher_suite_id = Some(id);
        self.info.cipher_suite = Some(
            tls_parser::TlsCipherSuite::from_id(id)
                .map_or_else(|| format!("0x{id:04x}"), |s| s.name.to_string()),
        );
        if self.tls13 {
            // Everything after the ServerHello is protected, in both directions.
            self.dirs[0].encrypted = true;
            self.dirs[1].encrypted = true;
        }
        self.try_keys(keys, false);
        // Reported once the segment is done: in TLS 1.3 the selected ALPN comes in the
        // EncryptedExtensions that usually share it.
        self.handshake_pending = true;
    }

    /// RFC 8446 4.3.1: TLS 1.3 sends the selected ALPN in EncryptedExtensions.
    fn encrypted_extensions(&mut self, body: &[u8]) {
        let Some(exts) = body.get(2..) else { return };
        let Ok((_, exts)) = tls_parser::parse_tls_extensions(exts) else { return };
        for ext in exts {
            if let TlsExtension::ALPN(protos) = ext {
                self.info.alpn = protos.first().map(|p| String::from_utf8_lossy(p).into_owned());
            }
        }
    }

    /// Looks the secrets up and installs them. In a live capture, secrets that are not all
    /// logged yet are waited for (until `last_chance`): protected records are held, and
    /// replayed in arrival order once they are.
    fn try_keys(&mut self, keys: &mut KeyLog, last_chance: bool) {
        let random = self.client_random.unwrap_or_default();
        let secrets = if self.awaiting { keys.find_fresh(&random) } else { keys.find(&random) };
        let secrets = secrets.cloned();
        let complete = secrets.as_ref().is_some_and(|s| {
            if self.tls13 {
                s.client_handshake.is_some()
                    && s.server_handshake.is_some()
                    && s.client_traffic0.is_some()
                    && s.server_traffic0.is_some()
            } else {
                s.master.is_some()
            }
        });
        if !complete && !last_chance && keys.may_grow() && self.client_random.is_some() {
            self.awaiting = true;
            return;
        }
        self.awaiting = false;
        self.setup_keys(secrets, keys.is_empty());
        let waiting = std::mem::take(&mut self.waiting);
        self.waiting_bytes = 0;
        for (from, header, body) in waiting {
            if !self.dirs[idx(from)].dead {
                self.record(from, header, &body, keys);
            }
        }
    }

    fn setup_keys(&mut self, secrets: Option<Secrets>, no_keylog: bool) {
        let id = self.info.cipher_suite_id.unwrap_or(0);
        let random = self.client_random.unwrap_or_default();
        let Some(secrets) = secrets else {
            if self.not_http1() {
                // Not WebSocket whatever it says; missing secrets are no problem here.
                self.opaque();
                return;
            }
            let detail = match &self.info.client_random {
                Some(r) if no_keylog => format!(
                    "no TLS key log given (--keylog, SSLKEYLOGFILE or pcapng secrets); client \
                     random {r}; records are not decrypted"
                ),
                Some(r) => {
                    format!("no key log entry for client random {r}; records are not decrypted")
                }
                None => "no ClientHello was seen, so no key can be looked up".into(),
            };
            self.problem(ProblemCode::TlsNoKey, None, detail);
            self.opaque();
            return;
        };
        let tls12 = self.info.version.as_deref() == Some("TLS 1.2");
        let Some(suite) = crypto::suite(id).filter(|s| s.tls13 == self.tls13 && (s.tls13 || tls12))
        else {
            let name = self.info.cipher_suite.clone().unwrap_or_default();
            let version = self.info.version.clone().unwrap_or_default();
            self.problem(
                ProblemCode::TlsUnsupportedCipher,
                None,
                format!(
                    "{version} with {name} ({id:#06x}) is not decrypted (TLS 1.2 and 1.3 with \
                     AES-GCM, ChaCha20-Poly1305 or, in TLS 1.2, AES-CBC)"
                ),
            );
            self.opaque();
            return;
        };
        self.suite = Some(suite);
        let missing = |what: &str| format!("the key log has no {what} for this connection");
        if self.tls13 {
            let pairs = [
                (&secrets.client_handshake, &secrets.client_traffic0, 0usize),
                (&secrets.server_handshake, &secrets.server_traffic0, 1usize),
            ];
            for (hs, app, i) in pairs {
                let d = &mut self.dirs[i];
                d.current = hs
                    .as_deref()
                    .and_then(|s| crypto::tls13_keys(suite, s))
                    .and_then(|k| Decryptor::new(suite, &k, false));
                d.app = app
                    .as_deref()
                    .and_then(|s| crypto::tls13_keys(suite, s))
                    .and_then(|k| Decryptor::new(suite, &k, false));
                d.app_secret = app.clone();
            }
            self.info.keys_found = true;
            if secrets.client_traffic0.is_none() || secrets.server_traffic0.is_none() {
                self.problem(
                    ProblemCode::TlsNoKey,
                    None,
                    missing("CLIENT_TRAFFIC_SECRET_0 / SERVER_TRAFFIC_SECRET_0"),
                );
                self.opaque();
            }
        } else {
            let (Some(master), Some(sr)) = (secrets.master.as_deref(), self.server_random) else {
                self.problem(ProblemCode::TlsNoKey, None, missing("CLIENT_RANDOM master secret"));
                self.opaque();
                return;
            };
            self.info.keys_found = true;
            if let Some((c, s)) = crypto::tls12_keys(suite, master, &random, &sr) {
                for (i, k) in [(0, c), (1, s)] {
                    let dec = Decryptor::new(suite, &k, self.encrypt_then_mac);
                    let d = &mut self.dirs[i];
                    // A side whose ChangeCipherSpec went by while the secret was awaited.
                    if d.encrypted {
                        d.current = dec;
                    } else {
                        d.pending = dec;
                    }
                }
            }
        }
    }

    fn key_update(&mut self, from: Side) {
        let Some(suite) = self.suite else { return };
        let d = &mut self.dirs[idx(from)];
        let Some(secret) = d.app_secret.as_deref() else { return };
        let Some(next) = crypto::tls13_next_secret(suite, secret) else { return };
        d.current = crypto::tls13_keys(suite, &next).and_then(|k| Decryptor::new(suite, &k, false));
        d.app_secret = Some(next);
        d.in_app_epoch = true;
    }
}

fn version_name(v: u16) -> String {
    match v {
        0x0300 => "SSL 3.0".into(),
        0x0301 => "TLS 1.0".into(),
        0x0302 => "TLS 1.1".into(),
        0x0303 => "TLS 1.2".into(),
        0x0304 => "TLS 1.3".into(),
        v => format!("0x{v:04x}"),
    }
}

#[cfg(test)]
mod tests {
    use super::crypto::{seal13, tls13_keys, tls13_next_secret};
    use super::*;

    const CR: [u8; 32] = [0x11; 32];
    const SR: [u8; 32] = [0x22; 32];

    fn record(ctype: u8, body: &[u8]) -> Vec<u8> {
        let mut r = vec![ctype, 3, 3];
        r.extend_from_slice(&(body.len() as u16).to_be_bytes());
        r.extend_from_slice(body);
        r
    }

    fn hs(t: u8, body: &[u8]) -> Vec<u8> {
        let n = body.len() as u32;
        let mut m = vec![t, (n >> 16) as u8, (n >> 8) as u8, n as u8];
        m.extend_from_slice(body);
        m
    }

    fn ext(t: u16, body: &[u8]) -> Vec<u8> {
        let mut e = t.to_be_bytes().to_vec();
        e.extend_from_slice(&(body.len() as u16).to_be_bytes());
        e.extend_from_slice(body);
        e
    }

    fn alpn(protos: &[&str]) -> Vec<u8> {
        let mut list = Vec::new();
        for p in protos {
            list.push(p.len() as u8);
            list.extend_from_slice(p.as_bytes());
        }
        let mut body = (list.len() as u16).to_be_bytes().to_vec();
        body.extend(list);
        ext(16, &body)
    }

    fn client_hello() -> Vec<u8> {
        client_hello_alpn(&["http/1.1"])
    }

    fn client_hello_alpn(protos: &[&str]) -> Vec<u8> {
        let mut b = vec![3, 3];
        b.extend_from_slice(&CR);
        b.push(0); // session id
        b.extend_from_slice(&[0, 2, 0x13, 0x01]); // TLS_AES_128_GCM_SHA256
        b.extend_from_slice(&[1, 0]); // null compression
        let name = b"chat.example";
        let mut sni = ((name.len() + 3) as u16).to_be_bytes().to_vec();
        sni.push(0);
        sni.extend_from_slice(&(name.len() as u16).to_be_bytes());
        sni.extend_from_slice(name);
        let mut exts = ext(0, &sni);
        exts.extend(alpn(protos));
        exts.extend(ext(43, &[2, 3, 4]));
        b.extend_from_slice(&(exts.len() as u16).to_be_bytes());
        b.extend(exts);
        record(22, &hs(1, &b))
    }

    fn server_hello() -> Vec<u8> {
        let mut b = vec![3, 3];
        b.extend_from_slice(&SR);
        b.push(0);
        b.extend_from_slice(&[0x13, 0x01, 0]);
        let exts = ext(43, &[3, 4]);
        b.extend_from_slice(&(exts.len() as u16).to_be_bytes());
        b.extend(exts);
        record(22, &hs(2, &b))
    }

    struct Peer {
        keys: crypto::Keys,
        seq: u64,
    }

    impl Peer {
        fn new(secret: &[u8]) -> Peer {
            Peer { keys: tls13_keys(suite(), secret).unwrap(), seq: 0 }
        }
        fn seal(&mut self, content: &[u8], inner_type: u8) -> Vec<u8> {
            let mut inner = content.to_vec();
            inner.push(inner_type);
            inner.extend_from_slice(&[0, 0, 0]); // padding
            let r = seal13(suite(), &self.keys, self.seq, &inner);
            self.seq += 1;
            r
        }
    }

    fn suite() -> Suite {
        crypto::suite(0x1301).unwrap()
    }

    fn keylog(secrets: &[(&str, &[u8])]) -> KeyLog {
        let mut log = KeyLog::default();
        for (label, s) in secrets {
            let line = format!("{label} {} {}\n", keylog::hex(&CR), keylog::hex(s));
            log.add_text(line.as_bytes());
        }
        log
    }

    /// A TLS 1.3 conversation: (sender, bytes) in order, and the application data each side
    /// sent.
    type Flights = Vec<(Side, Vec<u8>)>;

    fn conversation() -> (Flights, Vec<u8>, Vec<u8>) {
        let (chs, shs, cap, sap) = ([1u8; 32], [2u8; 32], [3u8; 32], [4u8; 32]);
        let mut s_hs = Peer::new(&shs);
        let mut c_hs = Peer::new(&chs);
        let mut s_app = Peer::new(&sap);
        let mut c_app = Peer::new(&cap);
        let mut flight = Vec::new();
        flight.push((Side::Client, client_hello()));
        let mut server = server_hello();
        server.extend(record(20, &[1])); // middlebox-compatibility ChangeCipherSpec
        let mut ee = hs(8, &{
            let a = alpn(&["http/1.1"]);
            let mut b = (a.len() as u16).to_be_bytes().to_vec();
            b.extend(a);
            b
        });
        ee.extend(hs(11, &[0; 300])); // a "certificate"
        server.extend(s_hs.seal(&ee, 22));
        server.extend(s_hs.seal(&hs(20, &[9; 32]), 22));
        flight.push((Side::Server, server));
        let mut client = record(20, &[1]);
        client.extend(c_hs.seal(&hs(20, &[8; 32]), 22));
        let c_data = b"GET /chat HTTP/1.1\r\nHost: chat.example\r\n\r\n".to_vec();
        client.extend(c_app.seal(&c_data[..10], 23));
        client.extend(c_app.seal(&c_data[10..], 23));
        flight.push((Side::Client, client));
        // Server: a session ticket, data, a KeyUpdate, and data under the next key.
        let mut s_data = b"HTTP/1.1 101 Switching Protocols\r\n\r\n".to_vec();
        let mut server = s_app.seal(&hs(4, &[0; 20]), 22);
        server.extend(s_app.seal(&s_data, 23));
        server.extend(s_app.seal(&hs(24, &[0]), 22));
        let next = tls13_next_secret(suite(), &sap).unwrap();
        let mut s_app2 = Peer::new(&next);
        server.extend(s_app2.seal(b"\x81\x02hi", 23));
        s_data.extend_from_slice(b"\x81\x02hi");
        flight.push((Side::Server, server));
        (flight, c_data, s_data)
    }

    fn full_keylog() -> KeyLog {
        keylog(&[
            ("CLIENT_HANDSHAKE_TRAFFIC_SECRET", &[1; 32]),
            ("SERVER_HANDSHAKE_TRAFFIC_SECRET", &[2; 32]),
            ("CLIENT_TRAFFIC_SECRET_0", &[3; 32]),
            ("SERVER_TRAFFIC_SECRET_0", &[4; 32]),
        ])
    }

    /// Feeds the flights cut into pieces at `cuts` (offsets into each flight).
    fn run(
        flights: &[(Side, Vec<u8>)],
        keys: &mut KeyLog,
        cut: impl Fn(usize) -> Vec<usize>,
    ) -> (TlsConn, Vec<TlsOut>) {
        let mut conn = TlsConn::default();
        let mut outs = Vec::new();
        let mut offsets = [0u64; 2];
        for (from, bytes) in flights {
            let mut points = cut(bytes.len());
            points.retain(|&p| p > 0 && p < bytes.len());
            points.sort_unstable();
            points.dedup();
            points.push(bytes.len());
            let mut at = 0;
            for p in points {
                let data = &bytes[at..p];
                let ev = TcpEvent::Data { from: *from, offset: offsets[idx(*from)], data };
                offsets[idx(*from)] += data.len() as u64;
                assert_eq!(conn.on_tcp(&ev, true, keys), Step::Consumed);
                outs.extend(conn.take_outputs());
                at = p;
            }
        }
        assert_eq!(
            conn.on_tcp(&TcpEvent::Closed { reason: crate::tcp::CloseReason::Fin }, true, keys),
            Step::Pass
        );
        outs.extend(conn.take_outputs());
        (conn, outs)
    }

    fn data_of(outs: &[TlsOut], side: Side) -> Vec<u8> {
        let mut v = Vec::new();
        for o in outs {
            if let TlsOut::Data { from, offset, bytes } = o {
                if *from == side {
                    assert_eq!(*offset, v.len() as u64);
                    v.extend_from_slice(bytes);
                }
            }
        }
        v
    }

    #[test]
    fn tls13_conversation_decrypts_however_it_is_segmented() {
        let (flights, c_data, s_data) = conversation();
        // Whole flights (several records per segment), every single split point (records
        // spanning segments), and one byte at a time.
        let mut cuts: Vec<Box<dyn Fn(usize) -> Vec<usize>>> = vec![Box::new(|_| vec![])];
        for k in [1usize, 2, 3, 4, 5, 6, 7, 100, 333] {
            cuts.push(Box::new(move |n| (k..n).step_by(k).collect()));
        }
        let max = flights.iter().map(|(_, b)| b.len()).max().unwrap();
        for p in (0..max).step_by(7) {
            cuts.push(Box::new(move |_| vec![p]));
        }
        for cut in cuts {
            let mut keys = full_keylog();
            let (conn, outs) = run(&flights, &mut keys, cut);
            assert_eq!(data_of(&outs, Side::Client), c_data);
            assert_eq!(data_of(&outs, Side::Server), s_data);
            let info = conn.info().unwrap();
            assert_eq!(info.version.as_deref(), Some("TLS 1.3"));
            assert_eq!(info.cipher_suite.as_deref(), Some("TLS_AES_128_GCM_SHA256"));
            assert_eq!(info.sni.as_deref(), Some("chat.example"));
            assert_eq!(info.alpn_offered, ["http/1.1"]);
            assert_eq!(info.alpn.as_deref(), Some("http/1.1"));
            assert!(info.keys_found && info.decrypted);
            assert_eq!(info.undecrypted_records, 0);
            assert!(info.problems.is_empty(), "{:?}", info.problems);
            assert_eq!(outs.iter().filter(|o| **o == TlsOut::Handshake).count(), 1);
        }
    }

    #[test]
    fn without_handshake_secrets_the_application_epoch_is_found_by_trial() {
        let (flights, c_data, s_data) = conversation();
        let mut keys =
            keylog(&[("CLIENT_TRAFFIC_SECRET_0", &[3; 32]), ("SERVER_TRAFFIC_SECRET_0", &[4; 32])]);
        let (conn, outs) = run(&flights, &mut keys, |_| vec![]);
        assert_eq!(data_of(&outs, Side::Client), c_data);
        assert_eq!(data_of(&outs, Side::Server), s_data);
        assert!(conn.info().unwrap().problems.is_empty());
    }

    #[test]
    fn no_key_and_wrong_key_are_problems() {
        let (flights, _, _) = conversation();
        let (conn, outs) = run(&flights, &mut KeyLog::default(), |_| vec![]);
        assert_eq!(conn.info().unwrap().problems, [ProblemCode::TlsNoKey]);
        assert_eq!(data_of(&outs, Side::Client), b"");
        assert!(outs.contains(&TlsOut::Opaque));
        assert_eq!(conn.info().unwrap().undecrypted_records, 9);

        let mut wrong = keylog(&[
            ("CLIENT_HANDSHAKE_TRAFFIC_SECRET", &[5; 32]),
            ("SERVER_HANDSHAKE_TRAFFIC_SECRET", &[6; 32]),
            ("CLIENT_TRAFFIC_SECRET_0", &[7; 32]),
            ("SERVER_TRAFFIC_SECRET_0", &[8; 32]),
        ]);
        let (conn, outs) = run(&flights, &mut wrong, |_| vec![]);
        assert_eq!(conn.info().unwrap().problems, [ProblemCode::TlsDecryptFailed]);
        let failures = outs
            .iter()
            .filter(|o| matches!(o, TlsOut::Problem { code: ProblemCode::TlsDecryptFailed, .. }))
            .count();
        assert_eq!(failures, 2);
        assert_eq!(data_of(&outs, Side::Server), b"");
    }

    /// Live capture: secrets logged after the records they protect went by are waited for,
    /// and the held records replayed.
    #[test]
    fn live_secrets_logged_late_are_waited_for() {
        let (flights, c_data, s_data) = conversation();
        let dir = std::env::temp_dir().join(format!("wsdissect-tls-live-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("keys.txt");
        let line =
            |label: &str, s: &[u8]| format!("{label} {} {}\n", keylog::hex(&CR), keylog::hex(s));
        std::fs::write(&path, line("SERVER_HANDSHAKE_TRAFFIC_SECRET", &[2; 32])).unwrap();
        let mut keys = KeyLog::open(&path).unwrap();
        keys.set_live(true);
        let mut conn = TlsConn::default();
        let mut outs = Vec::new();
        for (n, (from, bytes)) in flights.iter().enumerate() {
            if n == 3 {
                let mut all = line("SERVER_HANDSHAKE_TRAFFIC_SECRET", &[2; 32]);
                all.push_str(&line("CLIENT_HANDSHAKE_TRAFFIC_SECRET", &[1; 32]));
                all.push_str(&line("CLIENT_TRAFFIC_SECRET_0", &[3; 32]));
                all.push_str(&line("SERVER_TRAFFIC_SECRET_0", &[4; 32]));
                std::fs::write(&path, all).unwrap();
            }
            let ev = TcpEvent::Data { from: *from, offset: 0, data: bytes };
            conn.on_tcp(&ev, true, &mut keys);
            outs.extend(conn.take_outputs());
            if n < 3 {
                assert!(data_of(&outs, Side::Client).is_empty());
            }
        }
        assert_eq!(data_of(&outs, Side::Client), c_data);
        assert_eq!(data_of(&outs, Side::Server), s_data);
        assert!(conn.info().unwrap().problems.is_empty());
        assert_eq!(outs.iter().filter(|o| **o == TlsOut::Handshake).count(), 1);

        // Never logged: no key, said when the connection ends.
        std::fs::write(&path, "").unwrap();
        let mut keys = KeyLog::open(&path).unwrap();
        keys.set_live(true);
        let (conn, outs) = run(&flights, &mut keys, |_| vec![]);
        assert_eq!(conn.info().unwrap().problems, [ProblemCode::TlsNoKey]);
        assert!(data_of(&outs, Side::Server).is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A client that offers only h2 cannot be upgrading to WebSocket over HTTP/1.1: its
    /// connection is not listed and a missing key is no problem.
    #[test]
    fn alpn_without_http1_is_not_websocket() {
        let (mut flights, _, _) = conversation();
        flights[0].1 = client_hello_alpn(&["h2"]);
        let (conn, outs) = run(&flights, &mut KeyLog::default(), |_| vec![]);
        assert!(conn.info().unwrap().problems.is_empty());
        assert!(outs.contains(&TlsOut::NotHttp1));
        assert!(!outs.contains(&TlsOut::Opaque));
    }

    /// h2 selected for a client that offered HTTP/1.1 too (a browser) may carry WebSockets
    /// over HTTP/2; for one that offered h2 alone (gRPC), or another protocol, it is not.
    #[test]
    fn alpn_rules_websocket_out_only_when_neither_http_version_can_carry_it() {
        let with = |offered: &[&str], selected: Option<&str>| {
            let mut conn = TlsConn::default();
            conn.info.alpn_offered = offered.iter().map(|p| p.to_string()).collect();
            conn.info.alpn = selected.map(str::to_owned);
            conn.not_http1()
        };
        assert!(!with(&["h2", "http/1.1"], Some("h2")));
        assert!(!with(&["h2", "http/1.1"], Some("http/1.1")));
        assert!(!with(&["h2", "http/1.1"], None));
        assert!(!with(&[], None));
        assert!(with(&["h2"], Some("h2")));
        assert!(with(&["h2"], None));
        assert!(with(&["h2", "http/1.1"], Some("spdy/3.1")));
    }

    /// Feeds the flights, the last one (the server's protected records) as `last` makes it:
    /// the events to send in its place.
    fn with_last_flight(
        last: impl for<'a> Fn(&'a [u8]) -> Vec<TcpEvent<'a>>,
    ) -> (TlsConn, Vec<TlsOut>, Vec<u8>, Vec<u8>) {
        let (flights, c_data, s_data) = conversation();
        let mut keys = full_keylog();
        let mut conn = TlsConn::default();
        let mut outs = Vec::new();
        for (i, (from, bytes)) in flights.iter().enumerate() {
            let events = if i == 3 {
                last(bytes)
            } else {
                vec![TcpEvent::Data { from: *from, offset: 0, data: bytes }]
            };
            for ev in &events {
                conn.on_tcp(ev, true, &mut keys);
            }
            outs.extend(conn.take_outputs());
        }
        conn.on_tcp(&TcpEvent::Closed { reason: crate::tcp::CloseReason::Fin }, true, &mut keys);
        outs.extend(conn.take_outputs());
        (conn, outs, c_data, s_data)
    }

    /// The events that stand for the server's last flight.
    type LastFlight = for<'a> fn(&'a [u8]) -> Vec<TcpEvent<'a>>;

    fn server_gap(len: u64) -> TcpEvent<'static> {
        TcpEvent::Gap {
            from: Side::Server,
            offset: 0,
            len,
            reason: crate::tcp::GapReason::AckedUnseen,
        }
    }

    fn server_data(bytes: &[u8]) -> TcpEvent<'_> {
        TcpEvent::Data { from: Side::Server, offset: 0, data: bytes }
    }

    /// Bytes that hold no record header: never a resync.
    static NO_RECORDS: [u8; RESYNC_MAX_SKIP + 64] = [0x17; RESYNC_MAX_SKIP + 64];

    #[test]
    fn decryption_resumes_at_the_first_whole_record_after_a_gap() {
        // The server's flight: a session ticket record, its data, a KeyUpdate, data under
        // the next key. The gap cuts into the ticket; the rest comes in small pieces.
        let (conn, outs, c_data, s_data) = with_last_flight(|bytes| {
            let mut evs = vec![server_gap(10)];
            evs.extend(bytes[10..].chunks(7).map(server_data));
            evs
        });
        assert_eq!(data_of(&outs, Side::Client), c_data);
        assert_eq!(data_of(&outs, Side::Server), s_data);
        assert!(conn.info().unwrap().problems.is_empty());
        // The ticket's end, passed over, is the one record not decrypted.
        assert_eq!(conn.info().unwrap().undecrypted_records, 1);
        // A gap of exactly the ticket and the data record: the KeyUpdate after it opens under
        // a sequence number two further on, and the record under the next key after that.
        let (conn, outs, _, s_data) = with_last_flight(|bytes| {
            let lost = two_records(bytes);
            vec![server_gap(lost as u64), server_data(&bytes[lost..])]
        });
        assert_eq!(data_of(&outs, Side::Server), s_data[s_data.len() - 4..]);
        assert!(conn.info().unwrap().problems.is_empty());
        assert_eq!(conn.info().unwrap().undecrypted_records, 0);
    }

    /// The length of the first two records of `bytes`.
    fn two_records(bytes: &[u8]) -> usize {
        let first = 5 + usize::from(u16::from_be_bytes([bytes[3], bytes[4]]));
        first + 5 + usize::from(u16::from_be_bytes([bytes[first + 3], bytes[first + 4]]))
    }

    #[test]
    fn a_gap_no_record_opens_after_is_a_problem_of_that_direction_only() {
        // What follows the gap never opens: given up once more than two records' worth of
        // bytes went by.
        let (conn, outs, c_data, _) =
            with_last_flight(|_| vec![server_gap(10), server_data(&NO_RECORDS)]);
        assert_eq!(data_of(&outs, Side::Client), c_data);
        assert_eq!(data_of(&outs, Side::Server), b"");
        assert_eq!(conn.info().unwrap().problems, [ProblemCode::TlsDecryptFailed]);
        // The stream ends before a record opens: only part of the ticket follows the gap; or
        // the gap cut into the KeyUpdate, so the record after it is under a key never learnt.
        let cases: [LastFlight; 2] = [
            |bytes| vec![server_gap(10), server_data(&bytes[10..20])],
            |bytes| {
                let lost = two_records(bytes) + 3;
                vec![server_gap(lost as u64), server_data(&bytes[lost..])]
            },
        ];
        for case in cases {
            let (conn, outs, _, _) = with_last_flight(case);
            assert_eq!(data_of(&outs, Side::Server), b"");
            assert_eq!(conn.info().unwrap().problems, [ProblemCode::TlsDecryptFailed]);
        }
        // A gap that ends the stream loses nothing more: no TLS problem (the session reports
        // the gap).
        let (conn, _, _, _) = with_last_flight(|bytes| vec![server_gap(bytes.len() as u64)]);
        assert!(conn.info().unwrap().problems.is_empty());
    }

    #[test]
    fn garbage_after_a_client_hello_is_malformed_not_a_panic() {
        let mut keys = KeyLog::default();
        let mut conn = TlsConn::default();
        let mut bytes = client_hello();
        bytes.extend_from_slice(b"\x99\x99\x99\x99\x99 not TLS");
        let ev = TcpEvent::Data { from: Side::Client, offset: 0, data: &bytes };
        assert_eq!(conn.on_tcp(&ev, true, &mut keys), Step::Consumed);
        assert_eq!(conn.info().unwrap().problems, [ProblemCode::TlsMalformed]);
        // Any prefix of any corruption: no panic.
        for n in 0..bytes.len() {
            for flip in [0x01u8, 0x80, 0xff] {
                let mut b = bytes[..n].to_vec();
                if let Some(x) = b.get_mut(n / 2) {
                    *x ^= flip;
                }
                let mut conn = TlsConn::default();
                conn.on_tcp(
                    &TcpEvent::Data { from: Side::Client, offset: 0, data: &b },
                    true,
                    &mut keys,
                );
                let sh = server_hello();
                conn.on_tcp(
                    &TcpEvent::Data { from: Side::Server, offset: 0, data: &sh },
                    true,
                    &mut keys,
                );
            }
        }
    }

    #[test]
    fn plain_http_and_server_first_protocols_pass_through() {
        let mut keys = KeyLog::default();
        let mut conn = TlsConn::default();
        let ev = TcpEvent::Data { from: Side::Client, offset: 0, data: b"GET / HTTP/1.1\r\n" };
        assert_eq!(conn.on_tcp(&ev, true, &mut keys), Step::Pass);
        assert!(!conn.is_tls());
        let hello = client_hello();
        let ev = TcpEvent::Data { from: Side::Client, offset: 16, data: &hello };
        assert_eq!(conn.on_tcp(&ev, true, &mut keys), Step::Pass);
        let mut conn = TlsConn::default();
        let ev = TcpEvent::Data { from: Side::Server, offset: 0, data: &hello };
        assert_eq!(conn.on_tcp(&ev, true, &mut keys), Step::Pass);
        assert!(!conn.is_tls());
        // Without a SYN the TCP stage only guessed the roles: the ClientHello decides.
        let mut conn = TlsConn::default();
        assert_eq!(conn.on_tcp(&ev, false, &mut keys), Step::ConsumedSwapRoles);
        assert_eq!(conn.info().unwrap().sni.as_deref(), Some("chat.example"));
    }

    proptest::proptest! {
        /// Whatever follows a ClientHello, in whatever pieces, from either side: no panic,
        /// and buffered bytes stay within one record.
        #[test]
        fn arbitrary_streams_never_panic(
            noise in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..3000),
            cuts in proptest::collection::vec(0usize..3000, 0..8),
            server_first in proptest::prelude::any::<bool>(),
        ) {
            let mut keys = full_keylog();
            let (flights, _, _) = conversation();
            let mut conn = TlsConn::default();
            let mut feed = |from: Side, bytes: &[u8], conn: &mut TlsConn| {
                let mut at = 0;
                let mut points: Vec<usize> =
                    cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
                points.sort_unstable();
                points.push(bytes.len());
                for p in points {
                    if p < at {
                        continue;
                    }
                    let ev = TcpEvent::Data { from, offset: 0, data: &bytes[at..p] };
                    conn.on_tcp(&ev, true, &mut keys);
                    conn.take_outputs();
                    at = p;
                    for d in &conn.dirs {
                        proptest::prop_assert!(d.buf.len() <= MAX_RECORD + 5 + bytes.len());
                    }
                }
                Ok(())
            };
            feed(Side::Client, &flights[0].1, &mut conn)?;
            if server_first {
                feed(Side::Server, &noise, &mut conn)?;
            } else {
                feed(Side::Server, &flights[1].1, &mut conn)?;
                feed(Side::Client, &noise, &mut conn)?;
                feed(Side::Server, &noise, &mut conn)?;
            }
            conn.on_tcp(&TcpEvent::Closed { reason: crate::tcp::CloseReason::Fin }, true, &mut keys);
        }
    }
}
