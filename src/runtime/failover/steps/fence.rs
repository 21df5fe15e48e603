//! Phase 2, dead-master shutdown: the replicas' IO threads stopped, the old master's VIP
//! fenced (kept, answering resets, until phase 3.5 moves it: adapters/ssh/vip.rs), its mysqld
//! fenced by SQL when it answers, and MHA's shutdown_script when it cannot be
//! trusted to stay down (host unreachable: `stop`; mysqld hung: `stopssh`).

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use futures::future::join_all;

use super::{
    abort, RunCtx, StepError, StepResult, FENCE_WRITES, HOOK, OLD_MASTER_CONNECT, OLD_MASTER_SSH,
    SILENT_MYSQLD_FRESH, STATEMENT,
};
use crate::adapters::hooks;
use crate::adapters::mysql::Session;
use crate::adapters::ssh::egress::{self, Placed};
use crate::adapters::ssh::{vip, HostCommandError, SshError};
use crate::engine::failover as plan;
use crate::engine::failover::fence::FenceFacts;
use crate::model::{HookCommand, HostFence, Observations, OldMysqld};
use crate::state::group::ServerSpec;
use crate::state::journal::{FailoverRun, StepName};

/// How long "no manager reached the old master's host" stands in for phase 2's own knock.
use crate::runtime::monitor::host_silence::FRESH as SILENT_FRESH;

/// The bound on placing a replica host's refusal of the old master: it is worth at most the
/// 1 s the IO thread's stop would wait without it.
const REFUSE_SSH: Duration = Duration::from_millis(700);
/// The bound on deleting it: long enough for the deletion's own retries on a busy xtables lock
/// (three of 0.5 s).
const ALLOW_SSH: Duration = Duration::from_secs(2);
/// The bound on resolving the old master's name for the refusal.
const RESOLVE: Duration = Duration::from_millis(300);

/// The old master's IPv4 address for the replica hosts' refusal: the group's host when it is
/// an address, else what it resolves to here when that is exactly one IPv4 address. None: no
/// refusal (the stop's own bound is lowered instead).
async fn refusal_target(host: &str, port: u16) -> Option<Ipv4Addr> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return match ip {
            IpAddr::V4(v4) => Some(v4),
            IpAddr::V6(_) => None,
        };
    }
    let addrs = tokio::time::timeout(RESOLVE, tokio::net::lookup_host((host, port)))
        .await
        .ok()?
        .ok()?;
    let v4: std::collections::BTreeSet<Ipv4Addr> = addrs
        .filter_map(|a| match a.ip() {
            IpAddr::V4(v4) => Some(v4),
            IpAddr::V6(_) => None,
        })
        .collect();
    let mut v4 = v4.into_iter();
    match (v4.next(), v4.next()) {
        (Some(ip), None) => Some(ip),
        _ => None,
    }
}

