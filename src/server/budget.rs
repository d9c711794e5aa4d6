//! The memory budget: does the configured worst case fit the process's limits?
//!
//! At startup ([`plan`]) tinyws compares what `--max-connections` connections may need
//! at worst with what the limits leave: the address-space limit (`RLIMIT_AS`: `ulimit
//! -v`, `prlimit --as`, where every thread's whole stack counts) and, on Linux, the
//! cgroup memory limit (systemd's `MemoryMax=`, a container's limit, where only touched
//! memory counts). What does not fit is said in one warning line that names the flag to
//! lower, and the server then admits only as many connections as fit: the rest get
//! `503` (server/admission.rs `admit`), as at `--max-connections`.
//!
//! Warn, not refuse to start: the worst case needs every client to send a message of the
//! largest size at the same moment, which a device rarely sees, and past the budget the
//! server sheds load with `503` instead of running into the limit. Refusing would stop a
//! server that is fine in practice (1,000 idle clients need 14 KiB each, not the 349 KiB
//! of the worst case) from starting at all. Capping at the budget is what keeps an
//! allocation that load causes from ever failing: Rust aborts the whole process when one
//! does (`memory allocation of 7 bytes failed` after 347 connections under 256 MiB).
//!
//! The per-connection figures are the formula of docs/reference.md "Defaults and limits", checked
//! against a measurement of the worst case (docs/embedded.md, "Under a memory limit").

use std::fmt::Write as _;

use crate::config::{Config, format_size};
use crate::tune::{self, Arenas};

/// Page size assumed for guard pages and rounding (4 KiB on every target tinyws is
/// measured on; larger pages only make the estimate a little low).
const PAGE: u64 = 4096;

/// What a connection holds besides its buffers and stack reservation, right after its
/// handshake: the request head, the client, tungstenite's state (measured: 21 KiB of RSS
/// in all, stack pages included, docs/embedded.md).
const CONN_HEAP: u64 = 21 << 10;

/// Kernel memory per thread (its kernel stack and page tables): charged to the cgroup,
/// not to the address space. Measured 16 KiB on x86-64 (docs/embedded.md).
const KERNEL_PER_THREAD: u64 = 16 << 10;

/// Stack a broadcast writer thread touches (it is 64 KiB, reserved).
const WRITER_TOUCHED: u64 = 8 << 10;

/// Headroom kept free for everything not counted per connection: the log, the accept
/// loop, the registry, fragmentation of the heap.
const MARGIN_ADDRESS: u64 = 8 << 20;
const MARGIN_MEMORY: u64 = 4 << 20;

/// Address space glibc reserves per malloc arena beyond the first (`HEAP_MAX_SIZE`).
const ARENA_RESERVE: u64 = if cfg!(target_pointer_width = "64") {
    64 << 20
} else {
    1 << 20
};

/// The outcome of [`plan`]: how many connections fit, and the line that says why not
/// all of `max_connections` do.
#[derive(Debug)]
pub(crate) struct Budget {
    /// Connections admitted at once: `max_connections`, or fewer if that does not fit.
    pub(crate) fit: usize,
    pub(crate) warning: Option<String>,
}

/// What a limit leaves, and what it is called in the warning.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Room {
    /// Bytes left under the limit at startup.
    pub(crate) left: u64,
    pub(crate) name: &'static str,
}

/// Worst case of one connection: (address space, memory).
pub(crate) fn per_connection(config: &Config, writer_stack: usize) -> (u64, u64) {
    let buffers = 2 * config.max_message_size as u64
        + config.read_buffer_size as u64
        + config.write_buffer_size as u64
        + CONN_HEAP;
    let mut address = round_up(config.stack_size as u64) + PAGE + buffers;
    let mut memory = buffers + KERNEL_PER_THREAD;
    if config.broadcast {
        // The writer's stack, and the frames it may hold: its backlog plus the batch
        // being written (docs/reference.md "Broadcast mode").
        let backlog = 2 * config.max_backlog as u64;
        address += round_up(writer_stack as u64) + PAGE + backlog;
        memory += WRITER_TOUCHED + KERNEL_PER_THREAD + backlog;
    }
    (address, memory)
}

