//! What the manager reads about a server: identity, flavour, read_only, binlog settings, GTID
//! state, binlog coordinates, replica status and semi-sync. Parsing is pure (column maps in,
//! `ServerInfo` out) so every dialect is covered by fixtures; [`super::Session`] runs the queries.

use super::replica::Columns;
use crate::model::{
    BinlogCoord, BinlogFilters, Dialect, Flavor, GtidState, ReplicaStatus, SemiSync, ServerInfo,
};

/// The variables query for a dialect; every column is aliased to the name the parser reads.
pub fn variables_query(d: &Dialect) -> String {
    let common = "@@version AS version, @@server_id AS server_id, @@read_only AS read_only, \
                  @@log_bin AS log_bin, @@log_slave_updates AS log_slave_updates, \
                  @@binlog_format AS binlog_format, @@relay_log_purge AS relay_log_purge, \
                  @@report_host AS report_host";
    match d.flavor {
        Flavor::MariaDb => format!(
            "SELECT {common}, @@gtid_current_pos AS gtid_executed, @@gtid_slave_pos AS gtid_slave_pos, \
             @@gtid_binlog_pos AS gtid_binlog_pos, @@gtid_strict_mode AS gtid_enabled"
        ),
        Flavor::MySql => format!(
            "SELECT {common}, @@gtid_executed AS gtid_executed, @@super_read_only AS super_read_only, \
             (@@gtid_mode = 'ON') AS gtid_enabled"
        ),
    }
}

/// Semi-sync variables and status (both the master/slave and the 8.0.26+ source/replica names).
pub const SEMISYNC_VARIABLES: &str =
    "SHOW GLOBAL VARIABLES WHERE Variable_name LIKE 'rpl_semi_sync%'";
pub const SEMISYNC_STATUS: &str = "SHOW GLOBAL STATUS WHERE Variable_name IN \
    ('Rpl_semi_sync_master_clients', 'Rpl_semi_sync_source_clients')";

fn flag(v: Option<&str>) -> bool {
    matches!(
        v.map(|s| s.trim().to_ascii_uppercase()).as_deref(),
        Some("1" | "ON" | "YES" | "TRUE")
    )
}

fn text(c: &Columns, k: &str) -> String {
    c.get(k).cloned().flatten().unwrap_or_default()
}

/// Builds the server's description from the variables row and the other query results: one
/// field after the other, per flavour (long, and flat on purpose: every field's source is
/// visible where it is set).
pub fn parse_server_info(
    vars: &Columns,
    binlog: Option<&Columns>,
    replica: Option<&Columns>,
    semisync_vars: &[(String, String)],
    semisync_status: &[(String, String)],
) -> Result<ServerInfo, String> {
    let version = text(vars, "version");
    let dialect = Dialect::from_version_string(&version)
        .ok_or_else(|| format!("unrecognised version {version:?}"))?;
    let server_id = text(vars, "server_id")
        .trim()
        .parse()
        .map_err(|_| "bad server_id".to_string())?;
    let get = |k: &str| vars.get(k).and_then(|v| v.as_deref());
    let binlog_filters = binlog
        .map(|b| BinlogFilters {
            do_db: text(b, "Binlog_Do_DB"),
            ignore_db: text(b, "Binlog_Ignore_DB"),
        })
        .unwrap_or_default();
    let binlog = match binlog {
        Some(b) => Some(BinlogCoord {
            file: text(b, "File"),
            pos: text(b, "Position")
                .trim()
                .parse()
                .map_err(|_| "bad binlog Position".to_string())?,
        }),
        None => None,
    };
    let replica = replica.map(ReplicaStatus::from_columns).transpose()?;
    let sv = |names: &[&str]| {
        semisync_vars
            .iter()
            .find(|(k, _)| names.iter().any(|n| k.eq_ignore_ascii_case(n)))
            .map(|(_, v)| v.as_str())
    };
    let semisync = SemiSync {
        master_enabled: flag(sv(&[
            "rpl_semi_sync_master_enabled",
            "rpl_semi_sync_source_enabled",
        ])),
        slave_enabled: flag(sv(&[
            "rpl_semi_sync_slave_enabled",
            "rpl_semi_sync_replica_enabled",
        ])),
        wait_point: sv(&[
            "rpl_semi_sync_master_wait_point",
            "rpl_semi_sync_source_wait_point",
        ])
        .unwrap_or_default()
        .to_string(),
        timeout_ms: sv(&[
            "rpl_semi_sync_master_timeout",
            "rpl_semi_sync_source_timeout",
        ])
        .and_then(|v| v.parse().ok())
        .unwrap_or(0),
        master_clients: semisync_status
            .iter()
            .find(|(k, _)| {
                k.eq_ignore_ascii_case("Rpl_semi_sync_master_clients")
                    || k.eq_ignore_ascii_case("Rpl_semi_sync_source_clients")
            })
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0),
    };
    Ok(ServerInfo {
        version,
        dialect,
        server_id,
        read_only: flag(get("read_only")),
        super_read_only: match dialect.flavor {
            Flavor::MySql => Some(flag(get("super_read_only"))),
            Flavor::MariaDb => None,
        },
        log_bin: flag(get("log_bin")),
        log_slave_updates: flag(get("log_slave_updates")),
        binlog_format: text(vars, "binlog_format"),
        relay_log_purge: flag(get("relay_log_purge")),
        report_host: text(vars, "report_host"),
        gtid: GtidState {
            executed: text(vars, "gtid_executed"),
            slave_pos: text(vars, "gtid_slave_pos"),
            binlog_pos: text(vars, "gtid_binlog_pos"),
            enabled: match dialect.flavor {
                Flavor::MariaDb => true,
                Flavor::MySql => flag(get("gtid_enabled")),
            },
        },
        binlog,
        binlog_filters,
        replica,
        semisync,
    })
}

