//! STOMP 1.0–1.2 frames over WebSocket (`Sec-WebSocket-Protocol: v12.stomp`, `v11.stomp`,
//! `v10.stomp` or `stomp`): a command line, `name:value` header lines, a blank line and a
//! body ended by NUL. A message holding only line ends is a heart-beat.

use super::{
    hold_rest, preview, set_payload, set_units, App, AppDecoder, AppMessage, Decoded, Hints,
    Registration,
};
use serde_json::{Map, Value};

pub const REGISTRATION: Registration = Registration {
    name: "stomp",
    by_handshake: |h: &Hints<'_>| {
        h.protocol.is_some_and(|p| {
            let p = p.to_ascii_lowercase();
            p == "stomp" || (p.starts_with('v') && p.ends_with(".stomp"))
        })
    },
    by_content: |m: &AppMessage<'_>| {
        m.text
            && [&b"CONNECT\n"[..], b"STOMP\n", b"CONNECTED\n", b"CONNECT\r\n", b"STOMP\r\n"]
                .iter()
                .any(|c| m.payload.starts_with(c))
    },
    new: |h| Box::new(Stomp::new(h.max_held.max(1 << 10))),
};

/// The least size of a message that may end inside a frame.
const SPLIT_MIN: usize = 1 << 10;

const COMMANDS: [&str; 15] = [
    "CONNECT",
    "STOMP",
    "CONNECTED",
    "SEND",
    "SUBSCRIBE",
    "UNSUBSCRIBE",
    "ACK",
    "NACK",
    "BEGIN",
    "COMMIT",
    "ABORT",
    "DISCONNECT",
    "MESSAGE",
    "RECEIPT",
    "ERROR",
];

/// Frames may span messages: clients split large frames (stomp.js with `splitLargeFrames`,
/// into 8 KiB messages by default). A message of at least `SPLIT_MIN` bytes that leaves a
/// frame unfinished has it held, up to a limit, for the messages that follow to complete; in
/// a shorter message an unfinished frame is an error at once, as no client splits there. A
/// message that starts with a command line while a frame is held ends the held one as an
/// error (a frame without its NUL).
pub struct Stomp {
    held: [Vec<u8>; 2],
    max_held: usize,
}

impl Stomp {
    pub fn new(max_held: usize) -> Stomp {
        Stomp { held: Default::default(), max_held }
    }
}

/// STOMP 1.2 header escapes: `\r`, `\n`, `\c` (colon) and `\\`.
fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars();
    while let Some(c) = it.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match it.next() {
            Some('r') => out.push('\r'),
            Some('n') => out.push('\n'),
            Some('c') => out.push(':'),
            Some(o) => out.push(o),
            None => out.push('\\'),
        }
    }
    out
}

fn is_eol(b: &u8) -> bool {
    matches!(b, b'\n' | b'\r')
}

/// What the bytes at the start of a frame hold.
enum Parse {
    /// A whole frame of `len` bytes: its fields (without `protocol`) and summary.
    Frame { fields: Map<String, Value>, summary: String, len: usize },
    /// The start of a frame (its command, once known), and what the frame would be wrong
    /// for if no more came.
    NeedMore { command: Option<String>, missing: &'static str },
    /// Not a frame: why, and the command when it was read.
    Bad { why: String, command: Option<String> },
}

/// The command line at the start of `p`, when it is one (complete, and a STOMP command).
fn command_line(p: &[u8]) -> Option<&'static str> {
    let end = p.iter().position(|&b| b == b'\n')?;
    let line = p[..end].strip_suffix(b"\r").unwrap_or(&p[..end]);
    COMMANDS.iter().copied().find(|c| c.as_bytes() == line)
}

