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
