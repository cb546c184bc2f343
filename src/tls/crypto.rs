//! Key derivation and record decryption, on the RustCrypto primitives.
//!
//! TLS 1.3 (RFC 8446 7.1, 7.3): write key and IV are `HKDF-Expand-Label(secret, "key"|"iv",
//! "", len)`; a KeyUpdate moves to `HKDF-Expand-Label(secret, "traffic upd", "", Hash.len)`.
//! TLS 1.2 (RFC 5246 5, 6.3): the key block is `PRF(master, "key expansion", server_random +
//! client_random)` with the suite's PRF hash; AEAD suites take no MAC keys from it, CBC
//! suites (RFC 5246 6.2.3.2) do, and their MAC is checked before or after decryption
//! depending on encrypt_then_mac (RFC 7366). Only the glue (labels, nonce, padding and
//! additional-data layout) is written here; HKDF, HMAC, SHA-1/SHA-2, AES-GCM, AES-CBC and
//! ChaCha20-Poly1305 are the RustCrypto crates.

use aes::cipher::block_padding::NoPadding;
use aes::cipher::{BlockDecryptMut, KeyIvInit};
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes128Gcm, Aes256Gcm, Nonce};
use chacha20poly1305::ChaCha20Poly1305;
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::{Sha256, Sha384};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AeadKind {
    Aes128Gcm,
    Aes256Gcm,
    ChaCha20Poly1305,
}

impl AeadKind {
    fn key_len(self) -> usize {
        match self {
            AeadKind::Aes128Gcm => 16,
            AeadKind::Aes256Gcm | AeadKind::ChaCha20Poly1305 => 32,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HashKind {
    Sha256,
    Sha384,
}

impl HashKind {
    pub fn output_len(self) -> usize {
        match self {
            HashKind::Sha256 => 32,
            HashKind::Sha384 => 48,
        }
    }
}

/// The HMAC of a TLS 1.2 CBC suite.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MacKind {
    Sha1,
    Sha256,
    Sha384,
}

impl MacKind {
    fn len(self) -> usize {
        match self {
            MacKind::Sha1 => 20,
            MacKind::Sha256 => 32,
            MacKind::Sha384 => 48,
        }
    }
}

/// How a suite protects records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protection {
    Aead(AeadKind),
    /// AES-CBC with HMAC (TLS 1.2 only), `key_len` 16 or 32.
    Cbc {
        key_len: usize,
        mac: MacKind,
    },
}

impl Protection {
    fn key_len(self) -> usize {
        match self {
            Protection::Aead(a) => a.key_len(),
            Protection::Cbc { key_len, .. } => key_len,
        }
    }
}

/// A cipher suite this module decrypts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Suite {
    pub id: u16,
    pub protection: Protection,
    pub hash: HashKind,
    pub tls13: bool,
}

/// The suites we decrypt, by IANA number; `None` for the rest (CCM, 3DES, export...).
pub fn suite(id: u16) -> Option<Suite> {
    use HashKind::*;
    let cbc = |key_len, mac| Protection::Cbc { key_len, mac };
    let (protection, hash) = match id {
        // TLS 1.2 AES-CBC (RFC 5246 A.5, RFC 4492, RFC 5289): RSA, DHE_RSA, ECDHE_ECDSA,
        // ECDHE_RSA; the PRF is SHA-256 except for the SHA-384 suites.
        0x002f | 0x0033 | 0xc009 | 0xc013 => (cbc(16, MacKind::Sha1), Sha256),
        0x0035 | 0x0039 | 0xc00a | 0xc014 => (cbc(32, MacKind::Sha1), Sha256),
        0x003c | 0x0067 | 0xc023 | 0xc027 => (cbc(16, MacKind::Sha256), Sha256),
        0x003d | 0x006b => (cbc(32, MacKind::Sha256), Sha256),
        0xc024 | 0xc028 => (cbc(32, MacKind::Sha384), Sha384),
        _ => {
            let (aead, hash, tls13) = aead_suite(id)?;
            return Some(Suite { id, protection: Protection::Aead(aead), hash, tls13 });
        }
    };
    Some(Suite { id, protection, hash, tls13: false })
}

