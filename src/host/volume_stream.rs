//! Bytes into and out of a storage volume through libvirt streams
//! (`virStorageVolUpload`, `virStorageVolDownload`): the one way lvlab
//! moves a file's bytes to a host whose files it cannot reach.

use virt::storage_vol::StorageVol;
use virt::stream::Stream;

use crate::libvirt::{Connection, LibvirtError};

/// Bytes per stream message: libvirt's remote protocol carries at most
/// 256 KiB of stream data in one.
const CHUNK: usize = 256 * 1024;

/// Writes `length` bytes into `volume` from its start, each chunk as
/// `read` fills it (`Ok(0)`: nothing more), telling `progress` how many
/// bytes went each time. A failed read aborts the stream with the
/// reader's own error.
pub fn upload<E: From<LibvirtError>>(
    conn: &Connection,
    volume: &StorageVol,
    length: u64,
    mut read: impl FnMut(&mut [u8]) -> Result<usize, E>,
    progress: &dyn Fn(u64),
) -> Result<(), E> {
    let stream = Stream::new(conn.raw(), 0).map_err(|e| conn.error("open an upload stream", e))?;
    volume
        .upload(&stream, 0, length, 0)
        .map_err(|e| conn.error("start a volume upload", e))?;
    let mut buffer = vec![0u8; CHUNK];
    let mut left = length;
    while left > 0 {
        let want = CHUNK.min(usize::try_from(left).unwrap_or(CHUNK));
        let got = match read(&mut buffer[..want]) {
            Ok(0) => break,
            Ok(got) => got,
            Err(err) => {
                let _ = stream.abort();
                return Err(err);
            }
        };
        send_all(conn, &stream, &buffer[..got])?;
        left -= got as u64;
        progress(got as u64);
    }
    Ok(stream
        .finish()
        .map_err(|e| conn.error("finish a volume upload", e))?)
}

/// Sends all of `bytes`: a send may take fewer than it is given.
fn send_all(conn: &Connection, stream: &Stream, mut bytes: &[u8]) -> Result<(), LibvirtError> {
    while !bytes.is_empty() {
        let sent = stream
            .send(bytes)
            .map_err(|e| conn.error("send upload data", e))?;
        bytes = &bytes[usize::try_from(sent).unwrap_or(0).min(bytes.len())..];
    }
    Ok(())
}

/// The `length` bytes of `volume` from `offset`.
pub fn download(
    conn: &Connection,
    volume: &StorageVol,
    offset: u64,
    length: u64,
) -> Result<Vec<u8>, LibvirtError> {
    let stream = Stream::new(conn.raw(), 0).map_err(|e| conn.error("open a download stream", e))?;
    volume
        .download(&stream, offset, length, 0)
        .map_err(|e| conn.error("start a volume download", e))?;
    let mut bytes = Vec::with_capacity(usize::try_from(length).unwrap_or(0));
    let mut buffer = vec![0u8; CHUNK];
    loop {
        let got = stream
            .recv(&mut buffer)
            .map_err(|e| conn.error("receive volume data", e))?;
        if got <= 0 {
            break;
        }
        bytes.extend_from_slice(&buffer[..got as usize]);
    }
    stream
        .finish()
        .map_err(|e| conn.error("finish a volume download", e))?;
    Ok(bytes)
}
