//! `mhactl failover --group G --dry-run [--new-master H]`: which server would become the new
//! master, by MHA's rules, and why — without acting. The failover itself (journaled, resumable)
//! is the next milestone; until it exists this command only explains.
//!
//! ```text
//! $ mhactl failover --group lab --dry-run
//! The latest binary log file/position on all slaves is mysql-bin.000001:1139 (db2, db3)
//! New master is db2 (latest replica with candidate_master)
//! ```

use clap::Args;

use super::{exit, fail, out, AdminClient};
use crate::engine::selection::{Excluded, Selection};
use crate::proto::admin::FailoverRequest;

#[derive(Args, Debug, Clone)]
pub struct FailoverArgs {
    #[arg(long)]
    pub group: String,
    /// Promote this server (MHA's --new_master_host) instead of MHA's selection order.
    #[arg(long)]
    pub new_master: Option<String>,
    /// Explain the choice without acting.
    #[arg(long)]
    pub dry_run: bool,
    #[arg(long)]
    pub json: bool,
}

pub fn build_request(a: &FailoverArgs) -> FailoverRequest {
    FailoverRequest {
        group: a.group.clone(),
        new_master: a.new_master.clone().unwrap_or_default(),
    }
}

pub async fn execute(client: &AdminClient, a: &FailoverArgs) -> i32 {
    if !a.dry_run {
        eprintln!(
            "error: this build cannot run a failover yet (the journaled failover runner is the next \\
             milestone); `--dry-run` explains which server would be promoted and why"
        );
        return exit::USAGE;
    }
    let req = build_request(a);
    let r = match client
        .call(|mut c| {
            let req = req.clone();
            async move { c.failover_dry_run(req).await }
        })
        .await
    {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    if a.json {
        out(&format!(
            "{}\n",
            if r.error.is_empty() {
                r.selection_json.clone()
            } else {
                r.excluded_json.clone()
            }
        ));
        return if r.error.is_empty() {
            exit::OK
        } else {
            exit::ERROR
        };
    }
    if !r.error.is_empty() {
        let excluded: Vec<Excluded> = serde_json::from_str(&r.excluded_json).unwrap_or_default();
        let mut text = String::new();
        for e in excluded {
            text.push_str(&format!(
                "{} cannot be the new master: {}\n",
                e.server, e.reason
            ));
        }
        out(&text);
        return fail(format!("no failover possible: {}", r.error));
    }
    match serde_json::from_str::<Selection>(&r.selection_json) {
        Ok(s) => {
            out(&s
                .explanation
                .iter()
                .map(|l| format!("{l}\n"))
                .collect::<String>());
            exit::OK
        }
        Err(e) => fail(format!("bad reply: {e}")),
    }
}
