//! pause: the infra container of a Kubernetes pod, a drop-in for Kubernetes' pause.c.
//!
//! It blocks every signal before doing anything else and then takes them one at a time
//! with rt_sigtimedwait, so there is no signal handler at all: nothing runs in signal
//! context, and a signal sent before or during start-up waits, pending, until it is taken.
//! It is `no_std` and `no_main` with raw syscalls, which keeps the static binary a few kB.

#![no_std]
#![no_main]

mod arch;
mod sys;

use core::ffi::c_char;

/// Exit codes that match pause.c, so that scripts around it keep working.
mod exit_code {
    pub const SIGINT_SETUP_FAILED: usize = 1;
    pub const SIGTERM_SETUP_FAILED: usize = 2;
    pub const SIGCHLD_SETUP_FAILED: usize = 3;
    pub const LOOP_ENDED: usize = 42;
}

const VERSION_LINE: &str = concat!("pause (podlab) ", env!("CARGO_PKG_VERSION"), "\n");
const NOT_PID_1_WARNING: &str = "Warning: pause should be the first process\n";
const SIGINT_MESSAGE: &str = "Shutting down, got signal: Interrupt\n";
const SIGTERM_MESSAGE: &str = "Shutting down, got signal: Terminated\n";
const STDOUT: usize = 1;
const STDERR: usize = 2;

/// Called from `_start` with the initial stack pointer (argc, then argv).
extern "C" fn start(stack: *const usize) -> ! {
    // First, before anything else: block every signal. From here on a signal is never
    // lost and never default-handled; it stays pending until the loop below takes it.
    if sys::set_signal_mask(sys::ALL_SIGNALS) < 0 {
        sys::exit_group(exit_code::SIGINT_SETUP_FAILED);
    }
    // An ignore inherited through execve would make the kernel discard these signals
    // once they are unblocked, and SIG_IGN on SIGCHLD would have the kernel reap
    // children behind our back; reset all three to their default action.
    if sys::reset_action(sys::SIGINT) < 0 {
        sys::exit_group(exit_code::SIGINT_SETUP_FAILED);
    }
    if sys::reset_action(sys::SIGTERM) < 0 {
        sys::exit_group(exit_code::SIGTERM_SETUP_FAILED);
    }
    if sys::reset_child_action() < 0 {
        sys::exit_group(exit_code::SIGCHLD_SETUP_FAILED);
    }
    // As PID 1 this changes nothing; anywhere else it keeps the promise to reap
    // orphans. Old kernels without subreapers are not a reason to stop.
    let _ = sys::become_subreaper();

    // SAFETY: the kernel lays out argc followed by argc argv pointers at the initial stack pointer.
    let arguments = unsafe { Arguments::from_stack(stack) };
    if arguments.any_is_version_flag() {
        say(STDOUT, VERSION_LINE);
        sys::exit_group(0);
    }
    if sys::getpid() != 1 {
        say(STDERR, NOT_PID_1_WARNING);
    }

    // Children may already have exited before we started (a SIGCHLD from before the
    // reset above is flushed by it), so reap once before the first wait.
    reap_exited_children();
    loop {
        match sys::wait_signal(sys::ALL_SIGNALS) {
            signal if signal == sys::SIGINT as isize => shut_down(SIGINT_MESSAGE),
            signal if signal == sys::SIGTERM as isize => shut_down(SIGTERM_MESSAGE),
            signal if signal == sys::SIGCHLD as isize => reap_exited_children(),
            error if error == -sys::EINTR => continue,
            error if error < 0 => sys::exit_group(exit_code::LOOP_ENDED),
            // Every other signal is taken and dropped: pause keeps sleeping, silently.
            _ => {}
        }
    }
}

/// SIGCHLD coalesces: one signal may stand for many exits, so reap until none is left.
fn reap_exited_children() {
    while sys::reap_one() > 0 {}
}

fn shut_down(message: &str) -> ! {
    say(STDERR, message);
    sys::exit_group(0);
}

/// Writes a message once and ignores the result: a closed stderr, a broken pipe
/// (SIGPIPE is blocked, so it only returns EPIPE) or a full disk must not change
/// what pause does next.
fn say(fd: usize, message: &str) {
    let _ = sys::write(fd, message.as_bytes());
}

/// The command line as the kernel passed it.
struct Arguments {
    count: usize,
    values: *const *const c_char,
}

impl Arguments {
    /// # Safety
    /// `stack` must be the initial stack pointer that the kernel handed to `_start`.
    unsafe fn from_stack(stack: *const usize) -> Self {
        // SAFETY: the caller passes the initial stack pointer; argc is its first word.
        let count = unsafe { *stack };
        // SAFETY: argv starts one word after argc.
        let values = unsafe { stack.add(1) } as *const *const c_char;
        Arguments { count, values }
    }

    /// pause.c prints its version when any argument after the program name is `-v`, in any case.
    fn any_is_version_flag(&self) -> bool {
        (1..self.count).any(|index| {
            // SAFETY: index < argc, so the entry is one of the kernel's argv pointers.
            let argument = unsafe { *self.values.add(index) };
            // SAFETY: argv strings are NUL-terminated, and the reads stop at the first
            // byte that differs from "-v\0", so none goes past the terminator.
            unsafe { is_version_flag(argument) }
        })
    }
}

/// Whether a NUL-terminated string is `-v` or `-V`; compares byte by byte so that
/// no `strlen` (which only libc would provide) is needed.
///
/// # Safety
/// `argument` must point to a NUL-terminated string.
unsafe fn is_version_flag(argument: *const c_char) -> bool {
    for (offset, expected) in b"-v\0".iter().enumerate() {
        // SAFETY: every earlier byte matched "-v", none of which is NUL, so this byte
        // is still inside the string or is its terminator.
        let byte = unsafe { *argument.add(offset) } as u8;
        if byte.to_ascii_lowercase() != *expected {
            return false;
        }
    }
    true
}

#[panic_handler]
fn on_panic(_: &core::panic::PanicInfo) -> ! {
    // Nothing in this binary can panic (no indexing, no arithmetic that can overflow),
    // but the language requires a handler. End the way a broken sleep loop would.
    sys::exit_group(exit_code::LOOP_ENDED);
}
