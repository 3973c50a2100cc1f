//! lvlab's ownership mark: the `<metadata>` element every domain lvlab
//! defines carries. It is lvlab's only state: what owns the domain, which
//! manifest and image made it, and the digest of the spec it was made from.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::spec::SpecFields;

/// The XML namespace of the mark. A domain without it is foreign.
pub const MARK_NAMESPACE: &str = "urn:lvlab:machine:1";

/// The namespace of the provisioning record: an element of its own beside
/// the mark, written after the machine's `provision:` list ran (libvirt
/// replaces one namespace's element without touching the others).
pub const PROVISION_NAMESPACE: &str = "urn:lvlab:provision:1";

/// The provisioning record's element for `digest` (`sha256:<hex>`: nothing
/// to escape), as set on the domain.
pub fn provision_record(digest: &str) -> String {
    format!("<provision digest='{digest}'/>")
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OwnershipMark {
    pub environment: String,
    pub vm_name: String,
    pub manifest: String,
    /// The per-VM directory, so a machine no longer in the manifest can
    /// still be cleaned up completely.
    pub vm_dir: String,
    /// The environment's `lab_id`, when it sets one: then it, not the VM
    /// directory, says which lab the domain belongs to.
    pub lab_id: Option<String>,
    /// Made by `createvm`: a one-off machine, whose domain is named
    /// exactly as the machine and whose lab is its VM directory.
    pub one_off: bool,
    pub image_key: String,
    /// The verified image digest, empty when the image was not verified.
    pub image_digest: String,
    pub seed_digest: String,
    /// The [`crate::cloudinit::RENDERER_VERSION`] that rendered the seed;
    /// [`crate::cloudinit::UNVERSIONED_RENDERER`] for a mark without one.
    pub renderer: u32,
    pub spec_digest: String,
    /// The spec fields, for "what changed" in plans.
    pub spec: SpecFields,
    /// The digest of the `provision:` list that last ran to its end on the
    /// machine ([`crate::provision::digest`]); `None` when none has. Kept
    /// apart from the spec digest: a changed list is no drift.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provisioned: Option<String>,
}

impl OwnershipMark {
    /// Reads the mark from a domain definition; `None` for a foreign domain.
    pub fn from_domain_xml(xml: &str) -> Option<Self> {
        let doc = roxmltree::Document::parse(xml).ok()?;
        let mark = doc.descendants().find(|n| {
            n.tag_name().namespace() == Some(MARK_NAMESPACE) && n.tag_name().name() == "machine"
        })?;
        let child = |name: &str| {
            mark.children().find(|n| {
                n.tag_name().namespace() == Some(MARK_NAMESPACE) && n.tag_name().name() == name
            })
        };
        let text = |name: &str| child(name).and_then(|n| n.text()).unwrap_or("").to_string();
        let attr = |name: &str, attr: &str| {
            child(name)
                .and_then(|n| n.attribute(attr))
                .unwrap_or("")
                .to_string()
        };
        let spec = child("spec")
            .and_then(|n| n.text())
            .and_then(|json| serde_json::from_str(json).ok())
            .unwrap_or_default();
        Some(Self {
            environment: text("environment"),
            vm_name: text("vm-name"),
            manifest: text("manifest"),
            vm_dir: text("vm-dir"),
            lab_id: child("lab-id").and_then(|n| n.text()).map(str::to_string),
            one_off: child("one-off").is_some(),
            image_key: attr("image", "key"),
            image_digest: attr("image", "digest"),
            seed_digest: attr("seed", "digest"),
            renderer: attr("seed", "renderer")
                .parse()
                .unwrap_or(crate::cloudinit::UNVERSIONED_RENDERER),
            spec_digest: attr("spec", "digest"),
            spec,
            provisioned: doc
                .descendants()
                .find(|n| {
                    n.tag_name().namespace() == Some(PROVISION_NAMESPACE)
                        && n.tag_name().name() == "provision"
                })
                .and_then(|n| n.attribute("digest"))
                .map(str::to_string),
        })
    }
}

/// Which lab a domain's mark says it belongs to: the environment's
/// `lab_id` when it sets one, else where the machine's files live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LabIdentity {
    LabId(String),
    /// A VM directory, canonical (see [`canonical_dir`]).
    VmDir(PathBuf),
}

