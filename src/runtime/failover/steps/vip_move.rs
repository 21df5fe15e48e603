//! The VIP's move during a failover: up on the new master in phase 3.5 (once it is writable),
//! released from the old master's host in phase 4 (once the replicas are repointed, off the
//! path to the first write), and once more in phase 5 whatever happened before.
//!
//! Between phase 2 and the release, the old host holds the address fenced: every TCP packet
//! to it is answered with a reset (adapters::ssh::vip), so a client whose ARP cache still
//! names the old host is told at once to try again, never left waiting on silence. The
//! release comes after the new master holds the address and has announced it, and is followed
//! by a second announcement: a client that asked for the VIP's MAC while both held it may
//! have learnt the old one, which from the release on answers nothing.

use tracing::Instrument;

use super::*;

/// Which release of the old host's VIP this is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Release {
    /// Phase 4: right after the new master took it, unless phase 2 found the host unreachable.
    AfterPromote,
    /// Phase 5: once more, whatever phase 2 found (bounded; off the critical path), so that a
    /// host that was away during phase 4 is not left answering for the VIP.
    Again,
}

impl RunCtx {
    /// From phase 3.3's decision on (or phase 2's end, [`Self::vip_unfence_predicted`]): the
    /// fencing rule a failover away from the new master's host may have left there is deleted
    /// in the background (off the failover's path: 3.5 only adds the address once the new
    /// master is writable, [`Self::vip_add`]). Deleting it from a host that does not hold the
    /// VIP changes nothing for clients, and 3.5 leaves the rule of a host that holds the VIP
    /// already until the new master is writable.
    pub(super) async fn vip_unfence_ahead(&mut self, nm: &ServerSpec) -> Result<(), StepError> {
        if matches!(&self.unfencing, Some((name, _)) if *name == nm.name) {
            // Begun at phase 2's end for the server 3.3 then chose (below). However old, its
            // outcome holds: a REJECT rule is only ever placed on a host that holds the VIP
            // (phase 2, on the old master's), and this deletion leaves such a host alone.
            return Ok(());
        }
        self.unfencing = self
            .vip_unfence_task(nm)
            .await?
            .map(|task| (nm.name.clone(), task));
        Ok(())
    }

    /// From phase 2's end: the same deletion for the server MHA's selection picks on the
    /// readings phase 3.1 takes (`obs`), which is what 3.3 will decide unless the readings
    /// change. It runs while phase 2's end, 3.1 and 3.2 are committed, instead of from 3.3's
    /// decision on, when it was the last thing 3.5's VIP waited for. A wrong guess deletes a
    /// leftover rule from a survivor's host that does not hold the VIP (nothing for clients),
    /// and 3.3 begins the deletion on the server it chose.
    pub(super) async fn vip_unfence_predicted(&mut self, run: &FailoverRun, obs: &Observations) {
        // A delegate's guard is a round trip to the leader: not spent on phase 2's path for a
        // guess (3.3 begins the deletion).
        if self.vip().is_none() || self.ssh.is_err() || !matches!(self.authority, Authority::Leader)
        {
            return;
        }
        let Ok(sel) = crate::engine::selection::select(&self.selection_input(run, obs)) else {
            return;
        };
        let Ok(nm) = self.server(&sel.new_master) else {
            return;
        };
        if let Err(e) = self.vip_unfence_ahead(&nm).await {
            tracing::info!(server = %nm.name, error = %e, "the VIP's fencing rule is not deleted ahead: phase 3.3 or 3.5 does it");
        }
    }

    /// Phase 3.5, first thing: the deletion [`Self::vip_unfence_ahead`] began for this new
    /// master, or one begun now, alongside the SQL that makes it a master. Yields whether that
    /// worked (else the add deletes the rule itself).
    pub(super) async fn vip_unfence_early(
        &mut self,
        nm: &ServerSpec,
    ) -> Result<Option<tokio::task::JoinHandle<bool>>, StepError> {
        match self.unfencing.take() {
            Some((name, task)) if name == nm.name => Ok(Some(task)),
            _ => self.vip_unfence_task(nm).await,
        }
    }

    async fn vip_unfence_task(
        &self,
        nm: &ServerSpec,
    ) -> Result<Option<tokio::task::JoinHandle<bool>>, StepError> {
        let (Some(v), Ok(pool)) = (self.vip(), self.ssh.as_ref()) else {
            return Ok(None);
        };
        // Not the step's begin first: phase 2's guess and 3.3 (acted ahead of its begin) delete
        // the rule as 3.5 does, and deleting it from a host that does not hold the VIP is
        // harmless whatever the journal says (a host that holds it keeps it).
        self.guard_term().await?;
        let pool = pool.clone();
        let (host, port) = nm.ssh_target(&self.group.spec.ssh);
        let server = nm.name.clone();
        let unfence = async move {
            match vip::unfence(&pool, &host, port, &v, SSH_COMMAND).await {
                Ok(true) => {
                    tracing::info!(%server, "no VIP fencing rule left on the host (deleted if there was one)");
                    true
                }
                Ok(false) => {
                    tracing::info!(%server, "the host holds the VIP already: its fencing rule stays until the new master is writable");
                    false
                }
                Err(e) => {
                    tracing::info!(%server, error = %e, "VIP fencing rule not deleted ahead: the VIP's add deletes it");
                    false
                }
            }
        };
        Ok(Some(tokio::spawn(
            unfence.instrument(tracing::Span::current()),
        )))
    }

