//! The local sections: parsing, validation, lookups, modes of password files.
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
