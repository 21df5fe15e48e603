//! MHA's `ignore_fail` against the lab (real MariaDB, three real mhad): a replica marked so
//! that is down when the master dies is left out of the failover and reported, instead of
//! stopping it in phase 1. Root only (skipped, loudly, otherwise); one lab at a time.

mod labkit;

use labkit::*;

/// db3 (`ignore_fail = true`) has its mysqld stopped, then the master's is killed: phase 1
/// says db3 is left out and journals it; the run completes with db2 as the new master; no
/// later phase touches db3 (phase 4 repoints nobody, phase 2 stopped no IO thread on it).
#[test]
fn an_ignore_fail_replica_that_is_down_is_left_out() {
    let Some(lab) = Lab::up(&[]) else { return };
    lab.add_group_edited(|text| {
        assert!(text.contains("name = \"db3\"\n"), "{text}");
        text.replace("name = \"db3\"\n", "name = \"db3\"\nignore_fail = true\n")
    });
    let spec = lab.group_json();
    let db3 = spec["spec"]["servers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "db3")
        .cloned()
        .unwrap();
    assert_eq!(db3["ignore_fail"], true, "{db3}");
    lab.wait_health("alive", |h| h["state"]["state"] == "alive");

    // `group show` states the stored group as a file; updating from it changes nothing, and a
    // changed file is shown as a diff and not applied without --yes.
    let shown = lab.mhactl(&["group", "show", "--group", "lab"]);
    let text = String::from_utf8_lossy(&shown.stdout).to_string();
    assert!(
        shown.status.success() && text.contains("ignore_fail = true"),
        "{text}"
    );
    let path = format!("{}/group.shown.toml", lab_dir());
    std::fs::write(&path, &text).unwrap();
    let same = lab.mhactl(&["group", "update", "-f", &path]);
    assert!(
        String::from_utf8_lossy(&same.stdout).contains("group lab: no change"),
        "{same:?}"
    );
    std::fs::write(
        &path,
        text.replace("interval_ms = 1000", "interval_ms = 2000"),
    )
    .unwrap();
    let diff = lab.mhactl(&["group", "update", "-f", &path]);
    let d = String::from_utf8_lossy(&diff.stdout);
    assert!(
        d.contains("- interval_ms = 1000")
            && d.contains("+ interval_ms = 2000")
            && d.contains("nothing changed: add --yes"),
        "{d}"
    );
    assert_eq!(lab.group_json()["spec"]["ping"]["interval_ms"], 1000);

    lab.lab(&["mysqld", "kill", "db3"]);
    lab.lab(&["mysqld", "kill", "db1"]);
    let run = lab.wait_run_end(1);
    assert_eq!(run["state"]["state"], "completed", "{run:#}");
    assert_eq!(run["decided"]["new_master"], "db2", "{run:#}");
    let check = &step(&run, "config_check")["state"];
    assert_eq!(
        check["failed_replicas"],
        serde_json::json!(["db3"]),
        "{check:#}"
    );
    let detail = check["detail"].as_str().unwrap();
    assert!(
        detail.contains("db3 is unreachable")
            && detail.contains("left out of this failover (ignore_fail)"),
        "{detail}"
    );
    for later in ["fence", "replicas_recovery"] {
        let d = step(&run, later)["state"]["detail"].as_str().unwrap();
        assert!(!d.contains("db3"), "{later} touched db3: {d}");
    }
    assert_eq!(lab.sql("db2", "SELECT @@read_only"), "0");
    // Nothing repointed db3: it left the topology with the old master (both stay in the spec).
    let g = lab.group_json();
    let servers = g["topology"]["servers"].as_object().unwrap();
    assert!(
        servers.contains_key("db2") && !servers.contains_key("db3") && !servers.contains_key("db1"),
        "{g:#}"
    );
}
