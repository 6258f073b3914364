//! A progress bar on stderr (indicatif), only when stderr is a terminal and
//! the user did not ask for quiet.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use pouch::format::names::escape;
use pouch::progress::{Handle, Progress};

struct Bar {
    bar: Mutex<Option<ProgressBar>>,
}

impl Progress for Bar {
    fn start(&self, what: &str, total: u64) {
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
        let style = ProgressStyle::with_template(
            "{prefix:>10} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta} {wide_msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
        bar.set_style(style);
        bar.set_prefix(what.to_string());
        bar.enable_steady_tick(Duration::from_millis(200));
        if let Ok(mut b) = self.bar.lock() {
            *b = Some(bar);
        }
    }

    fn advance(&self, bytes: u64) {
        if let Ok(b) = self.bar.lock() {
            if let Some(bar) = b.as_ref() {
                bar.inc(bytes);
            }
        }
    }

    fn more(&self, bytes: u64) {
        if let Ok(b) = self.bar.lock() {
            if let Some(bar) = b.as_ref() {
                bar.inc_length(bytes);
            }
        }
    }

    fn item(&self, name: &str) {
        if let Ok(b) = self.bar.lock() {
            if let Some(bar) = b.as_ref() {
                bar.set_message(escape(name));
            }
        }
    }

    fn finish(&self) {
        if let Ok(mut b) = self.bar.lock() {
            if let Some(bar) = b.take() {
                bar.finish_and_clear();
            }
        }
    }
}

/// A progress handle: a bar when stderr is a terminal and not `quiet`,
/// otherwise nothing.
pub fn handle(quiet: bool) -> Handle {
    if quiet || !std::io::stderr().is_terminal() {
        return Handle::default();
    }
    Handle(std::sync::Arc::new(Bar {
        bar: Mutex::new(None),
    }))
}
