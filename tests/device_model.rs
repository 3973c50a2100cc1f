//! The definition lvlab defines for each machine shape of
//! examples/full/Lvlab.yml reads back from libvirt (test driver) with every
//! disk, NIC (with its MAC), shared directory, device and the metadata.

use std::path::Path;

use lvlab::desired::{Attachment, MachineSpec};
use lvlab::domain::{render_definition, spec_digest, DefinitionInput, OwnershipMark, SpecFields};
use lvlab::libvirt::Connection;

/// The mark lvlab would put on `machine`, with stand-in digests.
fn mark_for(machine: &MachineSpec, manifest: &Path) -> OwnershipMark {
    let fields = SpecFields::of(machine, "qemu", "sha256:seed");
    OwnershipMark {
        environment: machine.environment.clone(),
        vm_name: machine.vm_name.clone(),
        manifest: manifest.display().to_string(),
        vm_dir: machine.vm_dir.display().to_string(),
        lab_id: None,
        one_off: false,
        image_key: machine.os.clone(),
        image_digest: "sha256:image".into(),
        seed_digest: "sha256:seed".into(),
        renderer: lvlab::cloudinit::RENDERER_VERSION,
        spec_digest: spec_digest(&fields),
        spec: fields,
        provisioned: None,
    }
}

#[test]
fn every_device_of_every_example_machine_reads_back_from_libvirt() {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/full/Lvlab.yml");
    let desired = lvlab::manifest::load(&manifest, &lvlab::manifest::HostSettings::none()).unwrap();
    let conn = Connection::open("test:///default").unwrap();
    let virtiofsd = Path::new("/usr/libexec/virtiofsd");
    for machine in desired.environments.iter().flat_map(|e| &e.machines) {
        let mark = mark_for(machine, &manifest);
        let xml = render_definition(&DefinitionInput {
            machine,
            domain_type: "qemu",
            arch: "x86_64",
            mark: &mark,
            auto_ssh_ports: &[2222],
            virtiofsd: Some(virtiofsd),
            os_id: Some("http://debian.org/debian/11"),
        })
        .unwrap();
        conn.raw()
            .define_domain_xml(&xml)
            .unwrap_or_else(|e| panic!("{}: {e}\n{xml}", machine.vm_name));
        let domain = conn
            .raw()
            .lookup_domain_by_name(&machine.domain_name)
            .unwrap();
        let back = domain.xml_desc(virt::sys::VIR_DOMAIN_XML_INACTIVE).unwrap();
        let doc = roxmltree::Document::parse(&back).unwrap();

        let disks: Vec<&str> = doc
            .descendants()
            .filter(|n| n.has_tag_name("disk"))
            .filter_map(|d| {
                d.children()
                    .find(|c| c.has_tag_name("source"))?
                    .attribute("file")
            })
            .collect();
        let mut expected: Vec<String> = machine
            .disks
            .iter()
            .map(|d| d.path.display().to_string())
            .collect();
        expected.push(machine.vm_dir.join("cidata.iso").display().to_string());
        assert_eq!(
            disks, expected,
            "{}: every disk, then the seed",
            machine.vm_name
        );

        let macs: Vec<&str> = doc
            .descendants()
            .filter(|n| n.has_tag_name("interface"))
            .filter_map(|i| {
                i.children()
                    .find(|c| c.has_tag_name("mac"))?
                    .attribute("address")
            })
            .collect();
        let expected: Vec<String> = machine
            .interfaces
            .iter()
            .map(|i| i.mac.to_string())
            .collect();
        assert_eq!(
            macs, expected,
            "{}: every NIC with its MAC, in order",
            machine.vm_name
        );
        for (nic, node) in machine
            .interfaces
            .iter()
            .zip(doc.descendants().filter(|n| n.has_tag_name("interface")))
        {
            let kind = node.attribute("type").unwrap();
            match &nic.attachment {
                Attachment::Network { network } => {
                    assert_eq!(kind, "network");
                    let source = node.children().find(|c| c.has_tag_name("source")).unwrap();
                    assert_eq!(source.attribute("network"), Some(network.as_str()));
                }
                Attachment::User => assert_eq!(kind, "user"),
                Attachment::Passt { .. } => {
                    assert_eq!(kind, "user");
                    assert!(
                        node.children()
                            .any(|c| c.has_tag_name("backend")
                                && c.attribute("type") == Some("passt"))
                    );
                }
            }
        }

        let tags: Vec<&str> = doc
            .descendants()
            .filter(|n| n.has_tag_name("filesystem"))
            .filter_map(|f| {
                f.children()
                    .find(|c| c.has_tag_name("target"))?
                    .attribute("dir")
            })
            .collect();
        let expected: Vec<&str> = machine
            .shared_directories
            .iter()
            .map(|d| d.mount_tag.as_str())
            .collect();
        assert_eq!(
            tags, expected,
            "{}: every shared directory",
            machine.vm_name
        );
        if !expected.is_empty() {
            assert!(
                back.contains("<access mode='shared'/>"),
                "virtiofs needs shared memory"
            );
        }

        for device in [
            "org.qemu.guest_agent.0",
            "<rng model='virtio'>",
            "<serial type='pty'>",
            "<acpi/>",
        ] {
            assert!(back.contains(device), "{}: {device}", machine.vm_name);
        }
        let read = OwnershipMark::from_domain_xml(&back).expect("the mark survives libvirt");
        assert_eq!(read, mark, "{}", machine.vm_name);
        assert!(
            back.contains("http://debian.org/debian/11"),
            "the libosinfo id"
        );
    }
}

