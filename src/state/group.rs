//! Replication groups in the replicated state: what the operator declared ([`GroupSpec`]) and
//! the topology the leader discovered when it accepted it ([`Topology`]). Secrets are never
//! stored, and neither is anything a manager would read or run (invariant 7): credentials, hooks
//! and SSH settings are NAMES that each manager resolves against its own config file
//! (src/local_config.rs). Specs stored by a build before local configs still decode; their
//! paths are honoured only where a manager's config declares exactly that path.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

pub use super::ping::{PingSpec, PingType};
use crate::model::{Health, Verdict};

/// Which password: the name of an entry of each manager's `[credentials]` (stored as a JSON
/// string).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum CredentialRef {
    Name(String),
    /// Stored by a build before local credentials (`{"file": path}` / `{"env": var}`): kept as
    /// it was (so it is written back the same way) and resolved only to a `[credentials]` entry
    /// of this manager that reads exactly that file or variable. Never accepted from the API.
    Legacy(LegacyCredential),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LegacyCredential {
    File(String),
    Env(String),
}

impl CredentialRef {
    /// The name (for a legacy reference: its path or variable, which is what the API shows).
    pub fn name(&self) -> &str {
        match self {
            CredentialRef::Name(n) => n,
            CredentialRef::Legacy(LegacyCredential::File(p)) => p,
            CredentialRef::Legacy(LegacyCredential::Env(v)) => v,
        }
    }
}

impl std::fmt::Display for CredentialRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CredentialRef::Name(n) => write!(f, "credential {n}"),
            CredentialRef::Legacy(LegacyCredential::File(p)) => write!(f, "file {p}"),
            CredentialRef::Legacy(LegacyCredential::Env(v)) => write!(f, "env ${v}"),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SshSpec {
    pub user: String,
    pub port: u16,
    /// The entry of each manager's `[ssh_profiles]` (key, known_hosts, accept_unknown_host_keys,
    /// client_bindir). Empty only in a spec stored by a build before local profiles.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub profile: String,
    /// What such a build stored instead; never set by the group file or the API.
    #[serde(flatten, default)]
    pub legacy: LegacySsh,
}

/// SSH paths stored by a build before local profiles: kept as they were (so they are written
/// back the same way) and used only to find this manager's `[ssh_profiles]` entry with exactly
/// this key and known_hosts.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LegacySsh {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub known_hosts: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accept_unknown_host_keys: Option<bool>,
}