fn aead_suite(id: u16) -> Option<(AeadKind, HashKind, bool)> {
    use AeadKind::*;
    use HashKind::*;
    Some(match id {
        0x1301 => (Aes128Gcm, Sha256, true),
        0x1302 => (Aes256Gcm, Sha384, true),
        0x1303 => (ChaCha20Poly1305, Sha256, true),
        // TLS 1.2 AES-GCM (RFC 5288, 5289): RSA, DHE_RSA, ECDHE_ECDSA, ECDHE_RSA.
        0x009c | 0x009e | 0xc02b | 0xc02f => (Aes128Gcm, Sha256, false),
        0x009d | 0x009f | 0xc02c | 0xc030 => (Aes256Gcm, Sha384, false),
        // TLS 1.2 ChaCha20-Poly1305 (RFC 7905): ECDHE_RSA, ECDHE_ECDSA, DHE_RSA.
        0xcca8..=0xccaa => (ChaCha20Poly1305, Sha256, false),
        _ => return None,
    })
}

/// RFC 8446 7.1 `HKDF-Expand-Label(Secret, Label, Context, Length)`.
pub fn hkdf_expand_label(
    hash: HashKind,
    secret: &[u8],
    label: &str,
    context: &[u8],
    len: usize,
) -> Option<Vec<u8>> {
    let full = format!("tls13 {label}");
    let mut info = Vec::with_capacity(4 + full.len() + context.len());
    info.extend_from_slice(&u16::try_from(len).ok()?.to_be_bytes());
    info.push(u8::try_from(full.len()).ok()?);
    info.extend_from_slice(full.as_bytes());
    info.push(u8::try_from(context.len()).ok()?);
    info.extend_from_slice(context);
    let mut out = vec![0; len];
    match hash {
        HashKind::Sha256 => Hkdf::<Sha256>::from_prk(secret).ok()?.expand(&info, &mut out).ok()?,
        HashKind::Sha384 => Hkdf::<Sha384>::from_prk(secret).ok()?.expand(&info, &mut out).ok()?,
    }
    Some(out)
}

/// A direction's write key and IV (the whole 12-byte IV in TLS 1.3 and for TLS 1.2
/// ChaCha20; the 4-byte salt for TLS 1.2 GCM; unused for TLS 1.2 CBC, whose records carry
/// their IV) and, for CBC suites, MAC key.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Keys {
    pub key: Vec<u8>,
    pub iv: Vec<u8>,
    pub mac: Vec<u8>,
}

/// TLS 1.3 traffic keys from a traffic secret.
pub fn tls13_keys(suite: Suite, secret: &[u8]) -> Option<Keys> {
    Some(Keys {
        mac: Vec::new(),
        key: hkdf_expand_label(suite.hash, secret, "key", &[], suite.protection.key_len())?,
        iv: hkdf_expand_label(suite.hash, secret, "iv", &[], 12)?,
    })
}

/// RFC 8446 7.2: the traffic secret after a KeyUpdate.
pub fn tls13_next_secret(suite: Suite, secret: &[u8]) -> Option<Vec<u8>> {
    hkdf_expand_label(suite.hash, secret, "traffic upd", &[], suite.hash.output_len())
}

/// RFC 5246 5: `P_hash(secret, seed)`, `out.len()` bytes.
fn p_hash<M: Mac + KeyInit + Clone>(secret: &[u8], seed: &[u8], out: &mut [u8]) -> Option<()> {
    let mac = <M as Mac>::new_from_slice(secret).ok()?;
    let mut a = {
        let mut m = mac.clone();
        m.update(seed);
        m.finalize().into_bytes()
    };
    let mut filled = 0;
    while filled < out.len() {
        let mut m = mac.clone();
        m.update(&a);
        m.update(seed);
        let block = m.finalize().into_bytes();
        let n = block.len().min(out.len() - filled);
        out.get_mut(filled..filled + n)?.copy_from_slice(block.get(..n)?);
        filled += n;
        let mut m = mac.clone();
        m.update(&a);
        a = m.finalize().into_bytes();
    }
    Some(())
}

