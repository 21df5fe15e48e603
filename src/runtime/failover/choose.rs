//! Who acts a run's steps: this node when it reaches every server the run needs (decided
//! without asking anyone: the common case costs one parallel knock per server, overlapped with
//! phase 1), otherwise the member whose view (ProbeService.Reach, asked then, or alongside
//! when its own knocks are slow) covers the most (`engine/failover/actor.rs` decides).

use std::sync::Arc;

use std::time::{Duration, Instant};

use futures::future::maybe_done;
use tokio::task::JoinHandle;

use super::reach;
use super::steps::{HostSilence, RunCtx};
use crate::engine::failover::actor;
use crate::runtime::Runtime;
use crate::state::journal::FailoverRun;

/// How long a run that begins the moment its verdict commits waits for this leader's own
/// knock of that round to end (it ends on the same bound as the followers' knocks, which the
/// verdict waited for).
const OWN_KNOCK_WAIT: Duration = Duration::from_millis(200);

/// The choice, being made.
pub struct Pending(JoinHandle<Chosen>);

struct Chosen {
    manager: u64,
    /// Nobody reached the old master's host over SSH (phase 2 need not knock again).
    old_host_silent: Option<HostSilence>,
}

/// Starts taking the views and choosing (in the background).
pub fn spawn(node: &Arc<Runtime>, ctx: &RunCtx, run: &FailoverRun, excluded: &[u64]) -> Pending {
    let (node, spec) = (node.clone(), ctx.spec().clone());
    let (full_needs, mut needs) = (ctx.needs(run), ctx.needs(run));
    let (old_master, group, id, excluded, round) = (
        run.old_master.clone(),
        run.group.clone(),
        run.id,
        excluded.to_vec(),
        run.verdict_round,
    );
    Pending(tokio::spawn(async move {
        // Every manager (each member, this one included) found the old master's host silent
        // while corroborating the verdict this run answers, a moment ago: this node does not
        // knock on it again (a powered-off host costs each knock its whole bound), and a
        // leader that reaches the rest acts. (Others, if asked for what this node does not
        // reach, still knock on everything.)
        let waited = Instant::now();
        while node.host_silence.knocking(&group, round, node.id())
            && waited.elapsed() < OWN_KNOCK_WAIT
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let managers: Vec<u64> = crate::runtime::peers::members(&node)
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        let known_silent = node
            .host_silence
            .silent_since(&group, round, &old_master, &managers)
            .map(|since| HostSilence {
                since,
                found: "when the suspicion was corroborated",
            });
        if known_silent.is_some() {
            needs.drop_ssh(&old_master);
        }
        let skip = vec![old_master.clone()];
        let skip_ssh = if known_silent.is_some() {
            skip.clone()
        } else {
            Vec::new()
        };
        let own = reach::own(&node, &spec, &skip, &skip_ssh);
        tokio::pin!(own);
        // Asking the others always would have every manager knock on every server at each
        // failover, on the hosts' CPUs while the failover runs: only when this node's own
        // knocks do not suffice, or are slow (a server that does not answer costs the whole
        // KNOCK), in which case the others knock meanwhile instead of after (`asked`: waited
        // for only if this node's own view does not suffice).
        let mut asked = None;
        let own = match tokio::time::timeout(reach::HEDGE, &mut own).await {
            Ok(own) => own,
            Err(_) => {
                let mut others = Box::pin(maybe_done(reach::others(&node, &group, &skip)));
                let own = tokio::select! {
                    own = &mut own => own,
                    () = &mut others => own.await,
                };
                asked = Some(others);
                own
            }
        };
        if actor::leader_suffices(&needs, &reach::view(&own)) {
            return Chosen {
                manager: node.id(),
                old_host_silent: known_silent,
            };
        }
        let mut replies = match asked {
            Some(mut others) => {
                others.as_mut().await;
                others.as_mut().take_output().unwrap_or_default()
            }
            None => reach::others(&node, &group, &skip).await,
        };
        replies.push(own);
        let views: Vec<_> = replies.iter().map(reach::view).collect();
        // Whoever reaches the host now outweighs what was found a moment ago: the choice then
        // weighs it as it would have.
        let silent_now = !views.iter().any(|v| v.ssh.contains(&old_master));
        let needs = if silent_now { needs } else { full_needs };
        let chosen = actor::choose(node.id(), &views, &needs, &excluded);
        let seen: Vec<String> = replies.iter().map(reach::describe).collect();
        if chosen.manager == node.id() {
            tracing::warn!(%group, run = id, reason = %chosen.reason, views = ?seen, "this leader acts the failover's steps itself");
        } else {
            tracing::warn!(%group, run = id, actor = chosen.manager, reason = %chosen.reason, views = ?seen, "the failover's steps are delegated to manager {}", chosen.manager);
        }
        Chosen {
            manager: chosen.manager,
            old_host_silent: silent_now.then(|| {
                known_silent.unwrap_or(HostSilence {
                    since: Instant::now(),
                    found: "when asked who acts",
                })
            }),
        }
    }))
}

/// The manager chosen (this node if the choice could not be made).
pub async fn settle(ctx: &mut RunCtx, pending: Pending) -> u64 {
    match pending.0.await {
        Ok(c) => {
            if let Some(silence) = c.old_host_silent {
                ctx.old_host_silent(silence);
            }
            c.manager
        }
        Err(e) => {
            tracing::warn!(error = %e, "choosing who acts failed: this leader acts");
            ctx.node_id()
        }
    }
}
