//! Waiting for a process to end without a polling interval: a pidfd becomes readable the
//! moment its process exits, so the wait wakes exactly then (or at its timeout).

use std::os::fd::{AsFd, FromRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use nix::libc;
use nix::poll::{PollFd, PollFlags, poll};
use nix::unistd::Pid;

/// A pidfd for `pid` (Linux 5.3 or later).
pub fn open(pid: Pid) -> std::io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags; it returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid.as_raw(), 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: pidfd_open returned a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// True once the process has exited, false if `timeout` passed first.
pub fn exited_within(pidfd: &OwnedFd, timeout: Duration) -> std::io::Result<bool> {
    let deadline = Instant::now() + timeout;
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        let mut poll_fds = [PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
        let millis = u16::try_from(remaining.as_millis()).unwrap_or(u16::MAX);
        match poll(&mut poll_fds, millis) {
            Ok(ready) if ready > 0 => return Ok(true),
            Ok(_) if Instant::now() >= deadline => return Ok(false),
            // A signal handler (Ctrl-C) or the u16 cap ended the poll early: wait on.
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(error) => return Err(error.into()),
        }
    }
}
