//! The public admin service (mhactl's API). Thin handlers: unpack, delegate, convert.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tonic::{Request, Response, Status};

use super::audit::{self, Call, Outcome};
use super::cluster_view;
use super::pause;
use crate::api::pb::{self, *};
use crate::proto::admin::admin_service_server::AdminService;
use crate::raft::{AddMember, MemberChange, DEFAULT_CATCH_UP_TIMEOUT};
use crate::runtime::groups;
use crate::runtime::Runtime;
use crate::security::{Caller, Principal};
use crate::state::group::{Group, GroupSpec};
use crate::state::{Cmd, CmdResult};

pub struct AdminSvc {
    node: Arc<Runtime>,
}

impl AdminSvc {
    pub fn new(node: Arc<Runtime>) -> Self {
        AdminSvc { node }
    }

    fn members(&self) -> Vec<MemberInfo> {
        cluster_view::node_status(&self.node).members
    }

    fn member_reply(&self, change: MemberChange) -> MemberReply {
        MemberReply {
            members: self.members(),
            steps: change.steps,
            incomplete: change.incomplete,
        }
    }

    fn require_leader(&self) -> Result<(), Status> {
        Ok(self.node.raft.require_leader()?)
    }

    /// Serves an admin write and records it in the audit trail (server/audit.rs) before the
    /// caller gets the answer; `detail` says what a success changed. Every write needs the
    /// leader: a follower redirects before it looks at the request, so the leader checks it
    /// and records the outcome, a malformed request included.
    async fn audited<T>(
        &self,
        call: Call,
        work: impl Future<Output = Result<T, Status>>,
        detail: impl FnOnce(&T) -> String,
    ) -> Result<Response<T>, Status> {
        self.require_leader()?;
        let res = work.await;
        audit::record(&self.node, call, Outcome::of(&res, detail)).await;
        res.map(Response::new)
    }

    async fn put_group(
        &self,
        req: Request<PutGroupRequest>,
        replace: bool,
        rpc: &'static str,
    ) -> Result<Response<GroupReply>, Status> {
        let call = Call::new(&req, rpc, group_what(req.get_ref().spec.as_ref()));
        let spec = req.into_inner().spec;
        let work = async {
            let spec = spec.ok_or_else(|| Status::invalid_argument("spec: required"))?;
            let spec =
                GroupSpec::try_from(spec).map_err(|e| Status::invalid_argument(e.to_string()))?;
            let g = groups::put_group(&self.node, spec, replace).await?;
            Ok(group_reply(&g))
        };
        self.audited(call, work, |r| {
            r.group
                .as_ref()
                .and_then(|g| g.topology.as_ref())
                .map(|t| format!("master {}", t.master))
                .unwrap_or_default()
        })
        .await
    }
}

/// A group request's main arguments for the audit trail: its name and servers (nothing of its
/// credentials, which are names anyway).
fn group_what(spec: Option<&pb::GroupSpec>) -> String {
    match spec {
        None => "(no group spec)".into(),
        Some(s) => format!(
            "group {} ({})",
            s.name,
            s.servers
                .iter()
                .map(|x| x.name.as_str())
                .collect::<Vec<_>>()
                .join(",")
        ),
    }
}

fn group_reply(g: &Group) -> GroupReply {
    GroupReply {
        group: Some(g.into()),
        warnings: g.topology.warnings.clone(),
    }
}

#[tonic::async_trait]
impl AdminService for AdminSvc {
    #[tracing::instrument(level = "debug", skip_all, fields(rpc = "node_status", node = self.node.id()))]
    async fn node_status(
        &self,
        _req: Request<NodeStatusRequest>,
    ) -> Result<Response<NodeStatusReply>, Status> {
        Ok(Response::new(cluster_view::node_status(&self.node)))
    }

    #[tracing::instrument(skip_all, fields(rpc = "cluster_status", node = self.node.id()))]
    async fn cluster_status(
        &self,
        req: Request<ClusterStatusRequest>,
    ) -> Result<Response<ClusterStatusReply>, Status> {
        let req = req.into_inner();
        Ok(Response::new(
            cluster_view::cluster_status(&self.node, &req).await?,
        ))
    }