/// Compares `config`'s worst case with the limits of this process. `threads` are the
/// threads beyond one per connection that may also exist, as (count, stack size): the
/// spare connection threads and the 503 answerers (server/accept.rs).
pub(crate) fn plan(
    config: &Config,
    arenas: Arenas,
    writer_stack: usize,
    threads: &[(usize, usize)],
) -> Budget {
    let extra_stacks: u64 = threads
        .iter()
        .map(|&(n, size)| n as u64 * (round_up(size as u64) + PAGE))
        .sum();
    let address = tune::address_space_limit().map(|limit| Room {
        left: limit
            .saturating_sub(used_address_space())
            .saturating_sub(arena_reserve(arenas))
            .saturating_sub(extra_stacks + MARGIN_ADDRESS),
        name: "the address-space limit (ulimit -v, prlimit --as)",
    });
    let memory = cgroup_memory().map(|(limit, used)| Room {
        left: limit.saturating_sub(used).saturating_sub(MARGIN_MEMORY),
        name: "the cgroup memory limit (memory.max, systemd MemoryMax=)",
    });
    decide(config, writer_stack, address, memory)
}

/// The decision of [`plan`], given what each limit leaves (`None`: no limit).
pub(crate) fn decide(
    config: &Config,
    writer_stack: usize,
    address: Option<Room>,
    memory: Option<Room>,
) -> Budget {
    let (per_address, per_memory) = per_connection(config, writer_stack);
    let max = config.max_connections;
    let mut short = Vec::new();
    let mut fit = max;
    for (room, per, what) in [
        (address, per_address, "of address space"),
        (memory, per_memory, "of memory"),
    ] {
        let Some(room) = room else { continue };
        let n = usize::try_from(room.left / per).unwrap_or(usize::MAX);
        if n < max {
            fit = fit.min(n);
            short.push(format!(
                "each connection may need {} {what} and {} leaves {}, enough for {n}",
                kib(per),
                room.name,
                mib(room.left)
            ));
        }
    }
    if short.is_empty() {
        return Budget { fit, warning: None };
    }
    let mut line = format!(
        "memory budget: `max_connections` {max} does not fit: {}; clients beyond {fit} get 503. \
         Lower `max_connections` to {fit}",
        short.join("; ")
    );
    let _ = write!(
        line,
        ", or `stack_size` ({}), `max_message_size` ({}, counted twice) or `read_buffer_size` ({})",
        format_size(config.stack_size),
        format_size(config.max_message_size),
        format_size(config.read_buffer_size)
    );
    if config.broadcast {
        let _ = write!(
            line,
            " or `max_backlog` ({}, counted twice)",
            format_size(config.max_backlog)
        );
    }
    line.push_str(" to fit more");
    Budget {
        fit,
        warning: Some(line),
    }
}

/// Address space glibc will reserve for arenas beyond the main one.
fn arena_reserve(arenas: Arenas) -> u64 {
    let n = match arenas {
        Arenas::Bounded(n) => n as u64,
        Arenas::NotGlibc => 1,
        // glibc: 8 arenas per core on 64-bit, 2 on 32-bit (malloc/arena.c).
        Arenas::Default => {
            tune::glibc_cores()
                * if cfg!(target_pointer_width = "64") {
                    8
                } else {
                    2
                }
        }
    };
    n.saturating_sub(1) * ARENA_RESERVE
}

fn round_up(n: u64) -> u64 {
    n.div_ceil(PAGE) * PAGE
}

fn kib(n: u64) -> String {
    format!("{}KiB", n.div_ceil(1024))
}

/// `n` bytes in MiB with one decimal, rounded to nearest and ties to even, as `{:.1}` of
/// an `f64` would print it. In integers: formatting an `f64` would put about 20 KB of
/// float formatting code into the binary for this one line.
fn mib(n: u64) -> String {
    let tenths = u128::from(n) * 10;
    let (whole, rest) = (tenths >> 20, tenths & ((1 << 20) - 1));
    let half = 1 << 19;
    let up = rest > half || (rest == half && whole % 2 == 1);
    // At most u64::MAX * 10 / 2^20 + 1 < u64::MAX: the conversion cannot fail.
    let tenths = u64::try_from(whole).unwrap_or(u64::MAX) + u64::from(up);
    format!("{}.{}MiB", tenths / 10, tenths % 10)
}

