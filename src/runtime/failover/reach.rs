//! What a manager reaches of a group's servers, from its own zone: the leader's own view and
//! every other member's (ProbeService.Reach), gathered when a run's executor starts so the
//! leader can hand the steps to a manager that sees what it cannot.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::join_all;

use crate::model::ReachView;
use crate::proto::probe::probe_service_client::ProbeServiceClient;
use crate::proto::probe::{ReachReply, ReachRequest, ServerReach};
use crate::runtime::credentials::{login, password};
use crate::runtime::Runtime;
use crate::state::group::GroupSpec;

/// One knock on a server (mysqld connect, or an SSH `true`): a server that does not answer
/// within this is not reached.
pub const KNOCK: Duration = Duration::from_secs(1);
/// This manager's own knocks not done within this (every server answers in a few ms when it
/// answers at all): the other managers are asked at once, alongside, not after the knocks'
/// full [`KNOCK`] (a powered-off host's knock never answers).
pub const HEDGE: Duration = Duration::from_millis(150);
/// Asking another manager for its view: its own knocks plus the round trip.
pub const ASK: Duration = Duration::from_millis(1_800);

/// This manager's view of `spec`'s servers: each mysqld (except `skip_mysql`) and each host's
/// sshd (except `skip_ssh`: a channel opened on the kept session, nothing forked on the host),
/// knocked on in parallel, each bounded by [`KNOCK`].
pub async fn own(
    node: &Runtime,
    spec: &GroupSpec,
    skip_mysql: &[String],
    skip_ssh: &[String],
) -> ReachReply {
    let pw = password(&node.local, spec);
    let pool = node.ssh.get(&node.local, spec);
    let knocks = spec.servers.iter().map(|s| {
        let (pw, pool) = (&pw, &pool);
        async move {
            let mut detail = Vec::new();
            let mysql = if skip_mysql.contains(&s.name) {
                false
            } else {
                match pw {
                    Err(e) => {
                        detail.push(format!("mysql: password: {e}"));
                        false
                    }
                    Ok(pw) => match login(spec, s, pw).connect(KNOCK).await {
                        Ok(sess) => {
                            sess.close().await;
                            true
                        }
                        Err(e) => {
                            detail.push(format!("mysql: {e}"));
                            false
                        }
                    },
                }
            };
            let ssh = match pool {
                _ if skip_ssh.contains(&s.name) => {
                    detail.push("ssh: silent to every manager a moment ago".into());
                    false
                }
                Err(e) => {
                    detail.push(format!("ssh: {e}"));
                    false
                }
                Ok(pool) => {
                    let (host, port) = s.ssh_target(&spec.ssh);
                    match pool.answers(&host, port, KNOCK).await {
                        Ok(()) => true,
                        Err(e) => {
                            detail.push(format!("ssh: {e}"));
                            false
                        }
                    }
                }
            };
            ServerReach {
                server: s.name.clone(),
                mysql,
                ssh,
                detail: detail.join("; "),
            }
        }
    });
    ReachReply {
        manager_id: node.id(),
        zone: node.me.zone.clone(),
        servers: join_all(knocks).await,
    }
}

/// The facts the planner takes from a reply.
pub fn view(reply: &ReachReply) -> ReachView {
    ReachView {
        manager: reply.manager_id,
        mysql: reply
            .servers
            .iter()
            .filter(|s| s.mysql)
            .map(|s| s.server.clone())
            .collect(),
        ssh: reply
            .servers
            .iter()
            .filter(|s| s.ssh)
            .map(|s| s.server.clone())
            .collect(),
    }
}

/// Every other member's view (voters and learners), asked in parallel, each bounded by
/// [`ASK`]; a member that does not answer contributes nothing (it could not act either).
pub async fn others(node: &Arc<Runtime>, group: &str, skip_mysql: &[String]) -> Vec<ReachReply> {
    let t = Instant::now();
    let asks = crate::runtime::peers::members(node)
        .into_iter()
        .filter(|(id, _)| *id != node.id())
        .map(|(id, addr)| {
            let req = ReachRequest {
                group: group.to_string(),
                skip_mysql: skip_mysql.to_vec(),
            };
            async move {
                let channel = node.raft.network().channel(id, &addr).ok()?;
                let mut client = ProbeServiceClient::new(channel);
                match tokio::time::timeout(ASK, client.reach(req)).await {
                    // The view is of the manager asked, whatever id it puts in its reply.
                    Ok(Ok(r)) => Some(ReachReply {
                        manager_id: id,
                        ..r.into_inner()
                    }),
                    Ok(Err(s)) => {
                        tracing::warn!(manager = id, error = %crate::errors::status_text(&s), "no reach view");
                        None
                    }
                    Err(_) => {
                        tracing::warn!(manager = id, "no reach view within {ASK:?}");
                        None
                    }
                }
            }
        });
    let views: Vec<ReachReply> = join_all(asks).await.into_iter().flatten().collect();
    tracing::debug!(answered = views.len(), elapsed = ?t.elapsed(), "reach views gathered");
    views
}

/// One line per manager for the log: what it does not reach.
pub fn describe(reply: &ReachReply) -> String {
    let missing: Vec<String> = reply
        .servers
        .iter()
        // Every miss leaves a detail; a mysqld not knocked on (the old master's) leaves none.
        .filter(|s| !s.detail.is_empty())
        .map(|s| format!("{} ({})", s.server, s.detail))
        .collect();
    if missing.is_empty() {
        format!("manager {} reaches every server", reply.manager_id)
    } else {
        format!(
            "manager {} does not reach: {}",
            reply.manager_id,
            missing.join(", ")
        )
    }
}
