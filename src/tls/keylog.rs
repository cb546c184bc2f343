//! TLS secrets from an NSS key log (`SSLKEYLOGFILE`, `--keylog`) or from pcapng Decryption
//! Secrets Blocks, which carry the same text (`editcap --inject-secrets tls,…`).
//!
//! The format is one secret per line: `LABEL <client random, 64 hex> <secret, hex>`; lines
//! starting with `#`, unknown labels and malformed lines are skipped (browsers add labels over
//! time, and a key log is often appended to by several programs at once). Secrets are found
//! by the ClientHello's random, so a key log of many connections serves them all.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// pcapng Decryption Secrets Block type of a TLS key log ("TLSK").
pub const DSB_TLS_KEY_LOG: u32 = 0x544c_534b;
pub use crate::limits::MAX_KEYLOG_BYTES;

/// The secrets of one connection, by what the key log line says they are.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Secrets {
    /// TLS 1.2 and earlier: `CLIENT_RANDOM` (48 bytes).
    pub master: Option<Vec<u8>>,
    pub client_handshake: Option<Vec<u8>>,
    pub server_handshake: Option<Vec<u8>>,
    pub client_traffic0: Option<Vec<u8>>,
    pub server_traffic0: Option<Vec<u8>>,
}

/// Secrets by client random.
#[derive(Clone, Debug, Default)]
pub struct KeyLog {
    entries: HashMap<[u8; 32], Secrets>,
    /// A key log file that may still be growing (a live capture next to a browser), with how
    /// far it has been read.
    file: Option<(PathBuf, u64)>,
    read: u64,
    /// Live capture: the key log file is written while packets arrive, so a connection whose
    /// secrets are not (all) there yet waits for them.
    live: bool,
}

impl KeyLog {
    /// Reads a key log file; the file is read again for secrets added later when a
    /// connection's secrets are not found.
    pub fn open(path: &Path) -> io::Result<KeyLog> {
        let mut log = KeyLog { file: Some((path.to_path_buf(), 0)), ..KeyLog::default() };
        log.refresh_file()?;
        Ok(log)
    }

    /// Adds another file (e.g. `SSLKEYLOGFILE` next to `--keylog`), read once.
    pub fn add_file(&mut self, path: &Path) -> io::Result<()> {
        let mut text = Vec::new();
        let room = MAX_KEYLOG_BYTES.saturating_sub(self.read);
        File::open(path)?.take(room).read_to_end(&mut text)?;
        self.read += text.len() as u64;
        self.add_text(&text);
        Ok(())
    }

    /// Marks the key log as written during the run (live capture): see [`KeyLog::may_grow`].
    pub fn set_live(&mut self, live: bool) {
        self.live = live;
    }

    /// Secrets may still be added to the key log file while packets arrive.
    pub fn may_grow(&self) -> bool {
        self.live && self.file.is_some()
    }

    /// The secrets logged for a client random, after reading what was appended to the key
    /// log file since it was last read (for secrets logged one by one during a handshake).
    pub fn find_fresh(&mut self, client_random: &[u8; 32]) -> Option<&Secrets> {
        if self.file.is_some() {
            let _ = self.refresh_file();
        }
        self.entries.get(client_random)
    }

    /// Secrets of a pcapng Decryption Secrets Block; other secret types are ignored.
    pub fn add_dsb(&mut self, secrets_type: u32, data: &[u8]) {
        if secrets_type == DSB_TLS_KEY_LOG {
            self.add_text(data);
        }
    }

    /// Parses key log text; returns how many lines were used.
    pub fn add_text(&mut self, text: &[u8]) -> usize {
        text.split(|&b| b == b'\n').filter(|line| self.add_line(line)).count()
    }

    fn add_line(&mut self, line: &[u8]) -> bool {
        let Ok(line) = std::str::from_utf8(line) else { return false };
        let mut parts = line.split_ascii_whitespace();
        let (Some(label), Some(random), Some(secret)) = (parts.next(), parts.next(), parts.next())
        else {
            return false;
        };
        let (Some(random), Some(secret)) = (unhex(random), unhex(secret)) else { return false };
        let Ok(random) = <[u8; 32]>::try_from(random.as_slice()) else { return false };
        if secret.is_empty() {
            return false;
        }
        let entry = self.entries.entry(random).or_default();
        let slot = match label {
            "CLIENT_RANDOM" => &mut entry.master,
            "CLIENT_HANDSHAKE_TRAFFIC_SECRET" => &mut entry.client_handshake,
            "SERVER_HANDSHAKE_TRAFFIC_SECRET" => &mut entry.server_handshake,
            "CLIENT_TRAFFIC_SECRET_0" => &mut entry.client_traffic0,
            "SERVER_TRAFFIC_SECRET_0" => &mut entry.server_traffic0,
            _ => return false,
        };
        *slot = Some(secret);
        true
    }

