//! `mhactl member add|remove`: change the manager cluster's membership without restarts.
//!
//! ```text
//! $ mhactl member add --id 4 --addr 127.0.0.1:7104 --zone zone-d
//! added 4 (127.0.0.1:7104) as learner; caught up in 35ms
//! promoted 4 to voter in 12ms
//! ID  ADDRESS         ZONE    KIND
//! 1   127.0.0.1:7101  zone-a  voter
//! ...
//! $ mhactl member remove --id 4
//! removed voter 4 in 9ms
//! ```
//! Start the new node first, without initial_members (it must not bootstrap a cluster of its own).

use clap::{Args, Subcommand};

use super::cluster_init::render_members;
use super::{exit, AdminClient};
use crate::proto::admin::{AddMemberRequest, MemberReply, RemoveMemberRequest};

#[derive(Subcommand, Debug, Clone)]
pub enum MemberCmd {
    /// Add a manager: learner first, caught up, then voter.
    Add(AddArgs),
    /// Remove a manager (voter or learner).
    Remove(RemoveArgs),
}

#[derive(Args, Debug, Clone)]
pub struct AddArgs {
    #[arg(long)]
    pub id: u64,
    /// The new node's advertised address (host:port).
    #[arg(long)]
    pub addr: String,
    /// The new node's zone.
    #[arg(long)]
    pub zone: String,
    /// Keep it a non-voting learner.
    #[arg(long)]
    pub learner: bool,
}

#[derive(Args, Debug, Clone)]
pub struct RemoveArgs {
    #[arg(long)]
    pub id: u64,
}

pub fn build_add(a: &AddArgs) -> Result<AddMemberRequest, String> {
    crate::config::check_host_port(&a.addr).map_err(|e| format!("--addr: {e}"))?;
    if a.id == 0 {
        return Err("--id: must be a positive integer".into());
    }
    if a.zone.trim().is_empty() {
        return Err("--zone: must not be empty".into());
    }
    Ok(AddMemberRequest {
        id: a.id,
        addr: a.addr.clone(),
        zone: a.zone.clone(),
        learner_only: a.learner,
    })
}

pub fn build_remove(a: &RemoveArgs) -> RemoveMemberRequest {
    RemoveMemberRequest { id: a.id }
}

fn print_reply(r: &MemberReply) {
    let steps: String = r.steps.iter().map(|s| format!("{s}\n")).collect();
    super::out(&format!("{steps}{}", render_members(&r.members)));
}

pub async fn execute(client: &AdminClient, cmd: &MemberCmd) -> i32 {
    let res = match cmd {
        MemberCmd::Add(a) => {
            let req = match build_add(a) {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("error: {e}");
                    return exit::USAGE;
                }
            };
            client
                .call(|mut c| {
                    let req = req.clone();
                    async move { c.add_member(req).await }
                })
                .await
        }
        MemberCmd::Remove(a) => {
            let req = build_remove(a);
            client
                .call(|mut c| async move { c.remove_member(req).await })
                .await
        }
    };
    match res {
        Ok(r) => {
            print_reply(&r);
            exit::OK
        }
        Err(e) => super::fail(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_request_validation() {
        let ok = AddArgs {
            id: 4,
            addr: "10.0.0.4:7101".into(),
            zone: "d".into(),
            learner: false,
        };
        assert_eq!(build_add(&ok).unwrap().id, 4);
        let cases = [
            AddArgs {
                id: 0,
                ..ok.clone()
            },
            AddArgs {
                addr: "nohost".into(),
                ..ok.clone()
            },
            AddArgs {
                zone: " ".into(),
                ..ok.clone()
            },
        ];
        for c in cases {
            assert!(build_add(&c).is_err(), "{c:?}");
        }
        assert!(
            build_add(&AddArgs {
                learner: true,
                ..ok
            })
            .unwrap()
            .learner_only
        );
    }
}