impl RunCtx {
    /// Phase 2: stop every replica's IO thread (positions hold still), then take the old master
    /// out: VIP fenced and read_only + client connections killed when it can be reached, the
    /// shutdown_script (STONITH) when its host cannot be reached over SSH.
    pub(super) async fn fence(&mut self, run: &FailoverRun) -> StepResult {
        self.guard().await?;
        if crate::failpoint::broken("fence") {
            return Ok("RED GATE: fencing skipped (test-only failpoint)".into());
        }
        let old = self.server(&run.old_master)?;
        let this = &*self;
        // No manager reached the old master's host a moment ago: a semi-sync replica's IO
        // thread would spend its exit knocking on that host (adapters/ssh/egress.rs).
        let master_dark = self.old_host_silent_fresh().is_some();
        // A phase 2 interrupted by a leader change may have left a replica host refusing the
        // old master: deleted whatever this attempt finds.
        let resumed = run.attempts(StepName::Fence) > 1;
        let target = match self.ssh() {
            Ok(_) if master_dark || resumed => refusal_target(&old.host, old.port).await,
            _ => None,
        };
        let stop_io = join_all(
            self.survivors(run)
                .into_iter()
                .map(|s| this.stop_io_thread(s, &old, master_dark, resumed, target)),
        );
        let host = plan::fence::host_action(
            self.ssh_available()
                .as_ref()
                .map(|_| ())
                .map_err(String::as_str),
            self.vip().is_some(),
        );
        let take_out = async {
            let ((ssh_line, ssh_ok), (mysql_line, mysqld)) =
                tokio::join!(this.fence_host(&old, host), this.fence_mysqld(&old));
            let mut lines = vec![mysql_line, ssh_line];
            // MHA's scripts, as the planner decides on what the knocks found (`stop` vs
            // `stopssh`).
            let fence = plan::fence::plan(&FenceFacts {
                ssh_reachable: ssh_ok,
                mysqld,
                ip_failover_script: this.group.spec.failover.master_ip_failover_script.is_some(),
            });
            if let Some(command) = fence.ip_failover {
                lines.push(this.ip_failover_stop(&old, command).await?);
            }
            if let Some(command) = fence.shutdown {
                lines.push(this.shutdown_hook(&old, command).await?);
            }
            Ok::<_, StepError>((lines, fence.host_unreachable))
        };
        // The IO threads are stopped alongside the old master's fencing, hooks included, not
        // before it: on a semi-sync replica of a hung master STOP SLAVE IO_THREAD waits ~2 s
        // for that master, and the shutdown_script that stops it ends the wait. Phase 3.1
        // reads the positions only after both are done.
        let (stopped, taken) = tokio::join!(stop_io, take_out);
        let (taken_lines, host_unreachable) = taken?;
        self.old_host_unreachable = host_unreachable;
        // Every survivor read on the session that stopped its IO thread, now that the old
        // master is taken out (when phase 3.1 would read them, without connecting again):
        // 3.1, next, takes these (latest_replicas.rs).
        let mut lines = Vec::new();
        let reads: Vec<_> = stopped
            .into_iter()
            .map(|(name, line, sess)| {
                lines.push(line);
                async move {
                    let mut sess = sess?;
                    let info = sess.server_info().await.ok();
                    sess.close().await;
                    Some((name, Ok(info?)))
                }
            })
            .collect();
        let observed: Observations = join_all(reads).await.into_iter().flatten().collect();
        if observed.len() == self.survivors(run).len() {
            self.read_binlog_ahead(run, &observed);
            self.vip_unfence_predicted(run, &observed).await;
            self.observed_at_fence = Some((self.steps_run, observed));
        }
        lines.extend(taken_lines);
        Ok(lines.join("; "))
    }

    /// Stops replica `s`'s IO thread; returns its journal line. When the old master's host is
    /// dark, the replica's host refuses its own connections to the old master (`target`) for
    /// the stop (adapters/ssh/egress.rs: a semi-sync IO thread's exit would otherwise wait out
    /// a connect to that host), placed alongside the connect and deleted right after; the
    /// dump-thread kill's own bound is lowered to its 1 s floor as well, for where the rule
    /// does not catch the IO thread's connect (a replica that reaches its master by another
    /// address).
    async fn stop_io_thread(
        &self,
        s: ServerSpec,
        old: &ServerSpec,
        master_dark: bool,
        resumed: bool,
        target: Option<Ipv4Addr>,
    ) -> (String, String, Option<Session>) {
        let pool = self.ssh().ok();
        let (h, p) = self.ssh_of(&s);
        let refuse = async {
            match (pool, target) {
                (Some(pool), Some(ip)) if master_dark => {
                    Some(egress::refuse(pool, &h, p, ip, old.port, REFUSE_SSH).await)
                }
                _ => None,
            }
        };
        let (refused, sess) = tokio::join!(refuse, self.connect(&s));
        if matches!(refused, Some(Ok(Placed::Refusing))) {
            let attempt = if resumed { 2 } else { 1 };
            crate::failpoint::hit(crate::failpoint::When::Refused, StepName::Fence, attempt);
        }
        let how = match (&refused, target) {
            (Some(Ok(Placed::Refusing)), Some(ip)) => format!(
                " (its master's host is dark: the host refused its own connections to \
                 {ip}:{} for the stop, so the semi-sync exit did not wait on it)",
                old.port
            ),
            _ if master_dark => " (its master's host is dark: the semi-sync dump-thread kill \
                                 bounded to 1 s for the stop, then put back)"
                .to_string(),
            _ => String::new(),
        };
        let (mut line, kept) = match sess {
            Ok(mut sess) => {
                let r = if master_dark {
                    sess.stop_io_thread_master_dark().await
                } else {
                    sess.stop_replica(true).await.map(|()| None)
                };
                match r {
                    // Kept for reading how far it got once the old master is taken out.
                    Ok(None) => (format!("{}: IO thread stopped{how}", s.name), Some(sess)),
                    Ok(Some(note)) => (
                        format!("{}: IO thread stopped{how}; {note}", s.name),
                        Some(sess),
                    ),
                    Err(e) => {
                        sess.close().await;
                        (
                            format!("{}: STOP SLAVE IO_THREAD failed: {e}", s.name),
                            None,
                        )
                    }
                }
            }
            Err(e) => (format!("{}: unreachable: {e}", s.name), None),
        };
        // Placed, or perhaps placed (cut off, an answer that said something else, or lost on
        // the way back), or left by an earlier attempt: deleted now.
        let placed = matches!(
            refused,
            Some(
                Ok(Placed::Refusing | Placed::Unclear)
                    | Err(HostCommandError::Ssh(
                        SshError::Timeout { .. } | SshError::Channel { .. }
                    ))
            )
        );
        if !(placed || resumed) {
            return (s.name, line, kept);
        }
        match (pool, target) {
            (Some(pool), Some(ip)) => {
                if let Err(e) = egress::allow(pool, &h, p, ip, old.port, ALLOW_SSH).await {
                    let left = format!(
                        "{}'s host may still refuse its connections to {ip}:{} ({e}): delete \
                         it there with `{}`, or it cannot replicate from {} again",
                        s.name,
                        old.port,
                        egress::manual_allow(ip, old.port),
                        old.name
                    );
                    tracing::warn!(server = %s.name, "{left}");
                    line.push_str("; WARNING: ");
                    line.push_str(&left);
                }
            }
            (Some(_), None) => line.push_str(&format!(
                "; a refusal of {} that an interrupted attempt may have left on this host was \
                 not looked for ({} does not resolve to one IPv4 address here)",
                old.name, old.host
            )),
            (None, _) => {}
        }
        (s.name, line, kept)
    }

