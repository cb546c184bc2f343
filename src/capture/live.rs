//! Live capture through libpcap (feature `live`): packets from a network interface as
//! [`CaptureRecord`]s, like the file reader gives them.
//!
//! The source is opened in immediate mode (each packet is delivered as it arrives) and reads
//! without blocking: when no packet is ready, [`LiveSource::next_packet`] waits on the capture's file
//! descriptor for at most the read timeout and returns [`Next::Idle`], so the caller wakes up
//! regularly even without traffic (to check a deadline or a Ctrl-C flag). libpcap's own read
//! timeout cannot be relied on for that: on Linux (TPACKET_V2/V3) a blocking read waits until a
//! packet arrives, whatever the timeout.

use super::{CaptureRecord, LinkType, Timestamp, TsPrecision};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use pcap::{Active, Capture, Device};
use std::os::fd::{AsFd, OwnedFd};

/// tcpdump's default and maximum snapshot length.
pub const DEFAULT_SNAPLEN: i32 = 262_144;
/// Kernel buffer: large enough that a burst does not drop packets while output is written.
const BUFFER_BYTES: i32 = 8 << 20;

/// How to open a live capture.
#[derive(Clone, Debug)]
pub struct LiveSettings {
    /// Interface name, `any`, or the 1-based number `interfaces()` lists it under.
    pub interface: String,
    /// BPF filter (tcpdump syntax).
    pub filter: Option<String>,
    /// Bytes kept of each packet; `None` or 0 or less for [`DEFAULT_SNAPLEN`].
    pub snaplen: Option<i32>,
    /// How long `next_packet` waits for a packet before returning [`Next::Idle`].
    pub read_timeout_ms: i32,
}

/// Why a live capture could not start or stopped; each message is one line for people.
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    #[error(
        "cannot capture on {interface}: permission denied ({detail}); live capture needs root \
         or CAP_NET_RAW, e.g. `sudo setcap cap_net_raw,cap_net_admin+ep $(which wsdissect)`"
    )]
    Permission { interface: String, detail: String },
    #[error("no interface {interface:?} (available: {})", available.join(", "))]
    NoSuchInterface { interface: String, available: Vec<String> },
    #[error("bad capture filter {filter:?}: {detail}")]
    BadFilter { filter: String, detail: String },
    #[error("cannot capture on {interface}: {detail}")]
    Open { interface: String, detail: String },
    #[error("capture on {interface} failed: {detail}")]
    Read { interface: String, detail: String },
    #[error("cannot list interfaces: {detail}")]
    List { detail: String },
}

/// An interface live capture can use.
#[derive(Clone, Debug)]
pub struct Interface {
    pub name: String,
    pub description: Option<String>,
    pub loopback: bool,
    pub up: bool,
}

/// libpcap's statistics since the capture started (`pcap_stats`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LiveStats {
    /// Packets the kernel passed the filter (on Linux: before drops).
    pub received: u64,
    /// Packets dropped because the buffer was full (we did not read fast enough).
    pub dropped: u64,
    /// Packets dropped by the interface or its driver.
    pub if_dropped: u64,
}

/// What `next_packet` found.
pub enum Next<'a> {
    Packet(CaptureRecord<'a>),
    /// No packet came within the read timeout.
    Idle,
}

/// An open live capture.
pub struct LiveSource {
    cap: Capture<Active>,
    /// A duplicate of the capture's descriptor, to wait on while `cap` is borrowed.
    wait_fd: OwnedFd,
    timeout: PollTimeout,
    interface: String,
    link: LinkType,
}

/// libpcap's message without the crate's `libpcap error: ` prefix.
fn detail(e: &pcap::Error) -> String {
    match e {
        pcap::Error::PcapError(s) if !s.is_empty() => s.clone(),
        other => other.to_string(),
    }
}

fn is_permission(msg: &str) -> bool {
    let m = msg.to_ascii_lowercase();
    ["permission", "not permitted", "cap_net_raw", "eacces", "eperm"].iter().any(|k| m.contains(k))
}

fn is_no_device(msg: &str) -> bool {
    let m = msg.to_ascii_lowercase();
    m.contains("no such device") || m.contains("doesn't exist")
}

/// The interfaces libpcap can capture on, in its order (the numbers `-i N` accepts).
pub fn interfaces() -> Result<Vec<Interface>, LiveError> {
    let list = Device::list().map_err(|e| LiveError::List { detail: detail(&e) })?;
    Ok(list
        .into_iter()
        .map(|d| Interface {
            loopback: d.flags.is_loopback(),
            up: d.flags.is_up(),
            name: d.name,
            description: d.desc,
        })
        .collect())
}

/// The interface to open: the name as given when libpcap lists it (or cannot list), else
/// the N-th listed for a number N, else an error naming the available ones.
fn resolve(name: &str) -> Result<String, LiveError> {
    let Ok(list) = interfaces() else { return Ok(name.to_string()) };
    if name == "any" || list.iter().any(|i| i.name == name) {
        return Ok(name.to_string());
    }
    if let Ok(n) = name.parse::<usize>() {
        if let Some(i) = n.checked_sub(1).and_then(|k| list.get(k)) {
            return Ok(i.name.clone());
        }
    }
    Err(LiveError::NoSuchInterface {
        interface: name.to_string(),
        available: list.into_iter().map(|i| i.name).collect(),
    })
}

