//! `mhactl pause` / `mhactl resume`: maintenance mode. A paused group is monitored and
//! checked as always, but a master death is only recorded and shown: no automatic failover
//! until `resume` (or the `--for` time is up). Manual `mhactl failover` still works.
//!
//! ```text
//! $ mhactl pause --group lab --reason "mysqld 10.11.9 upgrade" --for 30m
//! group lab: PAUSED by alice (operator) at 2026-11-30 07:40:00.123 UTC until 2026-11-30 08:10:00.123 UTC: mysqld 10.11.9 upgrade
//!   automatic failover is off; monitoring and checks go on; `mhactl resume --group lab` ends it
//! $ mhactl resume --group lab
//! group lab: resumed: automatic failover is on again
//! ```

use std::time::Duration;

use clap::Args;

use super::audit::utc;
use super::{exit, fail, out, AdminClient};
use crate::api::pb::{GroupPause, Pause, PauseReply, PauseRequest, ResumeRequest};

#[derive(Args, Debug, Clone)]
pub struct PauseArgs {
    /// The group to pause (repeatable).
    #[arg(long, required_unless_present = "all", conflicts_with = "all")]
    pub group: Vec<String>,
    /// Every group the cluster manages.
    #[arg(long)]
    pub all: bool,
    /// Why (shown in `cluster status` and the audit trail).
    #[arg(long, default_value = "")]
    pub reason: String,
    /// End the pause by itself after this long (e.g. 90s, 30m, 2h, 1d); default: until resume.
    #[arg(long = "for", value_name = "DURATION", value_parser = parse_for)]
    pub for_: Option<Duration>,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug, Clone)]
pub struct ResumeArgs {
    /// The group to resume (repeatable).
    #[arg(long, required_unless_present = "all", conflicts_with = "all")]
    pub group: Vec<String>,
    /// Every group the cluster manages.
    #[arg(long)]
    pub all: bool,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}

/// "90s", "30m", "2h", "1d" (a bare number is seconds).
fn parse_for(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = s
        .find(|c: char| !c.is_ascii_digit())
        .map_or((s, ""), |i| s.split_at(i));
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?}: expected a number with s, m, h or d (e.g. 30m)"))?;
    let secs = match unit {
        "" | "s" => n,
        "m" => n.saturating_mul(60),
        "h" => n.saturating_mul(3600),
        "d" => n.saturating_mul(86_400),
        u => return Err(format!("{s:?}: unknown unit {u:?} (s, m, h or d)")),
    };
    if secs == 0 {
        return Err("a pause of no time: leave --for out to pause until resume".into());
    }
    Ok(Duration::from_secs(secs))
}

pub fn build_pause(a: &PauseArgs) -> PauseRequest {
    PauseRequest {
        groups: a.group.clone(),
        all: a.all,
        reason: a.reason.clone(),
        for_ms: a.for_.map(|d| d.as_millis() as u64).unwrap_or(0),
    }
}

pub async fn pause(client: &AdminClient, a: &PauseArgs) -> i32 {
    let req = build_pause(a);
    let r = client
        .call(|mut c| {
            let req = req.clone();
            async move { c.pause_groups(req).await }
        })
        .await;
    match r {
        Ok(r) => show(&r, a.json, true),
        Err(e) => fail(e),
    }
}

pub async fn resume(client: &AdminClient, a: &ResumeArgs) -> i32 {
    let req = ResumeRequest {
        groups: a.group.clone(),
        all: a.all,
    };
    let r = client
        .call(|mut c| {
            let req = req.clone();
            async move { c.resume_groups(req).await }
        })
        .await;
    match r {
        Ok(r) => show(&r, a.json, false),
        Err(e) => fail(e),
    }
}

fn show(r: &PauseReply, json: bool, pausing: bool) -> i32 {
    if json {
        let groups: Vec<serde_json::Value> = r.groups.iter().map(group_json).collect();
        out(&format!(
            "{}\n",
            serde_json::to_string_pretty(&serde_json::json!({ "version": 1, "groups": groups }))
                .expect("json")
        ));
        return exit::OK;
    }
    if r.groups.is_empty() {
        out("no group to change\n");
    }
    for g in &r.groups {
        out(&line(g, pausing));
    }
    exit::OK
}

fn group_json(g: &GroupPause) -> serde_json::Value {
    serde_json::json!({
        "group": g.group,
        "changed": g.changed,
        "paused": g.pause.as_ref().map(|p| serde_json::json!({
            "by": p.by,
            "at_ms": p.at_ms,
            "reason": p.reason,
            "until_ms": p.until_ms,
        })),
    })
}

/// The human line for one group after the call.
pub fn line(g: &GroupPause, pausing: bool) -> String {
    match (&g.pause, pausing) {
        (Some(p), true) => format!(
            "group {}: PAUSED {}\n  automatic failover is off; monitoring and checks go on; \
             `mhactl resume --group {}` ends it\n",
            g.group,
            strip_word(&describe(p)),
            g.group
        ),
        (None, false) if g.changed => format!(
            "group {}: resumed: automatic failover is on again\n",
            g.group
        ),
        (None, false) => format!("group {}: was not paused\n", g.group),
        // A pause another operator took meanwhile, or none after a pause (not expected).
        (Some(p), false) => format!(
            "group {}: still PAUSED {}\n",
            g.group,
            strip_word(&describe(p))
        ),
        (None, true) => format!("group {}: not paused (the pause did not hold)\n", g.group),
    }
}

/// "paused by alice (operator) at … UTC [until … UTC][: reason]", as every command shows a
/// group's pause.
pub fn describe(p: &Pause) -> String {
    let mut s = format!("paused by {} at {} UTC", p.by, utc(p.at_ms));
    if let Some(u) = p.until_ms {
        s.push_str(&format!(" until {} UTC", utc(u)));
    }
    if !p.reason.is_empty() {
        s.push_str(&format!(": {}", p.reason));
    }
    s
}

/// "paused by …" → "by …" (the line says PAUSED itself).
fn strip_word(s: &str) -> &str {
    s.strip_prefix("paused ").unwrap_or(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_for("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_for("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_for("30m"), Ok(Duration::from_secs(1800)));
        assert_eq!(parse_for("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_for("1d"), Ok(Duration::from_secs(86_400)));
        assert!(parse_for("0m").is_err());
        assert!(parse_for("5w").unwrap_err().contains("unknown unit"));
        assert!(parse_for("soon").is_err());
    }

    #[test]
    fn lines_say_what_holds() {
        let p = crate::api::pb::Pause {
            by: "alice (operator)".into(),
            at_ms: 0,
            reason: "upgrade".into(),
            until_ms: None,
        };
        let paused = GroupPause {
            group: "lab".into(),
            pause: Some(p),
            changed: true,
        };
        let l = line(&paused, true);
        assert!(
            l.starts_with(
                "group lab: PAUSED by alice (operator) at 1970-01-01 00:00:00.000 UTC: upgrade"
            ),
            "{l}"
        );
        let resumed = GroupPause {
            group: "lab".into(),
            pause: None,
            changed: true,
        };
        assert!(line(&resumed, false).contains("resumed"));
        let never = GroupPause {
            changed: false,
            ..resumed
        };
        assert!(line(&never, false).contains("was not paused"));
    }
}
