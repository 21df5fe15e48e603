//! What a group spec names, resolved on this manager against its own config file (invariant 7):
//! the replicated spec names a credential, hooks and an SSH profile, never a secret, a path or a
//! command; each manager looks the names up in its `[credentials]`, `[hooks]` and
//! `[ssh_profiles]` (src/local_config.rs) when it uses them.

use std::path::{Path, PathBuf};

use crate::adapters::mysql::{Endpoint, Login};
use crate::local_config::{
    check_password_file_mode, Credential, Hook, LocalConfig, ReadablePasswordFile, SshProfile,
    Undefined,
};
use crate::secret::Secret;
use crate::state::group::{CredentialRef, GroupSpec, LegacyCredential, ServerSpec, SshSpec};

/// A credential this manager cannot resolve. Names the reference, never a value.
#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    #[error(transparent)]
    Undefined(#[from] Undefined),
    #[error("cannot read password file {path}: {source}")]
    File {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A password file group or others may read (and its credential does not allow it).
    #[error(transparent)]
    Readable(#[from] ReadablePasswordFile),
    #[error("environment variable {0} is not set")]
    Env(String),
}

/// The `[credentials]` entry a spec's reference names (`field`: the spec's key). A reference
/// stored by an older build (a file or variable) resolves only to an entry that reads exactly
/// that file or variable.
pub fn credential<'a>(
    local: &'a LocalConfig,
    field: &str,
    c: &CredentialRef,
) -> Result<&'a Credential, Undefined> {
    match c {
        CredentialRef::Name(n) => local.credential(field, n),
        CredentialRef::Legacy(LegacyCredential::File(p)) => {
            local.credential_like(field, &Credential::file(p))
        }
        CredentialRef::Legacy(LegacyCredential::Env(v)) => local
            .credential(field, v)
            .or_else(|_| local.credential_like(field, &Credential::Env(v.clone()))),
    }
}

/// Reads the password a spec's reference names, on this manager.
pub fn resolve(
    local: &LocalConfig,
    field: &str,
    c: &CredentialRef,
) -> Result<Secret, CredentialError> {
    match credential(local, field, c)? {
        Credential::File {
            path,
            allow_readable,
        } => read_password_file(path, *allow_readable),
        Credential::Env(v) => std::env::var(v)
            .map(Secret::new)
            .map_err(|_| CredentialError::Env(v.clone())),
    }
}

/// Reads a password file (one trailing newline dropped), refusing one group or others may
/// access unless allowed. The mode is the one of the file opened (fstat), so it is the
/// file's mode at this read, whatever it was at start.
pub fn read_password_file(path: &Path, allow_readable: bool) -> Result<Secret, CredentialError> {
    use std::io::Read;
    use std::os::unix::fs::PermissionsExt;
    let io = |source| CredentialError::File {
        path: path.to_path_buf(),
        source,
    };
    let mut f = std::fs::File::open(path).map_err(io)?;
    let mode = f.metadata().map_err(io)?.permissions().mode();
    check_password_file_mode(path, mode, allow_readable)?;
    let mut s = String::new();
    f.read_to_string(&mut s).map_err(io)?;
    Ok(Secret::new(s.trim_end_matches(['\n', '\r'])))
}

/// The monitor user's password of the group, on this manager.
pub fn password(local: &LocalConfig, spec: &GroupSpec) -> Result<Secret, CredentialError> {
    resolve(local, "password", &spec.password)
}

/// The `[ssh_profiles]` entry the spec names (for SSH settings stored by an older build: the
/// profile with exactly the stored key and known_hosts).
pub fn ssh_profile<'a>(local: &'a LocalConfig, ssh: &SshSpec) -> Result<&'a SshProfile, Undefined> {
    match (&ssh.legacy.key, &ssh.legacy.known_hosts) {
        (Some(key), Some(kh)) if ssh.profile.is_empty() => local.ssh_profile_like(key, kh),
        _ => local.ssh_profile(&ssh.profile),
    }
}

/// The `[hooks]` entry a spec's script key names.
pub fn hook<'a>(local: &'a LocalConfig, field: &str, name: &str) -> Result<&'a Hook, Undefined> {
    local.hook(field, name)
}

