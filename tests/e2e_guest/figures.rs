//! Figures of a run, printed for the reader (nothing is decided on them):
//! how long each stage took under TCG, and what else loaded the host.

use crate::boot::{Readiness, Up};
use crate::lab::GUESTS;

/// The figures taken apart from `up`'s own.
pub struct Figures {
    /// Seconds `lvlab init` took (download, verify).
    pub init: f64,
    /// Seconds the ACPI `down` of both guests took.
    pub down: f64,
    /// [`passt_cpu`] when `up` returned.
    pub passt_cpu: String,
    /// [`load_average`] before the lab was made.
    pub load_before: String,
}

impl Figures {
    pub fn print(&self, up: &Up, readiness: &[Readiness]) {
        let (init_secs, down_secs) = (self.init, self.down);
        let (passt_cpu, load_before) = (&self.passt_cpu, &self.load_before);
        eprintln!("\nfigures (TCG, seconds from the start of `lvlab up --all --wait`):");
        eprintln!("  init (download, verify)   {init_secs:6.1}");
        eprintln!(
            "  domains running           {:>6}",
            up.running.map_or("-".into(), |s| format!("{s:.1}"))
        );
        eprintln!("  up --all --wait returned  {:6.1}", up.exited);
        for ready in readiness {
            let show = |r: Result<f64, &String>| r.map_or("-".to_string(), |s| format!("{s:.1}"));
            eprintln!(
                "  {:<6} SSH ready {:>6}   login {:>6}   cloud-init done {:>6}",
                ready.vm,
                show(ready.ssh_ready.as_ref().copied()),
                show(ready.login.as_ref().copied()),
                show(ready.cloud_init.as_ref().map(|(s, _)| *s)),
            );
        }
        let sshd: Vec<String> = up
            .sshd_started
            .iter()
            .map(|(vm, at)| {
                format!(
                    "{vm} {}",
                    at.get().map_or("-".into(), |s| format!("{s:.1}"))
                )
            })
            .collect();
        eprintln!("  console shows sshd started: {}", sshd.join(", "));
        eprintln!("  down (ACPI, both guests)  {down_secs:6.1}");
        eprintln!("  passt CPU seconds when up returned: {passt_cpu}");
        eprintln!(
            "  host load average before / after: {load_before} / {}",
            load_average()
        );
    }
}

/// CPU seconds each guest's passt has used so far, the guest known by the
/// SSH port `lvlab status` (`status`) shows for it.
pub fn passt_cpu(status: &[serde_json::Value]) -> String {
    let ports: Vec<(&str, u16)> = GUESTS
        .iter()
        .filter_map(|g| {
            let row = status.iter().find(|r| r["machine"] == g.vm)?;
            let port = row["ssh"]
                .as_str()?
                .strip_prefix("127.0.0.1:")?
                .parse()
                .ok()?;
            Some((g.vm, port))
        })
        .collect();
    passt_cpu_seconds(&ports)
}

/// The host's 1, 5 and 15 minute load averages (other work on the host
/// slows TCG guests: read the figures with them).
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

/// CPU seconds each guest's passt process has used so far, found by the
/// guest's forwarded SSH port in its command line.
fn passt_cpu_seconds(ports: &[(&str, u16)]) -> String {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let dir = entry.path();
        let Ok(stat) = std::fs::read_to_string(dir.join("stat")) else {
            continue;
        };
        let Some((head, rest)) = stat.rsplit_once(") ") else {
            continue;
        };
        if !head
            .split_once(" (")
            .is_some_and(|(_, comm)| comm.starts_with("passt"))
        {
            continue;
        }
        let cmdline = std::fs::read(dir.join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        let Some((vm, _)) = ports
            .iter()
            .find(|(_, port)| cmdline.contains(&format!("{port}:22")))
        else {
            continue;
        };
        // After the command name: state is field 3; utime, stime 14 and 15.
        let fields: Vec<u64> = rest
            .split_whitespace()
            .map(|f| f.parse().unwrap_or(0))
            .collect();
        let ticks = fields.get(11).unwrap_or(&0) + fields.get(12).unwrap_or(&0);
        found.push(format!("{vm} {:.1}", ticks as f64 / 100.0));
    }
    if found.is_empty() {
        "(no passt process found)".into()
    } else {
        found.sort();
        found.join(", ")
    }
}
