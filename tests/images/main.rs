//! `lvlab init` and `lvlab images` against a real HTTP server on 127.0.0.1,
//! with real OpenPGP keys and signatures (GnuPG in a temporary home) and
//! real qcow2 images: the downloads, their failures and the cache rules.
//! One test binary; its tests live by what they check: `verification.rs`,
//! `downloads.rs`, `cache.rs` and `shared_files.rs`, on the lab of
//! `lab.rs`.

#[path = "../support/gpg.rs"]
mod gpg;
#[path = "../support/http.rs"]
mod http;
#[path = "../support/lab_manifest.rs"]
mod lab_manifest;
#[path = "../support/tiny_image.rs"]
mod support;

mod cache;
mod downloads;
mod lab;
mod shared_files;
mod verification;