    #[tracing::instrument(skip_all, fields(rpc = "init_cluster", node = self.node.id()))]
    async fn init_cluster(
        &self,
        req: Request<InitClusterRequest>,
    ) -> Result<Response<InitClusterReply>, Status> {
        let what = match req.get_ref().members.as_slice() {
            [] => "a one-member cluster of this manager".to_string(),
            ms => format!(
                "members {}",
                ms.iter()
                    .map(|m| format!("{}={}", m.id, m.addr))
                    .collect::<Vec<_>>()
                    .join(",")
            ),
        };
        let call = Call::new(&req, "InitCluster", what);
        let res = async {
            let mut members = BTreeMap::new();
            for m in req.into_inner().members {
                crate::config::check_host_port(&m.addr).map_err(Status::invalid_argument)?;
                if m.id == 0 || members.insert(m.id, m.addr).is_some() {
                    return Err(Status::invalid_argument(format!(
                        "member ids must be positive and unique (id {})",
                        m.id
                    )));
                }
            }
            self.node
                .raft
                .init_cluster(&self.node.me.advertise, members)
                .await?;
            Ok(InitClusterReply {
                members: self.members(),
            })
        }
        .await;
        // The cluster has no leader yet: recorded in the background once it has one.
        let outcome = Outcome::of(&res, |r| format!("{} members", r.members.len()));
        audit::record_init(self.node.clone(), call, outcome);
        res.map(Response::new)
    }

    #[tracing::instrument(skip_all, fields(rpc = "add_member", node = self.node.id()))]
    async fn add_member(
        &self,
        req: Request<AddMemberRequest>,
    ) -> Result<Response<MemberReply>, Status> {
        let r = req.get_ref();
        let what = format!(
            "member {} at {} in zone {}{}",
            r.id,
            r.addr,
            r.zone,
            if r.learner_only { " (learner)" } else { "" }
        );
        let call = Call::new(&req, "AddMember", what);
        let r = req.into_inner();
        let work = async {
            if r.zone.trim().is_empty() {
                return Err(Status::invalid_argument("zone is required"));
            }
            let catch_up_timeout = match r.catch_up_timeout_ms {
                0 => DEFAULT_CATCH_UP_TIMEOUT,
                ms => Duration::from_millis(ms),
            };
            let change = self
                .node
                .raft
                .add_member(AddMember {
                    id: r.id,
                    addr: r.addr,
                    zone: r.zone,
                    learner_only: r.learner_only,
                    catch_up_timeout,
                })
                .await?;
            Ok(self.member_reply(change))
        };
        self.audited(call, work, |r| r.steps.join("; ")).await
    }

    #[tracing::instrument(skip_all, fields(rpc = "remove_member", node = self.node.id()))]
    async fn remove_member(
        &self,
        req: Request<RemoveMemberRequest>,
    ) -> Result<Response<MemberReply>, Status> {
        let (id, confirmed) = (req.get_ref().id, req.get_ref().confirmed);
        let what = format!("member {id}{}", if confirmed { " (--yes)" } else { "" });
        let call = Call::new(&req, "RemoveMember", what);
        let work = async {
            let change = self.node.raft.remove_member(id, confirmed).await?;
            Ok(self.member_reply(change))
        };
        self.audited(call, work, |r| r.steps.join("; ")).await
    }

