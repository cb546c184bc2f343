//! The HTTP upgrade parser and handshake checks: `[max-head u8][split u16][bytes]`, the
//! request is `bytes[..split]` and the response the rest.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wsdissect::http::accept::{derive_accept_key, key_is_valid};
use wsdissect::http::extensions::{parse_extensions, DeflateParams};
use wsdissect::http::handshake::{
    check_handshake, check_request, is_websocket_upgrade_request, offered_extensions,
    offered_protocols,
};
use wsdissect::http::upgrade::{
    looks_like_request, looks_like_response, parse_request, parse_response, HeadParse,
};
use wsdissect_fuzz::{max_head, Input};

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let limit = max_head(input.u8());
    let split = usize::from(input.u16());
    let rest = input.rest();
    let (req_bytes, resp_bytes) = rest.split_at(split.min(rest.len()));
    let _ = looks_like_request(req_bytes);
    let _ = looks_like_response(resp_bytes);

    let req = match parse_request(req_bytes, limit) {
        HeadParse::Complete(r) => {
            assert!(r.head_len <= req_bytes.len().min(limit));
            // The head alone parses to the same head.
            assert_eq!(
                parse_request(&req_bytes[..r.head_len], limit),
                HeadParse::Complete(r.clone())
            );
            Some(r)
        }
        HeadParse::Partial => {
            assert!(req_bytes.len() < limit);
            None
        }
        HeadParse::TooLarge | HeadParse::Invalid(_) => None,
    };
    let resp = match parse_response(resp_bytes, limit) {
        HeadParse::Complete(r) => {
            assert!(r.head_len <= resp_bytes.len().min(limit));
            assert_eq!(
                parse_response(&resp_bytes[..r.head_len], limit),
                HeadParse::Complete(r.clone())
            );
            Some(r)
        }
        HeadParse::Partial => {
            assert!(resp_bytes.len() < limit);
            None
        }
        HeadParse::TooLarge | HeadParse::Invalid(_) => None,
    };
    if let Some(r) = &req {
        let _ = is_websocket_upgrade_request(r);
        let _ = check_request(r);
        let _ = offered_protocols(r);
        if let Some(ext) = offered_extensions(r) {
            for e in parse_extensions(&ext) {
                let _ = DeflateParams::from_offer(&e);
            }
        }
        if let Some(key) = r.header("sec-websocket-key") {
            let _ = key_is_valid(key);
            assert_eq!(derive_accept_key(key).len(), 28);
        }
    }
    if let Some(resp) = &resp {
        let c = check_handshake(req.as_ref(), resp);
        assert_eq!(c.rejected, resp.status != 101);
    }
    // The extension grammar on arbitrary text, too.
    let text = String::from_utf8_lossy(rest);
    for e in parse_extensions(&text) {
        let _ = DeflateParams::from_offer(&e);
    }
});
