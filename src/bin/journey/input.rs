//! Opening inputs (files or standard input), reporting their problems on stderr, and showing
//! progress on a status line when a file takes a while.

use std::fs::File;
use std::io::{self, BufReader, Read, Write};
use std::path::Path;

use journey_spec::otel::{CheckOptions, CheckedTrace, InputError, Trace, check_trace, read_trace};

use super::status::StatusLine;

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
                let reader = ProgressReader::new(file, &name, total);
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

/// A reader that shows how far it got on a status line.
struct ProgressReader<'a, R> {
    inner: R,
    name: &'a str,
    total: u64,
    read: u64,
    status: StatusLine,
}

impl<'a, R> ProgressReader<'a, R> {
    fn new(inner: R, name: &'a str, total: u64) -> Self {
        ProgressReader { inner, name, total, read: 0, status: StatusLine::new() }
    }
}

impl<R: Read> Read for ProgressReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        let (name, read, total) = (self.name, self.read, self.total);
        self.status.show(|| {
            let mb = |b: u64| b as f64 / 1e6;
            let pct = read.saturating_mul(100).checked_div(total).unwrap_or(0);
            format!("reading {name}: {pct:>3}% ({:.1} of {:.1} MB)", mb(read), mb(total))
        });
        Ok(n)
    }
}
