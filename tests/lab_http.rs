//! The managers' HTTP listener (`--metrics-listen`) against the lab (three real mhad, real
//! MariaDB), fetched with curl, a real HTTP client: Prometheus text from `/metrics` on every
//! manager (every sample line parses, the role gauges right, a failover counted and its steps
//! timed), and the health checks answering 200/503 before and after a failover. Root only
//! (skipped, loudly, otherwise); one lab at a time.

mod labkit;

use std::process::Command;

use labkit::*;

/// (HTTP status, body) of a GET.
fn curl(url: &str) -> (u16, String) {
    let out =
        run(Command::new("curl").args(["-s", "--max-time", "5", "-w", "\n%{http_code}", url]));
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

fn managers() -> Vec<String> {
    (1..=3)
        .map(|i| format!("http://10.77.0.2{i}:9104"))
        .collect()
}

/// Every sample of a Prometheus text exposition: (name with labels, value). Panics on a line
/// that is neither a comment nor a sample.
fn samples(text: &str) -> Vec<(String, f64)> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (k, v) = l
                .rsplit_once(' ')
                .unwrap_or_else(|| panic!("not a sample: {l}"));
            let v = v
                .parse::<f64>()
                .unwrap_or_else(|_| panic!("not a value: {l}"));
            (k.to_string(), v)
        })
        .collect()
}

fn value(s: &[(String, f64)], key: &str) -> Option<f64> {
    s.iter().find(|(k, _)| k == key).map(|(_, v)| *v)
}

fn scrape(m: &str) -> Vec<(String, f64)> {
    let (code, body) = curl(&format!("{m}/metrics"));
    assert_eq!(code, 200, "{m}/metrics: {body}");
    assert!(body.trim_end().ends_with("# EOF"), "{body}");
    samples(&body)
}

/// The acting leader's base URL, once exactly one manager says so on /leader.
fn leader() -> String {
    wait_for("exactly one /leader answering 200", WAIT, || {
        let up: Vec<String> = managers()
            .into_iter()
            .filter(|m| curl(&format!("{m}/leader")).0 == 200)
            .collect();
        match up.as_slice() {
            [one] => Ok(one.clone()),
            _ => Err(format!("{up:?}")),
        }
    })
}

fn code(m: &str, path: &str) -> u16 {
    curl(&format!("{m}{path}")).0
}

