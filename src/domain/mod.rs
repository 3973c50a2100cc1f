//! A resolved machine as libvirt sees it: the domain definition (rendered
//! from `templates/domain.xml`), the spec it was made from, and lvlab's
//! ownership mark in the domain's `<metadata>`. Pure: never talks to
//! libvirt; the actions define what this module renders.

mod definition;
mod domain_type;
mod mark;
mod render;
mod spec;

pub use definition::DefinitionFields;
pub use domain_type::{best_domain_type, resolve_domain_type, OfferedTypes};
pub use mark::{
    canonical_dir, provision_record, with_image_digest, LabIdentity, OwnershipMark, MARK_NAMESPACE,
    PROVISION_NAMESPACE,
};
pub use render::{
    forwarded_ssh_ports, render_definition, seed_path, with_forwarded_ports, DefinitionInput,
    DomainError, HostFacts,
};
pub use spec::{spec_digest, ChangeKind, FieldChange, SpecFields, SEED_FIELD};
