//! `cargo xtask pod` in the guest: a shell on the guest's second serial port (ttyS1), relayed
//! to this terminal in raw mode.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::mpsc;

use anyhow::{Context, Result};

/// Connects this terminal to the guest's shell port. Returns the script the agent must run
/// (in the guest) to open the shell there with `environment`; the relay runs in threads until
/// either side closes, and raw mode lasts as long as the returned guard.
pub fn relay(
    socket: &Path,
    environment: &[(String, String)],
    cancel: crate::cancel::Cancel,
) -> Result<(String, crate::terminal::RawMode)> {
    let stream = UnixStream::connect(socket).context("cannot reach the guest's shell port")?;
    let (rows, columns) = crate::terminal::size(cancel).unwrap_or((24, 80));
    let raw = crate::terminal::RawMode::enable();
    // The guest's tty drops what arrives before the shell opens it, so keys (or a piped
    // script) are held back until the shell has said something: its first prompt.
    let (shell_spoke, wait_for_shell) = mpsc::channel::<()>();
    let mut from_guest = stream.try_clone()?;
    std::thread::spawn(move || {
        let mut buffer = [0u8; 4096];
        let mut stdout = std::io::stdout();
        let mut shell_spoke = Some(shell_spoke);
        while let Ok(count @ 1..) = from_guest.read(&mut buffer) {
            if let Some(spoke) = shell_spoke.take() {
                let _ = spoke.send(());
            }
            if stdout.write_all(&buffer[..count]).and_then(|()| stdout.flush()).is_err() {
                break;
            }
        }
    });
    let mut to_guest = stream;
    std::thread::spawn(move || {
        if wait_for_shell.recv().is_err() {
            return;
        }
        if std::io::copy(&mut std::io::stdin(), &mut to_guest).is_ok() {
            // End of input (a piped script ran out): Ctrl-D, so the shell exits as a
            // terminal's would. On a terminal in raw mode, Ctrl-D is an ordinary key.
            let _ = to_guest.write_all(b"\x04");
        }
    });
    let term = std::env::var("TERM").unwrap_or_else(|_| "vt100".to_string());
    let exports: String = environment.iter().map(|(name, value)| format!(" {name}={value}")).collect();
    let script = format!(
        "stty rows {rows} cols {columns} < /dev/ttyS1; export TERM={term}{exports}; \
         cd /root; exec setsid --ctty --wait sh -i < /dev/ttyS1 > /dev/ttyS1 2>&1"
    );
    Ok((script, raw))
}
