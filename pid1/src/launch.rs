//! Starts a program the way a runtime starts pause: as PID 1 of a fresh PID namespace
//! (or as a plain child), with a chosen stderr, inherited signal state and a family of
//! processes prepared before exec.

use std::ffi::CString;
use std::fs::File;
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::path::PathBuf;
use std::time::Duration;

use nix::fcntl::OFlag;
use nix::libc;
use nix::poll::{PollFd, PollFlags, poll};
use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{Pid, pipe2};

use crate::proc;

/// How long any single wait here may take before it counts as a failure.
pub const STEP_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the program's stderr goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stderr {
    /// A pipe the test reads.
    Captured,
    /// File descriptor 2 closed before exec.
    Closed,
    /// A pipe whose read end the test closes at once: writes fail with EPIPE.
    BrokenPipe,
    /// `/dev/full`: writes fail with ENOSPC.
    Full,
}

/// Processes set up before exec, so that the program starts with descendants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    None,
    /// A child that forks `count` grandchildren, then all wait: the child until
    /// `Running::orphan_the_grandchildren`, the grandchildren until `Running::release_the_orphans`.
    Orphans {
        count: usize,
    },
    /// A child that sleeps until killed (or until the `Running` handle drops).
    SleepingChild,
}

#[derive(Clone, Debug)]
pub struct Launch {
    pub program: PathBuf,
    /// Run as PID 1 of a new PID namespace (and a new user namespace when not root).
    pub as_pid_1: bool,
    pub arguments: Vec<String>,
    pub stderr: Stderr,
    /// Block every signal before exec, as a careless parent might.
    pub inherit_blocked_signals: bool,
    /// Set SIGTERM, SIGINT and SIGCHLD to SIG_IGN before exec (SIG_IGN survives execve).
    pub inherit_ignored_signals: bool,
    /// Send SIGTERM to ourselves, blocked, just before exec: it is pending when the program starts.
    pub sigterm_pending_at_exec: bool,
    pub family: Family,
}

impl Launch {
    pub fn as_pid_1(program: impl Into<PathBuf>) -> Self {
        Launch {
            program: program.into(),
            as_pid_1: true,
            arguments: Vec::new(),
            stderr: Stderr::Captured,
            inherit_blocked_signals: false,
            inherit_ignored_signals: false,
            sigterm_pending_at_exec: false,
            family: Family::None,
        }
    }

    pub fn as_plain_child(program: impl Into<PathBuf>) -> Self {
        Launch { as_pid_1: false, ..Launch::as_pid_1(program) }
    }
}