    /// When no manager reached the old master's host (found while corroborating the suspicion
    /// or when choosing who acts), if that is recent enough to stand in for a knock of phase
    /// 2's own.
    fn old_host_silent_fresh(&self) -> Option<super::HostSilence> {
        self.old_host_silent
            .filter(|s| s.since.elapsed() < SILENT_FRESH)
    }

    /// The old master's host over SSH, as the planner said: VIP fenced, or just reachability
    /// when there is no VIP. Returns the journal line and whether SSH reached the host.
    async fn fence_host(&self, old: &ServerSpec, action: HostFence) -> (String, bool) {
        let pool = match (&action, self.ssh()) {
            (HostFence::NoSsh(e), _) => return (format!("{}: no SSH: {e}", old.name), false),
            (_, Err(e)) => return (format!("{}: no SSH: {e}", old.name), false),
            (_, Ok(p)) => p,
        };
        if let Some(silent) = self.old_host_silent_fresh() {
            let ago = crate::errors::human_duration(silent.since.elapsed());
            return (
                format!(
                    "{}: host unreachable over SSH: no manager reached it {} ({ago} ago)",
                    old.name, silent.found
                ),
                false,
            );
        }
        let (host, port) = old.ssh_target(&self.group.spec.ssh);
        let r = match (action, self.vip()) {
            // The old master may be dead: its warm session gets no answer rather than a reset,
            // so the command's own bound is what a dead host costs (≈ 1 s).
            (HostFence::FenceVip, Some(v)) => {
                vip::fence(pool, &host, port, &v, old.port, OLD_MASTER_SSH)
                    .await
                    .map(|fenced| match fenced {
                        vip::Fenced::Rejecting => format!(
                        "{}: VIP {} fenced: kept, every TCP packet to it answered with a reset \
                         until the new master holds it",
                        old.name, v.cidr
                    ),
                        vip::Fenced::Removed => format!(
                        "{}: VIP {} removed (no iptables on the host: connection attempts to it \
                         go unanswered until the new master holds it)",
                        old.name, v.cidr
                    ),
                        vip::Fenced::Absent => {
                            format!("{}: VIP {} was not there", old.name, v.cidr)
                        }
                    })
                    .map_err(|e| e.to_string())
            }
            _ => pool
                .check(&host, port)
                .await
                .map(|_| format!("{}: host reachable over SSH", old.name))
                .map_err(|e| e.to_string()),
        };
        match r {
            Ok(line) => (line, true),
            Err(e) => (
                format!("{}: host unreachable over SSH: {e}", old.name),
                false,
            ),
        }
    }

