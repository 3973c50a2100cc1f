//! The JSON Schema (draft 2020-12) of `Lvlab.yml`, for editors
//! (yaml-language-server) and `lvlab schema`.
//!
//! It is generated from the [`raw`](super::raw) structs the loader
//! deserializes, so a key added there is in the schema, with its doc
//! comment as the text an editor shows, and an unknown key is refused as
//! the loader refuses it. Said here by hand: what serde reads leniently
//! ([`Flag`], [`Number`], [`Scalar`], [`OneOrMany`]) and the values that
//! resolution checks after serde (the words `network_type` and its kin
//! accept, sizes and memory with units, names, ranges). The schema accepts
//! no more than that; the loader still checks what no schema can say
//! (references between keys, files, addresses).

use std::borrow::Cow;

use schemars::generate::SchemaSettings;
use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde_json::{json, Value};

use super::raw::{Flag, Number, OneOrMany, RawManifest, Scalar};

/// The schema `lvlab schema` prints and docs/lvlab.schema.json holds.
pub fn manifest_schema() -> Value {
    let generator = SchemaSettings::draft2020_12().into_generator();
    let mut schema = generator.into_root_schema_for::<RawManifest>();
    // The loader drops top-level keys beginning with `x-`: they hold YAML
    // anchors for reuse.
    schema.insert(
        "patternProperties".into(),
        json!({"^x-": {"description": "ignored: a place for YAML anchors (`x-common: &common {...}`)"}}),
    );
    schema.to_value()
}

/// A string that is one of `words`, each with what it means.
fn words(words: &[(&str, &str)]) -> Schema {
    let choices: Vec<Value> = words
        .iter()
        .map(|(word, meaning)| json!({"const": word, "description": meaning}))
        .collect();
    json_schema!({"type": "string", "oneOf": choices})
}

/// A regular expression that matches exactly `words`, in any case.
fn any_case(words: &[&str]) -> String {
    let alternatives: Vec<String> = words
        .iter()
        .map(|word| {
            word.chars()
                .map(|c| {
                    if c.is_ascii_alphabetic() {
                        format!("[{}{}]", c.to_ascii_lowercase(), c.to_ascii_uppercase())
                    } else {
                        c.to_string()
                    }
                })
                .collect()
        })
        .collect();
    format!("^(?:{})$", alternatives.join("|"))
}

/// A whole number written as a string, as [`Number`] reads it.
const NUMBER_TEXT: &str = r"^\s*[+-]?[0-9]+\s*$";
/// The number part of a size (`25`, `1.5`), then optional blanks.
const SIZE_NUMBER: &str = r"^\s*(?:[0-9]+\.?[0-9]*|\.[0-9]+)\s*";

