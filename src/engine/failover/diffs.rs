//! Phase 3.4, diff log generation (binlog file/position groups): every survivor's SQL thread
//! has finished its relay log and stopped; the planner picks whose relay logs to cut the diffs
//! from — a latest replica whose relay logs reach back to every survivor's applied position
//! (MHA: apply_diff_relay_logs --command=find), else the one that reaches back to most — and
//! each survivor's range: from its applied position to the end of those relay logs (then the
//! salvaged binlog). A survivor the relay logs do not reach back to is marked (MHA's
//! lack_relay_log): it is left out in phase 4, and a new master in that state aborts phase 3.5.

use super::latest::{latest, oldest};
use super::PlanError;
use crate::model::{BinlogCoord, DiffPlan, DiffRange, SurvivorRelay};
use crate::state::group::ReplicationMode;

/// GTID groups need no diff files: why, for the journal.
pub fn skip(mode: ReplicationMode) -> Option<&'static str> {
    (mode != ReplicationMode::FilePos).then_some(
        "GTID replication: relay logs and auto-position bring every replica level, no diff \
         files needed",
    )
}

/// The plan for the survivors (in group order) as they stand; None when every diff was placed
/// by an earlier attempt (nothing left to cut).
pub fn plan(survivors: &[(String, SurvivorRelay)]) -> Option<DiffPlan> {
    let pending: Vec<(String, BinlogCoord)> = survivors
        .iter()
        .filter_map(|(n, s)| match s {
            SurvivorRelay::Finished { exec, .. } => Some((n.clone(), exec.clone())),
            SurvivorRelay::Placed { .. } => None,
        })
        .collect();
    if pending.is_empty() {
        return None;
    }
    let reads: Vec<(&String, &BinlogCoord)> = survivors
        .iter()
        .filter_map(|(n, s)| match s {
            SurvivorRelay::Finished { read, .. } => Some((n, read)),
            SurvivorRelay::Placed { read } => read.as_ref().map(|r| (n, r)),
        })
        .collect();
    let latest = latest(reads.iter().map(|(_, r)| *r))?;
    let oldest = oldest(pending.iter().map(|(_, e)| e))?;
    let sources = reads
        .iter()
        .filter(|(_, r)| **r == latest)
        .map(|(n, r)| (n.to_string(), (*r).clone()))
        .collect();
    Some(DiffPlan {
        latest,
        oldest,
        sources,
        pending,
    })
}

/// Picks the relay-log source among the plan's latest replicas, tried in order: the runtime
/// reads one's relay logs and offers them with how many pending survivors they reach back to;
/// the one reaching most is kept (the first among equals). `L` is whatever the runtime read
/// (kept for the one picked); the engine never looks into it.
pub struct SourcePicker<L> {
    pending: usize,
    best: Option<(String, usize, L)>,
    errors: Vec<String>,
}

impl<L> SourcePicker<L> {
    pub fn new(plan: &DiffPlan) -> Self {
        SourcePicker {
            pending: plan.pending.len(),
            best: None,
            errors: Vec::new(),
        }
    }

    /// `name` (which read up to `read`): its relay logs (read as `log`) reach back to
    /// `covered` pending survivors, or could not be read (why). True: they reach back to every
    /// pending survivor, try no further.
    pub fn offer(
        &mut self,
        name: &str,
        read: &BinlogCoord,
        relay: Result<(usize, L), String>,
    ) -> bool {
        match relay {
            Err(e) => {
                self.errors.push(format!("{name} ({read}): {e}"));
                false
            }
            Ok((covered, log)) => {
                if self.best.as_ref().is_none_or(|(_, b, _)| covered > *b) {
                    self.best = Some((name.to_string(), covered, log));
                }
                covered == self.pending
            }
        }
    }

    /// The source picked and its log; Err when no latest replica's relay logs could be read.
    pub fn finish(self) -> Result<(String, L), PlanError> {
        match self.best {
            Some((name, _, log)) => Ok((name, log)),
            None => Err(PlanError::NoRelayLogs(self.errors)),
        }
    }
}

