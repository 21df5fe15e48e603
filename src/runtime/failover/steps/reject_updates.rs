//! Online switchover, phase 2 (MHA's reject_update): the old master stops taking writes —
//! the online change script's `stop`, then read_only (super_read_only where there is one), its
//! client connections killed, FLUSH TABLES WITH READ LOCK (or, when skipped or refused, proof
//! that its binlog stands still), the VIP on its host fenced — and its final position is
//! journaled for phase 3 to wait for.
//! Run again by a resuming leader, it does the same again: every part is idempotent, and the
//! first blocking time stays in the journal.

use super::*;
use crate::state::switchover::{Frozen, SwitchEvent};

/// How long FLUSH TABLES WITH READ LOCK may wait for a statement's metadata lock.
const LOCK_WAIT: Duration = Duration::from_secs(2);
/// MHA's check_binlog_stop: two reads of the binlog position this far apart.
const BINLOG_STILL: Duration = Duration::from_millis(200);

impl RunCtx {
    pub(super) async fn reject_updates(&mut self, run: &FailoverRun) -> StepResult {
        let sw = Self::switch_of(run)?.clone();
        let old = self.server(&run.old_master)?;
        let nm = self.server(&Self::switch_new_master(run)?)?;
        let mut lines = Vec::new();
        self.guard().await?;
        let blocked_at_ms = crate::clock::now_ms();
        let new_slave = sw.options.orig_master_is_new_slave;
        if let Some(l) = self
            .online_change_script("stop", &old, &nm, new_slave)
            .await?
        {
            lines.push(l);
        }
        // A session of its own (the script may have killed every connection): it holds the
        // global read lock until phase 4, or until it is dropped.
        let mut s = self.connect(&old).await.map_err(abort)?;
        self.guard().await?;
        let fenced = s.fence_writes().await.map_err(abort)?;
        lines.push(format!(
            "{}: {}, {} client connection(s) killed",
            old.name,
            if fenced.was_writable {
                "read_only=1"
            } else {
                "already read_only"
            },
            fenced.killed.len()
        ));
        let locked = if sw.options.skip_lock_all_tables {
            lines.push("FLUSH TABLES WITH READ LOCK skipped (--skip-lock-all-tables)".into());
            false
        } else {
            match s.lock_all_tables(LOCK_WAIT).await {
                Ok(()) => {
                    lines.push(format!("{}: FLUSH TABLES WITH READ LOCK", old.name));
                    true
                }
                Err(e) => {
                    lines.push(format!("FLUSH TABLES WITH READ LOCK failed ({e})"));
                    false
                }
            }
        };
        if !locked {
            let a = s.binlog_status().await.map_err(abort)?;
            tokio::time::sleep(BINLOG_STILL).await;
            let b = s.binlog_status().await.map_err(abort)?;
            if a != b {
                return Err(abort(format!(
                    "the binlog of {} still moves ({} then {}): writes are not blocked",
                    old.name,
                    a.map(|c| c.to_string()).unwrap_or_default(),
                    b.map(|c| c.to_string()).unwrap_or_default()
                )));
            }
            lines.push(format!("{}: binlog stands still", old.name));
        }
        let lock_session = if locked {
            Some(s.connection_id().await.map_err(abort)?)
        } else {
            None
        };
        let vip_fenced = match self.vip_fence_old(&old, &nm).await? {
            Some((l, fenced)) => {
                lines.push(l);
                fenced
            }
            None => false,
        };
        let info = s.server_info().await.map_err(abort)?;
        let position = match self.mode() {
            ReplicationMode::FilePos => Target::Coord(
                info.binlog
                    .clone()
                    .ok_or_else(|| abort(format!("{}: binary logging is off", old.name)))?,
            ),
            // What the old master wrote to its binlog (MariaDB), its executed set (MySQL).
            ReplicationMode::MariadbGtid => Target::Gtid(info.gtid.binlog_pos.clone()),
            ReplicationMode::MysqlGtid => Target::Gtid(info.gtid.executed.clone()),
        };
        lines.push(format!("{}: final position {position}", old.name));
        let frozen = Cmd::RecordSwitch {
            run: self.id,
            event: SwitchEvent::Frozen(Frozen {
                blocked_at_ms,
                position,
                lock_session,
                vip_fenced,
            }),
        };
        if let CmdResult::Rejected(r) = self.commit(frozen).await? {
            return Err(abort(r));
        }
        if let Some(prev) = self.switch_lock.replace(s) {
            prev.close().await;
        }
        Ok(lines.join("; "))
    }
}
