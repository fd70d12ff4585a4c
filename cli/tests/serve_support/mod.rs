//! Running `journey serve` as a process on loopback ports, talking HTTP to it with a minimal
//! client over `std::net`, and comparing its report with `journey check`'s.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

/// How long any one step may take before the test gives up (bounded tests).
pub const DEADLINE: Duration = Duration::from_secs(120);

pub const JOURNEY: &str = env!("CARGO_BIN_EXE_journey");

/// A running `journey serve`.
pub struct Serve {
    child: Child,
    pub grpc: SocketAddr,
    pub http: SocketAddr,
    stderr: Arc<Mutex<String>>,
}

/// What `journey serve` left when it exited.
pub struct Exited {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Exited {
    pub fn report(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("report is not JSON ({e}): {:?}", self.stdout))
    }
}

impl Serve {
    /// Starts `journey serve` on ephemeral loopback ports with `args`.
    pub fn start(args: &[&str]) -> Serve {
        let mut child = Command::new(JOURNEY)
            .args(["serve", "--grpc", "127.0.0.1:0", "--http", "127.0.0.1:0"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("journey serve starts");
        let stderr = child.stderr.take().expect("stderr is piped");
        let collected = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        {
            let collected = Arc::clone(&collected);
            thread::spawn(move || {
                let mut first = true;
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    if first {
                        let _ = tx.send(line.clone());
                        first = false;
                    }
                    let mut c = collected.lock().unwrap();
                    c.push_str(&line);
                    c.push('\n');
                }
            });
        }
        let line = rx.recv_timeout(DEADLINE).expect("journey serve announces its addresses");
        // "journey serve: OTLP/gRPC on A, OTLP/HTTP on B (...)"
        let addr = |after: &str| -> SocketAddr {
            let rest = &line[line.find(after).unwrap_or_else(|| panic!("{after} in {line:?}")) + after.len()..];
            let end = rest.find([',', ' ']).unwrap_or(rest.len());
            rest[..end].parse().unwrap_or_else(|e| panic!("address in {line:?}: {e}"))
        };
        Serve { grpc: addr("OTLP/gRPC on "), http: addr("OTLP/HTTP on "), child, stderr: collected }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `POST /shutdown`, then waits for the exit.
    pub fn shutdown(self) -> Exited {
        let (status, _) = http(self.http, "POST", "/shutdown", &[], b"");
        assert_eq!(status, 202, "POST /shutdown is accepted");
        self.wait()
    }

    /// Waits (bounded) for the process to exit on its own.
    pub fn wait(mut self) -> Exited {
        let mut stdout = self.child.stdout.take().expect("stdout is piped");
        let reader = thread::spawn(move || {
            let mut s = String::new();
            let _ = stdout.read_to_string(&mut s);
            s
        });
        let start = Instant::now();
        let code = loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                break status.code();
            }
            if start.elapsed() > DEADLINE {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("journey serve did not exit within {DEADLINE:?}; stderr:\n{}", self.stderr.lock().unwrap());
            }
            thread::sleep(Duration::from_millis(20));
        };
        let stdout = reader.join().expect("stdout reader");
        // The stderr thread ends with the pipe; give it a moment to take the last lines.
        thread::sleep(Duration::from_millis(50));
        let stderr = self.stderr.lock().unwrap().clone();
        Exited { code, stdout, stderr }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        // A test that failed half-way must not leave the process behind.
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// One HTTP/1.1 request with `Connection: close`; returns the status and the body.
pub fn http(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> (u16, Vec<u8>) {
    let mut stream = TcpStream::connect_timeout(&addr, DEADLINE).expect("connect");
    stream.set_read_timeout(Some(DEADLINE)).expect("read timeout");
    let mut head =
        format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).expect("write head");
    // A server may answer (413) before reading a large body; a broken pipe then is fine.
    let _ = stream.write_all(body);
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    let split = response.windows(4).position(|w| w == b"\r\n\r\n").expect("a complete HTTP response");
    let head = String::from_utf8_lossy(&response[..split]).to_string();
    let status: u16 = head.split(' ').nth(1).and_then(|s| s.parse().ok()).expect("status code");
    let mut body = response[split + 4..].to_vec();
    if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        body = dechunk(&body);
    }
    (status, body)
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = data.windows(2).position(|w| w == b"\r\n") else { return out };
        let size = usize::from_str_radix(String::from_utf8_lossy(&data[..eol]).trim(), 16).unwrap_or(0);
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&data[eol + 2..eol + 2 + size]);
        data = &data[eol + 2 + size + 2..];
    }
}

