//! `mhactl member add|remove`: change the manager cluster's membership without restarts.
//!
//! ```text
//! $ mhactl member add --id 4 --addr 10.0.4.10:7101 --zone zone-d
//! node 4 answers at 10.0.4.10:7101 with the certificate of node-4
//! added 4 (10.0.4.10:7101) as learner
//! caught up: matched index 212 of 212 in 120 ms
//! promoted 4 to voter in 14 ms
//! ID  ADDRESS         ZONE    KIND
//! 1   10.0.1.10:7101  zone-a  voter
//! ...
//! $ mhactl member remove --id 3
//! error: after removing 3 the cluster has 2 voters (1, 2) and a quorum needs 2: the loss of
//! any one manager stops it (no failover, no changes); nothing was changed: to remove 3 anyway,
//! repeat with --yes                                                          (exit status 2)
//! ```
//! Start the new node first, without initial_members (it must not bootstrap a cluster of its
//! own). The leader checks the node at `--addr` before it changes anything.

use std::time::Duration;

use clap::{Args, Subcommand};

use super::cluster_init::{members_json, render_members};
use super::confirm::{confirm, refused};
use super::{exit, AdminClient, CtlError};
use crate::proto::admin::{AddMemberRequest, MemberReply, RemoveMemberRequest};

#[derive(Subcommand, Debug, Clone)]
pub enum MemberCmd {
    /// Add a manager: checked at its address, learner first, caught up, then voter.
    Add(AddArgs),
    /// Remove a manager (voter or learner).
    Remove(RemoveArgs),
}

#[derive(Args, Debug, Clone)]
pub struct AddArgs {
    /// The manager's id (a positive integer, unique, never reused).
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
    /// How long the new node may take to catch up before it is promoted; when it has not, it
    /// stays a learner (exit status 1) and the output says how to promote or remove it.
    #[arg(long, default_value_t = 20_000)]
    pub catch_up_timeout_ms: u64,
    /// Print JSON (schema version 1, docs/cli.md) instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug, Clone)]
pub struct RemoveArgs {
    /// The manager's id (a positive integer, unique, never reused).
    #[arg(long)]
    pub id: u64,
    /// Confirm the removal, also when the cluster left behind cannot survive one more
    /// manager failure (fewer than 3 voters, or too few of the rest answering). Without it
    /// mhactl asks on a terminal (twice for such a removal, with the explanation); otherwise it
    /// refuses (exit status 2) and nothing changes.
    #[arg(long)]
    pub yes: bool,
    /// Print JSON (schema version 1, docs/cli.md) instead of text.
    #[arg(long)]
    pub json: bool,
}

pub fn build_add(a: &AddArgs) -> Result<AddMemberRequest, String> {
    crate::config::check_host_port(&a.addr).map_err(|e| format!("--addr: {e}"))?;
    if a.id == 0 {
        return Err("--id: must be a positive integer".into());
    }
    if a.zone.trim().is_empty() {
        return Err("--zone: must not be empty".into());
    }
    if a.catch_up_timeout_ms == 0 {
        return Err("--catch-up-timeout-ms: must be positive".into());
    }
    Ok(AddMemberRequest {
        id: a.id,
        addr: a.addr.clone(),
        zone: a.zone.clone(),
        learner_only: a.learner,
        catch_up_timeout_ms: a.catch_up_timeout_ms,
    })
}

pub fn build_remove(a: &RemoveArgs) -> RemoveMemberRequest {
    RemoveMemberRequest {
        id: a.id,
        confirmed: a.yes,
    }
}

fn print_reply(r: &MemberReply, json: bool) {
    if json {
        let v = serde_json::json!({
            "schema": 1,
            "steps": r.steps,
            "incomplete": r.incomplete,
            "members": members_json(&r.members),
        });
        super::out(&format!("{v:#}\n"));
        return;
    }
    let steps: String = r.steps.iter().map(|s| format!("{s}\n")).collect();
    super::out(&format!("{steps}{}", render_members(&r.members)));
}

pub async fn execute(client: &AdminClient, cmd: &MemberCmd) -> i32 {
    let json = match cmd {
        MemberCmd::Add(a) => a.json,
        MemberCmd::Remove(a) => a.json,
    };
    let res = match cmd {
        MemberCmd::Add(a) => {
            let req = match build_add(a) {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("error: {e}");
                    return exit::USAGE;
                }
            };
            // The leader waits for the learner (up to the catch-up timeout) before it answers.
            let wait = Duration::from_millis(a.catch_up_timeout_ms) + Duration::from_secs(10);
            let client = match client.with_endpoints(client.endpoints().to_vec(), wait) {
                Ok(c) => c,
                Err(e) => return super::fail(e),
            };
            client
                .call(|mut c| {
                    let req = req.clone();
                    async move { c.add_member(req).await }
                })
                .await
        }
        MemberCmd::Remove(a) => {
            let question = format!("Remove manager {} from the cluster?", a.id);
            if let Some(code) = refused(confirm(a.yes, &question), "member remove") {
                return code;
            }
            let req = build_remove(a);
            let res = client
                .call(|mut c| async move { c.remove_member(req).await })
                .await;
            match res {
                // Asked on the terminal: the leader's explanation, then once more.
                Err(CtlError::NeedsConfirmation(why)) if !a.yes => {
                    eprintln!("{why}");
                    if let Some(code) =
                        refused(confirm(false, "Remove it anyway?"), "member remove")
                    {
                        return code;
                    }
                    let req = RemoveMemberRequest {
                        id: a.id,
                        confirmed: true,
                    };
                    client
                        .call(|mut c| async move { c.remove_member(req).await })
                        .await
                }
                res => res,
            }
        }
    };
    match res {
        Ok(r) => {
            print_reply(&r, json);
            if r.incomplete {
                exit::ERROR
            } else {
                exit::OK
            }
        }
        Err(CtlError::NeedsConfirmation(why)) => {
            eprintln!("error: {why}");
            exit::USAGE
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
            catch_up_timeout_ms: 20_000,
            json: false,
        };
        let req = build_add(&ok).unwrap();
        assert_eq!((req.id, req.catch_up_timeout_ms), (4, 20_000));
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
            AddArgs {
                catch_up_timeout_ms: 0,
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

    #[test]
    fn remove_carries_the_confirmation() {
        let no = RemoveArgs {
            id: 3,
            yes: false,
            json: false,
        };
        assert!(!build_remove(&no).confirmed);
        assert!(build_remove(&RemoveArgs { yes: true, ..no }).confirmed);
    }
}
