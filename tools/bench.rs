//! The tinyws benchmark runner: `cargo run --release --example bench -- [--quick]`.
//!
//! It builds the release binaries, then for every scenario starts each server as a child
//! process on a fresh loopback port, waits for the port, runs `tools/loadgen.rs`
//! against it (the load generator samples the server's `/proc/PID` and `/proc/meminfo`
//! exactly around the measured window), and stops the server. Servers are compared in
//! one run, alternating A B C A B C, and the table quotes medians and the median of the
//! per-pair ratios: only ratios carry over between machines. It writes `results.md` and
//! SVG charts into `--out` (default `target/bench`) and prints the table.
//!
//! Compared: tinyws (default settings), `tools/plain_echo.rs` (the plain baseline:
//! tungstenite with upstream defaults) and `tools/raw_echo.rs` (raw TCP echo: the
//! floor). Loopback only; every loop is bounded in count and time.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use argh::FromArgs;

/// Benchmark tinyws against a plain tungstenite echo and a raw TCP echo (loopback only).
#[derive(FromArgs)]
struct Args {
    /// short run: one repetition, short windows, no 10,000-connection step
    #[argh(switch)]
    quick: bool,
    /// repetitions of each A/B comparison (default 3)
    #[argh(option, default = "3")]
    reps: usize,
    /// where results.md and the SVG charts go (default target/bench)
    #[argh(option, default = "PathBuf::from(\"target/bench\")")]
    out: PathBuf,
    /// the core that pinned scenarios use (default 0)
    #[argh(option, default = "0")]
    core: usize,
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Kind {
    Tinyws,
    /// tinyws with glibc's per-thread malloc cache off (docs/embedded.md).
    TinywsNoTcache,
    Plain,
    Raw,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Tinyws => "tinyws",
            Kind::TinywsNoTcache => "tinyws, tcache off",
            Kind::Plain => "plain",
            Kind::Raw => "raw TCP",
        }
    }
}

type Metrics = BTreeMap<String, f64>;

struct Bench {
    dir: PathBuf,
    core: usize,
    log: PathBuf,
}

/// A server child process, killed on drop.
struct Server {
    child: Child,
    addr: SocketAddr,
    rss_start_kib: f64,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(0)
}

fn status_kib(pid: u32, key: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(f64::NAN)
}

impl Bench {
    fn bin(&self, kind: Kind) -> PathBuf {
        match kind {
            Kind::Tinyws | Kind::TinywsNoTcache => self.dir.join("tinyws"),
            Kind::Plain => self.dir.join("examples/plain_echo"),
            Kind::Raw => self.dir.join("examples/raw_echo"),
        }
    }

    /// Starts a server; `pin` runs it on one core. `Err` if it exits or never listens.
    fn start(&self, kind: Kind, extra: &[&str], pin: bool) -> Result<Server, String> {
        let port = free_port();
        let addr: SocketAddr = format!("127.0.0.1:{port}")
            .parse()
            .map_err(|e| format!("{e}"))?;
        let mut cmd = if pin {
            let mut c = Command::new("taskset");
            c.arg("-c").arg(self.core.to_string()).arg(self.bin(kind));
            c
        } else {
            Command::new(self.bin(kind))
        };
        match kind {
            Kind::Tinyws | Kind::TinywsNoTcache => {
                cmd.args(["--bind", "127.0.0.1", "--port", &port.to_string()]);
                cmd.args(extra);
                // Default logging (info), as a user would run it.
                cmd.env("RUST_LOG", "info");
                if kind == Kind::TinywsNoTcache {
                    cmd.env("GLIBC_TUNABLES", "glibc.malloc.tcache_count=0");
                }
            }
            _ => {
                cmd.arg(addr.to_string());
                cmd.args(extra);
            }
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .map_err(|e| format!("{}: {e}", self.log.display()))?;
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", kind.name()))?;
        // RSS at start: sampled before any connection (the port probe below starts a
        // connection thread, which is not part of an idle server's footprint).
        std::thread::sleep(Duration::from_millis(300));
        let rss_start_kib = status_kib(child.id(), "VmRSS:");
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!("{} exited at start ({status})", kind.name()));
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_ok() {
                break;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("{} did not listen within 5 s", kind.name()));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // Let the probe connection above end before the baseline sample.
        std::thread::sleep(Duration::from_millis(200));
        Ok(Server {
            child,
            addr,
            rss_start_kib,
        })
    }