/// `GET path` as JSON.
pub fn get_json(addr: SocketAddr, path: &str) -> Value {
    let (status, body) = http(addr, "GET", path, &[], b"");
    assert_eq!(status, 200, "GET {path}");
    serde_json::from_slice(&body).expect("JSON body")
}

/// `journey check --format json FILES`: exit code and report.
pub fn check(files: &[&Path]) -> (Option<i32>, Value) {
    let out =
        Command::new(JOURNEY).args(["check", "--format", "json"]).args(files).output().expect("journey check runs");
    (out.status.code(), serde_json::from_slice(&out.stdout).expect("check prints JSON"))
}

/// The parts of a report that do not depend on where the spans came from: without `inputs`,
/// `serve`, and the input name and line of each violation (a file's line, or a request's
/// number); lists in a fixed order.
pub fn comparable(report: &Value) -> Value {
    let mut r = report.clone();
    let o = r.as_object_mut().expect("report is an object");
    o.remove("inputs");
    o.remove("serve");
    for list in ["violations", "incomplete_journeys"] {
        if let Some(Value::Array(items)) = o.get_mut(list) {
            for item in items.iter_mut() {
                if let Some(i) = item.as_object_mut() {
                    i.remove("path");
                    i.remove("line");
                    // R14 names the other span's line (a file line or a request number), in the
                    // message and in its structured detail alike.
                    let strip = |m: &mut String| {
                        if let Some(at) = m.find(" (line ") {
                            m.truncate(at);
                        }
                    };
                    if let Some(Value::String(m)) = i.get_mut("message") {
                        strip(m);
                    }
                    if let Some(Value::String(m)) = i.get_mut("detail").and_then(|d| d.get_mut("message")) {
                        strip(m);
                    }
                }
            }
            items.sort_by_key(|v| v.to_string());
        }
    }
    r
}

/// Whether `python3` runs at all (the only reason to skip a real-client test). On CI
/// (`CI=true`, as `.ci/run` is run) its absence is a failure, not a skip.
pub fn python() -> bool {
    let present = Command::new("python3").arg("--version").output().is_ok_and(|o| o.status.success());
    assert!(
        present || std::env::var("CI").as_deref() != Ok("true"),
        "python3 is missing on CI: the real-client tests must run"
    );
    present
}

/// Runs the Python replay client (tests/clients/otlp_replay.py), bounded.
pub fn replay_with_python(protocol: &str, endpoint: &str, gzip: bool, write: &Path, inputs: &[&Path]) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/otlp_replay.py");
    let mut cmd = Command::new("python3");
    cmd.arg(script).args(["--protocol", protocol, "--endpoint", endpoint, "--write"]).arg(write);
    if gzip {
        cmd.arg("--gzip");
    }
    cmd.args(inputs).stdin(Stdio::null());
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("python3 starts");
    let start = Instant::now();
    loop {
        if child.try_wait().expect("try_wait").is_some() {
            break;
        }
        if start.elapsed() > DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the Python client did not finish within {DEADLINE:?}");
        }
        thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().expect("python output");
    assert!(
        out.status.success(),
        "the Python OTLP client failed (are opentelemetry-sdk and opentelemetry-exporter-otlp installed? \
         `.ci/run` installs them with pip):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

pub fn data(path: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data").join(path)
}

/// The corrupted fixtures (one or two journeys breaking each rule), in name order.
pub fn corrupted() -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(data("corrupted"))
        .expect("tests/data/corrupted")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.to_string_lossy().ends_with(".otlp.jsonl"))
        // The core rules' corruptions (R*). The two-layer ones (SPEC §9) need each span's status
        // and flags as recorded, which a replay through the SDK re-creates only in part; they go
        // to the receiver as recorded requests in serve_layers.rs.
        .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('R')))
        .collect();
    files.sort();
    files
}

/// A temporary directory for one test, removed when dropped.
pub struct TempDir(pub std::path::PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("journey-serve-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        TempDir(dir)
    }
    pub fn path(&self, name: &str) -> std::path::PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
