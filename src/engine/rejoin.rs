//! Bringing an old master back as a replica, sans-I/O: what it may not have. An old master
//! that holds a transaction the current master lacks (written after its replicas lost it, never
//! salvaged) would either break replication or silently keep a row no other server has; it is
//! refused and the transactions are named, never discarded.
//!
//! GTID groups compare GTID states. File/position groups have no such state: the journal says
//! where the old master's binlog stood when the master it is rejoined to took over (the failover
//! point) and where that master's own binlog stood then; anything the old master's binlog holds
//! past the failover point is errant.

use std::collections::BTreeMap;

use crate::model::{BinlogCoord, BinlogEvent, Target};
use crate::state::journal::{FailoverRun, RunKind};

/// MariaDB: the transactions `old` holds that `new` lacks, per (domain, server id), named by
/// the last of them and where the master stops: `0-1-103 (server 1's in domain 0 after
/// 0-1-100)`. Both maps give, per (domain, server), the highest sequence number held
/// (engine::gtid::mariadb_last_seq of gtid_binlog_state and gtid_slave_pos): one server's
/// sequence numbers only grow within a domain, so everything of that server past the master's
/// last is missing there. (Sequence numbers are the domain's, not the server's: how many
/// transactions lie between is not known from these positions, so no count is claimed.)
pub fn mariadb_errant(
    old: &BTreeMap<(u32, u32), u64>,
    new: &BTreeMap<(u32, u32), u64>,
) -> Vec<String> {
    old.iter()
        .filter_map(|(&(d, s), &last)| {
            let have = new.get(&(d, s)).copied().unwrap_or(0);
            (last > have).then(|| match have {
                0 => format!(
                    "{d}-{s}-{last} (server {s}'s in domain {d}; the master has none of them)"
                ),
                h => format!("{d}-{s}-{last} (server {s}'s in domain {d} after {d}-{s}-{h})"),
            })
        })
        .collect()
}

/// File/position groups: what the journal says of a server rejoined to the current master.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FilePosPoint {
    /// The run that made the current master the master.
    pub run: u64,
    /// In the server's own binlog: how far the master has it (failover: the end of the salvaged
    /// binlog, or the latest replica's read position when nothing was salvaged; switchover:
    /// the old master's final position). A transaction after it is errant.
    pub stop_at: BinlogCoord,
    /// In the master's binlog: where it stood when it took over, before its first write (the
    /// coordinates every other replica was started from).
    pub start_at: BinlogCoord,
}

/// The group's latest run that changed its master: completed, or a switchover that failed after
/// its new master took writes. Its old master is the one `[failover] auto_rejoin` brings back.
pub fn last_master_change<'a>(
    runs: impl IntoIterator<Item = &'a FailoverRun>,
    group: &str,
) -> Option<&'a FailoverRun> {
    runs.into_iter()
        .filter(|r| r.group == group && r.changed_master())
        .max_by_key(|r| r.id)
}