#[cfg(test)]
mod tests {
    use super::super::replica::fixtures::{cols, mariadb_10_11, mysql_8_4};
    use super::*;

    fn kv(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn mariadb_replica_with_semisync() {
        let vars = cols(&[
            ("version", "10.11.19-MariaDB-0+deb12u1-log"),
            ("server_id", "2"),
            ("read_only", "1"),
            ("log_bin", "1"),
            ("log_slave_updates", "1"),
            ("binlog_format", "ROW"),
            ("relay_log_purge", "0"),
            ("report_host", "db2"),
            ("gtid_executed", "0-1-5"),
            ("gtid_slave_pos", "0-1-5"),
            ("gtid_binlog_pos", "0-1-5"),
            ("gtid_enabled", "1"),
        ]);
        let binlog = cols(&[("File", "mysql-bin.000001"), ("Position", "1139")]);
        let sv = kv(&[
            ("rpl_semi_sync_master_enabled", "ON"),
            ("rpl_semi_sync_slave_enabled", "ON"),
            ("rpl_semi_sync_master_wait_point", "AFTER_SYNC"),
            ("rpl_semi_sync_master_timeout", "86400000"),
        ]);
        let i = parse_server_info(
            &vars,
            Some(&binlog),
            Some(&mariadb_10_11()),
            &sv,
            &kv(&[("Rpl_semi_sync_master_clients", "0")]),
        )
        .unwrap();
        assert_eq!(i.dialect.flavor, Flavor::MariaDb);
        assert_eq!(i.server_id, 2);
        assert!(i.read_only && i.log_bin && i.log_slave_updates && !i.relay_log_purge);
        assert_eq!(i.super_read_only, None);
        assert_eq!(i.semisync.wait_point, "AFTER_SYNC");
        assert!(i.semisync.slave_enabled);
        assert_eq!(i.replica.as_ref().unwrap().gtid_mode, "Slave_Pos");
        assert_eq!(i.position(), "0-1-5");
    }

    #[test]
    fn mysql_84_source_names() {
        let vars = cols(&[
            ("version", "8.4.3"),
            ("server_id", "11"),
            ("read_only", "1"),
            ("super_read_only", "1"),
            ("log_bin", "1"),
            ("log_slave_updates", "1"),
            ("binlog_format", "ROW"),
            ("relay_log_purge", "1"),
            ("report_host", "NULL"),
            ("gtid_executed", "a1b2c3d4-0000-11ee-8000-000000000001:1-42"),
            ("gtid_enabled", "1"),
        ]);
        let sv = kv(&[
            ("rpl_semi_sync_source_enabled", "OFF"),
            ("rpl_semi_sync_replica_enabled", "ON"),
        ]);
        let i = parse_server_info(&vars, None, Some(&mysql_8_4()), &sv, &[]).unwrap();
        assert_eq!(i.dialect.flavor, Flavor::MySql);
        assert_eq!(i.super_read_only, Some(true));
        assert!(i.gtid.enabled && i.relay_log_purge);
        assert!(i.semisync.slave_enabled && !i.semisync.master_enabled);
        assert!(i.binlog.is_none());
        assert!(variables_query(&i.dialect).contains("@@super_read_only"));
    }

    #[test]
    fn garbage_version_is_an_error() {
        let vars = cols(&[("version", "nope"), ("server_id", "1")]);
        assert!(parse_server_info(&vars, None, None, &[], &[]).is_err());
    }
}