/// A value type whose schema is said by hand: a unit struct that only
/// names its schema for `#[schemars(with = ...)]`.
macro_rules! hand_schema {
    ($(#[$meta:meta])* $name:ident => $body:expr) => {
        $(#[$meta])*
        pub struct $name;

        impl JsonSchema for $name {
            fn schema_name() -> Cow<'static, str> {
                stringify!($name).into()
            }

            fn json_schema(_: &mut SchemaGenerator) -> Schema {
                $body
            }
        }
    };
}

hand_schema!(
    /// `network_type`: resolution's words.
    NetworkType => words(&[
        ("network", "a libvirt network (`network:`)"),
        ("user", "QEMU user-mode networking"),
        ("passt", "passt user-mode networking; `ssh_port` forwards SSH from 127.0.0.1"),
    ])
);

hand_schema!(
    /// `domain_type`.
    DomainType => words(&[
        ("auto", "KVM when libvirt offers it, else TCG"),
        ("kvm", "hardware virtualisation"),
        ("qemu", "software emulation (TCG), no acceleration"),
    ])
);

hand_schema!(
    /// `storage`.
    StorageKind => words(&[
        ("files", "files in the VM directory, on the machine lvlab runs on"),
        ("pool", "volumes of a libvirt storage pool per VM directory (any host)"),
    ])
);

hand_schema!(
    /// `graphics`.
    Graphics => words(&[
        ("none", "serial console only"),
        ("vnc", "VNC on 127.0.0.1"),
        ("spice", "SPICE on 127.0.0.1"),
    ])
);

hand_schema!(
    /// `disk_strategy` and a disk's `strategy`.
    DiskStrategy => words(&[
        ("copy", "a standalone copy of the image"),
        ("backing", "a qcow2 overlay on the cached image"),
    ])
);

hand_schema!(
    /// `checksum_type`, in any case.
    ChecksumType => json_schema!({
        "type": "string",
        "pattern": any_case(&["sha256", "sha512"]),
        "examples": ["sha256", "sha512"],
    })
);

hand_schema!(
    /// `network_version`.
    NetworkVersion => json_schema!({"enum": [1, 2, "1", "2"]})
);

hand_schema!(
    /// Environment names, `lab_id` and `vm_name`, as `values::check_name`
    /// takes them.
    Name => json_schema!({
        "type": "string",
        "pattern": "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$",
        "description": "letters, digits, `.`, `_` and `-`, starting with a letter or digit, at most 64 characters",
    })
);

hand_schema!(
    /// A DNS label, as `values::check_hostname` takes it.
    Hostname => json_schema!({
        "type": "string",
        "pattern": "^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$",
        "description": "a DNS label: letters, digits and `-`, at most 63 characters",
    })
);

hand_schema!(
    /// `cpu`: 1 to 1024.
    Cpu => json_schema!({
        "anyOf": [
            {"type": "integer", "minimum": 1, "maximum": 1024},
            {"type": "string", "pattern": NUMBER_TEXT},
        ],
    })
);

hand_schema!(
    /// `memory`: MiB, or with a binary unit.
    Memory => json_schema!({
        "anyOf": [
            {"type": "integer", "minimum": 64, "maximum": 16u64 << 20},
            {
                "type": "string",
                "pattern": format!("{SIZE_NUMBER}(?:[kKmMgGtT](?:[iI][bB])?|[bB])?\\s*$"),
                "examples": ["2048", "4G", "4GiB", "512M", "512MiB"],
            },
        ],
        "description": "MiB (`2048`), or with a binary unit: `4G`, `4GiB`, `512M`, `512MiB` (64 MiB at least)",
    })
);

hand_schema!(
    /// A disk's `size`.
    DiskSize => json_schema!({
        "anyOf": [
            {"type": "integer", "minimum": 1u64 << 20},
            {
                "type": "string",
                "pattern": format!("{SIZE_NUMBER}(?:[kKmMgGtT](?:[iI]?[bB])?|[bB])?\\s*$"),
                "examples": ["25G", "512M", "20GiB", "10GB"],
            },
        ],
        "description": "`K M G T` and `KiB MiB GiB TiB` are powers of 1024, `KB MB GB TB` of 1000; a bare number is bytes",
    })
);

hand_schema!(
    /// `ssh_port`.
    SshPort => json_schema!({
        "anyOf": [
            {"const": "auto", "description": "a free port, chosen by lvlab"},
            {"type": "integer", "minimum": 1, "maximum": 65535},
            {"type": "string", "pattern": "^[0-9]{1,5}$"},
        ],
    })
);

hand_schema!(
    /// `user_data`: a cloud-config mapping, checked by cloud-init.
    CloudConfig => json_schema!({
        "type": "object",
        "description": "a cloud-config document as a mapping (without the `#cloud-config` line)",
    })
);

impl JsonSchema for Flag {
    fn schema_name() -> Cow<'static, str> {
        "Flag".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        let all: Vec<&str> = Flag::TRUE_WORDS
            .iter()
            .chain(Flag::FALSE_WORDS)
            .copied()
            .collect();
        json_schema!({
            "anyOf": [
                {"type": "boolean"},
                {"type": "string", "pattern": any_case(&all)},
            ],
            "description": "true or false; also the YAML 1.1 words yes, no, on, off, y, n",
        })
    }
}

impl JsonSchema for Number {
    fn schema_name() -> Cow<'static, str> {
        "Number".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "anyOf": [
                {"type": "integer"},
                {"type": "string", "pattern": NUMBER_TEXT},
            ],
            "description": "a whole number, also written as a string",
        })
    }
}

impl JsonSchema for Scalar {
    fn schema_name() -> Cow<'static, str> {
        "Scalar".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({"type": ["string", "number", "boolean"]})
    }
}

impl<T: JsonSchema> JsonSchema for OneOrMany<T> {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> Cow<'static, str> {
        format!("OneOrMany_{}", T::schema_name()).into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let one = generator.subschema_for::<T>();
        json_schema!({"anyOf": [one, {"type": "array", "items": one}]})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_case_matches_every_casing_and_nothing_else() {
        assert_eq!(any_case(&["on", "y2"]), "^(?:[oO][nN]|[yY]2)$");
    }

    #[test]
    fn the_schema_is_draft_2020_12_and_closed() {
        let schema = manifest_schema();
        assert_eq!(
            schema["$schema"],
            "https://json-schema.org/draft/2020-12/schema"
        );
        assert_eq!(schema["additionalProperties"], false);
        assert_eq!(schema["$defs"]["Machine"]["additionalProperties"], false);
        assert!(schema["patternProperties"]["^x-"].is_object());
    }
}
