//! Whether a guest's SSH server answers: connect, send our identification
//! line first, then read the server's banner. Sending first matters:
//! through bookworm's passt a client that waits for the banner gets nothing
//! and is cut off after about 24 s (measured). A guest of a remote host is
//! probed the same way through an `ssh -W` to that host ([`probe_route`]).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Stdio;
use std::time::Duration;

use crate::host::{Route, SshHop};

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
    read_banner(BufReader::new(&stream))
}

/// [`probe`] of `address` by the way `route` says: through an SSH hop,
/// the address is as the hypervisor host sees it.
pub fn probe_route(
    address: SocketAddr,
    route: &Route,
    timeout: Duration,
) -> Result<String, String> {
    match route {
        Route::Direct => probe(address, timeout),
        Route::ProxyCommand(hop) => probe_through(hop, address, timeout),
        Route::Unreachable(why) => Err(why.clone()),
    }
}

/// The banner at `address` through `ssh -W` to the hop's host: our line
/// goes to its input, the banner comes from its output. The login to the
/// host gets `timeout`, and the banner as long again.
fn probe_through(hop: &SshHop, address: SocketAddr, timeout: Duration) -> Result<String, String> {
    let target = address.to_string();
    let mut child = hop
        .command(timeout, &["-W", &target], &[])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run ssh: {e}"))?;
    let stdout = child.stdout.take().expect("stdout is piped");
    let (send, banner) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = send.send(read_banner(BufReader::new(stdout)));
    });
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let _ = stdin.write_all(IDENTIFICATION);
    let answer = banner
        .recv_timeout(timeout * 2)
        .unwrap_or_else(|_| Err("no banner in time".into()));
    drop(stdin);
    let _ = child.kill();
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        let _ = pipe.read_to_string(&mut stderr);
    }
    let _ = child.wait();
    answer.map_err(|err| match stderr.trim() {
        "" => err,
        ssh_said => format!("{err} ({})", ssh_said.replace('\n', " ")),
    })
}

/// The first `SSH-` line of `reader`, skipping what RFC 4253 allows before
/// it.
fn read_banner(mut reader: impl BufRead) -> Result<String, String> {
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
