//! The `tinyws` binary as a child process: its log lines, signals, and what /proc says
//! about its threads, file descriptors and memory.

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::thread;
use std::time::{Duration, Instant};

use super::TIMEOUT;

/// What becomes of the process's stdout (where `--trace` goes).
pub enum Stdout {
    /// Discarded.
    Null,
    /// Read as it comes: [`Proc::stdout_until`].
    Capture,
    /// A pipe nobody reads: once its buffer is full, every write to it blocks.
    Unread,
}

/// A tinyws process on 127.0.0.1 and a free port; killed on drop if still running.
pub struct Proc {
    child: Child,
    pub addr: SocketAddr,
    log: Receiver<String>,
    /// [`Stdout::Capture`]: what the process writes to stdout, in chunks as read.
    out: Option<Receiver<Vec<u8>>>,
    /// Stdout bytes received so far.
    pub stdout: Vec<u8>,
    /// [`Stdout::Unread`]: the pipe's read end, kept open and never read.
    _unread: Option<ChildStdout>,
    /// [`start_piped`](Self::start_piped): the write end of the process's stdin (drop it
    /// for end of input).
    pub stdin: Option<ChildStdin>,
}

impl Proc {
    pub fn start(bin: &str, args: &[&str]) -> Proc {
        Proc::start_with(bin, args, Stdout::Null)
    }

    pub fn start_with(bin: &str, args: &[&str], stdout: Stdout) -> Proc {
        let mut command = Command::new(bin);
        command
            .args(["--bind", "127.0.0.1", "--port", "0"])
            .args(args);
        Proc::launch(command, stdout)
    }

    /// Like [`start`](Self::start), logging at `level` (`RUST_LOG`) instead of info.
    pub fn start_logging(bin: &str, args: &[&str], level: &str) -> Proc {
        let mut command = Command::new(bin);
        command
            .args(["--bind", "127.0.0.1", "--port", "0"])
            .args(args)
            .env("RUST_LOG", level);
        Proc::launch(command, Stdout::Null)
    }

    /// Like [`start_with`](Self::start_with), with the process's stdin a pipe the test
    /// writes to ([`Proc::stdin`]).
    pub fn start_piped(bin: &str, args: &[&str], stdout: Stdout) -> Proc {
        let mut command = Command::new(bin);
        command
            .args(["--bind", "127.0.0.1", "--port", "0"])
            .args(args)
            .stdin(Stdio::piped());
        Proc::launch(command, stdout)
    }

    /// Like [`start`](Self::start), but run through `wrapper` (a command that execs the
    /// rest of its arguments, e.g. `prlimit --as=134217728`), so the child's process id is
    /// tinyws's own.
    pub fn start_wrapped(wrapper: &[&str], bin: &str, args: &[&str]) -> Proc {
        let (program, before) = wrapper.split_first().expect("a wrapper command");
        let mut command = Command::new(program);
        command
            .args(before)
            .arg(bin)
            .args(["--bind", "127.0.0.1", "--port", "0"])
            .args(args);
        Proc::launch(command, Stdout::Null)
    }

    /// Starts `command` (tinyws, possibly through a wrapper), follows its log, and waits
    /// for the line that says where it listens.
    fn launch(mut command: Command, stdout: Stdout) -> Proc {
        if !command.get_envs().any(|(name, _)| name == "RUST_LOG") {
            command.env("RUST_LOG", "info");
        }
        let mut child = command
            .stderr(Stdio::piped())
            .stdout(match stdout {
                Stdout::Null => Stdio::null(),
                Stdout::Capture | Stdout::Unread => Stdio::piped(),
            })
            .spawn()
            .expect("start tinyws");
        let stdin = child.stdin.take();
        let mut out = None;
        let mut unread = None;
        match stdout {
            Stdout::Null => {}
            Stdout::Unread => unread = child.stdout.take(),
            Stdout::Capture => out = Some(read_pipe(child.stdout.take().unwrap())),
        }
        let (tx, log) = channel();
        let stderr = child.stderr.take().unwrap();
        thread::spawn(move || {
            // Split at LF only, and a byte that is not UTF-8 read as U+FFFD rather than
            // ending the log: a raw CR, or a raw byte from a client, stays visible to the
            // tests that look for them.
            let mut reader = BufReader::new(stderr);
            let mut line = Vec::new();
            while reader.read_until(b'\n', &mut line).is_ok_and(|n| n > 0) {
                if line.last() == Some(&b'\n') {
                    line.pop();
                }
                let _ = tx.send(String::from_utf8_lossy(&line).into_owned());
                line.clear();
            }
        });
        let mut p = Proc {
            child,
            addr: "127.0.0.1:0".parse().unwrap(),
            log,
            out,
            stdout: Vec::new(),
            _unread: unread,
            stdin,
        };
        // `ws://` or, with --tls-cert, `wss://`.
        let line = p.wait_log("listening on ");
        let addr = line.split("://").nth(1).unwrap().split('/').next().unwrap();
        p.addr = addr.parse().unwrap();
        p
    }