#[test]
fn metrics_and_health_checks_follow_a_failover() {
    let Some(lab) = Lab::up(&[]) else { return };
    lab.add_group();
    lab.app_setup();
    let lead = leader();
    for m in managers() {
        let (c, body) = curl(&format!("{m}/health"));
        assert_eq!(c, 200, "{m}/health: {body}");
        let s = scrape(&m);
        let is_leader = value(&s, "mha_raft_raft_is_leader").expect("raft_is_leader");
        assert_eq!(is_leader, if m == lead { 1.0 } else { 0.0 }, "{m}");
        assert!(value(&s, "mha_raft_raft_term").unwrap_or(0.0) >= 1.0, "{m}");
        assert!(
            s.iter()
                .any(|(k, v)| k.starts_with("mha_raft_build_info{") && *v == 1.0),
            "{m}"
        );
        assert_eq!(
            value(&s, r#"mha_raft_server_is_master{group="lab",server="db1"}"#),
            Some(1.0),
            "{m}"
        );
        assert_eq!(
            value(&s, r#"mha_raft_group_health{group="lab",state="alive"}"#),
            Some(1.0),
            "{m}"
        );
        // Every manager answers the group checks the same (the replicated state).
        assert_eq!(code(&m, "/groups/lab/servers/db1/master"), 200, "{m}");
        assert_eq!(code(&m, "/groups/lab/servers/db2/master"), 503, "{m}");
        assert_eq!(code(&m, "/groups/nosuch/master"), 404, "{m}");
        assert_eq!(code(&m, "/groups/lab/servers/db9/master"), 404, "{m}");
        assert_eq!(code(&m, "/groups/lab/servers/db2/replica"), 200, "{m}");
        assert_eq!(code(&m, "/groups/lab/servers/db1/replica"), 503, "{m}");
    }
    let (c, body) = curl(&format!("{lead}/groups/lab/master"));
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!((c, v["master"].as_str()), (200, Some("db1")), "{body}");
    assert_eq!(v["host"], "10.77.0.11", "{body}");
    // The leader's monitor reads the replicas: their threads and lag are exported.
    wait_for("replica gauges on the leader", WAIT, || {
        let s = scrape(&lead);
        match value(
            &s,
            r#"mha_raft_replica_sql_running{group="lab",server="db2"}"#,
        ) {
            Some(1.0) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    });
    let s = scrape(&lead);
    assert!(
        value(&s, r#"mha_raft_ping_duration_seconds_count{group="lab"}"#).unwrap_or(0.0) > 0.0,
        "pings are timed"
    );

    lab.lab(&["mysqld", "kill", "db1"]);
    let run = lab.wait_run_end(1);
    assert_eq!(run["state"]["state"], "completed", "{run:#}");
    let nm = run["decided"]["new_master"].as_str().unwrap().to_string();
    let other = if nm == "db2" { "db3" } else { "db2" };
    for m in managers() {
        wait_for(
            &format!("{m} to follow the new master"),
            WAIT,
            || match code(&m, &format!("/groups/lab/servers/{nm}/master")) {
                200 => Ok(()),
                c => Err(c.to_string()),
            },
        );
        assert_eq!(code(&m, "/groups/lab/servers/db1/master"), 503, "{m}");
        wait_for(
            &format!("{m}: {other} a replica of {nm}"),
            WAIT,
            || match code(
                &m,
                &format!("/groups/lab/servers/{other}/replica?max_lag=30"),
            ) {
                200 => Ok(()),
                c => Err(c.to_string()),
            },
        );
        let s = scrape(&m);
        assert_eq!(
            value(
                &s,
                r#"mha_raft_failover_runs_total{group="lab",kind="auto",outcome="completed"}"#
            ),
            Some(1.0),
            "{m}"
        );
        assert!(
            value(
                &s,
                r#"mha_raft_last_failover_timestamp_seconds{group="lab"}"#
            )
            .is_some(),
            "{m}"
        );
    }
    // The manager that led the run counted the verdict and timed each step (a retried step
    // is timed again).
    let counted = managers().into_iter().map(|m| scrape(&m)).find(|s| {
        value(s, r#"mha_raft_verdicts_total{group="lab",kind="dead"}"#).unwrap_or(0.0) >= 1.0
    });
    let s = counted.expect("a manager counted the dead verdict");
    // It also counted its failed MySQL calls to the dead master (the pings that found it
    // dead were refused connections).
    let db1 = lab_group_server_endpoint("db1");
    let refused = value(
        &s,
        &format!(r#"mha_raft_mysql_errors_total{{endpoint="{db1}",kind="connect"}}"#),
    );
    assert!(refused.unwrap_or(0.0) >= 1.0, "{db1}: {refused:?}");
    for step in ["config_check", "promote_new_master", "replicas_recovery"] {
        let key = format!(
            r#"mha_raft_failover_step_duration_seconds_count{{kind="auto",step="{step}"}}"#
        );
        assert!(value(&s, &key).unwrap_or(0.0) >= 1.0, "{key}");
    }
    let lead = leader();
    let (c, body) = curl(&format!("{lead}/groups/lab/master"));
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (c, v["master"].as_str()),
        (200, Some(nm.as_str())),
        "{body}"
    );
    // The dead old master is no replica.
    assert_eq!(code(&lead, "/groups/lab/servers/db1/replica"), 503);

    // A manager left alone (the two others stopped) has no quorum in sight: /health says so,
    // and the group checks answer 503 rather than its last, possibly stale, view.
    let alone = managers()
        .into_iter()
        .find(|m| *m != lead)
        .expect("a follower");
    for (i, m) in managers().iter().enumerate() {
        if *m != alone {
            lab.lab(&["mgr", "stop", &format!("{}", i + 1)]);
        }
    }
    wait_for(&format!("{alone}/health to say 503"), WAIT, || {
        match code(&alone, "/health") {
            503 => Ok(()),
            c => Err(c.to_string()),
        }
    });
    assert_eq!(
        code(&alone, &format!("/groups/lab/servers/{nm}/master")),
        503
    );
    assert_eq!(code(&alone, "/leader"), 503);
}

/// The MySQL endpoint (host:port) of a server of the lab's group file.
fn lab_group_server_endpoint(name: &str) -> String {
    let text = std::fs::read_to_string(format!("{}/group.toml", lab_dir())).unwrap();
    let spec = mha_raft::group_file::parse(&text).unwrap();
    spec.servers
        .iter()
        .find(|s| s.name == name)
        .map(|s| s.endpoint())
        .unwrap()
}