/// RFC 5246 5: `PRF(secret, label, seed)` with the suite's hash.
pub fn tls12_prf(
    hash: HashKind,
    secret: &[u8],
    label: &[u8],
    seed: &[u8],
    len: usize,
) -> Option<Vec<u8>> {
    let mut full = label.to_vec();
    full.extend_from_slice(seed);
    let mut out = vec![0; len];
    match hash {
        HashKind::Sha256 => p_hash::<Hmac<Sha256>>(secret, &full, &mut out)?,
        HashKind::Sha384 => p_hash::<Hmac<Sha384>>(secret, &full, &mut out)?,
    }
    Some(out)
}

/// TLS 1.2 keys of (client, server) from the master secret (RFC 5246 6.3, RFC 5288 3,
/// RFC 7905 2): MAC keys, then write keys, then IVs.
pub fn tls12_keys(
    suite: Suite,
    master: &[u8],
    client_random: &[u8; 32],
    server_random: &[u8; 32],
) -> Option<(Keys, Keys)> {
    let key_len = suite.protection.key_len();
    let (mac_len, iv_len) = match suite.protection {
        Protection::Aead(AeadKind::ChaCha20Poly1305) => (0, 12),
        Protection::Aead(_) => (0, 4),
        Protection::Cbc { mac, .. } => (mac.len(), 16),
    };
    let mut seed = server_random.to_vec();
    seed.extend_from_slice(client_random);
    let total = 2 * (mac_len + key_len + iv_len);
    let block = tls12_prf(suite.hash, master, b"key expansion", &seed, total)?;
    let mut at = 0;
    let mut take = |n: usize| -> Option<Vec<u8>> {
        let part = block.get(at..at + n)?.to_vec();
        at += n;
        Some(part)
    };
    let (client_mac, server_mac) = (take(mac_len)?, take(mac_len)?);
    let (client_key, server_key) = (take(key_len)?, take(key_len)?);
    let (client_iv, server_iv) = (take(iv_len)?, take(iv_len)?);
    Some((
        Keys { key: client_key, iv: client_iv, mac: client_mac },
        Keys { key: server_key, iv: server_iv, mac: server_mac },
    ))
}

enum Cipher {
    Aes128(Box<Aes128Gcm>),
    Aes256(Box<Aes256Gcm>),
    ChaCha(Box<ChaCha20Poly1305>),
    /// TLS 1.2 AES-CBC: the key, the MAC and its key, and whether encrypt_then_mac is on.
    Cbc {
        key: Vec<u8>,
        mac: MacKind,
        mac_key: Vec<u8>,
        etm: bool,
    },
}

impl Cipher {
    fn new(aead: AeadKind, key: &[u8]) -> Option<Cipher> {
        Some(match aead {
            AeadKind::Aes128Gcm => Cipher::Aes128(Box::new(Aes128Gcm::new_from_slice(key).ok()?)),
            AeadKind::Aes256Gcm => Cipher::Aes256(Box::new(Aes256Gcm::new_from_slice(key).ok()?)),
            AeadKind::ChaCha20Poly1305 => {
                Cipher::ChaCha(Box::new(ChaCha20Poly1305::new_from_slice(key).ok()?))
            }
        })
    }

    fn open(&self, nonce: &[u8; 12], msg: &[u8], aad: &[u8]) -> Option<Vec<u8>> {
        let nonce = Nonce::from_slice(nonce);
        let payload = Payload { msg, aad };
        match self {
            Cipher::Aes128(c) => c.decrypt(nonce, payload).ok(),
            Cipher::Aes256(c) => c.decrypt(nonce, payload).ok(),
            Cipher::ChaCha(c) => c.decrypt(nonce, payload).ok(),
            Cipher::Cbc { .. } => None,
        }
    }
}

