//! `mhactl failover`: run a manual failover of a group whose master is dead (MHA's
//! masterha_master_switch --master_state=dead) and follow it step by step; `--dry-run` only
//! explains the choice. `failover ack` clears a failed run's block and the anti-flap window;
//! `failover history` lists past runs with their steps.
//!
//! ```text
//! $ mhactl failover --group lab
//! run 2 (manual, epoch 2): db1 → db2 (latest replica with candidate_master) — completed in 96 ms
//! PHASE                                   STATE  NODE  TERM  TRY  TOOK   DETAIL
//! Phase 1: Configuration Check Phase      done   1     4     -    4.1 ms master db1 still unreachable…
//! ...
//! All other slaves should start replication from here. Statement should be: CHANGE MASTER TO …
//! ```

use std::time::{Duration, Instant};

use clap::{Args, Subcommand};

use super::confirm::{confirm, refused};
use super::journal_view::{
    is_finished, is_running, run_header, run_state, state_word, step_state, steps_table,
};
use super::{exit, fail, out, AdminClient};
use crate::api::json;
use crate::api::pb::{
    run_state, step_state, AckFailoverRequest, FailoverHistoryRequest, FailoverRequest,
    FailoverRun, GroupFailover, StepName,
};

#[derive(Args, Debug, Clone)]
#[command(args_conflicts_with_subcommands = true)]
pub struct FailoverArgs {
    #[command(subcommand)]
    pub cmd: Option<FailoverCmd>,
    /// The replication group (its name in the group file).
    #[arg(long)]
    pub group: Option<String>,
    /// Promote this server (MHA's --new_master_host) instead of MHA's selection order.
    #[arg(long)]
    pub new_master: Option<String>,
    /// Explain the choice without acting.
    #[arg(long)]
    pub dry_run: bool,
    /// Stop following the run after this many seconds (it goes on in the managers).
    #[arg(long, default_value_t = 600)]
    pub wait_s: u64,
    /// Confirm a failover of a master the managers have not found dead (no dead verdict): it
    /// is fenced and replaced all the same. Without it mhactl asks on a terminal and refuses
    /// otherwise (exit status 2). Not needed when the master has a dead verdict.
    #[arg(long)]
    pub yes: bool,
    /// Print JSON (schema version 1, docs/cli.md) instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Subcommand, Debug, Clone)]
pub enum FailoverCmd {
    /// Clear a failed run's block and the anti-flap window (MHA: remove failover.error /
    /// failover.complete).
    Ack {
        /// The replication group (its name in the group file).
        #[arg(long)]
        group: String,
        /// Print JSON (schema version 1, docs/cli.md) instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Past and current runs of a group, with every step.
    History {
        /// The replication group (its name in the group file).
        #[arg(long)]
        group: String,
        /// Full step details (not cut to the terminal).
        #[arg(long)]
        wide: bool,
        /// Print JSON (schema version 1, docs/cli.md) instead of text.
        #[arg(long)]
        json: bool,
    },
}

pub fn build_request(group: &str, new_master: Option<&str>) -> FailoverRequest {
    FailoverRequest {
        group: group.to_string(),
        new_master: new_master.unwrap_or_default().to_string(),
    }
}

pub async fn execute(client: &AdminClient, a: &FailoverArgs) -> i32 {
    match &a.cmd {
        Some(FailoverCmd::Ack { group, json }) => return ack(client, group, *json).await,
        Some(FailoverCmd::History { group, wide, json }) => {
            return history(client, group, *wide, *json).await
        }
        None => {}
    }
    let Some(group) = &a.group else {
        eprintln!("error: --group is required");
        return exit::USAGE;
    };
    if a.dry_run {
        dry_run(client, group, a).await
    } else {
        run(client, group, a).await
    }
}

async fn ack(client: &AdminClient, group: &str, json: bool) -> i32 {
    let req = AckFailoverRequest {
        group: group.to_string(),
    };
    match client
        .call(|mut c| {
            let req = req.clone();
            async move { c.ack_failover(req).await }
        })
        .await
    {
        Ok(r) if json => {
            let v = serde_json::json!({ "schema": 1, "group": group, "acknowledged": r.changed });
            out(&format!("{v:#}\n"));
            exit::OK
        }
        Ok(r) if r.changed => {
            out(&format!(
                "group {group}: acknowledged; automatic failover is allowed again\n"
            ));
            exit::OK
        }
        Ok(_) => {
            out(&format!("group {group}: nothing to acknowledge\n"));
            exit::OK
        }
        Err(e) => fail(e),
    }
}

async fn fetch_history(
    client: &AdminClient,
    group: &str,
) -> Result<(Vec<FailoverRun>, GroupFailover), super::CtlError> {
    let req = FailoverHistoryRequest {
        group: group.to_string(),
    };
    let r = client
        .call(|mut c| {
            let req = req.clone();
            async move { c.failover_history(req).await }
        })
        .await?;
    Ok((r.runs, r.failover.unwrap_or_default()))
}

fn now_ms() -> u64 {
    crate::clock::now_ms()
}

/// MHA's closing statement, as the cleanup step reported it. A run journaled before the
/// statement was a field of its own has it only in the cleanup step's detail.
fn statement(r: &FailoverRun) -> Option<String> {
    let cleanup = i32::from(StepName::NewMasterCleanup);
    r.steps.iter().find_map(|s| match step_state(s) {
        step_state::State::Done(d) if d.statement.is_some() => d.statement.clone(),
        step_state::State::Done(d) if s.name == cleanup => d
            .detail
            .find("All other slaves")
            .map(|i| d.detail[i..].to_string()),
        _ => None,
    })
}

fn render_run(r: &FailoverRun, wide: bool) -> String {
    let now = now_ms();
    let mut text = format!("{}\n{}", run_header(r, now), steps_table(r, now, wide));
    if let Some(s) = statement(r) {
        text.push_str(&format!("{s}\n"));
    }
    if let Some(s) = super::journal_view::switch_summary(r) {
        text.push_str(&format!("{s}\n"));
    }
    text
}

async fn history(client: &AdminClient, group: &str, wide: bool, json: bool) -> i32 {
    let (runs, f) = match fetch_history(client, group).await {
        Ok(x) => x,
        Err(e) => return fail(e),
    };
    if json {
        let runs: Result<Vec<_>, _> = runs.iter().map(json::run).collect();
        let view = runs.and_then(|runs| {
            Ok(serde_json::json!({ "group": group, "runs": runs, "failover": json::group_failover(&f)? }))
        });
        return match view {
            Ok(v) => {
                out(&format!("{v}\n"));
                exit::OK
            }
            Err(e) => fail(format!("bad reply: {e}")),
        };
    }
    let mut text = format!("group {group}: epoch {}", f.epoch);
    if let Some(b) = &f.blocked {
        text.push_str(&format!("; automatic failover BLOCKED: {b}"));
    }
    text.push('\n');
    if runs.is_empty() {
        text.push_str("no failover runs\n");
    }
    for r in &runs {
        text.push('\n');
        text.push_str(&render_run(r, wide));
    }
    for x in &f.refusals {
        text.push_str(&format!(
            "refused an automatic failover {} ago: {}\n",
            crate::errors::human_duration(Duration::from_millis(now_ms().saturating_sub(x.at_ms))),
            x.reason
        ));
    }
    out(&text);
    exit::OK
}

/// What the managers think of the group's master when it is not dead: None when it has a dead
/// verdict (a failover needs no confirmation), else its state in words.
async fn not_dead(client: &AdminClient, group: &str) -> Option<String> {
    use crate::api::pb::health::State;
    let r = match super::cluster_status::fetch(client, &[]).await {
        Ok(r) => r,
        Err(e) => return Some(format!("unknown ({e})")),
    };
    let Some(g) = r.groups.iter().find(|g| g.name == group) else {
        return Some("unknown (the cluster status lists no such group)".into());
    };
    match g.health.as_ref().and_then(|h| h.state.as_ref()) {
        Some(State::Dead(_)) => None,
        Some(State::Alive(_)) | None => Some(format!("{} answers its pings", g.master)),
        Some(State::Suspect(_)) => Some(format!(
            "{} is suspected, not (yet) corroborated dead",
            g.master
        )),
        Some(State::UnreachableButAlive(_)) => Some(format!(
            "{} is unreachable from the leader but alive for the other managers or replicas",
            g.master
        )),
    }
}

/// Begins a manual run, then follows it (a line per finished step) until it ends.
async fn run(client: &AdminClient, group: &str, a: &FailoverArgs) -> i32 {
    if let Some(state) = not_dead(client, group).await {
        let question = format!(
            "Group {group} has no dead verdict: {state}. A failover fences the master \
             (read_only, VIP removed, shutdown_script if SSH cannot reach it) and promotes \
             another server; for a planned change use mhactl switchover. Fail over anyway?"
        );
        if let Some(code) = refused(confirm(a.yes, &question), "failover without a dead verdict") {
            return code;
        }
    }
    let req = build_request(group, a.new_master.as_deref());
    let id = match client
        .call(|mut c| {
            let req = req.clone();
            async move { c.start_failover(req).await }
        })
        .await
    {
        Ok(r) => r.run_id,
        Err(e) => return fail(e),
    };
    if !a.json {
        out(&format!(
            "failover run {id} of group {group} started; following it (Ctrl-C stops following, not the run)\n"
        ));
    }
    follow(client, group, id, a.wait_s, a.json).await
}

/// Follows run `id` (a line per finished step) until it ends; the run's table at the end.
/// Exit 0 when it completed, 1 otherwise.
pub async fn follow(client: &AdminClient, group: &str, id: u64, wait_s: u64, json: bool) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(wait_s);
    let mut shown = 0;
    loop {
        let run = match fetch_history(client, group).await {
            Ok((runs, _)) => runs.into_iter().find(|r| r.id == id),
            Err(e) => {
                eprintln!("warning: {e} (retrying)");
                None
            }
        };
        if let Some(r) = &run {
            let finished = r.steps.iter().take_while(|s| is_finished(s)).count();
            if !json {
                for s in &r.steps[shown..finished] {
                    out(&format!(
                        "  {} — {:?}\n",
                        json::phase(s.name),
                        state_word(s)
                    ));
                }
            }
            shown = shown.max(finished);
            if !is_running(r) {
                if json {
                    match json::run(r) {
                        Ok(v) => out(&format!("{v}\n")),
                        Err(e) => return fail(format!("bad reply: {e}")),
                    }
                } else {
                    out(&format!("\n{}", render_run(r, false)));
                }
                return match run_state(r) {
                    run_state::State::Completed(_) => exit::OK,
                    _ => exit::ERROR,
                };
            }
        }
        if Instant::now() > deadline {
            return fail(format!(
                "run {id} is still running after {wait_s} s; follow it with: mhactl failover history --group {group}"
            ));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn dry_run(client: &AdminClient, group: &str, a: &FailoverArgs) -> i32 {
    let req = build_request(group, a.new_master.as_deref());
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
        let view = match &r.selection {
            Some(s) if r.error.is_empty() => json::selection(s),
            _ => json::excluded(&r.excluded),
        };
        out(&format!("{view}\n"));
        return if r.error.is_empty() {
            exit::OK
        } else {
            exit::ERROR
        };
    }
    if !r.error.is_empty() {
        let mut text = String::new();
        for e in &r.excluded {
            text.push_str(&format!(
                "{} cannot be the new master: {}\n",
                e.server, e.reason
            ));
        }
        out(&text);
        return fail(format!("no failover possible: {}", r.error));
    }
    match &r.selection {
        Some(s) => {
            out(&s
                .explanation
                .iter()
                .map(|l| format!("{l}\n"))
                .collect::<String>());
            exit::OK
        }
        None => fail("bad reply: no selection"),
    }
}
