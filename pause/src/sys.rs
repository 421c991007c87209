//! Typed wrappers over the handful of Linux syscalls pause makes.
//!
//! Each returns the kernel's raw answer: a value, or a negative errno.

use crate::arch::{nr, syscall4};

pub const SIGINT: usize = 2;
pub const SIGTERM: usize = 15;
pub const SIGCHLD: usize = 17;

pub const EINTR: isize = 4;

const SIG_SETMASK: usize = 2;
const SIG_DFL: usize = 0;
const SA_NOCLDSTOP: u64 = 1;
const WNOHANG: usize = 1;
/// Waits for children of every kind, including clones that report with a signal other than SIGCHLD.
const WALL: usize = 0x4000_0000;
const PR_SET_CHILD_SUBREAPER: usize = 36;

/// A kernel signal set: one bit per signal, signal N at bit N-1.
pub type SignalSet = u64;
/// Every signal. The kernel silently leaves SIGKILL and SIGSTOP out of masks and waits.
pub const ALL_SIGNALS: SignalSet = !0;
const SIGSET_SIZE: usize = size_of::<SignalSet>();

/// The kernel's `struct sigaction` (include/uapi/asm-generic/signal.h layout, with sa_restorer).
#[repr(C)]
struct KernelSigaction {
    handler: usize,
    flags: u64,
    restorer: usize,
    mask: SignalSet,
}

pub fn write(fd: usize, bytes: &[u8]) -> isize {
    // SAFETY: the kernel reads `bytes.len()` bytes from a live slice.
    unsafe { syscall4(nr::WRITE, fd, bytes.as_ptr() as usize, bytes.len(), 0) }
}

pub fn exit_group(code: usize) -> ! {
    // SAFETY: exit_group takes no pointer and never returns.
    unsafe { syscall4(nr::EXIT_GROUP, code, 0, 0, 0) };
    // The kernel never returns from exit_group; spin rather than fall off the end.
    loop {
        core::hint::spin_loop();
    }
}

pub fn getpid() -> isize {
    // SAFETY: getpid takes no argument.
    unsafe { syscall4(nr::GETPID, 0, 0, 0, 0) }
}

/// Replaces the signal mask of the calling thread.
pub fn set_signal_mask(set: SignalSet) -> isize {
    // SAFETY: the kernel reads one sigset of SIGSET_SIZE bytes from a live local.
    unsafe { syscall4(nr::RT_SIGPROCMASK, SIG_SETMASK, &set as *const SignalSet as usize, 0, SIGSET_SIZE) }
}

/// Sets `signal` back to its default action, whatever was inherited (SIG_IGN survives execve).
/// `extra_flags` carries SA_NOCLDSTOP for SIGCHLD.
fn set_default_action(signal: usize, extra_flags: u64) -> isize {
    let action = KernelSigaction { handler: SIG_DFL, flags: extra_flags, restorer: 0, mask: 0 };
    // SAFETY: the kernel reads one KernelSigaction from a live local; no old action is asked for.
    unsafe { syscall4(nr::RT_SIGACTION, signal, &action as *const KernelSigaction as usize, 0, SIGSET_SIZE) }
}

pub fn reset_action(signal: usize) -> isize {
    set_default_action(signal, 0)
}

/// SIGCHLD to its default action, with SA_NOCLDSTOP so that a child that stops or
/// continues raises no SIGCHLD and does not wake us.
pub fn reset_child_action() -> isize {
    set_default_action(SIGCHLD, SA_NOCLDSTOP)
}

/// Sleeps until a signal of `set` is pending, takes it, and returns its number.
pub fn wait_signal(set: SignalSet) -> isize {
    // SAFETY: the kernel reads one sigset from a live local; no siginfo or timeout is passed.
    unsafe { syscall4(nr::RT_SIGTIMEDWAIT, &set as *const SignalSet as usize, 0, 0, SIGSET_SIZE) }
}

/// Reaps one exited child without blocking; returns its pid, 0 when children remain but none has exited, or -ECHILD.
pub fn reap_one() -> isize {
    // SAFETY: no status or rusage pointer is passed.
    unsafe {
        syscall4(nr::WAIT4, usize::MAX /* -1: any child */, 0, WNOHANG | WALL, 0)
    }
}

/// Makes orphaned descendants re-parent to us instead of to the namespace's init.
pub fn become_subreaper() -> isize {
    // SAFETY: prctl(PR_SET_CHILD_SUBREAPER, 1) takes no pointer.
    unsafe { syscall4(nr::PRCTL, PR_SET_CHILD_SUBREAPER, 1, 0, 0) }
}