/// What came out of a program that ended.
#[derive(Debug)]
pub struct Ended {
    pub status: WaitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Ended {
    /// Fails unless the program exited with `code` and wrote exactly `stdout` and `stderr`.
    pub fn expect(&self, code: i32, stdout: &str, stderr: &str) -> Result<(), String> {
        let expected_status = WaitStatus::Exited(self.pid(), code);
        if self.status != expected_status || self.stdout != stdout || self.stderr != stderr {
            return Err(format!(
                "expected: exit code {code}, stdout {stdout:?}, stderr {stderr:?}\n\
                 actual:   {:?}, stdout {:?}, stderr {:?}",
                self.status, self.stdout, self.stderr
            ));
        }
        Ok(())
    }

    fn pid(&self) -> Pid {
        self.status.pid().unwrap_or(Pid::from_raw(0))
    }
}

/// A program started by `launch`. Dropping it kills it (and with it, as PID 1,
/// its whole namespace) and reaps it, so a failing test leaves nothing behind.
pub struct Running {
    pub pid: Pid,
    pidfd: OwnedFd,
    stdout: File,
    stderr: Option<File>,
    /// Closing one of these releases the family members blocked on it.
    orphan_grandchildren_gate: Option<OwnedFd>,
    release_orphans_gate: Option<OwnedFd>,
    ended: bool,
}

/// Whether this process may create the namespaces `Launch::as_pid_1` needs, tried by
/// running `probe_program` (which must exit by itself); `Err` carries the reason to print.
pub fn pid_namespaces_available(probe_program: &str) -> Result<(), String> {
    let probe = Launch::as_pid_1(probe_program);
    let mut running = launch(&probe).map_err(|error| format!("cannot create a PID namespace here: {error}"))?;
    running.wait_for_exit(STEP_TIMEOUT)?;
    Ok(())
}

pub fn launch(launch: &Launch) -> Result<Running, String> {
    let c_string = |text: &str| CString::new(text).map_err(|_| format!("{text:?} contains a NUL byte"));
    let program = c_string(&launch.program.to_string_lossy())?;
    let mut argv_strings = vec![program.clone()];
    for argument in &launch.arguments {
        argv_strings.push(c_string(argument)?);
    }
    let argv: Vec<*const libc::c_char> =
        argv_strings.iter().map(|argument| argument.as_ptr()).chain([std::ptr::null()]).collect();
    let envp: [*const libc::c_char; 1] = [std::ptr::null()];

    let (stdout_read, stdout_write) = cloexec_pipe()?;
    let (stderr_read, stderr_write) = cloexec_pipe()?;
    let dev_full = File::options().write(true).open("/dev/full").map_err(|error| error.to_string())?;
    let (orphan_gate_read, orphan_gate_write) = cloexec_pipe()?;
    let (release_gate_read, release_gate_write) = cloexec_pipe()?;
    let (family_ready_read, family_ready_write) = cloexec_pipe()?;
    // Nobody writes to this pipe: its write end closes when the child execs (O_CLOEXEC),
    // so EOF on the read end says that exec has happened.
    let (exec_done_read, exec_done_write) = cloexec_pipe()?;

    let child_setup = ChildSetup {
        stdout: stdout_write.as_raw_fd(),
        stderr: match launch.stderr {
            Stderr::Captured | Stderr::BrokenPipe => Some(stderr_write.as_raw_fd()),
            Stderr::Full => Some(dev_full.as_raw_fd()),
            Stderr::Closed => None,
        },
        inherit_blocked_signals: launch.inherit_blocked_signals,
        inherit_ignored_signals: launch.inherit_ignored_signals,
        sigterm_pending_at_exec: launch.sigterm_pending_at_exec,
        family: launch.family,
        orphan_gate: orphan_gate_read.as_raw_fd(),
        release_gate: release_gate_read.as_raw_fd(),
        family_ready: family_ready_write.as_raw_fd(),
        exec_done: exec_done_write.as_raw_fd(),
    };

    let mut flags = libc::SIGCHLD as libc::c_long;
    if launch.as_pid_1 {
        flags |= libc::CLONE_NEWPID as libc::c_long;
        if !nix::unistd::geteuid().is_root() {
            // Without root, a new user namespace grants the right to make a PID namespace.
            flags |= libc::CLONE_NEWUSER as libc::c_long;
        }
    }
    // SAFETY: a raw clone without CLONE_VM behaves like fork(): the child gets a copy of
    // this address space and runs only async-signal-safe calls on memory prepared above.
    let pid = unsafe { libc::syscall(libc::SYS_clone, flags, 0, 0, 0, 0) };
    if pid < 0 {
        return Err(format!("clone failed: {}", std::io::Error::last_os_error()));
    }
    if pid == 0 {
        // SAFETY: we are the freshly cloned child, and every pointer was prepared before the clone.
        unsafe { child_setup_and_exec(&child_setup, program.as_ptr(), argv.as_ptr(), envp.as_ptr()) }
    }
    let pid = Pid::from_raw(pid as libc::pid_t);
    let pidfd = match crate::pidfd::open(pid) {
        Ok(pidfd) => pidfd,
        Err(error) => {
            let _ = kill(pid, Signal::SIGKILL);
            let _ = waitpid(pid, None);
            return Err(format!("pidfd_open failed (Linux 5.3 or later is needed): {error}"));
        }
    };

    // Only the child keeps these ends; holding them here would hide EOF.
    drop((
        stdout_write,
        stderr_write,
        dev_full,
        family_ready_write,
        orphan_gate_read,
        release_gate_read,
        exec_done_write,
    ));
    set_nonblocking(&stdout_read)?;
    let stderr = match launch.stderr {
        Stderr::Captured => {
            set_nonblocking(&stderr_read)?;
            Some(File::from(stderr_read))
        }
        // Dropping the only read end makes every write to the pipe fail with EPIPE.
        Stderr::BrokenPipe | Stderr::Closed | Stderr::Full => None,
    };
    let running = Running {
        pid,
        pidfd,
        stdout: File::from(stdout_read),
        stderr,
        orphan_grandchildren_gate: Some(orphan_gate_write),
        release_orphans_gate: Some(release_gate_write),
        ended: false,
    };
    let program_name = launch.program.display();
    match read_one_byte(exec_done_read, STEP_TIMEOUT) {
        Ok(None) => {}
        Ok(Some(errno)) => {
            let reason = std::io::Error::from_raw_os_error(errno.into());
            return Err(format!("cannot exec {program_name}: {reason}"));
        }
        Err(error) => return Err(format!("the child did not exec {program_name}: {error}")),
    }
    if launch.family != Family::None {
        wait_for_byte(family_ready_read, STEP_TIMEOUT)
            .map_err(|error| format!("the family set up before exec did not get ready: {error}"))?;
    }
    Ok(running)
}

/// Everything the cloned child needs, as plain values: it must not allocate.
struct ChildSetup {
    stdout: RawFd,
    stderr: Option<RawFd>,
    inherit_blocked_signals: bool,
    inherit_ignored_signals: bool,
    sigterm_pending_at_exec: bool,
    family: Family,
    orphan_gate: RawFd,
    release_gate: RawFd,
    family_ready: RawFd,
    exec_done: RawFd,
}

/// Runs in the cloned child: arranges fds, signal state and family, then execs the program.
///
/// # Safety
/// Must be called only in a child just made by clone/fork, with valid C strings.
unsafe fn child_setup_and_exec(
    setup: &ChildSetup,
    program: *const libc::c_char,
    argv: *const *const libc::c_char,
    envp: *const *const libc::c_char,
) -> ! {
    // SAFETY: only async-signal-safe libc calls on fds and memory that exist in this child.
    unsafe {
        // A test process killed outright (a harness's timeout, as cargo-mutants kills a test
        // that hangs) runs no drop: the kernel must kill what it launched. It follows the
        // program through exec; the thread that launched it keeps it alive, not the process.
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
        libc::dup2(setup.stdout, 1);
        match setup.stderr {
            Some(fd) => libc::dup2(fd, 2),
            None => libc::close(2),
        };
        match setup.family {
            Family::None => {}
            Family::Orphans { count } => spawn_orphan_family(setup, count),
            Family::SleepingChild => spawn_sleeping_child(setup),
        }
        if setup.inherit_ignored_signals {
            for signal in [libc::SIGTERM, libc::SIGINT, libc::SIGCHLD] {
                libc::signal(signal, libc::SIG_IGN);
            }
        }
        let mut mask: libc::sigset_t = std::mem::zeroed();
        if setup.inherit_blocked_signals {
            libc::sigfillset(&mut mask);
        } else {
            libc::sigemptyset(&mut mask);
        }
        if setup.sigterm_pending_at_exec {
            libc::sigaddset(&mut mask, libc::SIGTERM);
        }
        libc::sigprocmask(libc::SIG_SETMASK, &mask, std::ptr::null_mut());
        if setup.sigterm_pending_at_exec {
            // getpid is a real syscall (glibc caches no pid); raise() would use a stale thread id here.
            libc::kill(libc::getpid(), libc::SIGTERM);
        }
        libc::execve(program, argv, envp);
        // Still here: exec failed. Say why through the pipe whose EOF would have meant success.
        let errno = *libc::__errno_location() as u8;
        libc::write(setup.exec_done, (&errno as *const u8).cast(), 1);
        libc::_exit(127)
    }
}

/// Forks a child that forks `count` grandchildren. The child exits when the orphan gate
/// closes, which orphans the grandchildren; they exit together when the release gate closes.
///
/// # Safety
/// Same as `child_setup_and_exec`.
unsafe fn spawn_orphan_family(setup: &ChildSetup, count: usize) {
    // SAFETY: fork in a single-threaded child; both sides use only async-signal-safe calls.
    unsafe {
        if raw_fork() != 0 {
            return;
        }
        close_all_fds_except(&mut [setup.orphan_gate, setup.release_gate, setup.family_ready]);
        for _ in 0..count {
            if raw_fork() == 0 {
                block_until_closed(setup.release_gate);
                libc::_exit(0);
            }
        }
        libc::write(setup.family_ready, b"r".as_ptr().cast(), 1);
        block_until_closed(setup.orphan_gate);
        libc::_exit(0);
    }
}

/// Forks a child that sleeps until a signal ends it, or until the handle drops (the
/// release gate closes), so that it cannot outlive a failed test even when not in a PID namespace.
///
/// # Safety
/// Same as `child_setup_and_exec`.
/// fork(2) as the bare syscall. glibc's fork() first takes malloc's locks (its atfork
/// handlers); in a child cloned from this multi-threaded test process, another thread may
/// have held one at the clone, and that copy is never released: fork() can wait forever
/// (seen as "the child did not exec ... nothing within 10s" in 2 of 60 contract runs; with
/// the bare syscall, 0 of 100).
///
/// # Safety
/// Only in the cloned child, which then makes only raw syscalls.
unsafe fn raw_fork() -> libc::c_long {
    // SAFETY: clone with just SIGCHLD and no new stack is fork.
    unsafe { libc::syscall(libc::SYS_clone, libc::SIGCHLD as libc::c_ulong, 0, 0, 0, 0) }
}

unsafe fn spawn_sleeping_child(setup: &ChildSetup) {
    // SAFETY: fork in a single-threaded child; both sides use only async-signal-safe calls.
    unsafe {
        if raw_fork() != 0 {
            return;
        }
        close_all_fds_except(&mut [setup.release_gate, setup.family_ready]);
        libc::write(setup.family_ready, b"r".as_ptr().cast(), 1);
        block_until_closed(setup.release_gate);
        libc::_exit(0);
    }
}

/// Closes every file descriptor but `keep` (which it sorts). The family is forked from a
/// multi-threaded test process, so it holds copies of other trials' pipes too: kept open,
/// they would hide the EOF those trials wait for, and the gates' write ends would never close.
///
/// # Safety
/// Same as `child_setup_and_exec`.
unsafe fn close_all_fds_except(keep: &mut [RawFd]) {
    keep.sort_unstable();
    let mut first_to_close: libc::c_uint = 0;
    for &fd in keep.iter() {
        let fd = fd as libc::c_uint;
        if fd > first_to_close {
            // SAFETY: close_range only closes descriptors of this process.
            unsafe { libc::syscall(libc::SYS_close_range, first_to_close, fd - 1, 0) };
        }
        first_to_close = fd + 1;
    }
    // SAFETY: as above.
    unsafe { libc::syscall(libc::SYS_close_range, first_to_close, libc::c_uint::MAX, 0) };
}

/// Reads until EOF, which comes when the test closes the write end.
///
/// # Safety
/// `fd` must be an open file descriptor.
unsafe fn block_until_closed(fd: RawFd) {
    let mut byte = 0u8;
    loop {
        // SAFETY: reads one byte into a live local.
        let count = unsafe { libc::read(fd, (&mut byte as *mut u8).cast(), 1) };
        // SAFETY: errno is thread-local and always readable.
        let interrupted = count < 0 && unsafe { *libc::__errno_location() } == libc::EINTR;
        // EOF, or an error that retrying cannot mend (spinning on it would burn a core).
        if count == 0 || (count < 0 && !interrupted) {
            return;
        }
    }
}

impl Running {
    /// Waits until the program sleeps: for a pause-like program, start-up is over and it
    /// waits for signals. (Such a program makes no blocking call before its wait loop.)
    pub fn wait_until_sleeping(&self) -> Result<(), String> {
        // A program that ended will never sleep: say so at once rather than at the deadline.
        let settled = proc::eventually(STEP_TIMEOUT, || !self.is_running() || proc::state(self.pid) == Some('S'));
        if !self.is_running() {
            return Err("the program ended instead of going to sleep".to_string());
        }
        if settled {
            return Ok(());
        }
        Err(format!("the program did not go to sleep within {STEP_TIMEOUT:?} (state {:?})", proc::state(self.pid)))
    }