/// Every name the spec uses is defined in this manager's config. The leader checks this before
/// it accepts a group (add or update), so nothing of a spec that names what this manager does
/// not have is ever used. One message per missing name.
pub fn check_names(local: &LocalConfig, spec: &GroupSpec) -> Result<(), Vec<String>> {
    let mut errs = Vec::new();
    for (field, c) in [
        ("password", &spec.password),
        ("repl_password", &spec.repl_password),
    ] {
        if let Err(e) = credential(local, field, c) {
            errs.push(e.to_string());
        }
    }
    if let Err(e) = ssh_profile(local, &spec.ssh) {
        errs.push(e.to_string());
    }
    for (field, name) in spec.failover.hooks() {
        if let Err(e) = hook(local, field, name) {
            errs.push(e.to_string());
        }
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(errs)
    }
}

/// The files the spec's names lead to on this manager are there: the SSH profile's key and
/// known_hosts readable, each hook's program an executable file. Checked by the leader before
/// it accepts a group (after [`check_names`]), so a typo in a path shows at `group add`, not
/// at the first failover. One message per file. (Password files are read when the group's
/// servers are observed, right after.)
pub fn check_files(local: &LocalConfig, spec: &GroupSpec) -> Vec<String> {
    use std::os::unix::fs::PermissionsExt;
    let mut errs = Vec::new();
    if let Ok(p) = ssh_profile(local, &spec.ssh) {
        for (what, path) in [("key", &p.key), ("known_hosts", &p.known_hosts)] {
            if let Err(e) = std::fs::File::open(path) {
                errs.push(format!(
                    "ssh_profiles.{}.{what}: {}: {e}",
                    spec.ssh.profile,
                    path.display()
                ));
            }
        }
    }
    for (field, name) in spec.failover.hooks() {
        let Ok(h) = hook(local, field, name) else {
            continue;
        };
        match std::fs::metadata(&h.program) {
            Ok(m) if m.is_file() && m.permissions().mode() & 0o111 != 0 => {}
            Ok(_) => errs.push(format!(
                "hooks.{name} ({field}): {} is not an executable file",
                h.program.display()
            )),
            Err(e) => errs.push(format!(
                "hooks.{name} ({field}): {}: {e}",
                h.program.display()
            )),
        }
    }
    errs
}

