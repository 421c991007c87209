//! What one pause costs: its file, its memory, its CPU while idle.

use std::time::Duration;

use nix::sys::signal::Signal;

use pid1::{Launch, STEP_TIMEOUT, launch, proc};

use crate::messages::TERMINATED;
use crate::pause_under_test;

const MAX_BINARY_BYTES: u64 = 16 * 1024;
const MAX_RESIDENT_KB: u64 = 32;
const PT_INTERP: u32 = 3;
const PT_DYNAMIC: u32 = 2;

/// The binary the tests run (cargo's dev profile, with the release profile's size
/// settings for this package) is already static and small; `cargo xtask bench`
/// reports the release binary.
pub fn static_binary_without_interpreter() -> Result<(), String> {
    let path = pause_under_test();
    let bytes = std::fs::read(&path).map_err(|error| format!("cannot read {path}: {error}"))?;
    if bytes.len() as u64 > MAX_BINARY_BYTES {
        return Err(format!("expected at most {MAX_BINARY_BYTES} bytes, {path} has {}", bytes.len()));
    }
    let program_header_types = elf64_program_header_types(&bytes)?;
    if program_header_types.contains(&PT_INTERP) || program_header_types.contains(&PT_DYNAMIC) {
        return Err(format!("expected a static binary, {path} has a program interpreter or a dynamic section"));
    }
    Ok(())
}

/// The `p_type` of every program header of a little-endian ELF64 file.
fn elf64_program_header_types(bytes: &[u8]) -> Result<Vec<u32>, String> {
    let read_u16 = |offset: usize| bytes.get(offset..offset + 2).map(|b| u16::from_le_bytes([b[0], b[1]]));
    let read_u32 = |offset: usize| bytes.get(offset..offset + 4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
    let read_u64 = |offset: usize| bytes.get(offset..offset + 8).map(|b| u64::from_le_bytes(b.try_into().unwrap()));
    if bytes.get(..5) != Some(b"\x7fELF\x02") {
        return Err("not an ELF64 file".into());
    }
    let header_offset = read_u64(0x20).ok_or("truncated ELF header")? as usize;
    let header_size = read_u16(0x36).ok_or("truncated ELF header")? as usize;
    let header_count = read_u16(0x38).ok_or("truncated ELF header")? as usize;
    (0..header_count)
        .map(|index| {
            read_u32(header_offset + index * header_size).ok_or_else(|| "truncated program header".to_string())
        })
        .collect()
}

pub fn idle_pid_1_uses_no_cpu_and_little_memory() -> Result<(), String> {
    let mut pause = launch(&Launch::as_pid_1(pause_under_test()))?;
    pause.wait_until_sleeping()?;
    let resident_kb = proc::status_number(pause.pid, "VmRSS").ok_or("cannot read VmRSS")?;
    if resident_kb > MAX_RESIDENT_KB {
        return Err(format!("expected at most {MAX_RESIDENT_KB} kB resident, pause has {resident_kb} kB"));
    }
    let threads = proc::status_number(pause.pid, "Threads").ok_or("cannot read Threads")?;
    if threads != 1 {
        return Err(format!("expected one thread, pause has {threads}"));
    }
    let ticks_before = proc::cpu_ticks(pause.pid).ok_or("cannot read CPU time")?;
    let switches_before = proc::context_switches(pause.pid).ok_or("cannot read context switches")?;
    std::thread::sleep(Duration::from_secs(1));
    let ticks_after = proc::cpu_ticks(pause.pid).ok_or("cannot read CPU time")?;
    let switches_after = proc::context_switches(pause.pid).ok_or("cannot read context switches")?;
    if (ticks_after, switches_after) != (ticks_before, switches_before) {
        return Err(format!(
            "expected no CPU time and no wake-up over an idle second, got {} ticks and {} context switches",
            ticks_after - ticks_before,
            switches_after - switches_before
        ));
    }
    pause.signal(Signal::SIGTERM)?;
    pause.wait_for_exit(STEP_TIMEOUT)?.expect(0, "", TERMINATED)
}
