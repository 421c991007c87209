//! x86_64 Linux: the `_start` entry point, syscall numbers and the `syscall` instruction.

use core::arch::{asm, global_asm};

// The kernel starts us with `rsp` pointing at argc, followed by argv.
// Hand that pointer to Rust and align the stack as the C ABI expects for a call.
global_asm!(
    ".globl _start",
    ".type _start,@function",
    "_start:",
    "xor ebp, ebp",
    "mov rdi, rsp",
    "and rsp, -16",
    "call {entry}",
    "ud2",
    entry = sym crate::start,
);

/// Syscall numbers from arch/x86/entry/syscalls/syscall_64.tbl.
pub mod nr {
    pub const WRITE: usize = 1;
    pub const RT_SIGACTION: usize = 13;
    pub const RT_SIGPROCMASK: usize = 14;
    pub const GETPID: usize = 39;
    pub const WAIT4: usize = 61;
    pub const RT_SIGTIMEDWAIT: usize = 128;
    pub const PRCTL: usize = 157;
    pub const EXIT_GROUP: usize = 231;
}

/// Makes a syscall with up to four arguments; returns the raw result (negative errno on failure).
///
/// # Safety
/// The arguments must be valid for syscall `number`: pointers must point to memory of the size the kernel reads or writes.
#[inline(always)]
pub unsafe fn syscall4(number: usize, arg1: usize, arg2: usize, arg3: usize, arg4: usize) -> isize {
    let result: isize;
    // SAFETY: the caller vouches for the arguments; `syscall` clobbers only rcx and r11 besides rax.
    unsafe {
        asm!(
            "syscall",
            inlateout("rax") number as isize => result,
            in("rdi") arg1,
            in("rsi") arg2,
            in("rdx") arg3,
            in("r10") arg4,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    result
}
