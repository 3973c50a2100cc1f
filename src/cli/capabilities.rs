//! `lvlab capabilities`: which libvirt URIs to ask, and how their answers
//! look as aligned text or JSON. The asking (and the KVM probe) is
//! [`crate::kvm_probe::report`]'s.

use std::process::ExitCode;

use clap::Args;

use super::{CliError, GlobalArgs, Printer};
use crate::kvm_probe::{self, report::HostReport};
use crate::observe::capabilities::HostCapabilities;

/// Asked when nothing else names a URI: it needs no daemon running as root.
const DEFAULT_URI: &str = "qemu:///session";

/// Wide enough for the longest label, "acceleration".
const LABEL_WIDTH: usize = 12;

#[derive(Debug, Args)]
pub struct CapabilitiesArgs {
    /// Only this environment's libvirt_uri (the global `--connect URI` asks
    /// URI instead)
    #[arg(long, value_name = "NAME", conflicts_with = "connect")]
    pub env: Option<String>,

    /// Print JSON instead of text
    #[arg(long)]
    pub json: bool,

    /// Start a throwaway diskless KVM guest for a moment to see whether KVM
    /// really runs guests; the answer is kept for this host's kernel and
    /// QEMU, and `domain_type: auto` uses TCG where KVM failed
    #[arg(long)]
    pub probe: bool,
}

pub fn run(
    global: &GlobalArgs,
    args: &CapabilitiesArgs,
    printer: &Printer,
) -> Result<ExitCode, CliError> {
    let uris = match &global.connect {
        Some(uri) => vec![uri.clone()],
        None => manifest_uris(global, args.env.as_deref())?,
    };
    // Ask every URI before printing, so that the JSON is one array; a host
    // that does not answer fails only its own report (each said after the
    // others', and the exit is non-zero).
    let (hosts, mut failed): (Vec<_>, Vec<_>) = uris
        .iter()
        .map(|uri| kvm_probe::report::report(uri, args.probe))
        .partition(Result::is_ok);
    let hosts: Vec<HostReport> = hosts.into_iter().filter_map(Result::ok).collect();
    if args.json {
        if !hosts.is_empty() || failed.is_empty() {
            let json = serde_json::to_string_pretty(&hosts)
                .map_err(|err| CliError::Other(format!("cannot write JSON: {err}")))?;
            printer.out(&json);
        }
    } else {
        for (index, host) in hosts.iter().enumerate() {
            if index > 0 {
                printer.out("");
            }
            for line in render_text(&host.caps) {
                printer.out(&line);
            }
            if let Some(line) = probe_line(host) {
                printer.out(&format!("{:<LABEL_WIDTH$} {line}", "kvm probe"));
            }
        }
    }
    if let Some(Err(last)) = failed.pop() {
        for err in failed.into_iter().filter_map(Result::err) {
            printer.error(&format!("error: {err}"));
        }
        return Err(last.into());
    }
    Ok(ExitCode::SUCCESS)
}

/// The selected environments' URIs, each once, in manifest order. Without a
/// manifest (none named and no Lvlab.yml here): [`DEFAULT_URI`].
fn manifest_uris(global: &GlobalArgs, env: Option<&str>) -> Result<Vec<String>, CliError> {
    let Some(path) = super::manifest_here(global) else {
        return Ok(vec![DEFAULT_URI.to_string()]);
    };
    let desired = super::load_manifest(&path, global.config.as_deref(), global.connect.as_deref())?;
    let environments = desired.environments(env).map_err(CliError::Other)?;
    Ok(crate::desired::libvirt_uris(environments))
}

/// The `kvm probe` row: the answer, why there is none, or (where KVM is
/// offered and nothing was probed) how to get one.
fn probe_line(host: &HostReport) -> Option<String> {
    match (&host.kvm_probe, &host.kvm_probe_skipped) {
        (Some(record), _) => Some(record.summary()),
        (None, Some(skipped)) => Some(skipped.clone()),
        (None, None) if host.caps.kvm => Some(
            "not probed for this kernel and QEMU (`lvlab capabilities --probe` checks that \
             KVM really runs guests)"
                .to_string(),
        ),
        (None, None) => None,
    }
}

