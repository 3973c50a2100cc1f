//! Executes a plan's action graph with bounded parallelism and reports
//! progress through an observer. Arrives with the reconciler issue.
