//! Every key MHA 0.58's Config.pm accepts, and what becomes of it here: mapped (by the importer,
//! in mod.rs) or left out with the reason an MHA user needs to read.

/// How an MHA key is carried over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// One value per group here: every server's effective value must agree.
    Group,
    /// Per server here (servers[]), or the group's default where one exists.
    Server,
    /// Not carried over, for this reason.
    Unmapped(&'static str),
}

/// MHA's keys (Config.pm, 0.58), each with its kind.
pub const KEYS: &[(&str, Kind)] = &[
    ("hostname", Kind::Server),
    ("ip", Kind::Server),
    ("port", Kind::Server),
    ("ssh_host", Kind::Server),
    ("ssh_ip", Kind::Server),
    ("ssh_port", Kind::Server),
    ("candidate_master", Kind::Server),
    ("no_master", Kind::Server),
    ("ignore_fail", Kind::Server),
    ("master_binlog_dir", Kind::Server),
    ("user", Kind::Group),
    ("password", Kind::Group),
    ("repl_user", Kind::Group),
    ("repl_password", Kind::Group),
    ("ssh_user", Kind::Group),
    ("ssh_options", Kind::Group),
    ("client_bindir", Kind::Group),
    ("remote_workdir", Kind::Group),
    ("ping_interval", Kind::Group),
    ("ping_type", Kind::Group),
    ("check_repl_delay", Kind::Group),
    ("check_repl_filter", Kind::Group),
    ("latest_priority", Kind::Group),
    ("master_ip_failover_script", Kind::Group),
    ("master_ip_online_change_script", Kind::Group),
    ("shutdown_script", Kind::Group),
    ("report_script", Kind::Group),
    (
        "secondary_check_script",
        Kind::Unmapped(
            "mha-raft corroborates a master's death itself: the other managers probe it from \
             their own zones and the replicas report their IO threads; run one manager in each \
             zone the -s hosts were in",
        ),
    ),
    (
        "ssh_connection_timeout",
        Kind::Unmapped("mha-raft bounds every SSH connect and command itself"),
    ),
    (
        "skip_init_ssh_check",
        Kind::Unmapped(
            "SSH is checked at group add and by mhactl check ssh; a host SSH cannot reach is \
             reported, not fatal to monitoring",
        ),
    ),
    (
        "skip_reset_slave",
        Kind::Unmapped("the new master's replication settings are always reset (RESET SLAVE ALL)"),
    ),
    (
        "disable_log_bin",
        Kind::Unmapped(
            "relay-log diffs are applied with binary logging on (MHA's default), so the new \
             master's binlog carries them",
        ),
    ),
    (
        "handle_raw_binlog",
        Kind::Unmapped("salvaged binlogs are handled as with MHA's default (1)"),
    ),
    (
        "use_gtid_auto_pos",
        Kind::Unmapped(
            "GTID auto-position is used whenever the servers replicate with GTIDs (MHA's \
             default 1)",
        ),
    ),
    (
        "master_pid_file",
        Kind::Unmapped(
            "a shutdown hook that needs the pid file takes it as a fixed argument of its \
             [hooks] entry",
        ),
    ),
    (
        "multi_tier_slave",
        Kind::Unmapped(
            "a group is one master and its direct replicas; servers replicating from a replica \
             are left out of the group file",
        ),
    ),
    (
        "init_conf_load_script",
        Kind::Unmapped(
            "each mhad reads passwords from its own [credentials] (a file or an environment \
             variable)",
        ),
    ),
    (
        "log_level",
        Kind::Unmapped("per manager: mhad --log-level (or RUST_LOG)"),
    ),
    (
        "manager_log",
        Kind::Unmapped("mhad logs to standard error (journald); --log-format json for shippers"),
    ),
    (
        "manager_workdir",
        Kind::Unmapped("mhad keeps its state, replicated, in its data_dir"),
    ),
    (
        "client_libdir",
        Kind::Unmapped("not needed: the DB hosts' mysqlbinlog is found by client_bindir or PATH"),
    ),
    ("node_label", Kind::Unmapped("not used by mha-raft")),
];

/// Keys MHA reads only in a server's own block (Config.pm): in `[server default]` it ignores
/// them, and so does the import.
pub const LOCAL_ONLY: &[&str] = &[
    "hostname",
    "ip",
    "ssh_host",
    "ssh_ip",
    "candidate_master",
    "no_master",
    "ignore_fail",
    "skip_init_ssh_check",
    "node_label",
];

/// Why such a key in `[server default]` is not carried over.
pub const LOCAL_IN_DEFAULT: &str = "MHA reads this key only in a [serverN] block and ignores it \
                                    in [server default]; so does the import";

/// Why a `[binlogN]` block is not carried over.
pub const BINLOG_BLOCK: &str = "binlog servers are not supported: the dead master's binlog is \
                                salvaged over SSH, and GTID groups recover from the latest replica";

/// The kind of an MHA key; `None` for a key MHA does not know (MHA refuses such a file).
pub fn kind(key: &str) -> Option<Kind> {
    KEYS.iter().find(|(k, _)| *k == key).map(|(_, kind)| *kind)
}

/// MHA's booleans are integers; the words people write are accepted too.
pub fn flag(v: &str) -> Option<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "1" | "yes" | "true" | "on" => Some(true),
        "0" | "no" | "false" | "off" | "" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_once() {
        let mut seen = std::collections::BTreeSet::new();
        for (k, _) in KEYS {
            assert!(seen.insert(*k), "{k} twice");
        }
        assert_eq!(KEYS.len(), 42);
    }

    #[test]
    fn flags() {
        assert_eq!(flag("1"), Some(true));
        assert_eq!(flag(" 0 "), Some(false));
        assert_eq!(flag("Yes"), Some(true));
        assert_eq!(flag("2"), None);
    }
}