    pub fn signal(&self, signal: Signal) -> Result<(), String> {
        kill(self.pid, signal).map_err(|error| format!("kill {signal} failed: {error}"))
    }

    /// Whether the program is still running (not exited, not a zombie waiting for us).
    pub fn is_running(&self) -> bool {
        !self.ended && !matches!(proc::state(self.pid), None | Some('Z'))
    }

    /// Lets the family's first child exit, which re-parents its grandchildren.
    pub fn orphan_the_grandchildren(&mut self) {
        self.orphan_grandchildren_gate = None;
    }

    /// Lets every orphan exit at the same moment.
    pub fn release_the_orphans(&mut self) {
        self.release_orphans_gate = None;
    }

    /// Everything the program wrote to stderr so far.
    pub fn stderr_so_far(&mut self) -> String {
        self.stderr.as_mut().map(read_available).unwrap_or_default()
    }

    /// Waits for the program to end (killing it after `timeout`) and collects its output.
    pub fn wait_for_exit(&mut self, timeout: Duration) -> Result<Ended, String> {
        // No polling interval blurs the timing, and the wait still has a deadline.
        match crate::pidfd::exited_within(&self.pidfd, timeout) {
            Ok(false) => return Err(format!("the program did not exit within {timeout:?}")),
            Ok(true) => {}
            Err(error) => return Err(format!("poll on the pidfd failed: {error}")),
        }
        let status = waitpid(self.pid, None).map_err(|error| format!("waitpid failed: {error}"))?;
        self.ended = true;
        Ok(Ended { status, stdout: read_available(&mut self.stdout), stderr: self.stderr_so_far() })
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if !self.ended {
            let _ = kill(self.pid, Signal::SIGKILL);
            let _ = waitpid(self.pid, None);
        }
    }
}

fn cloexec_pipe() -> Result<(OwnedFd, OwnedFd), String> {
    pipe2(OFlag::O_CLOEXEC).map_err(|error| format!("pipe2 failed: {error}"))
}

fn set_nonblocking(fd: &OwnedFd) -> Result<(), String> {
    nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_SETFL(OFlag::O_NONBLOCK))
        .map(drop)
        .map_err(|error| format!("fcntl failed: {error}"))
}