    /// The VIP up on the new master, gratuitous ARP sent in the background. `unfenced`: the
    /// rule deletion [`Self::vip_unfence_early`] started (None: the add deletes it).
    pub(super) async fn vip_add(
        &self,
        nm: &ServerSpec,
        unfenced: Option<tokio::task::JoinHandle<bool>>,
    ) -> StepResult {
        let Some(v) = self.vip() else {
            return Ok("no VIP configured".into());
        };
        let unfenced = match unfenced {
            Some(task) => task.await.unwrap_or(false),
            None => false,
        };
        self.guard().await?;
        let pool = self.ssh().map_err(abort)?;
        let (host, port) = nm.ssh_target(&self.group.spec.ssh);
        let added = if unfenced {
            vip::add_unfenced(pool, &host, port, &v, SSH_COMMAND).await
        } else {
            vip::add(pool, &host, port, &v, SSH_COMMAND).await
        }
        .map_err(abort)?;
        Ok(format!(
            "{}: VIP {} {} (gratuitous ARP sent in the background)",
            nm.name,
            v.cidr,
            if added { "up" } else { "already up" }
        ))
    }

    /// The VIP released from the old master's host, then announced once more from the new
    /// master. None: nothing to release (no VIP, or both on one host: releasing would take it
    /// off the new master). A release that fails is said in the line, never a step failure: the
    /// new master serves already, and phase 5 tries again.
    pub(super) async fn vip_release_old(
        &self,
        nm: &ServerSpec,
        old_master: &str,
        release: Release,
    ) -> Result<Option<String>, StepError> {
        let Some(v) = self.vip() else {
            return Ok(None);
        };
        let old = self.server(old_master)?;
        let (host, port) = nm.ssh_target(&self.group.spec.ssh);
        let (old_host, old_port) = old.ssh_target(&self.group.spec.ssh);
        if old_host == host {
            return Ok(None);
        }
        if release == Release::AfterPromote && self.old_host_unreachable {
            return Ok(Some(format!(
                "{}: VIP not released now (the host was unreachable in phase 2; tried again in \
                 phase 5)",
                old.name
            )));
        }
        self.guard().await?;
        let pool = self.ssh().map_err(abort)?;
        let mut lines = vec![
            match vip::release(pool, &old_host, old_port, &v, OLD_MASTER_SSH).await {
                Ok(true) => format!("{}: VIP {} released", old.name, v.cidr),
                Ok(false) => format!("{}: VIP {} not held any more", old.name, v.cidr),
                Err(e) => format!(
                    "{}: VIP {} could not be released ({e}): remove the address (and any \
                     iptables REJECT rule for it) from that host before it is back on the \
                     network",
                    old.name, v.cidr
                ),
            },
        ];
        if let Err(e) = vip::announce(pool, &host, port, &v, SSH_COMMAND).await {
            lines.push(format!("{}: second gratuitous ARP failed: {e}", nm.name));
        }
        Ok(Some(lines.join("; ")))
    }

    /// An online switchover's phase 2: the VIP on the old master's host fenced (kept, every
    /// TCP packet to it answered with a reset) before the new master takes it, as phase 2 of
    /// a failover does; a roll-back takes the fence away ([`Self::vip_unfence`]). None: no VIP,
    /// or both on one host; else the line and whether it was fenced (or removed).
    pub(super) async fn vip_fence_old(
        &self,
        old: &ServerSpec,
        nm: &ServerSpec,
    ) -> Result<Option<(String, bool)>, StepError> {
        let Some(v) = self.vip() else {
            return Ok(None);
        };
        let (old_host, old_port) = old.ssh_target(&self.group.spec.ssh);
        if nm.ssh_target(&self.group.spec.ssh).0 == old_host {
            return Ok(None);
        }
        self.guard().await?;
        let pool = self.ssh().map_err(abort)?;
        let fenced = vip::fence(pool, &old_host, old_port, &v, old.port, SSH_COMMAND)
            .await
            .map_err(abort)?;
        Ok(Some(match fenced {
            vip::Fenced::Rejecting => (
                format!(
                    "{}: VIP {} fenced (connections to it reset until the new master holds it)",
                    old.name, v.cidr
                ),
                true,
            ),
            vip::Fenced::Removed => (
                format!(
                    "{}: VIP {} removed (no iptables on the host)",
                    old.name, v.cidr
                ),
                true,
            ),
            vip::Fenced::Absent => (format!("{}: VIP {} was not there", old.name, v.cidr), false),
        }))
    }

    /// A switchover rolled back: the old master's host holds the VIP unfenced again.
    pub(super) async fn vip_unfence(&self, old: &ServerSpec) -> Result<Option<String>, StepError> {
        let Some(v) = self.vip() else {
            return Ok(None);
        };
        self.guard().await?;
        let pool = self.ssh().map_err(abort)?;
        let (host, port) = old.ssh_target(&self.group.spec.ssh);
        vip::add(pool, &host, port, &v, SSH_COMMAND)
            .await
            .map_err(abort)?;
        Ok(Some(format!("{}: VIP {} served again", old.name, v.cidr)))
    }

    /// Phase 5: the VIP up on the new master and released from the old host, again.
    pub(super) async fn vip_up(&self, nm: &ServerSpec, old_master: &str) -> StepResult {
        // The new master took the VIP in 3.5: a check that fails now (an xtables lock held a
        // moment too long) is said, not a failed run.
        let mut line = match self.vip_add(nm, None).await {
            Err(StepError::Abort(e)) => {
                tracing::warn!(server = %nm.name, error = %e, "the VIP could not be checked again");
                format!(
                    "{}: WARNING: the VIP could not be checked again: {e}",
                    nm.name
                )
            }
            other => other?,
        };
        if let Some(l) = self.vip_release_old(nm, old_master, Release::Again).await? {
            line = format!("{line}; {l}");
        }
        Ok(line)
    }
}
