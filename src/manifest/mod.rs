//! Reads `Lvlab.yml`, validates it, and resolves it into the desired state.

mod error;

pub use error::ManifestError;
