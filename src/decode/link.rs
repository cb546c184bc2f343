//! Link-layer headers etherparse does not cover (Linux SLL and SLL2, BSD NULL/LOOP), as
//! checked views: each returns the protocol and the payload, or `None` when too short.

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
    fn null_both_byte_orders_and_loop() {
        assert_eq!(null(&[2, 0, 0, 0, 0x45], false), Some(Next::Ip(&[0x45])));
        assert_eq!(null(&[0, 0, 0, 30, 0x60], false), Some(Next::Ip(&[0x60])));
        assert_eq!(null(&[0, 0, 0, 24, 0x60], true), Some(Next::Ip(&[0x60])));
        assert_eq!(null(&[7, 0, 0, 0, 0], false), Some(Next::Other));
        assert_eq!(null(&[2, 0, 0], false), None);
    }
}
