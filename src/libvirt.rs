//! The one door to libvirt: opening connections and turning libvirt's errors
//! into messages that name the URI and say what to try.

use virt::connect::Connect;

/// A libvirt failure, with the URI it concerned.
#[derive(Debug, thiserror::Error)]
pub enum LibvirtError {
    #[error("cannot connect to libvirt at {uri}: {message}\n  hint: {hint}")]
    Connect {
        uri: String,
        message: String,
        hint: &'static str,
    },
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
    /// Opens `uri` read-write, as later stages define and start domains.
    pub fn open(uri: &str) -> Result<Self, LibvirtError> {
        silence_default_error_printer();
        match Connect::open(Some(uri)) {
            Ok(conn) => Ok(Self {
                uri: uri.to_string(),
                conn,
            }),
            Err(err) => Err(LibvirtError::Connect {
                uri: uri.to_string(),
                message: err.message().to_string(),
                hint: connect_hint(uri),
            }),
        }
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

/// One open connection per libvirt URI, shared by observe and apply (a
/// `test:///` URI's state lives only as long as its connection).
#[derive(Default)]
pub struct Hypervisors {
    connections: std::collections::BTreeMap<String, Connection>,
}

impl Hypervisors {
    /// Opens each URI once.
    pub fn open<'a>(uris: impl IntoIterator<Item = &'a str>) -> Result<Self, LibvirtError> {
        let mut hypervisors = Self::default();
        for uri in uris {
            if !hypervisors.connections.contains_key(uri) {
                hypervisors
                    .connections
                    .insert(uri.to_string(), Connection::open(uri)?);
            }
        }
        Ok(hypervisors)
    }

    /// The connection to `uri`; panics if it was not opened, which is a bug
    /// in the caller (every URI of the selected environments is opened).
    pub fn get(&self, uri: &str) -> &Connection {
        self.connections
            .get(uri)
            .unwrap_or_else(|| panic!("no connection to {uri} was opened"))
    }
}
