//! Walks a dependency graph of jobs with at most `parallelism` running at
//! once, each after everything it depends on. A failure stops only what
//! depends on it; an interrupt stops new starts and lets running jobs
//! finish. The walker knows nothing of what it runs: it sees [`Job`]s and
//! tells an [`ExecutionObserver`].

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::Direction;

use super::ActionError;

/// One unit of work.
pub trait Job: Sync {
    /// Carries the job out.
    fn run(&self) -> Result<(), ActionError>;
    /// What the job is about: its address and action.
    fn info(&self) -> JobInfo;
}

/// Which step a job is: the address it acts on and what it does there,
/// e.g. `lab.web01` and `define domain`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct JobInfo {
    pub address: String,
    pub action: String,
}

impl JobInfo {
    /// `address: action`, as progress lines and the debug log say it.
    pub fn describe(&self) -> String {
        format!("{}: {}", self.address, self.action)
    }
}

/// Hears about each job as it runs. Called from the walker's thread.
pub trait ExecutionObserver {
    fn started(&self, _job: &JobInfo) {}
    fn finished(&self, _job: &JobInfo, _elapsed: Duration, _result: &Result<(), ActionError>) {}
    /// Called about every `TICK` while jobs run, with each running job and
    /// how long it has run.
    fn still_running(&self, _running: &[(JobInfo, Duration)]) {}
}

/// Hears nothing: for callers with no one to tell (tests, benches, `init`,
/// whose image reporter says enough).
pub struct NoObserver;

impl ExecutionObserver for NoObserver {}

const TICK: Duration = Duration::from_secs(1);

/// What became of each job.
#[derive(Debug, Default)]
pub struct Outcome {
    pub completed: Vec<NodeIndex>,
    pub failed: Vec<(NodeIndex, ActionError)>,
    /// Not started: something they depend on failed, or an interrupt came.
    pub not_run: Vec<NodeIndex>,
    pub interrupted: bool,
}

impl Outcome {
    pub fn succeeded(&self) -> bool {
        self.failed.is_empty() && self.not_run.is_empty()
    }
}