    /// The old master's mysqld, if it answers: read_only and its client connections killed.
    /// Bounded tightly (a hung mysqld must not hold up the failover): no answer within
    /// [`OLD_MASTER_CONNECT`], or fencing not done within [`FENCE_WRITES`], and it counts as
    /// silent, which the plan answers with the shutdown_script (`stopssh`, STONITH). Phase 1's
    /// silent knock a moment ago stands in for this one.
    async fn fence_mysqld(&self, old: &ServerSpec) -> (String, OldMysqld) {
        if let Some((at, e)) = self
            .old_mysqld_silent
            .as_ref()
            .filter(|(at, _)| at.elapsed() < SILENT_MYSQLD_FRESH)
        {
            let line = format!(
                "{}: mysqld does not answer (phase 1's connect {} ago: {e}): treated as hung, \
                 it could wake up writable (STONITH via shutdown_script)",
                old.name,
                crate::errors::human_duration(at.elapsed())
            );
            tracing::warn!(old_master = %old.name, "{line}");
            return (line, OldMysqld::Silent);
        }
        let (line, mysqld) = match self.login(old).connect(OLD_MASTER_CONNECT).await {
            Ok(mut sess) => {
                sess.set_timeout(STATEMENT.min(FENCE_WRITES));
                let r = tokio::time::timeout(FENCE_WRITES, sess.fence_writes()).await;
                match r {
                    Ok(Ok(rep)) => {
                        sess.close().await;
                        (
                            format!(
                                "{}: mysqld answered: read_only set{}, {} client connection(s) \
                                 killed",
                                old.name,
                                if rep.was_writable { "" } else { " already" },
                                rep.killed.len()
                            ),
                            OldMysqld::Fenced,
                        )
                    }
                    // The session is dropped, not closed: a hung server would not answer a
                    // polite goodbye either.
                    Ok(Err(e)) => (
                        format!(
                            "{}: mysqld answered but fencing failed ({e}): treated as hung \
                             (STONITH via shutdown_script)",
                            old.name
                        ),
                        OldMysqld::Silent,
                    ),
                    Err(_) => (
                        format!(
                            "{}: mysqld answered but could not set read_only within {:?}: \
                             treated as hung (STONITH via shutdown_script)",
                            old.name, FENCE_WRITES
                        ),
                        OldMysqld::Silent,
                    ),
                }
            }
            Err(e) if e.is_refused() => (
                format!("{}: mysqld is down (connection refused)", old.name),
                OldMysqld::Down,
            ),
            Err(e) => (
                format!(
                    "{}: mysqld does not answer ({e}): treated as hung, it could wake up \
                     writable (STONITH via shutdown_script)",
                    old.name
                ),
                OldMysqld::Silent,
            ),
        };
        if mysqld == OldMysqld::Silent {
            tracing::warn!(old_master = %old.name, "{line}");
        }
        (line, mysqld)
    }

    /// MHA's master_ip_failover_script `--command=stopssh` (host reachable) or `stop`: the
    /// script takes the old master's address away its own way (0 / 10 continue, else abort).
    async fn ip_failover_stop(
        &self,
        old: &ServerSpec,
        command: HookCommand,
    ) -> Result<String, StepError> {
        let Some(name) = &self.group.spec.failover.master_ip_failover_script else {
            return Err(abort("no master_ip_failover_script is configured"));
        };
        let script = self.hook("master_ip_failover_script", name)?;
        self.guard().await?;
        let args = hooks::orig_master_args(
            command.as_str(),
            &self.group.spec.ssh.user,
            &old.name,
            &old.host,
            old.port,
        );
        let out = hooks::run(script, &args, HOOK).await.map_err(abort)?;
        let v = hooks::verdict(&out)
            .map_err(|e| abort(format!("master_ip_failover_script --command={command} {e}")))?;
        Ok(format!(
            "master_ip_failover_script --command={command}: {v}"
        ))
    }

    /// MHA's shutdown_script `--command=stop` (host unreachable: power it off) or `stopssh`
    /// (mysqld does not answer); the planner reads its exit (0 = powered off, 10 = mysqld
    /// stopped and SSH works, anything else aborts: the old master may still take writes).
    async fn shutdown_hook(
        &self,
        old: &ServerSpec,
        command: HookCommand,
    ) -> Result<String, StepError> {
        let Some(name) = &self.group.spec.failover.shutdown_script else {
            return Ok(plan::fence::shutdown_unconfigured(
                &old.name,
                command,
                self.vip().is_some(),
            ));
        };
        let script = self.hook("shutdown_script", name)?;
        self.guard().await?;
        let args = hooks::shutdown_args(
            command.as_str(),
            &self.group.spec.ssh.user,
            &old.name,
            &old.host,
            old.port,
        );
        let out = hooks::run(script, &args, HOOK).await.map_err(abort)?;
        plan::fence::shutdown_verdict(&old.name, out.code, &out.tail).map_err(abort)
    }
}