/// The run that made `master` the master of `group`, if `server` was the master it replaced:
/// the point a file/position rejoin checks from and starts at. Err(why it is not known): the
/// server was not that run's old master (an `ignore_fail` replica left out, a server added
/// later: its place on the new master was never journaled), or a later change of master.
pub fn filepos_point<'a>(
    runs: impl IntoIterator<Item = &'a FailoverRun>,
    group: &str,
    server: &str,
    master: &str,
) -> Result<FilePosPoint, String> {
    let last = last_master_change(runs, group).ok_or_else(|| {
        format!(
            "the journal holds no run that made {master} the master of {group}: where {server} \
             stands on it is unknown"
        )
    })?;
    let decided = last
        .decided
        .as_ref()
        .expect("a master change has a decision");
    if decided.new_master != master {
        return Err(format!(
            "the last run ({}) made {} the master, but the master is {master} now (changed by a \
             group update): where {server} stands on it is unknown",
            last.id, decided.new_master
        ));
    }
    if last.old_master != server {
        return Err(format!(
            "{server} was not the master run {} replaced ({} was): its place in {master}'s \
             binlog was never journaled",
            last.id, last.old_master
        ));
    }
    let coord = |t: &Target, what: &str| match t {
        Target::Coord(c) => Ok(c.clone()),
        Target::Gtid(_) => Err(format!(
            "run {} journaled {what} as a GTID set, not file/position",
            last.id
        )),
    };
    let (stop_at, start_at) = match last.kind {
        RunKind::Switchover => {
            let frozen = last
                .switch
                .as_ref()
                .and_then(|s| s.frozen.as_ref())
                .ok_or_else(|| {
                    format!("run {} journaled no final position of {server}", last.id)
                })?;
            (
                coord(&frozen.position, "the old master's final position")?,
                coord(&decided.target, "the new master's position")?,
            )
        }
        _ => (
            coord(&decided.target, "the failover point")?,
            last.recovery.new_master_coords.clone().ok_or_else(|| {
                format!(
                    "run {} journaled no coordinates of the new master {master}",
                    last.id
                )
            })?,
        ),
    };
    Ok(FilePosPoint {
        run: last.id,
        stop_at,
        start_at,
    })
}

/// Events that are not part of a transaction: file headers, rotations, stops, checkpoints,
/// GTID lists. Anything else in a binlog past the failover point was written there.
const NOT_WRITES: &[&str] = &[
    "Format_desc",
    "Rotate",
    "Stop",
    "Binlog_checkpoint",
    "Gtid_list",
    "Previous_gtids",
    "Start_encryption",
    "Heartbeat",
    "Heartbeat_log",
    "Start_v3",
];

/// Whether the event belongs to a transaction the server with `server_id` wrote itself: one the
/// master may lack. An event another server wrote came to it by replication — after the
/// failover point only from the current master (an earlier rejoin that did not finish, or
/// one set up by hand, with log_slave_updates on): the master has it.
pub fn is_own_write(e: &BinlogEvent, server_id: u32) -> bool {
    !NOT_WRITES.contains(&e.kind.as_str()) && e.server_id == server_id
}

/// The GTID a transaction's first event names (MariaDB `BEGIN GTID 0-1-103`, MySQL
/// `SET @@SESSION.GTID_NEXT= 'uuid:7'`).
fn gtid_of(e: &BinlogEvent) -> Option<String> {
    if e.kind != "Gtid" {
        return None;
    }
    match e.info.split_once('\'') {
        Some((_, rest)) => rest.split('\'').next().map(str::to_string),
        None => e
            .info
            .rsplit_once("GTID ")
            .map(|(_, g)| g.split_whitespace().next().unwrap_or("").to_string()),
    }
    .filter(|g| !g.is_empty())
}

