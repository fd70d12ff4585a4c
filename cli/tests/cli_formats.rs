//! `journey check` on what an OpenTelemetry Collector's file exporter writes besides JSON Lines,
//! and on hostile input, run as a user runs it.
//!
//! Every fixture (`tests/data/`, and the shared fixtures beside the repository when present) is
//! converted here, at run time, to length-framed protobuf records (the exporter's
//! `format: proto`), to framed records with zstd-compressed payloads (its `compression: zstd`),
//! and to whole-file zstd and gzip; each reads to the same report as the JSON Lines file. The
//! hostile inputs each have their exit status and first line of stderr asserted, and two of
//! them (`/dev/zero`, a 200 MB file without a newline) a bound on the child's peak memory.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message as _;
use serde_json::Value;

fn journey(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_journey")).args(args).output().unwrap()
}

fn journey_stdin(args: &[&str], input: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_journey"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    out
}

fn stderr(o: &Output) -> &str {
    std::str::from_utf8(&o.stderr).unwrap()
}

fn first_stderr_line(o: &Output) -> &str {
    stderr(o).lines().next().unwrap_or("")
}

fn scratch(name: &str, content: &[u8]) -> PathBuf {
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    std::fs::write(&path, content).unwrap();
    path
}

/// Every fixture trace: the crate's own and the shared ones beside the repository.
fn fixtures() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut out = Vec::new();
    for dir in ["tests/data", "../shared/fixtures"] {
        let Ok(subdirs) = std::fs::read_dir(root.join(dir)) else {
            assert_ne!(dir, "tests/data", "the crate's fixtures are missing");
            eprintln!("note: {dir} is absent; only the crate's own fixtures are converted");
            continue;
        };
        for sub in subdirs {
            let sub = sub.unwrap().path();
            let Ok(files) = std::fs::read_dir(&sub) else { continue };
            for f in files {
                let f = f.unwrap().path();
                if f.to_string_lossy().ends_with(".otlp.jsonl") {
                    out.push(f);
                }
            }
        }
    }
    out.sort();
    out
}

/// The JSON Lines of a fixture as protobuf messages.
fn messages(jsonl: &[u8]) -> Vec<Vec<u8>> {
    jsonl
        .split(|&b| b == b'\n')
        .filter(|l| !l.iter().all(u8::is_ascii_whitespace))
        .map(|l| serde_json::from_slice::<ExportTraceServiceRequest>(l).unwrap().encode_to_vec())
        .collect()
}

/// Records with the Collector file exporter's framing: a 4-byte big-endian length, then the
/// payload.
fn framed(payloads: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for p in payloads {
        out.extend_from_slice(&u32::try_from(p.len()).unwrap().to_be_bytes());
        out.extend_from_slice(p);
    }
    out
}

