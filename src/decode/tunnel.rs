//! Tunnels that carry traffic to where it is recorded, opened to the packet inside.
//!
//! Mirrored traffic rarely arrives bare: switches send port mirrors as GRE with ERSPAN type II
//! or III, AWS VPC Traffic Mirroring as VXLAN (UDP 4789), Kubernetes overlays (Flannel,
//! Cilium) as VXLAN on Linux's port 8472, AWS Gateway Load Balancer as Geneve (UDP 6081), and
//! routers tunnel IP in IP (4, 41) or in plain GRE (RFC 2784 with the key and sequence number
//! of RFC 2890). Each header is a few fixed fields that etherparse does not read (it stops at
//! the GRE or UDP payload), so they are read here, every length checked against the bytes
//! captured. GRE version 1 (PPTP's PPP) and the source routes of RFC 1701 are not opened, nor
//! VXLAN on other ports.
//!
//! Below IP, an MPLS label stack (carrier links) and a PPPoE session (DSL access links) are
//! link-layer encapsulations etherparse does not read either: [`open_link`] takes them off.

use super::be16;

/// What a tunnel carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Inner<'a> {
    Ethernet(&'a [u8]),
    /// An IPv4 or IPv6 packet (its first nibble says which).
    Ip(&'a [u8]),
}

/// The IANA port of VXLAN (RFC 7348).
pub const VXLAN_PORT: u16 = 4789;
/// The port Linux's VXLAN driver used before IANA's, still Flannel's and Cilium's default.
pub const VXLAN_LINUX_PORT: u16 = 8472;
/// The IANA port of Geneve (RFC 8926).
pub const GENEVE_PORT: u16 = 6081;

const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_IPV6: u16 = 0x86dd;
/// Transparent Ethernet bridging: an Ethernet frame follows.
const ETHERTYPE_ETHERNET: u16 = 0x6558;
const ETHERTYPE_ERSPAN_2: u16 = 0x88be;
const ETHERTYPE_ERSPAN_3: u16 = 0x22eb;

/// Whether an IP payload of protocol `proto` may be a tunnel [`open`] reads.
pub fn may_carry(proto: u8) -> bool {
    matches!(proto, 4 | 41 | 47 | 17)
}

/// The packet inside an IP payload of protocol `proto` (its transport header included), when
/// it is a tunnel this module opens.
pub fn open(proto: u8, payload: &[u8]) -> Option<Inner<'_>> {
    match proto {
        4 | 41 => Some(Inner::Ip(payload)),
        47 => gre(payload),
        17 => udp(payload),
        _ => None,
    }
}

/// The packet inside an Ethernet payload of an ether type etherparse stops at: an MPLS label
/// stack, or a PPPoE session carrying IP.
pub fn open_link(ether_type: u16, payload: &[u8]) -> Option<Inner<'_>> {
    match ether_type {
        ETHERTYPE_MPLS | ETHERTYPE_MPLS_MULTICAST => mpls(payload),
        ETHERTYPE_PPPOE_SESSION => pppoe(payload),
        _ => None,
    }
}

const ETHERTYPE_MPLS: u16 = 0x8847;
const ETHERTYPE_MPLS_MULTICAST: u16 = 0x8848;
const ETHERTYPE_PPPOE_SESSION: u16 = 0x8864;
/// Label stack entries read at most before giving up on finding the bottom of the stack.
const MPLS_MAX_LABELS: usize = 16;

/// MPLS: four-byte label stack entries down to the one with the bottom-of-stack bit, then
/// IPv4 or IPv6 (by the first nibble, as routers decide), or a pseudowire control word (first
/// nibble 0) and an Ethernet frame.
fn mpls(b: &[u8]) -> Option<Inner<'_>> {
    let bottom = (0..MPLS_MAX_LABELS).find(|i| b.get(i * 4 + 2).is_some_and(|x| x & 0x01 != 0))?;
    let rest = b.get((bottom + 1) * 4..)?;
    match rest.first()? >> 4 {
        4 | 6 => Some(Inner::Ip(rest)),
        0 => Some(Inner::Ethernet(rest.get(4..)?)),
        _ => None,
    }
}

