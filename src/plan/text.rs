//! The plan as a person reads it: one block per machine and image with
//! terraform's symbols, reasons, unified diffs of changed rendered files
//! (secrets redacted), and the summary line.

use super::{Action, Address, Block, Change, MachineSnapshots, Plan, Reason, UnreachableMachine};
use crate::domain::{ChangeKind, FieldChange, SEED_FIELD};

const RESET: &str = "\x1b[0m";

fn color(change: Change) -> &'static str {
    match change {
        Change::Create | Change::Start => "\x1b[32m",
        Change::Update | Change::Stop => "\x1b[33m",
        Change::Destroy | Change::Replace | Change::ReplaceNotRequested => "\x1b[31m",
    }
}

/// The whole plan; `manifest` names the file in the "no changes" line.
/// A plan over several hosts shows the images first, then a heading per
/// host with its machines.
pub fn render_text(plan: &Plan, manifest: &str, colored: bool) -> String {
    let mut out = String::new();
    let hosts = plan.hosts();
    let grouped = hosts.len() > 1;
    for block in plan.blocks.iter().filter(|b| b.address.uri().is_none()) {
        render_block(&mut out, plan, block, colored);
        out.push('\n');
    }
    for uri in hosts {
        if grouped {
            out.push_str(&format!("Host {uri}:\n\n"));
        }
        for block in plan.blocks.iter().filter(|b| b.address.uri() == Some(uri)) {
            render_block(&mut out, plan, block, colored);
            out.push('\n');
        }
        for machine in plan
            .unreachable
            .iter()
            .filter(|u| u.address.uri() == Some(uri))
        {
            render_unreachable(&mut out, machine, colored);
            out.push('\n');
        }
    }
    for note in &plan.notes {
        out.push_str(&format!("Note: {note}\n"));
    }
    for machine in &plan.snapshots {
        out.push_str(&format!("Note: {}\n", snapshots_line(machine)));
    }
    if !plan.notes.is_empty() || !plan.snapshots.is_empty() {
        out.push('\n');
    }
    if !plan.unreachable.is_empty() {
        let count = plan.unreachable.len();
        let noun = if count == 1 { "machine" } else { "machines" };
        out.push_str(&format!(
            "{count} {noun} not planned: their host is unreachable.\n"
        ));
    }
    if plan.blocks.is_empty() && plan.unreachable.is_empty() {
        out.push_str(&format!("No changes. The lab matches {manifest}.\n"));
    } else if plan.blocks.is_empty() {
        out.push_str("No changes on the reachable hosts.\n");
    } else {
        let s = plan.summary;
        out.push_str(&format!(
            "Plan: {} to add, {} to change, {} to destroy.\n",
            s.add, s.change, s.destroy
        ));
    }
    out
}

/// "lab.web has 2 snapshots: base, pre-salt". The names may have been
/// given outside lvlab (`virsh snapshot-create-as`): escaped.
fn snapshots_line(machine: &MachineSnapshots) -> String {
    let count = machine.names.len();
    let noun = if count == 1 { "snapshot" } else { "snapshots" };
    let names = machine.names.join(", ");
    format!(
        "{} has {count} {noun}: {}",
        machine.address,
        crate::escape::escape_controls(&names)
    )
}

fn render_block(out: &mut String, plan: &Plan, block: &Block, colored: bool) {
    out.push_str(&format!("  # {}\n", header(plan, block)));
    let symbol = block.change.symbol();
    let symbol = if colored {
        format!("{}{symbol}{RESET}", color(block.change))
    } else {
        symbol.to_string()
    };
    out.push_str(&format!("{symbol} {}\n", block.address));
    for reason in &block.reasons {
        for line in reason_lines(reason, &block.address) {
            out.push_str(&format!("      # (because {line})\n"));
        }
    }
    for (name, old, new) in &block.diffs {
        render_diff(out, name, old, new, colored);
    }
}

/// A machine whose host could not be opened: nothing planned, and why.
fn render_unreachable(out: &mut String, machine: &UnreachableMachine, colored: bool) {
    let symbol = if colored {
        format!("\x1b[31m!{RESET}")
    } else {
        "!".to_string()
    };
    out.push_str(&format!("  # {} is not planned\n", machine.address));
    out.push_str(&format!("{symbol} {}\n", machine.address));
    out.push_str(&format!("      # (because {})\n", machine.reason()));
}

fn header(plan: &Plan, block: &Block) -> String {
    let what = match &block.address {
        Address::Image { key, .. } => {
            let unverified = plan.steps().any(|(_, step)| {
                step.address == block.address
                    && matches!(
                        step.action,
                        Action::DownloadImage {
                            checksum: false,
                            ..
                        }
                    )
            });
            return if unverified {
                format!("image {key}: download (not verified: no checksum_url)")
            } else {
                format!("image {key} will be downloaded and verified")
            };
        }
        Address::HostImage { key, uri, .. } => {
            return format!("image {key} will be uploaded to {}", super::host_label(uri));
        }
        Address::Machine {
            vm_name, domain, ..
        } => format!("{vm_name} ({domain})"),
    };
    match block.change {
        Change::Create => format!("{what} will be created"),
        Change::Update => format!("{what} will be updated in place"),
        Change::Destroy => format!("{what} will be destroyed"),
        Change::Replace => format!("{what} must be replaced"),
        Change::Start => format!("{what} will be started"),
        Change::Stop => format!("{what} will be stopped"),
        Change::ReplaceNotRequested => {
            format!("{what} must be replaced (not applied without --replace)")
        }
    }
}

