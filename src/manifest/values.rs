//! Parsing of individual manifest values: sizes, names, paths. Pure
//! functions; each error is a sentence that fits after "`key`: ".

use std::path::{Path, PathBuf};

/// A disk size such as `25G`, `512M`, `20GiB` or `10GB`. `K M G T` and
/// `KiB MiB GiB TiB` are powers of 1024, as qemu-img reads them; `KB MB GB
/// TB` are powers of 1000. A bare number is bytes.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let (number, unit) = number_and_unit(text)?;
    let multiplier = binary_unit(unit)
        .or_else(|| decimal_unit(unit))
        .ok_or_else(|| {
            format!("unknown size unit `{unit}`; use K, M, G, T (powers of 1024) or KB, MB, GB, TB")
        })?;
    let bytes = number * multiplier as f64;
    if bytes < (1u64 << 20) as f64 {
        return Err(format!(
            "`{text}` is less than 1 MiB; a bare number is bytes, did you mean `{text}G`?"
        ));
    }
    if bytes > (1u64 << 50) as f64 {
        return Err(format!("`{text}` is larger than 1 PiB"));
    }
    // Round up to whole KiB: qemu-img and libvirt work in sectors.
    Ok((bytes as u64).div_ceil(1024) * 1024)
}

/// An amount of memory in MiB: `4G`, `4GiB`, `512M`, `512MiB`; a bare
/// number is MiB, as in the original lvlab. Units are powers of 1024 only:
/// guest memory comes in binary units.
pub fn parse_memory_mib(text: &str) -> Result<u64, String> {
    const MIB: u64 = 1 << 20;
    let text = text.trim();
    let (number, unit) = number_and_unit(text)?;
    let multiplier = if unit.is_empty() {
        MIB
    } else {
        binary_unit(unit).ok_or_else(|| {
            format!(
                "`{text}`: memory takes K, M, G or T (KiB, MiB, GiB, TiB, powers of 1024), \
                 or a bare number of MiB, e.g. `4G` or `4096`"
            )
        })?
    };
    let mib = number * multiplier as f64 / MIB as f64;
    if mib.fract() != 0.0 {
        return Err(format!("`{text}` is not a whole number of MiB"));
    }
    Ok(mib as u64)
}

/// Splits `25G` into 25 and `G`; the number may have a fraction.
fn number_and_unit(text: &str) -> Result<(f64, &str), String> {
    let digits_end = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(digits_end);
    if text.starts_with('-') {
        return Err(format!("`{text}` is negative"));
    }
    let number: f64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a size; write it like `25G` or `512M`"))?;
    Ok((number, unit.trim()))
}

/// Bytes per `K M G T` or `KiB MiB GiB TiB` (and `B`), case-insensitive.
fn binary_unit(unit: &str) -> Option<u64> {
    match unit.to_ascii_lowercase().as_str() {
        "" | "b" => Some(1),
        "k" | "kib" => Some(1 << 10),
        "m" | "mib" => Some(1 << 20),
        "g" | "gib" => Some(1 << 30),
        "t" | "tib" => Some(1 << 40),
        _ => None,
    }
}

/// Bytes per `KB MB GB TB`, case-insensitive.
fn decimal_unit(unit: &str) -> Option<u64> {
    match unit.to_ascii_lowercase().as_str() {
        "kb" => Some(1_000),
        "mb" => Some(1_000_000),
        "gb" => Some(1_000_000_000),
        "tb" => Some(1_000_000_000_000),
        _ => None,
    }
}

/// Names that become part of domain names and directory names.
pub fn check_name(name: &str) -> Result<(), String> {
    let valid = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        && name.starts_with(|c: char| c.is_ascii_alphanumeric());
    if valid {
        Ok(())
    } else {
        Err(format!(
            "`{name}` is not a valid name: use letters, digits, `.`, `_` and `-`, \
             start with a letter or digit, at most 64 characters"
        ))
    }
}

/// A DNS label, as a guest's short hostname must be (RFC 1123).
pub fn check_hostname(name: &str) -> Result<(), String> {
    let valid = !name.is_empty()
        && name.len() <= 63
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if valid {
        Ok(())
    } else {
        Err(format!(
            "`{name}` is not a valid hostname: letters, digits and `-` only, \
             not starting or ending with `-`, at most 63 characters"
        ))
    }
}

/// Expands `~`, `$VAR` and `${VAR}`, and takes relative paths against `base`.
pub fn expand_path(text: &str, base: &Path) -> Result<PathBuf, String> {
    let expanded = expand_vars(text)?;
    let expanded = expand_tilde(&expanded)?;
    let path = PathBuf::from(expanded);
    Ok(if path.is_absolute() {
        path
    } else {
        base.join(path)
    })
}

