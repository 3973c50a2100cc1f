//! One [`Host`] per libvirt host: its connections, where its files live
//! ([`Storage`]), and every answer that depends on where the hypervisor
//! runs (which virtiofsd, which free port, where QEMU logs, how a guest's
//! SSH is reached). A host is this machine ([`Place::ThisMachine`]) or
//! another one ([`Place::Remote`], reached through an SSH hop read from
//! its URI); nothing that calls a `Host` needs to know which. A machine's
//! volumes are files or pool volumes ([`Host::storage_for`]), whatever the
//! place.
//!
//! Connections come from a small pool per host, opened lazily: libvirtd
//! serves at most `max_client_requests` (5) calls at once per client
//! connection and queues the rest, so ten parallel destroys on one
//! connection took 3.7 s against 1.3-1.7 s for one. A [`Lease`] takes the
//! least busy connection and opens another once each carries
//! [`CALLS_PER_CONNECTION`]. The test driver keeps its whole state in its
//! connection, so a `test:` host has exactly one.

mod endpoint;
mod facts;
pub mod images_pool;
mod place;
mod pool_volumes;
pub mod pools;
mod storage;
mod volume_stream;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

pub use endpoint::{Route, SshEndpoint};
pub use facts::HostFacts;
pub use place::{no_hop_message, Place, RemoteHost, SshHop};
pub use pool_volumes::{image_on_host, PoolVolumes};
pub use pools::{PoolError, PoolMark};
pub use storage::{LocalFiles, Storage};

use crate::desired::StorageKind;
use crate::libvirt::{Connection, LibvirtError};

/// Leases one connection carries before the pool opens another: below
/// libvirtd's `max_client_requests` (5), so no call waits in its queue.
pub const CALLS_PER_CONNECTION: usize = 4;

/// The most connections one host gets (32 calls at once): past that,
/// leases share the least busy one.
pub const MAX_CONNECTIONS: usize = 8;

/// A libvirt host: its URI, its connections and its storage.
pub struct Host {
    uri: String,
    canonical_uri: String,
    place: Place,
    pool: Mutex<Vec<Arc<Slot>>>,
    /// A further connection failed to open: the pool stays as it is rather
    /// than make every later lease wait for the same failure.
    stop_growing: AtomicBool,
}

/// One pooled connection and how many leases hold it now.
struct Slot {
    connection: Connection,
    leases: AtomicUsize,
}

impl Slot {
    fn new(connection: Connection) -> Arc<Self> {
        Arc::new(Self {
            connection,
            leases: AtomicUsize::new(0),
        })
    }
}

/// A connection lent from a host's pool for a while (an action, an
/// observation); returned when dropped.
pub struct Lease {
    slot: Arc<Slot>,
}

impl std::ops::Deref for Lease {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        &self.slot.connection
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.slot.leases.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Host {
    /// Opens the first connection to `uri` (the one that tells whether the
    /// host answers at all) and asks libvirt for its canonical URI.
    pub fn open(uri: &str) -> Result<Self, LibvirtError> {
        let first = Connection::open(uri)?;
        let canonical_uri = first.canonical_uri()?;
        tracing::debug!(uri, canonical_uri, "libvirt connection 1 to {uri} opened");
        Ok(Self {
            uri: uri.to_string(),
            canonical_uri,
            place: Place::of(uri),
            pool: Mutex::new(vec![Slot::new(first)]),
            stop_growing: AtomicBool::new(false),
        })
    }

    /// The URI the manifest (or `--connect`) gave.
    pub fn uri(&self) -> &str {
        &self.uri
    }

    /// The URI as libvirt reports it: one spelling for one host.
    pub fn canonical_uri(&self) -> &str {
        &self.canonical_uri
    }

    pub fn place(&self) -> &Place {
        &self.place
    }

    /// Where this host keeps `machine`'s volumes: its files, or its
    /// pool (whose mark names the machine and its lab).
    pub fn storage_for(&self, machine: &crate::desired::MachineSpec) -> Box<dyn Storage + '_> {
        let mark = PoolMark::machine(
            &machine.environment,
            &machine.vm_name,
            &machine.lab(),
            &machine.vm_dir,
        );
        match machine.storage {
            StorageKind::Files => Box::new(LocalFiles),
            StorageKind::Pool => Box::new(
                PoolVolumes::new(self, mark).with_images(images_pool::images_pool_dir(machine)),
            ),
        }
    }