#[test]
fn graphics_listen_on_loopback_only_when_asked() {
    let yaml = "environment:
  - name: lab
    config_defaults: {os: img, cloud_init: {pubkey: ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE/x+ylvlabTestKeyOnlyNotARealOneAAAAAAAAAAA x}, interfaces: {network_type: user}}
    machines:
      - {vm_name: plain}
      - {vm_name: vnc, graphics: vnc}
      - {vm_name: spice, graphics: spice}
images:
  img: {image_url: /srv/img.qcow2}
";
    let desired = lvlab::manifest::load_str(yaml, Path::new("/srv/Lvlab.yml")).unwrap();
    for machine in &desired.environments[0].machines {
        let mark = mark_for(machine, Path::new("/srv/Lvlab.yml"));
        let xml = render_definition(&DefinitionInput {
            machine,
            domain_type: "qemu",
            arch: "x86_64",
            mark: &mark,
            auto_ssh_ports: &[],
            virtiofsd: None,
            os_id: None,
        })
        .unwrap();
        match machine.vm_name.as_str() {
            "plain" => assert!(!xml.contains("<graphics") && xml.contains("<model type='none'/>")),
            kind => {
                assert!(
                    xml.contains(&format!(
                        "<graphics type='{kind}' autoport='yes' listen='127.0.0.1'>"
                    )),
                    "{xml}"
                );
                assert!(!xml.contains("0.0.0.0"));
            }
        }
    }
}

#[test]
fn kvm_passes_the_host_cpu_through_and_tcg_emulates_every_feature() {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/full/Lvlab.yml");
    let desired = lvlab::manifest::load(&manifest, &lvlab::manifest::HostSettings::none()).unwrap();
    let machine = desired
        .environments
        .iter()
        .flat_map(|e| &e.machines)
        .find(|m| m.shared_directories.is_empty())
        .unwrap();
    let mark = mark_for(machine, &manifest);
    for (domain_type, cpu) in [("kvm", "host-passthrough"), ("qemu", "maximum")] {
        let xml = render_definition(&DefinitionInput {
            machine,
            domain_type,
            arch: "x86_64",
            mark: &mark,
            auto_ssh_ports: &[2222],
            virtiofsd: None,
            os_id: None,
        })
        .unwrap();
        let doc = roxmltree::Document::parse(&xml).unwrap();
        assert_eq!(doc.root_element().attribute("type"), Some(domain_type));
        let modes: Vec<&str> = doc
            .descendants()
            .filter(|n| n.has_tag_name("cpu"))
            .filter_map(|n| n.attribute("mode"))
            .collect();
        assert_eq!(modes, [cpu], "{domain_type}: {xml}");
    }
}

#[test]
fn without_a_virtiofsd_path_the_hosts_libvirt_finds_its_own() {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/full/Lvlab.yml");
    let desired = lvlab::manifest::load(&manifest, &lvlab::manifest::HostSettings::none()).unwrap();
    let machine = desired
        .environments
        .iter()
        .flat_map(|e| &e.machines)
        .find(|m| !m.shared_directories.is_empty())
        .unwrap();
    let mark = mark_for(machine, &manifest);
    let render = |virtiofsd| {
        render_definition(&DefinitionInput {
            machine,
            domain_type: "qemu",
            arch: "x86_64",
            mark: &mark,
            auto_ssh_ports: &[2222],
            virtiofsd,
            os_id: None,
        })
        .unwrap()
    };
    let binaries = |xml: &str| -> Vec<String> {
        let doc = roxmltree::Document::parse(xml).unwrap();
        let filesystems = doc.descendants().filter(|n| n.has_tag_name("filesystem"));
        filesystems
            .map(|fs| {
                let binary = fs.children().find(|c| c.has_tag_name("binary"));
                binary
                    .and_then(|b| b.attribute("path"))
                    .unwrap_or("")
                    .to_string()
            })
            .collect()
    };
    let local = binaries(&render(Some(Path::new("/usr/libexec/virtiofsd"))));
    assert!(!local.is_empty());
    assert!(
        local.iter().all(|path| path == "/usr/libexec/virtiofsd"),
        "{local:?}"
    );
    let remote = binaries(&render(None));
    assert_eq!(remote.len(), local.len());
    assert!(remote.iter().all(String::is_empty), "{remote:?}");
}