fn hmac_ok(kind: MacKind, key: &[u8], parts: &[&[u8]], tag: &[u8]) -> bool {
    fn check<M: Mac + KeyInit>(key: &[u8], parts: &[&[u8]], tag: &[u8]) -> bool {
        let Ok(mut m) = <M as Mac>::new_from_slice(key) else { return false };
        for p in parts {
            m.update(p);
        }
        m.verify_slice(tag).is_ok()
    }
    match kind {
        MacKind::Sha1 => check::<Hmac<Sha1>>(key, parts, tag),
        MacKind::Sha256 => check::<Hmac<Sha256>>(key, parts, tag),
        MacKind::Sha384 => check::<Hmac<Sha384>>(key, parts, tag),
    }
}

fn cbc_decrypt(key: &[u8], iv: &[u8], ct: &[u8]) -> Option<Vec<u8>> {
    let mut buf = ct.to_vec();
    let n = match key.len() {
        16 => cbc::Decryptor::<aes::Aes128>::new_from_slices(key, iv)
            .ok()?
            .decrypt_padded_mut::<NoPadding>(&mut buf)
            .ok()?
            .len(),
        32 => cbc::Decryptor::<aes::Aes256>::new_from_slices(key, iv)
            .ok()?
            .decrypt_padded_mut::<NoPadding>(&mut buf)
            .ok()?
            .len(),
        _ => return None,
    };
    buf.truncate(n);
    Some(buf)
}

/// RFC 5246 6.2.3.2 (and RFC 7366 3 with encrypt_then_mac): a CBC record is IV (16) ||
/// ciphertext, with the MAC inside the encryption before the padding, or after the
/// ciphertext.
fn open_cbc(
    key: &[u8],
    mac: MacKind,
    mac_key: &[u8],
    etm: bool,
    seq: &[u8; 8],
    header: [u8; 5],
    body: &[u8],
) -> Result<Vec<u8>, OpenError> {
    let mac_len = mac.len();
    let pseudo = |len: usize| -> Option<[u8; 13]> {
        let len = u16::try_from(len).ok()?.to_be_bytes();
        let mut h = [0u8; 13];
        h[..8].copy_from_slice(seq);
        h[8..11].copy_from_slice(&header[..3]);
        h[11..].copy_from_slice(&len);
        Some(h)
    };
    let (iv_ct, tag) = if etm {
        let cut = body.len().checked_sub(mac_len).ok_or(OpenError::TooShort)?;
        let (iv_ct, tag) = body.split_at(cut);
        let h = pseudo(iv_ct.len()).ok_or(OpenError::TooShort)?;
        if !hmac_ok(mac, mac_key, &[&h, iv_ct], tag) {
            return Err(OpenError::BadTag);
        }
        (iv_ct, None)
    } else {
        (body, Some(()))
    };
    let iv = iv_ct.get(..16).ok_or(OpenError::TooShort)?;
    let ct = iv_ct.get(16..).ok_or(OpenError::TooShort)?;
    if ct.is_empty() || ct.len() % 16 != 0 {
        return Err(OpenError::TooShort);
    }
    let mut plain = cbc_decrypt(key, iv, ct).ok_or(OpenError::BadTag)?;
    // Padding: `pad` bytes of value `pad`, then `pad` itself.
    let pad = usize::from(*plain.last().ok_or(OpenError::BadTag)?);
    let keep = plain.len().checked_sub(pad + 1).ok_or(OpenError::BadTag)?;
    if plain.get(keep..).is_none_or(|p| p.iter().any(|&b| usize::from(b) != pad)) {
        return Err(OpenError::BadTag);
    }
    plain.truncate(keep);
    if tag.is_some() {
        let cut = plain.len().checked_sub(mac_len).ok_or(OpenError::BadTag)?;
        let h = pseudo(cut).ok_or(OpenError::BadTag)?;
        let (content, tag) = plain.split_at(cut);
        if !hmac_ok(mac, mac_key, &[&h, content], tag) {
            return Err(OpenError::BadTag);
        }
        plain.truncate(cut);
    }
    Ok(plain)
}

