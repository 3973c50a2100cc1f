//! `provision:`: the defaults' entries followed by the machine's (as
//! `cloud_init.runcmd`), each script file read now, so that a plan sees a
//! changed script and a missing one is reported at its line.

use super::{Layered, Resolver};
use crate::desired::ProvisionStep;
use crate::manifest::error::Problem;
use crate::manifest::raw::RawProvisionStep;
use crate::manifest::source::KeyPath;
use crate::manifest::values;

pub(super) fn resolve_provision(r: &mut Resolver, m: &Layered) -> Option<Vec<ProvisionStep>> {
    let lists = [
        (m.defaults.provision.as_deref(), m.defaults_path),
        (m.machine.provision.as_deref(), m.machine_path),
    ];
    let mut steps = Vec::new();
    let mut ok = true;
    for (list, at) in lists {
        let at = at.key("provision");
        for (i, entry) in list.unwrap_or_default().iter().enumerate() {
            match resolve_step(r, entry, &at.index(i)) {
                Some(step) => steps.push(step),
                None => ok = false,
            }
        }
    }
    ok.then_some(steps)
}

fn resolve_step(r: &mut Resolver, entry: &RawProvisionStep, at: &KeyPath) -> Option<ProvisionStep> {
    match entry {
        RawProvisionStep::Command(command) if command.trim().is_empty() => {
            r.report(
                Problem::value(at.clone(), "a `provision` command is empty")
                    .hint("write the command line to run, or remove the entry"),
            );
            None
        }
        RawProvisionStep::Command(command) => Some(ProvisionStep::Command(command.clone())),
        RawProvisionStep::Script(script) => {
            let at = at.key("script");
            let path = r.check(&at, values::expand_path(&script.script, r.base()))?;
            match std::fs::read_to_string(&path) {
                Ok(text) => Some(ProvisionStep::Script { path, text }),
                Err(e) => {
                    r.report(
                        Problem::value(
                            at,
                            format!("cannot read the script {}: {e}", path.display()),
                        )
                        .hint("a relative path is taken from the manifest's directory"),
                    );
                    None
                }
            }
        }
    }
}
