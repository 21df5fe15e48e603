//! The group definition file read by `mhactl group add|update -f FILE` (TOML). Keys follow MHA's
//! names where MHA has one. Passwords are never in the file: `password_file` / `password_env`
//! name where each manager finds them.
//!
//! ```toml
//! name = "app1"
//! user = "mha"                       # monitor/admin user
//! password_file = "/etc/mha/mha.pw"  # or password_env = "MHA_PASSWORD"
//! repl_user = "repl"
//! repl_password_file = "/etc/mha/repl.pw"
//! ssh_user = "root"                  # default root
//! ssh_key = "/etc/mha/id_ed25519"
//! ssh_known_hosts = "/etc/mha/known_hosts"
//! vip = "10.0.0.100/24"              # optional, with vip_interface
//! vip_interface = "eth0"
//! [ping]                             # optional
//! type = "select"                    # connect | select | insert
//! interval_ms = 1000
//! replica_policy = "none_connected"  # | all_must_report | ignore
//! [failover]                         # optional
//! shutdown_script = "/etc/mha/power_off"  # MHA's: run when the old master's host is unreachable
//! last_failover_minute = 480         # anti-flap window
//! apply_timeout_ms = 60000           # relay-log apply on the new master (MHA: no limit)
//! replica_timeout_ms = 60000         # each replica reaching the new master's GTID set
//! master_binlog_dir = "/var/lib/mysql,/var/log/mysql"  # dead master's binlogs (MHA default)
//! remote_workdir = "/var/tmp"        # salvaged binlogs and diff files on the DB hosts
//! # client_bindir = "/usr/bin"       # mysqlbinlog and mysql on the DB hosts (default: PATH)
//! latest_priority = true             # MHA's selection flags
//! check_repl_delay = true
//! # master_ip_failover_script = "/etc/mha/master_ip_failover"  # MHA's scripts, unmodified
//! # report_script = "/etc/mha/send_report"
//! [[servers]]
//! name = "db1"
//! host = "10.0.0.11"
//! port = 3306
//! candidate_master = true
//! # master_binlog_dir = "/data/binlog"  # per server, overrides [failover]'s
//! ```

use serde::Deserialize;

