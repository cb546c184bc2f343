//! MQTT 3.1, 3.1.1 and 5.0 control packets over binary WebSocket messages
//! (`Sec-WebSocket-Protocol: mqtt`). The WebSocket framing does not follow packet boundaries
//! (MQTT 3.1.1 section 6: "a single WebSocket data frame may contain multiple or partial MQTT
//! Control Packets"), so each direction keeps the bytes of an unfinished packet, up to the
//! message limit. A message that completes no packet is reported with `"partial": true`; one
//! that completes several describes the first and lists the others under `more`.

use super::{
    hold_rest, preview, set_payload, set_units, App, AppDecoder, AppMessage, Decoded, Hints,
    Registration,
};
use serde_json::{Map, Value};

pub const REGISTRATION: Registration = Registration {
    name: "mqtt",
    by_handshake: |h: &Hints<'_>| {
        h.protocol
            .is_some_and(|p| p.eq_ignore_ascii_case("mqtt") || p.eq_ignore_ascii_case("mqttv3.1"))
    },
    by_content: |m: &AppMessage<'_>| {
        // A CONNECT: type 1, then after the remaining length the protocol name "MQTT"/"MQIsdp".
        !m.text
            && m.payload.first() == Some(&0x10)
            && m.payload.get(1..12).is_some_and(|p| {
                memchr::memmem::find(p, b"\x00\x04MQTT").is_some()
                    || memchr::memmem::find(p, b"\x00\x06MQIsdp").is_some()
            })
    },
    new: |h| {
        Box::new(Mqtt {
            held: Default::default(),
            lost: [false; 2],
            level: 4,
            max_held: h.max_held.max(1 << 10),
        })
    },
};

const TYPES: [&str; 16] = [
    "RESERVED",
    "CONNECT",
    "CONNACK",
    "PUBLISH",
    "PUBACK",
    "PUBREC",
    "PUBREL",
    "PUBCOMP",
    "SUBSCRIBE",
    "SUBACK",
    "UNSUBSCRIBE",
    "UNSUBACK",
    "PINGREQ",
    "PINGRESP",
    "DISCONNECT",
    "AUTH",
];

pub struct Mqtt {
    held: [Vec<u8>; 2],
    /// Bytes of this side were lost: its packets are read again from the first message that
    /// starts one (a message made of whole packets), as nothing marks where one begins.
    lost: [bool; 2],
    /// Protocol level from CONNECT: 3 (3.1), 4 (3.1.1) or 5; properties exist only in 5.
    level: u8,
    max_held: usize,
}

/// Checked reads over one packet's bytes.
struct Cur<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Cur<'a> {
    fn u8(&mut self) -> Option<u8> {
        let v = *self.b.get(self.at)?;
        self.at += 1;
        Some(v)
    }
    fn u16(&mut self) -> Option<u16> {
        Some(u16::from(self.u8()?) << 8 | u16::from(self.u8()?))
    }
    fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        let v = self.b.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(v)
    }
    fn string(&mut self) -> Option<String> {
        let n = usize::from(self.u16()?);
        std::str::from_utf8(self.bytes(n)?).ok().map(str::to_owned)
    }
    fn varint(&mut self) -> Option<usize> {
        varint(self.b.get(self.at..)?).map(|(v, n)| {
            self.at += n;
            v
        })
    }
    /// Skips MQTT 5 properties.
    fn properties(&mut self, level: u8) -> Option<()> {
        if level >= 5 {
            let n = self.varint()?;
            self.bytes(n)?;
        }
        Some(())
    }
    fn rest(&self) -> &'a [u8] {
        self.b.get(self.at..).unwrap_or_default()
    }
}

/// The "Variable Byte Integer": value and bytes used; `None` when incomplete or longer than
/// four bytes.
fn varint(b: &[u8]) -> Option<(usize, usize)> {
    let mut v = 0usize;
    for (i, &byte) in b.iter().take(4).enumerate() {
        v |= usize::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some((v, i + 1));
        }
    }
    None
}