/// Why a record did not decrypt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpenError {
    /// Shorter than its explicit nonce and tag.
    TooShort,
    /// The tag did not verify: wrong key, or records lost or out of step.
    BadTag,
}

/// One direction's record protection for one epoch, with its sequence number.
pub struct Decryptor {
    cipher: Cipher,
    iv: Vec<u8>,
    seq: u64,
    tls13: bool,
    explicit_nonce: bool,
}

const TAG_LEN: usize = 16;

impl Decryptor {
    /// `etm`: encrypt_then_mac was negotiated (RFC 7366; CBC suites only).
    pub fn new(suite: Suite, keys: &Keys, etm: bool) -> Option<Decryptor> {
        let cipher = match suite.protection {
            Protection::Aead(a) => Cipher::new(a, &keys.key)?,
            Protection::Cbc { key_len, mac } => {
                if keys.key.len() != key_len || keys.mac.len() != mac.len() {
                    return None;
                }
                Cipher::Cbc { key: keys.key.clone(), mac, mac_key: keys.mac.clone(), etm }
            }
        };
        Some(Decryptor {
            cipher,
            iv: keys.iv.clone(),
            seq: 0,
            tls13: suite.tls13,
            explicit_nonce: !suite.tls13
                && suite.protection != Protection::Aead(AeadKind::ChaCha20Poly1305),
        })
    }

    /// Records opened so far in this epoch.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// Whether a record opens when taken to have sequence number `seq` (records were lost);
    /// the next sequence number is left as it was.
    pub fn opens_at(&mut self, seq: u64, header: [u8; 5], body: &[u8]) -> bool {
        let before = self.seq;
        self.seq = seq;
        let opened = self.open(header, body).is_ok();
        self.seq = before;
        opened
    }

    /// The next record opened has sequence number `seq`.
    pub fn set_seq(&mut self, seq: u64) {
        self.seq = seq;
    }

    /// Decrypts one record (`header` is its 5-byte header). TLS 1.3 returns the inner
    /// plaintext with its content type and padding still on.
    pub fn open(&mut self, header: [u8; 5], body: &[u8]) -> Result<Vec<u8>, OpenError> {
        let seq = self.seq.to_be_bytes();
        if let Cipher::Cbc { key, mac, mac_key, etm } = &self.cipher {
            let plain = open_cbc(key, *mac, mac_key, *etm, &seq, header, body)?;
            self.seq = self.seq.wrapping_add(1);
            return Ok(plain);
        }
        let mut nonce = [0u8; 12];
        let (ciphertext, aad) = if self.explicit_nonce {
            // RFC 5288 3: nonce = salt (4) || explicit part (8, sent before the ciphertext).
            let explicit = body.get(..8).ok_or(OpenError::TooShort)?;
            let ct = body.get(8..).ok_or(OpenError::TooShort)?;
            nonce[..4].copy_from_slice(self.iv.get(..4).ok_or(OpenError::TooShort)?);
            nonce[4..].copy_from_slice(explicit);
            (ct, tls12_aad(&seq, header, ct.len()).ok_or(OpenError::TooShort)?)
        } else {
            // RFC 8446 5.3, RFC 7905 2: nonce = IV xor the 64-bit sequence number, left-padded.
            for (i, n) in nonce.iter_mut().enumerate() {
                let pad = if i >= 4 { seq[i - 4] } else { 0 };
                *n = self.iv.get(i).copied().unwrap_or(0) ^ pad;
            }
            let aad = if self.tls13 {
                // RFC 8446 5.2: the additional data is the record header.
                header.to_vec()
            } else {
                tls12_aad(&seq, header, body.len()).ok_or(OpenError::TooShort)?
            };
            (body, aad)
        };
        if ciphertext.len() < TAG_LEN {
            return Err(OpenError::TooShort);
        }
        let plain = self.cipher.open(&nonce, ciphertext, &aad).ok_or(OpenError::BadTag)?;
        self.seq = self.seq.wrapping_add(1);
        Ok(plain)
    }
}