pub fn execute<J: Job>(
    graph: &DiGraph<J, ()>,
    parallelism: usize,
    observer: &dyn ExecutionObserver,
    interrupt: &AtomicBool,
) -> Outcome {
    let parallelism = parallelism.max(1);
    let mut waiting_on: Vec<usize> = graph
        .node_indices()
        .map(|n| graph.neighbors_directed(n, Direction::Incoming).count())
        .collect();
    let mut ready: VecDeque<NodeIndex> = graph
        .node_indices()
        .filter(|n| waiting_on[n.index()] == 0)
        .collect();
    let mut outcome = Outcome::default();
    let mut done = vec![false; graph.node_count()];
    std::thread::scope(|scope| {
        let (sender, receiver) = mpsc::channel();
        let mut running: Vec<(NodeIndex, JobInfo, Instant)> = Vec::new();
        loop {
            while running.len() < parallelism && !interrupt.load(Ordering::SeqCst) {
                let Some(node) = ready.pop_front() else { break };
                let job = &graph[node];
                let info = job.info();
                // Step boundaries for `LVLAB_LOG=lvlab::apply::executor=debug`
                // (the fault-injection tier kills lvlab on them).
                tracing::debug!("step started: {}", info.describe());
                observer.started(&info);
                running.push((node, info, Instant::now()));
                let sender = sender.clone();
                scope.spawn(move || {
                    let result = job.run();
                    // The receiver outlives every worker inside the scope.
                    let _ = sender.send((node, result));
                });
            }
            if running.is_empty() {
                break;
            }
            let (node, result) = match receiver.recv_timeout(TICK) {
                Ok(message) => message,
                Err(_) => {
                    let now = Instant::now();
                    let report: Vec<(JobInfo, Duration)> = running
                        .iter()
                        .map(|(_, info, start)| (info.clone(), now - *start))
                        .collect();
                    observer.still_running(&report);
                    continue;
                }
            };
            let position = running
                .iter()
                .position(|(n, ..)| *n == node)
                .expect("a running job");
            let (_, info, start) = running.swap_remove(position);
            observer.finished(&info, start.elapsed(), &result);
            tracing::debug!("step finished: {}", info.describe());
            done[node.index()] = true;
            match result {
                Ok(()) => {
                    outcome.completed.push(node);
                    for next in graph.neighbors_directed(node, Direction::Outgoing) {
                        waiting_on[next.index()] -= 1;
                        if waiting_on[next.index()] == 0 {
                            ready.push_back(next);
                        }
                    }
                }
                Err(error) => outcome.failed.push((node, error)),
            }
        }
    });
    outcome.interrupted = interrupt.load(Ordering::SeqCst);
    outcome.not_run = graph.node_indices().filter(|n| !done[n.index()]).collect();
    outcome
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;
    use std::sync::Mutex;

    use super::*;

    struct Sleep {
        name: &'static str,
        millis: u64,
        fail: bool,
        active: &'static AtomicUsize,
        peak: &'static AtomicUsize,
        log: &'static Mutex<Vec<&'static str>>,
    }

    impl Job for Sleep {
        fn run(&self) -> Result<(), ActionError> {
            let now = self.active.fetch_add(1, Ordering::SeqCst) + 1;
            self.peak.fetch_max(now, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(self.millis));
            self.active.fetch_sub(1, Ordering::SeqCst);
            self.log.lock().unwrap().push(self.name);
            if self.fail {
                Err(ActionError::Precondition {
                    address: self.name.to_string(),
                    message: format!("{} failed", self.name),
                })
            } else {
                Ok(())
            }
        }
        fn info(&self) -> JobInfo {
            JobInfo {
                address: self.name.to_string(),
                action: "sleep".to_string(),
            }
        }
    }

    fn leak<T>(value: T) -> &'static T {
        Box::leak(Box::new(value))
    }

    fn job(
        name: &'static str,
        fail: bool,
        shared: &(
            &'static AtomicUsize,
            &'static AtomicUsize,
            &'static Mutex<Vec<&'static str>>,
        ),
    ) -> Sleep {
        Sleep {
            name,
            millis: 30,
            fail,
            active: shared.0,
            peak: shared.1,
            log: shared.2,
        }
    }

    #[test]
    fn runs_in_dependency_order_within_the_parallelism_bound() {
        let shared = (
            leak(AtomicUsize::new(0)),
            leak(AtomicUsize::new(0)),
            leak(Mutex::new(Vec::new())),
        );
        let mut graph = DiGraph::new();
        let roots: Vec<_> = ["a", "b", "c", "d"]
            .iter()
            .map(|n| graph.add_node(job(n, false, &shared)))
            .collect();
        let last = graph.add_node(job("last", false, &shared));
        for root in &roots {
            graph.add_edge(*root, last, ());
        }
        let outcome = execute(&graph, 2, &NoObserver, &AtomicBool::new(false));
        assert!(outcome.succeeded());
        assert_eq!(
            shared.1.load(Ordering::SeqCst),
            2,
            "never more than 2 at once, and 2 were used"
        );
        assert_eq!(
            shared.2.lock().unwrap().last(),
            Some(&"last"),
            "after all it depends on"
        );
    }

    #[test]
    fn a_failure_stops_only_what_depends_on_it() {
        let shared = (
            leak(AtomicUsize::new(0)),
            leak(AtomicUsize::new(0)),
            leak(Mutex::new(Vec::new())),
        );
        let mut graph = DiGraph::new();
        let bad = graph.add_node(job("bad", true, &shared));
        let after_bad = graph.add_node(job("after-bad", false, &shared));
        let good = graph.add_node(job("good", false, &shared));
        let after_good = graph.add_node(job("after-good", false, &shared));
        graph.add_edge(bad, after_bad, ());
        graph.add_edge(good, after_good, ());
        let outcome = execute(&graph, 4, &NoObserver, &AtomicBool::new(false));
        let failed: Vec<_> = outcome
            .failed
            .iter()
            .map(|(node, error)| (*node, error.to_string()))
            .collect();
        assert_eq!(failed, vec![(bad, "bad failed".to_string())]);
        assert_eq!(outcome.not_run, vec![after_bad]);
        assert!(outcome.completed.contains(&after_good));
    }

    #[test]
    fn an_interrupt_starts_nothing_new() {
        let shared = (
            leak(AtomicUsize::new(0)),
            leak(AtomicUsize::new(0)),
            leak(Mutex::new(Vec::new())),
        );
        let mut graph = DiGraph::new();
        graph.add_node(job("a", false, &shared));
        graph.add_node(job("b", false, &shared));
        let outcome = execute(&graph, 4, &NoObserver, &AtomicBool::new(true));
        assert!(outcome.interrupted);
        assert_eq!(outcome.not_run.len(), 2);
        assert!(shared.2.lock().unwrap().is_empty());
    }
}
