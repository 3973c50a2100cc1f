//! Apply's progress as lines: one when an action starts, one when it ends
//! with its duration, and a "still running" line for long actions.

use std::sync::Mutex;
use std::time::Duration;

use crate::apply::ExecutionObserver;

/// How often a long action is reported as still running.
const STILL_RUNNING_EVERY: Duration = Duration::from_secs(10);

pub struct LineProgress {
    last_report: Mutex<Duration>,
}

impl LineProgress {
    pub fn new() -> Self {
        Self {
            last_report: Mutex::new(Duration::ZERO),
        }
    }
}

impl ExecutionObserver for LineProgress {
    fn started(&self, job: &str) {
        println!("{job}...");
    }

    fn finished(&self, job: &str, elapsed: Duration, result: &Result<(), String>) {
        match result {
            Ok(()) => println!("{job}: done after {}", seconds(elapsed)),
            Err(message) => println!("{job}: FAILED after {}: {message}", seconds(elapsed)),
        }
    }

    fn still_running(&self, running: &[(String, Duration)]) {
        let longest = running.iter().map(|(_, d)| *d).max().unwrap_or_default();
        let mut last = self.last_report.lock().unwrap_or_else(|e| e.into_inner());
        if longest < *last + STILL_RUNNING_EVERY {
            if longest < *last {
                *last = Duration::ZERO;
            }
            return;
        }
        *last = longest;
        for (job, elapsed) in running.iter().filter(|(_, d)| *d >= STILL_RUNNING_EVERY) {
            println!("{job}: still running... [{}s elapsed]", elapsed.as_secs());
        }
    }
}

fn seconds(d: Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}
