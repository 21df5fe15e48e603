//! What only this manager decides (invariant 7): the hooks it may run, where it finds the
//! passwords, and how it reaches the DB hosts over SSH. These come from mhad's own config file,
//! never from the network: a group spec (group file, AdminService, replicated state) refers to
//! them by name, and each mhad resolves the names against its own sections when it uses them.
//!
//! ```toml
//! [hooks]                      # name = executable (absolute path), exec'd without a shell
//! power_off = "/etc/mhad/hooks/power_off"
//! # fixed leading arguments: an array (program first); MHA's arguments are appended after them
//! vip = ["/etc/mhad/hooks/master_ip_failover", "--vip=10.0.0.100/24", "--vip_interface=eth0"]
//!
//! [credentials]                # name = where THIS manager reads the password (exactly one of)
//! mha = { file = "/etc/mhad/mha.pw" }      # absolute path, mode 0600; one trailing newline is dropped
//! repl = { env = "MHA_REPL_PASSWORD" }     # an environment variable of mhad
//! # a file group or others may read is refused (at start and at every read) unless allowed:
//! shared = { file = "/etc/mha/app1.pw", allow_readable = true }
//!
//! [ssh_profiles.default]       # the group file's ssh_profile (default "default")
//! key = "/etc/mhad/id_ed25519"
//! known_hosts = "/etc/mhad/known_hosts"
//! accept_unknown_host_keys = false         # explicit, logged opt-in
//! client_bindir = "/usr/bin"               # mysqlbinlog / mysql on the DB hosts (default: PATH)
//! ```
//!
//! Names are plain identifiers (letters, digits, '-', '_', '.'). The shape above is
//! [`RawHook`] / [`RawCredential`] / [`RawSshProfile`] in `config::RawConfig`; validation into
//! [`LocalConfig`] happens with the rest of the node config and names the key it is about.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// A name a group spec uses to refer to a local hook, credential or SSH profile: non-empty
/// ASCII letters, digits, '-', '_' or '.' (so never a path, never a command line).
pub fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        && s != "."
        && s != ".."
}

/// A hook in the config file: a path, or an argv array (program, then fixed arguments).
#[derive(Clone, Debug)]
pub enum RawHook {
    Path(String),
    Argv(Vec<String>),
}

impl<'de> Deserialize<'de> for RawHook {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = RawHook;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an absolute path, or an array [program, fixed arguments...]")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<RawHook, E> {
                Ok(RawHook::Path(v.to_string()))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut a: A,
            ) -> Result<RawHook, A::Error> {
                let mut argv = Vec::new();
                while let Some(arg) = a.next_element::<String>()? {
                    argv.push(arg);
                }
                Ok(RawHook::Argv(argv))
            }
        }
        d.deserialize_any(V)
    }
}

/// A credential in the config file: `{ file = "/abs/path" }` or `{ env = "VAR" }`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCredential {
    pub file: Option<PathBuf>,
    pub env: Option<String>,
    /// Accept a password file that group or others may access (mode & 0o077 != 0), for setups
    /// that share one secret file with a group on purpose. Default false: such a file is
    /// refused, at start and whenever it is read.
    #[serde(default)]
    pub allow_readable: bool,
}

/// An SSH profile in the config file.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSshProfile {
    /// Private key (absolute path).
    pub key: Option<PathBuf>,
    /// known_hosts file the DB hosts' keys are verified against (absolute path).
    pub known_hosts: Option<PathBuf>,
    /// Accept (and log) host keys missing from known_hosts. Default false; a changed key is
    /// refused anyway.
    #[serde(default)]
    pub accept_unknown_host_keys: bool,
    /// MHA's client_bindir: directory of `mysqlbinlog` and `mysql` on the DB hosts (absolute
    /// path on those hosts). Default: their PATH.
    pub client_bindir: Option<String>,
}

/// An executable this manager may run: program and fixed leading arguments (argv, no shell).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hook {
    pub program: PathBuf,
    pub args: Vec<String>,
}