/// How this manager logs in to one server of the group as the monitor user.
pub fn login(spec: &GroupSpec, server: &ServerSpec, password: &Secret) -> Login {
    Login {
        endpoint: Endpoint {
            host: server.host.clone(),
            port: server.port,
        },
        user: spec.user.clone(),
        password: password.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::local_config::{RawCredential, RawHook, RawSshProfile};

    fn local() -> LocalConfig {
        LocalConfig::from_raw(
            [("power_off".to_string(), RawHook::Path("/bin/true".into()))].into(),
            [
                (
                    "mha".to_string(),
                    RawCredential {
                        file: Some("/etc/mhad/mha.pw".into()),
                        env: None,
                        ..Default::default()
                    },
                ),
                (
                    "repl".to_string(),
                    RawCredential {
                        file: None,
                        env: Some("MHAD_TEST_REPL_PW_UNSET".into()),
                        ..Default::default()
                    },
                ),
            ]
            .into(),
            [(
                "default".to_string(),
                RawSshProfile {
                    key: Some("/k".into()),
                    known_hosts: Some("/kh".into()),
                    ..Default::default()
                },
            )]
            .into(),
        )
        .unwrap()
    }

    /// A spec naming only what this manager defines passes; each missing name is reported
    /// with the spec's key and the config section.
    #[test]
    fn check_names_reports_each_missing_name() {
        let local = local();
        let mut spec = crate::state::group::tests::spec("g");
        spec.failover.shutdown_script = Some("power_off".into());
        check_names(&local, &spec).unwrap();
        spec.failover.report_script = Some("send_report".into());
        spec.repl_password = CredentialRef::Name("repl2".into());
        spec.ssh.profile = "dc2".into();
        let errs = check_names(&local, &spec).unwrap_err();
        assert_eq!(errs.len(), 3, "{errs:?}");
        assert!(errs[0].starts_with("repl_password = \"repl2\" is not defined in [credentials]"));
        assert!(errs[1].starts_with("ssh_profile = \"dc2\" is not defined in [ssh_profiles]"));
        assert!(errs[2].starts_with("report_script = \"send_report\" is not defined in [hooks]"));
    }

    /// Files the names lead to are checked on the leader: a missing key or known_hosts and a
    /// hook that is not an executable file are each named; present ones pass.
    #[test]
    fn check_files_names_each_missing_file() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("id");
        std::fs::write(&key, "k").unwrap();
        let script = dir.path().join("report");
        std::fs::write(&script, "#!/bin/sh\n").unwrap();
        let local = LocalConfig::from_raw(
            [
                ("power_off".to_string(), RawHook::Path("/bin/true".into())),
                (
                    "report".to_string(),
                    RawHook::Path(script.display().to_string()),
                ),
            ]
            .into(),
            Default::default(),
            [(
                "default".to_string(),
                RawSshProfile {
                    key: Some(key),
                    known_hosts: Some(dir.path().join("known_hosts")),
                    ..Default::default()
                },
            )]
            .into(),
        )
        .unwrap();
        let mut spec = crate::state::group::tests::spec("g");
        spec.failover.shutdown_script = Some("power_off".into());
        spec.failover.report_script = Some("report".into());
        let errs = check_files(&local, &spec);
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert!(
            errs[0].starts_with("ssh_profiles.default.known_hosts: "),
            "{errs:?}"
        );
        assert!(errs[0].contains("No such file"), "{errs:?}");
        assert!(
            errs[1].contains("hooks.report (report_script)")
                && errs[1].contains("not an executable file"),
            "{errs:?}"
        );
        std::fs::write(dir.path().join("known_hosts"), "").unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert!(check_files(&local, &spec).is_empty());
    }

    /// The mode is checked at each read, on the file opened: a file that became readable
    /// by group or others after start is refused (naming it, its mode and the fix, never the
    /// content) unless its credential allows it; a private one is read.
    #[test]
    fn password_file_mode_at_each_read() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let pw = dir.path().join("mha.pw");
        std::fs::write(&pw, "s3cret\n").unwrap();
        let set = |m| std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(m)).unwrap();
        set(0o600);
        let local = LocalConfig::from_raw(
            Default::default(),
            [(
                "mha".to_string(),
                RawCredential {
                    file: Some(pw.clone()),
                    ..Default::default()
                },
            )]
            .into(),
            Default::default(),
        )
        .unwrap();
        let name = CredentialRef::Name("mha".into());
        assert_eq!(
            resolve(&local, "password", &name).unwrap().expose(),
            "s3cret"
        );
        set(0o640);
        let e = resolve(&local, "password", &name).unwrap_err();
        assert!(matches!(e, CredentialError::Readable(ref r) if r.mode == 0o640));
        let msg = e.to_string();
        assert!(
            msg.contains(&pw.display().to_string())
                && msg.contains("mode 0640")
                && msg.contains("chmod 600")
                && msg.contains("allow_readable")
                && !msg.contains("s3cret"),
            "{msg}"
        );
        assert_eq!(read_password_file(&pw, true).unwrap().expose(), "s3cret");
        // A reference stored by an older build names the file: it matches the entry whatever
        // its options, and the entry's override applies.
        let mut shared = local.clone();
        shared.credentials.insert(
            "mha".into(),
            Credential::File {
                path: pw.clone(),
                allow_readable: true,
            },
        );
        let legacy = CredentialRef::Legacy(LegacyCredential::File(pw.display().to_string()));
        assert_eq!(
            resolve(&shared, "password", &legacy).unwrap().expose(),
            "s3cret"
        );
        assert!(resolve(&local, "password", &legacy).is_err());
    }

    /// A reference stored by an older build resolves only to an entry of this manager's config
    /// with exactly that file, variable, key or command.
    #[test]
    fn legacy_references_resolve_only_to_declared_values() {
        let local = local();
        let file = |p: &str| CredentialRef::Legacy(LegacyCredential::File(p.into()));
        assert_eq!(
            credential(&local, "password", &file("/etc/mhad/mha.pw")).unwrap(),
            &Credential::file("/etc/mhad/mha.pw")
        );
        assert!(credential(&local, "password", &file("/etc/shadow")).is_err());
        let env = CredentialRef::Legacy(LegacyCredential::Env("MHAD_TEST_REPL_PW_UNSET".into()));
        assert!(credential(&local, "repl_password", &env).is_ok());
        // Resolving reads the file or variable; the error names it, never a value.
        let e = resolve(&local, "repl_password", &env).unwrap_err();
        assert_eq!(
            e.to_string(),
            "environment variable MHAD_TEST_REPL_PW_UNSET is not set"
        );
        let mut ssh = crate::state::group::tests::spec("g").ssh;
        ssh.profile = String::new();
        ssh.legacy.key = Some("/k".into());
        ssh.legacy.known_hosts = Some("/kh".into());
        assert!(ssh_profile(&local, &ssh).is_ok());
        ssh.legacy.key = Some("/root/.ssh/id_rsa".into());
        assert!(ssh_profile(&local, &ssh).is_err());
        assert!(hook(&local, "shutdown_script", "/bin/true").is_ok());
        assert!(hook(&local, "shutdown_script", "/bin/false").is_err());
    }
}
