//! Smoke test of the benchmark's load generator (`tools/loadgen.rs`): it runs each
//! scenario for a fraction of a second against real servers over loopback and checks
//! that it reports results, and that it fails when echoes come back wrong. No timing
//! assertions: speed belongs in `cargo run --release --example bench`.

mod common;

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{config, start, start_with};
use tinyws::Message;

/// The example binary `name`, built in the test profile's target directory
/// (target/<profile>/examples). `cargo test` builds the examples, but
/// `cargo test --test loadgen` does not: then it is built here.
fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test path");
    let profile_dir = exe.parent().and_then(|d| d.parent()).expect("target dir");
    let path = profile_dir.join("examples").join(name);
    if !path.exists() {
        let built = Command::new(env!("CARGO"))
            .args(["build", "--example", name])
            .status()
            .expect("run cargo build");
        assert!(built.success(), "cargo build --example {name} failed");
    }
    assert!(path.exists(), "{} was not built", path.display());
    path
}

/// Runs the load generator, killed if it takes over 30 s.
fn loadgen(addr: SocketAddr, args: &[&str]) -> Output {
    let mut child = Command::new(example("loadgen"))
        .args([
            "--addr",
            &addr.to_string(),
            "--pid",
            &std::process::id().to_string(),
        ])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start loadgen");
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("loadgen {args:?} did not finish within 30 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("output")
}

fn report(out: &Output) -> HashMap<String, f64> {
    assert!(
        out.status.success(),
        "loadgen failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.parse().expect("a number")))
        .collect()
}

#[test]
fn every_websocket_scenario_runs_against_tinyws_and_reports() {
    let server = start(config());
    let a = server.addr;
    let echo = report(&loadgen(
        a,
        &[
            "--scenario",
            "echo",
            "--conns",
            "2",
            "--size",
            "100",
            "--secs",
            "0.2",
        ],
    ));
    assert!(echo["msgs"] > 0.0 && echo["msg_per_s"] > 0.0);
    // The server runs in this process: the loadgen sampled it.
    assert!(echo["threads"] >= 1.0 && echo["rss_kib"] > 0.0);

    // Sizes across the 125/126 and 65535/65536 length encodings (RFC 6455 §5.2).
    for size in ["0", "125", "126", "65535"] {
        let r = report(&loadgen(
            a,
            &[
                "--scenario",
                "echo",
                "--size",
                size,
                "--max-count",
                "20",
                "--secs",
                "5",
            ],
        ));
        assert_eq!(r["msgs"], 20.0, "size {size}");
    }

    let pipe = report(&loadgen(
        a,
        &[
            "--scenario",
            "pipeline",
            "--conns",
            "2",
            "--size",
            "1024",
            "--window",
            "8",
            "--secs",
            "0.2",
        ],
    ));
    assert!(pipe["msgs"] >= 16.0);
    let hs = report(&loadgen(
        a,
        &[
            "--scenario",
            "handshake",
            "--conns",
            "2",
            "--max-count",
            "10",
            "--secs",
            "5",
        ],
    ));
    assert_eq!(hs["handshakes"], 20.0);
    let idle = report(&loadgen(
        a,
        &["--scenario", "idle", "--conns", "20", "--secs", "0.1"],
    ));
    assert_eq!(idle["conns"], 20.0);
    assert!(idle["probe_p50_us"] > 0.0);
    let after_one = report(&loadgen(
        a,
        &[
            "--scenario",
            "idle",
            "--conns",
            "5",
            "--first-message",
            "60000",
            "--secs",
            "0.1",
        ],
    ));
    assert_eq!(after_one["conns"], 5.0);
    // Every connection the load generator opened has been closed again.
    assert_eq!(server.wait_connections(0), 0);

    let room = start(config().broadcast(true));
    let bc = report(&loadgen(
        room.addr,
        &[
            "--scenario",
            "broadcast",
            "--conns",
            "5",
            "--max-count",
            "20",
            "--secs",
            "5",
        ],
    ));
    assert_eq!(bc["msgs"], 20.0);
    assert_eq!(bc["deliveries"], 20.0 * 6.0, "5 receivers and the sender");
}

#[test]
fn a_wrong_echo_fails_the_run() {
    // A server that answers every message with a different one.
    let server = start_with(config(), |_: &tinyws::Client, msg: Message| {
        let mut data = msg.into_data().to_vec();
        if let Some(b) = data.last_mut() {
            *b ^= 1;
        }
        Some(Message::binary(data))
    });
    let out = loadgen(
        server.addr,
        &["--scenario", "echo", "--size", "32", "--secs", "0.2"],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("differs"));
}

#[test]
fn the_comparison_servers_echo() {
    for (name, extra, scenario) in [
        ("raw_echo", None, "raw"),
        ("raw_echo", Some("broadcast"), "raw_broadcast"),
        ("plain_echo", None, "echo"),
    ] {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let mut child = Command::new(example(name))
            .arg(addr.to_string())
            .args(extra)
            .stderr(Stdio::null())
            .spawn()
            .expect("start server");
        let deadline = Instant::now() + Duration::from_secs(5);
        while std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_err() {
            assert!(Instant::now() < deadline, "{name} did not listen");
            std::thread::sleep(Duration::from_millis(20));
        }
        let out = loadgen(
            addr,
            &[
                "--scenario",
                scenario,
                "--conns",
                "2",
                "--size",
                "3000",
                "--secs",
                "0.2",
            ],
        );
        let _ = child.kill();
        let _ = child.wait();
        assert!(report(&out)["msgs"] > 0.0, "{name} {scenario}");
    }
}
