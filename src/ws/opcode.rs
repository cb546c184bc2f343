//! Opcodes and close codes (RFC 6455 §5.2, §7.4), with total conversions from wire values.

/// A frame opcode; every 4-bit value converts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OpCode {
    Continuation,
    Text,
    Binary,
    Close,
    Ping,
    Pong,
    /// 3–7 and 0xB–0xF.
    Reserved(u8),
}

impl From<u8> for OpCode {
    fn from(v: u8) -> OpCode {
        match v & 0x0f {
            0 => OpCode::Continuation,
            1 => OpCode::Text,
            2 => OpCode::Binary,
            8 => OpCode::Close,
            9 => OpCode::Ping,
            10 => OpCode::Pong,
            other => OpCode::Reserved(other),
        }
    }
}

impl OpCode {
    pub fn as_u8(self) -> u8 {
        match self {
            OpCode::Continuation => 0,
            OpCode::Text => 1,
            OpCode::Binary => 2,
            OpCode::Close => 8,
            OpCode::Ping => 9,
            OpCode::Pong => 10,
            OpCode::Reserved(v) => v,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            OpCode::Continuation => "continuation",
            OpCode::Text => "text",
            OpCode::Binary => "binary",
            OpCode::Close => "close",
            OpCode::Ping => "ping",
            OpCode::Pong => "pong",
            OpCode::Reserved(_) => "reserved",
        }
    }

    /// "Control frames are identified by opcodes where the most significant bit of the opcode
    /// is 1" (RFC 6455 §5.5).
    pub fn is_control(self) -> bool {
        self.as_u8() & 0x08 != 0
    }
}

/// The opcode a user names on the command line: a name (`text`, `ping`…) or a number 0–15.
pub fn opcode_from_name(name: &str) -> Option<u8> {
    let v = match name.to_ascii_lowercase().as_str() {
        "continuation" | "cont" => 0,
        "text" => 1,
        "binary" => 2,
        "close" => 8,
        "ping" => 9,
        "pong" => 10,
        other => other.parse::<u8>().ok().filter(|v| *v <= 15)?,
    };
    Some(v)
}

/// Whether an endpoint may send this close code (RFC 6455 §7.4.1, §7.4.2; IANA registry).
/// 1005, 1006 and 1015 are reserved for reporting and "MUST NOT be set as a status code in a
/// Close control frame by an endpoint".
pub fn close_code_valid(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

/// The registered name of a close code.
pub fn close_code_name(code: u16) -> Option<&'static str> {
    Some(match code {
        1000 => "Normal Closure",
        1001 => "Going Away",
        1002 => "Protocol Error",
        1003 => "Unsupported Data",
        1005 => "No Status Rcvd",
        1006 => "Abnormal Closure",
        1007 => "Invalid Payload Data",
        1008 => "Policy Violation",
        1009 => "Message Too Big",
        1010 => "Mandatory Extension",
        1011 => "Internal Error",
        1012 => "Service Restart",
        1013 => "Try Again Later",
        1014 => "Bad Gateway",
        1015 => "TLS Handshake",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_opcode_round_trips() {
        for v in 0u8..16 {
            assert_eq!(OpCode::from(v).as_u8(), v);
        }
        assert!(OpCode::Ping.is_control());
        assert!(OpCode::Reserved(0xB).is_control());
        assert!(!OpCode::Reserved(3).is_control());
        assert_eq!(OpCode::Reserved(5).name(), "reserved");
    }

    #[test]
    fn close_codes() {
        for ok in [1000, 1001, 1002, 1003, 1007, 1011, 1014, 3000, 4999] {
            assert!(close_code_valid(ok), "{ok}");
        }
        for bad in [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535] {
            assert!(!close_code_valid(bad), "{bad}");
        }
        assert_eq!(close_code_name(1009), Some("Message Too Big"));
    }
}
