//! `lvlab cloudinit VM`: render one machine's NoCloud seed into its
//! directory (the three documents and `cidata.iso`), or print the documents.

use std::process::ExitCode;

use clap::Args;

use super::passwords::{ConsolePasswords, ShowPasswordsArg};
use super::{CliError, GlobalArgs, Printer};
use crate::cloudinit;
use crate::desired::MachineSpec;
use crate::host::LocalFiles;
use crate::manifest;

#[derive(Debug, Args)]
pub struct CloudinitArgs {
    /// The machine's vm_name
    #[arg(value_name = "VM")]
    pub vm: String,

    /// The machine's environment (needed when several use the name)
    #[arg(long, value_name = "NAME")]
    pub env: Option<String>,

    /// Print the documents as `--- meta-data ---` sections instead of
    /// writing them
    #[arg(long)]
    pub stdout: bool,

    #[command(flatten)]
    pub passwords: ShowPasswordsArg,
}

pub fn run(
    global: &GlobalArgs,
    args: &CloudinitArgs,
    printer: &Printer,
) -> Result<ExitCode, CliError> {
    let path = manifest::manifest_path(global.file.as_deref());
    let desired = super::load_manifest(&path, global.config.as_deref(), global.connect.as_deref())?;
    let machine = desired
        .machine(&args.vm, args.env.as_deref())
        .map_err(CliError::Other)?;
    let (seed, generated) = crate::rendering::local_seed(&desired, machine)?;
    if args.stdout {
        for (name, text) in seed.documents() {
            printer.out(&format!("--- {name} ---"));
            printer.out(text.trim_end_matches('\n'));
        }
        // stdout holds the documents; the password never goes there.
        show(args, false, machine, generated.as_ref());
        return Ok(ExitCode::SUCCESS);
    }
    // `cloudinit` opens no libvirt host: the seed goes where lvlab runs.
    let written = cloudinit::write_seed(&LocalFiles, &machine.vm_dir, &seed)?;
    printer.out(&format!(
        "{} ({}): seed written to {}",
        machine.vm_name,
        machine.environment,
        machine.vm_dir.display()
    ));
    for file in &written {
        printer.out(&format!("  {}", file.display()));
    }
    printer.out(&format!("  digest {}", seed.digest()));
    show(args, true, machine, generated.as_ref());
    Ok(ExitCode::SUCCESS)
}

fn show(
    args: &CloudinitArgs,
    stdout_free: bool,
    machine: &MachineSpec,
    generated: Option<&cloudinit::password::OneTimePassword>,
) {
    if let Some(password) = generated {
        let passwords = ConsolePasswords::new(&args.passwords, stdout_free);
        passwords.show(&machine.vm_name, &machine.cloud_init.user, password);
        passwords.report_withheld();
    }
}