fn reason_lines(reason: &Reason, address: &Address) -> Vec<String> {
    let domain = match address {
        Address::Machine { domain, .. } => domain.as_str(),
        Address::Image { key, .. } | Address::HostImage { key, .. } => key.as_str(),
    };
    match reason {
        Reason::NotDeployed => vec![format!("{domain} does not exist")],
        Reason::ImageNotCached { path } => vec![format!("{} is not in the cache", path.display())],
        Reason::ImageRecordStale { path } => vec![format!(
            "{} is not the file its verification record describes",
            path.display()
        )],
        Reason::ImageUnverified { path } => vec![format!(
            "{} was never verified, and a checksum is configured",
            path.display()
        )],
        Reason::ImageRequested { path } => {
            vec![format!("{} is asked for by name", path.display())]
        }
        Reason::ImageNotOnHost { uri } => vec![format!("not on {} yet", super::host_label(uri))],
        Reason::ImageIncompleteOnHost {
            uri,
            size,
            expected,
        } => vec![format!(
            "its copy on {} is incomplete: {size} of {expected} bytes",
            super::host_label(uri)
        )],
        Reason::ImageFetchedAgain { uri } => vec![format!(
            "the image is fetched again: its copy on {} is replaced",
            super::host_label(uri)
        )],
        Reason::DiskMissing { path } => vec![format!("disk {} is missing", path.display())],
        Reason::SeedMissing => vec!["the seed ISO is missing".into()],
        Reason::SpecChanged { changes, running } => changes
            .iter()
            .map(|change| change_line(change, *running))
            .collect(),
        Reason::Drifted { changes, running } => changes
            .iter()
            .map(|change| drift_line(change, *running))
            .collect(),
        Reason::ReplaceRequested => vec!["--replace names it".into()],
        Reason::ReprovisionRequested => vec!["--reprovision names it: provision again".into()],
        Reason::NotRunning { state } => vec![format!("it is {state}")],
        Reason::Paused => vec!["it is paused (suspended outside lvlab)".into()],
        Reason::Running => vec!["it is running".into()],
        Reason::TargetAbsent => vec!["the target is absent".into()],
        Reason::NotInManifest => vec![format!("{domain} is not in the manifest")],
        Reason::PlacedElsewhere { uri } => {
            let vm_name = match address {
                Address::Machine { vm_name, .. } => vm_name.as_str(),
                Address::Image { key, .. } | Address::HostImage { key, .. } => key.as_str(),
            };
            vec![format!("machine {vm_name} is now placed on {uri}")]
        }
        Reason::Adopted { owner } => vec![format!(
            "--adopt takes {domain} over from another lab ({owner}); the define rewrites its mark"
        )],
    }
}

fn change_line(change: &FieldChange, running: bool) -> String {
    if change.field == SEED_FIELD {
        return "cloud-init seed changed; cloud-init only runs on first boot".into();
    }
    let what = match (&change.before, &change.after) {
        (Some(before), Some(after)) => format!("{} changed {before} -> {after}", change.field),
        (None, Some(after)) => format!("{} added: {after}", change.field),
        (Some(before), None) => format!("{} removed (was {before})", change.field),
        (None, None) => change.field.clone(),
    };
    match change.kind {
        ChangeKind::InPlace if running => format!("{what}; takes effect after restart"),
        _ => what,
    }
}

fn render_diff(out: &mut String, name: &str, old: &str, new: &str, colored: bool) {
    for line in super::diff::unified_lines(name, old, new) {
        let painted = match line.chars().next() {
            Some('+') if colored && !line.starts_with("+++") => format!("\x1b[32m{line}{RESET}"),
            Some('-') if colored && !line.starts_with("---") => format!("\x1b[31m{line}{RESET}"),
            _ => line,
        };
        out.push_str(&format!("      {painted}\n"));
    }
}

/// "memory: 1 GiB in the live definition, 2 GiB wanted (changed outside
/// lvlab)".
fn drift_line(change: &FieldChange, running: bool) -> String {
    let live = match &change.before {
        Some(live) => format!("{live} in the live definition"),
        None => "absent from the live definition".into(),
    };
    let wanted = match &change.after {
        Some(wanted) => format!("{wanted} wanted"),
        None => "not wanted".into(),
    };
    let restart = if running {
        "; takes effect after restart"
    } else {
        ""
    };
    format!(
        "{}: {live}, {wanted} (changed outside lvlab){restart}",
        change.field
    )
}
