//! Stage 4: the HTTP/1.1 Upgrade handshake that starts a WebSocket connection, and HTTP/2's
//! frames for the extended CONNECT that starts one over HTTP/2 ([`h2`]).

pub mod accept;
pub mod chunked;
pub mod extensions;
pub mod h2;
pub mod handshake;
pub mod upgrade;