impl LabIdentity {
    /// A desired machine's lab: its environment's `lab_id`, else its
    /// canonical VM directory.
    pub fn of(lab_id: Option<&str>, vm_dir: &Path) -> Self {
        match lab_id {
            Some(id) => Self::LabId(id.to_string()),
            None => Self::VmDir(canonical_dir(vm_dir)),
        }
    }
}

impl std::fmt::Display for LabIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::LabId(id) => write!(f, "lab_id {id}"),
            Self::VmDir(dir) => write!(f, "VM directory {}", dir.display()),
        }
    }
}

impl OwnershipMark {
    /// The lab the mark records.
    pub fn lab(&self) -> LabIdentity {
        LabIdentity::of(self.lab_id.as_deref(), Path::new(&self.vm_dir))
    }

    /// Whether the domain is this lab's machine `vm_name` of `environment`:
    /// the mark names both, and records the same lab.
    pub fn is_machine_of(&self, environment: &str, vm_name: &str, lab: &LabIdentity) -> bool {
        self.environment == environment && self.vm_name == vm_name && self.lab() == *lab
    }

    /// Who made the domain, for "owned by another lab" messages.
    pub fn owner(&self) -> String {
        if self.one_off {
            return format!("one-off machine {}, {}", self.vm_name, self.lab());
        }
        format!(
            "machine {} of environment {}, {}",
            self.vm_name,
            self.environment,
            self.lab()
        )
    }
}

/// `dir` with its longest existing ancestor resolved (symlinks, `..`) and
/// the rest appended: the same for one directory however it is spelled,
/// also once its files are gone.
pub fn canonical_dir(dir: &Path) -> PathBuf {
    let mut rest = Vec::new();
    let mut existing = dir;
    loop {
        if let Ok(real) = existing.canonicalize() {
            return rest.iter().rev().fold(real, |path, part| path.join(part));
        }
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_os_string());
                existing = parent;
            }
            _ => return dir.to_path_buf(),
        }
    }
}

