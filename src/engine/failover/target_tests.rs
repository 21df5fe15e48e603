//! Phase 3.3's decisions, table-driven: the new master and its target per mode.

use super::fixtures::{coord, group, observed, replica, server, status};
use super::target::*;
use super::PlanError;
use crate::engine::selection::SelectionInput;
use crate::model::{Flavor, Observations, ServerInfo, Target};
use crate::state::group::{GroupSpec, ReplicationMode};
use crate::state::recovery::Salvage;

const U1: &str = "3e11fa47-71ca-11e1-9e33-c80aa9429562";
const U2: &str = "4f11fa47-71ca-11e1-9e33-c80aa9429562";

fn choose_in(
    g: &GroupSpec,
    obs: &Observations,
    mode: ReplicationMode,
    salvage: Option<&Salvage>,
) -> Result<Choice, String> {
    choose(&ChooseInput {
        selection: SelectionInput {
            spec: g,
            old_master: "db1",
            observed: obs,
            forced: None,
            latest_priority: true,
            check_repl_delay: true,
        },
        mode,
        salvage,
    })
    .map_err(|e| e.to_string())
}

/// A MariaDB GTID replica: received up to `io`, executed `slave_pos`.
fn mariadb(id: u32, io: &str, slave_pos: &str) -> ServerInfo {
    let mut i = replica(id, 1, 100, 100);
    let r = i.replica.as_mut().unwrap();
    r.gtid_mode = "Slave_Pos".into();
    r.gtid_io_pos = io.into();
    i.gtid.slave_pos = slave_pos.into();
    i.gtid.executed = slave_pos.into();
    i.gtid.binlog_pos = slave_pos.into();
    i
}

/// A MySQL GTID replica: retrieved `retrieved`, executed `executed`.
fn mysql(id: u32, retrieved: &str, executed: &str) -> ServerInfo {
    let mut r = status("10.0.0.1", coord(1, 100), coord(1, 100));
    r.gtid_mode = "auto_position".into();
    r.gtid_io_pos = retrieved.into();
    r.executed_gtid_set = executed.into();
    let mut i = server(Flavor::MySql, id);
    i.gtid.executed = executed.into();
    i.replica = Some(r);
    i
}

fn salvage(transactions: u64, to: &str, last_gtid: Option<&str>) -> Salvage {
    Salvage {
        saved: true,
        from: "mysql-bin.000001:500".parse().ok(),
        to: to.parse().ok(),
        transactions,
        last_gtid: last_gtid.map(str::to_string),
        ..Salvage::default()
    }
}

