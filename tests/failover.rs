//! Automatic failover against the lab: real MariaDB (GTID, lossless semi-sync), real sshd,
//! three real mhad managers. A master killed under a writer that goes through the VIP is failed
//! over by the managers themselves, every step journaled, no acknowledged write lost; a second
//! failure within the anti-flap window is refused; an old master that is unreachable is powered
//! off, one that hangs is stopped over SSH; a leader killed in the middle of a run is replaced
//! by one that finishes it. Root only (the lab), one lab at a time.

mod labkit;

use labkit::*;

/// An application-like client in the lab's client host: a new `mariadb` connection through
/// the VIP every ~30 ms with a long (5 s) connect timeout, as applications have. A SYN nobody
/// answers is retransmitted by the kernel, so the client namespace's `TCPSynRetrans` counter
/// says whether any attempt met silence rather than an answer (accepted, or reset).
struct SynProbe {
    child: std::process::Child,
    dir: tempfile::TempDir,
    retrans_before: u64,
}

impl SynProbe {
    fn start() -> SynProbe {
        let dir = tempfile::tempdir().unwrap();
        let script = format!(
            "while [ ! -e {stop} ]; do mariadb --no-defaults --connect-timeout=5 \
             -h 10.77.0.100 -uapp -N -B -e 'SELECT @@server_id' >>{out} 2>&1; sleep 0.03; done",
            stop = dir.path().join("stop").display(),
            out = dir.path().join("out").display()
        );
        let retrans_before = Self::syn_retransmits();
        let child = std::process::Command::new("ip")
            .args(["netns", "exec", "mhalab-client", "bash", "-c", &script])
            // The password travels in the environment, never in the process arguments.
            .env("MYSQL_PWD", APP_PW)
            .spawn()
            .unwrap();
        SynProbe {
            child,
            dir,
            retrans_before,
        }
    }

    /// The client host's count of retransmitted SYNs.
    fn syn_retransmits() -> u64 {
        let out = std::process::Command::new("ip")
            .args(["netns", "exec", "mhalab-client", "cat", "/proc/net/netstat"])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let ext: Vec<Vec<&str>> = text
            .lines()
            .filter(|l| l.starts_with("TcpExt:"))
            .map(|l| l.split_whitespace().collect())
            .collect();
        let (names, values) = (&ext[0], &ext[1]);
        let i = names.iter().position(|n| *n == "TCPSynRetrans").unwrap();
        values[i].parse().unwrap()
    }

    /// Stops the client: SYNs retransmitted meanwhile, and what its attempts printed.
    fn finish(mut self) -> (u64, String) {
        std::fs::write(self.dir.path().join("stop"), "").unwrap();
        self.child.wait().unwrap();
        let retrans = Self::syn_retransmits() - self.retrans_before;
        let out = std::fs::read_to_string(self.dir.path().join("out")).unwrap_or_default();
        (retrans, out)
    }
}

