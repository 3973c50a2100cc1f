//! The one door to libvirt: opening connections and turning libvirt's errors
//! into messages that name the URI and say what to try. Which connection a
//! call uses is [`crate::host::Host`]'s business (a small pool per host).
//!
//! Opening a connection has no timeout of its own: a socket that accepts
//! and never answers would hang `plan` for good. The open runs on a thread
//! and is given up after [`connect_timeout`]; once open, libvirt's
//! keepalive (driven by its default event loop on a background thread)
//! notices a peer that died. Neither bounds a call that is merely slow (a
//! first define with a cold capability cache took 76 s under TCG).

use std::sync::mpsc;
use std::sync::OnceLock;
use std::time::Duration;

use virt::connect::Connect;

/// How long opening a connection may take unless told otherwise.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// Keepalive: a probe every 5 s, and the peer is dead after 3 unanswered
/// ones (some 20 s of silence from the daemon, which answers probes even
/// while a call is busy).
const KEEPALIVE_INTERVAL_SECS: i32 = 5;
const KEEPALIVE_COUNT: u32 = 3;

static CONNECT_TIMEOUT: OnceLock<Duration> = OnceLock::new();

/// Sets how long [`Connection::open`] waits (`--libvirt-timeout`), once per
/// process, before the first connection is opened.
pub fn set_connect_timeout(timeout: Duration) {
    let _ = CONNECT_TIMEOUT.set(timeout);
}

/// How long opening a connection may take.
pub fn connect_timeout() -> Duration {
    CONNECT_TIMEOUT
        .get()
        .copied()
        .unwrap_or(DEFAULT_CONNECT_TIMEOUT)
}

/// The version of the libvirt library this process runs against (the
/// shared library loaded now, not a daemon's), as `x.y.z`.
pub fn library_version() -> Option<String> {
    silence_default_error_printer();
    Connect::version()
        .ok()
        .map(crate::observe::capabilities::format_version)
}

/// A libvirt failure, with the URI it concerned.
#[derive(Debug, thiserror::Error)]
pub enum LibvirtError {
    #[error("cannot connect to libvirt at {uri}: {message}\n  hint: {hint}")]
    Connect {
        uri: String,
        message: String,
        hint: &'static str,
    },
    #[error(
        "libvirt at {uri} did not answer within {} s\n  hint: is libvirtd (or \
         virtqemud) running and answering? `virsh -c {uri} list` tells; a slow \
         host may need a longer `--libvirt-timeout SECS`",
        .timeout.as_secs_f64()
    )]
    ConnectTimeout { uri: String, timeout: Duration },
    #[error("libvirt at {uri} failed to {what}: {message}")]
    Call {
        uri: String,
        what: &'static str,
        message: String,
    },
}

/// An open connection that remembers its URI for error messages.
pub struct Connection {
    uri: String,
    conn: Connect,
}

impl Connection {
    /// Opens `uri` read-write, as later stages define and start domains,
    /// waiting at most [`connect_timeout`] for libvirt to answer.
    pub fn open(uri: &str) -> Result<Self, LibvirtError> {
        silence_default_error_printer();
        start_event_loop();
        let timeout = connect_timeout();
        let conn = open_within(uri, timeout)?;
        if !uri.starts_with("test:") {
            // Unsupported by some drivers; a connection without keepalive
            // still works, it only notices a dead peer later.
            match conn.set_keep_alive(KEEPALIVE_INTERVAL_SECS, KEEPALIVE_COUNT) {
                Ok(_) => tracing::debug!(
                    uri,
                    "libvirt keepalive: a probe every {KEEPALIVE_INTERVAL_SECS} s, \
                     dead after {KEEPALIVE_COUNT} unanswered"
                ),
                Err(err) => tracing::debug!(uri, "no libvirt keepalive: {}", err.message()),
            }
        }
        Ok(Self {
            uri: uri.to_string(),
            conn,
        })
    }

    pub fn uri(&self) -> &str {
        &self.uri
    }

    /// The URI as libvirt reports it (`virConnectGetURI`): one spelling
    /// for one host, whichever alias opened it.
    pub fn canonical_uri(&self) -> Result<String, LibvirtError> {
        self.conn.uri().map_err(|e| self.error("report its URI", e))
    }

    pub fn raw(&self) -> &Connect {
        &self.conn
    }

    /// Wraps a libvirt error from a call on this connection.
    pub fn error(&self, what: &'static str, err: virt::error::Error) -> LibvirtError {
        LibvirtError::Call {
            uri: self.uri.clone(),
            what,
            message: err.message().to_string(),
        }
    }
}

/// `Connect::open` on a thread of its own, given up after `timeout`. A
/// thread still blocked then is left behind: it holds nothing lvlab needs,
/// and the command ends with the error.
fn open_within(uri: &str, timeout: Duration) -> Result<Connect, LibvirtError> {
    let (sender, receiver) = mpsc::channel();
    let target = uri.to_string();
    let spawned = std::thread::Builder::new()
        .name("libvirt-connect".into())
        .spawn(move || {
            // The receiver is gone when the wait timed out; the connection
            // is then closed here.
            let _ = sender.send(Connect::open(Some(&target)));
        });
    if let Err(err) = spawned {
        return Err(LibvirtError::Connect {
            uri: uri.to_string(),
            message: format!("cannot start a thread to connect: {err}"),
            hint: "the system is out of threads or memory",
        });
    }
    match receiver.recv_timeout(timeout) {
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(err)) => Err(LibvirtError::Connect {
            uri: uri.to_string(),
            message: err.message().to_string(),
            hint: connect_hint(uri),
        }),
        Err(_) => Err(LibvirtError::ConnectTimeout {
            uri: uri.to_string(),
            timeout,
        }),
    }
}

/// libvirt's default event loop, registered before the first connection
/// and run on a background thread for the rest of the process: keepalive
/// probes are sent and answered only while it runs.
fn start_event_loop() {
    static STARTED: OnceLock<()> = OnceLock::new();
    STARTED.get_or_init(|| {
        if let Err(err) = virt::event::event_register_default_impl() {
            tracing::debug!("no libvirt event loop: {}", err.message());
            return;
        }
        let spawned = std::thread::Builder::new()
            .name("libvirt-events".into())
            .spawn(|| loop {
                if let Err(err) = virt::event::event_run_default_impl() {
                    tracing::debug!("libvirt event loop stopped: {}", err.message());
                    return;
                }
            });
        if let Err(err) = spawned {
            tracing::debug!("no libvirt event loop thread: {err}");
        }
    });
}

fn connect_hint(uri: &str) -> &'static str {
    if uri.starts_with("qemu:///system") {
        "is libvirtd (or virtqemud) running? Start it with `libvirtd -d` as root, \
         or use `libvirt_uri: qemu:///session`"
    } else if uri.starts_with("qemu:///session") {
        "is libvirt's QEMU driver installed (Debian: libvirt-daemon-driver-qemu)?"
    } else if uri.starts_with("test://") {
        "a test:///<path> URI needs an absolute path to a libvirt test-driver XML file"
    } else {
        "check the URI (`virsh -c URI list` tells whether libvirt can reach it)"
    }
}

/// libvirt prints every error to stderr by default; lvlab reports them itself.
fn silence_default_error_printer() {
    virt::error::clear_error_callback();
}