/// What the process uses of its address space before serving, where it cannot be read.
const USED_GUESS: u64 = 32 << 20;

/// The process's address space now (VmSize), or a guess if /proc cannot be read.
#[cfg(target_os = "linux")]
fn used_address_space() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| status_kib(&s, "VmSize"))
        .map_or(USED_GUESS, |kb| kb * 1024)
}

/// Elsewhere there is no /proc to read it from: a guess.
#[cfg(not(target_os = "linux"))]
fn used_address_space() -> u64 {
    USED_GUESS
}

#[cfg(any(target_os = "linux", test))]
fn status_kib(status: &str, field: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

/// The cgroup memory limit this process is under and the cgroup's usage now, if any.
#[cfg(target_os = "linux")]
fn cgroup_memory() -> Option<(u64, u64)> {
    let own = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    // cgroup v2: the limit is the lowest memory.max on the way up from our cgroup.
    if let Some(path) = v2_path(&own) {
        let mut limit: Option<u64> = None;
        let mut dir = format!("/sys/fs/cgroup{}", path.trim_end_matches('/'));
        let mut used = None;
        loop {
            if let Some(max) = read(&dir, "memory.max").and_then(|s| parse_limit(&s)) {
                limit = Some(limit.map_or(max, |l: u64| l.min(max)));
            }
            if used.is_none() {
                used = read_number(&dir, "memory.current");
            }
            if dir == "/sys/fs/cgroup" {
                break;
            }
            match dir.rfind('/') {
                Some(i) => dir.truncate(i),
                None => break,
            }
        }
        if let Some(limit) = limit {
            return Some((limit, used.unwrap_or(0)));
        }
    }
    // cgroup v1: the memory controller's hierarchy.
    if let Some(path) = v1_memory_path(&own) {
        for dir in [
            format!("/sys/fs/cgroup/memory{}", path.trim_end_matches('/')),
            "/sys/fs/cgroup/memory".to_string(),
        ] {
            let Some(text) = read(&dir, "memory.limit_in_bytes") else {
                continue;
            };
            let limit = parse_limit(&text)?;
            let used = read_number(&dir, "memory.usage_in_bytes").unwrap_or(0);
            return Some((limit, used));
        }
    }
    None
}

/// The text of the cgroup file `file` in `dir`, if it can be read. One function for
/// every cgroup file read above: the binary holds one copy of the file reading.
#[cfg(target_os = "linux")]
#[inline(never)]
fn read(dir: &str, file: &str) -> Option<String> {
    std::fs::read_to_string(format!("{dir}/{file}")).ok()
}

/// A cgroup file that holds one number (memory.current, memory.usage_in_bytes).
#[cfg(target_os = "linux")]
fn read_number(dir: &str, file: &str) -> Option<u64> {
    read(dir, file)?.trim().parse().ok()
}

#[cfg(not(target_os = "linux"))]
fn cgroup_memory() -> Option<(u64, u64)> {
    None
}

/// The cgroup v2 path in /proc/self/cgroup (`0::/system.slice/tinyws.service`).
#[cfg(any(target_os = "linux", test))]
fn v2_path(proc_cgroup: &str) -> Option<&str> {
    proc_cgroup.lines().find_map(|l| l.strip_prefix("0::"))
}

/// The memory controller's path in a v1 /proc/self/cgroup (`4:memory:/path`).
#[cfg(any(target_os = "linux", test))]
fn v1_memory_path(proc_cgroup: &str) -> Option<&str> {
    proc_cgroup.lines().find_map(|l| {
        let mut fields = l.splitn(3, ':');
        let _id = fields.next()?;
        let controllers = fields.next()?;
        let path = fields.next()?;
        controllers
            .split(',')
            .any(|c| c == "memory")
            .then_some(path)
    })
}

/// A limit file's value: `max` (v2) or a page-rounded 2^63 (v1) mean none.
#[cfg(any(target_os = "linux", test))]
fn parse_limit(text: &str) -> Option<u64> {
    let n: u64 = text.trim().parse().ok()?;
    (n < 1 << 62).then_some(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    const WRITER: usize = 64 * 1024;

    #[test]
    fn the_defaults_cost_the_readme_formula_per_connection() {
        let c = Config::default();
        // 128 KiB stack + guard page + 2 × 64 KiB + 64 KiB + 4 KiB + 21 KiB.
        assert_eq!(per_connection(&c, WRITER), (349 << 10, (217 + 16) << 10));
        let b = Config {
            broadcast: true,
            ..Config::default()
        };
        // + 64 KiB writer stack + guard + 2 × 256 KiB of backlog.
        assert_eq!(per_connection(&b, WRITER).0, (349 + 68 + 512) << 10);
    }

    #[test]
    fn what_fits_is_admitted_and_the_one_line_names_the_flags() {
        let c = Config {
            max_connections: 1100,
            ..Config::default()
        };
        let none = decide(&c, WRITER, None, None);
        assert_eq!((none.fit, none.warning), (1100, None));
        let room = Room {
            left: 200 << 20,
            name: "the address-space limit (ulimit -v, prlimit --as)",
        };
        let b = decide(&c, WRITER, Some(room), None);
        assert_eq!(b.fit, (200 << 20) / (349 << 10));
        let line = b.warning.unwrap();
        assert!(!line.contains('\n'), "{line}");
        assert!(
            line.contains("`max_connections` 1100 does not fit"),
            "{line}"
        );
        assert!(line.contains("each connection may need 349KiB of address space"));
        assert!(line.contains("leaves 200.0MiB, enough for 586"), "{line}");
        assert!(line.contains("Lower `max_connections` to 586"), "{line}");
        assert!(line.contains("`stack_size` (128KiB)"), "{line}");
        // The tighter of two limits decides.
        let memory = Room {
            left: 50 << 20,
            name: "the cgroup memory limit (memory.max, systemd MemoryMax=)",
        };
        let both = decide(&c, WRITER, Some(room), Some(memory));
        assert_eq!(both.fit, (50 << 20) / (233 << 10));
        assert!(both.warning.unwrap().contains("MemoryMax="));
    }

    /// The integer formatting prints what `{:.1}` of the `f64` printed, ties included.
    #[test]
    fn mib_has_one_decimal_like_the_float_it_replaced() {
        let mut cases = vec![0, 1, u64::MAX, 200 << 20, (1 << 20) - 1];
        for k in 0..4000u64 {
            // Around every twentieth of a MiB: the ties (0.25, 0.75, ...) and their neighbours.
            let at = k * (1 << 20) / 20;
            cases.extend([at.saturating_sub(1), at, at + 1]);
        }
        for n in cases {
            assert_eq!(
                mib(n),
                format!("{:.1}MiB", n as f64 / f64::from(1 << 20)),
                "{n}"
            );
        }
    }

    #[test]
    fn cgroup_files_are_read_as_the_kernel_writes_them() {
        assert_eq!(
            v2_path("0::/system.slice/tinyws.service\n"),
            Some("/system.slice/tinyws.service")
        );
        let v1 = "9:name=systemd:/\n4:memory:/process_api/0ba2\n0::/\n";
        assert_eq!(v1_memory_path(v1), Some("/process_api/0ba2"));
        assert_eq!(v1_memory_path("3:cpu,memory:/a\n"), Some("/a"));
        assert_eq!(v1_memory_path("0::/\n"), None);
        assert_eq!(parse_limit("max\n"), None);
        assert_eq!(parse_limit("9223372036854771712\n"), None);
        assert_eq!(parse_limit("100663296\n"), Some(96 << 20));
        assert_eq!(
            status_kib("VmPeak:\t  262128 kB\nVmSize:\t  1024 kB\n", "VmSize"),
            Some(1024)
        );
    }
}