/// One frame from `p`, which starts at a byte that is not a line end.
fn parse_frame(p: &[u8]) -> Parse {
    // The first blank line, in either line-end style (a CRLF head's body may hold "\n\n").
    let head_end = match (find(p, b"\n\n"), find(p, b"\r\n\r\n")) {
        (Some(lf), Some(crlf)) if crlf < lf => Some((crlf, 4)),
        (Some(lf), _) => Some((lf, 2)),
        (None, crlf) => crlf.map(|i| (i, 4)),
    };
    let Some(head_end) = head_end else {
        // No blank line yet: more may come, if what there is begins a command line.
        let command = command_line(p);
        let begins = command.is_some()
            || (!p.contains(&b'\n') && COMMANDS.iter().any(|c| c.as_bytes().starts_with(p)));
        let missing = "a STOMP frame needs a blank line after its headers";
        return if begins {
            Parse::NeedMore { command: command.map(str::to_owned), missing }
        } else {
            Parse::Bad { why: missing.into(), command: None }
        };
    };
    let Ok(head) = std::str::from_utf8(&p[..head_end.0]) else {
        return Parse::Bad { why: "STOMP headers are not UTF-8".into(), command: None };
    };
    let mut lines = head.lines();
    let command = lines.next().unwrap_or_default().trim_end_matches('\r');
    if !COMMANDS.contains(&command) {
        return Parse::Bad { why: format!("unknown STOMP command {command:?}"), command: None };
    }
    let bad = |why: String| Parse::Bad { why, command: Some(command.to_owned()) };
    let mut headers = Map::new();
    for line in lines {
        let Some((k, v)) = line.trim_end_matches('\r').split_once(':') else {
            return bad(format!("STOMP header without a colon: {line:?}"));
        };
        // The first of repeated headers wins (STOMP 1.2, "Repeated Header Entries").
        let (k, v) = (unescape(k), unescape(v));
        headers.entry(k).or_insert(Value::from(v));
    }
    let body_at = head_end.0 + head_end.1;
    let body_all = &p[body_at..];
    let need_more = || Parse::NeedMore {
        command: Some(command.to_owned()),
        missing: "a STOMP frame must end with NUL",
    };
    // With a content-length, the body is that many octets whatever they hold, NULs
    // included (STOMP 1.2, "Value Encoding"); without one it ends at the first NUL.
    let length = headers.get("content-length").and_then(Value::as_str);
    let body = match length.map(|l| l.trim().parse::<usize>()) {
        Some(Ok(len)) => match body_all.get(len) {
            Some(0) => &body_all[..len],
            Some(_) => {
                return bad(format!("no NUL after the STOMP body's content-length of {len}"))
            }
            None => return need_more(),
        },
        Some(Err(_)) => {
            return bad(format!("STOMP content-length is not a number: {:?}", length.unwrap_or("")))
        }
        None => match body_all.iter().position(|&b| b == 0) {
            Some(nul) => &body_all[..nul],
            None => return need_more(),
        },
    };
    let mut fields = Map::new();
    fields.insert("stomp".into(), Value::from(command));
    let mut summary = format!("stomp {command}");
    for key in ["destination", "subscription", "receipt-id", "message"] {
        if let Some(v) = headers.get(key).and_then(Value::as_str) {
            summary.push_str(&format!(" {key}={v}"));
        }
    }
    if let Some(d) = headers.get("destination").cloned() {
        fields.insert("destination".into(), d);
    }
    fields.insert("headers".into(), Value::Object(headers));
    if !body.is_empty() {
        summary.push_str(&format!(" {}", preview(body, 60)));
        set_payload(&mut fields, "body", body);
    }
    Parse::Frame { fields, summary, len: body_at + body.len() + 1 }
}

impl AppDecoder for Stomp {
    fn lose(&mut self, from: crate::tcp::Side) {
        self.held[from.index()].clear();
    }

    fn protocol(&self) -> &'static str {
        "stomp"
    }

    fn decode(&mut self, m: &AppMessage<'_>) -> Decoded {
        let mut app = App::new("stomp");
        if m.payload.iter().all(is_eol) {
            // Heart-beats travel in messages of their own, also between the parts of a frame.
            app.set("stomp", "HEARTBEAT");
            app.summary = "stomp heart-beat".into();
            return Decoded::app(app);
        }
        let mut error = None;
        let side = m.from.index();
        let mut data = std::mem::take(&mut self.held[side]);
        let start = m.payload.iter().position(|b| !is_eol(b)).unwrap_or(0);
        if !data.is_empty() && command_line(&m.payload[start..]).is_some() {
            error = Some(format!(
                "a STOMP frame must end with NUL (the {} bytes held from earlier messages)",
                data.len()
            ));
            data.clear();
        }
        data.extend_from_slice(m.payload);
        let mut frames = Vec::new();
        let mut at = 0;
        // The command of a frame the message did not complete, whether it waits or failed.
        let mut unfinished = None;
        loop {
            at += data[at..].iter().take_while(|b| is_eol(b)).count();
            if at == data.len() {
                break;
            }
            match parse_frame(&data[at..]) {
                Parse::Frame { fields, summary, len } => {
                    frames.push((fields, summary));
                    at += len;
                }
                Parse::NeedMore { command, missing } => {
                    unfinished = command;
                    // No client splits a frame over short messages: nothing more will come.
                    if m.payload.len() < SPLIT_MIN {
                        error = Some(missing.to_owned());
                        at = data.len();
                    }
                    break;
                }
                Parse::Bad { why, command } => {
                    unfinished = command;
                    error = Some(why);
                    at = data.len();
                    break;
                }
            }
        }
        if !hold_rest(&mut data, at, self.max_held) {
            error = Some(format!("a STOMP frame longer than {} bytes was dropped", self.max_held));
        }
        let held = data.len();
        self.held[side] = data;
        let mut it = frames.into_iter();
        if let Some(first) = it.next() {
            set_units(&mut app, first, it);
        } else {
            if let Some(c) = &unfinished {
                app.set("stomp", c.as_str());
            }
            if held > 0 {
                app.set("partial", true);
                let name = unfinished.as_deref().unwrap_or("frame");
                app.summary = format!("stomp {name} (part of a frame, {held} bytes held)");
            }
        }
        Decoded { app: Some(app), error }
    }
}

