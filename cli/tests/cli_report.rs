//! `journey report`, run as a user runs it: the page's numbers are the numbers of
//! `journey check --format json` on the same input; `--against` finds where two runs' journeys
//! first differ; and in a real browser (headless Chromium) the page draws its lanes, charts and
//! violation table without a script error, and stays usable for 10⁴ journeys.
//!
//! The browser tests need Chromium (Debian's `chromium` package; `JOURNEY_CHROMIUM` names
//! another binary). Without it they say why and pass, except on CI (`CI=true`), where they fail.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

fn data(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data").join(path)
}

fn scratch(name: &str) -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join(name)
}

fn journey(args: &[&str], paths: &[&Path]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_journey")).args(args).args(paths).output().unwrap()
}

/// The JSON report of `journey check`, and its text (for the exact numbers).
struct Check {
    json: Value,
    text: String,
}

impl std::ops::Index<&str> for Check {
    type Output = Value;
    fn index(&self, key: &str) -> &Value {
        &self.json[key]
    }
}

impl Check {
    /// The number `field` of the object `object` in the report, parsed from its text: serde_json
    /// (without `float_roundtrip`) may read a float one ulp off; `str::parse` is exact.
    fn exact(&self, object: &str, field: &str) -> f64 {
        let at = self.text.find(&format!(r#""{object}":{{"#)).unwrap_or_else(|| panic!("no {object}"));
        let rest = &self.text[at..];
        let from = rest.find(&format!(r#""{field}":"#)).unwrap() + field.len() + 3;
        let end = rest[from..].find([',', '}']).unwrap();
        rest[from..from + end].parse().unwrap()
    }
}

fn check_json(paths: &[&Path]) -> Check {
    let o = journey(&["check", "--format", "json"], paths);
    let text = String::from_utf8(o.stdout).unwrap();
    Check { json: serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}")), text }
}

/// Writes the report of `paths` (plus `extra` arguments) to `out` and returns the page and
/// the exit status.
fn report(out: &Path, extra: &[&str], paths: &[&Path]) -> (String, Option<i32>) {
    let mut args = vec!["report", "--out", out.to_str().unwrap()];
    args.extend_from_slice(extra);
    let o = journey(&args, paths);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("journey: wrote"), "{err}");
    (std::fs::read_to_string(out).unwrap(), o.status.code())
}

/// Every `data-stat` of run `run` in a page (or a DOM dump): name → value as written.
fn stats(page: &str, run: usize) -> BTreeMap<String, String> {
    let prefix = format!(r#"data-run="{run}" data-stat=""#);
    let mut out = BTreeMap::new();
    let mut rest = page;
    while let Some(at) = rest.find(&prefix) {
        rest = &rest[at + prefix.len()..];
        let name_end = rest.find('"').unwrap();
        let name = rest[..name_end].to_owned();
        let tail = &rest[name_end..];
        let v = tail.strip_prefix(r#"" data-value=""#).unwrap_or_else(|| panic!("no value after {name}"));
        let value = v[..v.find('"').unwrap()].to_owned();
        assert!(out.insert(name.clone(), value).is_none(), "{name} twice");
    }
    out
}

fn num(stats: &BTreeMap<String, String>, name: &str) -> f64 {
    stats.get(name).unwrap_or_else(|| panic!("the page has no {name}: {stats:?}")).parse().unwrap()
}

/// The page's numbers are the check's: every count, every percentile (bit for bit), the
/// preemption histogram and the finish statuses.
fn assert_same_numbers(page: &str, run: usize, check: &Check) {
    let s = stats(page, run);
    for name in ["journeys", "conforming", "incomplete", "violating", "events", "spans", "input_errors"] {
        assert_eq!(num(&s, name), check[name].as_f64().unwrap(), "{name}");
    }
    assert_eq!(num(&s, "violations"), check["violations"].as_array().unwrap().len() as f64);
    let st = &check["stats"];
    let mut compared = 0;
    for metric in ["queue_time_s", "time_to_first_token_s", "end_to_end_s"] {
        let d = &st[metric];
        if d.is_null() {
            assert_eq!(num(&s, &format!("{metric}.count")), 0.0);
            continue;
        }
        for field in ["count", "min", "p50", "p90", "p99", "max", "mean"] {
            let (page_v, check_v) = (num(&s, &format!("{metric}.{field}")), check.exact(metric, field));
            assert_eq!(page_v.to_bits(), check_v.to_bits(), "{metric}.{field}: page {page_v}, check {check_v}");
            compared += 1;
        }
    }
    assert!(compared > 0, "no distribution compared");
    let bins = st["preemptions"].as_array().unwrap();
    assert_eq!(s.keys().filter(|k| k.starts_with("preemptions.")).count(), bins.len());
    for b in bins {
        let n = b["preemptions"].as_u64().unwrap();
        assert_eq!(num(&s, &format!("preemptions.{n}")), b["journeys"].as_f64().unwrap(), "preemptions {n}");
    }
    for (status, count) in st["finish_status"].as_object().unwrap() {
        assert_eq!(num(&s, &format!("finish_status.{status}")), count.as_f64().unwrap(), "{status}");
    }
    assert_eq!(num(&s, "unfinished"), st["unfinished"].as_f64().unwrap());
}

/// The (rule, request id) of every row of a violation table, sorted.
fn violation_rows(page: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for part in page.split(r#"<tr class="violation" data-rule=""#).skip(1) {
        let rule = &part[..part.find('"').unwrap()];
        let after = part.split(r#"data-request=""#).nth(1).unwrap();
        out.push((rule.to_owned(), after[..after.find('"').unwrap()].to_owned()));
    }
    out.sort();
    out
}

fn corrupted() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(data("corrupted"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".otlp.jsonl"))
        .collect();
    v.sort();
    v
}

// ---- the numbers ----

#[test]
fn the_page_has_the_numbers_of_check() {
    for name in ["vllm/kv_pressure.otlp.jsonl", "vllm/basic.otlp.jsonl", "vllm-random/w6.otlp.jsonl"] {
        let path = data(name);
        let out = scratch(&format!("numbers-{}.html", name.replace('/', "-")));
        let (page, code) = report(&out, &[], &[&path]);
        assert_eq!(code, Some(0), "{name}");
        assert_same_numbers(&page, 0, &check_json(&[&path]));
        assert!(stats(&page, 1).is_empty(), "one run only");
    }
}

#[test]
fn every_violation_is_a_row_linking_to_its_timeline() {
    let paths = corrupted();
    let refs: Vec<&Path> = paths.iter().map(PathBuf::as_path).collect();
    let (page, code) = report(&scratch("corrupted.html"), &[], &refs);
    assert_eq!(code, Some(1), "violations exit as check does");
    let check = check_json(&refs);
    assert_same_numbers(&page, 0, &check);
    let mut expected: Vec<(String, String)> = check["violations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| (v["rule"].as_str().unwrap().to_owned(), v["request_id"].as_str().unwrap_or("?").to_owned()))
        .collect();
    expected.sort();
    assert_eq!(violation_rows(&page), expected);
    // One group per rule, and every link points at a timeline in the page.
    let rules: std::collections::BTreeSet<&str> = expected.iter().map(|e| e.0.as_str()).collect();
    assert_eq!(page.matches(r#"<tbody class="rule-group""#).count(), rules.len());
    for link in page.split(r##"<a class="journey-link" href="#"##).skip(1) {
        let target = &link[..link.find('"').unwrap()];
        assert!(page.contains(&format!(r#"<article class="timeline" id="{target}">"#)), "no timeline {target}");
    }
    // The timelines are what `journey timeline` prints.
    let r9 = data("corrupted/R9.preemption-count-off-by-one.otlp.jsonl");
    let first = check_json(&[&r9])["violations"][0]["request_id"].as_str().unwrap().to_owned();
    let t = journey(&["timeline", "--request", &first], &[&r9]);
    let text = String::from_utf8(t.stdout).unwrap();
    let line = text.lines().find(|l| l.contains("✗ R9")).unwrap();
    let escaped = line.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;");
    assert!(page.contains(&escaped.replace('\'', "&#39;")), "{line}");
}

#[test]
fn profile_and_complete_are_accepted_and_shown() {
    let path = data("vllm-random/w1.otlp.jsonl");
    let (page, code) = report(&scratch("w1-complete.html"), &["--profile", "sync", "--complete"], &[&path]);
    assert_eq!(code, Some(0));
    assert!(page.contains("profile <b>sync</b> · input declared complete"));
    // The async profile checks under the async relaxations and says so.
    let o = journey(&["report", "--profile", "async", "--out", "-"], &[&path]);
    assert_eq!(o.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&o.stdout).contains("profile <b>async</b>"));
    let o = journey(&["report", "--profile", "fast", "--out", "-"], &[&path]);
    assert_eq!(o.status.code(), Some(2), "an unknown profile is a usage error");
}

#[test]
fn the_page_fetches_nothing() {
    let (page, _) = report(&scratch("kv-offline.html"), &[], &[&data("vllm/kv_pressure.otlp.jsonl")]);
    for needle in ["http://", "https://", "src=", "<link", "@import", "url("] {
        let hits: Vec<&str> = page.match_indices(needle).map(|(i, _)| &page[i.saturating_sub(30)..i + 40]).collect();
        // The only URL is the SVG namespace, which names and fetches nothing.
        assert!(hits.iter().all(|h| h.contains("www.w3.org/2000/svg")), "{needle}: {hits:?}");
    }
    assert!(page.len() < 400_000, "kv_pressure's page is {} bytes", page.len());
}

// ---- two runs ----

/// kv_pressure's workload through the reference scheduler, with `blocks` KV blocks (None: as
/// recorded).
fn replay(blocks: Option<u64>) -> PathBuf {
    let mut w: Value =
        serde_json::from_str(&std::fs::read_to_string(data("vllm/kv_pressure.workload.json")).unwrap()).unwrap();
    if let Some(b) = blocks {
        w["config"]["num_blocks"] = Value::from(b);
    }
    let wl = scratch(&format!("kv-{blocks:?}.workload.json"));
    std::fs::write(&wl, serde_json::to_vec(&w).unwrap()).unwrap();
    let out = scratch(&format!("kv-{blocks:?}.otlp.jsonl"));
    let o = journey(&["simulate", "--workload", wl.to_str().unwrap(), "--out", out.to_str().unwrap()], &[]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    out
}

#[test]
fn against_the_replay_every_journey_is_identical() {
    let real = data("vllm/kv_pressure.otlp.jsonl");
    let ours = replay(None);
    let (page, code) = report(&scratch("kv-against-replay.html"), &["--against", ours.to_str().unwrap()], &[&real]);
    assert_eq!(code, Some(0));
    let s = stats(&page, 0);
    assert_eq!(
        (
            num(&s, "compare.identical"),
            num(&s, "compare.differing"),
            num(&s, "compare.only_in_a"),
            num(&s, "compare.only_in_b")
        ),
        (150.0, 0.0, 0.0, 0.0)
    );
    assert_same_numbers(&page, 0, &check_json(&[&real]));
    assert_same_numbers(&page, 1, &check_json(&[&ours]));
}

#[test]
fn against_a_roomier_cache_the_first_difference_is_found() {
    let real = data("vllm/kv_pressure.otlp.jsonl");
    let roomy = replay(Some(400));
    let (page, _) = report(&scratch("kv-against-roomy.html"), &["--against", roomy.to_str().unwrap()], &[&real]);
    let s = stats(&page, 0);
    let differing = num(&s, "compare.differing");
    assert!(differing > 0.0 && differing <= 150.0, "{differing}");
    assert_eq!(num(&s, "compare.identical") + differing, 150.0);
    assert_eq!(page.matches(r#"<tr class="difference""#).count() as f64, differing);
    // With more blocks, fewer preemptions: B's histogram has fewer preempted journeys.
    let preempted = |run| {
        stats(&page, run)
            .iter()
            .filter(|(k, _)| k.starts_with("preemptions.") && *k != "preemptions.0")
            .map(|(_, v)| v.parse::<f64>().unwrap())
            .sum::<f64>()
    };
    assert!(preempted(1) < preempted(0), "{} vs {}", preempted(1), preempted(0));
    // A difference names the event of each side: the first PREEMPTED of A is absent in B, say.
    assert!(page.contains("@ step"), "differences name the step");
}

// ---- in a real browser ----

/// The Chromium binary, or why there is none (then the test passes, except on CI).
fn chromium() -> Option<PathBuf> {
    let candidates: Vec<PathBuf> = match std::env::var_os("JOURNEY_CHROMIUM") {
        Some(p) => vec![PathBuf::from(p)],
        None => ["chromium", "chromium-browser", "google-chrome"].iter().map(PathBuf::from).collect(),
    };
    for c in &candidates {
        let ok = Command::new(c)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            return Some(c.clone());
        }
    }
    let why = format!(
        "no Chromium found (tried {:?}); install Debian's `chromium` package or set JOURNEY_CHROMIUM",
        candidates
    );
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("CI must run the browser tests: {why}");
    }
    // Straight to stderr, past the test harness's capture, so that the skip shows.
    let _ = writeln!(std::io::stderr(), "SKIPPED: the browser tests need Chromium: {why}");
    None
}

/// Runs headless Chromium on `page` with `args` (`--dump-dom`, `--screenshot=...`) in a fresh
/// profile, network features off; returns stdout. Gives up after two minutes.
fn run_chromium(chromium: &Path, page: &Path, args: &[String]) -> String {
    // A fresh profile per run: tests run in parallel, and two Chromiums cannot share one.
    static RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let profile = scratch(&format!("chromium-profile-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&profile);
    std::fs::create_dir_all(&profile).unwrap();
    let mut child = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(format!("file://{}", page.display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "chromium exited with {status}");
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish within two minutes");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = std::fs::remove_dir_all(&profile);
    reader.join().unwrap()
}

fn dump_dom(chromium: &Path, page: &Path) -> String {
    let dom = run_chromium(chromium, page, &["--dump-dom".to_owned(), "--window-size=1280,2000".to_owned()]);
    assert!(dom.contains(r#"data-ready="true""#), "the script did not finish: {}", &dom[..dom.len().min(500)]);
    dom
}

/// The errors the page recorded (`window.onerror`, `console.error`).
fn page_errors(dom: &str) -> (usize, String) {
    let at = dom.find(r#"<pre id="page-errors" data-count=""#).expect("the error element");
    let rest = &dom[at + r#"<pre id="page-errors" data-count=""#.len()..];
    let count = rest[..rest.find('"').unwrap()].parse().unwrap();
    let text = rest[rest.find('>').unwrap() + 1..rest.find("</pre>").unwrap()].to_owned();
    (count, text)
}

fn attr<'a>(dom: &'a str, element_start: &str, name: &str) -> &'a str {
    let at = dom.find(element_start).unwrap_or_else(|| panic!("no {element_start}"));
    let tag = &dom[at..at + dom[at..].find('>').unwrap()];
    let key = format!(r#"{name}=""#);
    let v = &tag[tag.find(&key).unwrap_or_else(|| panic!("no {name} in {tag}")) + key.len()..];
    &v[..v.find('"').unwrap()]
}

#[test]
fn in_chromium_the_page_draws_lanes_charts_and_violations() {
    let Some(chromium) = chromium() else { return };
    let kv = data("vllm/kv_pressure.otlp.jsonl");
    let page = scratch("browser-kv.html");
    report(&page, &[], &[&kv]);
    let dom = dump_dom(&chromium, &page);
    assert_eq!(page_errors(&dom), (0, String::new()));
    assert_eq!(attr(&dom, r#"<div class="lanes"#, "data-rendered"), "150", "every lane drawn");
    assert_eq!(dom.matches(r#"<g class="lane"#).count(), 150);
    // Each preemption is a preempted stretch until its RESUME (or FINISHED).
    assert_eq!(dom.matches(r#"class="seg preempted""#).count(), 790);
    // kv_pressure's 790 preemptions are 790 marks; every journey finishes, once.
    assert_eq!(dom.matches(r#"class="m-preemption""#).count(), 790);
    assert_eq!(dom.matches(r#"class="m-finish""#).count(), 150);
    // Load, three histograms, preemptions and finish statuses.
    for chart in
        ["load-0-0", "queue_time_s-0", "time_to_first_token_s-0", "end_to_end_s-0", "preemptions-0", "finish-status-0"]
    {
        assert!(dom.contains(&format!(r#"data-chart="{chart}""#)), "no chart {chart}");
    }
    // The numbers survive the browser too.
    assert_same_numbers(&dom, 0, &check_json(&[&kv]));

    let shot = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/report-kv_pressure.png");
    run_chromium(&chromium, &page, &[format!("--screenshot={}", shot.display()), "--window-size=1280,2400".to_owned()]);
    let png = std::fs::read(&shot).unwrap();
    assert!(png.starts_with(b"\x89PNG") && png.len() > 10_000, "screenshot of {} bytes", png.len());

    // The violations of the corrupted fixtures: one table row each, every link to a timeline.
    let paths = corrupted();
    let refs: Vec<&Path> = paths.iter().map(PathBuf::as_path).collect();
    let page = scratch("browser-corrupted.html");
    report(&page, &[], &refs);
    let dom = dump_dom(&chromium, &page);
    assert_eq!(page_errors(&dom), (0, String::new()));
    let check = check_json(&refs);
    assert_eq!(violation_rows(&dom).len(), check["violations"].as_array().unwrap().len());
    assert_eq!(dom.matches(r#"<g class="lane violating""#).count() as u64, check["violating"].as_u64().unwrap());
    assert_eq!(dom.matches(r#"<article class="timeline""#).count() as u64, check["violating"].as_u64().unwrap());
    let shot = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/report-corrupted.png");
    run_chromium(&chromium, &page, &[format!("--screenshot={}", shot.display()), "--window-size=1280,2400".to_owned()]);
}

#[test]
fn in_chromium_a_script_error_would_be_seen() {
    let Some(chromium) = chromium() else { return };
    let (page, _) = report(&scratch("browser-broken-src.html"), &[], &[&data("vllm-random/w1.otlp.jsonl")]);
    // The same page with a failing script and a console.error added at its end.
    let broken = page.replace("</body>", "<script>console.error('seen'); no_such_function();</script></body>");
    let path = scratch("browser-broken.html");
    std::fs::write(&path, broken).unwrap();
    let dom = dump_dom(&chromium, &path);
    let (count, text) = page_errors(&dom);
    assert_eq!(count, 2, "{text}");
    assert!(text.contains("console.error: seen") && text.contains("no_such_function"), "{text}");
}

#[test]
fn in_chromium_ten_thousand_journeys_draw_only_the_lanes_in_view() {
    let Some(chromium) = chromium() else { return };
    let trace = scratch("large.otlp.jsonl");
    let o = journey(
        &["simulate", "--seed", "3", "--requests", "10000", "--arrival-rate", "2", "--out", trace.to_str().unwrap()],
        &[],
    );
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let page = scratch("browser-large.html");
    let (html, _) = report(&page, &[], &[&trace]);
    let size = html.len();
    assert!(size < 16_000_000, "the page of 10⁴ journeys is {size} bytes");
    let dom = dump_dom(&chromium, &page);
    assert_eq!(page_errors(&dom), (0, String::new()));
    let lanes = r#"<div class="lanes virtual"#;
    assert_eq!(attr(&dom, lanes, "data-journeys"), "10000");
    assert_eq!(attr(&dom, lanes, "data-shown"), "10000");
    let rendered: usize = attr(&dom, lanes, "data-rendered").parse().unwrap();
    assert!(rendered > 100 && rendered < 1000, "{rendered} lanes drawn of 10000");
    assert_eq!(dom.matches(r#"<g class="lane"#).count(), rendered);
    assert_same_numbers(&dom, 0, &check_json(&[&trace]));
    let shot = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/report-large.png");
    run_chromium(&chromium, &page, &[format!("--screenshot={}", shot.display()), "--window-size=1280,1400".to_owned()]);
}
