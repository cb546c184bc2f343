//! Link-layer headers etherparse does not cover (Linux SLL, SLL2 and NFLOG, BSD NULL/LOOP,
//! Apple PKTAP, PPP and Cisco HDLC), as checked views: each returns the protocol and the payload, or `None` when
//! too short.

/// What follows a link header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next<'a> {
    /// An EtherType and the bytes after the link header.
    EtherType(u16, &'a [u8]),
    /// An IP packet (version from its first nibble).
    Ip(&'a [u8]),
    /// Not IP.
    Other,
}

/// Linux "cooked" capture v1 (DLT 113): 16-byte header, protocol at bytes 14..16.
pub fn sll(data: &[u8]) -> Option<Next<'_>> {
    Some(Next::EtherType(super::be16(data, 14)?, data.get(16..)?))
}

/// Linux "cooked" capture v2 (DLT 276): 20-byte header, protocol at bytes 0..2.
pub fn sll2(data: &[u8]) -> Option<Next<'_>> {
    Some(Next::EtherType(super::be16(data, 0)?, data.get(20..)?))
}

/// Apple PKTAP (LINKTYPE 258; macOS `tcpdump -i any`): a little-endian header whose first
/// word is its length and whose second is 1 when a packet follows, whose third is that
/// packet's own DLT. Returns the DLT and the packet; `Some(None)` for other record types.
pub fn pktap(data: &[u8]) -> Option<Option<(u32, &[u8])>> {
    let len = le32(data, 0)? as usize;
    if le32(data, 4)? != 1 {
        return Some(None);
    }
    let dlt = le32(data, 8)?;
    if len < 12 {
        return None;
    }
    Some(Some((dlt, data.get(len..)?)))
}

/// Linux NFLOG (LINKTYPE 239; `tcpdump -i nflog:N`): family, version and resource id, then
/// type-length-value attributes in the capturing host's byte order, padded to 4 bytes; the
/// packet is the payload attribute (type 9).
pub fn nflog(data: &[u8]) -> Option<Next<'_>> {
    const PAYLOAD: u16 = 9;
    let mut at = 4;
    let tlvs = data.get(at..)?;
    // The host order is unknown: take the reading whose first length fits.
    let little = tlvs.get(0..2).map(|l| usize::from(u16::from_le_bytes([l[0], l[1]])));
    let le = little.is_some_and(|n| (4..=tlvs.len()).contains(&n));
    let read16 = |at: usize| -> Option<u16> {
        let b = data.get(at..at.checked_add(2)?)?;
        Some(if le { u16::from_le_bytes([b[0], b[1]]) } else { u16::from_be_bytes([b[0], b[1]]) })
    };
    while at < data.len() {
        let len = usize::from(read16(at)?);
        let kind = read16(at + 2)? & 0x7fff;
        if len < 4 || at.checked_add(len)? > data.len() {
            return None;
        }
        if kind == PAYLOAD {
            return Some(Next::Ip(data.get(at + 4..at.checked_add(len)?)?));
        }
        at = at.checked_add(len.div_ceil(4) * 4)?;
    }
    Some(Next::Other)
}

/// PPP (LINKTYPE 9, and 50 as HDLC-framed): an optional `FF 03` address and control, then
/// the protocol in two bytes, or one when compressed (an odd first byte).
pub fn ppp(data: &[u8]) -> Option<Next<'_>> {
    let data = data.strip_prefix(&[0xff, 0x03]).unwrap_or(data);
    let (protocol, rest) = match *data.first()? {
        b if b & 1 == 1 => (u16::from(b), data.get(1..)?),
        _ => (super::be16(data, 0)?, data.get(2..)?),
    };
    Some(match protocol {
        0x0021 | 0x0057 => Next::Ip(rest),
        _ => Next::Other,
    })
}

/// Cisco HDLC (LINKTYPE 104, router and serial-link captures): address, control, then an
/// EtherType.
pub fn chdlc(data: &[u8]) -> Option<Next<'_>> {
    Some(Next::EtherType(super::be16(data, 2)?, data.get(4..)?))
}

fn le32(b: &[u8], at: usize) -> Option<u32> {
    b.get(at..at.checked_add(4)?).map(|x| u32::from_le_bytes([x[0], x[1], x[2], x[3]]))
}

