//! The terminal of `cargo xtask pod`: its size, and raw mode while a guest shell owns it.

use std::os::fd::AsFd;

use nix::sys::termios::{SetArg, Termios, cfmakeraw, tcgetattr, tcsetattr};

/// (rows, columns), as `stty size` reports them.
pub fn size() -> Option<(u16, u16)> {
    let output = std::process::Command::new("stty").arg("size").stdin(std::process::Stdio::inherit()).output().ok()?;
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
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
