//! The group definition file read by `mhactl group add|update -f FILE` (TOML). Keys follow MHA's
//! names where MHA has one. Nothing in it is a path on the manager or a command (invariant 7):
//! passwords, hook scripts and SSH keys are NAMES of entries in each mhad's own config file
//! (`[credentials]`, `[hooks]`, `[ssh_profiles]`; src/local_config.rs), which every manager
//! resolves for itself. The leader refuses a group naming an entry its config lacks. Directories
//! on the DB hosts (master_binlog_dir, remote_workdir) are given here.
//!
//! ```toml
//! name = "app1"
//! user = "mha"                       # monitor/admin user
//! password = "mha"                   # a name in mhad's [credentials]
//! repl_user = "repl"
//! repl_password = "repl"             # a name in mhad's [credentials]
//! ssh_user = "root"                  # default root
//! ssh_profile = "default"            # a name in mhad's [ssh_profiles] (default "default")
//! vip = "10.0.0.100/24"              # optional, with vip_interface
//! vip_interface = "eth0"
//! [ping]                             # optional
//! type = "select"                    # connect | select | insert
//! interval_ms = 1000
//! replica_policy = "none_connected"  # | all_must_report | ignore
//! [failover]                         # optional
//! shutdown_script = "power_off"      # MHA's; a name in mhad's [hooks]: run when the old
//!                                    # master's host is unreachable
//! last_failover_minute = 480         # anti-flap window
//! apply_timeout_ms = 60000           # relay-log apply on the new master (MHA: no limit)
//! replica_timeout_ms = 60000         # each replica reaching the new master's GTID set
//! master_binlog_dir = "/var/lib/mysql,/var/log/mysql"  # dead master's binlogs (MHA default)
//! remote_workdir = "/var/tmp"        # salvaged binlogs and diff files on the DB hosts
//! latest_priority = true             # MHA's selection flags
//! check_repl_delay = true
//! # master_ip_failover_script = "vip"  # MHA's scripts (names in [hooks]), MHA's arguments
//! # master_ip_online_change_script = "online"  # mhactl switchover: --command=stop|start
//! # report_script = "send_report"
//! purge_relay_logs_every_m = 0       # file/position: replicas' applied relay logs purged every N min (0: never)
//! auto_rejoin = false                # the replaced master back as a replica when it returns clean
//! check_repl_filter = true           # MHA's: same replication/binlog filters everywhere
//! [[servers]]
//! name = "db1"
//! host = "10.0.0.11"
//! port = 3306
//! candidate_master = true
//! # master_binlog_dir = "/data/binlog"  # per server, overrides [failover]'s
//! # ignore_fail = true                   # MHA's: left out of a failover it is not ready for
//! ```

use serde::Deserialize;