/// The definition with the verified image's digest in the mark. The image
/// may be downloaded after the definition was rendered (in the same apply),
/// so the digest is filled in when the domain is defined.
pub fn with_image_digest(definition: &str, digest: Option<&str>) -> String {
    const EMPTY: &str = "digest=''";
    let (Some(digest), Some(image)) = (digest, definition.find("<lvlab:image ")) else {
        return definition.to_string();
    };
    let element_end = definition[image..]
        .find("/>")
        .map_or(definition.len(), |e| image + e);
    match definition[image..element_end].find(EMPTY) {
        Some(at) => {
            let at = image + at;
            format!(
                "{}digest='{digest}'{}",
                &definition[..at],
                &definition[at + EMPTY.len()..]
            )
        }
        None => definition.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_renderer_version_reads_back_and_defaults_for_older_marks() {
        let mark = |seed: &str| {
            format!(
                "<domain><metadata><lvlab:machine xmlns:lvlab='{MARK_NAMESPACE}'>\
                 <lvlab:vm-name>web</lvlab:vm-name>{seed}</lvlab:machine></metadata></domain>"
            )
        };
        let read = |seed: &str| OwnershipMark::from_domain_xml(&mark(seed)).unwrap();
        let older = read("<lvlab:seed digest='sha256:a'/>");
        assert_eq!(older.renderer, crate::cloudinit::UNVERSIONED_RENDERER);
        assert_eq!(
            (older.vm_name.as_str(), older.seed_digest.as_str()),
            ("web", "sha256:a")
        );
        assert_eq!(
            read("<lvlab:seed digest='sha256:a' renderer='7'/>").renderer,
            7
        );
    }

    fn mark(environment: &str, vm_name: &str, vm_dir: &str, lab_id: Option<&str>) -> OwnershipMark {
        let lab_id = lab_id.map_or(String::new(), |id| {
            format!("<lvlab:lab-id>{id}</lvlab:lab-id>")
        });
        OwnershipMark::from_domain_xml(&format!(
            "<domain><metadata><lvlab:machine xmlns:lvlab='{MARK_NAMESPACE}'>\
             <lvlab:environment>{environment}</lvlab:environment>\
             <lvlab:vm-name>{vm_name}</lvlab:vm-name><lvlab:vm-dir>{vm_dir}</lvlab:vm-dir>\
             {lab_id}</lvlab:machine></metadata></domain>"
        ))
        .unwrap()
    }

    #[test]
    fn a_domain_is_ours_only_for_the_same_environment_machine_and_vm_directory() {
        let dir = tempfile::tempdir().unwrap();
        let ours = dir.path().join("vms/x/a_b");
        let lab = LabIdentity::of(None, &ours);
        let vm_dir = ours.display().to_string();
        assert!(mark("x", "a_b", &vm_dir, None).is_machine_of("x", "a_b", &lab));
        // `a_b_x` is also machine `a` of environment `b_x`.
        assert!(!mark("b_x", "a", &vm_dir, None).is_machine_of("x", "a_b", &lab));
        let elsewhere = mark("x", "a_b", "/other/checkout/vms/x/a_b", None);
        assert!(!elsewhere.is_machine_of("x", "a_b", &lab));
        assert_eq!(
            elsewhere.owner(),
            "machine a_b of environment x, VM directory /other/checkout/vms/x/a_b"
        );
        // Spelled through a symlink, it is the same directory.
        std::os::unix::fs::symlink(dir.path(), dir.path().join("link")).unwrap();
        let linked = dir.path().join("link/vms/x/a_b").display().to_string();
        assert!(mark("x", "a_b", &linked, None).is_machine_of("x", "a_b", &lab));
    }

    #[test]
    fn a_one_off_mark_reads_back_and_names_itself_so() {
        let xml = |extra: &str| {
            format!(
                "<domain><metadata><lvlab:machine xmlns:lvlab='{MARK_NAMESPACE}'>\
                 <lvlab:environment>oneoff</lvlab:environment>\
                 <lvlab:vm-name>scratch</lvlab:vm-name>\
                 <lvlab:vm-dir>/base/oneoff/scratch</lvlab:vm-dir>{extra}\
                 </lvlab:machine></metadata></domain>"
            )
        };
        let one_off = OwnershipMark::from_domain_xml(&xml("<lvlab:one-off/>")).unwrap();
        assert!(one_off.one_off);
        assert_eq!(
            one_off.owner(),
            "one-off machine scratch, VM directory /base/oneoff/scratch"
        );
        assert!(!OwnershipMark::from_domain_xml(&xml("")).unwrap().one_off);
    }

    #[test]
    fn a_lab_id_is_compared_instead_of_the_vm_directory() {
        let ci = LabIdentity::of(Some("ci"), Path::new("/runner/1/vms/x/a"));
        assert!(mark("x", "a", "/runner/2/vms/x/a", Some("ci")).is_machine_of("x", "a", &ci));
        assert!(!mark("x", "a", "/runner/1/vms/x/a", Some("dev")).is_machine_of("x", "a", &ci));
        assert!(!mark("x", "a", "/runner/1/vms/x/a", None).is_machine_of("x", "a", &ci));
        let by_dir = LabIdentity::of(None, Path::new("/runner/1/vms/x/a"));
        assert!(!mark("x", "a", "/runner/1/vms/x/a", Some("ci")).is_machine_of("x", "a", &by_dir));
    }

    #[test]
    fn the_image_digest_is_filled_in_only_where_empty() {
        let xml = "<lvlab:image key='d' digest=''/>\n<lvlab:seed digest=''/>";
        assert_eq!(
            with_image_digest(xml, Some("sha512:ab")),
            "<lvlab:image key='d' digest='sha512:ab'/>\n<lvlab:seed digest=''/>"
        );
        let known = "<lvlab:image key='d' digest='sha256:x'/>";
        assert_eq!(with_image_digest(known, Some("sha512:ab")), known);
        assert_eq!(with_image_digest(xml, None), xml);
    }
}
