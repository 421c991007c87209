//! The only architecture-specific code: the process entry point, syscall numbers and the syscall instruction.
//!
//! Porting pause to another architecture means adding one file beside `x86_64.rs`
//! with the same three items (`_start`, `nr`, `syscall4`) and one line below.

#[cfg(target_arch = "x86_64")]
mod x86_64;
#[cfg(target_arch = "x86_64")]
pub use x86_64::{nr, syscall4};

#[cfg(not(target_arch = "x86_64"))]
compile_error!("pause supports x86_64 only for now: add src/arch/<arch>.rs with _start, nr and syscall4");