/// One aligned block of `label value` lines for one URI.
fn render_text(host: &HostCapabilities) -> Vec<String> {
    [
        ("libvirt", libvirt_line(host)),
        ("host", host_line(host)),
        ("domain types", domain_types_line(host)),
        ("acceleration", acceleration_line(host)),
        ("max vCPUs", or_unknown(host.max_vcpus)),
        ("machine", machine_line(host)),
        ("osinfo", osinfo_line(host)),
    ]
    .into_iter()
    .map(|(label, value)| format!("{label:<LABEL_WIDTH$} {value}"))
    .collect()
}

fn libvirt_line(host: &HostCapabilities) -> String {
    let hypervisor = host
        .hypervisor_version
        .as_deref()
        .unwrap_or("version unknown");
    format!(
        "{} ({} {hypervisor}, libvirt {})",
        host.uri, host.driver, host.libvirt_version
    )
}

fn host_line(host: &HostCapabilities) -> String {
    let cpu = [host.cpu_vendor.as_deref(), host.cpu_model.as_deref()]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
    let parts: Vec<String> = [
        host.arch.clone(),
        Some(cpu).filter(|cpu| !cpu.is_empty()),
        host.cpus.map(|n| format!("{n} CPUs")),
        host.memory_kib.map(|kib| format!("{} memory", gib(kib))),
    ]
    .into_iter()
    .flatten()
    .collect();
    if parts.is_empty() {
        "unknown".to_string()
    } else {
        parts.join(", ")
    }
}

fn gib(kib: u64) -> String {
    format!("{:.1} GiB", kib as f64 / (1024.0 * 1024.0))
}

fn domain_types_line(host: &HostCapabilities) -> String {
    match host.domain_types.as_deref() {
        None => "unknown".to_string(),
        Some([]) => "none".to_string(),
        Some(types) => types.join(", "),
    }
}

fn acceleration_line(host: &HostCapabilities) -> String {
    let offers_tcg = host
        .domain_types
        .as_deref()
        .is_some_and(|types| types.iter().any(|t| t == "qemu"));
    if host.kvm {
        "KVM available".to_string()
    } else if offers_tcg {
        "TCG only (no KVM): guests run under software emulation".to_string()
    } else {
        format!("no KVM, no TCG ({} driver)", host.driver)
    }
}

fn machine_line(host: &HostCapabilities) -> String {
    let firmware = match (host.firmware.as_deref(), host.uefi) {
        (Some(list), _) if !list.is_empty() => Some(format!("firmware: {}", list.join(", "))),
        (_, Some(true)) => Some("UEFI available".to_string()),
        (_, Some(false)) => Some("no UEFI firmware installed".to_string()),
        (_, None) => None,
    };
    match (host.machine.as_deref(), firmware) {
        (Some(machine), Some(firmware)) => format!("{machine} ({firmware})"),
        (Some(machine), None) => machine.to_string(),
        (None, Some(firmware)) => format!("unknown ({firmware})"),
        (None, None) => "unknown".to_string(),
    }
}

fn osinfo_line(host: &HostCapabilities) -> String {
    match &host.osinfo {
        None => "not found (Debian: apt-get install osinfo-db)".to_string(),
        Some(db) => match &db.version {
            Some(version) => format!("{} (osinfo-db {version})", db.path.display()),
            None => format!("{} (version unknown)", db.path.display()),
        },
    }
}

