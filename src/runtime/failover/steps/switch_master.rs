//! Online switchover, phase 3 (MHA's switch_master): the new master reaches the old master's
//! final position (bounded: a timeout rolls the switch back), stops replicating, becomes
//! writable — the online change script's `start`, read_only=0 — carries the run's epoch and
//! takes the VIP. Journaled as `Writable`: from then on the switch only goes forward.
//!
//! Resumed by a new leader, it checks what is in place: the target decided once, a stopped
//! replication not stopped again, a writable server not made writable again. Resumed after
//! `Writable` was journaled it reads and decides nothing: it does what is left (epoch,
//! semi-sync, VIP; bounded, said) so that phase 4 — which ends any wait for a semi-sync
//! acknowledgement on the new master — comes at once.

use super::*;
use crate::state::switchover::{Switch, SwitchEvent};

/// How long the new master (and in phase 4 each replica) may take to reach the old master's
/// final position: the lag the gates allowed (30 s at least; writes are blocked meanwhile).
pub(super) fn catch_up(sw: &Switch) -> Duration {
    Duration::from_secs(
        sw.options
            .seconds_behind_master_s
            .max(crate::state::switchover::DEFAULT_SECONDS_BEHIND_MASTER_S),
    )
}
/// The new master's epoch and semi-sync after it took over, as a whole.
const AFTER_TAKEOVER: Duration = Duration::from_secs(3);

impl RunCtx {
    /// Waits until `s` applied `position` of the old master (a GTID set or the old master's
    /// binlog coordinates); false when it did not within `within` ([`catch_up`]).
    pub(super) async fn reach(
        &self,
        s: &mut Session,
        position: &Target,
        within: Duration,
    ) -> Result<bool, StepError> {
        match position {
            Target::Gtid(set) if set.is_empty() => Ok(true),
            Target::Gtid(set) => s.wait_gtid(set, within).await.map_err(abort),
            Target::Coord(c) => {
                // MASTER_POS_WAIT answers NULL on a stopped SQL thread (an earlier attempt
                // stopped it): then where it stopped is the answer.
                if let Some(st) = s.replica_status().await.map_err(abort)? {
                    if !st.sql_thread {
                        return Ok(st.exec.partial_cmp(c).is_some_and(|o| o.is_ge()));
                    }
                }
                s.wait_pos(&c.file, c.pos, within).await.map_err(abort)
            }
        }
    }

    pub(super) async fn switch_master(&mut self, run: &FailoverRun) -> StepResult {
        let sw = Self::switch_of(run)?.clone();
        let frozen = sw
            .frozen
            .clone()
            .ok_or_else(|| abort("phase 2 journaled no final position"))?;
        let old = self.server(&run.old_master)?;
        let nm = self.server(&Self::switch_new_master(run)?)?;
        if sw.writable_at_ms.is_some() {
            // Resumed after the point of no return: nothing is read or decided again, what
            // is left is done (phase 4 repoints the replicas next).
            let mut lines = vec![format!("{} took over before (journaled)", nm.name)];
            lines.extend(self.after_takeover(run, &nm, &old).await?);
            return Ok(lines.join("; "));
        }
        let mut s = self.connect(&nm).await.map_err(abort)?;
        let mut lines = Vec::new();
        self.epoch_on(&mut s, run, &nm).await?;
        let info = s.server_info().await.map_err(abort)?;
        let decided = match &run.decided {
            Some(d) => {
                lines.push(format!(
                    "{}: level with the old master (journaled)",
                    nm.name
                ));
                d.clone()
            }
            None => {
                let Some(r) = &info.replica else {
                    return Err(abort(format!(
                        "{} is not a replica: nothing shows it has the old master's final \
                         position",
                        nm.name
                    )));
                };
                if !self.reach(&mut s, &frozen.position, catch_up(&sw)).await? {
                    return Err(abort(format!(
                        "{} did not reach the old master's final position {} within {} s \
                         (IO {:?}, SQL {})",
                        nm.name,
                        frozen.position,
                        catch_up(&sw).as_secs(),
                        r.io_thread,
                        r.sql_thread
                    )));
                }
                lines.push(format!(
                    "{}: reached the old master's final position",
                    nm.name
                ));
                self.guard().await?;
                s.stop_replica(false).await.map_err(abort)?;
                // File/position replicas start on the new master where it stood once level
                // (before its own epoch write, which they then replicate).
                let target = match self.mode() {
                    ReplicationMode::FilePos => Target::Coord(
                        s.binlog_status()
                            .await
                            .map_err(abort)?
                            .ok_or_else(|| abort(format!("{}: binary logging is off", nm.name)))?,
                    ),
                    _ => frozen.position.clone(),
                };
                let d = Decided {
                    new_master: nm.name.clone(),
                    rule: sw.rule.clone(),
                    target,
                };
                let decide = Cmd::Decide {
                    run: self.id,
                    decided: d.clone(),
                };
                if let CmdResult::Rejected(r) = self.commit(decide).await? {
                    return Err(abort(r));
                }
                d
            }
        };
        lines.push(format!("replicas start at {}", decided.target));
        let new_slave = sw.options.orig_master_is_new_slave;
        if let Some(l) = self
            .online_change_script("start", &old, &nm, new_slave)
            .await?
        {
            lines.push(l);
        }
        self.guard().await?;
        if s.server_info().await.map_err(abort)?.read_only {
            s.set_read_only(false).await.map_err(abort)?;
            lines.push(format!("{}: read_only=0", nm.name));
        } else {
            lines.push(format!("{}: already writable", nm.name));
        }
        // The point of no return, journaled at once: from here the switch only goes forward
        // (no roll-back), and the topology follows the new master even if what comes next
        // fails. What comes next is said, not fatal: phase 5 tries the VIP again.
        let writable = Cmd::RecordSwitch {
            run: self.id,
            event: SwitchEvent::Writable {
                at_ms: crate::clock::now_ms(),
            },
        };
        if let CmdResult::Rejected(r) = self.commit(writable).await? {
            return Err(abort(r));
        }
        s.close().await;
        lines.extend(self.after_takeover(run, &nm, &old).await?);
        Ok(lines.join("; "))
    }