/// PPPoE session stage (RFC 2516): six bytes of version 1, type 1, code 0, then PPP's
/// protocol field, IPv4 (0x0021) or IPv6 (0x0057).
fn pppoe(b: &[u8]) -> Option<Inner<'_>> {
    if b.first()? != &0x11 || b.get(1)? != &0 {
        return None;
    }
    match be16(b, 6)? {
        0x0021 | 0x0057 => Some(Inner::Ip(b.get(8..)?)),
        _ => None,
    }
}

fn by_ether_type(ether_type: u16, rest: &[u8]) -> Option<Inner<'_>> {
    match ether_type {
        ETHERTYPE_IPV4 | ETHERTYPE_IPV6 => Some(Inner::Ip(rest)),
        ETHERTYPE_ETHERNET => Some(Inner::Ethernet(rest)),
        _ => None,
    }
}

/// GRE (RFC 2784, 2890), and ERSPAN inside it.
fn gre(b: &[u8]) -> Option<Inner<'_>> {
    const CHECKSUM: u8 = 0x80;
    const ROUTING: u8 = 0x40;
    const KEY: u8 = 0x20;
    const SEQUENCE: u8 = 0x10;
    let (&flags, &version) = (b.first()?, b.get(1)?);
    if flags & ROUTING != 0 || version & 0x07 != 0 {
        return None;
    }
    let ether_type = be16(b, 2)?;
    let optional = [CHECKSUM, KEY, SEQUENCE].iter().filter(|&&f| flags & f != 0).count();
    let rest = b.get(4 + 4 * optional..)?;
    match ether_type {
        // Type I has no ERSPAN header (and no sequence number); type II has both.
        ETHERTYPE_ERSPAN_2 if flags & SEQUENCE == 0 => Some(Inner::Ethernet(rest)),
        ETHERTYPE_ERSPAN_2 => erspan_2(rest),
        ETHERTYPE_ERSPAN_3 => erspan_3(rest),
        other => by_ether_type(other, rest),
    }
}

/// ERSPAN type II: eight bytes, version 1, then the mirrored Ethernet frame.
fn erspan_2(b: &[u8]) -> Option<Inner<'_>> {
    (b.first()? >> 4 == 1).then_some(())?;
    Some(Inner::Ethernet(b.get(8..)?))
}

/// ERSPAN type III: twelve bytes, version 2, an optional eight-byte platform subheader (the
/// O bit), then an Ethernet frame or an IP packet (the frame type).
fn erspan_3(b: &[u8]) -> Option<Inner<'_>> {
    (b.first()? >> 4 == 2).then_some(())?;
    let last = *b.get(11)?;
    let subheader = if last & 0x01 != 0 { 8 } else { 0 };
    let frame_type = (be16(b, 10)? >> 10) & 0x1f;
    let rest = b.get(12 + subheader..)?;
    match frame_type {
        0 => Some(Inner::Ethernet(rest)),
        2 => Some(Inner::Ip(rest)),
        _ => None,
    }
}

/// A UDP datagram to the VXLAN or Geneve port.
fn udp(b: &[u8]) -> Option<Inner<'_>> {
    let rest = b.get(8..)?;
    match be16(b, 2)? {
        VXLAN_PORT | VXLAN_LINUX_PORT => vxlan(rest),
        GENEVE_PORT => geneve(rest),
        _ => None,
    }
}

/// VXLAN: eight bytes with the I flag (a valid network identifier), then Ethernet.
fn vxlan(b: &[u8]) -> Option<Inner<'_>> {
    (b.first()? & 0x08 != 0).then_some(())?;
    Some(Inner::Ethernet(b.get(8..)?))
}