/// Kill -9 the master under a writer: the managers fail over by themselves; the new master
/// holds the VIP and takes writes; no acknowledged write is lost anywhere; the survivors
/// converge; the journal is complete and MHA-readable; the old master, when it comes back, is
/// read-only and without the VIP. Then anti-flap: a second kill within the window is refused
/// and recorded; after `failover ack`, a manual `mhactl failover` works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn master_killed_under_writes_then_anti_flap() {
    let Some(lab) = Lab::up(&["--mode", "gtid", "--semisync"]) else {
        return;
    };
    lab.clear_work_files();
    lab.add_group();
    // `group add` puts the epoch's table on the master, so no promotion creates it on its
    // path; replication takes it to the replicas.
    for db in ["db1", "db2", "db3"] {
        wait_for(&format!("the epoch's table on {db}"), WAIT, || {
            let n = lab.sql(
                db,
                "SELECT COUNT(*) FROM information_schema.tables \
                 WHERE table_schema = 'mha_raft' AND table_name = 'failover_epoch'",
            );
            if n == "1" {
                Ok(())
            } else {
                Err(n)
            }
        });
    }
    lab.app_setup();
    let writer = Writer::start();
    writer.wait_more(0).await;
    assert_eq!(lab.status_code(), 0);
    let probe = SynProbe::start();

    lab.lab(&["mysqld", "kill", "db1"]);
    let at_kill = writer.count();
    let run = lab.wait_run_end(1);
    assert_eq!(run["state"]["state"], "completed", "{run:#}");
    assert_eq!(run["kind"], "auto");
    let new_master = run["decided"]["new_master"].as_str().unwrap().to_string();
    assert!(new_master == "db2" || new_master == "db3", "{new_master}");
    let other = if new_master == "db2" { "db3" } else { "db2" };
    for s in run["steps"].as_array().unwrap() {
        // A GTID run has no relay-log diffs to cut: 3.4 is skipped from the start.
        let want = if s["name"] == "generate_diffs" {
            "skipped"
        } else {
            "done"
        };
        assert_eq!(s["state"]["state"], want, "{s:#}");
    }
    // 3.1 takes what phase 2 read on the sessions that stopped the IO threads.
    let latest = step(&run, "latest_replicas")["state"]["detail"]
        .as_str()
        .unwrap();
    assert!(
        latest.ends_with("(as phase 2 read them once the old master was taken out)"),
        "{latest}"
    );
    // 3.2 takes the read of the dead master's binlog phase 2 began once it took it out.
    let salvage = step(&run, "save_master_binlog")["state"]["detail"]
        .as_str()
        .unwrap();
    assert!(
        salvage.ends_with("(read as soon as phase 2 had taken the old master out)"),
        "{salvage}"
    );
    let fence = step(&run, "fence")["state"]["detail"].as_str().unwrap();
    assert!(
        fence.contains("db1: VIP 10.77.0.100/24 fenced: kept"),
        "{fence}"
    );
    let promote = step(&run, "promote_new_master")["state"]["detail"]
        .as_str()
        .unwrap();
    assert!(
        promote.contains(&format!("{new_master}: VIP 10.77.0.100/24 up"))
            && promote.contains("replication stopped and reset (RESET SLAVE ALL)"),
        "{promote}"
    );
    // The other survivor is pointed at the new master in 3.5, alongside its read_only=0 and
    // the VIP (point_ahead.rs); phase 4 finds it replicating and leaves it alone.
    assert!(
        promote.contains(&format!(
            "{other}: replicating from {new_master} (pointed ahead of phase 4)"
        )),
        "{promote}"
    );
    // The old host's fenced VIP goes in phase 4, alongside the repointing.
    let phase4 = step(&run, "replicas_recovery")["state"]["detail"]
        .as_str()
        .unwrap();
    assert!(
        phase4.contains("db1: VIP 10.77.0.100/24 released")
            && phase4.contains(&format!("{other}: already replicating from {new_master}")),
        "{phase4}"
    );
    let cleanup = step(&run, "new_master_cleanup")["state"]["detail"]
        .as_str()
        .unwrap();
    assert!(
        cleanup.contains("All other slaves should start replication from here")
            && cleanup.contains("MASTER_PASSWORD='xxx'"),
        "{cleanup}"
    );
    // Whatever the salvage found (lossless semi-sync: usually nothing), a completed run leaves
    // no work file on the survivors.
    for host in [new_master.as_str(), other] {
        assert_eq!(lab.work_files(host, 1), vec![], "{host}: {cleanup}");
    }

    writer.wait_more(at_kill).await;
    assert_eq!(lab.vip_holder(), new_master);
    // From the kill to the new master holding the VIP, every connection attempt through it
    // was answered (refused by the dead mysqld's host, reset by the fenced VIP, or accepted
    // by the new master): none waited for a SYN retransmit.
    let (retrans, attempts) = probe.finish();
    assert_eq!(retrans, 0, "SYNs into silence; the client saw:\n{attempts}");
    let new_id = lab.sql(&new_master, "SELECT @@server_id");
    assert!(
        attempts.lines().any(|l| l.trim() == new_id),
        "the client never reached the new master: {attempts}"
    );
    let acked = writer.finish().await;
    let rows = lab.wait_converged(&[&new_master, other]);
    check_no_loss(&acked, &rows);
    assert_eq!(lab.sql(&new_master, "SELECT @@read_only"), "0");
    assert_eq!(lab.sql(other, "SELECT @@read_only"), "1");
    // Lossless on the new master from its first write: the replica pointed ahead registered
    // as a semi-sync replica, and no transaction committed without its acknowledgement.
    let status = |name: &str| {
        lab.sql(
            &new_master,
            &format!(
                "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS \
                 WHERE VARIABLE_NAME = '{name}'"
            ),
        )
    };
    assert_eq!(status("RPL_SEMI_SYNC_MASTER_CLIENTS"), "1");
    assert_eq!(status("RPL_SEMI_SYNC_MASTER_STATUS"), "ON");
    assert_eq!(status("RPL_SEMI_SYNC_MASTER_NO_TX"), "0");
    assert_ne!(status("RPL_SEMI_SYNC_MASTER_YES_TX"), "0");
    assert_eq!(
        lab.sql(
            &new_master,
            "SELECT CONCAT(epoch, ',', run) FROM mha_raft.failover_epoch WHERE grp='lab'"
        ),
        "1,1"
    );
    let g = lab.group_json();
    assert_eq!(g["topology"]["master"], new_master.as_str());
    assert_eq!(lab.status_code(), 0, "monitoring the new master");

    // The old master comes back: read-only (my.cnf), no VIP.
    lab.lab(&["mysqld", "start", "db1"]);
    assert_eq!(lab.sql("db1", "SELECT @@read_only"), "1");
    assert_eq!(lab.vip_holder(), new_master);

    // A second failure within the anti-flap window: refused and recorded, status 21.
    lab.lab(&["mysqld", "kill", &new_master]);
    let refusal = wait_for("a recorded refusal", WAIT, || {
        let h = lab.try_history();
        h["failover"]["refusals"]
            .as_array()
            .and_then(|a| a.last())
            .cloned()
            .ok_or(h)
    });
    assert!(
        refusal["reason"]
            .as_str()
            .unwrap()
            .contains("anti-flap window of 480 min"),
        "{refusal:#}"
    );
    assert_eq!(lab.history()["runs"].as_array().unwrap().len(), 1);
    assert_eq!(lab.status_code(), 21);

    // The operator acknowledges, then fails over by hand.
    let ack = lab.mhactl(&["failover", "ack", "--group", "lab"]);
    assert!(ack.status.success());
    let out = lab.mhactl(&["failover", "--group", "lab"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("Phase 3.5: Master Log Apply Phase"), "{text}");
    let run2 = lab.wait_run_end(2);
    assert_eq!(run2["kind"], "manual");
    assert_eq!(run2["decided"]["new_master"], other);
    assert_eq!(lab.vip_holder(), other);
    assert_eq!(lab.sql(other, "SELECT @@read_only"), "0");

    // Two failovers later, with TLS on: no password anywhere, files private.
    lab.assert_no_secrets_anywhere(&[&["audit", "--json"], &["audit", "--limit", "0"]]);
}