enum Split {
    Packet(usize),
    NeedMore,
    Bad(&'static str),
}

fn split(b: &[u8]) -> Split {
    if b.len() < 2 {
        return Split::NeedMore;
    }
    match varint(&b[1..]) {
        Some((len, n)) => {
            let total = 1 + n + len;
            if b.len() >= total {
                Split::Packet(total)
            } else {
                Split::NeedMore
            }
        }
        None if b.len() >= 5 => Split::Bad("the remaining length is longer than four bytes"),
        None => Split::NeedMore,
    }
}

/// Whether `b` is one or more whole packets of known types, and nothing else.
fn whole_packets(b: &[u8]) -> bool {
    let mut at = 0;
    while at < b.len() {
        match split(&b[at..]) {
            Split::Packet(n) if b[at] >> 4 != 0 => at += n,
            _ => return false,
        }
    }
    at > 0
}

impl Mqtt {
    fn packet(&mut self, p: &[u8]) -> Option<(Map<String, Value>, String)> {
        let first = *p.first()?;
        let t = usize::from(first >> 4);
        let name = TYPES[t];
        let (_, n) = varint(p.get(1..)?)?;
        let mut c = Cur { b: p.get(1 + n..)?, at: 0 };
        let mut f = Map::new();
        f.insert("mqtt".into(), name.into());
        let mut summary = format!("mqtt {name}");
        match t {
            1 => {
                let proto = c.string()?;
                let level = c.u8()?;
                let flags = c.u8()?;
                let keep_alive = c.u16()?;
                self.level = level;
                c.properties(level)?;
                let client_id = c.string()?;
                f.insert("protocol_name".into(), proto.into());
                f.insert("protocol_level".into(), level.into());
                f.insert("clean_start".into(), (flags & 2 != 0).into());
                f.insert("keep_alive".into(), keep_alive.into());
                summary.push_str(&format!(" client_id={client_id} level={level}"));
                f.insert("client_id".into(), client_id.into());
            }
            2 => {
                let flags = c.u8()?;
                let code = c.u8()?;
                // Only MQTT 5's CONNACK has more (its properties): the level when the
                // CONNECT is not in the capture.
                if !c.rest().is_empty() {
                    self.level = self.level.max(5);
                }
                f.insert("session_present".into(), (flags & 1 != 0).into());
                f.insert("reason_code".into(), code.into());
                summary.push_str(&format!(" rc={code}"));
            }
            3 => {
                let qos = (first >> 1) & 3;
                let topic = c.string()?;
                f.insert("topic".into(), topic.as_str().into());
                f.insert("qos".into(), qos.into());
                f.insert("retain".into(), (first & 1 != 0).into());
                f.insert("dup".into(), (first & 8 != 0).into());
                summary.push_str(&format!(" {topic} qos={qos}"));
                if qos > 0 {
                    let id = c.u16()?;
                    f.insert("packet_id".into(), id.into());
                    summary.push_str(&format!(" id={id}"));
                }
                c.properties(self.level)?;
                let payload = c.rest();
                f.insert("payload_len".into(), payload.len().into());
                summary.push_str(&format!(" {}", preview(payload, 60)));
                set_payload(&mut f, "payload", payload);
            }
            4..=7 | 11 => {
                let id = c.u16()?;
                f.insert("packet_id".into(), id.into());
                summary.push_str(&format!(" id={id}"));
                if self.level >= 5 && t != 11 {
                    if let Some(code) = c.u8() {
                        f.insert("reason_code".into(), code.into());
                    }
                }
            }
            8 | 10 => {
                let id = c.u16()?;
                c.properties(self.level)?;
                let mut subs = Vec::new();
                while !c.rest().is_empty() {
                    let topic = c.string()?;
                    summary.push_str(&format!(" {topic}"));
                    let mut s = Map::new();
                    s.insert("topic".into(), topic.into());
                    if t == 8 {
                        let opts = c.u8()?;
                        s.insert("qos".into(), (opts & 3).into());
                    }
                    subs.push(Value::Object(s));
                }
                f.insert("packet_id".into(), id.into());
                f.insert("subscriptions".into(), subs.into());
            }
            9 => {
                let id = c.u16()?;
                c.properties(self.level)?;
                let codes: Vec<Value> = c.rest().iter().map(|&b| b.into()).collect();
                f.insert("packet_id".into(), id.into());
                summary.push_str(&format!(" id={id} {}", Value::from(codes.clone())));
                f.insert("reason_codes".into(), codes.into());
            }
            14 if self.level >= 5 => {
                if let Some(code) = c.u8() {
                    f.insert("reason_code".into(), code.into());
                }
            }
            0 => return None,
            _ => {}
        }
        Some((f, summary))
    }
}

impl AppDecoder for Mqtt {
    fn lose(&mut self, from: crate::tcp::Side) {
        self.held[from.index()].clear();
        self.lost[from.index()] = true;
    }