impl LegacySsh {
    pub fn is_empty(&self) -> bool {
        *self == LegacySsh::default()
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerSpec {
    /// Short name (db1); unique in the group.
    pub name: String,
    pub host: String,
    pub port: u16,
    pub candidate_master: bool,
    pub no_master: bool,
    /// SSH address when it differs from `host`.
    pub ssh_host: Option<String>,
    pub ssh_port: Option<u16>,
    /// Where this server's binlog files are when it is a dead master (MHA's master_binlog_dir;
    /// comma-separated, searched in order). Default: the group's.
    #[serde(default)]
    pub master_binlog_dir: Option<String>,
    /// MHA's ignore_fail: a replica that is unreachable or does not replicate from the dead
    /// master when a failover begins is left out of it (reported) instead of stopping it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ignore_fail: bool,
}

impl ServerSpec {
    pub fn endpoint(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    pub fn ssh_target(&self, ssh: &SshSpec) -> (String, u16) {
        (
            self.ssh_host.clone().unwrap_or_else(|| self.host.clone()),
            self.ssh_port.unwrap_or(ssh.port),
        )
    }
}

/// A manager whose build knows [`ServerSpec::ignore_fail`] registers this feature. A group
/// that sets it is taken only once every member has: an older build would drop the flag (and
/// stop the failover the flag lets go on).
pub const FEATURE_IGNORE_FAIL: &str = "ignore-fail";

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupSpec {
    pub name: String,
    pub user: String,
    pub password: CredentialRef,
    pub repl_user: String,
    pub repl_password: CredentialRef,
    pub ssh: SshSpec,
    /// Virtual IP with prefix (10.0.0.100/24), moved to the master on failover.
    pub vip: Option<String>,
    pub vip_interface: Option<String>,
    pub ping: PingSpec,
    pub servers: Vec<ServerSpec>,
    #[serde(default)]
    pub failover: FailoverSpec,
}

/// Failover settings. MHA's names where MHA has one. The three scripts are names of hooks in
/// each manager's `[hooks]`; the directories are on the DB hosts, not on the manager.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct FailoverSpec {
    /// MHA's shutdown_script (a hook name): run on the manager with `--command=stop --host=
    /// --ip= --port=` when the old master's host cannot be reached over SSH (power it off:
    /// STONITH). Exit 0 means powered off.
    pub shutdown_script: Option<String>,
    /// MHA's last_failover_minute: no second automatic failover of the group within it.
    pub last_failover_minute: u64,
    /// How long the new master may take to apply its relay logs (MHA waits forever).
    pub apply_timeout_ms: u64,
    /// How long each repointed replica may take to reach the journaled GTID set.
    pub replica_timeout_ms: u64,
    /// MHA's master_binlog_dir: where a dead master's binlog files are (comma-separated).
    pub master_binlog_dir: String,
    /// MHA's remote_workdir: where salvaged binlogs and diff files are placed on DB hosts.
    pub remote_workdir: String,
    /// MHA's latest_priority: prefer a latest replica over the first candidate.
    pub latest_priority: bool,
    /// MHA's check_repl_delay: exclude a replica too far behind (100 MB / older file).
    pub check_repl_delay: bool,
    /// MHA's master_ip_failover_script, a hook name (--command=stop|stopssh|start|status, MHA's
    /// arguments).
    pub master_ip_failover_script: Option<String>,
    /// MHA's master_ip_online_change_script, a hook name (online switchover:
    /// --command=stop|start, MHA's arguments; passwords in the environment).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub master_ip_online_change_script: Option<String>,
    /// MHA's report_script, a hook name: run after a failover with its result.
    pub report_script: Option<String>,
    /// File/position groups (whose replicas keep relay_log_purge=0 for the relay-log diffs):
    /// how often the leader purges each replica's applied relay logs, as MHA's
    /// purge_relay_logs does from cron (runtime/relay_purge.rs). 0 (the default): never.
    pub purge_relay_logs_every_m: u64,
    /// The master a failover or switchover replaced is rejoined as a replica by the leader
    /// when it comes back holding nothing the new master lacks (runtime/rejoin/auto.rs); an
    /// old master with errant transactions is left out and shown. Off by default.
    pub auto_rejoin: bool,
    /// MHA's check_repl_filter: every replica must have the same replication filtering rules,
    /// every binlog the same binlog filters (engine::repl_filter), or the group is refused and
    /// no failover or switchover starts. On by default, as MHA.
    pub check_repl_filter: bool,
}

impl Default for FailoverSpec {
    fn default() -> Self {
        FailoverSpec {
            shutdown_script: None,
            last_failover_minute: 480,
            apply_timeout_ms: 60_000,
            replica_timeout_ms: 60_000,
            master_binlog_dir: "/var/lib/mysql,/var/log/mysql".into(),
            remote_workdir: "/var/tmp".into(),
            latest_priority: true,
            check_repl_delay: true,
            master_ip_failover_script: None,
            master_ip_online_change_script: None,
            report_script: None,
            purge_relay_logs_every_m: 0,
            auto_rejoin: false,
            check_repl_filter: true,
        }
    }
}

impl FailoverSpec {
    pub fn anti_flap_ms(&self) -> u64 {
        self.last_failover_minute.saturating_mul(60_000)
    }

    /// The hooks the spec names, with their keys.
    pub fn hooks(&self) -> impl Iterator<Item = (&'static str, &str)> {
        [
            ("shutdown_script", &self.shutdown_script),
            ("master_ip_failover_script", &self.master_ip_failover_script),
            (
                "master_ip_online_change_script",
                &self.master_ip_online_change_script,
            ),
            ("report_script", &self.report_script),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.as_deref().map(|v| (k, v)))
    }
}

/// A name field of the spec (hook, credential, ssh profile) must be a plain name: the manager
/// looks it up in its own config file, so a path or a command line is refused with a hint.
fn check_local_name(key: &str, section: &str, v: &str, errs: &mut Vec<String>) {
    if crate::local_config::is_name(v) {
        return;
    }
    let what = if v.contains('/') || v.contains(char::is_whitespace) {
        "a path or a command line"
    } else {
        "not a name"
    };
    errs.push(format!(
        "{key}: {v:?} is {what}: {key} names an entry of the {section} section of each mhad's \
         config file (letters, digits, '-', '_', '.'); define it there and give its name here"
    ));
}

impl GroupSpec {
    /// Structural checks that need no server. Every message names the field.
    pub fn validate(&self) -> Result<(), Vec<String>> {
        let mut errs = Vec::new();
        let ident = |s: &str| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        };
        if !ident(&self.name) {
            errs.push(format!(
                "name: {:?} must be non-empty letters, digits, '-', '_' or '.'",
                self.name
            ));
        }
        if self.user.is_empty() {
            errs.push("user: required".into());
        }
        if self.repl_user.is_empty() {
            errs.push("repl_user: required".into());
        }
        if self.servers.len() < 2 {
            errs.push(format!(
                "servers: a group needs at least 2 servers, got {}",
                self.servers.len()
            ));
        }
        let mut names = BTreeSet::new();
        let mut endpoints = BTreeSet::new();
        for (i, s) in self.servers.iter().enumerate() {
            if !ident(&s.name) {
                errs.push(format!(
                    "servers[{i}].name: {:?} is not a valid name",
                    s.name
                ));
            }
            if !names.insert(s.name.clone()) {
                errs.push(format!("servers[{i}].name: duplicate name {}", s.name));
            }
            if s.host.is_empty() || s.port == 0 {
                errs.push(format!(
                    "servers[{i}]: host and a non-zero port are required"
                ));
            }
            if !endpoints.insert(s.endpoint()) {
                errs.push(format!("servers[{i}]: duplicate address {}", s.endpoint()));
            }
            if s.candidate_master && s.no_master {
                errs.push(format!(
                    "servers[{i}] ({}): candidate_master and no_master are exclusive",
                    s.name
                ));
            }
        }
        if self.vip.is_some() != self.vip_interface.is_some() {
            errs.push("vip / vip_interface: give both or neither".into());
        }
        if let Some(v) = &self.vip {
            let ok = v.split_once('/').is_some_and(|(ip, p)| {
                ip.parse::<std::net::IpAddr>().is_ok() && p.parse::<u8>().is_ok_and(|p| p <= 128)
            });
            if !ok {
                errs.push(format!("vip: {v:?} must be ip/prefix, e.g. 10.0.0.100/24"));
            }
        }
        for (key, c) in [
            ("password", &self.password),
            ("repl_password", &self.repl_password),
        ] {
            match c {
                CredentialRef::Name(n) => check_local_name(key, "[credentials]", n, &mut errs),
                CredentialRef::Legacy(_) => errs.push(format!(
                    "{key}: a file or variable is no longer given here: name an entry of each \
                     mhad's [credentials]"
                )),
            }
        }
        check_local_name(
            "ssh_profile",
            "[ssh_profiles]",
            &self.ssh.profile,
            &mut errs,
        );
        if !self.ssh.legacy.is_empty() {
            errs.push(
                "ssh: key, known_hosts and accept_unknown_host_keys are no longer given here: \
                 they belong to an [ssh_profiles] entry of each mhad's config file"
                    .into(),
            );
        }
        for (key, v) in self.failover.hooks() {
            check_local_name(key, "[hooks]", v, &mut errs);
        }
        if self.ping.interval_ms == 0
            || self.ping.failure_threshold == 0
            || self.ping.suspect_interval_ms == 0
        {
            errs.push(
                "ping: interval_ms, failure_threshold and suspect_interval_ms must be > 0".into(),
            );
        }
        // The servers take at most 4294967 s; an hour is already no use for detection.
        if self.ping.replica_heartbeat_ms > 3_600_000 {
            errs.push("ping: replica_heartbeat_ms must be at most 3600000 (0: leave as is)".into());
        }
        if errs.is_empty() {
            Ok(())
        } else {
            Err(errs)
        }
    }

    pub fn server(&self, name: &str) -> Option<&ServerSpec> {
        self.servers.iter().find(|s| s.name == name)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Master,
    Replica,
}

/// One server as discovered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiscoveredServer {
    pub name: String,
    pub role: Role,
    pub server_id: u32,
    pub version: String,
    pub read_only: bool,
    pub log_bin: bool,
    /// For replicas: the server name of its source.
    pub replicates_from: Option<String>,
}

/// How replication is positioned in the group.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReplicationMode {
    /// MariaDB GTID (master_use_gtid=slave_pos / current_pos).
    MariadbGtid,
    /// MySQL GTID with auto-position.
    MysqlGtid,
    /// Binary log file and position.
    FilePos,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Topology {
    pub master: String,
    pub servers: BTreeMap<String, DiscoveredServer>,
    pub mode: ReplicationMode,
    pub semisync: bool,
    /// MHA-style warnings found at discovery (relay_log_purge=1, ...).
    pub warnings: Vec<String>,
    pub discovered_at_ms: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Group {
    pub spec: GroupSpec,
    pub topology: Topology,
    pub created_at_ms: u64,
    pub updated_at_ms: u64,
    #[serde(default)]
    pub health: GroupHealth,
}

impl Group {
    /// A completed failover: `new_master` is the master, every other surviving server
    /// replicates from it, the old master leaves the topology (it stays in the spec, so an
    /// operator can bring it back with `group update`), and so do the `ignore_fail` servers
    /// phase 1 left out (nothing repointed them), and monitoring starts afresh.
    pub fn promoted(
        &mut self,
        old_master: &str,
        new_master: &str,
        left_out: &[String],
        at_ms: u64,
    ) {
        self.topology.master = new_master.to_string();
        self.topology.servers.remove(old_master);
        for name in left_out {
            self.topology.servers.remove(name);
        }
        for (name, s) in self.topology.servers.iter_mut() {
            if name == new_master {
                s.role = Role::Master;
                s.replicates_from = None;
            } else {
                s.role = Role::Replica;
                s.replicates_from = Some(new_master.to_string());
            }
        }
        self.updated_at_ms = at_ms;
        self.health.state = Health::Alive;
    }
}

/// How many verdicts a group keeps (newest last).
pub const VERDICT_HISTORY: usize = 20;

/// The master's health as committed by the leader's detector: the open suspicion round, if
/// any, and the verdicts with their evidence. A new leader restores its detector from this.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct GroupHealth {
    pub state: Health,
    /// The next unused round id (round ids never repeat within a group).
    pub next_round: u64,
    pub verdicts: Vec<Verdict>,
}

impl Default for GroupHealth {
    fn default() -> Self {
        GroupHealth {
            state: Health::Alive,
            next_round: 1,
            verdicts: Vec::new(),
        }
    }
}

impl GroupHealth {
    /// masterha_check_status's code for this state: 0 PING_OK, 20 PING_FAILING, 21 PING_FAILED.
    pub fn status_code(&self) -> (u8, &'static str) {
        match self.state {
            Health::Alive => (0, "PING_OK"),
            Health::Suspect { .. } | Health::UnreachableButAlive { .. } => (20, "PING_FAILING"),
            Health::Dead { .. } => (21, "PING_FAILED"),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Adding group `name` ([`spec`]) with master db1 and an empty discovered topology, in a
    /// GTID group without semi-sync: the state tests' starting point.
    pub fn put(name: &str) -> crate::state::Cmd {
        crate::state::Cmd::PutGroup {
            spec: Box::new(spec(name)),
            topology: Box::new(Topology {
                master: "db1".into(),
                servers: Default::default(),
                mode: ReplicationMode::MariadbGtid,
                semisync: false,
                warnings: vec![],
                discovered_at_ms: 0,
            }),
            replace: false,
            exclusive: false,
        }
    }

    pub fn spec(name: &str) -> GroupSpec {
        GroupSpec {
            name: name.into(),
            user: "mha".into(),
            password: CredentialRef::Name("mha".into()),
            repl_user: "repl".into(),
            repl_password: CredentialRef::Name("repl".into()),
            ssh: SshSpec {
                user: "root".into(),
                port: 22,
                profile: "default".into(),
                legacy: LegacySsh::default(),
            },
            vip: Some("10.0.0.100/24".into()),
            vip_interface: Some("eth0".into()),
            ping: PingSpec::default(),
            servers: (1..=3)
                .map(|i| ServerSpec {
                    name: format!("db{i}"),
                    host: format!("10.0.0.{i}"),
                    port: 3306,
                    candidate_master: i < 3,
                    no_master: i == 3,
                    ssh_host: None,
                    ssh_port: None,
                    master_binlog_dir: None,
                    ignore_fail: false,
                })
                .collect(),
            failover: FailoverSpec::default(),
        }
    }

    #[test]
    fn valid_spec_passes() {
        spec("g1").validate().unwrap();
    }

    #[test]
    fn invalid_specs_name_the_field() {
        let mut s = spec("bad name");
        s.servers[1].name = "db1".into();
        s.servers[2].host = "10.0.0.1".into();
        s.servers[2].name = "db3".into();
        s.vip = Some("10.0.0.100".into());
        s.servers[0].no_master = true;
        let errs = s.validate().unwrap_err().join("\n");
        for needle in [
            "name:",
            "duplicate name db1",
            "duplicate address 10.0.0.1:3306",
            "vip:",
            "exclusive",
        ] {
            assert!(errs.contains(needle), "missing {needle:?} in:\n{errs}");
        }
    }

    /// Hooks, credentials and the SSH profile are names: a path or a command line is refused
    /// with the key and the config section to use instead.
    #[test]
    fn paths_and_commands_are_refused() {
        let mut s = spec("g1");
        s.failover.shutdown_script = Some("/bin/sh -c id".into());
        s.failover.report_script = Some("/usr/local/bin/report".into());
        s.failover.master_ip_failover_script = Some("vip".into());
        s.password = CredentialRef::Name("/etc/mha/mha.pw".into());
        s.repl_password = CredentialRef::Legacy(LegacyCredential::Env("PW".into()));
        s.ssh.profile = "".into();
        s.ssh.legacy.key = Some("/root/.ssh/id_rsa".into());
        let errs = s.validate().unwrap_err();
        let all = errs.join("\n");
        for needle in [
            "shutdown_script: \"/bin/sh -c id\" is a path or a command line: shutdown_script names \
             an entry of the [hooks] section",
            "report_script: \"/usr/local/bin/report\" is a path",
            "password: \"/etc/mha/mha.pw\" is a path or a command line: password names an entry \
             of the [credentials] section",
            "repl_password: a file or variable is no longer given here",
            "ssh_profile: \"\" is not a name",
            "ssh: key, known_hosts",
        ] {
            assert!(all.contains(needle), "missing {needle:?} in:\n{all}");
        }
        assert_eq!(errs.len(), 6, "{all}");
    }

    /// A spec stored by a build before local configs (paths, `{"file": …}` credentials) still
    /// decodes and is written back exactly as it was stored.
    #[test]
    fn legacy_spec_decodes_and_round_trips() {
        let stored = serde_json::json!({
            "name": "fp", "user": "mha", "password": {"file": "/etc/mha/mha.pw"},
            "repl_user": "repl", "repl_password": {"env": "MHA_REPL_PW"},
            "ssh": {"user": "root", "key": "/root/.ssh/id_ed25519",
                    "known_hosts": "/root/.ssh/known_hosts", "port": 22,
                    "accept_unknown_host_keys": false},
            "vip": null, "vip_interface": null,
            "ping": {"ping_type": "select", "interval_ms": 1000, "failure_threshold": 3,
                     "suspect_interval_ms": 200, "replica_policy": "none_connected"},
            "servers": [],
            "failover": {"shutdown_script": "/usr/local/bin/power_off",
                         "client_bindir": "/usr/bin"}
        });
        let s: GroupSpec = serde_json::from_value(stored.clone()).unwrap();
        assert_eq!(
            s.password,
            CredentialRef::Legacy(LegacyCredential::File("/etc/mha/mha.pw".into()))
        );
        assert_eq!(s.ssh.profile, "");
        assert_eq!(s.ssh.legacy.key.as_deref(), Some("/root/.ssh/id_ed25519"));
        assert_eq!(
            s.failover.shutdown_script.as_deref(),
            Some("/usr/local/bin/power_off")
        );
        // Keys added since read as their defaults: no relay-log purge, no online change
        // script (an older group is not purged behind its operator's back).
        assert_eq!(s.failover.purge_relay_logs_every_m, 0);
        assert!(!s.failover.auto_rejoin);
        assert!(s.failover.check_repl_filter);
        assert_eq!(s.failover.master_ip_online_change_script, None);
        let back = serde_json::to_value(&s).unwrap();
        for k in ["password", "repl_password"] {
            assert_eq!(back[k], stored[k], "{k}");
        }
        assert_eq!(back["ssh"]["key"], stored["ssh"]["key"]);
        assert_eq!(back["ssh"]["known_hosts"], stored["ssh"]["known_hosts"]);
        assert_eq!(back["ssh"]["accept_unknown_host_keys"], false);
        // A current spec: names as strings, the profile, no legacy keys.
        let now = serde_json::to_value(spec("g")).unwrap();
        assert_eq!(now["password"], "mha");
        assert_eq!(
            now["ssh"],
            serde_json::json!({"user": "root", "port": 22, "profile": "default"})
        );
        assert_eq!(serde_json::from_value::<GroupSpec>(now).unwrap(), spec("g"));
    }
}
