//! Stages 5 and 6: WebSocket frames (RFC 6455) and their building blocks for messages
//! (RFC 7692 permessage-deflate, streaming UTF-8).

pub mod decoder;
pub mod deflate;
pub mod frame;
pub mod mask;
pub mod opcode;
pub mod sniff;
pub mod utf8;
