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
mod tests;
