//! The plan as one JSON document for scripts: every action with its address,
//! kind and the indices of the actions it waits for, the blocks with their
//! reasons and the diffs of their changed files (secrets redacted), the
//! machines' snapshots (facts, not changes), and the summary.

use petgraph::Direction;
use serde::Serialize;

use super::{Action, Address, Block, MachineSnapshots, Plan, Summary, Target};

#[derive(Serialize)]
struct PlanDocument<'a> {
    format_version: u32,
    target: Target,
    actions: Vec<ActionDocument<'a>>,
    changes: Vec<ChangeDocument<'a>>,
    notes: &'a [String],
    snapshots: &'a [MachineSnapshots],
    /// Machines not planned because their host could not be opened.
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    unreachable: Vec<UnreachableDocument<'a>>,
    summary: Summary,
}

#[derive(Serialize)]
struct UnreachableDocument<'a> {
    address: String,
    resource: &'a Address,
    message: &'a str,
    diagnostic: String,
}

#[derive(Serialize)]
struct ChangeDocument<'a> {
    #[serde(flatten)]
    block: &'a Block,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    diffs: Vec<DiffDocument<'a>>,
}

/// A changed rendered file: its unified diff, as the text plan shows it.
#[derive(Serialize)]
struct DiffDocument<'a> {
    file: &'a str,
    lines: Vec<String>,
}

#[derive(Serialize)]
struct ActionDocument<'a> {
    id: usize,
    address: String,
    resource: &'a Address,
    #[serde(flatten)]
    action: &'a Action,
    description: String,
    depends_on: Vec<usize>,
}

pub fn to_json(plan: &Plan) -> serde_json::Value {
    let actions = plan
        .steps()
        .map(|(index, step)| {
            let mut depends_on: Vec<usize> = plan
                .graph
                .neighbors_directed(index, Direction::Incoming)
                .map(|n| n.index())
                .collect();
            depends_on.sort_unstable();
            ActionDocument {
                id: index.index(),
                address: step.address.to_string(),
                resource: &step.address,
                action: &step.action,
                description: step.action.describe(),
                depends_on,
            }
        })
        .collect();
    let document = PlanDocument {
        format_version: 1,
        target: plan.target,
        actions,
        changes: plan.blocks.iter().map(change_document).collect(),
        notes: &plan.notes,
        snapshots: &plan.snapshots,
        unreachable: plan
            .unreachable
            .iter()
            .map(|u| UnreachableDocument {
                address: u.address.to_string(),
                resource: &u.address,
                message: &u.message,
                diagnostic: u.reason(),
            })
            .collect(),
        summary: plan.summary,
    };
    serde_json::to_value(document).expect("a plan serializes")
}

fn change_document(block: &Block) -> ChangeDocument<'_> {
    let diffs = block
        .diffs
        .iter()
        .map(|(file, old, new)| DiffDocument {
            file,
            lines: super::diff::unified_lines(file, old, new),
        })
        .collect();
    ChangeDocument { block, diffs }
}
