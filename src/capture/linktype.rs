//! Link-layer header types (tcpdump.org LINKTYPE_ values).

/// A LINKTYPE_ value as stored in pcap headers and pcapng interface descriptions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LinkType(pub u32);

impl LinkType {
    pub const NULL: LinkType = LinkType(0);
    pub const ETHERNET: LinkType = LinkType(1);
    pub const PPP: LinkType = LinkType(9);
    pub const PPP_HDLC: LinkType = LinkType(50);
    pub const C_HDLC: LinkType = LinkType(104);
    pub const RAW: LinkType = LinkType(101);
    pub const LOOP: LinkType = LinkType(108);
    pub const LINUX_SLL: LinkType = LinkType(113);
    pub const IPV4: LinkType = LinkType(228);
    pub const IPV6: LinkType = LinkType(229);
    pub const NFLOG: LinkType = LinkType(239);
    pub const PKTAP: LinkType = LinkType(258);
    pub const LINUX_SLL2: LinkType = LinkType(276);

    /// The LINKTYPE_ of a DLT_ value, as libpcap reports it live and Apple's PKTAP header
    /// names its packet's: the same numbers but for the few that files spell otherwise, raw
    /// IP (DLT 12, 14 on OpenBSD: Linux tun and WireGuard interfaces) and Apple's PKTAP (DLT
    /// 149 on macOS, `-i any`).
    pub fn from_dlt(dlt: u32) -> LinkType {
        match dlt {
            12 | 14 => LinkType::RAW,
            149 if cfg!(target_os = "macos") => LinkType::PKTAP,
            n => LinkType(n),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dlts_become_the_link_types_files_use() {
        // A tun or WireGuard interface reports DLT_RAW (12), which decodes as LINKTYPE_RAW.
        assert_eq!(LinkType::from_dlt(12), LinkType::RAW);
        assert_eq!(LinkType::from_dlt(14), LinkType::RAW);
        assert_eq!(LinkType::from_dlt(1), LinkType::ETHERNET);
        assert_eq!(LinkType::from_dlt(113), LinkType::LINUX_SLL);
    }
}
