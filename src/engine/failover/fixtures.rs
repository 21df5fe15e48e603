//! Model values for the engine's tests, built directly (no adapter parsing).

use crate::model::{
    BinlogCoord, Dialect, Flavor, GtidState, IoThread, Observations, ReplicaStatus, SemiSync,
    ServerInfo, Version,
};
use crate::state::group::{tests::spec, GroupSpec, ServerSpec};

/// mysql-bin.<file>:<pos>.
pub fn coord(file: u32, pos: u64) -> BinlogCoord {
    BinlogCoord {
        file: format!("mysql-bin.{file:06}"),
        pos,
    }
}

/// A server of `flavor` with binary logging on, read-only, not a replica.
pub fn server(flavor: Flavor, id: u32) -> ServerInfo {
    let (text, version) = match flavor {
        Flavor::MariaDb => ("10.11.19-MariaDB-log", (10, 11, 19)),
        Flavor::MySql => ("8.0.36", (8, 0, 36)),
    };
    ServerInfo {
        version: text.into(),
        dialect: Dialect {
            flavor,
            version: Version {
                major: version.0,
                minor: version.1,
                patch: version.2,
            },
        },
        server_id: id,
        read_only: true,
        super_read_only: (flavor == Flavor::MySql).then_some(false),
        log_bin: true,
        log_slave_updates: true,
        binlog_format: "ROW".into(),
        relay_log_purge: false,
        report_host: String::new(),
        gtid: GtidState {
            enabled: true,
            ..GtidState::default()
        },
        binlog: None,
        binlog_filters: Default::default(),
        replica: None,
        semisync: SemiSync::default(),
    }
}

/// A replica's status towards `host`:3306 that read up to `read` and applied up to `exec`.
pub fn status(host: &str, read: BinlogCoord, exec: BinlogCoord) -> ReplicaStatus {
    ReplicaStatus {
        source_host: host.into(),
        source_port: 3306,
        source_user: "repl".into(),
        source_server_id: Some(1),
        io_thread: IoThread::No,
        sql_thread: true,
        relay_log: None,
        read,
        exec,
        seconds_behind: Some(0),
        last_io_errno: 0,
        last_io_error: String::new(),
        last_sql_errno: 0,
        last_sql_error: String::new(),
        gtid_mode: "No".into(),
        gtid_io_pos: String::new(),
        executed_gtid_set: String::new(),
        sql_delay: 0,
        filters: Default::default(),
    }
}

/// A MariaDB replica of db1 (10.0.0.1) at mysql-bin.<file>, read `read`, applied `exec`.
pub fn replica(id: u32, file: u32, read: u64, exec: u64) -> ServerInfo {
    ServerInfo {
        replica: Some(status("10.0.0.1", coord(file, read), coord(file, exec))),
        ..server(Flavor::MariaDb, id)
    }
}

/// db1 (old master), db2..db<n>: no candidates, nobody excluded by the spec.
pub fn group(n: u32) -> GroupSpec {
    let mut g = spec("g");
    let template = g.servers[1].clone();
    g.servers = (1..=n)
        .map(|i| ServerSpec {
            name: format!("db{i}"),
            host: format!("10.0.0.{i}"),
            candidate_master: false,
            no_master: false,
            ..template.clone()
        })
        .collect();
    g
}

/// Observations of db2.. in order; db1 (the dead master) is not observed.
pub fn observed(servers: Vec<(&str, Result<ServerInfo, &str>)>) -> Observations {
    servers
        .into_iter()
        .map(|(n, r)| (n.to_string(), r.map_err(str::to_string)))
        .collect()
}

/// A MariaDB 10.11 server whose GTID positions (executed, slave and binlog) are all `gtid`.
pub fn mariadb(id: u32, read_only: bool, gtid: &str) -> ServerInfo {
    let mut i = server(Flavor::MariaDb, id);
    i.read_only = read_only;
    i.gtid = GtidState {
        executed: gtid.into(),
        slave_pos: gtid.into(),
        binlog_pos: gtid.into(),
        enabled: true,
    };
    i
}

/// What a healthy MariaDB 10.11 replica of `host`:3306 reports (as captured in the lab): both
/// threads running, GTID `Slave_Pos`, at mysql-bin.000001:1139.
pub fn running_status(host: &str) -> ReplicaStatus {
    ReplicaStatus {
        io_thread: IoThread::Yes,
        relay_log: Some(BinlogCoord {
            file: "relay-bin.000002".into(),
            pos: 1438,
        }),
        gtid_mode: "Slave_Pos".into(),
        gtid_io_pos: "0-1-5".into(),
        ..status(host, coord(1, 1139), coord(1, 1139))
    }
}
