//! Tests against the lab (deploy/lab/lab): real MariaDB servers, real sshd, real network
//! namespaces, real mhad managers driven with mhactl. They need root (CI runs as root); one lab
//! exists per machine, so these tests take a lock and run one at a time.

mod labkit;

use labkit::*;

/// The leader discovers the topology in each replication mode, with and without lossless
/// semi-sync, and every manager shows the same group.
#[test]
fn discovery_in_each_mode() {
    for (args, mode, semisync) in [
        (vec!["--mode", "gtid"], "mariadb_gtid", false),
        (vec!["--mode", "filepos", "--semisync"], "file_pos", true),
        (vec!["--mode", "gtid", "--semisync"], "mariadb_gtid", true),
        (vec!["--mode", "filepos"], "file_pos", false),
    ] {
        let Some(lab) = Lab::up(&args) else { return };
        let text = lab.add_group();
        assert!(text.contains("master db1"), "{text}");
        let g = lab.group_json();
        assert_eq!(g["topology"]["master"], "db1", "{args:?}: {g}");
        assert_eq!(g["topology"]["mode"], mode, "{args:?}");
        assert_eq!(g["topology"]["semisync"], semisync, "{args:?}");
        assert_eq!(g["topology"]["servers"]["db3"]["replicates_from"], "db1");
        // Every manager's replicated state has it (ask each one alone).
        // Followers apply once the next heartbeat carries the commit index.
        for ep in lab.endpoints.split(',') {
            let start = Instant::now();
            loop {
                let out = Command::new(MHACTL)
                    .args(["--endpoints", ep, "group", "list"])
                    .output()
                    .unwrap();
                if String::from_utf8_lossy(&out.stdout).contains("db1,db2,db3") {
                    break;
                }
                assert!(start.elapsed() < WAIT, "{ep} never showed the group");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        // Status shows each server's live state.
        let out = lab.mhactl(&["cluster", "status", "--json"]);
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        let servers = v["groups"][0]["servers"].as_array().unwrap().clone();
        assert_eq!(servers.len(), 3, "{v}");
        assert_eq!(servers[0]["role"], "master");
        assert_eq!(servers[1]["io_thread"], "Yes");
        assert_eq!(servers[2]["read_only"], true);
        // Replication really flows in this mode (a replica stuck waiting for semi-sync ACKs, or
        // a broken IO thread, would never show the row).
        lab.sql("db1", "CREATE TABLE IF NOT EXISTS mha_lab.flow (id INT PRIMARY KEY); INSERT INTO mha_lab.flow VALUES (1)");
        let start = Instant::now();
        while ["db2", "db3"]
            .iter()
            .any(|h| lab.sql(h, "SELECT COUNT(*) FROM mha_lab.flow") != "1")
        {
            assert!(
                start.elapsed() < WAIT,
                "{args:?}: a write on db1 did not reach every replica"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        // A second add of the same group is refused.
        let out = lab.mhactl(&["group", "add", "-f", &lab.group_file]);
        assert!(!out.status.success());
        assert!(String::from_utf8_lossy(&out.stderr).contains("already exists"));
    }
}

/// check repl is OK on a healthy group and catches a stopped SQL thread, a writable replica and
/// a duplicate server_id, each with MHA's closing line and exit 1.
#[test]
fn check_repl_catches_problems() {
    let Some(lab) = Lab::up(&[]) else { return };
    lab.add_group();
    let (code, text) = lab.check("repl");
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("db1 (10.77.0.11:3306) (current master)\n +--db2 (10.77.0.12:3306)\n +--db3"),
        "{text}"
    );
    assert!(
        text.trim_end().ends_with("MySQL Replication Health is OK."),
        "{text}"
    );

    lab.sql("db2", "STOP SLAVE SQL_THREAD");
    let (code, text) = lab.check("repl");
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("Checking db2 sql_thread: NOT OK"), "{text}");
    assert!(
        text.trim_end()
            .ends_with("MySQL Replication Health is NOT OK!"),
        "{text}"
    );
    lab.sql("db2", "START SLAVE SQL_THREAD");

    lab.sql("db3", "SET GLOBAL read_only=0");
    let (code, text) = lab.check("repl");
    assert_eq!(code, 1);
    assert!(text.contains("Checking db3 read_only: NOT OK"), "{text}");
    lab.sql("db3", "SET GLOBAL read_only=1");

    lab.sql("db3", "SET GLOBAL server_id=1");
    let (code, text) = lab.check("repl");
    assert_eq!(code, 1);
    assert!(text.contains("duplicate server_id 1: db1, db3"), "{text}");
    lab.sql("db3", "SET GLOBAL server_id=3");

    let (code, text) = lab.check("repl");
    assert_eq!(code, 0, "healthy again: {text}");
}

/// check ssh passes from every manager to every host; refuses a host whose key changed (and
/// says so); reports a host whose sshd is down.
#[test]
fn check_ssh_catches_changed_key_and_down_sshd() {
    let Some(lab) = Lab::up(&[]) else { return };
    lab.add_group();
    let (code, text) = lab.check("ssh");
    assert_eq!(code, 0, "{text}");
    assert_eq!(
        text.lines().filter(|l| l.contains(" ok ")).count(),
        9,
        "3 managers x 3 hosts: {text}"
    );

    // db2 gets a new host key (as after a reinstall or an impostor): known_hosts no longer matches.
    let dir = std::env::var("MHA_LAB_DIR").unwrap_or_else(|_| "/var/tmp/mhalab".into());
    let key = format!("{dir}/db2/ssh/ssh_host_ed25519_key");
    lab.lab(&["sshd", "stop", "db2"]);
    std::fs::remove_file(&key).unwrap();
    std::fs::remove_file(format!("{key}.pub")).unwrap();
    run(Command::new("ssh-keygen").args(["-q", "-t", "ed25519", "-N", "", "-f", &key]));
    lab.lab(&["sshd", "start", "db2"]);
    let (code, text) = lab.check("ssh");
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("HOST KEY CHANGED"), "{text}");
    assert_eq!(
        text.lines()
            .filter(|l| l.contains("db2") && l.contains("FAILED"))
            .count(),
        3,
        "{text}"
    );

    // sshd down on db3.
    lab.lab(&["sshd", "stop", "db3"]);
    let (code, text) = lab.check("ssh");
    assert_eq!(code, 1);
    assert!(
        text.lines()
            .any(|l| l.contains("-> db3") && l.contains("cannot connect")),
        "{text}"
    );
}

fn leftovers() -> Vec<String> {
    let mut found = Vec::new();
    let netns = Command::new("ip").args(["netns", "list"]).output().unwrap();
    found.extend(
        String::from_utf8_lossy(&netns.stdout)
            .lines()
            .filter(|l| l.starts_with("mhalab-"))
            .map(|l| format!("netns {l}")),
    );
    let links = Command::new("ip")
        .args(["-o", "link", "show"])
        .output()
        .unwrap();
    found.extend(
        String::from_utf8_lossy(&links.stdout)
            .lines()
            .filter(|l| l.contains("mhalab0") || l.contains(" mlab-"))
            .map(|l| format!("link {l}")),
    );
    let dir = std::env::var("MHA_LAB_DIR").unwrap_or_else(|_| "/var/tmp/mhalab".into());
    if std::path::Path::new(&dir).exists() {
        found.push(format!("dir {dir}"));
    }
    // Live (non-zombie) processes whose command line mentions the lab directory.
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let p = entry.path();
        let Ok(cmdline) = std::fs::read(p.join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        let stat = std::fs::read_to_string(p.join("stat")).unwrap_or_default();
        let zombie = stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z'));
        if cmdline.contains(&dir) && !zombie && !cmdline.contains("cargo") {
            found.push(format!("process {}: {cmdline}", p.display()));
        }
    }
    found
}

/// `up` then `down`, twice in a row, leaves no namespace, bridge, veth, process or directory.
#[test]
fn lab_up_down_twice_leaves_nothing() {
    if !is_root() {
        eprintln!("SKIPPED: lab tests need root");
        return;
    }
    let _g = LAB_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    for round in 1..=2 {
        run(Command::new(lab_tool()).args(["up", "--mhad", MHAD]));
        let status = run(Command::new(lab_tool()).args(["status", "--json"]));
        let v: Value = serde_json::from_slice(&status.stdout).unwrap();
        assert_eq!(v["vip_holder"], "db1", "round {round}");
        assert_eq!(
            v["hosts"].as_array().unwrap().len(),
            7,
            "3 db + 3 managers + client"
        );
        run(Command::new(lab_tool()).arg("down"));
        let left = leftovers();
        assert!(left.is_empty(), "round {round} left: {left:#?}");
    }
}

mod adapters {
    //! The MySQL and SSH adapters against the lab's real MariaDB and sshd.
    use std::time::Duration;

    use mha_raft::adapters::mysql::{ChangeMaster, Endpoint, MysqlError, ReplicaPosition, Session};
    use mha_raft::adapters::ssh::{SshConfig, SshError, SshPool};
    use mha_raft::model::IoThread;
    use mha_raft::secret::Secret;

    use super::*;

    fn lab_dir() -> String {
        std::env::var("MHA_LAB_DIR").unwrap_or_else(|_| "/var/tmp/mhalab".into())
    }

    fn secret(name: &str) -> Secret {
        Secret::new(
            std::fs::read_to_string(format!("{}/secrets/{name}.pw", lab_dir()))
                .unwrap()
                .trim(),
        )
    }

    fn ep(host: &str) -> Endpoint {
        Endpoint {
            host: host.into(),
            port: 3306,
        }
    }

    async fn wait_io(s: &mut Session, source: &str) {
        let start = Instant::now();
        loop {
            let r = s.replica_status().await.unwrap().expect("replica");
            if r.io_thread == IoThread::Yes && r.source_host == source {
                return;
            }
            assert!(
                start.elapsed() < WAIT,
                "IO thread never connected to {source}: {r:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Reads and writes of the MySQL adapter work on real MariaDB: server info, stop/start,
    /// CHANGE MASTER (GTID and file/pos), read_only; errors are classified and never carry the
    /// password; a dead host costs no more than the timeout.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn mysql_adapter_on_real_mariadb() {
        let Some(lab) = Lab::up(&["--mode", "gtid", "--no-managers"]) else {
            return;
        };
        let pw = secret("mha");
        let repl = secret("repl");
        let t = Duration::from_secs(2);
        let mut db3 = Session::connect(&ep("10.77.0.13"), "mha", &pw, t)
            .await
            .unwrap();
        let info = db3.server_info().await.unwrap();
        assert_eq!(info.server_id, 3);
        assert!(info.read_only && info.log_bin && !info.relay_log_purge);
        assert_eq!(info.report_host, "db3");
        assert_eq!(info.replica.as_ref().unwrap().gtid_mode, "Slave_Pos");

        // Repoint db3 to db2 with GTID, then to db1 by file/position.
        db3.stop_replica(false).await.unwrap();
        let cm = |host: &str, position| ChangeMaster {
            host: host.into(),
            port: 3306,
            user: "repl".into(),
            password: repl.clone(),
            position,
        };
        db3.change_master(&cm("10.77.0.12", ReplicaPosition::Gtid))
            .await
            .unwrap();
        db3.start_replica().await.unwrap();
        wait_io(&mut db3, "10.77.0.12").await;

        let mut db1 = Session::connect(&ep("10.77.0.11"), "mha", &pw, t)
            .await
            .unwrap();
        let coord = db1
            .binlog_status()
            .await
            .unwrap()
            .expect("db1 has a binlog");
        db3.stop_replica(false).await.unwrap();
        db3.change_master(&cm(
            "10.77.0.11",
            ReplicaPosition::FilePos {
                file: coord.file.clone(),
                pos: coord.pos,
            },
        ))
        .await
        .unwrap();
        db3.start_replica().await.unwrap();
        wait_io(&mut db3, "10.77.0.11").await;
        let r = db3.replica_status().await.unwrap().unwrap();
        assert_eq!(r.gtid_mode, "No");
        assert_eq!(r.read.file, coord.file);

        db3.set_read_only(false).await.unwrap();
        assert!(!db3.server_info().await.unwrap().read_only);
        db3.set_read_only(true).await.unwrap();
        assert!(db3.server_info().await.unwrap().read_only);

        // A syntax error echoing the statement must not carry the password.
        let bad = ChangeMaster {
            host: "x'".into(),
            ..cm("10.77.0.11", ReplicaPosition::Gtid)
        };
        db3.stop_replica(false).await.unwrap();
        let e = db3.change_master(&bad).await;
        if let Err(e) = e {
            assert!(
                !e.to_string().contains(repl.expose()),
                "password leaked: {e}"
            );
        }

        // Wrong password: the server answered, so it is alive (MHA's rule).
        let e = Session::connect(&ep("10.77.0.11"), "mha", &Secret::new("wrong-pass-123"), t)
            .await
            .err()
            .unwrap();
        assert_eq!(e.server_code(), Some(1045), "{e}");
        assert!(e.proves_alive());
        assert!(!e.to_string().contains("wrong-pass-123"), "{e}");

        // An isolated host costs at most the timeout.
        lab.lab(&["isolate", "db2"]);
        let start = Instant::now();
        let e = Session::connect(&ep("10.77.0.12"), "mha", &pw, Duration::from_millis(500))
            .await
            .err()
            .unwrap();
        assert!(matches!(e, MysqlError::Timeout { .. }), "{e}");
        assert!(start.elapsed() < Duration::from_secs(2));
        lab.lab(&["heal"]);
        db1.close().await;
        db3.close().await;
    }

    fn ssh_cfg(key: &str, known_hosts: String, accept_unknown: bool) -> SshConfig {
        SshConfig {
            user: "root".into(),
            key_path: format!("{}/ssh/{key}", lab_dir()).into(),
            known_hosts: known_hosts.into(),
            accept_unknown_host_keys: accept_unknown,
            connect_timeout: Duration::from_secs(3),
        }
    }

    /// The SSH adapter on real sshd: RSA key auth, exit status and both streams, atomic write and
    /// byte-range read, one reused connection per host, known_hosts enforced (unknown refused
    /// unless opted in).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn ssh_adapter_on_real_sshd() {
        let Some(lab) = Lab::up(&["--no-managers"]) else {
            return;
        };
        let kh = format!("{}/ssh/known_hosts", lab_dir());
        let pool = SshPool::new(ssh_cfg("id_rsa", kh.clone(), false)).unwrap();
        let t = Duration::from_secs(5);
        let out = pool
            .exec("10.77.0.11", 22, "echo out; echo err >&2; exit 3", t)
            .await
            .unwrap();
        assert_eq!(out.status, Some(3));
        assert_eq!(out.stdout, b"out\n");
        assert_eq!(out.stderr, b"err\n");

        let path = format!("{}/db1/ssh-adapter-test.bin", lab_dir());
        pool.write_file("10.77.0.11", 22, &path, b"0123456789", t)
            .await
            .unwrap();
        assert_eq!(
            pool.read_range("10.77.0.11", 22, &path, 2, Some(3), t)
                .await
                .unwrap(),
            b"234"
        );
        assert_eq!(
            pool.read_range("10.77.0.11", 22, &path, 7, None, t)
                .await
                .unwrap(),
            b"789"
        );
        assert!(pool
            .read_range("10.77.0.11", 22, "/nonexistent/file", 0, None, t)
            .await
            .is_err());
        // The head of a file much larger than a pipe buffer (a binlog's format description
        // event): nothing may die of SIGPIPE on the way.
        let big: Vec<u8> = (0..2_000_000u32).map(|i| (i % 251) as u8).collect();
        pool.write_file("10.77.0.11", 22, &path, &big, t)
            .await
            .unwrap();
        assert_eq!(
            pool.read_range("10.77.0.11", 22, &path, 1000, Some(4096), t)
                .await
                .unwrap(),
            &big[1000..5096]
        );
        assert_eq!(
            pool.read_range("10.77.0.11", 22, &path, 1_999_990, None, t)
                .await
                .unwrap(),
            &big[1_999_990..]
        );

        // All of the above went over one connection: db1's sshd sees a single session from us.
        let ss = lab.lab(&[
            "exec",
            "db1",
            "--",
            "ss",
            "-Htn",
            "state",
            "established",
            "( sport = :22 )",
        ]);
        assert_eq!(
            String::from_utf8_lossy(&ss.stdout).lines().count(),
            1,
            "{}",
            String::from_utf8_lossy(&ss.stdout)
        );
        pool.close_all().await;

        // Unknown host keys: refused by default, accepted only when opted in.
        let empty = format!("{}/ssh/empty_known_hosts", lab_dir());
        std::fs::write(&empty, "").unwrap();
        let strict = SshPool::new(ssh_cfg("id_ed25519", empty.clone(), false)).unwrap();
        let e = strict
            .exec("10.77.0.12", 22, "true", t)
            .await
            .err()
            .unwrap();
        assert!(matches!(e, SshError::HostKey { .. }), "{e}");
        let lax = SshPool::new(ssh_cfg("id_ed25519", empty, true)).unwrap();
        assert!(lax
            .exec("10.77.0.12", 22, "true", t)
            .await
            .unwrap()
            .success());
    }
}

mod detection {
    //! Issue C: a master is declared dead only with corroboration, and the verdict is committed
    //! with every vote.
    use super::*;

    impl Lab {
        fn health(&self) -> Value {
            self.group_json()["health"].clone()
        }

        fn leader_zone(&self) -> String {
            let out = self.mhactl(&["cluster", "status", "--json"]);
            let v: Value = serde_json::from_slice(&out.stdout).unwrap();
            format!("m{}", v["leader"]["id"].as_u64().expect("leader"))
        }

        /// Waits until the group's health satisfies `cond`; returns it.
        fn wait_health(&self, what: &str, cond: impl Fn(&Value) -> bool) -> Value {
            let start = Instant::now();
            loop {
                let out = self.mhactl(&["group", "list", "--json"]);
                if out.status.success() {
                    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
                    let h = v[0]["health"].clone();
                    if cond(&h) {
                        return h;
                    }
                }
                assert!(
                    start.elapsed() < WAIT,
                    "timed out waiting for: {what}; health: {}",
                    self.health()
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }

        fn verdicts(&self, kind: &str) -> Vec<Value> {
            self.health()["verdicts"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .filter(|v| v["kind"] == kind)
                .collect()
        }

        fn add_group_with_ping(&self, ping: &str) {
            let text = std::fs::read_to_string(&self.group_file).unwrap();
            let path = format!("{}.ping.toml", self.group_file);
            std::fs::write(
                &path,
                text.replace(
                    "vip_interface = \"eth0\"\n",
                    &format!("vip_interface = \"eth0\"\n{ping}\n"),
                ),
            )
            .unwrap();
            let out = self.mhactl(&["group", "add", "-f", &path]);
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }

    fn status_code(lab: &Lab) -> i32 {
        lab.mhactl(&["check", "status", "--group", "lab"])
            .status
            .code()
            .unwrap_or(-1)
    }

    /// kill -9 of the master's mysqld → a Dead verdict is committed, with votes from at least
    /// two managers that could not reach it and the replicas' disconnected IO threads;
    /// `check status` exits 21 (PING_FAILED) after exiting 0 (PING_OK) before.
    #[test]
    fn master_kill_gives_dead_verdict_with_votes() {
        let Some(lab) = Lab::up(&[]) else { return };
        lab.add_group();
        let start = Instant::now();
        while status_code(&lab) != 0 {
            assert!(start.elapsed() < WAIT, "PING_OK never reported");
            std::thread::sleep(Duration::from_millis(50));
        }
        lab.lab(&["mysqld", "kill", "db1"]);
        let h = lab.wait_health("dead verdict", |h| h["state"]["state"] == "dead");
        let dead = lab.verdicts("dead");
        assert_eq!(dead.len(), 1, "{h}");
        let votes = dead[0]["votes"].as_array().unwrap();
        let down: Vec<&Value> = votes.iter().filter(|v| v["reachable"] == false).collect();
        assert!(down.len() >= 2, "votes: {votes:?}");
        let zones: std::collections::BTreeSet<&str> =
            down.iter().map(|v| v["zone"].as_str().unwrap()).collect();
        assert!(zones.len() >= 2, "votes from distinct zones: {zones:?}");
        for r in ["db2", "db3"] {
            assert_ne!(dead[0]["replicas"][r]["state"], "connected", "{}", dead[0]);
        }
        // The verdict starts exactly one failover run (tests/failover.rs covers the run).
        let start = Instant::now();
        loop {
            let out = lab.mhactl(&["failover", "history", "--group", "lab", "--json"]);
            let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
            if let Some(runs) = v["runs"].as_array().filter(|r| !r.is_empty()) {
                assert_eq!(runs.len(), 1, "{v:#}");
                assert_eq!(runs[0]["verdict_round"], dead[0]["round"], "{v:#}");
                break;
            }
            assert!(start.elapsed() < WAIT, "no failover run began: {v:#}");
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!([21, 50, 0].contains(&status_code(&lab)));
    }

    /// The `insert` ping upserts a heartbeat row in a dedicated schema on the master, which
    /// replicates like any write.
    #[test]
    fn insert_ping_writes_heartbeat() {
        let Some(lab) = Lab::up(&[]) else { return };
        lab.add_group_with_ping("[ping]\ntype = \"insert\"\ninterval_ms = 300");
        let start = Instant::now();
        loop {
            let n = lab.try_sql(
                "db2",
                "SELECT COUNT(*) FROM mha_raft.heartbeat WHERE grp = 'lab'",
            );
            if n.as_deref() == Some("1") {
                break;
            }
            assert!(
                start.elapsed() < WAIT,
                "no heartbeat row replicated to db2 (got {n:?})"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let t1 = lab.sql("db1", "SELECT at FROM mha_raft.heartbeat WHERE grp = 'lab'");
        std::thread::sleep(Duration::from_millis(700));
        let t2 = lab.sql("db1", "SELECT at FROM mha_raft.heartbeat WHERE grp = 'lab'");
        assert_ne!(t1, t2, "the heartbeat advances");
        assert_eq!(status_code(&lab), 0);
    }

    /// Only the leader's zone is cut off from the master (the other zones reach it): the
    /// suspicion ends Unreachable-but-alive, never Dead.
    #[test]
    fn leader_zone_cut_off_is_not_death() {
        let Some(lab) = Lab::up(&[]) else { return };
        lab.add_group();
        let leader = lab.leader_zone();
        lab.lab(&["partition", &leader, "--", "db1"]);
        let h = lab.wait_health("unreachable-but-alive verdict", |h| {
            h["verdicts"]
                .as_array()
                .is_some_and(|v| v.iter().any(|x| x["kind"] == "unreachable_but_alive"))
        });
        assert!(lab.verdicts("dead").is_empty(), "{h}");
        let uba = &lab.verdicts("unreachable_but_alive")[0];
        assert!(
            uba["votes"]
                .as_array()
                .unwrap()
                .iter()
                .any(|v| v["reachable"] == true),
            "{uba}"
        );
        lab.lab(&["heal"]);
        lab.wait_health("alive after heal", |h| h["state"]["state"] == "alive");
        assert!(lab.verdicts("dead").is_empty());
    }

    /// The master is cut off from every manager but its replicas still replicate from it: the
    /// verdict is Unreachable-but-alive (replica IO threads connected), never Dead.
    #[test]
    fn master_cut_from_managers_but_replicating_is_alive() {
        let Some(lab) = Lab::up(&[]) else { return };
        lab.add_group();
        lab.lab(&["partition", "m1,m2,m3", "--", "db1"]);
        let h = lab.wait_health("unreachable-but-alive verdict", |h| {
            h["verdicts"]
                .as_array()
                .is_some_and(|v| v.iter().any(|x| x["kind"] == "unreachable_but_alive"))
        });
        assert!(lab.verdicts("dead").is_empty(), "{h}");
        let uba = &lab.verdicts("unreachable_but_alive")[0];
        assert!(
            uba["reason"]
                .as_str()
                .unwrap()
                .contains("replica IO thread still connected"),
            "{uba}"
        );
        lab.lab(&["heal"]);
    }

    /// mysqld paused for less than the detection window, then resumed: no Dead verdict, and the
    /// group is PING_OK again.
    #[test]
    fn short_pause_is_not_death() {
        let Some(lab) = Lab::up(&[]) else { return };
        lab.add_group();
        lab.wait_health("alive", |h| h["state"]["state"] == "alive");
        lab.lab(&["mysqld", "pause", "db1"]);
        std::thread::sleep(Duration::from_millis(500));
        lab.lab(&["mysqld", "resume", "db1"]);
        // Give the monitor several intervals to (wrongly) decide, then check it did not.
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(4) {
            assert!(
                lab.verdicts("dead").is_empty(),
                "a short pause produced a Dead verdict"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        lab.wait_health("alive again", |h| h["state"]["state"] == "alive");
        assert_eq!(status_code(&lab), 0);
    }

    /// A leader cut off from the other managers (not from the master) stops monitoring as soon
    /// as its quorum lease lapses; the new leader takes over, and a master death is then judged
    /// by the new leader alone.
    #[test]
    fn deposed_leader_stops_monitoring() {
        let Some(lab) = Lab::up(&[]) else { return };
        lab.add_group();
        lab.wait_health("alive", |h| h["state"]["state"] == "alive");
        let old = lab.leader_zone();
        let others: Vec<&str> = ["m1", "m2", "m3"]
            .into_iter()
            .filter(|m| *m != old)
            .collect();
        lab.lab(&["partition", &old, "--", &others.join(",")]);
        let dir = std::env::var("MHA_LAB_DIR").unwrap_or_else(|_| "/var/tmp/mhalab".into());
        let log = format!("{dir}/{old}/mhad.log");
        let start = Instant::now();
        while !std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("monitor stopped")
        {
            assert!(
                start.elapsed() < WAIT,
                "the deposed leader's monitor never stopped"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let others_ep: Vec<String> = others
            .iter()
            .map(|m| format!("10.77.0.2{}:7101", &m[1..]))
            .collect();
        let new_leader = || {
            let out = Command::new(MHACTL)
                .args([
                    "--endpoints",
                    &others_ep.join(","),
                    "cluster",
                    "status",
                    "--json",
                ])
                .output()
                .unwrap();
            serde_json::from_slice::<Value>(&out.stdout)
                .ok()
                .and_then(|v| {
                    if v["has_quorum"] == true {
                        v["leader"]["id"].as_u64()
                    } else {
                        None
                    }
                })
        };
        let start = Instant::now();
        let new = loop {
            if let Some(id) = new_leader().filter(|id| format!("m{id}") != old) {
                break id;
            }
            assert!(start.elapsed() < WAIT, "no new leader among {others:?}");
            std::thread::sleep(Duration::from_millis(50));
        };
        lab.lab(&["mysqld", "kill", "db1"]);
        let start = Instant::now();
        let verdict = loop {
            let out = Command::new(MHACTL)
                .args([
                    "--endpoints",
                    &others_ep.join(","),
                    "group",
                    "list",
                    "--json",
                ])
                .output()
                .unwrap();
            let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
            let dead: Vec<Value> = v[0]["health"]["verdicts"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .filter(|x| x["kind"] == "dead")
                .collect();
            if let Some(d) = dead.first() {
                break d.clone();
            }
            assert!(
                start.elapsed() < WAIT,
                "no Dead verdict from the new leader"
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        assert_eq!(
            verdict["votes"][0]["manager"].as_u64(),
            Some(new),
            "{verdict}"
        );
        lab.lab(&["heal"]);
    }

    /// The Raft leader is killed while the master is suspect: the new leader resumes the open
    /// round (restored from the replicated state) and commits exactly one verdict for it.
    #[test]
    fn leader_killed_while_suspect_verdict_once() {
        let Some(lab) = Lab::up(&[]) else { return };
        // A long suspect phase (12 re-probes × 200 ms) so the kill lands inside it.
        lab.add_group_with_ping("[ping]\nfailure_threshold = 12");
        lab.wait_health("alive", |h| h["state"]["state"] == "alive");
        let leader = lab.leader_zone();
        lab.lab(&["mysqld", "kill", "db1"]);
        let h = lab.wait_health("suspect", |h| h["state"]["state"] == "suspect");
        let round = h["state"]["round"].as_u64().unwrap();
        assert!(
            lab.verdicts("dead").is_empty(),
            "verdict before the leader died: {h}"
        );
        lab.lab(&["mgr", "kill", &leader]);
        let h = lab.wait_health("dead verdict by the new leader", |h| {
            h["state"]["state"] == "dead"
        });
        let dead = lab.verdicts("dead");
        assert_eq!(dead.len(), 1, "{h}");
        assert_eq!(
            dead[0]["round"].as_u64(),
            Some(round),
            "the open round was finished, not restarted: {h}"
        );
        assert_ne!(lab.leader_zone(), leader);
        lab.lab(&["mgr", "start", &leader]);
    }
}

/// `mhactl failover --dry-run` explains MHA's choice on the live group without acting; a forced
/// host is honoured or refused with its reason; without --dry-run nothing runs (exit 2).
#[test]
fn failover_dry_run_explains_choice() {
    let Some(lab) = Lab::up(&[]) else { return };
    lab.add_group();
    let out = lab.mhactl(&["failover", "--group", "lab", "--dry-run"]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("The latest binary log file/position on all slaves is mysql-bin.000001:"),
        "{text}"
    );
    assert!(
        text.contains("New master is db2 (latest replica with candidate_master)"),
        "{text}"
    );
    let out = lab.mhactl(&[
        "failover",
        "--group",
        "lab",
        "--dry-run",
        "--new-master",
        "db3",
    ]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("New master is db3 (forced by --new-master)")
    );
    // A replica whose SQL thread lags far behind... here: one that is not replicating at all.
    lab.sql("db3", "STOP SLAVE; RESET SLAVE ALL");
    let out = lab.mhactl(&[
        "failover",
        "--group",
        "lab",
        "--dry-run",
        "--new-master",
        "db3",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("db3 cannot be master: not a replica of the old master"));
    // The master is still alive and untouched: nothing acted.
    assert_eq!(lab.sql("db1", "SELECT @@read_only"), "0");
    // A real failover of a live master stops in phase 1, changes nothing, blocks nothing.
    let out = lab.mhactl(&["failover", "--group", "lab"]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("answers again: it is not dead"), "{text}");
    assert_eq!(lab.sql("db1", "SELECT @@read_only"), "0");
    let out = lab.mhactl(&["check", "status", "--group", "lab"]);
    assert_eq!(out.status.code(), Some(0), "not blocked");
}

/// The VIP moves over SSH: removed from the old master, added on the new one, each operation
/// idempotent (a repeat does nothing), and clients reach the new holder through the VIP.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vip_moves_idempotently() {
    use mha_raft::adapters::ssh::{SshConfig, SshPool};
    use mha_raft::runtime::vip::{self, Vip};
    let Some(lab) = Lab::up(&["--no-managers"]) else {
        return;
    };
    let dir = std::env::var("MHA_LAB_DIR").unwrap_or_else(|_| "/var/tmp/mhalab".into());
    let ssh = SshPool::new(SshConfig {
        user: "root".into(),
        key_path: format!("{dir}/ssh/id_ed25519").into(),
        known_hosts: format!("{dir}/ssh/known_hosts").into(),
        accept_unknown_host_keys: false,
        connect_timeout: Duration::from_secs(3),
    })
    .unwrap();
    let v = Vip {
        cidr: "10.77.0.100/24".into(),
        interface: "eth0".into(),
    };
    let t = Duration::from_secs(5);
    assert!(vip::present(&ssh, "10.77.0.11", 22, &v, t).await.unwrap());
    assert!(vip::remove(&ssh, "10.77.0.11", 22, &v, t).await.unwrap());
    assert!(
        !vip::remove(&ssh, "10.77.0.11", 22, &v, t).await.unwrap(),
        "second remove is a no-op"
    );
    assert!(vip::add(&ssh, "10.77.0.12", 22, &v, t).await.unwrap());
    assert!(
        !vip::add(&ssh, "10.77.0.12", 22, &v, t).await.unwrap(),
        "second add is a no-op"
    );
    let holder = String::from_utf8_lossy(&lab.lab(&["vip-holder"]).stdout)
        .trim()
        .to_string();
    assert_eq!(holder, "db2");
    // The client host reaches db2 through the VIP.
    let pw = std::fs::read_to_string(format!("{dir}/secrets/mha.pw")).unwrap();
    let start = Instant::now();
    loop {
        let out = Command::new("ip")
            .args([
                "netns",
                "exec",
                "mhalab-client",
                "mariadb",
                "--no-defaults",
                "-h",
                "10.77.0.100",
                "-umha",
            ])
            // The password travels in the environment, never in the process arguments.
            .env("MYSQL_PWD", pw.trim())
            .args(["-N", "-B", "-e", "SELECT @@server_id"])
            .output()
            .unwrap();
        if String::from_utf8_lossy(&out.stdout).trim() == "2" {
            break;
        }
        assert!(
            start.elapsed() < WAIT,
            "client never reached db2 via the VIP"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    ssh.close_all().await;
}

/// Fencing a reachable master: read_only on, client connections killed, replication untouched;
/// an application user can no longer write; fencing again does nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fence_makes_master_refuse_writes() {
    use mha_raft::adapters::mysql::{Endpoint, Session};
    use mha_raft::runtime::fence::fence;
    use mha_raft::secret::Secret;
    let Some(lab) = Lab::up(&["--no-managers"]) else {
        return;
    };
    let dir = std::env::var("MHA_LAB_DIR").unwrap_or_else(|_| "/var/tmp/mhalab".into());
    let pw = Secret::new(
        std::fs::read_to_string(format!("{dir}/secrets/mha.pw"))
            .unwrap()
            .trim(),
    );
    let app_pw = Secret::new("app-lab-pass");
    lab.sql(
        "db1",
        "CREATE USER 'app'@'10.77.0.%' IDENTIFIED BY 'app-lab-pass'; GRANT SELECT, INSERT ON mha_lab.* TO 'app'@'10.77.0.%'; \
         CREATE TABLE mha_lab.w (id INT PRIMARY KEY)",
    );
    let ep = Endpoint {
        host: "10.77.0.11".into(),
        port: 3306,
    };
    let t = Duration::from_secs(3);
    let mut app = Session::connect(&ep, "app", &app_pw, t).await.unwrap();
    app.exec("INSERT INTO mha_lab.w VALUES (1)").await.unwrap();

    let mut admin = Session::connect(&ep, "mha", &pw, t).await.unwrap();
    let r = fence(&mut admin).await.unwrap();
    assert!(r.was_writable);
    assert!(!r.killed.is_empty(), "the app connection is killed");
    assert!(
        app.exec("INSERT INTO mha_lab.w VALUES (2)").await.is_err(),
        "the old connection is gone"
    );
    let mut app2 = Session::connect(&ep, "app", &app_pw, t).await.unwrap();
    let e = app2
        .exec("INSERT INTO mha_lab.w VALUES (3)")
        .await
        .unwrap_err();
    assert_eq!(
        e.server_code(),
        Some(1290),
        "read-only refuses the write: {e}"
    );
    // Replication from db1 keeps running; a second fence changes nothing but the new session.
    assert_eq!(
        lab.sql(
            "db1",
            "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE COMMAND LIKE 'Binlog Dump%'"
        ),
        "2"
    );
    let again = fence(&mut admin).await.unwrap();
    assert!(!again.was_writable);
    assert_eq!(
        again.killed.len(),
        1,
        "only app2's connection was left to kill"
    );
    admin.close().await;
}