/// The old master's host is cut off (alive but unreachable): the replicas lose it, the verdict
/// is Dead, SSH cannot reach the host, so the shutdown_script powers it off (STONITH) before
/// anything is promoted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_old_master_is_powered_off() {
    let Some(lab) = Lab::up(&["--mode", "gtid", "--semisync"]) else {
        return;
    };
    lab.add_group();
    lab.lab(&["isolate", "db1"]);
    let run = lab.wait_run_end(1);
    assert_eq!(run["state"]["state"], "completed", "{run:#}");
    let fence = step(&run, "fence")["state"]["detail"].as_str().unwrap();
    assert!(
        fence.contains("db1: powered off by shutdown_script"),
        "{fence}"
    );
    let db1 = lab.host_status("db1");
    assert_eq!(db1["processes"]["mysqld"]["state"], "down", "{db1:#}");
    let nm = run["decided"]["new_master"].as_str().unwrap();
    assert_eq!(lab.vip_holder(), nm);
}

/// Resume: for each step, the leader is killed (SIGKILL, a test-only failpoint) right after
/// the step's begin is committed — or, for the two steps that decide and promote, right after
/// the step acted — and the next leader completes the run: one promotion, the step re-checked
/// in a newer term (attempt 2), the decision not taken again.
#[cfg(feature = "failpoints")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_killed_at_each_step_new_leader_finishes() {
    let points = [
        "begin:config_check",
        "begin:fence",
        "begin:latest_replicas",
        "begin:choose_new_master",
        "act:choose_new_master",
        "begin:promote_new_master",
        "act:promote_new_master",
        "begin:replicas_recovery",
        "begin:new_master_cleanup",
    ];
    for point in points {
        let Some(lab) = Lab::up_with_env(
            &["--mode", "gtid", "--semisync"],
            &[("MHAD_FAILPOINT", point)],
        ) else {
            return;
        };
        lab.add_group();
        lab.app_setup();
        lab.sql("db1", "INSERT INTO mha_lab.acked (id) VALUES (1), (2), (3)");
        lab.lab(&["mysqld", "kill", "db1"]);
        let run = lab.wait_run_end(1);
        assert_eq!(run["state"]["state"], "completed", "{point}: {run:#}");
        let (_, name) = point.split_once(':').unwrap();
        let st = &step(&run, name)["state"];
        assert_eq!(
            st["attempts"], 2,
            "{point}: re-checked by a new leader: {st:#}"
        );
        let first = step(&run, "config_check")["state"]["term"]
            .as_u64()
            .unwrap();
        assert!(
            st["term"].as_u64().unwrap() > first || name == "config_check",
            "{point}: resumed in a newer term: {run:#}"
        );
        if point == "act:choose_new_master" {
            let d = st["detail"].as_str().unwrap();
            assert!(d.contains("already decided"), "{point}: {d}");
        }
        let nm = run["decided"]["new_master"].as_str().unwrap().to_string();
        let writable: Vec<&str> = ["db2", "db3"]
            .into_iter()
            .filter(|h| lab.sql(h, "SELECT @@read_only") == "0")
            .collect();
        assert_eq!(
            writable,
            vec![nm.as_str()],
            "{point}: exactly one promotion"
        );
        assert_eq!(lab.vip_holder(), nm, "{point}");
        assert_eq!(
            lab.sql(
                &nm,
                "SELECT CONCAT(epoch, ',', run) FROM mha_raft.failover_epoch"
            ),
            "1,1",
            "{point}"
        );
        let other = if nm == "db2" { "db3" } else { "db2" };
        let rows = lab.wait_converged(&[&nm, other]);
        check_no_loss(&[1, 2, 3], &rows);
        drop(lab);
    }
}