fn or_unknown<T: ToString>(value: Option<T>) -> String {
    value.map_or_else(|| "unknown".to_string(), |v| v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::osinfo::OsinfoDb;

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    /// What this module's author saw from qemu:///session as root.
    fn qemu_with_kvm() -> HostCapabilities {
        HostCapabilities {
            uri: "qemu:///session".into(),
            driver: "QEMU".into(),
            hypervisor_version: Some("10.0.2".into()),
            libvirt_version: "11.3.0".into(),
            arch: Some("x86_64".into()),
            cpu_model: Some("kvm64-v1".into()),
            cpu_vendor: Some("AMD".into()),
            cpus: Some(2),
            memory_kib: Some(4_810_964),
            domain_types: Some(strings(&["kvm", "qemu"])),
            kvm: true,
            domain_type: Some("kvm".into()),
            max_vcpus: Some(255),
            machine: Some("pc-i440fx-10.0".into()),
            firmware: Some(vec![]),
            uefi: Some(false),
            osinfo: Some(OsinfoDb {
                path: "/usr/share/osinfo".into(),
                version: Some("20221203".into()),
            }),
        }
    }

    /// What test:///default reports: no CPU model, no machine, no firmware.
    fn test_default() -> HostCapabilities {
        HostCapabilities {
            uri: "test:///default".into(),
            driver: "TEST".into(),
            hypervisor_version: Some("0.0.2".into()),
            arch: Some("i686".into()),
            cpu_model: None,
            cpu_vendor: None,
            cpus: Some(16),
            memory_kib: Some(3_145_728),
            domain_types: Some(strings(&["test"])),
            kvm: false,
            domain_type: Some("test".into()),
            max_vcpus: Some(32),
            machine: None,
            firmware: None,
            uefi: None,
            osinfo: None,
            ..qemu_with_kvm()
        }
    }

    #[test]
    fn qemu_host_with_kvm_renders_aligned() {
        assert_eq!(
            render_text(&qemu_with_kvm()),
            [
                "libvirt      qemu:///session (QEMU 10.0.2, libvirt 11.3.0)",
                "host         x86_64, AMD kvm64-v1, 2 CPUs, 4.6 GiB memory",
                "domain types kvm, qemu",
                "acceleration KVM available",
                "max vCPUs    255",
                "machine      pc-i440fx-10.0 (no UEFI firmware installed)",
                "osinfo       /usr/share/osinfo (osinfo-db 20221203)",
            ]
        );
    }

    #[test]
    fn test_driver_renders_unknowns() {
        assert_eq!(
            render_text(&test_default()),
            [
                "libvirt      test:///default (TEST 0.0.2, libvirt 11.3.0)",
                "host         i686, 16 CPUs, 3.0 GiB memory",
                "domain types test",
                "acceleration no KVM, no TCG (TEST driver)",
                "max vCPUs    32",
                "machine      unknown",
                "osinfo       not found (Debian: apt-get install osinfo-db)",
            ]
        );
    }

    #[test]
    fn tcg_only_host() {
        let host = HostCapabilities {
            domain_types: Some(strings(&["qemu"])),
            kvm: false,
            ..qemu_with_kvm()
        };
        assert_eq!(
            acceleration_line(&host),
            "TCG only (no KVM): guests run under software emulation"
        );
    }

    #[test]
    fn firmware_list_when_libvirt_has_descriptors() {
        let host = HostCapabilities {
            machine: Some("pc-q35-10.0".into()),
            firmware: Some(strings(&["efi"])),
            uefi: Some(true),
            ..qemu_with_kvm()
        };
        assert_eq!(machine_line(&host), "pc-q35-10.0 (firmware: efi)");
    }

    #[test]
    fn unknown_versions_and_host() {
        let host = HostCapabilities {
            hypervisor_version: None,
            arch: None,
            cpu_model: None,
            cpu_vendor: None,
            cpus: None,
            memory_kib: None,
            domain_types: None,
            ..test_default()
        };
        assert_eq!(
            libvirt_line(&host),
            "test:///default (TEST version unknown, libvirt 11.3.0)"
        );
        assert_eq!(host_line(&host), "unknown");
        assert_eq!(domain_types_line(&host), "unknown");
    }
}