    /// Runs the load generator against `server`; kills it after `limit`.
    fn load(
        &self,
        server: &Server,
        args: &[String],
        pin: bool,
        limit: Duration,
    ) -> Result<Metrics, String> {
        let loadgen = self.dir.join("examples/loadgen");
        let mut cmd = if pin {
            let mut c = Command::new("taskset");
            c.arg("-c").arg(self.core.to_string()).arg(loadgen);
            c
        } else {
            Command::new(loadgen)
        };
        cmd.args(["--addr", &server.addr.to_string()])
            .args(["--pid", &server.child.id().to_string()])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("cannot start loadgen: {e}"))?;
        let deadline = Instant::now() + limit;
        let status = loop {
            if let Ok(Some(s)) = child.try_wait() {
                break s;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("loadgen {args:?} took over {limit:?}"));
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let (mut out, mut err) = (String::new(), String::new());
        if let Some(mut o) = child.stdout.take() {
            let _ = o.read_to_string(&mut out);
        }
        if let Some(mut e) = child.stderr.take() {
            let _ = e.read_to_string(&mut err);
        }
        if !status.success() {
            return Err(format!("loadgen {args:?}: {}", err.trim()));
        }
        let mut m: Metrics = out
            .split_whitespace()
            .filter_map(|kv| kv.split_once('='))
            .filter_map(|(k, v)| Some((k.to_string(), v.parse().ok()?)))
            .collect();
        m.insert("rss_at_start_kib".into(), server.rss_start_kib);
        Ok(m)
    }

