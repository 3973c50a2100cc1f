//! lvlab's ownership mark: the `<metadata>` element every domain lvlab
//! defines carries. It is lvlab's only state: what owns the domain, which
//! manifest and image made it, and the digest of the spec it was made from.

use serde::Serialize;

use super::spec::SpecFields;

/// The XML namespace of the mark. A domain without it is foreign.
pub const MARK_NAMESPACE: &str = "urn:lvlab:machine:1";

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OwnershipMark {
    pub environment: String,
    pub vm_name: String,
    pub manifest: String,
    /// The per-VM directory, so a machine no longer in the manifest can
    /// still be cleaned up completely.
    pub vm_dir: String,
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
            image_key: attr("image", "key"),
            image_digest: attr("image", "digest"),
            seed_digest: attr("seed", "digest"),
            renderer: attr("seed", "renderer")
                .parse()
                .unwrap_or(crate::cloudinit::UNVERSIONED_RENDERER),
            spec_digest: attr("spec", "digest"),
            spec,
        })
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
