//! `Sec-WebSocket-Extensions` (RFC 6455 §9.1) and permessage-deflate parameters (RFC 7692 §7.1).

/// One extension with its parameters, as offered or accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExtensionOffer {
    pub name: String,
    pub params: Vec<(String, Option<String>)>,
}

/// Parses `name; param; param=value, name2` (tolerant of spaces and quoted values).
pub fn parse_extensions(value: &str) -> Vec<ExtensionOffer> {
    value
        .split(',')
        .filter_map(|ext| {
            let mut parts = ext.split(';').map(str::trim);
            let name = parts.next().filter(|n| !n.is_empty())?.to_ascii_lowercase();
            let params = parts
                .filter(|p| !p.is_empty())
                .map(|p| match p.split_once('=') {
                    Some((k, v)) => (
                        k.trim().to_ascii_lowercase(),
                        Some(v.trim().trim_matches('"').to_string()),
                    ),
                    None => (p.to_ascii_lowercase(), None),
                })
                .collect();
            Some(ExtensionOffer { name, params })
        })
        .collect()
}

/// Negotiated permessage-deflate parameters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DeflateParams {
    pub server_no_context_takeover: bool,
    pub client_no_context_takeover: bool,
    pub server_max_window_bits: Option<u8>,
    pub client_max_window_bits: Option<u8>,
}

impl DeflateParams {
    pub const NAME: &'static str = "permessage-deflate";

    /// Reads the parameters of a permessage-deflate offer or response.
    pub fn from_offer(offer: &ExtensionOffer) -> Result<DeflateParams, String> {
        let mut p = DeflateParams::default();
        for (k, v) in &offer.params {
            let bits = |v: &Option<String>| -> Result<Option<u8>, String> {
                match v {
                    None => Ok(None),
                    Some(s) => match s.parse::<u8>() {
                        Ok(b) if (8..=15).contains(&b) => Ok(Some(b)),
                        _ => Err(format!("bad window bits {s:?}")),
                    },
                }
            };
            match k.as_str() {
                "server_no_context_takeover" => p.server_no_context_takeover = true,
                "client_no_context_takeover" => p.client_no_context_takeover = true,
                "server_max_window_bits" => p.server_max_window_bits = bits(v)?.or(Some(15)),
                "client_max_window_bits" => p.client_max_window_bits = bits(v)?.or(Some(15)),
                other => return Err(format!("unknown parameter {other}")),
            }
        }
        Ok(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_offers_and_deflate_params() {
        let offers = parse_extensions(
            "permessage-deflate; client_max_window_bits, permessage-deflate; server_no_context_takeover; server_max_window_bits=\"10\" , x-webkit-deflate-frame",
        );
        assert_eq!(offers.len(), 3);
        assert_eq!(offers[0].name, "permessage-deflate");
        let p = DeflateParams::from_offer(&offers[1]).unwrap();
        assert!(p.server_no_context_takeover && !p.client_no_context_takeover);
        assert_eq!(p.server_max_window_bits, Some(10));
        assert_eq!(offers[2].name, "x-webkit-deflate-frame");
        let bad = parse_extensions("permessage-deflate; server_max_window_bits=99");
        assert!(DeflateParams::from_offer(&bad[0]).is_err());
    }
}
