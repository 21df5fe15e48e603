//! The dead master's binlog as far as the survivors can reconstruct it: events read from a
//! replica's relay logs or from the master's own binlog files, each placed at its coordinates
//! (master file, end position), so the manager can answer MHA's questions — do these relay logs
//! reach back to a replica's position (`find`)? what follows it (`generate`)? — and cut a file
//! `mysqlbinlog | mysql` can replay (`apply`), transaction-aligned and without what the target
//! already has.

use super::{kind, BinlogError, Decoded, Decoder, Event, Events, Gtid, InnerEvent, MAGIC};
use crate::model::BinlogCoord;

/// An event of the master's binlog.
#[derive(Clone, Debug)]
pub struct MasterEvent {
    /// The master's binlog file the event belongs to.
    pub file: String,
    /// Its end position in that file.
    pub end: u64,
    pub kind: u8,
    /// The transaction it opens (GTID events only), and whether that is a standalone statement.
    pub gtid: Option<(Gtid, bool)>,
    /// The statement of a query event (to tell BEGIN from COMMIT and DDL).
    pub query: Option<String>,
    /// The events inside a MySQL 8 Transaction_payload event (its bytes are replayed whole).
    pub inner: Vec<InnerEvent>,
    pub bytes: Vec<u8>,
    segment: usize,
}

impl MasterEvent {
    /// File bookkeeping that is not replayed: format description, rotate, GTID lists,
    /// checkpoints, stop.
    pub fn is_structural(&self) -> bool {
        matches!(
            self.kind,
            kind::FORMAT_DESCRIPTION
                | kind::ROTATE
                | kind::STOP
                | kind::HEARTBEAT
                | kind::MYSQL_PREVIOUS_GTIDS
                | kind::MARIADB_GTID_LIST
                | kind::MARIADB_BINLOG_CHECKPOINT
        )
    }

    /// Whether the event opens a transaction: a GTID event, or the anonymous GTID event MySQL
    /// 5.7+ writes before every transaction when gtid_mode=OFF.
    pub fn opens_transaction(&self) -> bool {
        self.gtid.is_some() || self.kind == kind::MYSQL_ANONYMOUS_GTID
    }

    pub fn coord(&self) -> BinlogCoord {
        BinlogCoord {
            file: self.file.clone(),
            pos: self.end,
        }
    }
}

/// A stretch of one master file held without a gap.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Segment {
    file: String,
    start: u64,
    end: u64,
}

/// Events of the master's binlog in order, with the stretches they cover.
#[derive(Clone, Debug, Default)]
pub struct MasterLog {
    /// The master's format description event (for the files cut from this log).
    fde: Option<Vec<u8>>,
    events: Vec<MasterEvent>,
    segments: Vec<Segment>,
}

/// A replayable file cut from a [`MasterLog`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Assembled {
    /// Magic number, format description, then the events: input for `mysqlbinlog`.
    pub bytes: Vec<u8>,
    pub events: u64,
    pub transactions: u64,
    /// Transactions left out because the target already has them (by GTID).
    pub skipped: u64,
    /// Events left out at the end: a transaction whose end the log does not have.
    pub incomplete_events: u64,
    pub first_gtid: Option<Gtid>,
    pub last_gtid: Option<Gtid>,
    /// The coordinates of the last event kept (master file:end).
    pub last: Option<BinlogCoord>,
}

impl MasterLog {
    /// Reads a replica's relay-log files (index order): the replica's own bookkeeping is left
    /// out, the master's rotates tell which master file the events that follow belong to.
    pub fn from_relay_logs(files: &[(String, Vec<u8>)]) -> Result<MasterLog, BinlogError> {
        let mut log = MasterLog::default();
        for (name, data) in files {
            let mut dec = Decoder::new(name);
            let mut current: Option<String> = log.segments.last().map(|s| s.file.clone());
            for ev in Events::of_file(name, data)? {
                let ev = ev?;
                if ev.kind == kind::FORMAT_DESCRIPTION {
                    let d = dec.decode(&ev)?;
                    if !ev.is_relay_own() {
                        // The master's own FDE, relayed: the format of the events that follow.
                        log.fde = Some(ev.bytes.to_vec());
                        if let Some(f) = &current {
                            log.push(f, &ev, d);
                        }
                    }
                    continue;
                }
                if ev.is_relay_own() {
                    continue;
                }
                let d = dec.decode(&ev)?;
                if let Some((pos, next)) = d.rotate.clone() {
                    // A real rotate is the last event of its file; the fake one a master sends
                    // on connect only names where the stream starts.
                    if ev.end_log_pos > 0 {
                        if let Some(f) = &current {
                            log.push(f, &ev, d);
                        }
                    }
                    log.start_segment(&next, pos);
                    current = Some(next);
                    continue;
                }
                if ev.flags & super::FLAG_ARTIFICIAL != 0 || ev.end_log_pos == 0 {
                    continue;
                }
                let Some(f) = &current else {
                    return Err(BinlogError::Corrupt {
                        file: name.clone(),
                        offset: ev.offset,
                        why: "a master event before any rotate names its file".into(),
                    });
                };
                log.push(f, &ev, d);
            }
        }
        Ok(log)
    }

