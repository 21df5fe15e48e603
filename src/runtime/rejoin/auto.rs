//! `[failover] auto_rejoin = true`: the leader brings back the master the group's last failover
//! or switchover replaced (engine::rejoin::last_master_change), as `mhactl rejoin --yes` would,
//! once it answers again. The check first, changing nothing: an old master holding errant
//! transactions is refused, named in the log and in `cluster status`, and left as it is —
//! never discarded; one replicating from another server (set up by hand) is left alone. Only
//! then the rejoin itself, which sets read_only, stops replication and checks again (what
//! arrives between the two checks is still refused, the server then left read-only with its
//! replication stopped, as `mhactl rejoin` leaves it).
//!
//! Only while the group is quiet: master alive, no run active, automatic failover neither
//! paused (an operator at work) nor blocked (a failed run awaiting an acknowledgement). A server
//! that does not answer is probed again every round (a short connect); one refused is tried
//! again after [`AFTER_REFUSAL`] (its state may have been repaired by hand).

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::super::credentials::{login, password};
use super::super::groups;
use super::super::supervisor::{Ticker, Wake};
use super::super::Runtime;
use crate::clock::now_ms;
use crate::engine::rejoin::last_master_change;
use crate::model::Health;
use crate::raft::NodeError;

const EVERY: Duration = Duration::from_secs(5);
/// The connect that tells whether the old master is back.
const PROBE: Duration = Duration::from_secs(1);
/// A refused server is tried again this long after.
pub const AFTER_REFUSAL: Duration = Duration::from_secs(300);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Rejoined,
    /// It did not answer (still down): probed again next round.
    Unreachable,
    /// It answered but was not rejoined (errant transactions, a failure: detail says).
    Refused,
}

impl Outcome {
    pub fn as_str(&self) -> &'static str {
        match self {
            Outcome::Rejoined => "rejoined",
            Outcome::Unreachable => "unreachable",
            Outcome::Refused => "refused",
        }
    }

    /// The wire's word back (an unknown one reads as refused: never as a success).
    pub fn parse(s: &str) -> Outcome {
        match s {
            "rejoined" => Outcome::Rejoined,
            "unreachable" => Outcome::Unreachable,
            _ => Outcome::Refused,
        }
    }
}

/// What the last automatic rejoin attempt of a server did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AutoRejoin {
    pub server: String,
    pub at_ms: u64,
    pub outcome: Outcome,
    pub detail: String,
}

/// The last attempt per (group, server), and the attempts under way, on this node.
#[derive(Default)]
pub struct RejoinBook {
    pub attempts: super::super::attempts::AttemptBook<AutoRejoin>,
    under_way: Mutex<BTreeSet<(String, String)>>,
}

impl RejoinBook {
    fn due(&self, group: &str, server: &str) -> bool {
        self.attempts
            .last(group, server)
            .is_none_or(|(at, a)| a.outcome != Outcome::Refused || at.elapsed() >= AFTER_REFUSAL)
    }
}

/// An attempt under way, given back when dropped (a round never starts a second one).
struct UnderWay {
    node: Arc<Runtime>,
    key: (String, String),
}

impl UnderWay {
    fn take(node: &Arc<Runtime>, group: &str, server: &str) -> Option<UnderWay> {
        let key = (group.to_string(), server.to_string());
        node.auto_rejoin
            .under_way
            .lock()
            .expect("auto rejoins")
            .insert(key.clone())
            .then(|| UnderWay {
                node: node.clone(),
                key,
            })
    }
}

impl Drop for UnderWay {
    fn drop(&mut self) {
        self.node
            .auto_rejoin
            .under_way
            .lock()
            .expect("auto rejoins")
            .remove(&self.key);
    }
}

/// Runs until `stop`: while this node leads, starts an attempt for every replaced master that
/// is due (each in a task of its own: a slow one never holds up another group's).
pub async fn supervise(node: Arc<Runtime>, stop: watch::Receiver<bool>) {
    let mut ticker = Ticker::new(&node.raft, stop, EVERY, Wake::Tick);
    while let Some(lead) = ticker.next().await {
        if lead.is_none() {
            continue;
        }
        for (group, server) in candidates(&node) {
            if !node.auto_rejoin.due(&group, &server) {
                continue;
            }
            let Some(slot) = UnderWay::take(&node, &group, &server) else {
                continue;
            };
            tokio::spawn(async move {
                let node = slot.node.clone();
                attempt(&node, &group, &server).await;
                drop(slot);
            });
        }
    }
}

