//! Online switchover, phase 3 (MHA's switch_master): the new master reaches the old master's
//! final position (bounded: a timeout rolls the switch back), stops replicating, becomes
//! writable — the online change script's `start`, read_only=0 — carries the run's epoch and
//! takes the VIP. Journaled as `Writable`: from then on the switch only goes forward.
//!
//! Resumed by a new leader, it checks what is in place: the target decided once, a stopped
//! replication not stopped again, a writable server not made writable again.

use super::*;
use crate::adapters::mysql::EpochRow;
use crate::state::switchover::SwitchEvent;

/// How long the new master (and in phase 4 each replica) may take to reach the old master's
/// final position: the lag the gates allow (writes are blocked meanwhile).
pub(super) const SWITCH_CATCH_UP: Duration =
    Duration::from_secs(crate::engine::switchover::MAX_LAG_S);

impl RunCtx {
    /// Waits until `s` applied `position` of the old master (a GTID set or the old master's
    /// binlog coordinates); false when it did not within [`SWITCH_CATCH_UP`].
    pub(super) async fn reach(
        &self,
        s: &mut Session,
        position: &Target,
    ) -> Result<bool, StepError> {
        match position {
            Target::Gtid(set) if set.is_empty() => Ok(true),
            Target::Gtid(set) => s.wait_gtid(set, SWITCH_CATCH_UP).await.map_err(abort),
            Target::Coord(c) => s
                .wait_pos(&c.file, c.pos, SWITCH_CATCH_UP)
                .await
                .map_err(abort),
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
        let mut s = self.connect(&nm).await.map_err(abort)?;
        let mut lines = Vec::new();
        if let Some((epoch, r)) = s.read_epoch(&run.group).await.map_err(abort)? {
            if epoch > run.epoch {
                return Err(abort(format!(
                    "{} already carries epoch {epoch} (run {r}): this run (epoch {}) is stale",
                    nm.name, run.epoch
                )));
            }
        }
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
                if let Some(r) = &info.replica {
                    if !self.reach(&mut s, &frozen.position).await? {
                        return Err(abort(format!(
                            "{} did not reach the old master's final position {} within {} s \
                             (IO {:?}, SQL {})",
                            nm.name,
                            frozen.position,
                            SWITCH_CATCH_UP.as_secs(),
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
                }
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
        if let Some(l) = self.online_change_script("start", &old, &nm).await? {
            lines.push(l);
        }
        self.guard().await?;
        if s.server_info().await.map_err(abort)?.read_only {
            s.set_read_only(false).await.map_err(abort)?;
            lines.push(format!("{}: read_only=0", nm.name));
        } else {
            lines.push(format!("{}: already writable", nm.name));
        }
        // After read_only=0, never before: a switch rolled back before this point leaves no
        // write of ours on a server that goes on as a replica.
        s.write_epoch(&EpochRow {
            group: &run.group,
            epoch: run.epoch,
            run: self.id,
            term: self.term,
            manager: self.node.id(),
        })
        .await
        .map_err(abort)?;
        // Semi-sync last: before a replica is repointed (phase 4) a write on the new master
        // would wait for an acknowledgement, the epoch's included. The VIP is not there yet.
        if self.group.topology.semisync && !info.semisync.master_enabled {
            s.enable_semisync_source().await.map_err(abort)?;
            lines.push("semi-sync source side enabled".into());
        }
        s.close().await;
        lines.push(self.vip_add(&nm).await?);
        if let Some(l) = self
            .vip_release_old(&nm, &old.name, super::vip_move::Release::AfterPromote)
            .await?
        {
            lines.push(l);
        }
        let writable = Cmd::RecordSwitch {
            run: self.id,
            event: SwitchEvent::Writable {
                at_ms: crate::clock::now_ms(),
            },
        };
        self.commit(writable).await?;
        Ok(lines.join("; "))
    }
}
