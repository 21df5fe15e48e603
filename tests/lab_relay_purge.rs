//! Relay-log purge of a file/position group against the lab (real MariaDB with
//! relay_log_purge=OFF, three real mhad): the leader purges each replica's applied relay logs
//! (MHA's purge_relay_logs), one replica at a time, sets relay_log_purge back to OFF, and
//! `cluster status` says so. Root only (skipped, loudly, otherwise); one lab at a time.

mod labkit;

use labkit::*;

/// The relay logs `host`'s index lists.
fn relay_logs(host: &str) -> usize {
    std::fs::read_to_string(format!("{}/{host}/log/relay-bin.index", lab_dir()))
        .map(|t| t.lines().filter(|l| !l.trim().is_empty()).count())
        .unwrap_or(0)
}

#[test]
fn applied_relay_logs_are_purged_on_every_replica() {
    let Some(lab) = Lab::up(&["--mode", "filepos"]) else {
        return;
    };
    for h in ["db2", "db3"] {
        for _ in 0..4 {
            lab.sql(h, "FLUSH NO_WRITE_TO_BINLOG RELAY LOGS");
        }
        assert!(relay_logs(h) >= 5, "{h}: {} relay logs", relay_logs(h));
    }
    lab.add_group_edited(|t| {
        t.replace(
            "[failover]\n",
            "[failover]\npurge_relay_logs_every_m = 60\n",
        )
    });
    // The first purge of each replica is due at once; one replica per round (10 s).
    let st = wait_for("both replicas purged", WAIT, || {
        let out = lab.mhactl(&["cluster", "status", "--json"]);
        let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        let purges = v["groups"][0]["relay_purges"].clone();
        let done = purges
            .as_array()
            .map(|a| a.iter().filter(|p| p["purged"] == true).count())
            .unwrap_or(0);
        if done == 2 {
            Ok(v)
        } else {
            Err(format!("{purges}"))
        }
    });
    for h in ["db2", "db3"] {
        assert!(relay_logs(h) <= 2, "{h}: {} relay logs left", relay_logs(h));
        assert_eq!(lab.sql(h, "SELECT @@relay_log_purge"), "0", "{h}");
        let st = lab.sql(h, "SHOW SLAVE STATUS");
        let cols: Vec<&str> = st.split('\t').collect();
        assert_eq!(
            (cols.get(10), cols.get(11)),
            (Some(&"Yes"), Some(&"Yes")),
            "{h}: {st}"
        );
    }
    let text = String::from_utf8_lossy(&lab.mhactl(&["cluster", "status"]).stdout).to_string();
    assert!(
        text.contains("relay logs on db2: purged") && text.contains("relay logs on db3: purged"),
        "{text}\n{st:#}"
    );
}
