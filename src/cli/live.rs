//! Live capture (`-i`): packets from libpcap into the dissector.

use super::config::{Config, LiveOpts};
use crate::dissector::Dissector;

/// Captures until the count, the duration or Ctrl-C; the error is one line for people.
#[cfg(not(feature = "live"))]
pub fn capture(_config: &Config, live: &LiveOpts, _d: &mut Dissector<'_>) -> Result<(), String> {
    Err(format!(
        "cannot capture on {}: this wsdissect was built without live capture (rebuild with \
         `cargo build --features live`, which needs libpcap-dev)",
        live.interface
    ))
}

/// Lists the interfaces live capture can use.
#[cfg(not(feature = "live"))]
pub fn list_interfaces() -> Result<Vec<String>, String> {
    Err("this wsdissect was built without live capture (rebuild with `--features live`)".into())
}