    /// This host's storage of `kind`; `mark` names whose pool a pool
    /// volume is in (unused by files).
    pub fn storage(&self, kind: StorageKind, mark: PoolMark) -> Box<dyn Storage + '_> {
        match kind {
            StorageKind::Files => Box::new(LocalFiles),
            StorageKind::Pool => Box::new(PoolVolumes::new(self, mark)),
        }
    }

    /// A connection for a while: the least busy one, or a new one when
    /// every open one already carries [`CALLS_PER_CONNECTION`] leases. A
    /// further connection that fails to open is logged, the least busy one
    /// is shared instead (the host answered the first), and the pool grows
    /// no more. The pool stays locked while a connection opens (at most
    /// `--libvirt-timeout`): simpler than a slot that is not open yet.
    pub fn connection(&self) -> Lease {
        let mut pool = self.pool.lock().unwrap_or_else(|e| e.into_inner());
        let least = least_busy(&pool);
        let busy = least.leases.load(Ordering::SeqCst);
        let slot = if busy >= CALLS_PER_CONNECTION && self.may_grow(pool.len()) {
            match Connection::open(&self.uri) {
                Ok(connection) => {
                    let slot = Slot::new(connection);
                    pool.push(slot.clone());
                    tracing::debug!(
                        uri = self.uri,
                        "libvirt connection {} to {} opened ({busy} calls on each other)",
                        pool.len(),
                        self.uri
                    );
                    slot
                }
                Err(err) => {
                    tracing::debug!("sharing busy libvirt connections from now on: {err}");
                    self.stop_growing.store(true, Ordering::SeqCst);
                    least
                }
            }
        } else {
            least
        };
        slot.leases.fetch_add(1, Ordering::SeqCst);
        Lease { slot }
    }

    /// How many connections are open now.
    pub fn connections(&self) -> usize {
        self.pool.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// The test driver's state lives in its one connection: a second would
    /// see another world.
    fn may_grow(&self, open: usize) -> bool {
        open < MAX_CONNECTIONS
            && !self.uri.starts_with("test:")
            && !self.stop_growing.load(Ordering::SeqCst)
    }

    /// The virtiofsd the host would run for shared directories: looked up
    /// here for this machine; `None` for a remote host, whose libvirt
    /// finds its own (no path of this machine means anything there).
    pub fn virtiofsd(&self) -> Option<PathBuf> {
        match self.place {
            Place::ThisMachine => find_virtiofsd(),
            Place::Remote(_) => None,
        }
    }

    /// A port on the host's loopback for a passt SSH forward (`ssh_port:
    /// auto`): one nothing listens on now, for this machine. A remote
    /// host's ports cannot be probed from here: a random one of
    /// [`REMOTE_PORTS`], and the start picks another when passt finds it
    /// taken (see `actions::domain::start`).
    pub fn free_ssh_port(&self) -> Option<u16> {
        match self.place {
            Place::ThisMachine => {
                let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).ok()?;
                listener.local_addr().ok().map(|a| a.port())
            }
            Place::Remote(_) => random_port(),
        }
    }

    /// The last `lines` lines of a domain's QEMU log, oldest first, where
    /// libvirt keeps it (the system daemon's place, then the session
    /// daemon's; on a remote host, the system daemon's, read over SSH).
    pub fn qemu_log_tail(&self, domain: &str, lines: usize) -> Option<Vec<String>> {
        let text = match &self.place {
            Place::ThisMachine => self.qemu_log(domain)?,
            Place::Remote(remote) => remote_log(remote, domain, Some(lines))?,
        };
        let all: Vec<&str> = text.lines().collect();
        Some(
            all[all.len().saturating_sub(lines)..]
                .iter()
                .map(|l| l.to_string())
                .collect(),
        )
    }

    /// The whole of the domain's QEMU log, where this host's libvirt keeps
    /// it (the system daemon's place, then the session daemon's; on a
    /// remote host the system daemon's, read over SSH).
    pub fn qemu_log(&self, domain: &str) -> Option<String> {
        if let Place::Remote(remote) = &self.place {
            return remote_log(remote, domain, None);
        }
        let home_log =
            std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/libvirt/qemu/log"));
        [Some(PathBuf::from(QEMU_LOG_DIR)), home_log]
            .into_iter()
            .flatten()
            .find_map(|dir| std::fs::read_to_string(dir.join(format!("{domain}.log"))).ok())
    }

    /// How long a running domain's QEMU has run: libvirt writes its pid
    /// file when the process starts. Unknown for a remote host (an SSH
    /// login per machine and `status` would be too dear).
    pub fn uptime(&self, domain: &str) -> Option<Duration> {
        if let Place::Remote(_) = self.place {
            return None;
        }
        let runtime_dir =
            std::env::var_os("XDG_RUNTIME_DIR").map(|d| PathBuf::from(d).join("libvirt/qemu/run"));
        [Some(PathBuf::from("/run/libvirt/qemu")), runtime_dir]
            .into_iter()
            .flatten()
            .map(|dir| dir.join(format!("{domain}.pid")))
            .find_map(|pid| std::fs::metadata(pid).ok()?.modified().ok())
            .and_then(|started| SystemTime::now().duration_since(started).ok())
    }
}

