//! Carries a plan out: turns each planned step into a job and walks the
//! graph with bounded parallelism, reporting progress to an observer.

pub mod error;
pub mod executor;
pub mod lock;

pub use error::{ActionError, DomainActionError};
pub use executor::{execute, ExecutionObserver, Job, JobInfo, NoObserver, Outcome};
pub use lock::{state_dir, EnvironmentLock, LockError, STATE_DIR_VAR};
