//! The image pipeline's reporter, as the command line shows it: progress
//! bars (indicatif) when stderr is a terminal, plain lines otherwise, and
//! nothing with `--quiet`.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::images::{Phase, Reporter};

/// The reporter for this terminal (or pipe).
pub fn reporter(quiet: bool) -> Box<dyn FinishingReporter> {
    if quiet {
        Box::new(Quiet)
    } else if std::io::stderr().is_terminal() {
        Box::new(Bars::new())
    } else {
        Box::new(Lines::default())
    }
}

/// A reporter the command tells when all jobs are over.
pub trait FinishingReporter: Reporter {
    fn finish(&self) {}
}

struct Quiet;
impl Reporter for Quiet {}
impl FinishingReporter for Quiet {}

/// Human sizes: 1.5 MiB.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// One bar per image and a total line.
struct Bars {
    multi: MultiProgress,
    total: ProgressBar,
    bars: Mutex<HashMap<String, ProgressBar>>,
}

impl Bars {
    fn new() -> Self {
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
        let total = multi.add(ProgressBar::new(0));
        total.set_style(
            ProgressStyle::with_template(
                "{prefix:>14.bold} {bytes:>10}/{total_bytes:<10} {binary_bytes_per_sec:>12} eta {eta}",
            )
            .expect("valid template"),
        );
        total.set_prefix("total");
        Self {
            multi,
            total,
            bars: Mutex::new(HashMap::new()),
        }
    }

    fn bar(&self, image: &str) -> ProgressBar {
        let mut bars = self.bars.lock().unwrap_or_else(|e| e.into_inner());
        // Called for every downloaded chunk: no allocation once the bar exists.
        if let Some(bar) = bars.get(image) {
            return bar.clone();
        }
        bars.entry(image.to_string())
            .or_insert_with(|| {
                let bar = self.multi.insert_before(&self.total, ProgressBar::new(0));
                bar.set_style(
                    ProgressStyle::with_template("{prefix:>14.bold} {spinner} {msg}")
                        .expect("valid template"),
                );
                bar.set_prefix(image.to_string());
                bar.enable_steady_tick(Duration::from_millis(120));
                bar
            })
            .clone()
    }
}

impl Reporter for Bars {
    fn on_start(&self, image: &str) {
        self.bar(image).set_message("waiting");
    }
    fn on_phase(&self, image: &str, phase: Phase) {
        self.bar(image).set_message(phase.label());
    }
    fn on_transfer(&self, image: &str, _url: &str, done: u64, total: Option<u64>) {
        let bar = self.bar(image);
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix:>14.bold} {msg:9} [{bar:30}] {bytes:>10}/{total_bytes:<10} {binary_bytes_per_sec:>12} eta {eta}",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        bar.set_length(total.unwrap_or(0));
        bar.set_position(done);
        if let Some(total) = total {
            self.total.inc_length(total);
        }
        self.total.inc(done);
    }
    fn on_progress(&self, image: &str, bytes: u64) {
        self.bar(image).inc(bytes);
        self.total.inc(bytes);
    }
    fn on_retry(&self, image: &str, attempt: u32, delay: Duration, error: &str) {
        self.bar(image)
            .set_message(format!("retry {attempt} in {:.0?}: {error}", delay));
    }
    fn on_done(&self, image: &str, ok: bool, summary: &str) {
        let bar = self.bar(image);
        bar.set_style(
            ProgressStyle::with_template("{prefix:>14.bold} {msg}").expect("valid template"),
        );
        let mark = if ok { "ok" } else { "FAILED" };
        bar.finish_with_message(format!("{mark}: {summary}"));
    }
}

impl FinishingReporter for Bars {
    fn finish(&self) {
        self.total.finish();
    }
}

/// Plain lines on stderr: each phase, a progress line at most every ten
/// seconds per image, retries and the result.
#[derive(Default)]
struct Lines {
    state: Mutex<HashMap<String, LineState>>,
}

struct LineState {
    done: u64,
    total: Option<u64>,
    last: Instant,
}

impl Lines {
    fn say(&self, image: &str, text: &str) {
        eprintln!("{image}: {text}");
    }
}

impl Reporter for Lines {
    fn on_phase(&self, image: &str, phase: Phase) {
        self.say(image, phase.label());
    }
    fn on_transfer(&self, image: &str, url: &str, done: u64, total: Option<u64>) {
        let size = total
            .map(|t| format!(" ({})", bytes(t)))
            .unwrap_or_default();
        let resumed = if done > 0 {
            format!(", resuming at {}", bytes(done))
        } else {
            String::new()
        };
        self.say(image, &format!("{url}{size}{resumed}"));
        self.state.lock().unwrap_or_else(|e| e.into_inner()).insert(
            image.to_string(),
            LineState {
                done,
                total,
                last: Instant::now(),
            },
        );
    }
    fn on_progress(&self, image: &str, n: u64) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let Some(s) = state.get_mut(image) else {
            return;
        };
        s.done += n;
        if s.last.elapsed() >= Duration::from_secs(10) {
            s.last = Instant::now();
            let of = match s.total {
                Some(t) if t > 0 => format!(" of {} ({}%)", bytes(t), s.done * 100 / t),
                _ => String::new(),
            };
            eprintln!("{image}: {}{of}", bytes(s.done));
        }
    }
    fn on_retry(&self, image: &str, attempt: u32, delay: Duration, error: &str) {
        self.say(
            image,
            &format!("attempt {attempt} failed ({error}); retrying in {delay:.0?}"),
        );
    }
    fn on_done(&self, image: &str, ok: bool, summary: &str) {
        let mark = if ok { "ok" } else { "FAILED" };
        self.say(image, &format!("{mark}: {summary}"));
    }
}

impl FinishingReporter for Lines {}