/// The manager acting phase 2 killed while a replica host refuses its own connections to the
/// dark old master (the refusal placed for the IO thread's stop, not deleted yet: a test-only
/// failpoint) leaves the refusal to the next leader: its phase 2 (attempt 2) ends with no copy
/// left on any survivor's host, and the run completes. A refusal left behind would keep that
/// replica from ever replicating from db1 again. Here db1 stays dark, so attempt 2 places
/// its own refusal too, and its deletion of every copy takes the killed manager's with it;
/// the deletion a resumed attempt runs without placing one (a host no longer dark) is not
/// what this scenario reaches.
#[cfg(feature = "failpoints")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusal_left_by_a_killed_leader_is_deleted_by_the_next() {
    let Some(lab) = Lab::up_with_env(
        &["--mode", "gtid", "--semisync"],
        &[("MHAD_FAILPOINT", "refused:fence")],
    ) else {
        return;
    };
    lab.add_group();
    lab.lab(&["isolate", "db1"]);
    let run = lab.wait_run_end(1);
    assert_eq!(run["state"]["state"], "completed", "{run:#}");
    let fence = &step(&run, "fence")["state"];
    assert_eq!(
        fence["attempts"], 2,
        "the leader that placed the refusal was killed: {fence:#}"
    );
    for host in ["db2", "db3"] {
        let out = lab.lab(&["exec", host, "--", "iptables", "-S", "OUTPUT"]);
        let rules = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && !rules.contains("10.77.0.11/32"),
            "{host} still refuses db1: {rules}"
        );
    }
}

/// The old master's mysqld hangs (SIGSTOP) with its host reachable: pings time out, and the
/// replicas, whose IO threads still say connected, hear no heartbeat for twice their period, so
/// they count as disconnected and the verdict is Dead; phase 2 reaches the host over SSH but
/// mysqld neither answers nor refuses, so the shutdown_script runs with `--command=stopssh` and
/// kills it (exit 10, MHA's "SSH works, mysqld stopped"): it cannot wake up later as a second
/// writer. The replica repointed at the new master gets the group's heartbeat period.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hung_old_master_is_stopped_over_ssh() {
    let Some(lab) = Lab::up(&["--mode", "gtid", "--semisync"]) else {
        return;
    };
    // Shorter than the lab's own 0.5 s: the manager's period is the one in effect after.
    lab.add_group_with_ping("[ping]\nreplica_heartbeat_ms = 300");
    lab.lab(&["mysqld", "pause", "db1"]);
    let run = lab.wait_run_end(1);
    assert_eq!(run["state"]["state"], "completed", "{run:#}");
    let dead = lab.verdicts("dead");
    assert_eq!(dead.len(), 1, "{dead:?}");
    for r in ["db2", "db3"] {
        let e = &dead[0]["replicas"][r];
        assert_eq!(e["state"], "disconnected", "{e}");
        assert!(
            e["detail"].as_str().unwrap().contains("no heartbeat"),
            "{e}"
        );
    }
    let fence = step(&run, "fence")["state"]["detail"].as_str().unwrap();
    assert!(
        fence.contains("db1: mysqld does not answer")
            && fence.contains("shutdown_script stopped mysqld (exit 10)")
            && fence.contains("db1: VIP 10.77.0.100/24 fenced: kept"),
        "{fence}"
    );
    let db1 = lab.host_status("db1");
    assert_eq!(db1["processes"]["mysqld"]["state"], "down", "{db1:#}");
    assert_eq!(db1["processes"]["sshd"]["state"], "up", "not powered off");
    let nm = lab.vip_holder();
    let other = if nm == "db2" { "db3" } else { "db2" };
    assert_eq!(
        lab.sql(
            other,
            "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS \
             WHERE VARIABLE_NAME = 'SLAVE_HEARTBEAT_PERIOD'"
        ),
        "0.300"
    );
}