use crate::model::ReplicaPolicy;
use crate::state::group::{
    CredentialRef, FailoverSpec, GroupSpec, PingSpec, PingType, ServerSpec, SshSpec,
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGroup {
    name: String,
    user: String,
    password_file: Option<String>,
    password_env: Option<String>,
    repl_user: String,
    repl_password_file: Option<String>,
    repl_password_env: Option<String>,
    ssh_user: Option<String>,
    ssh_key: String,
    ssh_known_hosts: String,
    ssh_port: Option<u16>,
    #[serde(default)]
    ssh_accept_unknown_host_keys: bool,
    vip: Option<String>,
    vip_interface: Option<String>,
    ping: Option<RawPing>,
    failover: Option<RawFailover>,
    servers: Vec<RawServer>,
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
    client_bindir: Option<String>,
    latest_priority: Option<bool>,
    check_repl_delay: Option<bool>,
    master_ip_failover_script: Option<String>,
    report_script: Option<String>,
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
}

fn credential(
    file: Option<String>,
    env: Option<String>,
    key: &str,
) -> Result<CredentialRef, String> {
    match (file, env) {
        (Some(f), None) => Ok(CredentialRef::File(f)),
        (None, Some(e)) => Ok(CredentialRef::Env(e)),
        (None, None) => Err(format!("{key}_file or {key}_env: one is required")),
        (Some(_), Some(_)) => Err(format!("{key}_file and {key}_env: give only one")),
    }
}

/// Parses and validates a group file. Every error names its key.
pub fn parse(text: &str) -> Result<GroupSpec, Vec<String>> {
    let raw: RawGroup = toml::from_str(text).map_err(|e| vec![e.to_string()])?;
    let password = credential(raw.password_file, raw.password_env, "password");
    let repl_password = credential(
        raw.repl_password_file,
        raw.repl_password_env,
        "repl_password",
    );
    let (password, repl_password) = match (password, repl_password) {
        (Ok(p), Ok(r)) => (p, r),
        (p, r) => return Err([p.err(), r.err()].into_iter().flatten().collect()),
    };
    let d = PingSpec::default();
    let ping = raw.ping.map_or(d.clone(), |p| PingSpec {
        ping_type: p.ping_type.unwrap_or(d.ping_type),
        interval_ms: p.interval_ms.unwrap_or(d.interval_ms),
        failure_threshold: p.failure_threshold.unwrap_or(d.failure_threshold),
        suspect_interval_ms: p.suspect_interval_ms.unwrap_or(d.suspect_interval_ms),
        replica_policy: p.replica_policy.unwrap_or(d.replica_policy),
    });
    let fd = FailoverSpec::default();
    let failover = raw.failover.map_or(fd.clone(), |f| FailoverSpec {
        shutdown_script: f.shutdown_script,
        last_failover_minute: f.last_failover_minute.unwrap_or(fd.last_failover_minute),
        apply_timeout_ms: f.apply_timeout_ms.unwrap_or(fd.apply_timeout_ms),
        replica_timeout_ms: f.replica_timeout_ms.unwrap_or(fd.replica_timeout_ms),
        master_binlog_dir: f.master_binlog_dir.unwrap_or(fd.master_binlog_dir.clone()),
        remote_workdir: f.remote_workdir.unwrap_or(fd.remote_workdir.clone()),
        client_bindir: f.client_bindir,
        latest_priority: f.latest_priority.unwrap_or(fd.latest_priority),
        check_repl_delay: f.check_repl_delay.unwrap_or(fd.check_repl_delay),
        master_ip_failover_script: f.master_ip_failover_script,
        report_script: f.report_script,
    });
    let spec = GroupSpec {
        name: raw.name,
        user: raw.user,
        password,
        repl_user: raw.repl_user,
        repl_password,
        ssh: SshSpec {
            user: raw.ssh_user.unwrap_or_else(|| "root".into()),
            key: raw.ssh_key,
            known_hosts: raw.ssh_known_hosts,
            port: raw.ssh_port.unwrap_or(22),
            accept_unknown_host_keys: raw.ssh_accept_unknown_host_keys,
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
password_file = "/etc/mha/mha.pw"
repl_user = "repl"
repl_password_env = "REPL_PW"
ssh_key = "/k"
ssh_known_hosts = "/kh"
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
        assert_eq!(s.servers[0].port, 3306);
        assert_eq!(s.servers[1].port, 3307);
        assert_eq!(s.ping.ping_type, PingType::Insert);
        assert_eq!(s.ping.replica_policy, ReplicaPolicy::Ignore);
        assert_eq!(s.ping.interval_ms, 1000);
        assert_eq!(s.repl_password, CredentialRef::Env("REPL_PW".into()));
    }

    /// MHA's recovery settings: defaults as MHA's, every key read, per-server binlog dir.
    #[test]
    fn failover_settings() {
        let d = parse(GOOD).unwrap().failover;
        assert_eq!(d.master_binlog_dir, "/var/lib/mysql,/var/log/mysql");
        assert_eq!(d.remote_workdir, "/var/tmp");
        assert!(d.latest_priority && d.check_repl_delay);
        assert_eq!(d.master_ip_failover_script, None);
        let text = GOOD.replace(
            "[[servers]]\nname = \"db1\"",
            "[failover]\nmaster_binlog_dir = \"/data/binlog\"\nremote_workdir = \"/srv/mha\"\n\
             client_bindir = \"/opt/mysql/bin\"\nlatest_priority = false\ncheck_repl_delay = false\n\
             master_ip_failover_script = \"/etc/mha/ipf --vip=10.0.0.9/24\"\n\
             report_script = \"/etc/mha/report\"\n\
             [[servers]]\nname = \"db1\"\nmaster_binlog_dir = \"/db1/binlog\"",
        );
        let s = parse(&text).unwrap();
        let f = &s.failover;
        assert_eq!(f.master_binlog_dir, "/data/binlog");
        assert_eq!(f.remote_workdir, "/srv/mha");
        assert_eq!(f.client_bindir.as_deref(), Some("/opt/mysql/bin"));
        assert!(!f.latest_priority && !f.check_repl_delay);
        assert_eq!(
            f.master_ip_failover_script.as_deref(),
            Some("/etc/mha/ipf --vip=10.0.0.9/24")
        );
        assert_eq!(f.report_script.as_deref(), Some("/etc/mha/report"));
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
                GOOD.replace("password_file = \"/etc/mha/mha.pw\"\n", ""),
                "password_file or password_env",
            ),
            (
                GOOD.replace(
                    "repl_password_env = \"REPL_PW\"",
                    "repl_password_env = \"X\"\nrepl_password_file = \"/f\"",
                ),
                "give only one",
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

    /// The lab's generated file is a valid group file (its shape is fixed by deploy/lab/lab).
    #[test]
    fn lab_group_file_shape_parses() {
        let text = r#"
name = "lab"
user = "mha"
password_file = "/var/tmp/mhalab/secrets/mha.pw"
repl_user = "repl"
repl_password_file = "/var/tmp/mhalab/secrets/repl.pw"
ssh_user = "root"
ssh_key = "/var/tmp/mhalab/ssh/id_ed25519"
ssh_known_hosts = "/var/tmp/mhalab/ssh/known_hosts"
vip = "10.77.0.100/24"
vip_interface = "eth0"

[[servers]]
name = "db1"
host = "10.77.0.11"
port = 3306
candidate_master = true

[[servers]]
name = "db2"
host = "10.77.0.12"
port = 3306
candidate_master = true
"#;
        assert_eq!(parse(text).unwrap().servers.len(), 2);
    }
}
