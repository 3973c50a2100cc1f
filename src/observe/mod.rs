//! Reads the world as it is: the libvirt host, its domains and lvlab's
//! metadata on them, the image cache and the per-VM files. Never changes
//! anything.

pub mod capabilities;
pub mod disks;
pub mod osinfo;