fn find(h: &[u8], n: &[u8]) -> Option<usize> {
    memchr::memmem::find(h, n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tcp::Side;

    fn msg(from: Side, p: &[u8]) -> AppMessage<'_> {
        AppMessage { from, text: true, payload: p, first_packet: 1 }
    }

    fn dec(p: &[u8]) -> Decoded {
        Stomp::new(1 << 16).decode(&msg(Side::Client, p))
    }

    #[test]
    fn frames_heartbeats_and_errors() {
        let d = dec(b"SEND\ndestination:/queue/a\ncontent-type:text/plain\n\nhello\0");
        let a = d.app.unwrap();
        assert_eq!(a.fields["stomp"], "SEND");
        assert_eq!(a.fields["destination"], "/queue/a");
        assert_eq!(a.fields["body"], "hello");
        assert_eq!(a.fields["headers"]["content-type"], "text/plain");
        let keys: Vec<&str> = a.fields.keys().map(String::as_str).collect();
        assert_eq!(keys, ["protocol", "stomp", "destination", "headers", "body"]);
        assert_eq!(dec(b"\n").app.unwrap().fields["stomp"], "HEARTBEAT");
        assert_eq!(
            dec(b"CONNECTED\r\nversion:1.2\r\n\r\n\0").app.unwrap().fields["headers"]["version"],
            "1.2"
        );
        assert_eq!(dec(b"MESSAGE\nx:a\\cb\n\n\0").app.unwrap().fields["headers"]["x"], "a:b");
        let crlf = dec(b"SEND\r\ndestination:/q\r\n\r\nline\n\nline\0").app.unwrap();
        assert_eq!(crlf.fields["destination"], "/q");
        assert_eq!(crlf.fields["body"], "line\n\nline");
        assert!(dec(b"HELLO\n\n\0").error.is_some());
        assert!(dec(b"SEND\nbad header\n\n\0").error.is_some());
        assert!(dec(b"not stomp at all").error.is_some());
        // A short message is not a part of a split frame: what it leaves unfinished is wrong.
        let d = dec(b"SEND\ndestination:/q\n\nno nul");
        assert!(d.error.unwrap().contains("must end with NUL"));
        assert_eq!(d.app.unwrap().fields["stomp"], "SEND");
        assert!(dec(b"SEND").error.unwrap().contains("blank line"));
    }

    #[test]
    fn content_length_bodies_may_hold_nul() {
        let d = dec(b"MESSAGE\ncontent-length:5\ndestination:/q\n\na\0b\0c\0\n");
        let a = d.app.unwrap();
        assert!(d.error.is_none());
        assert_eq!(a.fields["destination"], "/q");
        assert_eq!(a.fields["body"], "a\0b\0c");
        let unended = dec(b"SEND\ncontent-length:2\n\nabc\0");
        assert!(unended.error.unwrap().contains("no NUL after"));
        let bad = dec(b"SEND\ncontent-length:x\n\nabc\0");
        assert!(bad.error.unwrap().contains("not a number"));
        let empty = dec(b"SEND\ncontent-length:0\ndestination:/q\n\n\0");
        assert!(empty.error.is_none());
        assert!(empty.app.unwrap().fields.get("body").is_none());
    }

    /// A SEND frame whose body is `len` bytes with a NUL in the middle, and a content-length.
    fn big_frame(len: usize) -> Vec<u8> {
        let mut f = format!("SEND\ndestination:/q\ncontent-length:{len}\n\n").into_bytes();
        f.extend((0..len).map(|i| if i == len / 2 { 0 } else { b'a' + (i % 26) as u8 }));
        f.push(0);
        f
    }

    #[test]
    fn a_frame_split_over_messages_is_decoded_by_its_last() {
        let frame = big_frame(3000);
        for cut in [SPLIT_MIN, SPLIT_MIN + 1, 2048, frame.len() - 1] {
            let mut s = Stomp::new(1 << 16);
            let first = s.decode(&msg(Side::Client, &frame[..cut]));
            assert!(first.error.is_none());
            let first = first.app.unwrap();
            assert_eq!(first.fields["partial"], true, "cut {cut}");
            assert_eq!(first.fields["stomp"], "SEND", "cut {cut}");
            // A heart-beat in between, and the other direction, leave the held part alone.
            let beat = s.decode(&msg(Side::Client, b"\n")).app.unwrap();
            assert_eq!(beat.fields["stomp"], "HEARTBEAT");
            let other = s.decode(&msg(Side::Server, b"RECEIPT\nreceipt-id:7\n\n\0"));
            assert_eq!(other.app.unwrap().fields["stomp"], "RECEIPT");
            let last = s.decode(&msg(Side::Client, &frame[cut..]));
            assert!(last.error.is_none(), "cut {cut}: {:?}", last.error);
            let a = last.app.unwrap();
            assert_eq!(a.fields["stomp"], "SEND", "cut {cut}");
            let body = a.fields["body"].as_str().unwrap();
            assert_eq!(body.len(), 3000, "cut {cut}");
            assert_eq!(body.as_bytes()[1500], 0, "cut {cut}");
            assert!(a.fields.get("partial").is_none());
        }
        // Three parts, the middle one completing nothing.
        let mut s = Stomp::new(1 << 16);
        for part in [&frame[..1100], &frame[1100..2200]] {
            assert_eq!(s.decode(&msg(Side::Client, part)).app.unwrap().fields["partial"], true);
        }
        let a = s.decode(&msg(Side::Client, &frame[2200..])).app.unwrap();
        assert_eq!(a.fields["destination"], "/q");
        // A short part that does not finish the held frame ends it as an error.
        let mut s = Stomp::new(1 << 16);
        s.decode(&msg(Side::Client, &frame[..1100]));
        let d = s.decode(&msg(Side::Client, &frame[1100..1200]));
        assert!(d.error.unwrap().contains("must end with NUL"));
        assert!(s.decode(&msg(Side::Client, b"SEND\n\nok\0")).error.is_none());
    }

    #[test]
    fn several_frames_in_one_message_and_frames_left_unfinished() {
        let mut s = Stomp::new(1 << 16);
        let mut m = b"MESSAGE\nx:1\n\na\0\nMESSAGE\nx:2\n\nb\0\n".to_vec();
        let open = big_frame(3000);
        m.extend_from_slice(&open[..1500]);
        let a = s.decode(&msg(Side::Server, &m)).app.unwrap();
        assert_eq!(a.fields["headers"]["x"], "1");
        assert_eq!(a.fields["more"][0]["headers"]["x"], "2");
        assert_eq!(a.fields["more"][0]["body"], "b");
        assert!(a.summary.ends_with("(+1 more)"), "{}", a.summary);
        // A new frame while one is held: the held one had no NUL.
        let d = s.decode(&msg(Side::Server, b"RECEIPT\nreceipt-id:1\n\n\0"));
        assert!(d.error.unwrap().contains("must end with NUL"));
        assert_eq!(d.app.unwrap().fields["stomp"], "RECEIPT");
    }

    #[test]
    fn what_is_held_is_bounded() {
        let frame = big_frame(3000);
        let mut s = Stomp::new(2048);
        let d = s.decode(&msg(Side::Client, &frame[..1500]));
        assert_eq!(d.app.unwrap().fields["partial"], true);
        let d = s.decode(&msg(Side::Client, &frame[1500..2600]));
        assert_eq!(d.app.as_ref().unwrap().fields["stomp"], "SEND");
        assert!(d.app.as_ref().unwrap().fields.get("partial").is_none());
        assert!(d.error.unwrap().contains("longer than 2048 bytes"));
        // Nothing is held any more: a new frame decodes on its own.
        let d = s.decode(&msg(Side::Client, b"SEND\n\nok\0"));
        assert!(d.error.is_none());
        assert_eq!(d.app.unwrap().fields["body"], "ok");
    }
}