use crate::model::ReplicaPolicy;
use crate::state::group::{
    CredentialRef, FailoverSpec, GroupSpec, LegacySsh, PingSpec, PingType, ServerSpec, SshSpec,
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGroup {
    name: String,
    user: String,
    password: Option<String>,
    repl_user: String,
    repl_password: Option<String>,
    ssh_user: Option<String>,
    ssh_port: Option<u16>,
    ssh_profile: Option<String>,
    vip: Option<String>,
    vip_interface: Option<String>,
    ping: Option<RawPing>,
    failover: Option<RawFailover>,
    servers: Vec<RawServer>,
    // Keys of earlier versions, refused with a pointer to where they went.
    password_file: Option<toml::Value>,
    password_env: Option<toml::Value>,
    repl_password_file: Option<toml::Value>,
    repl_password_env: Option<toml::Value>,
    ssh_key: Option<toml::Value>,
    ssh_known_hosts: Option<toml::Value>,
    ssh_accept_unknown_host_keys: Option<toml::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFailover {
    shutdown_script: Option<String>,
    last_failover_minute: Option<u64>,
    apply_timeout_ms: Option<u64>,
    replica_timeout_ms: Option<u64>,
    master_binlog_dir: Option<String>,
    remote_workdir: Option<String>,
    latest_priority: Option<bool>,
    check_repl_delay: Option<bool>,
    master_ip_failover_script: Option<String>,
    master_ip_online_change_script: Option<String>,
    report_script: Option<String>,
    purge_relay_logs_every_m: Option<u64>,
    auto_rejoin: Option<bool>,
    check_repl_filter: Option<bool>,
    client_bindir: Option<toml::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPing {
    #[serde(rename = "type")]
    ping_type: Option<PingType>,
    interval_ms: Option<u64>,
    failure_threshold: Option<u32>,
    suspect_interval_ms: Option<u64>,
    replica_policy: Option<ReplicaPolicy>,
    replica_heartbeat_ms: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServer {
    name: String,
    host: String,
    port: Option<u16>,
    #[serde(default)]
    candidate_master: bool,
    #[serde(default)]
    no_master: bool,
    ssh_host: Option<String>,
    ssh_port: Option<u16>,
    master_binlog_dir: Option<String>,
    #[serde(default)]
    ignore_fail: bool,
}

/// The keys earlier versions took, each with where its setting lives now.
fn moved_keys(raw: &RawGroup) -> Vec<String> {
    let cred = "is now a name: define { file = ... } or { env = ... } in each mhad's \
                [credentials] and write";
    let ssh = "moved to an [ssh_profiles.NAME] entry of each mhad's config file (ssh_profile \
               names it, default \"default\")";
    [
        (
            "password_file",
            raw.password_file.is_some(),
            format!("{cred} password = \"NAME\""),
        ),
        (
            "password_env",
            raw.password_env.is_some(),
            format!("{cred} password = \"NAME\""),
        ),
        (
            "repl_password_file",
            raw.repl_password_file.is_some(),
            format!("{cred} repl_password = \"NAME\""),
        ),
        (
            "repl_password_env",
            raw.repl_password_env.is_some(),
            format!("{cred} repl_password = \"NAME\""),
        ),
        ("ssh_key", raw.ssh_key.is_some(), ssh.to_string()),
        (
            "ssh_known_hosts",
            raw.ssh_known_hosts.is_some(),
            ssh.to_string(),
        ),
        (
            "ssh_accept_unknown_host_keys",
            raw.ssh_accept_unknown_host_keys.is_some(),
            ssh.to_string(),
        ),
        (
            "failover.client_bindir",
            raw.failover
                .as_ref()
                .is_some_and(|f| f.client_bindir.is_some()),
            ssh.to_string(),
        ),
    ]
    .into_iter()
    .filter(|(_, set, _)| *set)
    .map(|(k, _, m)| format!("{k}: no longer in the group file: {m}"))
    .collect()
}

/// Parses and validates a group file. Every error names its key.
pub fn parse(text: &str) -> Result<GroupSpec, Vec<String>> {
    let raw: RawGroup = toml::from_str(text).map_err(|e| vec![e.to_string()])?;
    let mut errs = moved_keys(&raw);
    for (key, v) in [
        ("password", &raw.password),
        ("repl_password", &raw.repl_password),
    ] {
        if v.is_none() {
            errs.push(format!(
                "{key}: required (the name of an entry of each mhad's [credentials])"
            ));
        }
    }
    if !errs.is_empty() {
        return Err(errs);
    }
    let d = PingSpec::default();
    let ping = raw.ping.map_or(d.clone(), |p| PingSpec {
        ping_type: p.ping_type.unwrap_or(d.ping_type),
        interval_ms: p.interval_ms.unwrap_or(d.interval_ms),
        failure_threshold: p.failure_threshold.unwrap_or(d.failure_threshold),
        suspect_interval_ms: p.suspect_interval_ms.unwrap_or(d.suspect_interval_ms),
        replica_policy: p.replica_policy.unwrap_or(d.replica_policy),
        replica_heartbeat_ms: p.replica_heartbeat_ms.unwrap_or(d.replica_heartbeat_ms),
    });
    let fd = FailoverSpec::default();
    let failover = raw.failover.map_or(fd.clone(), |f| FailoverSpec {
        shutdown_script: f.shutdown_script,
        last_failover_minute: f.last_failover_minute.unwrap_or(fd.last_failover_minute),
        apply_timeout_ms: f.apply_timeout_ms.unwrap_or(fd.apply_timeout_ms),
        replica_timeout_ms: f.replica_timeout_ms.unwrap_or(fd.replica_timeout_ms),
        master_binlog_dir: f.master_binlog_dir.unwrap_or(fd.master_binlog_dir.clone()),
        remote_workdir: f.remote_workdir.unwrap_or(fd.remote_workdir.clone()),
        latest_priority: f.latest_priority.unwrap_or(fd.latest_priority),
        check_repl_delay: f.check_repl_delay.unwrap_or(fd.check_repl_delay),
        master_ip_failover_script: f.master_ip_failover_script,
        master_ip_online_change_script: f.master_ip_online_change_script,
        report_script: f.report_script,
        purge_relay_logs_every_m: f
            .purge_relay_logs_every_m
            .unwrap_or(fd.purge_relay_logs_every_m),
        auto_rejoin: f.auto_rejoin.unwrap_or(fd.auto_rejoin),
        check_repl_filter: f.check_repl_filter.unwrap_or(fd.check_repl_filter),
    });
    let spec = GroupSpec {
        name: raw.name,
        user: raw.user,
        password: CredentialRef::Name(raw.password.unwrap_or_default()),
        repl_user: raw.repl_user,
        repl_password: CredentialRef::Name(raw.repl_password.unwrap_or_default()),
        ssh: SshSpec {
            user: raw.ssh_user.unwrap_or_else(|| "root".into()),
            port: raw.ssh_port.unwrap_or(22),
            profile: raw.ssh_profile.unwrap_or_else(|| "default".into()),
            legacy: LegacySsh::default(),
        },
        vip: raw.vip,
        vip_interface: raw.vip_interface,
        ping,
        servers: raw
            .servers
            .into_iter()
            .map(|s| ServerSpec {
                name: s.name,
                host: s.host,
                port: s.port.unwrap_or(3306),
                candidate_master: s.candidate_master,
                no_master: s.no_master,
                ssh_host: s.ssh_host,
                ssh_port: s.ssh_port,
                master_binlog_dir: s.master_binlog_dir,
                ignore_fail: s.ignore_fail,
            })
            .collect(),
        failover,
    };
    spec.validate()?;
    Ok(spec)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
name = "app1"
user = "mha"
password = "mha"
repl_user = "repl"
repl_password = "repl"
vip = "10.0.0.100/24"
vip_interface = "eth0"
[ping]
type = "insert"
replica_policy = "ignore"
[[servers]]
name = "db1"
host = "10.0.0.11"
candidate_master = true
[[servers]]
name = "db2"
host = "10.0.0.12"
port = 3307
"#;

    #[test]
    fn parses_with_defaults() {
        let s = parse(GOOD).unwrap();
        assert_eq!(s.ssh.user, "root");
        assert_eq!(s.ssh.port, 22);
        assert_eq!(s.ssh.profile, "default");
        assert_eq!(s.servers[0].port, 3306);
        assert_eq!(s.servers[1].port, 3307);
        assert_eq!(s.ping.ping_type, PingType::Insert);
        assert_eq!(s.ping.replica_policy, ReplicaPolicy::Ignore);
        assert_eq!(s.ping.interval_ms, 1000);
        assert_eq!(s.password, CredentialRef::Name("mha".into()));
        assert_eq!(s.repl_password, CredentialRef::Name("repl".into()));
    }

    /// MHA's recovery settings: defaults as MHA's, every key read, per-server binlog dir; the
    /// scripts are hook names.
    #[test]
    fn failover_settings() {
        let d = parse(GOOD).unwrap().failover;
        assert_eq!(d.master_binlog_dir, "/var/lib/mysql,/var/log/mysql");
        assert_eq!(d.remote_workdir, "/var/tmp");
        assert!(d.latest_priority && d.check_repl_delay);
        assert_eq!(d.master_ip_failover_script, None);
        let text = GOOD
            .replace("[ping]", "ssh_profile = \"dc2\"\nssh_port = 2222\n[ping]")
            .replace(
                "[[servers]]\nname = \"db1\"",
                "[failover]\nmaster_binlog_dir = \"/data/binlog\"\nremote_workdir = \"/srv/mha\"\n\
                 latest_priority = false\ncheck_repl_delay = false\n\
                 shutdown_script = \"power_off\"\n\
                 master_ip_failover_script = \"vip\"\nreport_script = \"report\"\n\
                 [[servers]]\nname = \"db1\"\nmaster_binlog_dir = \"/db1/binlog\"",
            );
        let s = parse(&text).unwrap();
        assert_eq!((s.ssh.profile.as_str(), s.ssh.port), ("dc2", 2222));
        let f = &s.failover;
        assert_eq!(f.master_binlog_dir, "/data/binlog");
        assert_eq!(f.remote_workdir, "/srv/mha");
        assert!(!f.latest_priority && !f.check_repl_delay);
        assert_eq!(f.shutdown_script.as_deref(), Some("power_off"));
        assert_eq!(f.master_ip_failover_script.as_deref(), Some("vip"));
        assert_eq!(f.report_script.as_deref(), Some("report"));
        assert_eq!(
            s.servers[0].master_binlog_dir.as_deref(),
            Some("/db1/binlog")
        );
        assert_eq!(s.servers[1].master_binlog_dir, None);
    }

    #[test]
    fn errors_name_the_key() {
        let cases = [
            (
                GOOD.replace("password = \"mha\"\n", ""),
                "password: required (the name of an entry of each mhad's [credentials])",
            ),
            (
                GOOD.replace("user = \"mha\"", "user = \"mha\"\nbogus = 1"),
                "bogus",
            ),
            (GOOD.replace("port = 3307", "port = \"x\""), "port"),
            (
                GOOD.replace("host = \"10.0.0.12\"", "host = \"10.0.0.11\"\nport = 3306")
                    .replace("port = 3307\n", ""),
                "duplicate address",
            ),
            (GOOD.replace("type = \"insert\"", "type = \"tcp\""), "type"),
        ];
        for (text, needle) in cases {
            let errs = parse(&text).unwrap_err().join("\n");
            assert!(errs.contains(needle), "expected {needle:?} in: {errs}");
        }
    }

    /// A path or a command where a name belongs is refused with the key and the section of
    /// mhad's config that holds it; so is every key of the earlier path-carrying format.
    #[test]
    fn paths_are_refused() {
        let cases = [
            (
                GOOD.replace(
                    "[ping]",
                    "[failover]\nshutdown_script = \"/etc/mha/power_off\"\n[ping]",
                ),
                "shutdown_script: \"/etc/mha/power_off\" is a path or a command line: \
                 shutdown_script names an entry of the [hooks] section of each mhad's config file",
            ),
            (
                GOOD.replace(
                    "[ping]",
                    "[failover]\nmaster_ip_failover_script = \"/bin/sh -c id\"\n[ping]",
                ),
                "master_ip_failover_script: \"/bin/sh -c id\" is a path or a command line",
            ),
            (
                GOOD.replace("password = \"mha\"", "password = \"/etc/mha/mha.pw\""),
                "password: \"/etc/mha/mha.pw\" is a path or a command line: password names an \
                 entry of the [credentials] section",
            ),
            (
                GOOD.replace("[ping]", "ssh_profile = \"../k\"\n[ping]"),
                "ssh_profile: \"../k\" is a path",
            ),
            (
                GOOD.replace("password = \"mha\"", "password_file = \"/etc/mha/mha.pw\""),
                "password_file: no longer in the group file: is now a name: define { file = ... }",
            ),
            (
                GOOD.replace(
                    "[ping]",
                    "ssh_key = \"/k\"\nssh_known_hosts = \"/kh\"\n[ping]",
                ),
                "ssh_known_hosts: no longer in the group file: moved to an [ssh_profiles.NAME]",
            ),
            (
                GOOD.replace("[ping]", "[failover]\nclient_bindir = \"/usr/bin\"\n[ping]"),
                "failover.client_bindir: no longer in the group file",
            ),
        ];
        for (text, needle) in cases {
            let errs = parse(&text).unwrap_err().join("\n");
            assert!(errs.contains(needle), "expected {needle:?} in: {errs}");
        }
    }

    /// The lab's generated file is a valid group file (its shape is fixed by deploy/lab/lab).
    #[test]
    fn lab_group_file_shape_parses() {
        let text = r#"
name = "lab"
user = "mha"
password = "mha"
repl_user = "repl"
repl_password = "repl"
ssh_user = "root"
ssh_profile = "default"
vip = "10.77.0.100/24"
vip_interface = "eth0"

[failover]
shutdown_script = "power_off"

[[servers]]
name = "db1"
host = "10.77.0.11"
port = 3306
candidate_master = true
master_binlog_dir = "/var/tmp/mhalab/db1/log"

[[servers]]
name = "db2"
host = "10.77.0.12"
port = 3306
candidate_master = true
"#;
        let s = parse(text).unwrap();
        assert_eq!(s.servers.len(), 2);
        assert_eq!(s.failover.shutdown_script.as_deref(), Some("power_off"));
    }
}