    fn protocol(&self) -> &'static str {
        "mqtt"
    }

    fn decode(&mut self, m: &AppMessage<'_>) -> Decoded {
        if m.text {
            return Decoded::error(None, "MQTT over WebSocket must use binary messages");
        }
        let i = m.from.index();
        if self.lost[i] {
            if !whole_packets(m.payload) {
                let mut app = App::new("mqtt");
                app.set("not_read", true);
                app.summary = "mqtt (not read: bytes of this side were lost, and this message \
                               does not start a packet)"
                    .into();
                return Decoded { app: Some(app), error: None };
            }
            self.lost[i] = false;
        }
        let mut held = std::mem::take(&mut self.held[i]);
        held.extend_from_slice(m.payload);
        let mut packets = Vec::new();
        let mut at = 0;
        let mut error = None;
        loop {
            match split(&held[at..]) {
                Split::Packet(n) => {
                    match self.packet(&held[at..at + n]) {
                        Some(p) => packets.push(p),
                        None => {
                            error = Some(format!(
                                "malformed MQTT {} packet",
                                TYPES[usize::from(held[at] >> 4)]
                            ));
                        }
                    }
                    at += n;
                }
                Split::NeedMore => break,
                Split::Bad(why) => {
                    error = Some(why.to_string());
                    at = held.len();
                    break;
                }
            }
        }
        if !hold_rest(&mut held, at, self.max_held) {
            error = Some(format!("an MQTT packet longer than {} bytes was dropped", self.max_held));
        }
        self.held[i] = held;
        let mut app = App::new("mqtt");
        let mut it = packets.into_iter();
        match it.next() {
            Some(first) => set_units(&mut app, first, it),
            None if error.is_some() => app.summary = "mqtt".into(),
            None => {
                app.set("partial", true);
                app.summary = format!("mqtt (part of a packet, {} bytes held)", self.held[i].len());
            }
        }
        Decoded { app: Some(app), error }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tcp::Side;

    fn msg(from: Side, p: &[u8]) -> AppMessage<'_> {
        AppMessage { from, text: false, payload: p, first_packet: 1 }
    }

    fn new() -> Mqtt {
        Mqtt { held: Default::default(), lost: [false; 2], level: 4, max_held: 1 << 16 }
    }

    const CONNECT5: &[u8] = b"\x10\x12\x00\x04MQTT\x05\x02\x00\x3c\x00\x00\x05abcde";