    /// Adds events of the master's own binlog file `file`: `fde` is the file's format
    /// description event, `data` the file's bytes from `offset` (an event boundary) on.
    /// Returns how many bytes at the end did not form a complete event.
    pub fn push_binlog(
        &mut self,
        file: &str,
        fde: &[u8],
        offset: u64,
        data: &[u8],
    ) -> Result<usize, BinlogError> {
        let fde_ev = Events::of_file(file, fde)?
            .next()
            .transpose()?
            .filter(|e| e.kind == kind::FORMAT_DESCRIPTION)
            .ok_or_else(|| BinlogError::Corrupt {
                file: file.to_string(),
                offset: 4,
                why: "the first event is not a format description".into(),
            })?;
        let mut dec = Decoder::new(file);
        dec.decode(&fde_ev)?;
        if self.fde.is_none() {
            self.fde = Some(fde_ev.bytes.to_vec());
        }
        self.start_segment(file, offset);
        let mut it = Events::new(file, data, offset);
        for ev in it.by_ref() {
            let ev = ev?;
            let d = dec.decode(&ev)?;
            self.push(file, &ev, d);
        }
        Ok(it.tail())
    }

    /// Reads back a file [`assemble`] wrote (a salvage copy or a diff placed on a host): its
    /// format description, then events that keep the master's end positions.
    pub fn from_assembled(name: &str, data: &[u8]) -> Result<MasterLog, BinlogError> {
        let mut log = MasterLog::default();
        let mut dec = Decoder::new(name);
        for ev in Events::of_file(name, data)? {
            let ev = ev?;
            let d = dec.decode(&ev)?;
            if ev.kind == kind::FORMAT_DESCRIPTION && log.fde.is_none() {
                log.fde = Some(ev.bytes.to_vec());
                log.start_segment(name, 0);
                continue;
            }
            log.push(name, &ev, d);
        }
        if log.fde.is_none() {
            return Err(BinlogError::Corrupt {
                file: name.to_string(),
                offset: 4,
                why: "no format description event".into(),
            });
        }
        Ok(log)
    }

    fn start_segment(&mut self, file: &str, pos: u64) {
        if let Some(s) = self.segments.last() {
            if s.file == file && s.end == pos {
                return;
            }
        }
        self.segments.push(Segment {
            file: file.to_string(),
            start: pos,
            end: pos,
        });
    }

    fn push(&mut self, file: &str, ev: &Event, d: Decoded) {
        if self.segments.last().is_none_or(|s| s.file != file) {
            self.start_segment(file, ev.offset);
        }
        let segment = self.segments.len() - 1;
        if let Some(s) = self.segments.last_mut() {
            s.end = s.end.max(ev.end_log_pos);
        }
        self.events.push(MasterEvent {
            file: file.to_string(),
            end: ev.end_log_pos,
            kind: ev.kind,
            gtid: d.gtid,
            query: d.query,
            inner: d.inner,
            bytes: ev.bytes.to_vec(),
            segment,
        });
    }

    /// The master's format description event, if the log has seen one.
    pub fn fde(&self) -> Option<&[u8]> {
        self.fde.as_deref()
    }

    /// The last coordinates the log reaches.
    pub fn end(&self) -> Option<BinlogCoord> {
        self.segments.last().map(|s| BinlogCoord {
            file: s.file.clone(),
            pos: s.end,
        })
    }

    /// The earliest coordinates the log reaches back to.
    pub fn start(&self) -> Option<BinlogCoord> {
        self.segments.first().map(|s| BinlogCoord {
            file: s.file.clone(),
            pos: s.start,
        })
    }

    /// Where in `events` the log continues after `at`, if `at` is an event boundary the log
    /// holds (MHA's `find`).
    fn index_after(&self, at: &BinlogCoord) -> Option<usize> {
        let (si, seg) = self
            .segments
            .iter()
            .enumerate()
            .rev()
            .find(|(_, s)| s.file == at.file && s.start <= at.pos && at.pos <= s.end)?;
        if seg.start == at.pos {
            return Some(
                self.events
                    .iter()
                    .position(|e| e.segment >= si)
                    .unwrap_or(self.events.len()),
            );
        }
        self.events
            .iter()
            .position(|e| e.segment == si && e.end == at.pos)
            .map(|i| i + 1)
    }

