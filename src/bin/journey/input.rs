//! Opening inputs (files or standard input), reporting their problems on stderr, and showing
//! progress on stderr when it is a terminal and a file takes a while.

use std::fs::File;
use std::io::{self, BufReader, IsTerminal, Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use journey_spec::otel::{CheckOptions, CheckedTrace, InputError, Trace, check_trace, read_trace};

/// Reads and checks one input; returns the checked trace and how many problems were reported.
pub fn check_input(path: &Path, options: &CheckOptions) -> (CheckedTrace, u64) {
    let (trace, errors) = read_input(path);
    (check_trace(trace, options), errors)
}

/// Reads one input, printing every problem to stderr as `path:line: message`.
pub fn read_input(path: &Path) -> (Trace, u64) {
    let name = path.display().to_string();
    let mut errors = 0;
    let mut report = |e: InputError| {
        errors += 1;
        // Diagnostics are best effort: a closed stderr must not stop the check.
        let _ = writeln!(io::stderr().lock(), "{e}");
    };
    let trace = if name == "-" {
        read_trace(&name, io::stdin().lock(), &mut report)
    } else {
        match File::open(path) {
            Ok(file) => {
                let total = file.metadata().map(|m| m.len()).unwrap_or(0);
                let reader = Progress::new(file, &name, total);
                read_trace(&name, BufReader::with_capacity(1 << 16, reader), &mut report)
            }
            Err(e) => {
                report(InputError { source_name: name.clone(), line: None, kind: e.into() });
                Trace { source_name: name, ..Trace::default() }
            }
        }
    };
    (trace, errors)
}

/// A reader that shows how far it got on stderr, when stderr is a terminal and reading has
/// taken more than half a second; it clears its line when dropped.
struct Progress<'a, R> {
    inner: R,
    name: &'a str,
    total: u64,
    read: u64,
    /// `None` when progress is not shown at all.
    started: Option<Instant>,
    last: Option<Instant>,
    shown: bool,
}

impl<'a, R> Progress<'a, R> {
    fn new(inner: R, name: &'a str, total: u64) -> Self {
        let started = io::stderr().is_terminal().then(Instant::now);
        Progress { inner, name, total, read: 0, started, last: None, shown: false }
    }

    fn tick(&mut self) {
        let Some(started) = self.started else { return };
        let now = Instant::now();
        if now - started < Duration::from_millis(500) || self.last.is_some_and(|l| now - l < Duration::from_millis(200))
        {
            return;
        }
        self.last = Some(now);
        self.shown = true;
        let mb = |b: u64| b as f64 / 1e6;
        let pct = self.read.saturating_mul(100).checked_div(self.total).unwrap_or(0);
        let _ = write!(
            io::stderr().lock(),
            "\rjourney: reading {}: {pct:>3}% ({:.1} of {:.1} MB)\x1b[K",
            self.name,
            mb(self.read),
            mb(self.total)
        );
    }
}

impl<R: Read> Read for Progress<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        self.tick();
        Ok(n)
    }
}

impl<R> Drop for Progress<'_, R> {
    fn drop(&mut self) {
        if self.shown {
            let _ = write!(io::stderr().lock(), "\r\x1b[K");
        }
    }
}