impl Hook {
    /// The command as one line (program and fixed arguments), for logs and legacy matching.
    pub fn command_line(&self) -> String {
        std::iter::once(self.program.display().to_string())
            .chain(self.args.iter().cloned())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Where this manager reads a password.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Credential {
    /// A file, private to mhad's user (mode & 0o077 == 0) unless `allow_readable`.
    File {
        path: PathBuf,
        allow_readable: bool,
    },
    Env(String),
}

impl Credential {
    /// A file credential with the default (private files only).
    pub fn file(path: impl Into<PathBuf>) -> Credential {
        Credential::File {
            path: path.into(),
            allow_readable: false,
        }
    }

    /// Whether both read the same file or variable (whatever their options).
    pub fn same_source(&self, other: &Credential) -> bool {
        match (self, other) {
            (Credential::File { path: a, .. }, Credential::File { path: b, .. }) => a == b,
            (Credential::Env(a), Credential::Env(b)) => a == b,
            _ => false,
        }
    }
}

/// A password file that group or others may access, refused (the credential does not set
/// `allow_readable`). Names the file, its mode and the fix; never its content.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "password file {} is accessible to group or others (mode {mode:04o}); make it private to \
     mhad's user with `chmod 600 {}`, or, if it is shared on purpose, set allow_readable = true \
     on its entry in [credentials]",
    path.display(),
    path.display()
)]
pub struct ReadablePasswordFile {
    pub path: PathBuf,
    /// The permission bits (mode & 0o7777).
    pub mode: u32,
}

/// Refuses a password file whose `mode` gives group or others any access, unless allowed.
pub fn check_password_file_mode(
    path: &Path,
    mode: u32,
    allow_readable: bool,
) -> Result<(), ReadablePasswordFile> {
    if allow_readable || mode & 0o077 == 0 {
        Ok(())
    } else {
        Err(ReadablePasswordFile {
            path: path.to_path_buf(),
            mode: mode & 0o7777,
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SshProfile {
    pub key: PathBuf,
    pub known_hosts: PathBuf,
    pub accept_unknown_host_keys: bool,
    pub client_bindir: Option<String>,
}

/// This manager's hooks, credentials and SSH profiles, validated.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LocalConfig {
    pub hooks: BTreeMap<String, Hook>,
    pub credentials: BTreeMap<String, Credential>,
    pub ssh_profiles: BTreeMap<String, SshProfile>,
}

/// The config file section each kind of name lives in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Section {
    Hooks,
    Credentials,
    SshProfiles,
}

impl std::fmt::Display for Section {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Section::Hooks => "[hooks]",
            Section::Credentials => "[credentials]",
            Section::SshProfiles => "[ssh_profiles]",
        })
    }
}

/// A name a group spec uses that this manager's config does not define.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "{field} = {name:?} is not defined in {section} of this manager's config file (mhad --config); \
     define it there on every manager, or change the group"
)]
pub struct Undefined {
    /// The group spec's key (shutdown_script, password, ssh_profile, ...).
    pub field: String,
    pub name: String,
    pub section: Section,
}

fn absolute(p: &Path, what: &str) -> Result<(), String> {
    if p.is_absolute() {
        Ok(())
    } else {
        Err(format!(
            "{what} must be an absolute path, got {}",
            p.display()
        ))
    }
}

fn check_name(name: &str) -> Result<(), String> {
    if is_name(name) {
        Ok(())
    } else {
        Err(format!(
            "{name:?} is not a valid name (letters, digits, '-', '_' or '.'; no '/' or spaces)"
        ))
    }
}

