//! A container's log file as the CRI runtime writes it: one line per chunk,
//! `TIME STREAM TAG TEXT`, where STREAM is stdout or stderr and TAG is F (the chunk ends a line)
//! or P (a partial line, continued by the next chunk of the same stream).

use crate::runtime::Logs;

/// The file's text as `Logs`; with `stamped`, each line begins with its time, as `docker logs
/// --timestamps` does. A line in no known form is kept whole on stderr, so nothing is lost.
pub fn parse(text: &str, stamped: bool) -> Logs {
    let mut logs = Logs::default();
    for line in text.lines() {
        let mut fields = line.splitn(4, ' ');
        let (Some(time), Some(stream), Some(tag)) = (fields.next(), fields.next(), fields.next()) else {
            logs.stderr.push_str(&format!("{line}\n"));
            continue;
        };
        let content = fields.next().unwrap_or("");
        let mut chunk = String::new();
        if stamped {
            chunk.push_str(time);
            chunk.push(' ');
        }
        chunk.push_str(content);
        if tag != "P" {
            chunk.push('\n');
        }
        match stream {
            "stdout" => logs.stdout.extend_from_slice(chunk.as_bytes()),
            "stderr" => logs.stderr.push_str(&chunk),
            _ => logs.stderr.push_str(&format!("{line}\n")),
        }
    }
    logs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_and_partial_lines() {
        let text = "2026-11-30T12:00:00.1Z stdout P hel\n\
                    2026-11-30T12:00:00.2Z stdout F lo\n\
                    2026-11-30T12:00:00.3Z stderr F Shutting down, got signal: Terminated\n\
                    2026-11-30T12:00:00.4Z stdout F \n";
        let logs = parse(text, false);
        assert_eq!(String::from_utf8_lossy(&logs.stdout), "hello\n\n");
        assert_eq!(logs.stderr, "Shutting down, got signal: Terminated\n");
        let stamped = parse(text, true);
        assert!(stamped.stderr.starts_with("2026-11-30T12:00:00.3Z Shutting down"));
    }
}