    /// The secrets logged for a client random. When none are known yet and the key log is a
    /// file, reads what was appended to it since.
    pub fn find(&mut self, client_random: &[u8; 32]) -> Option<&Secrets> {
        if !self.entries.contains_key(client_random) && self.file.is_some() {
            // A file that vanished or shrank keeps what was read from it.
            let _ = self.refresh_file();
        }
        self.entries.get(client_random)
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    fn refresh_file(&mut self) -> io::Result<()> {
        let Some((path, offset)) = self.file.clone() else { return Ok(()) };
        let mut f = File::open(&path)?;
        let len = f.metadata()?.len();
        if len <= offset {
            return Ok(());
        }
        f.seek(SeekFrom::Start(offset))?;
        let room = MAX_KEYLOG_BYTES.saturating_sub(self.read);
        let mut text = Vec::new();
        f.take(room.min(len - offset)).read_to_end(&mut text)?;
        // Only whole lines: a writer may be in the middle of one.
        let whole = text.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        let whole =
            if offset + text.len() as u64 == len && whole == 0 { text.len() } else { whole };
        text.truncate(whole);
        self.read += text.len() as u64;
        self.file = Some((path, offset + text.len() as u64));
        self.add_text(&text);
        Ok(())
    }
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    let b = s.as_bytes();
    (0..b.len())
        .step_by(2)
        .map(|i| {
            let hi = char::from(*b.get(i)?).to_digit(16)?;
            let lo = char::from(*b.get(i + 1)?).to_digit(16)?;
            u8::try_from(hi * 16 + lo).ok()
        })
        .collect()
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_labels_and_skips_junk() {
        let r = "ab".repeat(32);
        let text = format!(
            "# comment\nCLIENT_RANDOM {r} {}\nCLIENT_TRAFFIC_SECRET_0 {r} 0102\n\
             EXPORTER_SECRET {r} 0303\nSERVER_TRAFFIC_SECRET_0 {r} zz\nCLIENT_RANDOM abcd 00\n\
             SERVER_HANDSHAKE_TRAFFIC_SECRET {r} 0a0B\r\n",
            "11".repeat(48)
        );
        let mut log = KeyLog::default();
        assert_eq!(log.add_text(text.as_bytes()), 3);
        let s = log.find(&[0xab; 32]).unwrap();
        assert_eq!(s.master.as_deref(), Some(&[0x11; 48][..]));
        assert_eq!(s.client_traffic0.as_deref(), Some(&[1, 2][..]));
        assert_eq!(s.server_handshake.as_deref(), Some(&[0x0a, 0x0b][..]));
        assert_eq!(s.server_traffic0, None);
        assert!(log.find(&[0; 32]).is_none());
    }

    #[test]
    fn dsb_of_other_types_is_ignored() {
        let line = format!("CLIENT_RANDOM {} {}\n", "01".repeat(32), "02".repeat(48));
        let mut log = KeyLog::default();
        log.add_dsb(0x5353_4857, line.as_bytes());
        assert!(log.is_empty());
        log.add_dsb(DSB_TLS_KEY_LOG, line.as_bytes());
        assert_eq!(log.len(), 1);
    }

    #[test]
    fn a_growing_file_is_read_again_on_a_miss() {
        let dir = std::env::temp_dir().join(format!("wsdissect-keylog-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("keylog.txt");
        std::fs::write(&path, format!("CLIENT_RANDOM {} {}\n", "01".repeat(32), "aa".repeat(48)))
            .unwrap();
        let mut log = KeyLog::open(&path).unwrap();
        assert!(log.find(&[1; 32]).is_some());
        assert!(log.find(&[2; 32]).is_none());
        let mut f = std::fs::OpenOptions::new().append(true).open(&path).unwrap();
        use std::io::Write;
        writeln!(f, "CLIENT_RANDOM {} {}", "02".repeat(32), "bb".repeat(48)).unwrap();
        assert!(log.find(&[2; 32]).is_some());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
