//! Honest errors and quiet logs (issue #14), seen from outside: real mhad processes on
//! loopback with their default log filter, their logs read as an operator would, and mhactl
//! against a cluster without a quorum.

mod prockit;

use prockit::{leader_id, mhactl, wait_status, Cluster};

/// The log lines after `mark` of node `id` that contain every one of `parts`.
fn lines_with(c: &mut Cluster, id: u64, mark: usize, parts: &[&str]) -> Vec<String> {
    c.proc(id)
        .log_since(mark)
        .lines()
        .filter(|l| parts.iter().all(|p| l.contains(p)))
        .map(str::to_string)
        .collect()
}

/// A follower stopped for a while and started again: each survivor logs exactly one WARN that
/// the peer is down and one that it is back (with the outage), and no ERROR at all meanwhile —
/// not openraft's line per failed RPC, nor anything of ours.
#[test]
fn a_stopped_peer_is_logged_once_down_and_once_back() {
    let mut c = Cluster::start_logging(3, None);
    let v = c.wait_healthy();
    let leader = leader_id(&v).unwrap();
    // A follower, so that no election muddles the picture (leader changes: the next test).
    let gone = (1..=3).find(|i| *i != leader).unwrap();
    let survivors: Vec<u64> = (1..=3).filter(|i| *i != gone).collect();
    let marks: Vec<(u64, usize)> = survivors
        .iter()
        .map(|id| (*id, c.proc(*id).log_mark()))
        .collect();
    let peer = format!("peer {gone} (");

    eprintln!("--- stop node {gone}");
    c.proc(gone).kill9();
    for (id, mark) in &marks {
        c.proc(*id).wait_log(*mark, &[&peer, "is down"]);
    }
    eprintln!("--- start node {gone} again");
    c.proc(gone).spawn();
    for (id, mark) in &marks {
        c.proc(*id).wait_log(*mark, &[&peer, "is back after"]);
    }
    c.wait_healthy();

    for (id, mark) in marks {
        let down = lines_with(&mut c, id, mark, &[&peer, "is down"]);
        assert_eq!(down.len(), 1, "node {id}: {down:#?}");
        assert!(down[0].contains(" WARN "), "{}", down[0]);
        let back = lines_with(&mut c, id, mark, &[&peer, "is back after"]);
        assert_eq!(back.len(), 1, "node {id}: {back:#?}");
        assert!(back[0].contains(" WARN "), "{}", back[0]);
        let errors = lines_with(&mut c, id, mark, &[" ERROR "]);
        assert!(errors.is_empty(), "node {id}: {errors:#?}");
    }
}

/// `--log-level debug` raises mhad's own lines to DEBUG and nothing else: with a follower
/// stopped and started again, the survivors log DEBUG lines of mha-raft, but openraft only at
/// ERROR (none here: its routine peer errors stay dropped) and the HTTP/2 stack nothing below
/// WARN.
#[test]
fn log_level_debug_raises_only_mhads_own_lines() {
    let mut c = Cluster::start_with(3, None, &["--log-level", "debug", "--log-format", "json"]);
    let v = c.wait_healthy();
    let leader = leader_id(&v).unwrap();
    let gone = (1..=3).find(|i| *i != leader).unwrap();
    let mark = c.proc(leader).log_mark();
    c.proc(gone).kill9();
    c.proc(leader)
        .wait_log(mark, &[&format!("peer {gone} ("), "is down"]);
    c.proc(gone)
        .spawn_with(&["--log-level", "debug", "--log-format", "json"]);
    c.wait_healthy();
    let log = c.proc(leader).log();
    let lines: Vec<serde_json::Value> = log
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let at = |v: &serde_json::Value| {
        (
            v["level"].as_str().unwrap_or_default().to_string(),
            v["target"].as_str().unwrap_or_default().to_string(),
        )
    };
    assert!(
        lines
            .iter()
            .map(at)
            .any(|(level, target)| level == "DEBUG" && target.starts_with("mha_raft")),
        "no DEBUG line of mha-raft: {log}"
    );
    let chatter: Vec<String> = lines
        .iter()
        .map(at)
        .filter(|(level, target)| {
            (target.starts_with("openraft") && level != "ERROR")
                || (["h2", "hyper", "tower", "sled"]
                    .iter()
                    .any(|t| target.starts_with(t))
                    && (level == "DEBUG" || level == "TRACE" || level == "INFO"))
        })
        .map(|(l, t)| format!("{l} {t}"))
        .collect();
    assert!(chatter.is_empty(), "library chatter: {chatter:#?}");
}

