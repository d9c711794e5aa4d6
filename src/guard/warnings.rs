//! Warnings a client causes (a refused Origin, a connection failed for invalid UTF-8 or
//! a protocol error), at most one per machine per minute: otherwise one client could
//! write thousands of `warn` lines a second and fill a small board's flash. The next one
//! after the minute says how many were left out. Each event still has its `info` line: a
//! refusal's `answered 403`, and a failed connection's end, written at `info` when its
//! warning is left out.
//!
//! The table is fixed: [`MACHINES`] machines at once. When all of them have warned
//! within the minute, others' warnings are left out too, counted, and the count is said
//! with the next warning that is written.

use std::fmt::Write as _;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::util::lock::lock;

/// Machines remembered at once.
const MACHINES: usize = 16;
/// One warning per machine in this long.
const WINDOW: Duration = Duration::from_secs(60);

#[derive(Clone, Copy)]
struct Slot {
    machine: IpAddr,
    since: Instant,
    left_out: u64,
}

struct Table {
    slots: [Option<Slot>; MACHINES],
    /// Left out because every slot was taken by a machine within its minute.
    others: u64,
}

static TABLE: Mutex<Table> = Mutex::new(Table {
    slots: [None; MACHINES],
    others: 0,
});

/// Whether to write a warning caused by `peer` now: `None` to leave it out (counted),
/// else the text to end the line with (empty, or how many were left out).
pub(crate) fn from(peer: IpAddr) -> Option<String> {
    let machine = machine(peer);
    let (mine, others) = lock(&TABLE).admit(machine, Instant::now())?;
    let mut tail = String::new();
    if mine > 0 {
        let _ = write!(
            tail,
            " (and {mine} more from {machine} in the last minute, not logged)"
        );
    }
    if others > 0 {
        let _ = write!(tail, " (and {others} more from other machines, not logged)");
    }
    Some(tail)
}

/// The machine of a peer: its IP address, IPv4 whether it came over IPv4 or IPv6; for
/// IPv6 its /64 network, since one machine may take any of the 2^64 addresses of its
/// network (privacy addresses, RFC 8981) and would otherwise count as many. The
/// inspector's fairness rule counts machines the same way.
pub(crate) fn machine(peer: IpAddr) -> IpAddr {
    match peer.to_canonical() {
        IpAddr::V6(v6) => IpAddr::V6((u128::from(v6) & !u128::from(u64::MAX)).into()),
        v4 => v4,
    }
}

impl Table {
    /// `None`: leave this one out. Else the counts left out before it, of this machine
    /// and of others.
    fn admit(&mut self, machine: IpAddr, now: Instant) -> Option<(u64, u64)> {
        let live = |s: &Slot| now.duration_since(s.since) < WINDOW;
        if let Some(slot) = self
            .slots
            .iter_mut()
            .flatten()
            .find(|s| s.machine == machine)
        {
            if live(slot) {
                slot.left_out += 1;
                return None;
            }
            let mine = std::mem::take(&mut slot.left_out);
            slot.since = now;
            return Some((mine, std::mem::take(&mut self.others)));
        }
        let Some(free) = (self.slots.iter_mut()).find(|s| !s.as_ref().is_some_and(live)) else {
            self.others += 1;
            return None;
        };
        *free = Some(Slot {
            machine,
            since: now,
            left_out: 0,
        });
        Some((0, std::mem::take(&mut self.others)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> Table {
        Table {
            slots: [None; MACHINES],
            others: 0,
        }
    }

    /// One per machine per minute, the count said with the next; a full table leaves
    /// newcomers out and counts them.
    #[test]
    fn one_warning_per_machine_per_minute_with_the_count_left_out() {
        let mut t = table();
        let start = Instant::now();
        let a: IpAddr = "192.0.2.7".parse().unwrap();
        assert_eq!(t.admit(a, start), Some((0, 0)));
        for _ in 0..1234 {
            assert_eq!(t.admit(a, start + Duration::from_secs(30)), None);
        }
        assert_eq!(t.admit(a, start + WINDOW), Some((1234, 0)));
        for i in 1..MACHINES as u8 {
            let other = IpAddr::from([10, 0, 0, i]);
            assert_eq!(t.admit(other, start + WINDOW), Some((0, 0)));
        }
        let late: IpAddr = "10.0.1.1".parse().unwrap();
        assert_eq!(t.admit(late, start + WINDOW), None, "table full");
        assert_eq!(t.admit(late, start + 2 * WINDOW), Some((0, 1)));
        let v6 = |s: &str| machine(s.parse().unwrap());
        assert_eq!(v6("2001:db8::1"), v6("2001:db8::ffff:2"));
    }
}
