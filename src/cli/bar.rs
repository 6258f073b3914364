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
        let width = console::Term::stderr()
            .size_checked()
            .map_or(80, |(_, cols)| cols);
        let style = ProgressStyle::with_template(template(width))
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

/// The bar's line for a terminal `width` columns wide: what does not fit is
/// left out, so that the line never wraps (a wrapped line is redrawn as
/// a new one at every tick); the current file takes what is left.
fn template(width: u16) -> &'static str {
    match width {
        100.. => "{prefix:>10} [{bar:30}] {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} ETA {eta} {wide_msg}",
        72..=99 => "{prefix:>10} [{bar:20}] {binary_bytes}/{binary_total_bytes} ETA {eta} {wide_msg}",
        40..=71 => "{prefix:>10} {percent:>3}% ETA {eta} {wide_msg}",
        _ => "{percent:>3}% {wide_msg}",
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_fits_the_terminal_whatever_its_width() {
        // The widest each field gets: "  checking", "1023.9 MiB" twice,
        // "1023.9 MiB/s", an ETA of "99h", "100%".
        let widest = |t: &str| {
            let mut n = t.len();
            for (field, shown) in [
                ("{prefix:>10}", 10),
                ("{bar:30}", 30),
                ("{bar:20}", 20),
                ("{binary_bytes}", 10),
                ("{binary_total_bytes}", 10),
                ("{binary_bytes_per_sec}", 12),
                ("{eta}", 3),
                ("{percent:>3}", 3),
                ("{wide_msg}", 0),
            ] {
                if t.contains(field) {
                    n = n - field.len() + shown;
                }
            }
            n
        };
        for width in [20u16, 39, 40, 60, 71, 72, 80, 99, 100, 200] {
            let t = template(width);
            assert!(
                widest(t) < width as usize,
                "{width} columns: {t} takes {}",
                widest(t)
            );
            assert!(ProgressStyle::with_template(t).is_ok(), "{t}");
        }
    }
}