/// BSD loopback: a 4-byte address family, in the capturing host's byte order for NULL
/// (DLT 0) and in network order for OpenBSD LOOP (DLT 108). AF_INET is 2 everywhere;
/// AF_INET6 is 10 (Linux), 24 (NetBSD/OpenBSD), 28 (FreeBSD) or 30 (macOS).
pub fn null(data: &[u8], network_order: bool) -> Option<Next<'_>> {
    let fam = data.get(0..4)?;
    let fam = [fam[0], fam[1], fam[2], fam[3]];
    let payload = data.get(4..)?;
    let family = if network_order {
        u32::from_be_bytes(fam)
    } else {
        // The host order is unknown: whichever reading is a small number is right.
        let le = u32::from_le_bytes(fam);
        if le <= 0xff {
            le
        } else {
            u32::from_be_bytes(fam)
        }
    };
    Some(match family {
        2 | 10 | 24 | 28 | 30 => Next::Ip(payload),
        _ => Next::Other,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sll_and_sll2() {
        let mut v1 = vec![0u8; 16];
        v1[14] = 0x08;
        v1.extend_from_slice(b"IP");
        assert_eq!(sll(&v1), Some(Next::EtherType(0x0800, b"IP")));
        assert_eq!(sll(&v1[..15]), None);
        let mut v2 = vec![0x86, 0xdd];
        v2.extend_from_slice(&[0u8; 18]);
        v2.extend_from_slice(b"v6");
        assert_eq!(sll2(&v2), Some(Next::EtherType(0x86dd, b"v6")));
        assert_eq!(sll2(&v2[..19]), None);
    }

    #[test]
    fn pktap_records_and_nflog_attributes_in_either_byte_order() {
        let mut p = [20u32.to_le_bytes(), 1u32.to_le_bytes(), 1u32.to_le_bytes()].concat();
        p.resize(20, 0);
        p.extend_from_slice(b"frame");
        assert_eq!(pktap(&p), Some(Some((1, &b"frame"[..]))));
        p[4] = 2; // not a packet record
        assert_eq!(pktap(&p), Some(None));
        p[4] = 1;
        assert_eq!(pktap(&p[..11]), None);
        p[0] = 200; // a header longer than the record
        assert_eq!(pktap(&p), None);
        // NFLOG: a prefix attribute of 7 bytes (padded to 8), then the payload; both orders.
        for be in [false, true] {
            let w = |v: u16| if be { v.to_be_bytes() } else { v.to_le_bytes() };
            let mut n = vec![10, 0, 0, 1];
            n.extend_from_slice(&[w(7), w(10)].concat());
            n.extend_from_slice(b"ab\0\0");
            n.extend_from_slice(&[w(6), w(9)].concat());
            n.extend_from_slice(b"IP\0\0");
            assert_eq!(nflog(&n), Some(Next::Ip(b"IP")), "big-endian {be}");
            assert_eq!(nflog(&n[..14]), None);
            assert_eq!(nflog(&n[..12]), Some(Next::Other));
        }
        assert_eq!(nflog(&[2, 0, 0, 1, 2, 0, 9, 0]), None, "an attribute shorter than its header");
    }

    #[test]
    fn ppp_with_and_without_address_and_compressed_protocols_and_cisco_hdlc() {
        assert_eq!(ppp(&[0xff, 0x03, 0x00, 0x21, 0x45]), Some(Next::Ip(&[0x45])));
        assert_eq!(ppp(&[0x00, 0x57, 0x60]), Some(Next::Ip(&[0x60])));
        assert_eq!(ppp(&[0x21, 0x45]), Some(Next::Ip(&[0x45])));
        assert_eq!(ppp(&[0xc0, 0x21, 1]), Some(Next::Other), "LCP");
        assert_eq!(ppp(&[0xff, 0x03]), None);
        assert_eq!(chdlc(&[0x0f, 0, 0x08, 0x00, 0x45]), Some(Next::EtherType(0x0800, &[0x45])));
        assert_eq!(chdlc(&[0x0f, 0, 0x08]), None);
    }

    #[test]
    fn null_both_byte_orders_and_loop() {
        assert_eq!(null(&[2, 0, 0, 0, 0x45], false), Some(Next::Ip(&[0x45])));
        assert_eq!(null(&[0, 0, 0, 30, 0x60], false), Some(Next::Ip(&[0x60])));
        assert_eq!(null(&[0, 0, 0, 24, 0x60], true), Some(Next::Ip(&[0x60])));
        assert_eq!(null(&[7, 0, 0, 0, 0], false), Some(Next::Other));
        assert_eq!(null(&[2, 0, 0], false), None);
    }
}