impl LocalConfig {
    /// Validates the three sections. Errors are `(key, message)` with the section's key.
    pub fn from_raw(
        hooks: BTreeMap<String, RawHook>,
        credentials: BTreeMap<String, RawCredential>,
        ssh_profiles: BTreeMap<String, RawSshProfile>,
    ) -> Result<LocalConfig, (&'static str, String)> {
        let mut out = LocalConfig::default();
        for (name, raw) in hooks {
            let hook = hook(&name, raw).map_err(|m| ("hooks", m))?;
            out.hooks.insert(name, hook);
        }
        for (name, raw) in credentials {
            let c = credential(&name, raw).map_err(|m| ("credentials", m))?;
            out.credentials.insert(name, c);
        }
        for (name, raw) in ssh_profiles {
            let p = ssh_profile(&name, raw).map_err(|m| ("ssh_profiles", m))?;
            out.ssh_profiles.insert(name, p);
        }
        Ok(out)
    }

    /// The hook `name` (a name in [hooks]; for a value stored by a build before local hooks, the
    /// hook whose command line is exactly that value).
    pub fn hook(&self, field: &str, name: &str) -> Result<&Hook, Undefined> {
        self.hooks
            .get(name)
            .or_else(|| self.hooks.values().find(|h| h.command_line() == name))
            .ok_or_else(|| undefined(field, name, Section::Hooks))
    }

    /// The credential `name` in [credentials].
    pub fn credential(&self, field: &str, name: &str) -> Result<&Credential, Undefined> {
        self.credentials
            .get(name)
            .ok_or_else(|| undefined(field, name, Section::Credentials))
    }

    /// A credential of [credentials] that reads exactly this file or variable (for references
    /// stored by a build before local credentials).
    pub fn credential_like(
        &self,
        field: &str,
        legacy: &Credential,
    ) -> Result<&Credential, Undefined> {
        let shown = match legacy {
            Credential::File { path, .. } => path.display().to_string(),
            Credential::Env(v) => v.clone(),
        };
        self.credentials
            .values()
            .find(|c| c.same_source(legacy))
            .ok_or_else(|| undefined(field, &shown, Section::Credentials))
    }

    /// The SSH profile `name` in [ssh_profiles].
    pub fn ssh_profile(&self, name: &str) -> Result<&SshProfile, Undefined> {
        self.ssh_profiles
            .get(name)
            .ok_or_else(|| undefined("ssh_profile", name, Section::SshProfiles))
    }

    /// A profile with exactly this key and known_hosts (for SSH settings stored by a build
    /// before local profiles).
    pub fn ssh_profile_like(&self, key: &str, known_hosts: &str) -> Result<&SshProfile, Undefined> {
        self.ssh_profiles
            .values()
            .find(|p| p.key == Path::new(key) && p.known_hosts == Path::new(known_hosts))
            .ok_or_else(|| {
                undefined(
                    "ssh_profile",
                    &format!("(a profile with key {key} and known_hosts {known_hosts})"),
                    Section::SshProfiles,
                )
            })
    }
}

fn undefined(field: &str, name: &str, section: Section) -> Undefined {
    Undefined {
        field: field.to_string(),
        name: name.to_string(),
        section,
    }
}

fn hook(name: &str, raw: RawHook) -> Result<Hook, String> {
    check_name(name)?;
    let mut argv = match raw {
        RawHook::Path(p) => vec![p],
        RawHook::Argv(v) => v,
    };
    if argv.is_empty() || argv[0].is_empty() {
        return Err(format!("{name}: empty command"));
    }
    let program = PathBuf::from(argv.remove(0));
    absolute(&program, &format!("{name}: the program"))?;
    Ok(Hook {
        program,
        args: argv,
    })
}

