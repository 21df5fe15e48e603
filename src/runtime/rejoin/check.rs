//! The rejoin's errant check: nothing the server holds may be missing on the master. GTID
//! groups compare GTID states; file/position groups read the server's own binlog past the
//! failover point the journal names (engine::rejoin::filepos_point) over SQL.

use super::{refused, Rejoin, Start};
use crate::adapters::mysql::{ReplicaPosition, Session};
use crate::engine::rejoin::{describe_writes, is_own_write, FilePosPoint};
use crate::engine::{gtid, rejoin};
use crate::model::{BinlogEvent, Flavor, ServerInfo, Target};
use crate::raft::NodeError;

/// Events read per `SHOW BINLOG EVENTS`.
const PAGE: u64 = 500;
/// The scan past the failover point stops after this many events: enough to name what was
/// written there, bounded however much it is.
const SCAN_LIMIT: usize = 20_000;

impl Rejoin<'_> {
    /// Ok(where the server starts on the master) when it holds nothing the master lacks; a
    /// refusal naming what it holds otherwise.
    pub(super) async fn check(
        &mut self,
        old: &mut Session,
        new: &mut Session,
        old_info: &ServerInfo,
        new_info: &ServerInfo,
        check_only: bool,
    ) -> Result<Start, NodeError> {
        let (s, m) = (self.s, self.m);
        let (errant, start, held) = match (&self.point, new_info.dialect.flavor) {
            (Some(point), _) => {
                let point = point.clone();
                self.filepos(old, new, old_info.server_id, &point).await?
            }
            (None, Flavor::MariaDb) => self.mariadb(old, new, old_info, new_info).await?,
            (None, Flavor::MySql) => self.mysql(new, old_info, new_info).await?,
        };
        if !errant.is_empty() {
            // File/position: applying them to the master by hand does not make the server
            // rejoinable — they stay in its binlog past the failover point.
            let then = match self.point {
                None => format!(
                    "either apply them to {} by hand or rebuild {} from a backup of {}",
                    m.name, s.name, m.name
                ),
                Some(_) => format!(
                    "rebuild {} from a backup of {} (if you apply them to {} by hand, repoint \
                     {} by hand too: they stay in its binlog, and the rejoin refuses it)",
                    s.name, m.name, m.name, s.name
                ),
            };
            return Err(refused(format!(
                "{} holds transactions the master {} lacks (errant): {}; nothing else was \
                 changed{}. Inspect them (mysqlbinlog on {}), then {then}",
                s.name,
                m.name,
                errant.join(", "),
                if self.lines.is_empty() {
                    String::new()
                } else {
                    format!(" (left as it is now: {})", self.lines.join("; "))
                },
                s.name,
            )));
        }
        self.lines.push(format!(
            "{}: no transaction the master {} lacks ({held})",
            s.name, m.name
        ));
        if check_only {
            let how = match (&self.kept_at, &start.position) {
                (Some(at), _) => format!("(already pointed at it: kept, from {at})"),
                (None, ReplicaPosition::Gtid) => "by GTID".to_string(),
                (None, ReplicaPosition::FilePos { file, pos }) => format!("from {file}:{pos}"),
            };
            self.lines.push(format!(
                "would: set read_only on {}, point it at {} {how}, start replication, wait \
                 until it has {} with its threads running, and enter it into the topology",
                s.name, m.name, start.reach
            ));
        }
        Ok(start)
    }

    /// MariaDB GTID: (errant, start, what was compared).
    async fn mariadb(
        &self,
        old: &mut Session,
        new: &mut Session,
        old_info: &ServerInfo,
        new_info: &ServerInfo,
    ) -> Result<(Vec<String>, Start, String), NodeError> {
        let (s, m) = (self.s, self.m);
        let (old_state, old_slave) = old
            .mariadb_gtid_state()
            .await
            .map_err(|e| self.fail(&s.name, e))?;
        let (new_state, new_slave) = new
            .mariadb_gtid_state()
            .await
            .map_err(|e| self.fail(&m.name, e))?;
        if old_state.trim().is_empty() && old_slave.trim().is_empty() {
            return Err(refused(format!(
                "{} has no GTID state to compare (binary log off, or reset): what it holds \
                 cannot be checked; rebuild it from a backup of {}",
                s.name, m.name
            )));
        }
        // Everything the old server holds: its own binlog and what it applied.
        let o = gtid::mariadb_last_seq([old_state.as_str(), old_slave.as_str()])
            .map_err(|e| self.fail(&s.name, e))?;
        let n = gtid::mariadb_last_seq([new_state.as_str(), new_slave.as_str()])
            .map_err(|e| self.fail(&m.name, e))?;
        // A former master's own writes are in its binlog, not in its slave position:
        // replication starts after whichever is further, per domain.
        let slave_pos = gtid::merge_mariadb([
            old_info.gtid.binlog_pos.as_str(),
            old_info.gtid.slave_pos.as_str(),
        ])
        .map_err(|e| self.fail(&s.name, e))?;
        Ok((
            rejoin::mariadb_errant(&o, &n),
            Start {
                slave_pos: Some(slave_pos),
                position: ReplicaPosition::Gtid,
                reach: Target::Gtid(new_info.gtid.executed.clone()),
            },
            Self::gtid_held(old_info, new_info),
        ))
    }

    /// MySQL GTID: the master computes both differences (GTID_SUBTRACT is exact on MySQL's
    /// interval sets).
    async fn mysql(
        &self,
        new: &mut Session,
        old_info: &ServerInfo,
        new_info: &ServerInfo,
    ) -> Result<(Vec<String>, Start, String), NodeError> {
        let (s, m) = (self.s, self.m);
        if old_info.gtid.executed.trim().is_empty() {
            return Err(refused(format!(
                "{} has no GTID state to compare: rebuild it from a backup of {}",
                s.name, m.name
            )));
        }
        let q = |v: &str| v.replace(['\'', '\\'], "");
        let sql = format!(
            "SELECT GTID_SUBTRACT('{}', @@GLOBAL.gtid_executed) AS e, \
             GTID_SUBTRACT(@@GLOBAL.gtid_purged, '{}') AS p",
            q(&old_info.gtid.executed),
            q(&old_info.gtid.executed)
        );
        let rows = new.rows(&sql).await.map_err(|e| self.fail(&m.name, e))?;
        let col = |k: &str| {
            rows.first()
                .and_then(|r| r.get(k).cloned().flatten())
                .filter(|e| !e.trim().is_empty())
        };
        if let Some(p) = col("p") {
            return Err(refused(format!(
                "{} purged binary logs {} still needs ({p}): rebuild it from a backup",
                m.name, s.name
            )));
        }
        Ok((
            col("e").into_iter().collect(),
            Start {
                slave_pos: None,
                position: ReplicaPosition::Gtid,
                reach: Target::Gtid(new_info.gtid.executed.clone()),
            },
            Self::gtid_held(old_info, new_info),
        ))
    }

    fn gtid_held(old_info: &ServerInfo, new_info: &ServerInfo) -> String {
        format!("GTID {} ⊆ {}", old_info.position(), new_info.gtid.executed)
    }

    /// File/position: every event of the server's binlog from the failover point on, through
    /// its later files, that it wrote itself must be a header, a rotation or a stop (a restart
    /// writes those); any other was written there and the master lacks it. Events that came by
    /// replication (another server id) the master has.
    async fn filepos(
        &self,
        old: &mut Session,
        new: &mut Session,
        own_id: u32,
        point: &FilePosPoint,
    ) -> Result<(Vec<String>, Start, String), NodeError> {
        let (s, m) = (self.s, self.m);
        let logs = old
            .binary_logs()
            .await
            .map_err(|e| self.fail(&s.name, binlog_access(e)))?;
        let rebuild = format!("rebuild it from a backup of {}", m.name);
        let Some(first) = logs.iter().position(|(f, _)| *f == point.stop_at.file) else {
            return Err(refused(format!(
                "{} no longer holds {} (its binary logs: {}; purged or reset): whether it wrote \
                 anything past the failover point {} cannot be checked; {rebuild}",
                s.name,
                point.stop_at.file,
                match logs.as_slice() {
                    [] => "none".to_string(),
                    [one] => one.0.clone(),
                    [a, .., z] => format!("{} … {}", a.0, z.0),
                },
                point.stop_at,
            )));
        };
        let size = logs[first].1;
        if size < point.stop_at.pos {
            return Err(refused(format!(
                "{}'s {} ends at {size}, before the failover point {}: it lost the end of its \
                 binlog (or the file was reset); {rebuild}",
                s.name, point.stop_at.file, point.stop_at
            )));
        }
        let (writes, complete) = self
            .scan(old, &logs[first..], point.stop_at.pos, own_id)
            .await?;
        let mut errant = describe_writes(&writes);
        if !complete {
            errant.push(format!(
                "and possibly more (the scan stopped after {SCAN_LIMIT} events)"
            ));
        }
        let here = new
            .binlog_status()
            .await
            .map_err(|e| self.fail(&m.name, e))?
            .ok_or_else(|| self.fail(&m.name, "binary logging is off"))?;
        Ok((
            errant,
            Start {
                slave_pos: None,
                position: ReplicaPosition::FilePos {
                    file: point.start_at.file.clone(),
                    pos: point.start_at.pos,
                },
                reach: Target::Coord(here),
            },
            format!(
                "nothing of its own in its binlog past the failover point {} of run {}; {} took \
                 over at {}",
                point.stop_at, point.run, m.name, point.start_at
            ),
        ))
    }

    /// The server's own writes among the events of `logs` (the first from `from`), page by
    /// page; false when the scan stopped at its limit. Each file must be read to the size the
    /// listing gave it: a scan that ends short (an unreadable tail, a position past 4 GiB) is
    /// refused rather than taken as clean.
    async fn scan(
        &self,
        old: &mut Session,
        logs: &[(String, u64)],
        from: u64,
        own_id: u32,
    ) -> Result<(Vec<BinlogEvent>, bool), NodeError> {
        let name = &self.s.name;
        let mut writes = Vec::new();
        let mut scanned = 0;
        for (k, (file, size)) in logs.iter().enumerate() {
            let mut at = if k == 0 { from } else { 4 };
            loop {
                let page = old.binlog_events(file, at, PAGE).await.map_err(|e| {
                    self.fail(name, format!("reading {file}: {}", binlog_access(e)))
                })?;
                scanned += page.len();
                writes.extend(page.iter().filter(|e| is_own_write(e, own_id)).cloned());
                if scanned >= SCAN_LIMIT {
                    return Ok((writes, false));
                }
                match page.last() {
                    Some(e) if e.end_pos > at => at = e.end_pos,
                    _ => break,
                }
                if (page.len() as u64) < PAGE {
                    break;
                }
            }
            if at < *size {
                return Err(self.fail(
                    name,
                    format!(
                        "its {file} could be read only to {at} of {size} bytes: whether it holds \
                         anything the master lacks cannot be checked"
                    ),
                ));
            }
        }
        Ok((writes, true))
    }
}

/// A binlog read refused for want of a privilege says which one.
fn binlog_access(e: crate::adapters::mysql::MysqlError) -> String {
    match e.server_code() {
        Some(1227) => format!(
            "{e} (reading binary logs needs REPLICATION SLAVE on MySQL, BINLOG MONITOR or \
             REPLICATION CLIENT on MariaDB, for the manager's user)"
        ),
        _ => e.to_string(),
    }
}
