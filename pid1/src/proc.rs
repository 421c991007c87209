//! What /proc says about a process: its syscall, children, state, CPU time, context switches and memory.

use std::time::{Duration, Instant};

use nix::unistd::Pid;

/// The syscall the process is blocked in, or None while it runs (or cannot be read).
pub fn current_syscall(pid: Pid) -> Option<i64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/syscall")).ok()?;
    text.split_whitespace().next()?.parse().ok()
}

/// The process's children, as pids of this (the test's) PID namespace.
pub fn children(pid: Pid) -> Vec<Pid> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|field| field.parse().ok())
        .map(Pid::from_raw)
        .collect()
}

/// Field `number` of a /proc/PID/stat text, numbered as in proc(5) (3 is the state, 14 and
/// 15 utime and stime, 22 the start time); from any machine's /proc, read however it was.
pub fn stat_field(stat: &str, number: usize) -> Option<&str> {
    // The command name (field 2) is in parentheses and may contain spaces: count after the last ')'.
    stat[stat.rfind(')')? + 1..].split_whitespace().nth(number.checked_sub(3)?)
}

/// The one-letter state from /proc/PID/stat: R, S, T, Z...
pub fn state(pid: Pid) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat_field(&stat, 3)?.chars().next()
}

/// User plus system CPU time, in clock ticks.
pub fn cpu_ticks(pid: Pid) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let utime: u64 = stat_field(&stat, 14)?.parse().ok()?;
    let stime: u64 = stat_field(&stat, 15)?.parse().ok()?;
    Some(utime + stime)
}

/// CPU time the process has used, to the microsecond: `se.sum_exec_runtime` of
/// /proc/PID/sched (milliseconds, needs CONFIG_SCHED_DEBUG), else the clock ticks of /proc/PID/stat.
pub fn cpu_time(pid: Pid) -> Option<Duration> {
    let sched = std::fs::read_to_string(format!("/proc/{pid}/sched")).unwrap_or_default();
    let runtime = sched.lines().find(|line| line.starts_with("se.sum_exec_runtime"));
    if let Some(milliseconds) = runtime.and_then(|line| line.split(':').nth(1)?.trim().parse::<f64>().ok()) {
        return Some(Duration::from_secs_f64(milliseconds / 1e3));
    }
    // SAFETY: sysconf takes a constant and reads no memory.
    let ticks_per_second = unsafe { nix::libc::sysconf(nix::libc::_SC_CLK_TCK) }.max(1) as f64;
    Some(Duration::from_secs_f64(cpu_ticks(pid)? as f64 / ticks_per_second))
}

/// A numeric field of /proc/PID/status, such as `VmRSS` (in kB) or `voluntary_ctxt_switches`.
pub fn status_number(pid: Pid, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.split(':').next() == Some(field))?;
    line.split(':').nth(1)?.split_whitespace().next()?.parse().ok()
}

/// A hexadecimal signal set from /proc/PID/status, such as `SigIgn`.
pub fn status_signal_set(pid: Pid, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.split(':').next() == Some(field))?;
    u64::from_str_radix(line.split(':').nth(1)?.trim(), 16).ok()
}

/// Voluntary plus involuntary context switches: every time the process was scheduled out.
pub fn context_switches(pid: Pid) -> Option<u64> {
    Some(status_number(pid, "voluntary_ctxt_switches")? + status_number(pid, "nonvoluntary_ctxt_switches")?)
}

/// Every process this process can see, with its command line (NUL separators as spaces).
pub fn command_lines() -> Vec<(Pid, String)> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let pid: i32 = entry.file_name().to_str()?.parse().ok()?;
            let command_line = std::fs::read(entry.path().join("cmdline")).ok()?;
            Some((Pid::from_raw(pid), String::from_utf8_lossy(&command_line).replace('\0', " ")))
        })
        .collect()
}

/// Polls `condition` every few milliseconds until it holds or `timeout` passes.
pub fn eventually(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[cfg(test)]
mod tests {
    use std::process::{Command, Stdio};

    use super::*;

    #[test]
    fn stat_fields_are_counted_after_a_name_with_spaces_and_parentheses() {
        let stat = "42 (a (b) c) S 1 42 42 0 -1 4194560 100 0 0 0 7 3 0 0 20 0 1 0 123456 8192";
        assert_eq!(stat_field(stat, 3), Some("S"));
        assert_eq!((stat_field(stat, 14), stat_field(stat, 15)), (Some("7"), Some("3")));
        assert_eq!(stat_field(stat, 22), Some("123456"));
        assert_eq!((stat_field(stat, 2), stat_field(stat, 40)), (None, None));
    }

    #[test]
    fn reads_this_thread() {
        // Tests run on threads: this thread is running, the process's main thread is not.
        let me = nix::unistd::gettid();
        assert_eq!(state(me), Some('R'));
        assert!(status_number(me, "Threads").unwrap() >= 1);
        assert!(status_number(me, "VmRSS").unwrap() > 0);
        assert!(context_switches(me).is_some());
        assert!(status_signal_set(me, "SigBlk").is_some());
        // Burn a little CPU so that the counter is certainly above zero.
        let mut sum = 0u64;
        for number in 0..5_000_000u64 {
            sum = sum.wrapping_add(std::hint::black_box(number));
        }
        std::hint::black_box(sum);
        assert!(cpu_time(me).unwrap() > Duration::ZERO);
    }

    #[test]
    fn lists_this_process_command_line() {
        let me = Pid::this();
        let listed = command_lines().into_iter().find(|(pid, _)| *pid == me).map(|(_, line)| line);
        let program = std::env::args().next().unwrap();
        assert!(listed.is_some_and(|line| line.starts_with(&program)));
    }

    #[test]
    fn sees_a_child_sleep_and_stop() {
        let mut child = Command::new("sleep").arg("30").stdin(Stdio::null()).spawn().unwrap();
        let pid = Pid::from_raw(child.id() as i32);
        // The test harness runs tests on threads: the child belongs to this thread's task.
        let me = Pid::this();
        let listed = std::fs::read_dir(format!("/proc/{me}/task"))
            .unwrap()
            .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
            .any(|thread: i32| {
                std::fs::read_to_string(format!("/proc/{me}/task/{thread}/children"))
                    .unwrap_or_default()
                    .contains(&pid.to_string())
            });
        assert!(listed, "the child {pid} is not listed in any children file of {me}");
        assert!(eventually(Duration::from_secs(5), || state(pid) == Some('S')));
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGSTOP).unwrap();
        assert!(eventually(Duration::from_secs(5), || state(pid) == Some('T')));
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(state(pid), None);
    }
}
