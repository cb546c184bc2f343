//! Stage 4: the HTTP/1.1 Upgrade handshake that starts a WebSocket connection.

pub mod accept;
pub mod chunked;
pub mod extensions;
pub mod handshake;
pub mod upgrade;
