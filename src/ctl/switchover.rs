//! `mhactl switchover`: a planned switch of a live master (MHA's masterha_master_switch
//! --master_state=alive). The leader runs MHA's gates; without `--yes` that is all (nothing
//! is changed), with it the journaled run begins and is followed step by step, ending with
//! how long writes were blocked.
//!
//! ```text
//! $ mhactl switchover --group lab --new-master db2 --orig-master-is-new-slave --yes
//! db1: master, writable
//! db2: replicating, 0 s behind
//! db3: replicating, 0 s behind
//! db1: no update running 2 s or longer
//! new master: db2 (forced)
//! db2: nothing running 10 s or longer
//! switchover run 4 of group lab started; following it (Ctrl-C stops following, not the run)
//!   Phase 1: Configuration Check Phase (online switch) — "done"
//!   Phase 2: Rejecting updates Phase — "done"
//!   ...
//! run 4 (switchover, epoch 4, forced db2): db1 → db2 (forced) — completed in 412 ms
//! PHASE ...
//! writes were blocked for 96 ms (db1 read_only → db2 writable)
//! ```

use clap::Args;

use super::{exit, fail, out, AdminClient};
use crate::api::pb::{SwitchOptions, SwitchoverRequest};

#[derive(Args, Debug, Clone)]
pub struct SwitchoverArgs {
    /// The replication group (its name in the group file).
    #[arg(long)]
    pub group: String,
    /// Promote this server (MHA's --new_master_host) instead of MHA's selection order.
    #[arg(long)]
    pub new_master: Option<String>,
    /// Make the old master a replica of the new one (MHA's --orig_master_is_new_slave);
    /// otherwise it is left read_only, out of replication (`mhactl rejoin` brings it back).
    #[arg(long)]
    pub orig_master_is_new_slave: bool,
    /// Refuse when an update on the master has run this many seconds (plus one) (MHA's
    /// --running_updates_limit; default 1, MHA's).
    #[arg(long)]
    pub running_updates_limit: Option<u64>,
    /// Refuse when a replica is more than this many seconds behind (MHA's
    /// --seconds_behind_master; default 30).
    #[arg(long)]
    pub seconds_behind_master: Option<u64>,
    /// Refuse when a query on the new master has run this many seconds (MHA's
    /// --running_seconds_limit; default 10).
    #[arg(long)]
    pub running_seconds_limit: Option<u64>,
    /// No FLUSH TABLES WITH READ LOCK on the old master (MHA's --skip_lock_all_tables): the
    /// binlog must then stand still for 200 ms.
    #[arg(long)]
    pub skip_lock_all_tables: bool,
    /// Only run the gates and say which server would be promoted (the default without --yes).
    #[arg(long)]
    pub check_only: bool,
    /// Switch (without it, only the gates run).
    #[arg(long)]
    pub yes: bool,
    /// Stop following the run after this many seconds (it goes on in the managers).
    #[arg(long, default_value_t = 600)]
    pub wait_s: u64,
    /// Print JSON (schema version 1, docs/cli.md) instead of text.
    #[arg(long)]
    pub json: bool,
}

pub fn build_request(a: &SwitchoverArgs) -> SwitchoverRequest {
    SwitchoverRequest {
        group: a.group.clone(),
        options: Some(SwitchOptions {
            new_master: a.new_master.clone(),
            orig_master_is_new_slave: a.orig_master_is_new_slave,
            running_updates_limit_s: a.running_updates_limit,
            skip_lock_all_tables: a.skip_lock_all_tables,
            seconds_behind_master_s: a.seconds_behind_master,
            running_seconds_limit_s: a.running_seconds_limit,
        }),
        check_only: a.check_only || !a.yes,
    }
}

pub async fn execute(client: &AdminClient, a: &SwitchoverArgs) -> i32 {
    let req = build_request(a);
    let (code, chosen) = send(client, a, req.clone()).await;
    // On a terminal, gates that passed are followed by the question: go on now?
    if code != exit::OK || !req.check_only || a.check_only || a.json {
        return code;
    }
    if !std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        return code;
    }
    let question = format!("Switch the master of group {} to {chosen} now?", a.group);
    match super::confirm::confirm(false, &question) {
        super::confirm::Confirmation::Given => {
            // The server the gates chose, not a new choice made later.
            let mut req = SwitchoverRequest {
                check_only: false,
                ..req
            };
            if let Some(o) = req.options.as_mut() {
                o.new_master = Some(chosen);
            }
            send(client, a, req).await.0
        }
        _ => code,
    }
}

/// Sends one switchover request (gates only, or the switch) and shows or follows what it did.
/// Returns the exit code and the new master the leader chose.
async fn send(client: &AdminClient, a: &SwitchoverArgs, req: SwitchoverRequest) -> (i32, String) {
    let r = match client
        .call(|mut c| {
            let req = req.clone();
            async move { c.start_switchover(req).await }
        })
        .await
    {
        Ok(r) => r,
        // The leader may have begun the run and then stopped answering (it died): say where
        // to look rather than leave the operator guessing.
        Err(e) if !req.check_only => {
            return (
                fail(format!(
                    "{e}\n(whether the switchover began is unknown: see mhactl failover history \
                 --group {}; a begun run is finished by the next leader)",
                    a.group
                )),
                String::new(),
            )
        }
        Err(e) => return (fail(e), String::new()),
    };
    if a.json && r.run_id == 0 {
        let v = serde_json::json!({
            "version": 1,
            "group": a.group,
            "new_master": r.new_master,
            "rule": r.rule,
            "lines": r.lines,
            "switched": false,
        });
        out(&format!(
            "{}\n",
            serde_json::to_string_pretty(&v).expect("json")
        ));
        return (exit::OK, r.new_master);
    }
    if !a.json {
        for l in &r.lines {
            out(&format!("{l}\n"));
        }
    }
    if r.run_id == 0 {
        out(&format!(
            "checked only, nothing changed: {} the master of {} to {}\n",
            if std::io::IsTerminal::is_terminal(&std::io::stdin()) && !a.check_only {
                "answer y below (or run with --yes) to switch"
            } else {
                "add --yes to switch"
            },
            a.group,
            r.new_master
        ));
        return (exit::OK, r.new_master);
    }
    if !a.json {
        out(&format!(
            "switchover run {} of group {} started; following it (Ctrl-C stops following, not the run)\n",
            r.run_id, a.group
        ));
    }
    let code = super::failover::follow(client, &a.group, r.run_id, a.wait_s, a.json).await;
    (code, r.new_master)
}
