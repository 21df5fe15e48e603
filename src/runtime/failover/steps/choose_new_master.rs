//! Phase 3.3, determining the new master: MHA's selection and the target (the planner's),
//! decided once and journaled; a resumed run reads the decision instead of taking it again.

use super::*;
use crate::engine::failover as plan;

impl RunCtx {
    /// Phase 3.3: MHA's selection and the target (the planner's), decided once and journaled.
    pub(super) async fn choose(&mut self, run: &FailoverRun) -> StepResult {
        if let Some(d) = &run.decided {
            return Ok(format!(
                "already decided: new master {} ({}), target {} (not decided again)",
                d.new_master, d.rule, d.target
            ));
        }
        let obs = match self.latest.take() {
            Some(o) => o,
            None => self.observe(run).await?,
        };
        let Choice {
            selection: sel,
            target,
        } = plan::target::choose(&ChooseInput {
            selection: self.selection_input(run, &obs),
            mode: self.mode(),
            salvage: run.recovery.salvage.as_ref(),
        })
        .map_err(abort)?;
        let decided = Decided {
            new_master: sel.new_master.clone(),
            rule: sel.rule.clone(),
            target: target.clone(),
        };
        if let CmdResult::Rejected(reason) = self
            .commit(Cmd::Decide {
                run: self.id,
                decided,
            })
            .await?
        {
            return Err(abort(reason));
        }
        if let Ok(nm) = self.server(&sel.new_master) {
            // Phase 3.5 (next in GTID groups; file/position ones have 3.4 between) opens two
            // sessions to the new master first thing, and one to every other survivor to point
            // it ahead (point_ahead.rs): open them now, while this step's end is committed.
            if self.mode() != ReplicationMode::FilePos {
                let mut ahead = vec![nm.clone(), nm.clone()];
                ahead.extend(
                    self.survivors(run)
                        .into_iter()
                        .filter(|s| s.name != sel.new_master),
                );
                self.warm_up(&ahead);
            }
            // Best effort: 3.5 begins the deletion itself if this did not.
            if let Err(e) = self.vip_unfence_ahead(&nm).await {
                tracing::info!(server = %nm.name, error = %e, "the VIP's fencing rule is not deleted ahead: phase 3.5 does it");
            }
        }
        Ok(format!("{}; target {target}", sel.explanation.join("; ")))
    }

    /// What MHA's selection decides on: this group's settings and `obs`, the survivors'
    /// readings.
    pub(super) fn selection_input<'a>(
        &'a self,
        run: &'a FailoverRun,
        obs: &'a Observations,
    ) -> SelectionInput<'a> {
        SelectionInput {
            spec: &self.group.spec,
            old_master: &run.old_master,
            observed: obs,
            forced: run.forced.as_deref(),
            latest_priority: self.group.spec.failover.latest_priority,
            check_repl_delay: self.group.spec.failover.check_repl_delay,
        }
    }

    /// The decided target, which must be of the kind this group's mode calls for (a GTID set
    /// for GTID groups, coordinates for file/position ones).
    pub(super) fn decided_target(&self, d: &Decided) -> Result<Target, StepError> {
        if d.target.kind() != plan::target_kind(self.mode()) {
            return Err(abort(format!(
                "the journaled target of new master {} ({}) does not fit the group's {:?} \
                 replication",
                d.new_master,
                d.target,
                self.mode()
            )));
        }
        Ok(d.target.clone())
    }

    pub(super) fn decided(run: &FailoverRun) -> Result<&Decided, StepError> {
        run.decided
            .as_ref()
            .ok_or_else(|| abort("no new master was decided"))
    }
}