/// Reads what a non-blocking pipe holds now.
fn read_available(file: &mut File) -> String {
    let mut bytes = Vec::new();
    let mut buffer = [0u8; 4096];
    while let Ok(count @ 1..) = file.read(&mut buffer) {
        bytes.extend_from_slice(&buffer[..count]);
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

fn wait_for_byte(fd: OwnedFd, timeout: Duration) -> Result<(), String> {
    match read_one_byte(fd, timeout)? {
        Some(_) => Ok(()),
        None => Err("the pipe closed without a byte".into()),
    }
}

/// Waits up to `timeout` for a byte (Some) or EOF (None).
fn read_one_byte(fd: OwnedFd, timeout: Duration) -> Result<Option<u8>, String> {
    let mut file = File::from(fd);
    let millis = u16::try_from(timeout.as_millis()).unwrap_or(u16::MAX);
    let mut poll_fds = [PollFd::new(file.as_fd(), PollFlags::POLLIN)];
    match poll(&mut poll_fds, millis) {
        Ok(0) => return Err(format!("nothing within {timeout:?}")),
        Ok(_) => {}
        Err(error) => return Err(format!("poll failed: {error}")),
    }
    let mut byte = [0u8; 1];
    match file.read(&mut byte) {
        Ok(0) => Ok(None),
        Ok(_) => Ok(Some(byte[0])),
        Err(error) => Err(format!("read failed: {error}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The kernel kills a launched program when the thread that launched it ends, as it would
    /// when a harness kills the whole test process: nothing is left spinning behind it.
    #[test]
    fn a_program_dies_with_the_thread_that_launched_it() {
        let mut running = std::thread::spawn(|| {
            let mut sleeper = Launch::as_plain_child("/bin/sleep");
            sleeper.arguments = vec!["60".into()];
            launch(&sleeper)
        })
        .join()
        .expect("the launching thread")
        .expect("sleep starts");
        let ended = running.wait_for_exit(Duration::from_secs(10)).expect("sleep is killed");
        assert_eq!(ended.status, WaitStatus::Signaled(running.pid, Signal::SIGKILL, false));
    }
}
