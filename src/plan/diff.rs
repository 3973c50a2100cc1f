//! Unified diffs of a machine's rendered files (recorded -> desired), as
//! the text and JSON plans show them: every secret replaced by
//! `(sensitive)`, as terraform does, in changed and context lines alike.
//! A plan goes to terminals, CI logs and saved files; a password hash must
//! not (it can be cracked offline).

use std::borrow::Cow;

use similar::TextDiff;

/// What stands in for a secret.
pub const SENSITIVE: &str = "(sensitive)";

/// Keys whose value is a password or its hash, in cloud-config's `users`
/// (`passwd`, `hashed_passwd`, `plain_text_passwd`) and `chpasswd`
/// (`password`), or a private SSH host key (`ssh_keys`).
const SENSITIVE_KEYS: [&str; 8] = [
    "passwd",
    "hashed_passwd",
    "plain_text_passwd",
    "password",
    "ed25519_private",
    "rsa_private",
    "ecdsa_private",
    "dsa_private",
];

/// The lines of the unified diff of `name`, with two lines of context and
/// every secret redacted.
pub fn unified_lines(name: &str, old: &str, new: &str) -> Vec<String> {
    let listed: Vec<String> = [old, new].into_iter().flat_map(chpasswd_list).collect();
    TextDiff::from_lines(old, new)
        .unified_diff()
        .context_radius(2)
        .header(&format!("{name} (recorded)"), &format!("{name} (desired)"))
        .to_string()
        .lines()
        .map(|line| redact_listed(&redact(line), &listed))
        .collect()
}

/// The passwords of a cloud-config's legacy `chpasswd: {list: ...}`
/// (`user:password` lines, or a sequence of them): a line of that block
/// says nothing of what it is, so they are found in the whole document.
fn chpasswd_list(document: &str) -> Vec<String> {
    let Ok(doc) = serde_yaml::from_str::<serde_yaml::Value>(document) else {
        return Vec::new();
    };
    let entries: Vec<String> = match doc.get("chpasswd").and_then(|c| c.get("list")) {
        Some(serde_yaml::Value::String(text)) => text.lines().map(str::to_string).collect(),
        Some(serde_yaml::Value::Sequence(items)) => items
            .iter()
            .filter_map(|i| i.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    };
    entries
        .iter()
        .filter_map(|entry| entry.trim().split_once(':'))
        .map(|(_, password)| password.to_string())
        .filter(|password| !password.is_empty())
        .collect()
}

/// `line` with a `user:password` entry of `listed` passwords redacted.
fn redact_listed(line: &str, listed: &[String]) -> String {
    let end = line.trim_end_matches(['"', '\'', ' ']);
    for password in listed {
        if let Some(head) = end.strip_suffix(password.as_str()) {
            if head.ends_with(':') {
                return format!("{head}{SENSITIVE}{}", &line[end.len()..]);
            }
        }
    }
    line.to_string()
}

/// `line` with the value of a password key and every crypt hash (`$6$...`,
/// wherever it stands: a `{password_hash}` placeholder may put it in a
/// `runcmd` or a `chpasswd` list) replaced by [`SENSITIVE`].
pub fn redact(line: &str) -> Cow<'_, str> {
    let keyed = match sensitive_value_at(line) {
        Some(at) => Cow::Owned(format!("{} {SENSITIVE}", &line[..at])),
        None => Cow::Borrowed(line),
    };
    match redact_hashes(&keyed) {
        Some(text) => Cow::Owned(text),
        None => keyed,
    }
}

/// Where the value of a password key starts (just after its colon).
fn sensitive_value_at(line: &str) -> Option<usize> {
    SENSITIVE_KEYS.iter().find_map(|key| {
        line.match_indices(key).find_map(|(start, _)| {
            let before = line[..start].chars().next_back();
            let standalone = before.is_none_or(|c| !(c.is_alphanumeric() || c == '_'));
            let rest = &line[start + key.len()..];
            let quote = rest.starts_with(['"', '\'']) as usize;
            let after_colon = start + key.len() + quote + 1;
            let colon = rest[quote..].starts_with(':');
            let value_follows = line[after_colon.min(line.len())..]
                .chars()
                .next()
                .is_none_or(char::is_whitespace);
            (standalone && colon && value_follows && !line[after_colon..].trim().is_empty())
                .then_some(after_colon)
        })
    })
}

/// `text` with each crypt hash replaced, or `None` when it holds none.
fn redact_hashes(text: &str) -> Option<String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let mut found = false;
    while let Some(start) = rest.find('$') {
        let len = crypt_hash_len(&rest[start..]);
        if len == 0 {
            out.push_str(&rest[..=start]);
            rest = &rest[start + 1..];
            continue;
        }
        out.push_str(&rest[..start]);
        out.push_str(SENSITIVE);
        rest = &rest[start + len..];
        found = true;
    }
    out.push_str(rest);
    found.then_some(out)
}

