//! The `tinyws` binary as a child process: its log lines, signals, and what /proc says
//! about its threads, file descriptors and memory.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::thread;
use std::time::{Duration, Instant};

use super::TIMEOUT;

/// A tinyws process on 127.0.0.1 and a free port; killed on drop if still running.
pub struct Proc {
    child: Child,
    pub addr: SocketAddr,
    log: Receiver<String>,
}

impl Proc {
    pub fn start(bin: &str, args: &[&str]) -> Proc {
        let mut child = Command::new(bin)
            .args(["--bind", "127.0.0.1", "--port", "0"])
            .args(args)
            .env("RUST_LOG", "info")
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("start tinyws");
        let (tx, log) = channel();
        let stderr = child.stderr.take().unwrap();
        thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut p = Proc {
            child,
            addr: "127.0.0.1:0".parse().unwrap(),
            log,
        };
        let line = p.wait_log("listening on ws://");
        let addr = line
            .split("ws://")
            .nth(1)
            .unwrap()
            .split('/')
            .next()
            .unwrap();
        p.addr = addr.parse().unwrap();
        p
    }

    /// The next log line containing `needle` (fails the test after the timeout).
    pub fn wait_log(&mut self, needle: &str) -> String {
        self.wait_log_for(needle, TIMEOUT)
    }

    /// Like [`wait_log`](Self::wait_log), with its own limit, for events that come only
    /// after a server-side timeout has run out.
    pub fn wait_log_for(&mut self, needle: &str, limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        let mut skipped = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.log.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return line,
                Ok(line) => skipped.push(line),
                Err(_) => panic!(
                    "no log line with {needle:?} within {limit:?}; other lines: {skipped:#?}"
                ),
            }
        }
    }

    /// Every log line printed so far and not yet consumed.
    pub fn drain_log(&mut self) -> Vec<String> {
        self.log.try_iter().collect()
    }

    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok);
    }

    /// Waits (bounded) for the process to exit and returns its exit code.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<i32> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            thread::sleep(Duration::from_millis(20));
        }
        panic!("tinyws did not exit within {limit:?}");
    }

    fn count(&self, what: &str) -> usize {
        std::fs::read_dir(format!("/proc/{}/{what}", self.child.id()))
            .map(|d| d.count())
            .unwrap_or(0)
    }

    /// (threads, open fds)
    pub fn resources(&self) -> (usize, usize) {
        (self.count("task"), self.count("fd"))
    }

    /// Waits (bounded) until threads and fds are back to `baseline`.
    pub fn settle(&self, baseline: (usize, usize)) -> (usize, usize) {
        let deadline = Instant::now() + Duration::from_secs(8);
        while self.resources() != baseline && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(50));
        }
        self.resources()
    }

    /// A `kB` field of /proc/PID/status, in bytes: `VmRSS` (resident now) or `VmHWM`
    /// (the peak resident size).
    pub fn status_bytes(&self, field: &str) -> usize {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("read /proc/PID/status");
        let line = status
            .lines()
            .find(|l| l.starts_with(&format!("{field}:")))
            .unwrap_or_else(|| panic!("no {field} in /proc/PID/status"));
        let kb: usize = line.split_whitespace().nth(1).unwrap().parse().unwrap();
        kb * 1024
    }

    /// Resets the peak resident size (`VmHWM`) to the current one (proc(5), clear_refs 5).
    pub fn reset_peak_memory(&self) {
        std::fs::write(format!("/proc/{}/clear_refs", self.child.id()), "5")
            .expect("write /proc/PID/clear_refs");
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