/// Each pending survivor's range in `source`'s relay logs (which start at `start` and reach
/// back to the applied positions `covers` says).
pub fn ranges(
    plan: &DiffPlan,
    source: &str,
    start: Option<&BinlogCoord>,
    covers: impl Fn(&BinlogCoord) -> bool,
) -> Vec<DiffRange> {
    plan.pending
        .iter()
        .map(|(server, exec)| DiffRange {
            server: server.clone(),
            from: exec.clone(),
            lack_relay_log: (!covers(exec)).then(|| {
                format!(
                    "{source}'s relay logs do not reach back to {exec} (they start at {}): \
                     {server} cannot be brought level (MHA: lack_relay_log)",
                    start.map(|c| c.to_string()).unwrap_or("-".into()),
                )
            }),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::failover::fixtures::coord;

    fn finished(name: &str, exec: BinlogCoord, read: BinlogCoord) -> (String, SurvivorRelay) {
        (name.into(), SurvivorRelay::Finished { exec, read })
    }

    /// Relay logs that start at `start` reach back to every position from there on.
    fn from(start: BinlogCoord) -> impl Fn(&BinlogCoord) -> bool {
        move |c| c >= &start
    }

    /// The plan: the latest read position over every survivor (a placed diff's read counts
    /// too), the oldest applied position over those that need a diff, the latest replicas as
    /// sources in group order.
    #[test]
    fn plans() {
        let survivors = vec![
            finished("db2", coord(1, 300), coord(1, 900)),
            finished("db3", coord(1, 100), coord(1, 400)),
            (
                "db4".into(),
                SurvivorRelay::Placed {
                    read: Some(coord(1, 900)),
                },
            ),
            finished("db5", coord(1, 900), coord(1, 900)),
        ];
        let p = plan(&survivors).unwrap();
        assert_eq!(p.latest, coord(1, 900));
        assert_eq!(p.oldest, coord(1, 100));
        let names =
            |v: &[(String, BinlogCoord)]| v.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
        assert_eq!(names(&p.sources), ["db2", "db4", "db5"]);
        assert_eq!(names(&p.pending), ["db2", "db3", "db5"]);
        // Every diff placed before: nothing to cut.
        let placed = vec![("db2".to_string(), SurvivorRelay::Placed { read: None })];
        assert_eq!(plan(&placed), None);
        assert!(skip(ReplicationMode::FilePos).is_none());
        assert!(skip(ReplicationMode::MariadbGtid)
            .unwrap()
            .contains("no diff files needed"));
        assert!(skip(ReplicationMode::MysqlGtid).is_some());
    }

    /// The source: the first latest replica reaching back to everyone stops the search; else
    /// the one reaching most; unreadable ones are named when none could be read.
    #[test]
    fn source_picking() {
        let p = plan(&[
            finished("db2", coord(1, 100), coord(1, 900)),
            finished("db3", coord(1, 500), coord(1, 900)),
            finished("db4", coord(1, 900), coord(1, 900)),
        ])
        .unwrap();
        // (offers in order: name, covered or error) → (stopped after, picked).
        type Case<'a> = (
            &'a [(&'a str, Result<usize, &'a str>)],
            usize,
            Result<&'a str, &'a str>,
        );
        let cases: Vec<Case> = vec![
            (&[("db2", Ok(3)), ("db3", Ok(3))], 1, Ok("db2")),
            (&[("db2", Ok(1)), ("db3", Ok(3))], 2, Ok("db3")),
            (&[("db2", Ok(2)), ("db3", Ok(2)), ("db4", Ok(1))], 3, Ok("db2")),
            (&[("db2", Err("no relay_log_index")), ("db3", Ok(2))], 2, Ok("db3")),
            (
                &[("db2", Err("ssh: refused")), ("db3", Err("gone"))],
                2,
                Err("no latest replica's relay logs could be read: db2 (mysql-bin.000001:900): ssh: refused; db3 (mysql-bin.000001:900): gone"),
            ),
        ];
        for (offers, want_tried, want) in cases {
            let mut picker = SourcePicker::new(&p);
            let mut tried = 0;
            for (name, covered) in offers.iter() {
                tried += 1;
                let relay = covered
                    .map(|c| (c, name.to_string()))
                    .map_err(str::to_string);
                if picker.offer(name, &coord(1, 900), relay) {
                    break;
                }
            }
            let got = picker.finish();
            assert_eq!(tried, want_tried, "{offers:?}");
            match (got, want) {
                (Ok((n, log)), Ok(w)) => assert_eq!((n.as_str(), log.as_str()), (w, w)),
                (Err(e), Err(w)) => assert_eq!(e.to_string(), w),
                (got, want) => panic!("{offers:?}: {got:?} vs {want:?}"),
            }
        }
    }

    /// Each survivor's range starts at its applied position; one the relay logs do not reach
    /// back to gets MHA's lack_relay_log.
    #[test]
    fn ranges_and_missing_relay_logs() {
        let p = plan(&[
            finished("db2", coord(2, 50), coord(2, 900)),
            finished("db3", coord(1, 700), coord(2, 400)),
            finished("db4", coord(2, 900), coord(2, 900)),
        ])
        .unwrap();
        let start = coord(2, 4);
        let r = ranges(&p, "db2", Some(&start), from(start.clone()));
        assert_eq!(r.len(), 3);
        assert_eq!(
            (r[0].from.clone(), r[0].lack_relay_log.clone()),
            (coord(2, 50), None)
        );
        assert_eq!(
            r[1].lack_relay_log.as_deref(),
            Some(
                "db2's relay logs do not reach back to mysql-bin.000001:700 (they start at \
                 mysql-bin.000002:4): db3 cannot be brought level (MHA: lack_relay_log)"
            )
        );
        assert_eq!(r[2].lack_relay_log, None);
        // Relay logs reaching back to everyone: no lack.
        let r = ranges(&p, "db2", Some(&coord(1, 4)), from(coord(1, 4)));
        assert!(r.iter().all(|d| d.lack_relay_log.is_none()));
        let r = ranges(&p, "db4", None, |_| false);
        assert!(r[0]
            .lack_relay_log
            .as_deref()
            .unwrap()
            .contains("(they start at -)"));
    }
}