/// The length of the crypt hash `text` starts with (`$id$...`, the id a
/// few lowercase letters or digits: `1`, `2b`, `5`, `6`, `y`, `gy`), or 0.
fn crypt_hash_len(text: &str) -> usize {
    let Some(after) = text.strip_prefix('$') else {
        return 0;
    };
    let id_len = after
        .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit()))
        .unwrap_or(after.len());
    if id_len == 0 || id_len > 8 || !after[id_len..].starts_with('$') {
        return 0;
    }
    let body = &after[id_len..];
    let body_len = body
        .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | ',' | '}' | ']'))
        .unwrap_or(body.len());
    // `$6$` alone, or a shell's `$1$2`, is no hash: salts and digests are long.
    if body_len < 12 {
        return 0;
    }
    1 + id_len + body_len
}

#[cfg(test)]
mod tests {
    use super::*;

    const HASH: &str = "$6$rounds=4096$saltsalt$Kq0dY5Q5oPFLqGpPvvcMzuTH4bQ1GvO8z6oQzJ4U0mS.";

    #[test]
    fn password_keys_and_hashes_are_redacted_wherever_they_stand() {
        let cases = [
            (
                format!("     passwd: \"{HASH}\""),
                "     passwd: (sensitive)".to_string(),
            ),
            (
                format!("+    hashed_passwd: {HASH}"),
                "+    hashed_passwd: (sensitive)".into(),
            ),
            (
                "-  - {name: root, password: hunter22, type: text}".into(),
                "-  - {name: root, password: (sensitive)".into(),
            ),
            (
                format!("   - echo 'root:{HASH}' | chpasswd -e"),
                "   - echo 'root:(sensitive)' | chpasswd -e".into(),
            ),
            (
                format!("   \"passwd\": \"{HASH}\""),
                "   \"passwd\": (sensitive)".into(),
            ),
            (
                "+  ed25519_private: \"-----BEGIN OPENSSH PRIVATE KEY-----\\nb3Bl\\n\"".into(),
                "+  ed25519_private: (sensitive)".into(),
            ),
        ];
        for (line, want) in cases {
            assert_eq!(redact(&line), want, "{line}");
        }
    }

    #[test]
    fn a_chpasswd_list_is_redacted_even_in_a_hunk_that_starts_inside_it() {
        let old = "chpasswd:\n  list: |\n    root:hunter22\n    pi:raspberry\n  expire: false\nruncmd: []\n";
        let new = old.replace("runcmd: []", "runcmd: [reboot]");
        let lines = unified_lines("user-data", old, &new);
        assert!(
            lines.contains(&"     pi:(sensitive)".to_string()),
            "{lines:#?}"
        );
        assert!(lines.iter().all(|l| !l.contains("raspberry")), "{lines:#?}");
        let listed = "chpasswd:\n  list:\n    - \"root:hunter22\"\nruncmd: []\n";
        let lines = unified_lines("user-data", listed, &listed.replace("[]", "[x]"));
        assert!(
            lines.contains(&"     - \"root:(sensitive)\"".to_string()),
            "{lines:#?}"
        );
    }

    #[test]
    fn lines_without_secrets_stay_as_they_are() {
        for line in [
            "     lock_passwd: false",
            "chpasswd:",
            "  expire: false",
            "   - echo $HOME $1$2 ${password}",
            "     password:",
            "ssh_pwauth: true",
        ] {
            assert!(matches!(redact(line), Cow::Borrowed(_)), "{line}");
        }
    }

    #[test]
    fn a_changed_hash_shows_as_a_change_without_its_value() {
        let old = format!("users:\n  - name: a\n    passwd: \"{HASH}\"\n    shell: /bin/sh\n");
        let new = old.replace("shell: /bin/sh", "shell: /bin/bash");
        let lines = unified_lines("user-data", &old, &new);
        assert!(
            lines.contains(&"     passwd: (sensitive)".to_string()),
            "{lines:#?}"
        );
        assert!(lines.iter().all(|l| !l.contains("saltsalt")), "{lines:#?}");
        let rehashed = old.replace("saltsalt", "otherslt");
        let lines = unified_lines("user-data", &old, &rehashed);
        assert!(
            lines.contains(&"-    passwd: (sensitive)".to_string()),
            "{lines:#?}"
        );
        assert!(
            lines.contains(&"+    passwd: (sensitive)".to_string()),
            "{lines:#?}"
        );
    }
}