/// Where the system daemon keeps QEMU's logs.
const QEMU_LOG_DIR: &str = "/var/log/libvirt/qemu";

/// The ports [`Host::free_ssh_port`] picks from on a remote host: below
/// Linux's ephemeral range (32768-60999), so no outgoing connection of
/// that host holds one, and above the ports services listen on.
pub const REMOTE_PORTS: std::ops::RangeInclusive<u16> = 20000..=32767;

fn random_port() -> Option<u16> {
    let mut bytes = [0u8; 2];
    getrandom::fill(&mut bytes).ok()?;
    let span = REMOTE_PORTS.end() - REMOTE_PORTS.start() + 1;
    Some(REMOTE_PORTS.start() + u16::from_le_bytes(bytes) % span)
}

/// A domain's QEMU log on a remote host (its last `lines`, or all),
/// through the SSH hop; `None` without a hop or a log (logged).
fn remote_log(remote: &RemoteHost, domain: &str, lines: Option<usize>) -> Option<String> {
    let hop = remote
        .hop()
        .map_err(|err| tracing::debug!("no QEMU log of {domain}: {err}"))
        .ok()?;
    let path = crate::escape::shell_quote(&format!("{QEMU_LOG_DIR}/{domain}.log"));
    let command = match lines {
        Some(n) => format!("tail -n {n} -- {path}"),
        None => format!("cat -- {path}"),
    };
    hop.run(Duration::from_secs(15), &command)
        .map_err(|err| tracing::debug!("no QEMU log of {domain} on {}: {err}", remote.uri))
        .ok()
}

/// Whether `uri` names a libvirt on another machine: it has a host part
/// (`qemu+ssh://user@host/system`, `qemu+tls://host/system`), as libvirt
/// itself decides. `qemu:///system`, `qemu:///session` and `test:///...`
/// have none. An unparsable URI is not remote (libvirt rejects it).
pub fn is_remote_uri(uri: &str) -> bool {
    url::Url::parse(uri).is_ok_and(|u| u.host_str().is_some_and(|h| !h.is_empty()))
}

fn least_busy(pool: &[Arc<Slot>]) -> Arc<Slot> {
    pool.iter()
        .min_by_key(|s| s.leases.load(Ordering::SeqCst))
        .expect("a host keeps its first connection")
        .clone()
}

/// Where Debian and `cargo install` put virtiofsd, after PATH.
fn find_virtiofsd() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let home_cargo = std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo/bin"));
    std::env::split_paths(&path)
        .chain(home_cargo)
        .map(|dir| dir.join("virtiofsd"))
        .chain(["/usr/libexec/virtiofsd", "/usr/lib/qemu/virtiofsd"].map(PathBuf::from))
        .find(|candidate| candidate.is_file())
}

