//! Notices: one line each, for people, about work a command did besides
//! its own (a leftover removed, an interrupted run's record completed) or a
//! wait for another command. The library never prints: the binary says
//! where notices go ([`set_sink`]); without a sink they go nowhere.

use std::sync::OnceLock;

/// Something that shows a notice.
pub type Sink = Box<dyn Fn(&str) + Send + Sync>;

static SINK: OnceLock<Sink> = OnceLock::new();

/// Sends notices to `sink`; the binary calls this once, first.
pub fn set_sink(sink: Sink) {
    let _ = SINK.set(sink);
}

/// Gives a notice.
pub fn notice(line: &str) {
    if let Some(sink) = SINK.get() {
        sink(line);
    }
}