    #[tracing::instrument(skip_all, fields(rpc = "register_manager", node = self.node.id()))]
    async fn register_manager(
        &self,
        req: Request<RegisterManagerRequest>,
    ) -> Result<Response<RegisterManagerReply>, Status> {
        let caller = Caller::of(&req).principal;
        let r = req.get_ref();
        let what = format!(
            "manager {} at {} in zone {} (features {})",
            r.id,
            r.addr,
            r.zone,
            r.features.join(",")
        );
        // Refused before it is audited: a member's certificate must not be able to fill the
        // trail with registrations in other names.
        if !matches!(caller, Principal::Anonymous) && caller != Principal::Node(r.id) {
            return Err(Status::permission_denied(format!(
                "{caller} may not register manager {}: a manager registers itself",
                r.id
            )));
        }
        let call = Call::new(&req, "RegisterManager", what);
        let r = req.into_inner();
        let work = async {
            // Only a member registers (with TLS the security layer refused a non-member's
            // certificate already): a removed manager must not bring its record back.
            let is_member = self
                .node
                .raft
                .metrics()
                .membership_config
                .membership()
                .get_node(&r.id)
                .is_some();
            if !is_member {
                return Err(Status::permission_denied(format!(
                    "node {} is not a member of this cluster (as this manager knows it)",
                    r.id
                )));
            }
            crate::config::check_host_port(&r.addr).map_err(Status::invalid_argument)?;
            let admin_addr = Some(r.admin_addr).filter(|a| !a.is_empty());
            if let Some(a) = &admin_addr {
                crate::config::check_host_port(a).map_err(Status::invalid_argument)?;
            }
            if r.id == 0 || r.zone.trim().is_empty() {
                return Err(Status::invalid_argument("id and zone are required"));
            }
            let res = self
                .node
                .raft
                .propose(Cmd::RegisterManager {
                    id: r.id,
                    addr: r.addr,
                    zone: r.zone,
                    admin_addr,
                    features: r.features,
                    // The caller proved to be this manager (or the cluster runs --insecure).
                    by_self: true,
                })
                .await?;
            Ok((RegisterManagerReply {}, res))
        };
        // A registration that changed nothing (managers re-register once per leader term) is
        // not worth a trail entry; one that changed something or failed is.
        self.require_leader()?;
        let res = work.await;
        if !matches!(res, Ok((_, CmdResult::Unchanged))) {
            let outcome = Outcome::of(&res, |(_, r)| format!("{r:?}").to_lowercase());
            audit::record(&self.node, call, outcome).await;
        }
        res.map(|(reply, _)| Response::new(reply))
    }

    #[tracing::instrument(skip_all, fields(rpc = "add_group", node = self.node.id()))]
    async fn add_group(
        &self,
        req: Request<PutGroupRequest>,
    ) -> Result<Response<GroupReply>, Status> {
        self.put_group(req, false, "AddGroup").await
    }

    #[tracing::instrument(skip_all, fields(rpc = "update_group", node = self.node.id()))]
    async fn update_group(
        &self,
        req: Request<PutGroupRequest>,
    ) -> Result<Response<GroupReply>, Status> {
        self.put_group(req, true, "UpdateGroup").await
    }