/// The writes (events of transactions, [`is_own_write`]'s) among `events` named per file:
/// `mysql-bin.000003 from 1234 to 5678: 3 transactions (0-1-101 … 0-1-103)`. No statement
/// text: it may hold data.
pub fn describe_writes(events: &[BinlogEvent]) -> Vec<String> {
    let mut per_file: Vec<(&str, Vec<&BinlogEvent>)> = Vec::new();
    for e in events.iter() {
        match per_file.last_mut() {
            Some((f, v)) if *f == e.file => v.push(e),
            _ => per_file.push((&e.file, vec![e])),
        }
    }
    per_file
        .into_iter()
        .map(|(file, v)| {
            let from = v.first().map_or(0, |e| e.pos);
            let to = v.iter().map(|e| e.end_pos).max().unwrap_or(from);
            let begun = v
                .iter()
                .filter(|e| e.kind == "Gtid" || e.kind == "Anonymous_Gtid")
                .count();
            let gtids: Vec<String> = v.iter().filter_map(|e| gtid_of(e)).collect();
            let what = if begun > 0 {
                format!("{begun} transaction{}", if begun == 1 { "" } else { "s" })
            } else {
                format!("{} events of transactions", v.len())
            };
            let named = match gtids.as_slice() {
                [] => String::new(),
                [one] => format!(" ({one})"),
                [first, .., last] => format!(" ({first} … {last})"),
            };
            format!("{file} from {from} to {to}: {what}{named}")
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::gtid::mariadb_last_seq;
    use crate::state::journal::RunState;

    fn seqs(pos: &[&str]) -> BTreeMap<(u32, u32), u64> {
        mariadb_last_seq(pos.iter().copied()).unwrap()
    }

    /// The old master db1 (server 1) wrote up to 0-1-100; the new master db2 (server 2)
    /// replicated it all and went on: nothing errant. One that holds more of its own than the
    /// new master got is named by its last; a domain the new master never saw, whole.
    #[test]
    fn what_the_old_master_holds_beyond_the_new_one() {
        let new = seqs(&["0-1-100,0-2-140", "0-1-100"]);
        assert!(mariadb_errant(&seqs(&["0-1-100"]), &new).is_empty());
        assert!(mariadb_errant(&seqs(&["0-1-90,0-2-120"]), &new).is_empty());
        assert_eq!(
            mariadb_errant(&seqs(&["0-1-103"]), &new),
            vec!["0-1-103 (server 1's in domain 0 after 0-1-100)".to_string()]
        );
        assert_eq!(
            mariadb_errant(&seqs(&["0-1-101,5-1-1"]), &new),
            vec![
                "0-1-101 (server 1's in domain 0 after 0-1-100)".to_string(),
                "5-1-1 (server 1's in domain 5; the master has none of them)".to_string()
            ]
        );
    }

    fn coord(file: &str, pos: u64) -> BinlogCoord {
        BinlogCoord {
            file: file.into(),
            pos,
        }
    }

    fn done_run(id: u64, kind: RunKind, old: &str, new: &str) -> FailoverRun {
        let mut r = FailoverRun::new(id, id, kind, "g", old, None, 0);
        r.decided = Some(crate::state::journal::Decided {
            new_master: new.into(),
            rule: "latest".into(),
            target: Target::Coord(coord("mysql-bin.000003", 900)),
        });
        r.recovery.new_master_coords = Some(coord("mysql-bin.000007", 328));
        r.state = RunState::Completed { at_ms: 10 };
        r
    }

    /// The last run that changed the master says where its old master stopped and where the
    /// new master stood; anyone else, or a master changed since, is not known.
    #[test]
    fn the_point_comes_from_the_run_that_made_the_master() {
        let first = done_run(1, RunKind::Auto, "db1", "db2");
        let p = filepos_point([&first], "g", "db1", "db2").unwrap();
        assert_eq!(
            (p.run, p.stop_at, p.start_at),
            (
                1,
                coord("mysql-bin.000003", 900),
                coord("mysql-bin.000007", 328)
            )
        );
        let e = filepos_point([&first], "g", "db3", "db2").unwrap_err();
        assert!(e.contains("db3 was not the master run 1 replaced"), "{e}");
        let e = filepos_point([&first], "g", "db1", "db3").unwrap_err();
        assert!(
            e.contains("made db2 the master, but the master is db3"),
            "{e}"
        );
        assert!(filepos_point([&first], "h", "db1", "db2").is_err());

        // A later switchover db2 → db3 (the old master's final position, the new one's start).
        let mut second = done_run(2, RunKind::Switchover, "db2", "db3");
        second.decided.as_mut().unwrap().target = Target::Coord(coord("mysql-bin.000001", 4000));
        second.switch = Some(crate::state::switchover::Switch {
            frozen: Some(crate::state::switchover::Frozen {
                blocked_at_ms: 5,
                position: Target::Coord(coord("mysql-bin.000007", 5000)),
                lock_session: None,
                vip_fenced: false,
            }),
            ..Default::default()
        });
        let p = filepos_point([&second, &first], "g", "db2", "db3").unwrap();
        assert_eq!(
            (p.stop_at, p.start_at),
            (
                coord("mysql-bin.000007", 5000),
                coord("mysql-bin.000001", 4000)
            )
        );
        assert!(filepos_point([&first, &second], "g", "db1", "db3").is_err());

        // Rolled back: it changed nothing, the first run still stands. After its point of no
        // return it made db3 the master.
        second.state = RunState::Failed {
            at_ms: 11,
            reason: "x".into(),
        };
        assert!(filepos_point([&first, &second], "g", "db1", "db2").is_ok());
        second.switch.as_mut().unwrap().writable_at_ms = Some(6);
        assert!(filepos_point([&first, &second], "g", "db2", "db3").is_ok());
        let running = FailoverRun::new(3, 3, RunKind::Auto, "g", "db3", None, 0);
        assert!(filepos_point([&first, &second, &running], "g", "db2", "db3").is_ok());
    }

    fn ev(file: &str, pos: u64, kind: &str, end: u64, info: &str) -> BinlogEvent {
        BinlogEvent {
            file: file.into(),
            pos,
            kind: kind.into(),
            server_id: 1,
            end_pos: end,
            info: info.into(),
        }
    }

    /// Headers and rotations are not writes; transactions are named by file, range and GTIDs
    /// (MariaDB's and MySQL's forms), never by their statements.
    #[test]
    fn writes_past_the_point_are_named_without_their_statements() {
        let f = "mysql-bin.000004";
        let events = vec![
            ev("mysql-bin.000003", 900, "Stop", 919, ""),
            ev(f, 4, "Format_desc", 256, "Server ver: 10.11"),
            ev(f, 256, "Gtid_list", 299, "[0-1-100]"),
            ev(f, 299, "Binlog_checkpoint", 342, "mysql-bin.000004"),
            ev(f, 342, "Gtid", 384, "BEGIN GTID 0-1-101"),
            ev(f, 384, "Query", 480, "INSERT INTO t VALUES ('secret')"),
            ev(f, 480, "Xid", 511, "COMMIT /* xid=9 */"),
            ev(f, 511, "Gtid", 553, "GTID 0-1-102"),
            ev(f, 553, "Query", 650, "CREATE TABLE x (a int)"),
        ];
        assert!(events[..4].iter().all(|e| !is_own_write(e, 1)));
        assert!(events[4..].iter().all(|e| is_own_write(e, 1)));
        // The same transactions replicated from server 2 (a rejoin cut short, log_slave_updates
        // on) are not the old master's own.
        assert!(events.iter().all(|e| !is_own_write(e, 2)));
        let own = |events: &[BinlogEvent]| -> Vec<BinlogEvent> {
            events
                .iter()
                .filter(|e| is_own_write(e, 1))
                .cloned()
                .collect()
        };
        let d = describe_writes(&own(&events));
        assert_eq!(
            d,
            vec!["mysql-bin.000004 from 342 to 650: 2 transactions (0-1-101 … 0-1-102)"]
        );
        assert!(!d[0].contains("secret"));
        let mysql = vec![
            ev(f, 4, "Format_desc", 126, ""),
            ev(f, 126, "Previous_gtids", 197, "3e11fa47-71ca:1-5"),
            ev(
                f,
                197,
                "Gtid",
                276,
                "SET @@SESSION.GTID_NEXT= '3e11fa47-71ca:6'",
            ),
            ev(f, 276, "Query", 351, "BEGIN"),
            ev(f, 351, "Xid", 382, "COMMIT"),
        ];
        assert_eq!(
            describe_writes(&own(&mysql)),
            vec!["mysql-bin.000004 from 197 to 382: 1 transaction (3e11fa47-71ca:6)"]
        );
        let anonymous = vec![ev(f, 4, "Query", 90, "BEGIN"), ev(f, 90, "Xid", 121, "")];
        assert_eq!(
            describe_writes(&own(&anonymous)),
            vec!["mysql-bin.000004 from 4 to 121: 2 events of transactions"]
        );
        assert!(describe_writes(&[]).is_empty());
    }
}
