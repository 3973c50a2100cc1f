//! Diffs the desired state against the observed one into a dependency graph
//! of actions, each with its reasons. Pure: never touches libvirt or the disk.
//! Arrives with the reconciler issue.
