//! Phase 3.4 for binlog file/position groups: every survivor's SQL thread finishes what its
//! relay log holds and stops; from a latest replica's relay logs the manager cuts, for each
//! survivor, everything after the position it applied — followed by the salvaged binlog — and
//! places it on that survivor's host. Phases 3.5 and 4 apply these files (MHA's order: relay
//! logs first, then the dead master's binlog) and journal each apply.

use std::time::{Duration, Instant};

use super::apply::{Have, FILE_READ, FILE_WRITE};
use super::{abort, RunCtx, StepError, StepResult};
use crate::adapters::binlog::{assemble, MasterEvent, MasterLog};
use crate::adapters::mysql::Session;
use crate::adapters::ssh::remote;
use crate::engine::failover as plan;
use crate::engine::failover::diffs::SourcePicker;
use crate::model::{BinlogCoord, DiffPlan, DiffRange, SurvivorRelay};
use crate::runtime::error::RuntimeError;
use crate::state::group::ServerSpec;
use crate::state::journal::{FailoverRun, StepName};
use crate::state::recovery::{DiffFile, RecoveryNote};

/// A SQL thread that has not moved for this long has applied all it can (what is left is a
/// transaction whose end never arrived).
const SQL_IDLE: Duration = Duration::from_secs(2);

impl RunCtx {
    /// Phase 3.4: the survivors' relay logs finished (facts), the planner's source and
    /// ranges, each survivor's diff placed on its host and journaled.
    pub(super) async fn generate_diffs(&mut self, run: &FailoverRun) -> StepResult {
        if let Some(skip) = plan::diffs::skip(self.mode()) {
            return Ok(skip.into());
        }
        let mut lines = Vec::new();
        // 1. Every survivor applies what its relay log holds, then stops.
        let relay = self.finish_relay_logs(run, &mut lines).await?;
        let Some(diff_plan) = plan::diffs::plan(&relay) else {
            return Ok(lines.join("; "));
        };
        // 2. The relay logs of a latest replica that reach back to every survivor.
        let (source, log) = self.pick_source(&diff_plan).await?;
        let salvage = self.salvaged(run).await?;
        let fde = salvage
            .fde()
            .or(log.fde())
            .ok_or_else(|| abort("no format description event in the relay logs"))?
            .to_vec();
        // 3. One file per survivor: relay-log events after its position, then the salvage.
        let ranges =
            plan::diffs::ranges(&diff_plan, &source, log.start().as_ref(), |c| log.covers(c));
        for range in ranges {
            let s = self.server(&range.server)?;
            let events = [log.after(&range.from).unwrap_or_default(), salvage.events()];
            let diff = self.place_diff(&s, &range, &source, &fde, &events).await?;
            lines.push(diff_line(&s.name, &range.from, &source, &diff));
            self.record(RecoveryNote::Diff {
                server: s.name.clone(),
                diff,
            })
            .await?;
        }
        Ok(lines.join("; "))
    }

    /// Every survivor's SQL thread applies what its relay log holds, then stops (bounded). One
    /// whose diff a previous attempt placed is only read: its read position still counts when
    /// the latest replica is looked for.
    async fn finish_relay_logs(
        &self,
        run: &FailoverRun,
        lines: &mut Vec<String>,
    ) -> Result<Vec<(String, SurvivorRelay)>, StepError> {
        let mut relay = Vec::new();
        for s in &self.survivors(run) {
            let mut sess = self.connect(s).await.map_err(abort)?;
            if let Some(d) = run.recovery.diffs.get(&s.name) {
                lines.push(format!(
                    "{}: diff already placed ({} bytes)",
                    s.name, d.bytes
                ));
                let read = sess
                    .replica_status()
                    .await
                    .map_err(abort)?
                    .map(|st| st.read);
                sess.close().await;
                relay.push((s.name.clone(), SurvivorRelay::Placed { read }));
                continue;
            }
            let (exec, read) = self.finish_relay_log(s, &mut sess).await?;
            sess.close().await;
            relay.push((s.name.clone(), SurvivorRelay::Finished { exec, read }));
        }
        Ok(relay)
    }

