//! Opening inputs (files, directories and globs of rotated files, or standard input), checking
//! them as they stream in, reporting their problems on stderr, and showing progress on a
//! status line when a file takes a while.

use std::fs::File;
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use journey_spec::otel::read::ReadCounts;
use journey_spec::otel::summary::Problem;
use journey_spec::otel::{CheckOptions, CheckedTrace, InputError, KeepEvents, ReadOptions, TraceStream, read_into};

use super::status::StatusLine;

/// How inputs are read and checked.
pub struct Reading {
    /// Reader options (format, record limit).
    pub read: ReadOptions,
    /// What to check.
    pub check: CheckOptions,
    /// Which journeys to keep whole.
    pub keep: KeepEvents,
    /// Spans held before the least recently touched are checked.
    pub window: usize,
}

/// At most this many problems of one input are kept for the JSON report (all are counted).
const KEPT_PROBLEMS: usize = 1000;

/// One input, checked: the trace, how many problems were reported, and the problems themselves
/// (at most [`KEPT_PROBLEMS`]).
pub struct Checked {
    pub trace: CheckedTrace,
    pub errors: u64,
    pub problems: Vec<Problem>,
}

/// Reads and checks one input (a file, a directory or glob of files read in name order as one
/// input, or `-`), printing every problem to stderr as `path:line: message`.
pub fn check_input(path: &Path, reading: &Reading) -> Checked {
    let name = path.display().to_string();
    let mut errors = 0;
    let mut problems = Vec::new();
    let mut report = |e: InputError| {
        errors += e.count();
        // Diagnostics are best effort: a closed stderr must not stop the check.
        let _ = writeln!(io::stderr().lock(), "{e}");
        if problems.len() < KEPT_PROBLEMS {
            problems.push(Problem {
                input: 0,
                path: e.source_name.clone(),
                line: e.line,
                record: e.record,
                message: e.kind.to_string(),
            });
        }
    };
    let mut stream =
        TraceStream::new(name.clone(), reading.check.clone()).with_window(reading.window).keep(reading.keep.clone());
    if name == "-" {
        read_into(&name, io::stdin().lock(), &reading.read, &mut stream, &mut report);
    } else {
        match files(path) {
            Ok(files) => {
                for file in files {
                    read_file(&file, reading, &mut stream, &mut report);
                }
            }
            Err(e) => report(InputError { source_name: name.clone(), line: None, record: None, kind: e.into() }),
        }
    }
    let trace = stream.finish();
    if errors == 0 {
        warn_if_empty(&name, &trace);
    }
    Checked { trace, errors, problems }
}

fn read_file(path: &Path, reading: &Reading, stream: &mut TraceStream, report: &mut dyn FnMut(InputError)) {
    let name = path.display().to_string();
    match File::open(path) {
        Ok(file) => {
            let total = file.metadata().map(|m| m.len()).unwrap_or(0);
            let reader = ProgressReader::new(file, &name, total);
            read_into(&name, BufReader::with_capacity(1 << 16, reader), &reading.read, stream, report);
        }
        Err(e) => report(InputError { source_name: name, line: None, record: None, kind: e.into() }),
    }
}

/// The files an input path stands for: itself; the files in a directory, in name order (the
/// Collector's rotated files sort by their timestamps); or the files a glob in the last
/// component matches (`traces-*.pb.zst`), in name order, when no file has the literal name.
fn files(path: &Path) -> io::Result<Vec<PathBuf>> {
    if path.is_dir() {
        let mut files = Vec::new();
        for entry in std::fs::read_dir(path)? {
            let entry = entry?;
            // Subdirectories are not descended into.
            if !entry.file_type()?.is_dir() {
                files.push(entry.path());
            }
        }
        files.sort();
        return Ok(files);
    }
    let pattern = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    if path.exists() || !pattern.contains(['*', '?']) {
        return Ok(vec![path.to_owned()]);
    }
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        Some(_) | None => PathBuf::from("."),
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(&dir)? {
        let entry = entry?;
        if let Some(n) = entry.file_name().to_str()
            && glob_match(pattern.as_bytes(), n.as_bytes())
            && !entry.file_type()?.is_dir()
        {
            files.push(entry.path());
        }
    }
    if files.is_empty() {
        return Err(io::Error::new(io::ErrorKind::NotFound, format!("no file matches {pattern:?}")));
    }
    files.sort();
    Ok(files)
}

/// Whether `name` matches `pattern` (`*` any run of bytes, `?` one byte).
fn glob_match(pattern: &[u8], name: &[u8]) -> bool {
    let (mut p, mut n) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, n));
                p += 1;
            }
            Some(&c) if c == b'?' || c == name[n] => {
                p += 1;
                n += 1;
            }
            Some(_) | None => match star {
                Some((sp, sn)) => {
                    p = sp + 1;
                    n = sn + 1;
                    star = Some((sp, sn + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p.min(pattern.len())..].iter().all(|&c| c == b'*')
}

/// A warning on stderr when an input that had no error holds no journey, saying what it holds
/// instead (the exit status is not changed; `--expect-journeys` makes it fail).
fn warn_if_empty(name: &str, trace: &CheckedTrace) {
    if trace.journey_count() > 0 {
        return;
    }
    let c: &ReadCounts = &trace.counts;
    let found = if c.logs_requests + c.metrics_requests + c.profiles_requests > 0 {
        let mut kinds = Vec::new();
        for (n, what) in [(c.logs_requests, "logs"), (c.metrics_requests, "metrics"), (c.profiles_requests, "profiles")]
        {
            if n > 0 {
                kinds.push(format!("{n} OTLP {what} request(s)"));
            }
        }
        format!("it holds {}, not traces", kinds.join(" and "))
    } else if c.lines == 0 {
        "the input is empty".to_owned()
    } else if trace.spans == 0 && c.requests > 0 {
        format!("{} request(s) without spans (such as {{}})", c.requests)
    } else if trace.spans == 0 {
        "nothing could be read".to_owned()
    } else {
        format!("{} span(s), none with journey.* events", trace.spans)
    };
    let _ = writeln!(io::stderr().lock(), "journey: warning: {name}: no journey: {found}");
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

#[cfg(test)]
mod tests {
    use super::glob_match;

    #[test]
    fn globs() {
        assert!(glob_match(b"traces-*.zst", b"traces-2026-01-01T00-00-00.000.zst"));
        assert!(glob_match(b"*", b"x"));
        assert!(glob_match(b"a?c", b"abc"));
        assert!(!glob_match(b"a?c", b"abbc"));
        assert!(!glob_match(b"*.zst", b"x.json"));
        assert!(glob_match(b"a*b*c", b"aXbYbZc"));
    }
}