    /// Whether the log reaches back to `at` (so it can bring a replica at `at` level).
    pub fn covers(&self, at: &BinlogCoord) -> bool {
        self.index_after(at).is_some()
    }

    /// The events after `at`; None if the log does not reach back to `at`.
    pub fn after(&self, at: &BinlogCoord) -> Option<&[MasterEvent]> {
        self.index_after(at).map(|i| &self.events[i..])
    }

    /// Every event (for a salvaged binlog, which starts where the salvage started).
    pub fn events(&self) -> &[MasterEvent] {
        &self.events
    }
}

/// Cuts `parts` (in order; e.g. a relay-log diff, then the salvaged master binlog) into one
/// replayable file behind `fde`. Transactions are kept whole: a group opened by a GTID event
/// is left out when `has(gtid)` (the target already has it), and a last group without its end
/// (COMMIT, XID, or a standalone statement) is left out and counted in `incomplete_events`.
pub fn assemble(fde: &[u8], parts: &[&[MasterEvent]], has: impl Fn(&Gtid) -> bool) -> Assembled {
    let events = parts
        .iter()
        .flat_map(|p| p.iter())
        .filter(|e| !e.is_structural());
    // Group: the events from one (anonymous) GTID event to the next (events before the first
    // one form a group of their own: the tail of a transaction whose start was applied already).
    let mut groups: Vec<Vec<&MasterEvent>> = Vec::new();
    for e in events {
        if e.opens_transaction() || groups.is_empty() {
            groups.push(Vec::new());
        }
        groups.last_mut().expect("a group").push(e);
    }
    let mut out = Assembled {
        bytes: [&MAGIC[..], fde].concat(),
        ..Assembled::default()
    };
    let n = groups.len();
    for (i, g) in groups.into_iter().enumerate() {
        let opener = g[0].gtid.as_ref();
        if i + 1 == n && !complete(&g) {
            out.incomplete_events = g.len() as u64;
            break;
        }
        if let Some((gtid, _)) = opener {
            if has(gtid) {
                out.skipped += 1;
                continue;
            }
            if out.first_gtid.is_none() {
                out.first_gtid = Some(gtid.clone());
            }
            out.last_gtid = Some(gtid.clone());
        }
        out.transactions += 1;
        for e in &g {
            out.bytes.extend_from_slice(&e.bytes);
            out.events += 1;
        }
        out.last = g.last().map(|e| e.coord());
    }
    out
}