/// Validates a credential. A password file that exists is checked at once (mhad refuses to
/// start with a file group or others may read, unless allowed); one that does not exist yet is
/// not an error here: it is checked, like every file, each time it is read.
fn credential(name: &str, raw: RawCredential) -> Result<Credential, String> {
    check_name(name)?;
    match (raw.file, raw.env) {
        (Some(f), None) => {
            absolute(&f, &format!("{name}.file"))?;
            if let Ok(meta) = std::fs::metadata(&f) {
                use std::os::unix::fs::PermissionsExt;
                check_password_file_mode(&f, meta.permissions().mode(), raw.allow_readable)
                    .map_err(|e| format!("{name}.file: {e}"))?;
            }
            Ok(Credential::File {
                path: f,
                allow_readable: raw.allow_readable,
            })
        }
        (None, Some(_)) if raw.allow_readable => {
            Err(format!("{name}.allow_readable: only for a file credential"))
        }
        (None, Some(v)) if !v.is_empty() && !v.contains(['=', '\0']) => Ok(Credential::Env(v)),
        (None, Some(v)) => Err(format!("{name}.env: {v:?} is not a variable name")),
        _ => Err(format!("{name}: give exactly one of file or env")),
    }
}

fn ssh_profile(name: &str, raw: RawSshProfile) -> Result<SshProfile, String> {
    check_name(name)?;
    let key = raw.key.ok_or_else(|| format!("{name}.key: required"))?;
    absolute(&key, &format!("{name}.key"))?;
    let known_hosts = raw
        .known_hosts
        .ok_or_else(|| format!("{name}.known_hosts: required"))?;
    absolute(&known_hosts, &format!("{name}.known_hosts"))?;
    if let Some(b) = &raw.client_bindir {
        absolute(Path::new(b), &format!("{name}.client_bindir"))?;
    }
    Ok(SshProfile {
        key,
        known_hosts,
        accept_unknown_host_keys: raw.accept_unknown_host_keys,
        client_bindir: raw.client_bindir,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Through the real file shape (config::RawConfig), as mhad reads it.
    fn parse(text: &str) -> Result<LocalConfig, String> {
        let raw = crate::config::RawConfig::from_toml(text)?;
        LocalConfig::from_raw(
            raw.hooks.unwrap_or_default(),
            raw.credentials.unwrap_or_default(),
            raw.ssh_profiles.unwrap_or_default(),
        )
        .map_err(|(k, m)| format!("{k}: {m}"))
    }

    /// A whole mhad config with the local sections validates into NodeConfig.local.
    #[test]
    fn node_config_carries_it() {
        let dir = tempfile::tempdir().unwrap();
        let text = format!(
            "id = 1\ninsecure = true\ndata_dir = {:?}\n{GOOD}",
            dir.path().display().to_string()
        );
        let raw = crate::config::RawConfig::from_toml(&text).unwrap();
        let c = crate::config::NodeConfig::try_from(raw).unwrap();
        assert_eq!(c.local.hooks.len(), 2);
        let raw = crate::config::RawConfig::from_toml(&format!(
            "id = 1\ndata_dir = {:?}\n[hooks]\nx = \"x\"\n",
            dir.path().display().to_string()
        ))
        .unwrap();
        match crate::config::NodeConfig::try_from(raw).unwrap_err() {
            crate::config::ConfigError::Invalid { key, .. } => assert_eq!(key, "hooks"),
            e => panic!("{e}"),
        }
    }

    const GOOD: &str = r#"
[hooks]
power_off = "/etc/mhad/hooks/power_off"
vip = ["/etc/mhad/hooks/master_ip_failover", "--vip=10.0.0.100/24", "--log=/var/log/ipf log"]
[credentials]
mha = { file = "/etc/mhad/mha.pw" }
repl = { env = "MHA_REPL_PASSWORD" }
[ssh_profiles.default]
key = "/etc/mhad/id_ed25519"
known_hosts = "/etc/mhad/known_hosts"
[ssh_profiles.lab]
key = "/k"
known_hosts = "/kh"
accept_unknown_host_keys = true
client_bindir = "/opt/mysql/bin"
"#;

    #[test]
    fn parses_every_form() {
        let c = parse(GOOD).unwrap();
        assert_eq!(
            c.hooks["power_off"],
            Hook {
                program: "/etc/mhad/hooks/power_off".into(),
                args: vec![]
            }
        );
        let vip = &c.hooks["vip"];
        assert_eq!(vip.program, Path::new("/etc/mhad/hooks/master_ip_failover"));
        // An argument with a space stays one argument (argv, no shell, no splitting).
        assert_eq!(vip.args, ["--vip=10.0.0.100/24", "--log=/var/log/ipf log"]);
        assert_eq!(c.credentials["mha"], Credential::file("/etc/mhad/mha.pw"));
        assert_eq!(
            c.credentials["repl"],
            Credential::Env("MHA_REPL_PASSWORD".into())
        );
        let d = &c.ssh_profiles["default"];
        assert!(!d.accept_unknown_host_keys);
        assert_eq!(d.client_bindir, None);
        let lab = &c.ssh_profiles["lab"];
        assert!(lab.accept_unknown_host_keys);
        assert_eq!(lab.client_bindir.as_deref(), Some("/opt/mysql/bin"));
        assert_eq!(parse("").unwrap(), LocalConfig::default());
    }

    /// Every bad entry is refused with its section and name.
    #[test]
    fn bad_entries_are_refused() {
        let cases = [
            (
                "[hooks]\n\"a/b\" = \"/bin/true\"\n",
                "hooks: \"a/b\" is not a valid name",
            ),
            ("[hooks]\n\"a b\" = \"/bin/true\"\n", "not a valid name"),
            ("[hooks]\n\"\" = \"/bin/true\"\n", "not a valid name"),
            (
                "[hooks]\nx = \"power_off\"\n",
                "hooks: x: the program must be an absolute path",
            ),
            ("[hooks]\nx = \"bin/x --a\"\n", "absolute path"),
            ("[hooks]\nx = []\n", "hooks: x: empty command"),
            ("[hooks]\nx = 3\n", "expected an absolute path, or an array"),
            (
                "[credentials]\nm = {}\n",
                "credentials: m: give exactly one of file or env",
            ),
            (
                "[credentials]\nm = { file = \"/a\", env = \"B\" }\n",
                "exactly one",
            ),
            (
                "[credentials]\nm = { file = \"mha.pw\" }\n",
                "m.file must be an absolute path",
            ),
            (
                "[credentials]\nm = { env = \"A=B\" }\n",
                "not a variable name",
            ),
            (
                "[credentials]\nm = { env = \"B\", allow_readable = true }\n",
                "m.allow_readable: only for a file credential",
            ),
            ("[credentials]\nm = { path = \"/a\" }\n", "path"),
            (
                "[ssh_profiles.p]\nknown_hosts = \"/kh\"\n",
                "ssh_profiles: p.key: required",
            ),
            (
                "[ssh_profiles.p]\nkey = \"/k\"\n",
                "p.known_hosts: required",
            ),
            (
                "[ssh_profiles.p]\nkey = \"k\"\nknown_hosts = \"/kh\"\n",
                "p.key must be an absolute path",
            ),
            (
                "[ssh_profiles.p]\nkey = \"/k\"\nknown_hosts = \"/kh\"\nclient_bindir = \"bin\"\n",
                "p.client_bindir must be an absolute path",
            ),
            (
                "[ssh_profiles.p]\nkey = \"/k\"\nknown_hosts = \"/kh\"\nport = 22\n",
                "port",
            ),
        ];
        for (text, needle) in cases {
            let e = parse(text).unwrap_err();
            assert!(e.contains(needle), "{text:?}: expected {needle:?} in {e}");
        }
    }

    /// Group or world access to a password file is refused unless the credential allows it;
    /// the message names the file, its mode and the fix.
    #[test]
    fn password_file_mode() {
        let p = Path::new("/etc/mhad/mha.pw");
        for ok in [0o600, 0o400, 0o100600, 0o700] {
            assert_eq!(check_password_file_mode(p, ok, false), Ok(()), "{ok:o}");
        }
        for bad in [0o640, 0o604, 0o644, 0o660, 0o100644, 0o602, 0o610, 0o777] {
            let e = check_password_file_mode(p, bad, false).unwrap_err();
            assert_eq!(e.mode, bad & 0o7777);
            assert_eq!(check_password_file_mode(p, bad, true), Ok(()), "{bad:o}");
        }
        assert_eq!(
            check_password_file_mode(p, 0o100640, false)
                .unwrap_err()
                .to_string(),
            "password file /etc/mhad/mha.pw is accessible to group or others (mode 0640); make \
             it private to mhad's user with `chmod 600 /etc/mhad/mha.pw`, or, if it is shared \
             on purpose, set allow_readable = true on its entry in [credentials]"
        );
    }

    /// At start (config validation) an existing password file is checked: 0644 refused with
    /// the key and the fix, 0600 or allow_readable accepted; a file that does not exist yet
    /// is left to the check at each read.
    #[test]
    fn password_file_mode_at_start() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let pw = dir.path().join("mha.pw");
        std::fs::write(&pw, "secret\n").unwrap();
        let set = |m| std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(m)).unwrap();
        let conf = |extra: &str| {
            parse(&format!(
                "[credentials]\nmha = {{ file = {:?}{extra} }}\n",
                pw.display().to_string()
            ))
        };
        set(0o644);
        let e = conf("").unwrap_err();
        assert!(
            e.starts_with("credentials: mha.file: password file ")
                && e.contains("(mode 0644)")
                && e.contains(&format!("chmod 600 {}", pw.display()))
                && !e.contains("secret"),
            "{e}"
        );
        let c = conf(", allow_readable = true").unwrap();
        assert_eq!(
            c.credentials["mha"],
            Credential::File {
                path: pw.clone(),
                allow_readable: true
            }
        );
        set(0o600);
        assert_eq!(conf("").unwrap().credentials["mha"], Credential::file(&pw));
        std::fs::remove_file(&pw).unwrap();
        assert!(conf("").is_ok(), "checked when read, not at start");
    }

    #[test]
    fn names() {
        for ok in ["mha", "power_off", "vip-1", "a.b", "X9"] {
            assert!(is_name(ok), "{ok}");
        }
        for bad in [
            "", "/bin/sh", "a b", "a/b", ".", "..", "sh -c id", "x\ty", "é",
        ] {
            assert!(!is_name(bad), "{bad}");
        }
    }

    /// Lookups name the group's key and the section; values stored by an older build are
    /// honoured only when this manager's config declares exactly that value.
    #[test]
    fn lookups() {
        let c = parse(GOOD).unwrap();
        assert_eq!(
            c.hook("shutdown_script", "power_off").unwrap().args.len(),
            0
        );
        let e = c.hook("shutdown_script", "stonith").unwrap_err();
        assert_eq!(e.section, Section::Hooks);
        assert!(
            e.to_string().starts_with(
                "shutdown_script = \"stonith\" is not defined in [hooks] of this manager's config file"
            ),
            "{e}"
        );
        // Legacy: a stored command line matches the hook with exactly that command.
        assert!(c.hook("f", "/etc/mhad/hooks/power_off").is_ok());
        assert!(c.hook("f", "/bin/sh -c id").is_err());
        assert!(c.credential("password", "mha").is_ok());
        let e = c.credential("repl_password", "nope").unwrap_err();
        assert!(e.to_string().contains("[credentials]"), "{e}");
        assert!(c
            .credential_like("password", &Credential::file("/etc/mhad/mha.pw"))
            .is_ok());
        assert!(c
            .credential_like("password", &Credential::file("/etc/shadow"))
            .is_err());
        assert!(c
            .credential_like("password", &Credential::Env("MHA_REPL_PASSWORD".into()))
            .is_ok());
        assert!(c.ssh_profile("lab").is_ok());
        assert!(c
            .ssh_profile("x")
            .unwrap_err()
            .to_string()
            .contains("ssh_profile = \"x\" is not defined in [ssh_profiles]"));
        assert!(
            c.ssh_profile_like("/k", "/kh")
                .unwrap()
                .accept_unknown_host_keys
        );
        assert!(c.ssh_profile_like("/k", "/other").is_err());
    }
}