    /// After the point of no return: the epoch (once), source-side semi-sync, the VIP. Said,
    /// never fatal (phase 5 tries the VIP again); only a lost leadership stops it.
    ///
    /// On a fresh session, bounded as a whole: a leader that resumes here may find the new
    /// master with semi-sync on and clients' commits waiting for an acknowledgement no
    /// replica gives before phase 4 — reading its binlog state then waits too, and must not
    /// keep phase 4 (which ends the wait) from running.
    async fn after_takeover(
        &self,
        run: &FailoverRun,
        nm: &ServerSpec,
        old: &ServerSpec,
    ) -> Result<Vec<String>, StepError> {
        let mut lines = Vec::new();
        let server_side = async {
            let mut s = self.connect(nm).await.map_err(abort)?;
            let recorded = self.epoch_on(&mut s, run, nm).await?;
            let info = s.server_info().await.map_err(abort)?;
            let mut more = Vec::new();
            // After read_only=0, never before: a switch rolled back before this point leaves
            // no write of ours on a server that goes on as a replica. Once only.
            if recorded.map(|(e, _)| e) != Some(run.epoch) {
                if info.semisync.master_enabled {
                    // Left on from an earlier time as master: the write would wait for an
                    // acknowledgement no replica gives yet (it is turned on again below).
                    s.disable_semisync_source().await.map_err(abort)?;
                }
                more.push(self.write_epoch(&mut s, run, nm).await?);
            }
            // Semi-sync last: before a replica is repointed (phase 4) a write on the new
            // master waits for an acknowledgement, the epoch's included.
            if self.group.topology.semisync
                && !s
                    .server_info()
                    .await
                    .map_err(abort)?
                    .semisync
                    .master_enabled
            {
                s.enable_semisync_source().await.map_err(abort)?;
                more.push("semi-sync source side enabled".into());
            }
            s.close().await;
            Ok::<_, StepError>(more)
        };
        match tokio::time::timeout(AFTER_TAKEOVER, server_side).await {
            Ok(Ok(more)) => lines.extend(more),
            Ok(Err(StepError::Lost(why))) => return Err(StepError::Lost(why)),
            Ok(Err(e)) => lines.push(format!("{}: {e} (the switch goes on)", nm.name)),
            Err(_) => lines.push(format!(
                "{}: no answer within {} s (commits waiting for a semi-sync acknowledgement?): \
                 epoch and semi-sync left as they are, the switch goes on",
                nm.name,
                AFTER_TAKEOVER.as_secs()
            )),
        }
        match self.vip_add(nm, None).await {
            Ok(l) => lines.push(l),
            Err(StepError::Lost(why)) => return Err(StepError::Lost(why)),
            Err(e) => lines.push(format!("VIP not moved yet ({e}): phase 5 tries again")),
        }
        match self
            .vip_release_old(nm, &old.name, super::vip_move::Release::AfterPromote)
            .await
        {
            Ok(Some(l)) => lines.push(l),
            Ok(None) => {}
            Err(StepError::Lost(why)) => return Err(StepError::Lost(why)),
            Err(e) => lines.push(format!("{e} (phase 5 tries again)")),
        }
        Ok(lines)
    }
}
