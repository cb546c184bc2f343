//! Bounded IPv4/IPv6 fragment reassembly.
//!
//! Written here rather than with etherparse's defragmentation pool because that pool has no
//! memory bound: a capture full of first fragments would grow it without limit. Here all held
//! fragment bytes together stay under a limit (oldest datagrams are dropped first and
//! reported), datagrams in flight are capped, and a datagram is given up on when a minute of
//! capture time passes without it completing. Overlaps keep the first copy.

use super::DecodeNotice;
use foldhash::HashMap;
use std::collections::BTreeMap;
use std::net::IpAddr;

const TIMEOUT_SECS: i64 = 60;
/// The largest IP payload (IPv4 65535 minus a 20-byte header; IPv6 without jumbograms).
const MAX_DATAGRAM: usize = 65535;

/// One fragment's identity and place.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FragmentKey {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub id: u32,
    pub proto: u8,
    /// Byte offset of this fragment's data.
    pub offset: usize,
    /// More fragments follow.
    pub more: bool,
}

type DatagramId = (IpAddr, IpAddr, u32, u8);

struct Datagram {
    /// Arrival order, for evicting the oldest first (never hash order).
    serial: u64,
    first_seen: i64,
    /// Fragment data by offset.
    pieces: BTreeMap<usize, Vec<u8>>,
    bytes: usize,
    total: Option<usize>,
    /// The pieces cover `0..covered` without a hole ...
    covered: usize,
    /// ... counting every piece at an offset below this one.
    folded: usize,
}

pub struct FragmentPool {
    limit: usize,
    max_datagrams: usize,
    held: usize,
    serial: u64,
    datagrams: HashMap<DatagramId, Datagram>,
    notices: Vec<DecodeNotice>,
    /// Pieces looked at to find holes, for tests of the work done.
    #[cfg(test)]
    looks: usize,
}

impl FragmentPool {
    pub fn new(limit: usize, max_datagrams: usize) -> Self {
        FragmentPool {
            limit,
            max_datagrams,
            held: 0,
            serial: 0,
            datagrams: HashMap::default(),
            notices: Vec::new(),
            #[cfg(test)]
            looks: 0,
        }
    }

    pub fn take_notices(&mut self) -> Vec<DecodeNotice> {
        std::mem::take(&mut self.notices)
    }

    /// Adds a fragment; returns the whole IP payload when the datagram is complete.
    pub fn add(&mut self, key: FragmentKey, data: &[u8], now: i64) -> Option<Vec<u8>> {
        self.expire(now);
        let id = (key.src, key.dst, key.id, key.proto);
        let end = key.offset.saturating_add(data.len());
        if end > MAX_DATAGRAM {
            return None;
        }
        while self.held + data.len() > self.limit
            || (!self.datagrams.contains_key(&id) && self.datagrams.len() >= self.max_datagrams)
        {
            if !self.evict_oldest(true) {
                break;
            }
        }
        if self.held + data.len() > self.limit {
            self.notices.push(DecodeNotice::FragmentLimit { dropped_bytes: data.len() });
            return None;
        }
        self.serial += 1;
        let serial = self.serial;
        let d = self.datagrams.entry(id).or_insert_with(|| Datagram {
            serial,
            first_seen: now,
            pieces: BTreeMap::new(),
            bytes: 0,
            total: None,
            covered: 0,
            folded: 0,
        });
        if !key.more {
            d.total = Some(end);
        }
        if !d.pieces.contains_key(&key.offset) && !data.is_empty() {
            d.pieces.insert(key.offset, data.to_vec());
            d.bytes += data.len();
            self.held += data.len();
            if key.offset < d.folded {
                // Below a folded piece, so inside the covered prefix.
                d.covered = d.covered.max(end);
            }
        }
        // Extend the covered prefix from where it was left, so that a datagram's fragments
        // cost a walk over its pieces once rather than at each fragment.
        for (&off, piece) in d.pieces.range(d.folded..) {
            #[cfg(test)]
            {
                self.looks += 1;
            }
            if off > d.covered {
                break;
            }
            d.covered = d.covered.max(off + piece.len());
            d.folded = off + 1;
        }
        // Complete when the pieces cover 0..total without a hole.
        let total = d.total?;
        if d.covered < total {
            return None;
        }
        let d = self.datagrams.remove(&id)?;
        self.held -= d.bytes;
        let mut out = vec![0u8; total];
        let mut filled = 0usize;
        for (off, piece) in d.pieces {
            // First copy wins: only bytes past what is already filled are taken.
            let start = filled.max(off);
            let piece_end = (off + piece.len()).min(total);
            if start < piece_end {
                out[start..piece_end].copy_from_slice(&piece[start - off..piece_end - off]);
                filled = piece_end;
            }
        }
        Some(out)
    }

