//! Ping/pong pairing across the two directions of a connection, for RTTs and for the
//! problems a peer's answers show.

use super::{idx, millis_between};
use crate::event::Meta;
use crate::limits::MAX_RTT_SAMPLES;
use crate::tcp::Side;
use std::collections::VecDeque;

/// What a ping turned out to be.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PingSeen {
    /// It carries the payload of the other side's outstanding ping: an answer that should
    /// have been a pong. It is still a ping, so it waits for a pong of its own.
    pub answered_with_ping: bool,
    /// The oldest outstanding ping of this side was dropped to stay within the limit.
    pub forgot: bool,
}

/// Outstanding pings of each side (oldest first) and the RTTs of answered ones.
#[derive(Default)]
pub struct Pings {
    outstanding: [VecDeque<(Vec<u8>, Meta)>; 2],
    pub rtts_ms: Vec<f64>,
}

impl Pings {
    /// A ping; at most `limit` pings per side wait for their pong.
    pub fn ping(&mut self, from: Side, payload: Vec<u8>, meta: Meta, limit: usize) -> PingSeen {
        let mut seen = PingSeen::default();
        let other = &mut self.outstanding[idx(from.other())];
        if let Some(pos) = other.iter().position(|(p, _)| *p == payload) {
            other.remove(pos);
            seen.answered_with_ping = true;
        }
        // A peer that answers pings with pings still gets pongs back from a correct peer
        // (RFC 6455 5.5.2: "Upon receipt of a Ping frame, an endpoint MUST send a Pong"),
        // and those pongs must not look unsolicited.
        let mine = &mut self.outstanding[idx(from)];
        while !mine.is_empty() && mine.len() >= limit {
            mine.pop_front();
            seen.forgot = true;
        }
        if limit > 0 {
            mine.push_back((payload, meta));
        }
        seen
    }

    /// A pong; false when it answers no outstanding ping of the other side.
    pub fn pong(&mut self, from: Side, payload: &[u8], meta: Meta) -> bool {
        let other = &mut self.outstanding[idx(from.other())];
        match other.iter().position(|(p, _)| p == payload) {
            Some(pos) => {
                if let Some((_, ping_meta)) = other.remove(pos) {
                    if self.rtts_ms.len() < MAX_RTT_SAMPLES {
                        self.rtts_ms.push(millis_between(ping_meta, meta));
                    }
                }
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_kept_per_connection_are_bounded() {
        let mut p = Pings::default();
        for i in 0..MAX_RTT_SAMPLES as u64 + 10 {
            let meta = Meta { packet: i, ..Meta::default() };
            p.ping(Side::Client, i.to_be_bytes().to_vec(), meta, 4);
            assert!(p.pong(Side::Server, &i.to_be_bytes(), meta), "still paired");
        }
        assert_eq!(p.rtts_ms.len(), MAX_RTT_SAMPLES);
    }
    use crate::capture::Timestamp;

    fn at(packet: u64, millis: u32) -> Meta {
        Meta { packet, ts: Timestamp::new(100, millis * 1_000_000), ..Meta::default() }
    }

    #[test]
    fn pong_pairs_with_the_ping_and_gives_its_rtt() {
        let mut p = Pings::default();
        assert_eq!(p.ping(Side::Client, b"a".to_vec(), at(1, 10), 64), PingSeen::default());
        assert!(!p.pong(Side::Client, b"a", at(2, 11)), "a side does not answer itself");
        assert!(p.pong(Side::Server, b"a", at(3, 25)));
        assert_eq!(p.rtts_ms, vec![15.0]);
        assert!(!p.pong(Side::Server, b"a", at(4, 30)), "each ping is answered once");
    }

    #[test]
    fn ping_answered_with_ping_then_ponged() {
        let mut p = Pings::default();
        assert_eq!(
            p.ping(Side::Client, b"are you there".to_vec(), at(1, 0), 64),
            PingSeen::default()
        );
        let seen = p.ping(Side::Server, b"are you there".to_vec(), at(2, 4), 64);
        assert!(seen.answered_with_ping && !seen.forgot);
        // The client's pong answers the server's ping: not unsolicited.
        assert!(p.pong(Side::Client, b"are you there", at(3, 5)));
        assert_eq!(p.rtts_ms, vec![1.0]);
        // A ping with another payload is a ping of its own.
        assert_eq!(p.ping(Side::Server, b"other".to_vec(), at(4, 6), 64), PingSeen::default());
    }

    #[test]
    fn outstanding_pings_are_bounded() {
        let mut p = Pings::default();
        for i in 0..8u64 {
            let seen = p.ping(Side::Client, i.to_be_bytes().to_vec(), at(i, 0), 4);
            assert_eq!(seen.forgot, i >= 4, "ping {i}");
        }
        assert!(!p.pong(Side::Server, &0u64.to_be_bytes(), at(99, 0)), "the oldest was dropped");
        assert!(p.pong(Side::Server, &7u64.to_be_bytes(), at(99, 0)));
        // A limit of 0 keeps none.
        let mut p = Pings::default();
        p.ping(Side::Client, b"x".to_vec(), at(1, 0), 0);
        assert!(!p.pong(Side::Server, b"x", at(2, 0)));
    }
}