fn zstd(bytes: &[u8]) -> Vec<u8> {
    zstd::encode_all(bytes, 3).unwrap()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// The JSON report of `path`, with what names the input or its format taken out.
fn report(path: &Path) -> (Option<i32>, Value) {
    let o = journey(&["check", "--format", "json", path.to_str().unwrap()]);
    let mut v: Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", stderr(&o)));
    for list in ["inputs", "violations", "incomplete_journeys"] {
        for item in v[list].as_array_mut().unwrap() {
            let item = item.as_object_mut().unwrap();
            for key in ["path", "format", "compression"] {
                item.remove(key);
            }
        }
    }
    (o.status.code(), v)
}

#[test]
fn every_fixture_reads_the_same_as_protobuf_records_and_compressed() {
    let fixtures = fixtures();
    assert!(fixtures.len() >= 20, "{} fixtures", fixtures.len());
    for (n, fixture) in fixtures.iter().enumerate() {
        let jsonl = std::fs::read(fixture).unwrap();
        let (code, want) = report(fixture);
        assert!(want["journeys"].as_u64().unwrap() > 0, "{}", fixture.display());
        let protobuf = messages(&jsonl);
        let zstd_payloads: Vec<Vec<u8>> = protobuf.iter().map(|m| zstd(m)).collect();
        let json_payloads: Vec<Vec<u8>> =
            jsonl.split(|&b| b == b'\n').filter(|l| !l.is_empty()).map(<[u8]>::to_vec).collect();
        for (kind, bytes) in [
            ("proto", framed(&protobuf)),
            ("proto-zstd-records", framed(&zstd_payloads)),
            ("json-records", framed(&json_payloads)),
            ("jsonl.zst", zstd(&jsonl)),
            ("jsonl.gz", gzip(&jsonl)),
            ("proto.zst", zstd(&framed(&protobuf))),
        ] {
            // The name says nothing: formats are detected from the content.
            let path = scratch(&format!("fixture-{n}-{kind}.bin"), &bytes);
            let (c, got) = report(&path);
            assert_eq!((c, &got), (code, &want), "{} as {kind}", fixture.display());
            std::fs::remove_file(path).unwrap();
        }
    }
}

#[test]
fn directories_globs_and_stdin() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/vllm/basic.otlp.jsonl");
    let jsonl = std::fs::read(&fixture).unwrap();
    let (_, want) = report(&fixture);
    // Rotated files: the lines split over three files, compressed differently, read in name order.
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("rotated");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let lines: Vec<&[u8]> = jsonl.split(|&b| b == b'\n').filter(|l| !l.is_empty()).collect();
    let third = lines.len() / 3;
    let parts = [&lines[..third], &lines[third..2 * third], &lines[2 * third..]];
    for (i, part) in parts.iter().enumerate() {
        let text: Vec<u8> = part.iter().flat_map(|l| l.iter().copied().chain([b'\n'])).collect();
        let bytes = match i {
            0 => text,
            1 => framed(&messages(&text)),
            _ => zstd(&framed(&messages(&text))),
        };
        std::fs::write(dir.join(format!("traces-2026-01-0{i}.out")), bytes).unwrap();
    }
    let o = journey(&["check", "--format", "json", dir.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let got: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!((got["journeys"].clone(), got["events"].clone()), (want["journeys"].clone(), want["events"].clone()));
    let glob = dir.join("traces-*.out");
    let o = journey(&["check", "--format", "json", glob.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let got: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(got["journeys"], want["journeys"]);
    // Protobuf records on standard input.
    let o = journey_stdin(&["check", "--format", "json", "-"], &framed(&messages(&jsonl)));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let got: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        (got["journeys"].clone(), got["inputs"][0]["format"].clone()),
        (want["journeys"].clone(), "framed".into())
    );
}

/// A fixture line with `edit` applied to the first event of its first span.
fn edited_line(edit: impl Fn(&mut Value)) -> String {
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/vllm-random/w1.otlp.jsonl"))
            .unwrap();
    let mut v: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    edit(&mut v["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["events"][0]);
    serde_json::to_string(&v).unwrap()
}

/// A hostile input: its name, extra arguments, standard input, exit status and the start of the
/// first line of stderr.
type Case = (&'static str, Vec<&'static str>, Vec<u8>, i32, String);

#[test]
fn hostile_inputs_exit_status_and_first_line_of_stderr() {
    let w1 = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/vllm-random/w1.otlp.jsonl");
    let w1_text = std::fs::read(&w1).unwrap();
    let cases: Vec<Case> = vec![
        (
            "/dev/zero",
            vec![],
            Vec::new(),
            2,
            "/dev/zero:1: line is longer than 33554432 bytes (--max-record-bytes): the input holds NUL bytes".into(),
        ),
        ("empty", vec![], Vec::new(), 0, "journey: warning: -: no journey: the input is empty".into()),
        ("{}", vec![], b"{}\n".to_vec(), 0, "journey: warning: -: no journey: 1 request(s) without spans (such as {})".into()),
        (
            "logs",
            vec![],
            br#"{"resourceLogs":[{"scopeLogs":[]}]}"#.to_vec(),
            0,
            "journey: warning: -: no journey: it holds 1 OTLP logs request(s), not traces".into(),
        ),
        (
            "metrics",
            vec![],
            br#"{"resourceMetrics":[]}"#.to_vec(),
            0,
            "journey: warning: -: no journey: it holds 1 OTLP metrics request(s), not traces".into(),
        ),
        ("expect", vec!["--expect-journeys", "1"], b"{}\n".to_vec(), 2, "journey: warning: -: no journey: 1 request(s) without spans (such as {})".into()),
        (
            "expect more",
            vec!["--expect-journeys", "33"],
            w1_text.clone(),
            2,
            "journey: expected at least 33 journeys, read 32".into(),
        ),
        (
            "a bad timestamp",
            vec![],
            edited_line(|e| e["timeUnixNano"] = "12a".into()).into_bytes(),
            2,
            "-:1: timeUnixNano: invalid digit found in string (at resourceSpans[0].scopeSpans[0].spans[0].events[0].timeUnixNano)".into(),
        ),
        (
            "an int64 that is a float",
            vec![],
            edited_line(|e| e["attributes"][2]["value"] = serde_json::json!({"intValue": 1.5})).into_bytes(),
            2,
            "-:1: value: expected an integer (a number or a string of digits)".into(),
        ),
        (
            "zstd read as JSON",
            vec!["--input-format", "json"],
            zstd(&w1_text),
            2,
            "-: the input looks zstd-compressed; read as JSON as told; --input-format auto reads it".into(),
        ),
        (
            "binary",
            vec![],
            b"\x01\x02\x03garbage\n".to_vec(),
            2,
            "-:1: the input holds control bytes: binary data, not JSON (protobuf?); this is not JSON".into(),
        ),
        (
            "a framed record cut short",
            vec![],
            {
                let f = framed(&messages(&w1_text));
                f[..f.len() - 10].to_vec()
            },
            2,
            format!("-: record {}: the record is cut short", messages(&w1_text).len()),
        ),
    ];
    for (name, args, input, code, first) in cases {
        let mut all = vec!["check", "--format", "json"];
        all.extend(args);
        let o = if name == "/dev/zero" {
            all.push("/dev/zero");
            journey(&all)
        } else {
            all.push("-");
            journey_stdin(&all, &input)
        };
        assert_eq!(o.status.code(), Some(code), "{name}: {}", stderr(&o));
        assert!(first_stderr_line(&o).starts_with(&first), "{name}: {:?}", first_stderr_line(&o));
        // The report is still written, and is valid JSON.
        let _: Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

#[test]
fn non_finite_doubles_bom_missing_timestamps_and_repeated_errors() {
    // "NaN" as the protobuf JSON mapping writes it: the line is read, the event is R5.
    let nan = edited_line(|e| {
        let attrs = e["attributes"].as_array_mut().unwrap();
        let ts = attrs.iter_mut().find(|a| a["key"] == "ts.monotonic").unwrap();
        ts["value"] = serde_json::json!({"doubleValue": "NaN"});
    });
    let o = journey_stdin(&["check", "--format", "json", "-"], nan.as_bytes());
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let r: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["violations"][0]["rule"], "R5");
    assert_eq!(r["violations"][0]["message"], "ts.monotonic is NaN");
    assert_eq!(r["violations_by_rule"]["R5"], 1);

    // A byte order mark before JSON Lines.
    let w1 =
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/vllm-random/w1.otlp.jsonl")).unwrap();
    let mut bom = b"\xef\xbb\xbf".to_vec();
    bom.extend_from_slice(&w1);
    let o = journey_stdin(&["check", "--format", "json", "-"], &bom);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(serde_json::from_slice::<Value>(&o.stdout).unwrap()["journeys"], 32);

    // An event without a timestamp is reported as such, not as an R1 (it would sort first):
    // an input error, and the journey is checked with the event where its record has it.
    let untimed = edited_line(|e| {
        e.as_object_mut().unwrap().remove("timeUnixNano");
    });
    let o = journey_stdin(&["check", "--format", "json", "-"], untimed.as_bytes());
    assert_eq!(o.status.code(), Some(2));
    assert!(
        first_stderr_line(&o).starts_with("-:1: span ")
            && first_stderr_line(&o).ends_with(
                ": event journey.QUEUED has no timestamp (timeUnixNano); it is checked in its record's order"
            ),
        "{}",
        stderr(&o)
    );
    let r: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["violating"], 0, "{r}");

    // At most 10 identical errors, then a count; all are counted, and listed in the report.
    let junk = "not json\n".repeat(30);
    let o = journey_stdin(&["check", "--format", "json", "-"], junk.as_bytes());
    assert_eq!(o.status.code(), Some(2));
    let lines: Vec<&str> = stderr(&o).lines().collect();
    assert_eq!(lines.len(), 11, "{lines:?}");
    assert_eq!(lines[10], "-: 20 more error(s) like \"expected ident\" not shown");
    let r: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["input_errors"], 30);
    assert_eq!(r["problems"].as_array().unwrap().len(), 11);
    assert_eq!(r["problems"][0]["line"], 1);
    assert_eq!(r["problems"][0]["message"], "expected ident (column 2)");
}

#[test]
fn text_output_counts_rules_and_caps_violations() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/corrupted");
    let r9 = dir.join("R9.preemption-count-off-by-one.otlp.jsonl");
    let r2 = dir.join("R2.finished-twice.otlp.jsonl");
    let o =
        journey(&["check", "--color", "never", "--max-violations", "1", r9.to_str().unwrap(), r2.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let text = String::from_utf8(o.stdout).unwrap();
    assert!(text.contains("  violations by rule: R2 "), "{text}");
    assert!(text.contains(", R9 "), "{text}");
    assert_eq!(text.matches("\n✗ request").count(), 1, "{text}");
    assert!(text.contains("… and 1 violating journey not shown (--max-violations)"), "{text}");
    assert!(!text.contains('\x1b'), "no colour when told never");
    let o = journey(&["check", "--color", "always", r9.to_str().unwrap()]);
    assert!(String::from_utf8(o.stdout).unwrap().contains("\x1b[31m"), "colour when told always");
}

/// Runs `journey check` on `path` and returns its exit status and peak resident memory in
/// bytes, from `wait4`'s resource usage of the child.
// The child is reaped by `wait4` below, which std's `Child` does not see.
#[allow(clippy::zombie_processes)]
fn peak_rss(args: &[&str]) -> (i32, u64) {
    let out = File::create(Path::new(env!("CARGO_TARGET_TMPDIR")).join("rss.out")).unwrap();
    let err = File::create(Path::new(env!("CARGO_TARGET_TMPDIR")).join("rss.err")).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_journey"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .unwrap();
    let pid = libc::pid_t::try_from(child.id()).unwrap();
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value, and wait4 writes only into the two
    // out-parameters, which live across the call; the child is ours and not yet reaped.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(reaped, pid);
    assert!(libc::WIFEXITED(status));
    // Linux reports ru_maxrss in KiB.
    (libc::WEXITSTATUS(status), u64::try_from(usage.ru_maxrss).unwrap() * 1024)
}

#[test]
fn memory_stays_bounded_on_dev_zero_and_a_file_without_newlines() {
    const LIMIT: u64 = 100 << 20;
    let (code, rss) = peak_rss(&["check", "/dev/zero"]);
    assert_eq!(code, 2);
    eprintln!("/dev/zero: peak RSS {:.1} MB", rss as f64 / 1e6);
    assert!(rss < LIMIT, "/dev/zero: peak RSS {rss} bytes");

    // 200 MB without a newline, written in pieces so the test itself stays small.
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join("no-newline.json");
    {
        let mut f = std::io::BufWriter::new(File::create(&path).unwrap());
        f.write_all(br#"{"resourceSpans":[{"scopeSpans":[{"spans":["#).unwrap();
        let chunk = br#"{"traceId":"0102","spanId":"03","name":"x"},"#.repeat(1000);
        let mut written = 0;
        while written < 200_000_000 {
            f.write_all(&chunk).unwrap();
            written += chunk.len();
        }
        f.flush().unwrap();
    }
    let (code, rss) = peak_rss(&["check", path.to_str().unwrap()]);
    std::fs::remove_file(&path).unwrap();
    assert_eq!(code, 2);
    eprintln!("200 MB without a newline: peak RSS {:.1} MB", rss as f64 / 1e6);
    assert!(rss < LIMIT, "200 MB without a newline: peak RSS {rss} bytes");
}
