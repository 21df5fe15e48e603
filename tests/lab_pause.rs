//! Maintenance mode against the lab (real MariaDB, three real mhad): a paused group is watched
//! as always, its master's death recorded and shown but not acted on; a planned restart while
//! paused leaves nothing behind; resume hands a dead master to the usual path (a new round,
//! corroborated, then the failover). Root only (skipped, loudly, otherwise); one lab at a time.

mod labkit;

use labkit::*;

fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The refusals the failover path recorded for the group.
fn refusals(lab: &Lab) -> Vec<Value> {
    lab.history()["failover"]["refusals"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[test]
fn paused_group_records_a_death_and_resume_fails_over() {
    let Some(lab) = Lab::up(&[]) else { return };
    lab.add_group();
    lab.wait_health("alive", |h| h["state"]["state"] == "alive");

    tracing::info!("--- pause: check status says PAUSED (40)");
    let out = lab.mhactl(&["pause", "--group", "lab", "--reason", "mysqld upgrade"]);
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains("group lab: PAUSED by ") && said.contains(": mysqld upgrade"),
        "{said}"
    );
    let (code, status) = lab.check("status");
    assert_eq!(code, 40, "{status}");
    assert!(
        status.contains("(40:PAUSED)") && status.contains("PING_OK"),
        "{status}"
    );
    let cluster = text(&lab.mhactl(&["cluster", "status"]));
    assert!(
        cluster.contains("automatic failover paused by") && cluster.contains("mysqld upgrade"),
        "{cluster}"
    );

    tracing::info!("--- the master killed while paused: recorded, shown, not acted on");
    lab.lab(&["mysqld", "kill", "db1"]);
    let dead = wait_for("a Dead verdict", WAIT, || match lab.verdicts("dead") {
        d if d.is_empty() => Err(lab.health()),
        d => Ok(d),
    });
    let refused = wait_for("the automatic run refused", WAIT, || {
        match refusals(&lab).last() {
            Some(r) => Ok(r.clone()),
            None => Err(lab.history()),
        }
    });
    assert!(
        refused["reason"]
            .as_str()
            .unwrap()
            .contains("automatic failover is paused (paused by"),
        "{refused}"
    );
    assert!(lab.history()["runs"].as_array().unwrap().is_empty());
    // Dead while paused: 21 (someone must act), the line saying why nothing did.
    let (code, status) = lab.check("status");
    assert_eq!(code, 21, "{status}");
    assert!(
        status.contains("automatic failover paused by") && status.contains("dead while paused"),
        "{status}"
    );
    assert_eq!(
        lab.sql("db2", "SELECT @@read_only"),
        "1",
        "nothing promoted"
    );

    tracing::info!("--- mysqld back (a planned restart): the Dead round closes, still paused");
    lab.lab(&["mysqld", "start", "db1"]);
    lab.wait_health("alive again", |h| h["state"]["state"] == "alive");
    assert!(lab.history()["runs"].as_array().unwrap().is_empty());
    assert_eq!(lab.status_code(), 40);

    tracing::info!("--- killed again, then resumed: a new round, corroborated, one failover");
    lab.lab(&["mysqld", "kill", "db1"]);
    // The second refusal, not just the verdict: a resume between the two would leave the
    // verdict standing for the automatic run instead of a new round.
    wait_for(
        "the second automatic run refused",
        WAIT,
        || match refusals(&lab) {
            r if r.len() >= 2 => Ok(()),
            r => Err(format!("{r:?}")),
        },
    );
    let out = lab.mhactl(&["resume", "--group", "lab"]);
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains("group lab: resumed: automatic failover is on again"),
        "{said}"
    );
    let run = lab.wait_run_end(1);
    assert_eq!(run["state"]["state"], "completed", "{run:#}");
    assert_eq!(run["kind"], "auto", "{run:#}");
    let verdicts = lab.verdicts("dead");
    assert_eq!(
        verdicts.len(),
        3,
        "a new round after the resume: {verdicts:?}"
    );
    assert_eq!(run["verdict_round"], verdicts[2]["round"], "{run:#}");
    assert!(
        dead[0]["round"].as_u64() < verdicts[2]["round"].as_u64(),
        "{verdicts:?}"
    );
    let out = lab.mhactl(&["resume", "--group", "lab"]);
    assert!(text(&out).contains("was not paused"), "{}", text(&out));
}