/// RFC 5246 6.2.3.3: `seq_num + type + version + length` (of the plaintext).
fn tls12_aad(seq: &[u8; 8], header: [u8; 5], ciphertext_len: usize) -> Option<Vec<u8>> {
    let plain_len = u16::try_from(ciphertext_len.checked_sub(TAG_LEN)?).ok()?;
    let mut aad = seq.to_vec();
    aad.extend_from_slice(&header[..3]);
    aad.extend_from_slice(&plain_len.to_be_bytes());
    Some(aad)
}

/// Seals a TLS 1.3 record (outer type application_data), for tests of the opening side.
#[cfg(test)]
pub(crate) fn seal13(suite: Suite, keys: &Keys, seq: u64, inner: &[u8]) -> Vec<u8> {
    let len = (inner.len() + TAG_LEN) as u16;
    let header = [23, 3, 3, (len >> 8) as u8, len as u8];
    let mut nonce = [0u8; 12];
    nonce.copy_from_slice(&keys.iv);
    for (i, b) in seq.to_be_bytes().iter().enumerate() {
        nonce[4 + i] ^= b;
    }
    let Protection::Aead(aead) = suite.protection else { panic!("AEAD suites only") };
    let c = Cipher::new(aead, &keys.key).unwrap();
    let ct = match c {
        Cipher::Aes128(c) => {
            c.encrypt(Nonce::from_slice(&nonce), Payload { msg: inner, aad: &header })
        }
        Cipher::Aes256(c) => {
            c.encrypt(Nonce::from_slice(&nonce), Payload { msg: inner, aad: &header })
        }
        Cipher::ChaCha(c) => {
            c.encrypt(Nonce::from_slice(&nonce), Payload { msg: inner, aad: &header })
        }
        Cipher::Cbc { .. } => unreachable!("AEAD suites only"),
    }
    .unwrap();
    let mut rec = header.to_vec();
    rec.extend(ct);
    rec
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    /// RFC 8448 ("Example Handshake Traces for TLS 1.3") section 3, simple 1-RTT handshake,
    /// TLS_AES_128_GCM_SHA256: the traffic secrets and the write keys and IVs the trace
    /// derives from them ("derive write traffic keys for handshake/application data").
    #[test]
    fn rfc8448_simple_1rtt_traffic_keys() {
        let suite = suite(0x1301).unwrap();
        let cases = [
            // {server} server_handshake_traffic_secret
            (
                "b67b7d690cc16c4e75e54213cb2d37b4e9c912bcded9105d42befd59d391ad38",
                "3fce516009c21727d0f2e4e86ee403bc",
                "5d313eb2671276ee13000b30",
            ),
            // {client} client_handshake_traffic_secret
            (
                "b3eddb126e067f35a780b3abf45e2d8f3b1a950738f52e9600746a0e27a55a21",
                "dbfaa693d1762c5b666af5d950258d01",
                "5bd3c71b836e0b76bb73265f",
            ),
            // {server} server_application_traffic_secret_0
            (
                "a11af9f05531f856ad47116b45a950328204b4f44bfb6b3a4b4f1f3fcb631643",
                "9f02283b6c9c07efc26bb9f2ac92e356",
                "cf782b88dd83549aadf1e984",
            ),
            // {client} client_application_traffic_secret_0
            (
                "9e40646ce79a7f9dc05af8889bce6552875afa0b06df0087f792ebb7c17504a5",
                "17422dda596ed5d9acd890e3c63f5051",
                "5b78923dee08579033e523d9",
            ),
        ];
        for (secret, key, iv) in cases {
            let keys = tls13_keys(suite, &h(secret)).unwrap();
            assert_eq!(keys.key, h(key), "key from {secret}");
            assert_eq!(keys.iv, h(iv), "iv from {secret}");
        }
    }

    /// The TLS 1.2 P_SHA256 vector posted to the IETF TLS WG list
    /// (https://www.ietf.org/mail-archive/web/tls/current/msg03416.html), also in BearSSL's
    /// test_crypto.c.
    #[test]
    fn tls12_prf_sha256_vector() {
        let out = tls12_prf(
            HashKind::Sha256,
            &h("9bbe436ba940f017b17652849a71db35"),
            b"test label",
            &h("a0ba9f936cda311827a6f796ffd5198c"),
            100,
        )
        .unwrap();
        assert_eq!(
            out,
            h("e3f229ba727be17b8d122620557cd453c2aab21d07c3d495329b52d4e61edb5a\
               6b301791e90d35c9c9a46b4e14baf9af0fa022f7077def17abfd3797c0564bab\
               4fbc91666e9def9b97fce34f796789baa48082d122ee42c5a72e5a5110fff701\
               87347b66")
        );
    }

    /// The same source's P_SHA384 vector (BearSSL test_crypto.c).
    #[test]
    fn tls12_prf_sha384_vector() {
        let out = tls12_prf(
            HashKind::Sha384,
            &h("b80b733d6ceefcdc71566ea48e5567df"),
            b"test label",
            &h("cd665cf6a8447dd6ff8b27555edb7465"),
            16,
        )
        .unwrap();
        assert_eq!(out, h("7b0c18e9ced410ed1804f2cfa34a336a"));
    }

    #[test]
    fn tls13_records_open_in_sequence_and_reject_tampering() {
        for id in [0x1301, 0x1302, 0x1303] {
            let s = suite(id).unwrap();
            let keys = tls13_keys(s, &vec![7; s.hash.output_len()]).unwrap();
            let mut d = Decryptor::new(s, &keys, false).unwrap();
            for seq in 0..3u64 {
                let rec = seal13(s, &keys, seq, b"hello\x17");
                let header: [u8; 5] = rec[..5].try_into().unwrap();
                assert_eq!(d.open(header, &rec[5..]).unwrap(), b"hello\x17");
            }
            let mut rec = seal13(s, &keys, 3, b"x\x17");
            rec[7] ^= 1;
            let header: [u8; 5] = rec[..5].try_into().unwrap();
            assert_eq!(d.open(header, &rec[5..]), Err(OpenError::BadTag));
            assert_eq!(d.open(header, &rec[5..8]), Err(OpenError::TooShort));
            assert_eq!(d.seq(), 3);
        }
    }

    #[test]
    fn cbc_records_of_any_shape_are_errors_not_panics() {
        for (id, etm) in [(0xc023, true), (0xc00a, false), (0xc028, true)] {
            let s = suite(id).unwrap();
            let Protection::Cbc { key_len, mac } = s.protection else { panic!("CBC") };
            let keys = Keys { key: vec![1; key_len], iv: vec![0; 16], mac: vec![2; mac.len()] };
            let mut d = Decryptor::new(s, &keys, etm).unwrap();
            for n in 0..200usize {
                let body: Vec<u8> = (0..n).map(|i| (i * 31 + n) as u8).collect();
                let header = [23, 3, 3, (n >> 8) as u8, n as u8];
                assert!(d.open(header, &body).is_err(), "{id:#x} {n}");
            }
            assert_eq!(d.seq(), 0);
        }
    }

    #[test]
    fn key_update_changes_the_secret() {
        let s = suite(0x1301).unwrap();
        let a = vec![1; 32];
        let b = tls13_next_secret(s, &a).unwrap();
        assert_eq!(b.len(), 32);
        assert_ne!(a, b);
        assert_eq!(b, hkdf_expand_label(HashKind::Sha256, &a, "traffic upd", &[], 32).unwrap());
    }
}