    fn expire(&mut self, now: i64) {
        let stale: Vec<DatagramId> = self
            .datagrams
            .iter()
            .filter(|(_, d)| now.saturating_sub(d.first_seen) > TIMEOUT_SECS)
            .map(|(k, _)| *k)
            .collect();
        let mut stale: Vec<(u64, DatagramId)> =
            stale.into_iter().map(|k| (self.datagrams[&k].serial, k)).collect();
        stale.sort();
        for (_, k) in stale {
            if let Some(d) = self.datagrams.remove(&k) {
                self.held -= d.bytes;
                self.notices.push(DecodeNotice::FragmentIncomplete { dropped_bytes: d.bytes });
            }
        }
    }

    /// Drops the oldest datagram; false when there is none.
    fn evict_oldest(&mut self, limit_hit: bool) -> bool {
        let Some((&k, _)) = self.datagrams.iter().min_by_key(|(_, d)| d.serial) else {
            return false;
        };
        if let Some(d) = self.datagrams.remove(&k) {
            self.held -= d.bytes;
            let notice = if limit_hit {
                DecodeNotice::FragmentLimit { dropped_bytes: d.bytes }
            } else {
                DecodeNotice::FragmentIncomplete { dropped_bytes: d.bytes }
            };
            self.notices.push(notice);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn key(offset: usize, more: bool) -> FragmentKey {
        FragmentKey {
            src: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
            dst: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
            id: 7,
            proto: 6,
            offset,
            more,
        }
    }

    #[test]
    fn reassembles_in_any_order() {
        let data: Vec<u8> = (0..100u8).collect();
        for order in [[0, 1, 2], [2, 0, 1], [1, 2, 0]] {
            let mut pool = FragmentPool::new(1 << 20, 1024);
            let parts =
                [(0, &data[..40], true), (40, &data[40..80], true), (80, &data[80..], false)];
            let mut done = None;
            for i in order {
                let (off, d, more) = parts[i];
                done = pool.add(key(off, more), d, 0);
            }
            assert_eq!(done.as_deref(), Some(&data[..]));
            assert_eq!(pool.held, 0);
        }
    }

    #[test]
    fn limit_drops_oldest_and_says_so() {
        let mut pool = FragmentPool::new(100, 1024);
        assert_eq!(pool.add(key(0, true), &[1; 80], 0), None);
        let mut k = key(0, true);
        k.id = 8;
        assert_eq!(pool.add(k, &[2; 80], 0), None);
        assert!(matches!(
            pool.take_notices().as_slice(),
            [DecodeNotice::FragmentLimit { dropped_bytes: 80 }]
        ));
        assert!(pool.held <= 100);
        k.offset = 80;
        k.more = false;
        assert_eq!(pool.add(k, &[3; 8], 0).map(|v| v.len()), Some(88));
    }

    #[test]
    fn datagram_count_limit_drops_the_oldest() {
        let mut pool = FragmentPool::new(1 << 20, 3);
        for id in 0..5 {
            let mut k = key(0, true);
            k.id = id;
            assert_eq!(pool.add(k, &[1; 8], 0), None);
        }
        assert_eq!(pool.datagrams.len(), 3);
        let notices = pool.take_notices();
        assert_eq!(notices.len(), 2);
        assert!(notices
            .iter()
            .all(|n| matches!(n, DecodeNotice::FragmentLimit { dropped_bytes: 8 })));
    }

    #[test]
    fn gives_up_after_timeout() {
        let mut pool = FragmentPool::new(1 << 20, 1024);
        pool.add(key(0, true), &[0; 8], 0);
        pool.add(key(800, false), &[0; 8], 100);
        assert!(pool
            .take_notices()
            .iter()
            .any(|n| matches!(n, DecodeNotice::FragmentIncomplete { .. })));
    }

    /// Regression: every fragment walked all the pieces of its datagram to look for holes, so
    /// a datagram cut into its most (8190) fragments, the last sent first, cost 33 million
    /// steps.
    #[test]
    fn many_fragments_cost_linear_work() {
        let n = 8190;
        let mut pool = FragmentPool::new(1 << 20, 1024);
        assert_eq!(pool.add(key(n * 8, false), &[9; 8], 0), None);
        for i in 0..n {
            let done = pool.add(key(i * 8, true), &[i as u8; 8], 0);
            assert_eq!(done.is_some(), i == n - 1);
            if let Some(d) = done {
                assert_eq!(d.len(), (n + 1) * 8);
                assert_eq!(d[8 * 1000], (1000 % 256) as u8);
            }
        }
        assert!(pool.looks <= 4 * n, "{} pieces looked at", pool.looks);
        // Reverse order and overlaps still complete exactly once.
        let mut pool = FragmentPool::new(1 << 20, 1024);
        assert_eq!(pool.add(key(16, false), &[3; 4], 0), None);
        assert_eq!(pool.add(key(8, true), &[2; 16], 0), None);
        assert_eq!(pool.add(key(0, true), &[1; 8], 0).map(|d| d.len()), Some(20));
    }
}