fn expand_tilde(text: &str) -> Result<String, String> {
    if text != "~" && !text.starts_with("~/") {
        return Ok(text.to_string());
    }
    let home = std::env::var("HOME")
        .map_err(|_| format!("`{text}` starts with `~` but HOME is not set"))?;
    Ok(format!("{home}{}", &text[1..]))
}

fn expand_vars(text: &str) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(dollar) = rest.find('$') {
        out.push_str(&rest[..dollar]);
        let after = &rest[dollar + 1..];
        let (name, consumed) = if let Some(braced) = after.strip_prefix('{') {
            let end = braced
                .find('}')
                .ok_or_else(|| format!("`{text}` has an unclosed `${{`"))?;
            (&braced[..end], end + 2)
        } else {
            let end = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            (&after[..end], end)
        };
        if name.is_empty() {
            out.push('$');
        } else {
            let value = std::env::var(name)
                .map_err(|_| format!("`{text}` uses ${name}, which is not set"))?;
            out.push_str(&value);
        }
        rest = &after[consumed..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_follow_qemu_img_units() {
        assert_eq!(parse_size("25G"), Ok(25 << 30));
        assert_eq!(parse_size("25GiB"), Ok(25 << 30));
        assert_eq!(parse_size("512M"), Ok(512 << 20));
        assert_eq!(
            parse_size("10GB"),
            Ok(10_000_000_000u64.div_ceil(1024) * 1024)
        );
        assert_eq!(parse_size("1.5G"), Ok(3 << 29));
        assert_eq!(parse_size("2T"), Ok(2 << 40));
    }

    #[test]
    fn sizes_reject_nonsense() {
        assert!(parse_size("25").unwrap_err().contains("did you mean `25G`"));
        assert!(parse_size("big").unwrap_err().contains("not a size"));
        assert!(parse_size("3X").unwrap_err().contains("unknown size unit"));
        assert!(parse_size("5P").is_err());
    }

    #[test]
    fn memory_takes_binary_units_and_a_bare_number_is_mib() {
        assert_eq!(parse_memory_mib("4G"), Ok(4096));
        assert_eq!(parse_memory_mib("4GiB"), Ok(4096));
        assert_eq!(parse_memory_mib("512M"), Ok(512));
        assert_eq!(parse_memory_mib("512MiB"), Ok(512));
        assert_eq!(parse_memory_mib("1.5G"), Ok(1536));
        assert_eq!(parse_memory_mib("2048"), Ok(2048));
        assert!(parse_memory_mib("4GB")
            .unwrap_err()
            .contains("powers of 1024"));
        assert!(parse_memory_mib("4X")
            .unwrap_err()
            .contains("powers of 1024"));
        assert!(parse_memory_mib("lots").unwrap_err().contains("not a size"));
        assert!(parse_memory_mib("-4G").unwrap_err().contains("negative"));
        assert!(parse_memory_mib("1000K")
            .unwrap_err()
            .contains("not a whole number of MiB"));
    }

    #[test]
    fn names_and_hostnames() {
        assert!(check_name("salt.local").is_ok());
        assert!(check_name("web_01").is_ok());
        assert!(check_name("../etc").is_err());
        assert!(check_name("a/b").is_err());
        assert!(check_name("").is_err());
        assert!(check_hostname("web-01").is_ok());
        assert!(check_hostname("web_01").is_err());
        assert!(check_hostname("-web").is_err());
    }

    #[test]
    fn paths_expand_home_variables_and_relative_parts() {
        let home = std::env::var("HOME").unwrap();
        let base = Path::new("/srv/lab");
        assert_eq!(
            expand_path("~/x", base).unwrap(),
            PathBuf::from(format!("{home}/x"))
        );
        assert_eq!(
            expand_path("$HOME/y", base).unwrap(),
            PathBuf::from(format!("{home}/y"))
        );
        assert_eq!(
            expand_path("${HOME}/z", base).unwrap(),
            PathBuf::from(format!("{home}/z"))
        );
        assert_eq!(
            expand_path("data", base).unwrap(),
            PathBuf::from("/srv/lab/data")
        );
        assert_eq!(expand_path("/abs", base).unwrap(), PathBuf::from("/abs"));
        let err = expand_path("$LVLAB_SURELY_UNSET_VAR/x", base).unwrap_err();
        assert!(err.contains("LVLAB_SURELY_UNSET_VAR"), "{err}");
    }
}