    #[tracing::instrument(skip_all, fields(rpc = "remove_group", node = self.node.id()))]
    async fn remove_group(
        &self,
        req: Request<RemoveGroupRequest>,
    ) -> Result<Response<GroupReply>, Status> {
        let name = req.get_ref().name.clone();
        let call = Call::new(&req, "RemoveGroup", format!("group {name}"));
        let work = async {
            groups::remove_group(&self.node, &name).await?;
            Ok(GroupReply::default())
        };
        self.audited(call, work, |_| "removed".into()).await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(rpc = "list_groups", node = self.node.id()))]
    async fn list_groups(
        &self,
        _req: Request<ListGroupsRequest>,
    ) -> Result<Response<ListGroupsReply>, Status> {
        let groups = groups::groups(&self.node)
            .values()
            .map(Into::into)
            .collect();
        Ok(Response::new(ListGroupsReply { groups }))
    }

    #[tracing::instrument(skip_all, fields(rpc = "check_repl", node = self.node.id()))]
    async fn check_repl(
        &self,
        req: Request<CheckGroupRequest>,
    ) -> Result<Response<CheckReplReply>, Status> {
        self.require_leader()?;
        let report = groups::check_repl(&self.node, &req.into_inner().group).await?;
        Ok(Response::new(CheckReplReply {
            ok: report.ok,
            report: Some((&report).into()),
        }))
    }

    #[tracing::instrument(skip_all, fields(rpc = "check_ssh", node = self.node.id()))]
    async fn check_ssh(
        &self,
        req: Request<CheckGroupRequest>,
    ) -> Result<Response<CheckSshReply>, Status> {
        self.require_leader()?;
        let name = req.into_inner().group;
        groups::group(&self.node, &name)?;
        Ok(Response::new(
            cluster_view::check_ssh_everywhere(&self.node, &name).await,
        ))
    }

    #[tracing::instrument(skip_all, fields(rpc = "check_ssh_local", node = self.node.id()))]
    async fn check_ssh_local(
        &self,
        req: Request<CheckGroupRequest>,
    ) -> Result<Response<CheckSshReply>, Status> {
        let r = req.into_inner();
        self.node
            .raft
            .wait_applied(r.min_applied, std::time::Duration::from_secs(2))
            .await;
        let g = groups::group(&self.node, &r.group)?;
        let results = groups::ssh_check_local(&self.node.local, &g.spec)
            .await
            .into_iter()
            .map(|r| SshCheck {
                manager_id: self.node.id(),
                manager_zone: self.node.me.zone.clone(),
                server: r.server,
                target: r.target,
                ok: r.ok,
                latency_ms: r.latency_ms,
                error: r.error,
            })
            .collect();
        Ok(Response::new(CheckSshReply {
            results,
            unreachable_managers: Vec::new(),
        }))
    }

    #[tracing::instrument(skip_all, fields(rpc = "failover_dry_run", node = self.node.id()))]
    async fn failover_dry_run(
        &self,
        req: Request<FailoverRequest>,
    ) -> Result<Response<FailoverReply>, Status> {
        self.require_leader()?;
        let r = req.into_inner();
        let forced = Some(r.new_master.as_str()).filter(|s| !s.is_empty());
        Ok(Response::new(
            match groups::failover_dry_run(&self.node, &r.group, forced).await? {
                Ok(sel) => FailoverReply {
                    excluded: sel.excluded.iter().map(Into::into).collect(),
                    selection: Some((&sel).into()),
                    error: String::new(),
                },
                Err((error, excluded)) => FailoverReply {
                    selection: None,
                    error,
                    excluded: excluded.iter().map(Into::into).collect(),
                },
            },
        ))
    }

    #[tracing::instrument(skip_all, fields(rpc = "start_failover", node = self.node.id()))]
    async fn start_failover(
        &self,
        req: Request<FailoverRequest>,
    ) -> Result<Response<StartFailoverReply>, Status> {
        let r = req.get_ref();
        let what = match r.new_master.as_str() {
            "" => format!("group {}", r.group),
            m => format!("group {}, new master {m}", r.group),
        };
        let call = Call::new(&req, "StartFailover", what);
        let r = req.into_inner();
        let work = async {
            self.require_leader()?;
            let forced = Some(r.new_master).filter(|s| !s.is_empty());
            let run_id =
                crate::runtime::failover::begin_manual(&self.node, &r.group, forced).await?;
            Ok(StartFailoverReply { run_id })
        };
        self.audited(call, work, |r| format!("run {}", r.run_id))
            .await
    }

    #[tracing::instrument(skip_all, fields(rpc = "ack_failover", node = self.node.id()))]
    async fn ack_failover(
        &self,
        req: Request<AckFailoverRequest>,
    ) -> Result<Response<AckFailoverReply>, Status> {
        let group = req.get_ref().group.clone();
        let call = Call::new(&req, "AckFailover", format!("group {group}"));
        let work = async {
            self.require_leader()?;
            groups::group(&self.node, &group)?;
            let changed = self.node.raft.submit(Cmd::AckFailover { group }).await?;
            Ok(AckFailoverReply { changed })
        };
        self.audited(call, work, |r| {
            if r.changed {
                "acknowledged".into()
            } else {
                "nothing to acknowledge".into()
            }
        })
        .await
    }

    #[tracing::instrument(skip_all, fields(rpc = "pause_groups", node = self.node.id()))]
    async fn pause_groups(
        &self,
        req: Request<PauseRequest>,
    ) -> Result<Response<PauseReply>, Status> {
        let r = req.get_ref();
        let call = Call::new(
            &req,
            "PauseGroups",
            pause::what(&r.groups, r.all, &r.reason),
        );
        let by = Caller::of(&req).principal.to_string();
        let r = req.into_inner();
        let work = async {
            let ask = crate::runtime::pause::PauseAsk {
                groups: r.groups,
                all: r.all,
                by,
                reason: r.reason,
                for_ms: Some(r.for_ms).filter(|ms| *ms > 0),
            };
            let done = crate::runtime::pause::pause(&self.node, ask).await?;
            Ok(pause::reply(&done))
        };
        self.audited(call, work, pause::detail).await
    }

    #[tracing::instrument(skip_all, fields(rpc = "resume_groups", node = self.node.id()))]
    async fn resume_groups(
        &self,
        req: Request<ResumeRequest>,
    ) -> Result<Response<PauseReply>, Status> {
        let r = req.get_ref();
        let call = Call::new(&req, "ResumeGroups", pause::what(&r.groups, r.all, ""));
        let r = req.into_inner();
        let work = async {
            let done = crate::runtime::pause::resume(&self.node, &r.groups, r.all).await?;
            Ok(pause::reply(&done))
        };
        self.audited(call, work, pause::detail).await
    }

    #[tracing::instrument(skip_all, fields(rpc = "rejoin_server", node = self.node.id()))]
    async fn rejoin_server(
        &self,
        req: Request<RejoinRequest>,
    ) -> Result<Response<RejoinReply>, Status> {
        let call = Call::new(&req, "RejoinServer", super::rejoin::what(req.get_ref()));
        self.require_leader()?;
        super::rejoin::serve(self.node.clone(), call, req.into_inner())
            .await
            .map(Response::new)
    }

    #[tracing::instrument(skip_all, fields(rpc = "start_switchover", node = self.node.id()))]
    async fn start_switchover(
        &self,
        req: Request<SwitchoverRequest>,
    ) -> Result<Response<SwitchoverReply>, Status> {
        let call = Call::new(
            &req,
            "StartSwitchover",
            super::switchover::what(req.get_ref()),
        );
        let r = req.into_inner();
        let work = async {
            let options = r.options.unwrap_or_default().into();
            let s = crate::runtime::switchover::start(&self.node, &r.group, options, r.check_only)
                .await?;
            Ok(super::switchover::reply(s))
        };
        self.audited(call, work, super::switchover::detail).await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(rpc = "audit", node = self.node.id()))]
    async fn audit(&self, req: Request<AuditRequest>) -> Result<Response<AuditReply>, Status> {
        let limit = req.into_inner().limit as usize;
        let (records, total) = self.node.raft.read(|c| {
            let records: Vec<AuditRecord> = c.audit.last(limit).iter().map(Into::into).collect();
            (records, c.audit.total)
        });
        Ok(Response::new(AuditReply {
            records,
            total,
            answered_by: self.node.id(),
        }))
    }

    #[tracing::instrument(skip_all, fields(rpc = "failover_history", node = self.node.id()))]
    async fn failover_history(
        &self,
        req: Request<FailoverHistoryRequest>,
    ) -> Result<Response<FailoverHistoryReply>, Status> {
        // The leader's journal: a partitioned follower's copy may lag behind a run that is
        // being executed on the other side.
        self.require_leader()?;
        let group = req.into_inner().group;
        groups::group(&self.node, &group)?;
        let (runs, f) = self.node.raft.read(|c| {
            let runs: Vec<FailoverRun> = c
                .runs
                .values()
                .filter(|r| r.group == group)
                .map(Into::into)
                .collect();
            let f = c.failover.get(&group).cloned().unwrap_or_default();
            (runs, GroupFailover::from(&f))
        });
        Ok(Response::new(FailoverHistoryReply {
            runs,
            failover: Some(f),
        }))
    }
}
