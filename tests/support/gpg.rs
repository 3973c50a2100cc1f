//! Real OpenPGP keys and signatures, made by GnuPG in a throw-away home
//! directory (never the user's keyring). The agent it starts is stopped
//! when the [`Gpg`] is dropped.

use std::path::{Path, PathBuf};
use std::process::Command;

pub struct Gpg {
    home: tempfile::TempDir,
}

#[allow(dead_code)]
impl Gpg {
    /// A fresh home with one ed25519 signing key per user id.
    pub fn new(users: &[&str]) -> Self {
        // Short path: gpg-agent's socket path has a length limit.
        let home = tempfile::Builder::new()
            .prefix("lvg")
            .tempdir_in("/tmp")
            .unwrap();
        let gpg = Self { home };
        for user in users {
            gpg.run(&[
                "--quick-gen-key",
                &format!("{user} <{user}@lvlab.invalid>"),
                "ed25519",
                "sign",
                "never",
            ]);
        }
        gpg
    }

    fn run(&self, args: &[&str]) -> Vec<u8> {
        let out = Command::new("gpg")
            .arg("--homedir")
            .arg(self.home.path())
            .args([
                "--batch",
                "--yes",
                "--pinentry-mode",
                "loopback",
                "--passphrase",
                "",
            ])
            .args(args)
            .output()
            .expect("gpg runs (scripts/setup.sh installs gnupg)");
        assert!(
            out.status.success(),
            "gpg {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    /// The public key of `user`, armored or binary.
    pub fn export(&self, user: &str, armor: bool) -> Vec<u8> {
        let mut args = vec!["--export"];
        if armor {
            args.insert(0, "--armor");
        }
        let email = format!("{user}@lvlab.invalid");
        args.push(&email);
        self.run(&args)
    }

    /// Uppercase hex fingerprint of `user`'s primary key.
    pub fn fingerprint(&self, user: &str) -> String {
        let out = self.run(&[
            "--with-colons",
            "--fingerprint",
            &format!("{user}@lvlab.invalid"),
        ]);
        let text = String::from_utf8(out).unwrap();
        text.lines()
            .find(|l| l.starts_with("fpr:"))
            .and_then(|l| l.split(':').nth(9))
            .unwrap()
            .to_string()
    }

    fn file(&self, name: &str, content: &[u8]) -> PathBuf {
        let path = self.home.path().join(name);
        std::fs::write(&path, content).unwrap();
        path
    }

    pub fn clearsign(&self, user: &str, text: &str) -> String {
        let input = self.file("in.txt", text.as_bytes());
        let out = self.run(&[
            "--local-user",
            &format!("{user}@lvlab.invalid"),
            "--clearsign",
            "--output",
            "-",
            path_str(&input),
        ]);
        String::from_utf8(out).unwrap()
    }

    pub fn detach_sign(&self, user: &str, data: &[u8], armor: bool) -> Vec<u8> {
        let input = self.file("in.bin", data);
        let mut args = vec!["--local-user".to_string(), format!("{user}@lvlab.invalid")];
        if armor {
            args.push("--armor".into());
        }
        args.extend(["--detach-sign", "--output", "-", path_str(&input)].map(String::from));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.run(&args)
    }
}

fn path_str(path: &Path) -> &str {
    path.to_str().unwrap()
}

impl Drop for Gpg {
    fn drop(&mut self) {
        let _ = Command::new("gpgconf")
            .arg("--homedir")
            .arg(self.home.path())
            .args(["--kill", "gpg-agent"])
            .output();
    }
}
