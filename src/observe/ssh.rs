//! Whether a guest's SSH server answers: connect, send our identification
//! line first, then read the server's banner. Sending first matters:
//! through bookworm's passt a client that waits for the banner gets nothing
//! and is cut off after about 24 s (measured).

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

const IDENTIFICATION: &[u8] = b"SSH-2.0-lvlab_probe\r\n";
/// RFC 4253 allows other lines before the banner; give up after this many.
const MAX_LINES: usize = 20;

/// The server's banner (`SSH-2.0-OpenSSH_9.2p1 ...`), or why there is none.
pub fn probe(address: SocketAddr, timeout: Duration) -> Result<String, String> {
    let stream = TcpStream::connect_timeout(&address, timeout).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    stream
        .set_write_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    (&stream)
        .write_all(IDENTIFICATION)
        .map_err(|e| e.to_string())?;
    let mut reader = BufReader::new(&stream);
    for _ in 0..MAX_LINES {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) => return Err("the connection closed before a banner".into()),
            Ok(_) if line.starts_with("SSH-") => return Ok(line.trim_end().to_string()),
            Ok(_) => continue,
            Err(e) => return Err(e.to_string()),
        }
    }
    Err("no SSH banner".into())
}

#[cfg(test)]
mod tests {
    use std::io::Read;
    use std::net::TcpListener;

    use super::*;

    /// A server that, like passt's path to a guest, says nothing until the
    /// client has spoken.
    fn shy_server(banner: &'static str) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut first = [0u8; 8];
            stream.read_exact(&mut first).unwrap();
            assert_eq!(&first, b"SSH-2.0-");
            stream
                .write_all(format!("a greeting line\r\n{banner}\r\n").as_bytes())
                .unwrap();
        });
        address
    }

    #[test]
    fn reads_the_banner_after_speaking_first() {
        let address = shy_server("SSH-2.0-OpenSSH_9.2p1 Debian-2");
        assert_eq!(
            probe(address, Duration::from_secs(5)).unwrap(),
            "SSH-2.0-OpenSSH_9.2p1 Debian-2"
        );
    }

    #[test]
    fn silence_and_refusal_are_not_ready() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let silent = listener.local_addr().unwrap();
        let err = probe(silent, Duration::from_millis(300)).unwrap_err();
        assert!(!err.is_empty());
        drop(listener);
        assert!(
            probe(silent, Duration::from_millis(300)).is_err(),
            "nothing listens now"
        );
    }
}