    /// Starts `kind`, runs one load, stops it.
    fn once(
        &self,
        kind: Kind,
        extra: &[&str],
        args: &[String],
        pin: bool,
        limit: Duration,
    ) -> Result<Metrics, String> {
        let server = self.start(kind, extra, pin)?;
        self.load(&server, args, pin, limit)
    }
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.retain(|x| x.is_finite());
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// One comparison: every repetition runs each server once, in turn.
struct Comparison {
    runs: BTreeMap<Kind, Vec<Metrics>>,
}

impl Comparison {
    fn value(&self, kind: Kind, f: &dyn Fn(&Metrics) -> f64) -> Vec<f64> {
        self.runs
            .get(&kind)
            .map(|r| r.iter().map(f).collect())
            .unwrap_or_default()
    }
    fn median(&self, kind: Kind, f: &dyn Fn(&Metrics) -> f64) -> f64 {
        median(self.value(kind, f))
    }
    /// The median of the per-repetition ratios a / b.
    fn ratio(&self, a: Kind, b: Kind, f: &dyn Fn(&Metrics) -> f64) -> f64 {
        let (x, y) = (self.value(a, f), self.value(b, f));
        median(x.iter().zip(&y).map(|(x, y)| x / y).collect())
    }
}

fn compare(
    b: &Bench,
    label: &str,
    reps: usize,
    kinds: &[(Kind, Vec<&str>, Vec<String>)],
    pin: bool,
    limit: Duration,
) -> Comparison {
    let mut runs: BTreeMap<Kind, Vec<Metrics>> = BTreeMap::new();
    for rep in 0..reps {
        for (kind, extra, args) in kinds {
            match b.once(*kind, extra, args, pin, limit) {
                Ok(m) => runs.entry(*kind).or_default().push(m),
                Err(e) => {
                    eprintln!("  {label} rep {rep} {}: FAILED: {e}", kind.name());
                    runs.entry(*kind).or_default().push(Metrics::new());
                }
            }
        }
        eprintln!("  {label}: repetition {} of {reps} done", rep + 1);
    }
    Comparison { runs }
}

fn get(key: &'static str) -> impl Fn(&Metrics) -> f64 {
    move |m| m.get(key).copied().unwrap_or(f64::NAN)
}

/// Server CPU per message in microseconds, from the threads' schedstat run time.
fn cpu_per_msg(m: &Metrics) -> f64 {
    let n = m.get("msgs").copied().unwrap_or(f64::NAN);
    m.get("srv_run_s").copied().unwrap_or(f64::NAN) * 1e6 / n
}

struct Row {
    scenario: String,
    metric: String,
    values: [f64; 3],
    ratio: String,
    target: String,
    verdict: String,
}

fn fmt(v: f64) -> String {
    if !v.is_finite() {
        "–".into()
    } else if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

fn verdict(ok: bool, v: f64) -> String {
    if !v.is_finite() {
        "not measured".into()
    } else if ok {
        "met".into()
    } else {
        "NOT met".into()
    }
}

// ------------------------------------------------------------------ SVG charts

/// A line chart with logarithmic axes, as a standalone SVG document.
fn svg_chart(
    title: &str,
    xlabel: &str,
    ylabel: &str,
    series: &[(String, Vec<(f64, f64)>)],
) -> String {
    let (w, h, l, r, t, bm) = (640.0, 400.0, 70.0, 150.0, 40.0, 50.0);
    let pts: Vec<(f64, f64)> = series
        .iter()
        .flat_map(|s| s.1.iter().copied())
        .filter(|p| p.0 > 0.0 && p.1 > 0.0 && p.0.is_finite() && p.1.is_finite())
        .collect();
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">
<rect width="{w}" height="{h}" fill="white"/>
<text x="{}" y="22" text-anchor="middle" font-size="15">{title}</text>
"#,
        (w - r + l) / 2.0
    );
    if pts.is_empty() {
        svg.push_str("<text x=\"200\" y=\"200\">no data</text></svg>\n");
        return svg;
    }
    let lg = |v: f64| v.log10();
    let (mut x0, mut x1) = (lg(pts[0].0), lg(pts[0].0));
    let (mut y0, mut y1) = (lg(pts[0].1), lg(pts[0].1));
    for p in &pts {
        x0 = x0.min(lg(p.0));
        x1 = x1.max(lg(p.0));
        y0 = y0.min(lg(p.1));
        y1 = y1.max(lg(p.1));
    }
    let (x0, x1) = (x0.floor(), x1.ceil().max(x0.floor() + 1.0));
    let (y0, y1) = (y0.floor(), y1.ceil().max(y0.floor() + 1.0));
    let px = |x: f64| l + (lg(x) - x0) / (x1 - x0) * (w - l - r);
    let py = |y: f64| h - bm - (lg(y) - y0) / (y1 - y0) * (h - t - bm);
    // Grid lines and labels at powers of ten.
    for e in (x0 as i32)..=(x1 as i32) {
        let x = px(10f64.powi(e));
        let _ = writeln!(
            svg,
            r##"<line x1="{x:.1}" y1="{t}" x2="{x:.1}" y2="{}" stroke="#ddd"/><text x="{x:.1}" y="{}" text-anchor="middle">{}</text>"##,
            h - bm,
            h - bm + 16.0,
            short(10f64.powi(e))
        );
    }
    for e in (y0 as i32)..=(y1 as i32) {
        let y = py(10f64.powi(e));
        let _ = writeln!(
            svg,
            r##"<line x1="{l}" y1="{y:.1}" x2="{}" y2="{y:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" text-anchor="end">{}</text>"##,
            w - r,
            l - 6.0,
            y + 4.0,
            short(10f64.powi(e))
        );
    }
    let _ = writeln!(
        svg,
        r#"<text x="{}" y="{}" text-anchor="middle">{xlabel}</text>
<text transform="translate(16,{}) rotate(-90)" text-anchor="middle">{ylabel}</text>"#,
        (w - r + l) / 2.0,
        h - 12.0,
        (h - bm + t) / 2.0
    );
    let colors = ["#d62728", "#1f77b4", "#7f7f7f", "#2ca02c"];
    for (i, (name, points)) in series.iter().enumerate() {
        let c = colors[i % colors.len()];
        let path: Vec<String> = points
            .iter()
            .filter(|p| p.0 > 0.0 && p.1 > 0.0 && p.1.is_finite())
            .map(|p| format!("{:.1},{:.1}", px(p.0), py(p.1)))
            .collect();
        let _ = writeln!(
            svg,
            r#"<polyline fill="none" stroke="{c}" stroke-width="2" points="{}"/>"#,
            path.join(" ")
        );
        for p in &path {
            let (x, y) = p.split_once(',').unwrap_or(("0", "0"));
            let _ = writeln!(svg, r#"<circle cx="{x}" cy="{y}" r="3" fill="{c}"/>"#);
        }
        let ly = t + 10.0 + i as f64 * 18.0;
        let _ = writeln!(
            svg,
            r#"<line x1="{}" y1="{ly}" x2="{}" y2="{ly}" stroke="{c}" stroke-width="2"/><text x="{}" y="{}">{name}</text>"#,
            w - r + 10.0,
            w - r + 30.0,
            w - r + 36.0,
            ly + 4.0
        );
    }
    svg.push_str("</svg>\n");
    svg
}

fn short(v: f64) -> String {
    match v {
        v if v >= 1e9 => format!("{}G", v / 1e9),
        v if v >= 1e6 => format!("{}M", v / 1e6),
        v if v >= 1e3 => format!("{}k", v / 1e3),
        v => format!("{v}"),
    }
}

// ------------------------------------------------------------------ main

fn main() {
    let mut args: Args = argh::from_env();
    if args.quick {
        args.reps = 1;
    }
    let reps = args.reps.max(1);
    let secs = if args.quick { "0.5" } else { "2" };
    let limit = Duration::from_secs(180);

    // The release binaries this run measures.
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let built = Command::new(&cargo)
        .args(["build", "--release", "--bin", "tinyws"])
        .args([
            "--example",
            "plain_echo",
            "--example",
            "raw_echo",
            "--example",
            "loadgen",
        ])
        .status();
    if !matches!(built, Ok(s) if s.success()) {
        eprintln!("bench: cargo build --release failed");
        std::process::exit(1);
    }
    let target = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into());
    let _ = std::fs::create_dir_all(&args.out);
    let bench = Bench {
        dir: Path::new(&target).join("release"),
        core: args.core,
        // Logs and the stripped copy are not results: they stay under target/.
        log: Path::new(&target).join("bench-servers.log"),
    };
    let _ = std::fs::remove_file(&bench.log);
    let mut rows: Vec<Row> = Vec::new();
    let t = Kind::Tinyws;
    let p = Kind::Plain;
    let r = Kind::Raw;
    let none: Vec<&str> = Vec::new();
    let many = vec!["--max-connections", "11000"];

    // 1. Latency-bound echo, pinned to one core with the client.
    eprintln!("echo 1 × 32 B, pinned to core {}", args.core);
    let echo1 = |sc: &str| {
        s(&[
            "--scenario",
            sc,
            "--conns",
            "1",
            "--size",
            "32",
            "--secs",
            secs,
        ])
    };
    let c = compare(
        &bench,
        "echo1",
        reps,
        &[
            (t, none.clone(), echo1("echo")),
            (p, none.clone(), echo1("echo")),
            (r, none.clone(), echo1("raw")),
        ],
        true,
        limit,
    );
    let f = get("msg_per_s");
    let ratio = c.ratio(t, r, &f);
    rows.push(Row {
        scenario: "echo 1 conn × 32 B, pinned to one core".into(),
        metric: "msg/s".into(),
        values: [c.median(t, &f), c.median(p, &f), c.median(r, &f)],
        ratio: format!("{} × raw", fmt(ratio)),
        target: "≥ 0.95 × raw".into(),
        verdict: verdict(ratio >= 0.95, ratio),
    });
    let f = get("p50_us");
    rows.push(Row {
        scenario: "echo 1 conn × 32 B, pinned".into(),
        metric: "round trip p50, µs".into(),
        values: [c.median(t, &f), c.median(p, &f), c.median(r, &f)],
        ratio: format!("{} × raw", fmt(c.ratio(t, r, &f))),
        target: "(reported)".into(),
        verdict: String::new(),
    });

    // 2. Many connections of small messages: server CPU per message.
    eprintln!("echo 16 × 32 B");
    let echo16 = |sc: &str| {
        s(&[
            "--scenario",
            sc,
            "--conns",
            "16",
            "--size",
            "32",
            "--secs",
            secs,
        ])
    };
    let c = compare(
        &bench,
        "echo16",
        reps,
        &[
            (t, none.clone(), echo16("echo")),
            (p, none.clone(), echo16("echo")),
            (r, none.clone(), echo16("raw")),
        ],
        false,
        limit,
    );
    let echo_cpu_tinyws = c.median(t, &cpu_per_msg);
    let echo_cpu_raw = c.median(r, &cpu_per_msg);
    let ratio = c.ratio(t, r, &cpu_per_msg);
    rows.push(Row {
        scenario: "echo 16 conns × 32 B".into(),
        metric: "server CPU µs / msg".into(),
        values: [
            echo_cpu_tinyws,
            c.median(p, &cpu_per_msg),
            c.median(r, &cpu_per_msg),
        ],
        ratio: format!("{} × raw", fmt(ratio)),
        target: "≤ 1.1 × raw".into(),
        verdict: verdict(ratio <= 1.1, ratio),
    });
    let f = get("msg_per_s");
    rows.push(Row {
        scenario: "echo 16 conns × 32 B".into(),
        metric: "msg/s".into(),
        values: [c.median(t, &f), c.median(p, &f), c.median(r, &f)],
        ratio: format!("{} × raw", fmt(c.ratio(t, r, &f))),
        target: "(reported)".into(),
        verdict: String::new(),
    });

    // 3. Large messages: throughput.
    eprintln!("echo 4 × 64 KiB");
    let echo64 = |sc: &str| {
        s(&[
            "--scenario",
            sc,
            "--conns",
            "4",
            "--size",
            "65536",
            "--secs",
            secs,
        ])
    };
    let c = compare(
        &bench,
        "echo64k",
        reps,
        &[
            (t, none.clone(), echo64("echo")),
            (p, none.clone(), echo64("echo")),
            (r, none.clone(), echo64("raw")),
        ],
        false,
        limit,
    );
    let f = get("mb_per_s");
    let ratio = c.ratio(t, r, &f);
    rows.push(Row {
        scenario: "echo 4 conns × 64 KiB".into(),
        metric: "MB/s".into(),
        values: [c.median(t, &f), c.median(p, &f), c.median(r, &f)],
        ratio: format!(
            "{} × raw (plain: {} × raw)",
            fmt(ratio),
            fmt(c.ratio(p, r, &f))
        ),
        target: "≥ 0.8 × raw".into(),
        verdict: verdict(ratio >= 0.8, ratio),
    });
    rows.push(Row {
        scenario: "echo 4 conns × 64 KiB".into(),
        metric: "server CPU µs / msg".into(),
        values: [
            c.median(t, &cpu_per_msg),
            c.median(p, &cpu_per_msg),
            c.median(r, &cpu_per_msg),
        ],
        ratio: format!("{} × raw", fmt(c.ratio(t, r, &cpu_per_msg))),
        target: "(reported)".into(),
        verdict: String::new(),
    });

    // 4. Pipelined.
    eprintln!("pipelined 4 × 1 KiB, 32 in flight");
    let pipe = s(&[
        "--scenario",
        "pipeline",
        "--conns",
        "4",
        "--size",
        "1024",
        "--window",
        "32",
        "--secs",
        secs,
    ]);
    let c = compare(
        &bench,
        "pipeline",
        reps,
        &[
            (t, none.clone(), pipe.clone()),
            (p, none.clone(), pipe.clone()),
        ],
        false,
        limit,
    );
    let f = get("msg_per_s");
    let ratio = c.ratio(t, p, &f);
    rows.push(Row {
        scenario: "pipelined 4 conns × 1 KiB, 32 in flight".into(),
        metric: "msg/s".into(),
        values: [c.median(t, &f), c.median(p, &f), f64::NAN],
        ratio: format!("{} × plain", fmt(ratio)),
        target: "≥ 1.0 × plain".into(),
        verdict: verdict(ratio >= 1.0, ratio),
    });

    // 5. Handshakes.
    eprintln!("handshakes");
    let hs = s(&["--scenario", "handshake", "--conns", "4", "--secs", secs]);
    let c = compare(
        &bench,
        "handshake",
        reps,
        &[(t, none.clone(), hs.clone()), (p, none.clone(), hs.clone())],
        false,
        limit,
    );
    let f = get("hs_per_s");
    let ratio = c.ratio(t, p, &f);
    rows.push(Row {
        scenario: "handshakes (connect, upgrade, close handshake), 4 clients".into(),
        metric: "handshakes/s".into(),
        values: [c.median(t, &f), c.median(p, &f), f64::NAN],
        ratio: format!("{} × plain", fmt(ratio)),
        target: "≥ 1.5 × plain".into(),
        verdict: verdict(ratio >= 1.5, ratio),
    });
    let per_hs = |m: &Metrics| {
        m.get("srv_cpu_s").copied().unwrap_or(f64::NAN) * 1e6
            / m.get("handshakes").copied().unwrap_or(f64::NAN)
    };
    rows.push(Row {
        scenario: "handshakes".into(),
        metric: "server CPU µs / handshake".into(),
        values: [c.median(t, &per_hs), c.median(p, &per_hs), f64::NAN],
        ratio: format!("{} × plain", fmt(c.ratio(t, p, &per_hs))),
        target: "(reported; 10 ms ticks)".into(),
        verdict: String::new(),
    });

    // 6. Memory per idle connection at 5,000.
    eprintln!("5,000 idle connections");
    let idle5k = s(&[
        "--scenario",
        "idle",
        "--conns",
        if args.quick { "500" } else { "5000" },
        "--secs",
        "1",
    ]);
    let c = compare(
        &bench,
        "idle5000",
        reps,
        &[
            (t, many.clone(), idle5k.clone()),
            (p, none.clone(), idle5k.clone()),
            (Kind::TinywsNoTcache, many.clone(), idle5k.clone()),
        ],
        false,
        limit,
    );
    let f = get("rss_per_conn_kib");
    let v = c.median(t, &f);
    let quiet = c.median(Kind::TinywsNoTcache, &f);
    rows.push(Row {
        scenario: format!("memory per idle connection, {} connections", idle5k[3]),
        metric: "ΔRSS KiB / conn".into(),
        values: [v, c.median(p, &f), f64::NAN],
        ratio: format!("{} × plain", fmt(c.ratio(t, p, &f))),
        target: "≤ 12 KiB".into(),
        verdict: verdict(v <= 12.0, v),
    });
    rows.push(Row {
        scenario:
            "  the same, tinyws with glibc's per-thread malloc cache off (GLIBC_TUNABLES=glibc.malloc.tcache_count=0)"
                .into(),
        metric: "ΔRSS KiB / conn".into(),
        values: [quiet, f64::NAN, f64::NAN],
        ratio: format!("{} × plain", fmt(c.ratio(Kind::TinywsNoTcache, p, &f))),
        target: "≤ 12 KiB".into(),
        verdict: verdict(quiet <= 12.0, quiet),
    });
    let f = get("kmem_per_conn_kib");
    rows.push(Row {
        scenario: "  kernel memory per idle connection".into(),
        metric: "Δ(KernelStack + PageTables) KiB / conn".into(),
        values: [c.median(t, &f), c.median(p, &f), f64::NAN],
        ratio: String::new(),
        target: "(reported; machine-wide)".into(),
        verdict: String::new(),
    });
    // 6b. The same after each connection echoed one large message: what stays of it.
    eprintln!("1,000 idle connections after one 60 KB message each");
    let idle_big = s(&[
        "--scenario",
        "idle",
        "--conns",
        if args.quick { "200" } else { "1000" },
        "--first-message",
        "60000",
        "--secs",
        "1",
    ]);
    let big = compare(
        &bench,
        "idle-after-60KB",
        reps,
        &[
            (t, many.clone(), idle_big.clone()),
            (p, none.clone(), idle_big.clone()),
        ],
        false,
        limit,
    );
    let f = get("rss_per_conn_kib");
    rows.push(Row {
        scenario: format!(
            "  the same after one 60 KB echo on each, {} connections",
            idle_big[3]
        ),
        metric: "ΔRSS KiB / conn".into(),
        values: [big.median(t, &f), big.median(p, &f), f64::NAN],
        ratio: format!("{} × plain", fmt(big.ratio(t, p, &f))),
        target: "(reported)".into(),
        verdict: String::new(),
    });
    let f = get("rss_at_start_kib");
    let v = c.median(t, &f) / 1024.0;
    rows.push(Row {
        scenario: "RSS at start".into(),
        metric: "MiB".into(),
        values: [v, c.median(p, &f) / 1024.0, f64::NAN],
        ratio: String::new(),
        target: "≤ 2.5 MiB".into(),
        verdict: verdict(v <= 2.5, v),
    });

    // 7. CPU of 1,000 idle connections over 10 s.
    eprintln!("1,000 idle connections for 10 s");
    let idle1k = s(&[
        "--scenario",
        "idle",
        "--conns",
        "1000",
        "--secs",
        if args.quick { "2" } else { "10" },
    ]);
    let c = compare(
        &bench,
        "idle1000",
        1,
        &[
            (t, many.clone(), idle1k.clone()),
            (p, none.clone(), idle1k.clone()),
        ],
        false,
        limit,
    );
    let f = get("hold_cpu_pct");
    let v = c.median(t, &f);
    rows.push(Row {
        scenario: format!("1,000 idle connections for {} s", idle1k[5]),
        metric: "% of a core".into(),
        values: [v, c.median(p, &f), f64::NAN],
        ratio: String::new(),
        target: "< 0.1 %".into(),
        verdict: verdict(v < 0.1, v),
    });

    // 8. Broadcast fan-out, against the raw TCP fan-out: one blocking write per member,
    // the least a server can do with TCP sockets.
    eprintln!("broadcast 1 → 100");
    let bc = |sc: &str| {
        s(&[
            "--scenario",
            sc,
            "--conns",
            "100",
            "--size",
            "32",
            "--secs",
            secs,
        ])
    };
    let c = compare(
        &bench,
        "broadcast",
        reps,
        &[
            (
                t,
                vec!["--broadcast", "--max-connections", "1000"],
                bc("broadcast"),
            ),
            (r, vec!["broadcast"], bc("raw_broadcast")),
        ],
        false,
        limit,
    );
    let per_delivery = |m: &Metrics| {
        m.get("srv_run_s").copied().unwrap_or(f64::NAN) * 1e6
            / m.get("deliveries").copied().unwrap_or(f64::NAN)
    };
    let v = c.median(t, &per_delivery);
    let ratio = v / echo_cpu_tinyws;
    rows.push(Row {
        scenario: "broadcast 1 sender → 100 receivers × 32 B".into(),
        metric: "server CPU µs / delivery".into(),
        values: [v, f64::NAN, c.median(r, &per_delivery)],
        ratio: format!("{} × tinyws echo CPU/msg", fmt(ratio)),
        target: "≤ 0.5 × echo CPU/msg".into(),
        verdict: verdict(ratio <= 0.5, ratio),
    });
    let floor = c.median(r, &per_delivery) / echo_cpu_raw;
    rows.push(Row {
        scenario: "  broadcast, raw TCP fan-out (raw column)".into(),
        metric: "server CPU µs / delivery".into(),
        values: [f64::NAN, f64::NAN, c.median(r, &per_delivery)],
        ratio: format!(
            "{} × raw echo CPU/msg; tinyws {} × raw fan-out",
            fmt(floor),
            fmt(c.ratio(t, r, &per_delivery))
        ),
        target: "(the floor of the ratio above)".into(),
        verdict: String::new(),
    });
    for (k, name) in [
        ("fanout_p50_us", "fan-out p50, µs"),
        ("fanout_p99_us", "fan-out p99, µs"),
        ("delivery_p99_us", "delivery p99, µs"),
    ] {
        let f = get(k);
        rows.push(Row {
            scenario: "  broadcast".into(),
            metric: name.into(),
            values: [c.median(t, &f), f64::NAN, c.median(r, &f)],
            ratio: String::new(),
            target: "(reported)".into(),
            verdict: String::new(),
        });
    }

    // 8b. A flooding sender in the room: one member sends 16 KiB messages
    // back to back, 49 read as fast as they can, one never reads, one chats every 100 ms.
    // tinyws only: the point is what the readers see while the room paces the sender
    // and cuts the stuck member.
    eprintln!("broadcast flood: 1 sender, 49 readers, 1 stuck, 1 chatting");
    let flood = s(&[
        "--scenario",
        "flood",
        "--conns",
        "49",
        "--size",
        "16384",
        "--secs",
        if args.quick { "1" } else { "3" },
    ]);
    let c = compare(
        &bench,
        "flood",
        reps,
        &[(t, vec!["--broadcast", "--max-connections", "1000"], flood)],
        false,
        limit,
    );
    for (k, metric, target, ok) in [
        (
            "deliveries_per_s",
            "msgs delivered to readers / s",
            "(reported)",
            None,
        ),
        (
            "longest_gap_ms",
            "longest gap at a reader, ms",
            "≤ 100 ms",
            Some(100.0),
        ),
        ("sender_msg_per_s", "sender's msgs / s", "(reported)", None),
        (
            "chat_max_ms",
            "chat line to every reader, max ms",
            "≤ 200 ms",
            Some(200.0),
        ),
        ("hwm_kib", "server peak RSS, KiB", "(reported)", None),
    ] {
        let v = c.median(t, &get(k));
        rows.push(Row {
            scenario: "  broadcast flood (16 KiB, 1 stuck of 50)".into(),
            metric: metric.into(),
            values: [v, f64::NAN, f64::NAN],
            ratio: String::new(),
            target: target.into(),
            verdict: ok.map_or(String::new(), |limit| verdict(v <= limit, v)),
        });
    }

    // 9. How cost grows: idle connections 10 … 10,000.
    eprintln!("scaling: idle connections");
    let levels: &[usize] = if args.quick {
        &[10, 100, 1000]
    } else {
        &[10, 100, 1000, 5000, 10000]
    };
    let mut mem: BTreeMap<Kind, Vec<(f64, f64)>> = BTreeMap::new();
    let mut lat: BTreeMap<Kind, Vec<(f64, f64)>> = BTreeMap::new();
    let mut scaling_table = String::from(
        "| idle connections | tinyws RSS MiB | plain RSS MiB | tinyws KiB/conn | plain KiB/conn | tinyws new client p50 µs | plain new client p50 µs |\n|---|---|---|---|---|---|---|\n",
    );
    for &n in levels {
        let args_n = s(&[
            "--scenario",
            "idle",
            "--conns",
            &n.to_string(),
            "--secs",
            "0.5",
        ]);
        let mut row = BTreeMap::new();
        for (kind, extra) in [(t, many.clone()), (p, none.clone())] {
            match bench.once(kind, &extra, &args_n, false, limit) {
                Ok(m) => {
                    let rss = m.get("rss_kib").copied().unwrap_or(f64::NAN);
                    mem.entry(kind).or_default().push((n as f64, rss / 1024.0));
                    let l = m.get("probe_p50_us").copied().unwrap_or(f64::NAN);
                    lat.entry(kind).or_default().push((n as f64, l));
                    row.insert(
                        kind,
                        (
                            rss / 1024.0,
                            m.get("rss_per_conn_kib").copied().unwrap_or(f64::NAN),
                            l,
                        ),
                    );
                }
                Err(e) => eprintln!("  idle {n} {}: FAILED: {e}", kind.name()),
            }
        }
        let g = |k: Kind, i: usize| {
            row.get(&k)
                .map_or(f64::NAN, |v: &(f64, f64, f64)| [v.0, v.1, v.2][i])
        };
        let _ = writeln!(
            scaling_table,
            "| {n} | {} | {} | {} | {} | {} | {} |",
            fmt(g(t, 0)),
            fmt(g(p, 0)),
            fmt(g(t, 1)),
            fmt(g(p, 1)),
            fmt(g(t, 2)),
            fmt(g(p, 2))
        );
        eprintln!("  {n} idle connections done");
    }
    let named = |m: BTreeMap<Kind, Vec<(f64, f64)>>| -> Vec<(String, Vec<(f64, f64)>)> {
        m.into_iter()
            .map(|(k, v)| (k.name().to_string(), v))
            .collect()
    };
    let _ = std::fs::write(
        args.out.join("idle-memory.svg"),
        svg_chart(
            "Server RSS with N idle connections",
            "idle connections",
            "RSS (MiB)",
            &named(mem),
        ),
    );
    let _ = std::fs::write(
        args.out.join("idle-latency.svg"),
        svg_chart(
            "A new client's echo round trip (p50) with N idle connections",
            "idle connections",
            "round trip (µs)",
            &named(lat),
        ),
    );

    // 10. Throughput for message sizes 16 B … 16 MiB, pinned with the client to one core:
    // unpinned, one connection's round trips are mostly cross-core scheduling noise.
    eprintln!("scaling: message sizes");
    let sizes: &[usize] = if args.quick {
        &[16, 4096, 1 << 20]
    } else {
        &[16, 256, 4096, 65536, 1 << 20, 16 << 20]
    };
    let big = vec!["--max-message-size", "16MiB", "--max-frame-size", "16MiB"];
    let mut tput: BTreeMap<Kind, Vec<(f64, f64)>> = BTreeMap::new();
    let mut size_table = String::from(
        "| message size | tinyws MB/s | plain MB/s | raw TCP MB/s | tinyws / raw |\n|---|---|---|---|---|\n",
    );
    for &size in sizes {
        let mut row = BTreeMap::new();
        let secs_size = if size >= 1 << 20 {
            "2"
        } else if args.quick {
            "0.5"
        } else {
            "1"
        };
        let mut got: BTreeMap<Kind, Vec<f64>> = BTreeMap::new();
        for _ in 0..reps {
            for (kind, extra, sc) in [
                (t, big.clone(), "echo"),
                (p, none.clone(), "echo"),
                (r, none.clone(), "raw"),
            ] {
                let a = s(&[
                    "--scenario",
                    sc,
                    "--conns",
                    "1",
                    "--size",
                    &size.to_string(),
                    "--secs",
                    secs_size,
                ]);
                match bench.once(kind, &extra, &a, true, limit) {
                    Ok(m) => got
                        .entry(kind)
                        .or_default()
                        .push(m.get("mb_per_s").copied().unwrap_or(f64::NAN)),
                    Err(e) => eprintln!("  size {size} {}: FAILED: {e}", kind.name()),
                }
            }
        }
        for (kind, v) in got {
            let m = median(v);
            tput.entry(kind).or_default().push((size as f64, m));
            row.insert(kind, m);
        }
        eprintln!("  size {size} done");
        let g = |k: Kind| row.get(&k).copied().unwrap_or(f64::NAN);
        let _ = writeln!(
            size_table,
            "| {} | {} | {} | {} | {} |",
            size_label(size),
            fmt(g(t)),
            fmt(g(p)),
            fmt(g(r)),
            fmt(g(t) / g(r))
        );
    }
    let _ = std::fs::write(
        args.out.join("throughput-by-size.svg"),
        svg_chart(
            "Echo throughput by message size, 1 connection, one core",
            "message size (bytes)",
            "MB/s",
            &named(tput),
        ),
    );

    // 11. The binary.
    let bin = bench.bin(t);
    let size = std::fs::metadata(&bin)
        .map(|m| m.len() as f64)
        .unwrap_or(f64::NAN);
    let stripped = Path::new(&target).join("tinyws.stripped");
    let stripped_size = Command::new("strip")
        .arg("-o")
        .arg(&stripped)
        .arg(&bin)
        .status()
        .ok()
        .filter(|s| s.success())
        .and_then(|_| std::fs::metadata(&stripped).ok())
        .map_or(f64::NAN, |m| m.len() as f64);
    rows.push(Row {
        scenario: "release binary (as built / stripped)".into(),
        metric: "KiB".into(),
        values: [size / 1024.0, stripped_size / 1024.0, f64::NAN],
        ratio: String::new(),
        target: "as small as the features allow".into(),
        verdict: "reported".into(),
    });

    // The table.
    let mut md = String::new();
    let _ = writeln!(
        md,
        "| scenario | metric | tinyws | plain | raw TCP | ratio (median of pairs) | target | verdict |"
    );
    let _ = writeln!(md, "|---|---|---|---|---|---|---|---|");
    for row in &rows {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            row.scenario,
            row.metric,
            fmt(row.values[0]),
            fmt(row.values[1]),
            fmt(row.values[2]),
            row.ratio,
            row.target,
            row.verdict
        );
    }
    if rows
        .iter()
        .any(|r| r.scenario.starts_with("release binary"))
    {
        let _ = writeln!(
            md,
            "\n(For the binary row, the \"plain\" column is the stripped size.)"
        );
    }
    let _ = writeln!(md, "\n### Idle connections\n\n{scaling_table}");
    let _ = writeln!(
        md,
        "### Message sizes (1 connection, closed loop, pinned to one core, medians of {reps})\n\n{size_table}"
    );
    let _ = std::fs::write(args.out.join("results.md"), &md);
    println!("{md}");
    eprintln!("wrote {}", args.out.display());
}

/// `65536` → `64 KiB`.
fn size_label(n: usize) -> String {
    match n {
        n if n >= 1 << 20 => format!("{} MiB", n >> 20),
        n if n >= 1 << 10 => format!("{} KiB", n >> 10),
        n => format!("{n} B"),
    }
}
