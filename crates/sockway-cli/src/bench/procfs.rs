//! What the benchmark reads about a process from Linux's `/proc`: CPU time (user + system, for
//! the cost per message), resident memory (for the idle-connection cost) and the open-file
//! limit (so that a run that cannot open its connections says so up front).

use std::io;
use std::time::Duration;

/// The unit of the CPU times in `/proc/PID/stat`: `USER_HZ`, which Linux fixes at 100 for
/// user space on every architecture it exposes `/proc` on.
const TICKS_PER_SECOND: u64 = 100;

/// A process to read, by PID, or this process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Process {
    /// This process.
    Current,
    /// Another process.
    Pid(u32),
}

/// CPU time in user space and in the kernel (`utime` and `stime`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CpuTimes {
    /// Time running the program's own code.
    pub user: Duration,
    /// Time the kernel spent on its behalf (system calls: for a server, mostly the TCP stack).
    pub system: Duration,
}

impl CpuTimes {
    /// User plus system time.
    pub fn total(self) -> Duration {
        self.user + self.system
    }

    /// The time from `earlier` to `self`, part by part.
    pub fn since(self, earlier: CpuTimes) -> CpuTimes {
        CpuTimes {
            user: self.user.saturating_sub(earlier.user),
            system: self.system.saturating_sub(earlier.system),
        }
    }
}

impl Process {
    fn path(self, file: &str) -> String {
        match self {
            Self::Current => format!("/proc/self/{file}"),
            Self::Pid(pid) => format!("/proc/{pid}/{file}"),
        }
    }

    /// User plus system CPU time used so far by all of the process's threads, living and ended.
    pub fn cpu_time(self) -> io::Result<Duration> {
        self.cpu_times().map(|times| times.user + times.system)
    }

    /// [`Process::cpu_time`] in its two parts: user space and the kernel on its behalf.
    pub fn cpu_times(self) -> io::Result<CpuTimes> {
        let stat = std::fs::read_to_string(self.path("stat"))?;
        let (utime, stime) = parse_cpu_ticks(&stat).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                "unexpected /proc/PID/stat format",
            )
        })?;
        let ticks = |n: u64| Duration::from_millis(n * 1000 / TICKS_PER_SECOND);
        Ok(CpuTimes {
            user: ticks(utime),
            system: ticks(stime),
        })
    }

    /// Resident set size in bytes (`VmRSS` of `/proc/PID/status`).
    pub fn rss(self) -> io::Result<u64> {
        let status = std::fs::read_to_string(self.path("status"))?;
        parse_status_kib(&status, "VmRSS:")
            .map(|kib| kib * 1024)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no VmRSS in status"))
    }
}

/// `utime` and `stime` (fields 14 and 15) of a `/proc/PID/stat` line. The command name (field
/// 2) is in parentheses and may hold spaces, so fields are counted after its closing one.
fn parse_cpu_ticks(stat: &str) -> Option<(u64, u64)> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_name.split_ascii_whitespace();
    // After the name come field 3 (state) onwards: utime is field 14, the 12th from here.
    let utime = fields.nth(11)?.parse().ok()?;
    let stime = fields.next()?.parse().ok()?;
    Some((utime, stime))
}

/// The number of a `NAME:  1234 kB` line of `/proc/PID/status`.
fn parse_status_kib(status: &str, name: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|line| line.strip_prefix(name))
        .and_then(|rest| rest.split_ascii_whitespace().next())
        .and_then(|number| number.parse().ok())
}

/// The soft limit on open files of this process, if `/proc/self/limits` says.
pub fn open_files_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits
        .lines()
        .find(|line| line.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_ascii_whitespace()
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_found_after_the_name() {
        let stat = "4242 (tokio (worker) x) S 1 4242 4242 0 -1 4194560 1000 0 0 0 1234 567 0 0 \
                    20 0 3 0 100 1000000 500 18446744073709551615";
        assert_eq!(parse_cpu_ticks(stat), Some((1234, 567)));
        assert_eq!(parse_cpu_ticks("garbage"), None);
    }

    #[test]
    fn status_and_own_process_are_read() {
        let status = "Name:\tx\nVmPeak:\t  9000 kB\nVmRSS:\t    1234 kB\n";
        assert_eq!(parse_status_kib(status, "VmRSS:"), Some(1234));
        if cfg!(target_os = "linux") {
            assert!(Process::Current.rss().unwrap() > 0);
            assert!(Process::Current.cpu_time().is_ok());
            assert!(open_files_limit().is_some_and(|n| n > 0));
        }
    }
}