/// The leader killed: the new leader logs "this node is now the leader (term T)" and the
/// other survivor "leader is now node N (term T)", at INFO, with the term the cluster reports.
/// A call sent to a follower then is redirected to the leader without a WARN or ERROR.
#[test]
fn a_leader_change_is_logged_with_the_term() {
    let mut c = Cluster::start_logging(3, None);
    let v = c.wait_healthy();
    let old = leader_id(&v).unwrap();
    let marks: Vec<(u64, usize)> = (1..=3)
        .filter(|i| *i != old)
        .map(|id| (id, c.proc(id).log_mark()))
        .collect();

    eprintln!("--- kill the leader, node {old}");
    c.proc(old).kill9();
    let v = wait_status(&c.endpoints(), "a new leader", |v| {
        v["has_quorum"] == true && leader_id(v).is_some_and(|l| l != old)
    });
    let (new, term) = (leader_id(&v).unwrap(), v["term"].as_u64().unwrap());
    let follower = marks.iter().map(|m| m.0).find(|id| *id != new).unwrap();
    let mark = |id: u64| marks.iter().find(|m| m.0 == id).unwrap().1;
    let line = c.proc(new).wait_log(
        mark(new),
        &[&format!("this node is now the leader (term {term})")],
    );
    assert!(line.contains(" INFO "), "{line}");
    let line = c.proc(follower).wait_log(
        mark(follower),
        &[&format!("leader is now node {new} (term {term})")],
    );
    assert!(line.contains(" INFO "), "{line}");
    for (id, m) in &marks {
        let errors = lines_with(&mut c, *id, *m, &[" ERROR "]);
        assert!(errors.is_empty(), "node {id}: {errors:#?}");
    }

    eprintln!("--- a read and a write sent to follower {follower}, redirected to {new}");
    // The old leader's down line is already there; what comes after the mark is the calls'.
    c.proc(follower)
        .wait_log(mark(follower), &[&format!("peer {old} ("), "is down"]);
    let m = c.proc(follower).log_mark();
    let at = c.proc(follower).addr.clone();
    // Bounded retry: on a loaded machine one more election may be under way (at INFO).
    let start = std::time::Instant::now();
    while !mhactl(&at, &["cluster", "status"]).status.success() {
        assert!(
            start.elapsed() < prockit::WAIT,
            "status through {at} never answered"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let out = mhactl(
        &at,
        &["group", "remove", "--group", "no-such-group", "--yes"],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("does not exist"), "{err}");
    let log = c.proc(follower).log_since(m);
    let loud: Vec<&str> = log
        .lines()
        .filter(|l| l.contains(" WARN ") || l.contains(" ERROR "))
        .collect();
    assert!(loud.is_empty(), "redirects logged as problems: {loud:#?}");
}

/// Two of three managers down: a command that needs the leader says "no quorum", with how
/// many voters it reached and which, and exits 3; with none reachable it is "no manager
/// reachable", exit 1.
#[test]
fn no_quorum_names_the_voters_reached() {
    let mut c = Cluster::start_logging(3, None);
    c.wait_healthy();
    let ep = c.endpoints();
    c.proc(1).kill9();
    c.proc(2).kill9();
    let addr3 = c.proc(3).addr.clone();
    let want = format!("no quorum: reached 1 of 3 voters (node 3 at {addr3}); a leader needs 2");
    let start = std::time::Instant::now();
    loop {
        let out = mhactl(&ep, &["failover", "history", "--group", "g"]);
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        if out.status.code() == Some(3) {
            assert!(err.contains(&want), "{err}");
            break;
        }
        // Until node 3's lease or election timer runs out it may still name the old leader.
        assert!(
            start.elapsed() < prockit::WAIT,
            "never 'no quorum'; last: {err}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    c.proc(3).kill9();
    let out = mhactl(&ep, &["failover", "history", "--group", "g"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("no manager reachable"), "{err}");
}