/// The new master and the target, per mode: (case, mode, survivors, salvage) → (new master,
/// target text).
#[test]
fn new_master_and_target() {
    type Case = (
        &'static str,
        ReplicationMode,
        Vec<(&'static str, ServerInfo)>,
        Option<Salvage>,
        &'static str,
        String,
    );
    let lagging = || {
        vec![
            ("db2", replica(2, 1, 300, 300)),
            ("db3", replica(3, 1, 500, 200)),
            ("db4", replica(4, 1, 450, 450)),
        ]
    };
    let cases: Vec<Case> = vec![
        (
            "file/position, lagging replicas, nothing salvaged: the latest read position",
            ReplicationMode::FilePos,
            lagging(),
            None,
            "db3",
            "mysql-bin.000001:500".into(),
        ),
        (
            "file/position, numeric file order",
            ReplicationMode::FilePos,
            vec![
                ("db2", replica(2, 9, 900, 900)),
                ("db3", replica(3, 10, 4, 4)),
            ],
            None,
            "db3",
            "mysql-bin.000010:4".into(),
        ),
        (
            "file/position, salvage read but empty: the latest read position",
            ReplicationMode::FilePos,
            lagging(),
            Some(salvage(0, "", None)),
            "db3",
            "mysql-bin.000001:500".into(),
        ),
        (
            "file/position, salvaged transactions: the end of the salvage",
            ReplicationMode::FilePos,
            lagging(),
            Some(salvage(3, "mysql-bin.000001:900", None)),
            "db3",
            "mysql-bin.000001:900".into(),
        ),
        (
            "MariaDB GTID: per domain the highest received or executed",
            ReplicationMode::MariadbGtid,
            vec![
                ("db2", mariadb(2, "0-1-100", "0-1-98")),
                ("db3", mariadb(3, "0-1-90,1-2-5", "0-1-90,1-2-5")),
            ],
            // The salvage is applied in phase 3.5, not part of the decided set.
            Some(salvage(2, "mysql-bin.000001:900", Some("0-1-102"))),
            "db2",
            "0-1-100,1-2-5".into(),
        ),
        (
            "MySQL GTID: the union of intervals",
            ReplicationMode::MysqlGtid,
            vec![
                (
                    "db2",
                    mysql(2, &format!("{U1}:1-40"), &format!("{U1}:1-38")),
                ),
                (
                    "db3",
                    mysql(3, &format!("{U1}:1-42"), &format!("{U1}:1-30,{U2}:1-3")),
                ),
            ],
            None,
            "db2",
            format!("{U1}:1-42,{U2}:1-3"),
        ),
    ];
    for (case, mode, survivors, salvage, want_master, want_target) in cases {
        let g = group(survivors.len() as u32 + 1);
        let obs = observed(survivors.into_iter().map(|(n, i)| (n, Ok(i))).collect());
        let c =
            choose_in(&g, &obs, mode, salvage.as_ref()).unwrap_or_else(|e| panic!("{case}: {e}"));
        assert_eq!(
            (c.selection.new_master.as_str(), c.target.to_string()),
            (want_master, want_target),
            "{case}"
        );
        assert_eq!(
            matches!(c.target, Target::Coord(_)),
            mode == ReplicationMode::FilePos,
            "{case}"
        );
    }
}

/// No server can be promoted: every exclusion is named; a malformed GTID set aborts too.
#[test]
fn nothing_to_promote() {
    let mut g = group(3);
    g.servers[1].no_master = true;
    let mut nolog = replica(3, 1, 10, 10);
    nolog.log_bin = false;
    let obs = observed(vec![("db2", Ok(replica(2, 1, 10, 10))), ("db3", Ok(nolog))]);
    let e = choose_in(&g, &obs, ReplicationMode::FilePos, None).unwrap_err();
    assert_eq!(
        e,
        "no replica can become the new master; db2: no_master is set; db3: log_bin is off"
    );
    let obs = observed(vec![("db2", Ok(mariadb(2, "0-1", "0-1-9")))]);
    let e = choose_in(&group(2), &obs, ReplicationMode::MariadbGtid, None).unwrap_err();
    assert!(e.contains("malformed MariaDB GTID"), "{e}");
}

/// The final target adds what phase 3.5 applied from the salvage (GTID groups only).
#[test]
fn final_targets() {
    let coord_target = Target::Coord(coord(1, 500));
    let cases = [
        (
            ReplicationMode::MariadbGtid,
            Target::Gtid("0-1-100,1-2-5".into()),
            Some(salvage(2, "x", Some("0-1-102"))),
            "0-1-102,1-2-5".to_string(),
        ),
        (
            ReplicationMode::MariadbGtid,
            Target::Gtid("0-1-100".into()),
            None,
            "0-1-100".into(),
        ),
        (
            ReplicationMode::MysqlGtid,
            Target::Gtid(format!("{U1}:1-42")),
            Some(salvage(1, "x", Some(&format!("{U1}:43")))),
            format!("{U1}:1-43"),
        ),
        (
            ReplicationMode::FilePos,
            coord_target.clone(),
            Some(salvage(2, "mysql-bin.000001:900", Some("0-1-102"))),
            "mysql-bin.000001:500".into(),
        ),
    ];
    for (mode, decided, salvage, want) in cases {
        assert_eq!(
            final_target(mode, &decided, salvage.as_ref()).to_string(),
            want,
            "{mode:?}"
        );
    }
}

/// A GTID new master that did not receive the whole target catches up from the first server
/// whose binlog holds it.
#[test]
fn catch_up_donor() {
    let m = ReplicationMode::MariadbGtid;
    assert!(needs_donor(m, "0-1-90", "0-1-100"));
    assert!(!needs_donor(m, "0-1-100", "0-1-100"));
    assert!(
        !needs_donor(m, "0-1-1", ""),
        "an empty target needs nothing"
    );
    let g = group(4);
    let mut nolog = mariadb(3, "0-1-100", "0-1-100");
    nolog.log_bin = false;
    let obs = observed(vec![
        ("db2", Ok(mariadb(2, "0-1-90", "0-1-90"))),
        ("db3", Ok(nolog)),
        ("db4", Ok(mariadb(4, "0-1-100", "0-1-100"))),
    ]);
    assert_eq!(
        donor(m, "db2", &g.servers, &obs, "0-1-100"),
        Ok("db4".into())
    );
    assert_eq!(
        donor(m, "db2", &g.servers, &obs, "0-1-101"),
        Err(PlanError::NoDonor {
            new_master: "db2".into(),
            target: "0-1-101".into()
        })
    );
    let u = ReplicationMode::MysqlGtid;
    let obs = observed(vec![
        ("db2", Ok(mysql(2, "", &format!("{U1}:1-10")))),
        ("db3", Ok(mysql(3, "", &format!("{U1}:1-20")))),
    ]);
    assert_eq!(
        donor(u, "db2", &group(3).servers, &obs, &format!("{U1}:1-15")),
        Ok("db3".into())
    );
}