/// (group, server): the replaced master of each quiet group with auto_rejoin on, while it is
/// out of the topology.
fn candidates(node: &Runtime) -> Vec<(String, String)> {
    let now = now_ms();
    node.raft.read(|c| {
        c.groups
            .values()
            .filter(|g| g.spec.failover.auto_rejoin && matches!(g.health.state, Health::Alive))
            .filter(|g| {
                c.failover.get(&g.spec.name).is_none_or(|f| {
                    f.active_run.is_none() && f.blocked.is_none() && f.pause_at(now).is_none()
                })
            })
            .filter_map(|g| {
                let run = last_master_change(c.runs.values(), &g.spec.name)?;
                let old = &run.old_master;
                let replaced = run
                    .decided
                    .as_ref()
                    .is_some_and(|d| d.new_master == g.topology.master);
                (replaced
                    && *old != g.topology.master
                    && !g.topology.servers.contains_key(old)
                    && g.spec.server(old).is_some())
                .then(|| (g.spec.name.clone(), old.clone()))
            })
            .collect()
    })
}

/// One attempt: a short connect first (a server still down costs a second, and is not an
/// event), then the rejoin's check alone — a refusal changes nothing on the server, so an
/// operator's work on it is never undone — and only when that passes, the rejoin itself.
async fn attempt(node: &Runtime, group: &str, server: &str) {
    let (outcome, detail) = match answers(node, group, server).await {
        Err(why) => (Outcome::Unreachable, why),
        Ok(()) => match rejoin_checked(node, group, server).await {
            Ok(report) => (Outcome::Rejoined, report.lines.join("; ")),
            // Leadership moved: the next leader's own loop takes over.
            Err(NodeError::NotLeader { .. } | NodeError::LeadershipLost { .. }) => return,
            Err(e) => (Outcome::Refused, e.to_string()),
        },
    };
    let said_before = node
        .auto_rejoin
        .attempts
        .last(group, server)
        .is_some_and(|(_, a)| a.outcome == outcome && a.detail == detail);
    match outcome {
        Outcome::Rejoined => {
            tracing::info!(%group, %server, %detail, "old master rejoined automatically")
        }
        // Once per reason, not every retry.
        Outcome::Refused if !said_before => tracing::warn!(
            %group, %server, %detail,
            "old master not rejoined automatically; tried again every {} min",
            AFTER_REFUSAL.as_secs() / 60
        ),
        _ => tracing::debug!(%group, %server, %detail, outcome = outcome.as_str(), "auto-rejoin"),
    }
    node.auto_rejoin.attempts.record(
        group,
        server,
        AutoRejoin {
            server: server.to_string(),
            at_ms: now_ms(),
            outcome,
            detail,
        },
    );
}

/// The check, then (it passed) the rejoin.
async fn rejoin_checked(
    node: &Runtime,
    group: &str,
    server: &str,
) -> Result<super::RejoinReport, NodeError> {
    let check = super::Options {
        check_only: true,
        automatic: true,
    };
    super::rejoin(node, group, server, check).await?;
    let go = super::Options {
        check_only: false,
        ..check
    };
    super::rejoin(node, group, server, go).await
}

/// Ok when `server` accepts a connection within [`PROBE`].
async fn answers(node: &Runtime, group: &str, server: &str) -> Result<(), String> {
    let g = groups::group(node, group).map_err(|e| e.to_string())?;
    let s = g
        .spec
        .server(server)
        .ok_or_else(|| format!("{server} is no longer in group {group}'s spec"))?;
    let pw = password(&node.local, &g.spec).map_err(|e| e.to_string())?;
    let session = login(&g.spec, s, &pw)
        .connect(PROBE)
        .await
        .map_err(|e| e.to_string())?;
    session.close().await;
    Ok(())
}
