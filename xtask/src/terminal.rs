//! The terminal of `cargo xtask pod`: its size, and raw mode while a guest shell owns it.

use std::os::fd::AsFd;
use std::time::Duration;

use nix::sys::termios::{SetArg, Termios, cfmakeraw, tcgetattr, tcsetattr};

use crate::cancel::Cancel;
use crate::command;

/// (rows, columns), as `stty size` reports them for the harness's stdin.
pub fn size(cancel: Cancel) -> Option<(u16, u16)> {
    let stty = command::argv(&["stty", "size"]);
    let output = command::run_fed(&stty, command::Input::Terminal, Duration::from_secs(10), cancel).ok()?;
    let text = output.stdout_text();
    let mut numbers = text.split_whitespace().filter_map(|word| word.parse().ok());
    // A terminal that was never given a size (a fresh pty) says `0 0`: no size at all.
    Some((numbers.next()?, numbers.next()?)).filter(|&(rows, columns)| rows > 0 && columns > 0)
}

/// Raw mode on stdin while alive (keys, Ctrl-C included, go to the guest as bytes); the
/// previous mode comes back on drop. Does nothing when stdin is not a terminal.
pub struct RawMode {
    saved: Option<Termios>,
}

impl RawMode {
    pub fn enable() -> RawMode {
        let stdin = std::io::stdin();
        let Ok(saved) = tcgetattr(stdin.as_fd()) else { return RawMode { saved: None } };
        let mut raw = saved.clone();
        cfmakeraw(&mut raw);
        let _ = tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &raw);
        RawMode { saved: Some(saved) }
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if let Some(saved) = &self.saved {
            let _ = tcsetattr(std::io::stdin().as_fd(), SetArg::TCSANOW, saved);
        }
    }
}