    /// Reads latest replicas' relay logs until one reaches back to every pending survivor;
    /// the planner picks among those read.
    async fn pick_source(&self, diff_plan: &DiffPlan) -> Result<(String, MasterLog), StepError> {
        let mut picker = SourcePicker::new(diff_plan);
        for (name, read) in &diff_plan.sources {
            let s = self.server(name)?;
            let offered = self
                .read_relay_logs(&s, &diff_plan.oldest)
                .await
                .map_err(|e| e.to_string())
                .map(|log| {
                    let covered = diff_plan
                        .pending
                        .iter()
                        .filter(|(_, exec)| log.covers(exec))
                        .count();
                    (covered, log)
                });
            if picker.offer(name, read, offered) {
                break;
            }
        }
        picker.finish().map_err(abort)
    }

    /// One survivor's diff: `events` (its relay-log range, then the salvage) as a replayable
    /// file on its host; or why none could be cut (MHA's lack_relay_log).
    async fn place_diff(
        &self,
        s: &ServerSpec,
        range: &DiffRange,
        source: &str,
        fde: &[u8],
        events: &[&[MasterEvent]],
    ) -> Result<DiffFile, StepError> {
        let mut d = DiffFile {
            from: Some(range.from.clone()),
            source: source.to_string(),
            ..DiffFile::default()
        };
        if let Some(error) = &range.lack_relay_log {
            d.error = Some(error.clone());
            return Ok(d);
        }
        let a = assemble(fde, events, |_| false);
        d.bytes = a.bytes.len() as u64;
        d.transactions = a.transactions;
        d.last_gtid = a.last_gtid.as_ref().map(|g| g.to_string());
        if a.transactions > 0 {
            let path = self.workfile("diff", &s.name);
            let (h, p) = self.ssh_of(s);
            self.guard().await?;
            self.ssh()
                .map_err(abort)?
                .write_file(&h, p, &path, &a.bytes, FILE_WRITE)
                .await
                .map_err(abort)?;
            d.path = path;
        }
        Ok(d)
    }

