//! wsdissect: a WebSocket dissector for packet captures.
//!
//! The pipeline, one module per stage, data flowing one way:
//!
//! ```text
//! capture  (pcap/pcapng/gzip/stdin)  → CaptureRecord
//! decode   (link, IP, TCP)           → TcpSegment
//! tcp      (connections, reassembly) → TcpEvent (data in order, gaps, lifecycle)
//! tls      (wss://, by content)      → decrypted TcpEvent data with a key log; tls records
//! session  (per connection)
//!   ├ http   upgrade handshake       → request/handshake records
//!   ├ ws     frames, messages        → frame/message records
//!   └ app    Socket.IO, MQTT, STOMP, GraphQL inside messages → `app` objects
//! dissector (capture-order output)   → Event
//! sink     (table, JSON Lines)       → bytes
//! ```
//!
//! With `-j N` ([`dissector::run_sharded`]) the stages up to `tcp` run on a reader thread, the
//! stages from `tls` to `app` on N threads (connections sharded by host pair), and the
//! capture-order output and sink on the calling thread; the output is the same.
//!
//! Invariants: no input makes a stage panic; every limit is in [`limits::Limits`] and hitting
//! one emits a problem record; every stream byte is decoded, or counted as a gap, skipped or
//! non-WebSocket (or TLS overhead) in the `end` record; output is deterministic for a given input.
#![forbid(unsafe_code)]

pub mod app;
pub mod capture;
pub mod cli;
pub mod decode;
pub mod dissector;
pub mod event;
pub mod http;
pub mod limits;
pub mod problem;
pub mod session;
pub mod sink;
pub mod tcp;
pub mod tls;
pub mod ws;