    #[test]
    fn connect_publish_split_over_messages() {
        let mut m = new();
        let a = m.decode(&msg(Side::Client, CONNECT5)).app.unwrap();
        assert_eq!(
            (a.fields["mqtt"].as_str(), a.fields["client_id"].as_str()),
            (Some("CONNECT"), Some("abcde"))
        );
        assert_eq!(a.fields["protocol_level"], 5);
        // PUBLISH qos 1, topic "t/1", id 7, no properties, payload "hi", in two messages.
        let publish = b"\x32\x0a\x00\x03t/1\x00\x07\x00hi";
        let d = m.decode(&msg(Side::Client, &publish[..4]));
        assert_eq!(d.app.unwrap().fields["partial"], true);
        let a = m.decode(&msg(Side::Client, &publish[4..])).app.unwrap();
        assert_eq!(
            (a.fields["topic"].as_str(), a.fields["qos"].as_u64(), a.fields["packet_id"].as_u64()),
            (Some("t/1"), Some(1), Some(7))
        );
        assert_eq!(a.fields["payload"], "hi");
        // Two packets in one message.
        let two = b"\xd0\x00\xd0\x00";
        let a = m.decode(&msg(Side::Server, two)).app.unwrap();
        assert_eq!(a.fields["mqtt"], "PINGRESP");
        assert_eq!(a.fields["more"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn after_a_loss_a_side_is_read_again_from_a_message_of_whole_packets() {
        let mut m = new();
        let publish = b"\x32\x0a\x00\x03t/1\x00\x07\x00hi";
        assert_eq!(
            m.decode(&msg(Side::Client, &publish[..4])).app.unwrap().fields["partial"],
            true
        );
        // The rest of that PUBLISH was lost: its last bytes would otherwise start a packet.
        m.lose(Side::Client);
        let tail = m.decode(&msg(Side::Client, &publish[8..])).app.unwrap();
        assert_eq!(tail.fields["not_read"], true);
        assert!(tail.fields.get("mqtt").is_none());
        // The other side goes on; this side resumes at a message that is whole packets.
        assert_eq!(
            m.decode(&msg(Side::Server, b"\xd0\x00")).app.unwrap().fields["mqtt"],
            "PINGRESP"
        );
        let a = m.decode(&msg(Side::Client, publish)).app.unwrap();
        assert_eq!(
            (a.fields["topic"].as_str(), a.fields["packet_id"].as_u64()),
            (Some("t/1"), Some(7))
        );
    }

    #[test]
    fn an_mqtt_5_connack_tells_the_level_when_the_connect_is_missing() {
        let mut m = new();
        // CONNACK with a property length of 0: only MQTT 5 has it.
        m.decode(&msg(Side::Server, b"\x20\x03\x00\x00\x00"));
        // SUBACK id 9, properties (none), reason code 1: read as MQTT 5.
        let a = m.decode(&msg(Side::Server, b"\x90\x04\x00\x09\x00\x01")).app.unwrap();
        assert_eq!(a.fields["reason_codes"], serde_json::json!([1]));
        // An MQTT 3.1.1 CONNACK leaves the level as it was.
        let mut m = new();
        m.decode(&msg(Side::Server, b"\x20\x02\x00\x00"));
        let a = m.decode(&msg(Side::Server, b"\x90\x03\x00\x09\x01")).app.unwrap();
        assert_eq!(a.fields["reason_codes"], serde_json::json!([1]));
    }

    #[test]
    fn malformed_packets_are_errors() {
        let mut m = new();
        assert!(m.decode(&msg(Side::Client, b"\x30\xff\xff\xff\xff\x01")).error.is_some());
        assert!(m.decode(&msg(Side::Client, b"\x10\x02\x00\x09")).error.is_some());
        assert!(m.decode(&AppMessage { text: true, ..msg(Side::Client, b"x") }).error.is_some());
        let mut small = Mqtt { max_held: 8, ..new() };
        assert!(small.decode(&msg(Side::Client, b"\x30\x7f0123456789")).error.is_some());
        for cut in 0..CONNECT5.len() {
            let mut m = new();
            let _ = m.decode(&msg(Side::Client, &CONNECT5[..cut]));
        }
    }
}
