//! A status line on stderr for long runs: shown only when stderr is a terminal and the work has
//! taken more than half a second, refreshed at most five times a second, cleared when dropped.

use std::io::{self, IsTerminal, Write};
use std::time::{Duration, Instant};

pub struct StatusLine {
    /// `None` when stderr is not a terminal: nothing is ever shown.
    started: Option<Instant>,
    last: Option<Instant>,
    shown: bool,
}

impl StatusLine {
    pub fn new() -> StatusLine {
        StatusLine { started: io::stderr().is_terminal().then(Instant::now), last: None, shown: false }
    }

    /// Shows `text` if it is time to (best effort: a closed stderr is ignored).
    pub fn show(&mut self, text: impl FnOnce() -> String) {
        let Some(started) = self.started else { return };
        let now = Instant::now();
        if now - started < Duration::from_millis(500) || self.last.is_some_and(|l| now - l < Duration::from_millis(200))
        {
            return;
        }
        self.last = Some(now);
        self.shown = true;
        let _ = write!(io::stderr().lock(), "\rjourney: {}\x1b[K", text());
    }
}

impl Drop for StatusLine {
    fn drop(&mut self) {
        if self.shown {
            let _ = write!(io::stderr().lock(), "\r\x1b[K");
        }
    }
}