    /// Waits until the SQL thread applied everything its relay log holds (bounded by
    /// apply_timeout_ms), then stops replication. Returns (applied, read) positions.
    async fn finish_relay_log(
        &self,
        s: &ServerSpec,
        sess: &mut Session,
    ) -> Result<(BinlogCoord, BinlogCoord), StepError> {
        let limit = Duration::from_millis(self.group.spec.failover.apply_timeout_ms);
        let t0 = Instant::now();
        let mut last: Option<(BinlogCoord, Instant)> = None;
        loop {
            let st = sess
                .replica_status()
                .await
                .map_err(abort)?
                .ok_or_else(|| abort(format!("{} is not a replica", s.name)))?;
            if st.last_sql_errno > 0 {
                return Err(abort(format!(
                    "{}: SQL thread error {}: {}",
                    s.name, st.last_sql_errno, st.last_sql_error
                )));
            }
            let caught_up = st.exec == st.read;
            let idle = match &last {
                Some((e, since)) if *e == st.exec => since.elapsed() >= SQL_IDLE,
                _ => {
                    last = Some((st.exec.clone(), Instant::now()));
                    false
                }
            };
            if caught_up || idle || !st.sql_thread {
                self.guard().await?;
                sess.stop_replica(false).await.map_err(abort)?;
                let st = sess
                    .replica_status()
                    .await
                    .map_err(abort)?
                    .ok_or_else(|| abort(format!("{} is not a replica", s.name)))?;
                return Ok((st.exec, st.read));
            }
            if t0.elapsed() >= limit {
                return Err(abort(format!(
                    "{} did not apply its relay log within {limit:?} (applied {}, read {})",
                    s.name, st.exec, st.read
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A replica's relay logs, newest first, as many files as it takes to reach back to
    /// `oldest` (or all of them).
    async fn read_relay_logs(
        &self,
        s: &ServerSpec,
        oldest: &BinlogCoord,
    ) -> Result<MasterLog, RuntimeError> {
        let mut sess = self.connect(s).await?;
        let (mut index, datadir) = sess.relay_log_index().await?;
        sess.close().await;
        if index.is_empty() {
            return Err(RuntimeError::Host("relay_log_index is not set".into()));
        }
        if !index.starts_with('/') {
            index = format!("{}/{index}", datadir.trim_end_matches('/'));
        }
        let pool = self.ssh()?;
        let (h, p) = self.ssh_of(s);
        let out = pool.exec(&h, p, &remote::cat(&index), FILE_READ).await?;
        if !out.success() {
            return Err(RuntimeError::Host(format!(
                "reading {index}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        let dir = index.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
        let files: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(|l| {
                if l.starts_with('/') {
                    l.to_string()
                } else {
                    format!("{dir}/{}", l.trim_start_matches("./"))
                }
            })
            .collect();
        let mut read: Vec<(String, Vec<u8>)> = Vec::new();
        for f in files.iter().rev() {
            let data = pool.read_range(&h, p, f, 0, None, FILE_READ).await?;
            read.insert(0, (f.clone(), data));
            let log = MasterLog::from_relay_logs(&read)?;
            if log.covers(oldest) {
                return Ok(log);
            }
        }
        Ok(MasterLog::from_relay_logs(&read)?)
    }

    /// Applies the diff phase 3.4 placed for `s`, once: a journaled apply is not repeated, and
    /// a repeated one leaves out what the server already has (by GTID). Returns what happened
    /// (without the server's name).
    pub(super) async fn apply_diff(
        &self,
        run: &FailoverRun,
        s: &ServerSpec,
        sess: &mut Session,
        step: StepName,
    ) -> Result<String, StepError> {
        if let Some(d) = run.recovery.applied.get(&s.name) {
            return Ok(format!("diff already applied ({d})"));
        }
        let diff = run
            .recovery
            .diffs
            .get(&s.name)
            .ok_or_else(|| abort(format!("no diff was generated for {}", s.name)))?;
        if let Some(e) = &diff.error {
            return Err(abort(e.clone()));
        }
        let detail = if diff.path.is_empty() {
            "nothing missing".to_string()
        } else {
            let info = sess.server_info().await.map_err(abort)?;
            let resumed = run.attempts(step) > 1;
            if resumed
                && !Have::query(sess, &info)
                    .await
                    .map_err(abort)?
                    .tracks_applied
            {
                return Err(abort(format!(
                    "{}: an earlier attempt may have applied part of {} and this server's GTID \
                     state cannot tell which part (binlog off / no GTIDs): manual recovery needed",
                    s.name, diff.path
                )));
            }
            let (h, p) = self.ssh_of(s);
            let data = self
                .ssh()
                .map_err(abort)?
                .read_range(&h, p, &diff.path, 0, None, FILE_READ)
                .await
                .map_err(abort)?;
            let log = MasterLog::from_assembled(&diff.path, &data).map_err(abort)?;
            let fde = log.fde().unwrap_or_default().to_vec();
            let detail = self.apply_events(s, sess, &fde, &[log.events()]).await?;
            crate::failpoint::hit(crate::failpoint::When::Applied, step, run.attempts(step));
            detail
        };
        self.record(RecoveryNote::Applied {
            server: s.name.clone(),
            detail: detail.clone(),
        })
        .await?;
        Ok(detail)
    }
}

/// The journal's line for one survivor's diff.
fn diff_line(server: &str, exec: &BinlogCoord, source: &str, diff: &DiffFile) -> String {
    match &diff.error {
        Some(e) => format!("{server}: NO DIFF: {e}"),
        None if diff.transactions == 0 => {
            format!("{server}: applied up to {exec}, nothing missing")
        }
        None => format!(
            "{server}: applied up to {exec}; diff of {} transactions ({} bytes) from {source}'s \
             relay logs and the salvaged binlog placed at {}",
            diff.transactions, diff.bytes, diff.path
        ),
    }
}