    /// The process id (for `prlimit --pid`, /proc).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process is still running (it has not exited or been killed).
    pub fn is_alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
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

    /// Every log line from now through the next one containing `needle` (fails the test
    /// after the timeout).
    pub fn log_through(&mut self, needle: &str) -> Vec<String> {
        let deadline = Instant::now() + TIMEOUT;
        let mut lines = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.log.recv_timeout(left) {
                Ok(line) => {
                    let done = line.contains(needle);
                    lines.push(line);
                    if done {
                        return lines;
                    }
                }
                Err(_) => {
                    panic!("no log line with {needle:?} within {TIMEOUT:?}; lines: {lines:#?}")
                }
            }
        }
    }

    /// [`Stdout::Unread`]: starts reading the pipe after all, as [`Stdout::Capture`] does
    /// (a paused pager that resumes).
    pub fn resume_stdout(&mut self) {
        let pipe = self._unread.take().expect("started with Stdout::Unread");
        self.out = Some(read_pipe(pipe));
    }

    /// [`Stdout::Capture`]: waits (bounded) until stdout so far contains `needle`, and
    /// returns all of it.
    pub fn stdout_until(&mut self, needle: &[u8]) -> &[u8] {
        let deadline = Instant::now() + TIMEOUT;
        let out = self.out.as_ref().expect("started with Stdout::Capture");
        while !self.stdout.windows(needle.len()).any(|w| w == needle) {
            let left = deadline.saturating_duration_since(Instant::now());
            match out.recv_timeout(left) {
                Ok(chunk) => self.stdout.extend_from_slice(&chunk),
                Err(_) => panic!(
                    "no {:?} on stdout within {TIMEOUT:?}; stdout so far:\n{}",
                    String::from_utf8_lossy(needle),
                    String::from_utf8_lossy(&self.stdout)
                ),
            }
        }
        &self.stdout
    }

    /// [`Stdout::Capture`] (or resumed): once the process has exited, all of its stdout,
    /// through the end.
    pub fn stdout_to_end(&mut self) -> &[u8] {
        let deadline = Instant::now() + TIMEOUT;
        let out = self.out.as_ref().expect("stdout is read");
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match out.recv_timeout(left) {
                Ok(chunk) => self.stdout.extend_from_slice(&chunk),
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return &self.stdout,
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                    panic!("stdout did not end within {TIMEOUT:?}: has the process exited?")
                }
            }
        }
    }

    /// Every log line printed so far and not yet consumed.
    pub fn drain_log(&mut self) -> Vec<String> {
        self.log.try_iter().collect()
    }

    /// Once the process has exited: every log line not yet consumed, through the end of
    /// its stderr (unlike [`drain_log`](Self::drain_log), none still on its way).
    pub fn rest_of_log(&mut self) -> Vec<String> {
        let deadline = Instant::now() + TIMEOUT;
        let mut lines = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.log.recv_timeout(left) {
                Ok(line) => lines.push(line),
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return lines,
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                    panic!("stderr did not end within {TIMEOUT:?}: has the process exited?")
                }
            }
        }
    }

    /// Sends `sig` (e.g. `-TERM`) with `kill(1)`. Unix only: on Windows there are no
    /// signals to send another process, so the tests that need one are `cfg(unix)`.
    #[cfg(unix)]
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

    // /proc is Linux's: the tests that read it are `cfg(target_os = "linux")`, and these
    // helpers exist only there so that an ungated use does not compile elsewhere.
    #[cfg(target_os = "linux")]
    fn count(&self, what: &str) -> usize {
        std::fs::read_dir(format!("/proc/{}/{what}", self.child.id()))
            .map(|d| d.count())
            .unwrap_or(0)
    }

    /// (threads, open fds)
    #[cfg(target_os = "linux")]
    pub fn resources(&self) -> (usize, usize) {
        (self.count("task"), self.count("fd"))
    }

    /// Waits (bounded) until threads and fds are back to `baseline`.
    #[cfg(target_os = "linux")]
    pub fn settle(&self, baseline: (usize, usize)) -> (usize, usize) {
        let deadline = Instant::now() + Duration::from_secs(8);
        while self.resources() != baseline && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(50));
        }
        self.resources()
    }

    /// A `kB` field of /proc/PID/status, in bytes: `VmRSS` (resident now) or `VmHWM`
    /// (the peak resident size).
    #[cfg(target_os = "linux")]
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
    #[cfg(target_os = "linux")]
    pub fn reset_peak_memory(&self) {
        std::fs::write(format!("/proc/{}/clear_refs", self.child.id()), "5")
            .expect("write /proc/PID/clear_refs");
    }
}

/// A thread that reads `pipe` to its end; what it reads arrives in chunks.
fn read_pipe(mut pipe: ChildStdout) -> Receiver<Vec<u8>> {
    let (tx, rx) = channel();
    thread::spawn(move || {
        let mut buf = [0u8; 16 * 1024];
        while let Ok(n) = pipe.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    rx
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
