//! What the benches share: the `--quick` flag and timing rows printed as
//! `key = value unit  details`, the form benches/check.sh reads.
#![allow(dead_code)] // each bench uses part of it

use std::time::{Duration, Instant};

/// `--quick`: fewer runs, for CI (benches/check.sh --quick).
pub fn quick() -> bool {
    std::env::args().any(|a| a == "--quick")
}

/// Prints one row for benches/check.sh.
pub fn row(key: &str, value: f64, unit: &str, details: &str) {
    println!("{key} = {value:.3} {unit}  {details}");
}

/// Timings of one step, sorted.
pub struct Samples(Vec<Duration>);

impl From<Vec<Duration>> for Samples {
    fn from(mut times: Vec<Duration>) -> Self {
        times.sort();
        Self(times)
    }
}

impl Samples {
    /// `runs` timings of `step`, after a few untimed runs.
    pub fn measure(runs: usize, step: &mut dyn FnMut()) -> Self {
        for _ in 0..runs.min(50) {
            step();
        }
        let times: Vec<_> = (0..runs)
            .map(|_| {
                let start = Instant::now();
                step();
                start.elapsed()
            })
            .collect();
        Self::from(times)
    }

    pub fn median(&self) -> Duration {
        self.0[self.0.len() / 2]
    }

    /// Prints the median in ms, with the 99th percentile and the minimum.
    pub fn print(&self, key: &str, what: &str) {
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        let n = self.0.len();
        let details = format!(
            "(p99 {:.3} ms, min {:.3} ms, {n} runs) {what}",
            ms(self.0[(n * 99 / 100).min(n - 1)]),
            ms(self.0[0]),
        );
        row(key, ms(self.median()), "ms", &details);
    }
}