/// Geneve: eight bytes of version 0, options of the stated length, then what the protocol
/// type names.
fn geneve(b: &[u8]) -> Option<Inner<'_>> {
    let first = *b.first()?;
    if first >> 6 != 0 {
        return None;
    }
    let options = usize::from(first & 0x3f) * 4;
    by_ether_type(be16(b, 2)?, b.get(8 + options..)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    const INNER: &[u8] = b"\x45inner";

    fn udp_to(port: u16, body: &[u8]) -> Vec<u8> {
        let mut v = vec![0x30, 0x39];
        v.extend_from_slice(&port.to_be_bytes());
        v.extend_from_slice(&u16::try_from(8 + body.len()).unwrap().to_be_bytes());
        v.extend_from_slice(&[0, 0]);
        v.extend_from_slice(body);
        v
    }

    #[test]
    fn ip_in_ip() {
        assert_eq!(open(4, INNER), Some(Inner::Ip(INNER)));
        assert_eq!(open(41, INNER), Some(Inner::Ip(INNER)));
        assert_eq!(open(6, INNER), None);
    }

    #[test]
    fn gre_with_each_optional_field() {
        assert_eq!(open(47, &[&[0, 0, 0x08, 0x00][..], INNER].concat()), Some(Inner::Ip(INNER)));
        // Checksum, key and sequence number: twelve more bytes.
        let all = [&[0xb0, 0, 0x86, 0xdd][..], &[9; 12], INNER].concat();
        assert_eq!(open(47, &all), Some(Inner::Ip(INNER)));
        let key_only = [&[0x20, 0, 0x65, 0x58][..], &[9; 4], INNER].concat();
        assert_eq!(open(47, &key_only), Some(Inner::Ethernet(INNER)));
        // Cut inside the optional fields.
        assert_eq!(open(47, &all[..10]), None);
    }

    #[test]
    fn gre_not_opened() {
        // Version 1 (PPTP), source routes, unknown payloads, cut headers.
        assert_eq!(open(47, &[&[0x30, 0x01, 0x88, 0x0b][..], &[0; 8], INNER].concat()), None);
        assert_eq!(open(47, &[&[0x40, 0, 0x08, 0x00][..], &[0; 4], INNER].concat()), None);
        assert_eq!(open(47, &[&[0, 0, 0x12, 0x34][..], INNER].concat()), None);
        assert_eq!(open(47, &[0, 0, 0x08]), None);
        assert_eq!(open(47, &[]), None);
    }

    #[test]
    fn erspan_types() {
        // Type I: no sequence number, no ERSPAN header.
        assert_eq!(
            open(47, &[&[0, 0, 0x88, 0xbe][..], INNER].concat()),
            Some(Inner::Ethernet(INNER))
        );
        // Type II: sequence number, then eight bytes of version 1.
        let ii = [&[0x10, 0, 0x88, 0xbe, 0, 0, 0, 7][..], &[0x10, 0x64, 0, 1, 0, 0, 0, 0], INNER];
        assert_eq!(open(47, &ii.concat()), Some(Inner::Ethernet(INNER)));
        let bad_version = [&[0x10, 0, 0x88, 0xbe, 0, 0, 0, 7][..], &[0x20; 8], INNER];
        assert_eq!(open(47, &bad_version.concat()), None);
        // Type III: twelve bytes of version 2, an Ethernet frame or (frame type 2) an IP packet,
        // with the platform subheader when the O bit is set.
        let iii = |ft_o: [u8; 2], sub: &[u8]| {
            [
                &[0x10, 0, 0x22, 0xeb, 0, 0, 0, 7][..],
                &[0x20, 0, 0, 1, 0, 0, 0, 0, 0, 0],
                &ft_o,
                sub,
                INNER,
            ]
            .concat()
        };
        assert_eq!(open(47, &iii([0, 0], &[])), Some(Inner::Ethernet(INNER)));
        assert_eq!(open(47, &iii([0x08, 0], &[])), Some(Inner::Ip(INNER)));
        assert_eq!(open(47, &iii([0, 1], &[0xee; 8])), Some(Inner::Ethernet(INNER)));
        assert_eq!(open(47, &iii([0x04, 0], &[])), None);
        assert_eq!(open(47, &iii([0, 1], &[])[..23]), None);
    }

    #[test]
    fn mpls_and_pppoe() {
        let labels = [0, 0x10, 0x00, 64, 0, 0x20, 0x01, 64];
        assert_eq!(open_link(0x8847, &[&labels[..], INNER].concat()), Some(Inner::Ip(INNER)));
        let v6 = [0x60, 1, 2, 3];
        assert_eq!(open_link(0x8848, &[&labels[4..], &v6].concat()), Some(Inner::Ip(&v6)));
        let pseudowire = [&labels[..], &[0, 0, 0, 5], INNER].concat();
        assert_eq!(open_link(0x8847, &pseudowire), Some(Inner::Ethernet(INNER)));
        // No bottom of stack within the bytes, or within the labels read; an unknown nibble.
        assert_eq!(open_link(0x8847, &labels[..4]), None);
        assert_eq!(open_link(0x8847, &[0u8; 4 * MPLS_MAX_LABELS + 8]), None);
        assert_eq!(open_link(0x8847, &[&labels[4..], &[0x90u8][..]].concat()), None);
        let session =
            |proto: u16| [&[0x11, 0, 0, 7, 0, 10][..], &proto.to_be_bytes(), INNER].concat();
        assert_eq!(open_link(0x8864, &session(0x0021)), Some(Inner::Ip(INNER)));
        assert_eq!(open_link(0x8864, &session(0x0057)), Some(Inner::Ip(INNER)));
        // LCP, a discovery code, a cut header; other ether types.
        assert_eq!(open_link(0x8864, &session(0xc021)), None);
        assert_eq!(open_link(0x8864, &[&[0x11, 0x09][..], &session(0x0021)[2..]].concat()), None);
        assert_eq!(open_link(0x8864, &session(0x0021)[..7]), None);
        assert_eq!(open_link(0x0806, &session(0x0021)), None);
    }

    #[test]
    fn vxlan_and_geneve_by_port() {
        let vxlan = [&[0x08, 0, 0, 0, 0, 0x12, 0x34, 0][..], INNER].concat();
        assert_eq!(open(17, &udp_to(VXLAN_PORT, &vxlan)), Some(Inner::Ethernet(INNER)));
        assert_eq!(open(17, &udp_to(VXLAN_LINUX_PORT, &vxlan)), Some(Inner::Ethernet(INNER)));
        assert_eq!(open(17, &udp_to(53, &vxlan)), None);
        // Without the I flag it is not a VXLAN header.
        let no_vni = [&[0, 0, 0, 0, 0, 0x12, 0x34, 0][..], INNER].concat();
        assert_eq!(open(17, &udp_to(VXLAN_PORT, &no_vni)), None);
        // Geneve: two words of options, then an Ethernet frame; IPv4 without options.
        let with_options = [&[0x02, 0, 0x65, 0x58, 0, 0, 1, 0][..], &[0xaa; 8], INNER].concat();
        assert_eq!(open(17, &udp_to(GENEVE_PORT, &with_options)), Some(Inner::Ethernet(INNER)));
        let ip = [&[0, 0, 0x08, 0x00, 0, 0, 1, 0][..], INNER].concat();
        assert_eq!(open(17, &udp_to(GENEVE_PORT, &ip)), Some(Inner::Ip(INNER)));
        // Version 1, and options longer than the datagram.
        let v1 = [&[0x40, 0, 0x08, 0x00, 0, 0, 1, 0][..], INNER].concat();
        assert_eq!(open(17, &udp_to(GENEVE_PORT, &v1)), None);
        assert_eq!(open(17, &udp_to(GENEVE_PORT, &[0x3f, 0, 0x08, 0, 0, 0, 1, 0])), None);
        assert_eq!(open(17, &[0x12, 0xb5]), None);
    }
}