/// Whether a group ends its transaction. A Transaction_payload event ends it when its own
/// last event does (MySQL writes the whole transaction, XID included, into one payload).
fn complete(g: &[&MasterEvent]) -> bool {
    let standalone = g[0].gtid.as_ref().is_some_and(|(_, s)| *s);
    let last = g[g.len() - 1];
    let (kind, query) = match last.inner.last() {
        Some(i) if last.kind == kind::TRANSACTION_PAYLOAD => (i.kind, i.query.as_deref()),
        _ => (last.kind, last.query.as_deref()),
    };
    match kind {
        kind::XID | kind::MYSQL_XA_PREPARE => true,
        kind::QUERY => {
            let q = query.unwrap_or("").trim().to_ascii_uppercase();
            if standalone {
                true
            } else {
                q.starts_with("COMMIT") || q.starts_with("ROLLBACK") || q.starts_with("XA ")
                    // A DDL after a MySQL GTID event (no standalone flag there).
                    || (g.len() == 2 && q != "BEGIN")
            }
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::file;
    use super::*;

    fn relay() -> MasterLog {
        let files: Vec<(String, Vec<u8>)> = (1..=4)
            .map(|i| {
                let n = format!("relay-bin.00000{i}");
                let d = file(&n);
                (n, d)
            })
            .collect();
        MasterLog::from_relay_logs(&files).unwrap()
    }

    fn at(file: &str, pos: u64) -> BinlogCoord {
        BinlogCoord {
            file: file.into(),
            pos,
        }
    }

    fn seqs(a: &[MasterEvent]) -> Vec<u64> {
        a.iter()
            .filter_map(|e| match &e.gtid {
                Some((Gtid::Mariadb { seq, .. }, _)) => Some(*seq),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn relay_logs_placed_at_master_coordinates() {
        let log = relay();
        assert_eq!(log.start(), Some(at("mysql-bin.000001", 4)));
        // The replica read up to mysql-bin.000002:1407 (tests/fixtures/binlog/replica-status.txt).
        assert_eq!(log.end(), Some(at("mysql-bin.000002", 1407)));
        assert!(log.fde().is_some());
        // Every event boundary of the master is found, inside a file and across the rotate.
        for (f, p) in [
            ("mysql-bin.000001", 4),
            ("mysql-bin.000001", 836),
            ("mysql-bin.000001", 1274),
            ("mysql-bin.000001", 1321),
            ("mysql-bin.000002", 4),
            ("mysql-bin.000002", 604),
            ("mysql-bin.000002", 1407),
        ] {
            assert!(log.covers(&at(f, p)), "{f}:{p}");
        }
        // Not a boundary, not held.
        assert!(!log.covers(&at("mysql-bin.000001", 700)));
        assert!(!log.covers(&at("mysql-bin.000002", 1449)));
        assert!(!log.covers(&at("mysql-bin.000003", 4)));
    }

    #[test]
    fn diff_after_a_lagging_replica() {
        let log = relay();
        // A replica that applied up to the first insert of mysql-bin.000002 (GTID 0-1-6).
        let rest = log.after(&at("mysql-bin.000002", 604)).unwrap();
        assert_eq!(seqs(rest), vec![7, 8, 9]);
        // From the end of the first file: everything of the second.
        let rest = log.after(&at("mysql-bin.000001", 1274)).unwrap();
        assert_eq!(seqs(rest), vec![6, 7, 8, 9]);
        assert!(log.after(&at("mysql-bin.000002", 1407)).unwrap().is_empty());
    }

    #[test]
    fn salvage_continues_the_relay_diff() {
        let log = relay();
        let bin = file("mysql-bin.000002");
        let mut saved = MasterLog::default();
        let tail = saved
            .push_binlog("mysql-bin.000002", &bin[..1024], 1407, &bin[1407..])
            .unwrap();
        assert_eq!(tail, 0);
        assert_eq!(seqs(saved.events()), vec![10, 11]);
        assert_eq!(saved.end(), Some(at("mysql-bin.000002", 1848)));
        let diff = log.after(&at("mysql-bin.000002", 604)).unwrap();
        let a = assemble(log.fde().unwrap(), &[diff, saved.events()], |_| false);
        assert_eq!(a.transactions, 5);
        assert_eq!(a.first_gtid.unwrap().to_string(), "0-1-7");
        assert_eq!(a.last_gtid.unwrap().to_string(), "0-1-11");
        assert_eq!(a.last, Some(at("mysql-bin.000002", 1848)));
        // The result is itself a binlog file: magic, FDE, then events; read back, it cuts the
        // same again (what a resumed run does with a diff placed on a host).
        let evs: Vec<_> = Events::of_file("a", &a.bytes).unwrap().collect();
        assert_eq!(evs.len() as u64, a.events + 1);
        let back = MasterLog::from_assembled("a", &a.bytes).unwrap();
        let again = assemble(back.fde().unwrap(), &[back.events()], |_| false);
        assert_eq!(again.bytes, a.bytes);
        assert_eq!(again.transactions, a.transactions);
    }

    #[test]
    fn assemble_skips_what_the_target_has_and_drops_a_cut_transaction() {
        let bin = file("mysql-bin.000002");
        let mut saved = MasterLog::default();
        // Cut inside the last transaction (0-1-11 ends at 1848 with its XID).
        let cut = 1800;
        let tail = saved
            .push_binlog("mysql-bin.000002", &bin[..1024], 385, &bin[385..cut])
            .unwrap();
        assert_eq!(tail, 1800 - 1772);
        let has = |g: &Gtid| matches!(g, Gtid::Mariadb { seq, .. } if *seq <= 7);
        let a = assemble(saved.fde().unwrap(), &[saved.events()], has);
        assert_eq!(a.skipped, 2, "0-1-6 and 0-1-7 are on the target already");
        assert_eq!(a.first_gtid.unwrap().to_string(), "0-1-8");
        assert_eq!(a.last_gtid.unwrap().to_string(), "0-1-10");
        assert_eq!(
            a.incomplete_events, 3,
            "GTID, annotate, table map of 0-1-11"
        );
    }

    #[test]
    fn a_transaction_split_between_parts_is_kept_whole() {
        let bin = file("mysql-bin.000002");
        // 0-1-9 spans 1042..1407; split it at 1230 (between its two row events).
        let mut first = MasterLog::default();
        first
            .push_binlog("mysql-bin.000002", &bin[..1024], 823, &bin[823..1230])
            .unwrap();
        let mut second = MasterLog::default();
        second
            .push_binlog("mysql-bin.000002", &bin[..1024], 1230, &bin[1230..1407])
            .unwrap();
        let a = assemble(
            first.fde().unwrap(),
            &[first.events(), second.events()],
            |_| false,
        );
        assert_eq!(a.transactions, 2);
        assert_eq!(a.incomplete_events, 0);
        assert_eq!(a.last, Some(at("mysql-bin.000002", 1407)));
    }
}