/// The hosts of the selected environments, one per canonical URI: two
/// spellings of one libvirt share a host (and its `test:` state). A host
/// that cannot be opened is kept as [`Unreachable`]: it fails only the
/// machines placed on it.
#[derive(Default)]
pub struct Hosts {
    hosts: Vec<Host>,
    /// Each URI asked for, to its host.
    by_uri: BTreeMap<String, usize>,
    /// The URIs that could not be opened, in the order asked.
    unreachable: Vec<Unreachable>,
}

/// A libvirt URI that could not be opened, and libvirt's reason.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Unreachable {
    pub uri: String,
    pub message: String,
}

impl std::fmt::Display for Unreachable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "host unreachable: {}: {}", self.uri, self.message)
    }
}

impl Hosts {
    /// Opens each URI's host once, all at once (an unreachable one may
    /// take `--libvirt-timeout`). Fails only when none opens: then nothing
    /// can be done, and the first host's error (with its hint) says why.
    pub fn open<'a>(uris: impl IntoIterator<Item = &'a str>) -> Result<Self, LibvirtError> {
        let mut wanted: Vec<&str> = Vec::new();
        for uri in uris {
            if !wanted.contains(&uri) {
                wanted.push(uri);
            }
        }
        let opened = crate::parallel::in_parallel(&wanted, wanted.len(), |uri| Host::open(uri));
        let mut hosts = Self::default();
        let mut first_error = None;
        for (uri, host) in wanted.into_iter().zip(opened) {
            match host {
                Ok(host) => hosts.add(uri, host),
                Err(err) => {
                    hosts.unreachable.push(Unreachable {
                        uri: uri.to_string(),
                        message: match &err {
                            LibvirtError::Connect { message, .. } => message.clone(),
                            other => other.to_string(),
                        },
                    });
                    first_error.get_or_insert(err);
                }
            }
        }
        match first_error {
            Some(err) if hosts.hosts.is_empty() => Err(err),
            _ => Ok(hosts),
        }
    }

    fn add(&mut self, uri: &str, host: Host) {
        let index = match self
            .hosts
            .iter()
            .position(|h| h.canonical_uri == host.canonical_uri)
        {
            Some(same) => same,
            None => {
                self.hosts.push(host);
                self.hosts.len() - 1
            }
        };
        self.by_uri.insert(uri.to_string(), index);
    }

    /// The host `machine` runs on.
    pub fn of(&self, machine: &crate::desired::MachineSpec) -> &Host {
        self.get(&machine.libvirt_uri)
    }

    /// The host of `uri`; panics if it was not opened, which is a bug in
    /// the caller (every reachable URI of the selected environments is
    /// opened; [`Hosts::find`] first where a host may be unreachable).
    pub fn get(&self, uri: &str) -> &Host {
        self.find(uri)
            .unwrap_or_else(|| panic!("no host for {uri} was opened"))
    }

    /// The host of `uri`, when it was opened.
    pub fn find(&self, uri: &str) -> Option<&Host> {
        self.by_uri.get(uri).map(|index| &self.hosts[*index])
    }

    /// Why `uri` could not be opened, when it could not.
    pub fn unreachable(&self, uri: &str) -> Option<&Unreachable> {
        self.unreachable.iter().find(|u| u.uri == uri)
    }

    /// Every URI that could not be opened.
    pub fn all_unreachable(&self) -> &[Unreachable] {
        &self.unreachable
    }

    /// The opened hosts, one per canonical URI.
    pub fn iter(&self) -> impl Iterator<Item = &Host> {
        self.hosts.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::is_remote_uri;

    #[test]
    fn only_uris_with_a_host_part_are_remote() {
        for local in [
            "qemu:///system",
            "qemu:///session",
            "test:///default",
            "test:///tmp/state/empty.xml",
            "qemu+unix:///system",
            "not a uri",
        ] {
            assert!(!is_remote_uri(local), "{local}");
        }
        for remote in [
            "qemu+ssh://root@127.0.0.1:2222/system?keyfile=/k&no_verify=1",
            "qemu+ssh://lab.example/session",
            "qemu+tls://hv2/system",
            "qemu://hv3/system",
        ] {
            assert!(is_remote_uri(remote), "{remote}");
        }
    }
}