impl LiveSource {
    /// Opens the interface, applies the filter; packets are captured from here on.
    pub fn open(s: &LiveSettings) -> Result<LiveSource, LiveError> {
        let interface = resolve(&s.interface)?;
        let open_err = |e: pcap::Error| {
            let detail = detail(&e);
            if is_permission(&detail) {
                LiveError::Permission { interface: interface.clone(), detail }
            } else if is_no_device(&detail) {
                LiveError::NoSuchInterface {
                    interface: interface.clone(),
                    available: interfaces()
                        .map(|l| l.into_iter().map(|i| i.name).collect())
                        .unwrap_or_default(),
                }
            } else {
                LiveError::Open { interface: interface.clone(), detail }
            }
        };
        let snaplen = s.snaplen.filter(|&n| n > 0).unwrap_or(DEFAULT_SNAPLEN);
        let mut cap = Capture::from_device(interface.as_str())
            .map_err(open_err)?
            .snaplen(snaplen)
            .promisc(false)
            .immediate_mode(true)
            .timeout(s.read_timeout_ms.max(1))
            .buffer_size(BUFFER_BYTES)
            .open()
            .map_err(open_err)?
            .setnonblock()
            .map_err(open_err)?;
        if let Some(filter) = &s.filter {
            cap.filter(filter, true)
                .map_err(|e| LiveError::BadFilter { filter: filter.clone(), detail: detail(&e) })?;
        }
        let link = LinkType::from_dlt(cap.get_datalink().0 as u32);
        let wait_fd = cap.as_fd().try_clone_to_owned().map_err(|e| LiveError::Open {
            interface: interface.clone(),
            detail: format!("cannot wait for packets: {e}"),
        })?;
        let timeout = PollTimeout::try_from(s.read_timeout_ms.max(1)).unwrap_or(PollTimeout::MAX);
        Ok(LiveSource { cap, wait_fd, timeout, interface, link })
    }

    /// The interface actually opened (a number given to `open` is resolved to its name).
    pub fn interface(&self) -> &str {
        &self.interface
    }

    pub fn link(&self) -> LinkType {
        self.link
    }

    /// The link type's libpcap name (`EN10MB`, `LINUX_SLL2`, ...).
    pub fn link_name(&self) -> String {
        self.cap.get_datalink().get_name().unwrap_or_else(|_| format!("DLT {}", self.link.0))
    }

    /// The next packet, or `Idle` when none came within the read timeout.
    pub fn next_packet(&mut self) -> Result<Next<'_>, LiveError> {
        match self.cap.next_packet() {
            Ok(p) => {
                let h = p.header;
                // time_t and suseconds_t are i64 on 64-bit Linux but not everywhere.
                #[allow(clippy::unnecessary_cast)]
                let (secs, usec) = (h.ts.tv_sec as i64, h.ts.tv_usec as i64);
                let caplen = p.data.len() as u32;
                Ok(Next::Packet(CaptureRecord {
                    ts: Timestamp::new(secs, (usec.clamp(0, 999_999) as u32) * 1000),
                    precision: TsPrecision::Micro,
                    link: self.link,
                    interface: 0,
                    origlen: h.len.max(caplen),
                    data: p.data,
                }))
            }
            // Nothing ready (non-blocking mode): wait for the descriptor, at most the timeout.
            // A signal interrupting the wait is an idle turn too.
            Err(pcap::Error::TimeoutExpired) => {
                let mut fds = [PollFd::new(self.wait_fd.as_fd(), PollFlags::POLLIN)];
                match poll(&mut fds, self.timeout) {
                    Ok(_) | Err(nix::errno::Errno::EINTR) => Ok(Next::Idle),
                    Err(e) => Err(LiveError::Read {
                        interface: self.interface.clone(),
                        detail: format!("waiting for packets: {e}"),
                    }),
                }
            }
            Err(e) => {
                Err(LiveError::Read { interface: self.interface.clone(), detail: detail(&e) })
            }
        }
    }

    /// libpcap's counters since `open`, if the platform gives them.
    pub fn stats(&mut self) -> Option<LiveStats> {
        let s = self.cap.stats().ok()?;
        Some(LiveStats {
            received: u64::from(s.received),
            dropped: u64::from(s.dropped),
            if_dropped: u64::from(s.if_dropped),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_lines() {
        assert!(is_permission("socket: Operation not permitted"));
        assert!(is_permission("You don't have permission to perform this capture on that device"));
        assert!(!is_permission("SIOCGIFHWADDR: No such device"));
        assert!(is_no_device("SIOCGIFHWADDR: No such device"));
        let e = LiveError::NoSuchInterface {
            interface: "nope0".into(),
            available: vec!["lo".into(), "any".into()],
        };
        assert_eq!(e.to_string(), "no interface \"nope0\" (available: lo, any)");
        let e = LiveError::Permission { interface: "lo".into(), detail: "x".into() };
        assert!(e.to_string().contains("CAP_NET_RAW") && !e.to_string().contains('\n'));
    }
}
