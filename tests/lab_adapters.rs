//! Single pieces of a failover against the lab's real MariaDB and sshd, driven directly with
//! no manager running: the MySQL adapter (reads, writes, CHANGE MASTER, errors), moving the
//! VIP over SSH and fencing a master (the SSH adapter itself: tests/lab_ssh.rs). Root
//! only (skipped, loudly, otherwise); one lab at a time.

mod labkit;

use labkit::*;
use mha_raft::adapters::mysql::{
    ChangeMaster, Endpoint, EpochRow, EpochTable, MysqlError, ReplicaPosition, Session,
};
use mha_raft::adapters::ssh::SshPool;
use mha_raft::model::IoThread;
use mha_raft::secret::Secret;

fn ep(host: &str) -> Endpoint {
    Endpoint {
        host: host.into(),
        port: 3306,
    }
}

/// Waits until the session's server replicates from `source` with its IO thread connected.
async fn wait_io(s: &mut Session, source: &str) {
    wait_for_async(
        &format!("the IO thread to connect to {source}"),
        WAIT,
        async || {
            let r = s.replica_status().await.unwrap().expect("replica");
            if r.io_thread == IoThread::Yes && r.source_host == source {
                Ok(())
            } else {
                Err(format!("{r:?}"))
            }
        },
    )
    .await
}

/// Reads and writes of the MySQL adapter work on real MariaDB: server info, stop/start,
/// CHANGE MASTER (GTID and file/pos), read_only; errors are classified and never carry the
/// password; a dead host costs no more than the timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_adapter_on_real_mariadb() {
    let Some(lab) = Lab::up(&["--mode", "gtid", "--no-managers"]) else {
        return;
    };
    let pw = lab_secret("mha");
    let repl = lab_secret("repl");
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
        heartbeat_ms: None,
    };
    db3.change_master(&ChangeMaster {
        heartbeat_ms: Some(250),
        ..cm("10.77.0.12", ReplicaPosition::Gtid)
    })
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

    // The heartbeat counter the detector reads: the period named by a CHANGE MASTER is in
    // effect, a CHANGE MASTER to another host that does not name it resets it (why the
    // manager always names it), and the count advances while the master is idle.
    let (_, p) = db3.replica_pulse().await.unwrap().expect("replica");
    assert_eq!(
        p.heartbeat_period_ms,
        Some(2500),
        "slave_net_timeout / 2: {p:?}"
    );
    db3.stop_replica(false).await.unwrap();
    db3.change_master(&ChangeMaster {
        heartbeat_ms: Some(250),
        ..cm(
            "10.77.0.11",
            ReplicaPosition::FilePos {
                file: r.read.file.clone(),
                pos: r.read.pos,
            },
        )
    })
    .await
    .unwrap();
    db3.start_replica().await.unwrap();
    wait_io(&mut db3, "10.77.0.11").await;
    let (_, p1) = db3.replica_pulse().await.unwrap().expect("replica");
    assert_eq!(p1.heartbeat_period_ms, Some(250), "{p1:?}");
    wait_for_async("a heartbeat from the idle master", WAIT, async || {
        let (_, p2) = db3.replica_pulse().await.unwrap().unwrap();
        if p2.heartbeats.unwrap_or(0) > p1.heartbeats.unwrap_or(0) {
            Ok(())
        } else {
            Err(format!("{p2:?}"))
        }
    })
    .await;

    db3.set_read_only(false).await.unwrap();
    assert!(!db3.server_info().await.unwrap().read_only);
    db3.set_read_only(true).await.unwrap();
    assert!(db3.server_info().await.unwrap().read_only);

    // CHANGE MASTER refused by the server, each time on a statement carrying the password: the
    // error is the server's, classified, and the password is in no form of it.
    let leaks = |e: &MysqlError| format!("{e} {e:?}").contains(repl.expose());
    let e = db3
        .change_master(&cm("10.77.0.12", ReplicaPosition::Gtid))
        .await
        .expect_err("CHANGE MASTER while the replica threads run");
    assert_eq!(e.server_code(), Some(1198), "ER_SLAVE_MUST_STOP: {e}");
    assert!(!leaks(&e), "password leaked: {e:?}");
    db3.stop_replica(false).await.unwrap();
    let e = db3
        .change_master(&cm("", ReplicaPosition::Gtid))
        .await
        .expect_err("CHANGE MASTER to an empty MASTER_HOST");
    assert_eq!(e.server_code(), Some(1210), "ER_WRONG_ARGUMENTS: {e}");
    assert!(!leaks(&e), "password leaked: {e:?}");
    // A session under NO_BACKSLASH_ESCAPES and a password holding a quote and a backslash:
    // the literals still end where they should (the server refuses the empty host, 1210, not
    // a syntax error quoting the statement back), and the password is in no form of it.
    db3.exec("SET SESSION sql_mode = CONCAT(@@SESSION.sql_mode, ',NO_BACKSLASH_ESCAPES')")
        .await
        .unwrap();
    let tricky = Secret::new("x'y\\z-secret-7");
    let e = db3
        .change_master(&ChangeMaster {
            password: tricky.clone(),
            ..cm("", ReplicaPosition::Gtid)
        })
        .await
        .expect_err("CHANGE MASTER to an empty MASTER_HOST");
    assert_eq!(e.server_code(), Some(1210), "not a syntax error: {e}");
    assert!(
        !format!("{e} {e:?}").contains("secret-7"),
        "password leaked: {e:?}"
    );

    // The epoch a promotion records: written where its table is missing (created first, as
    // on a group's first promotion when `group add` could not), read back, then replaced.
    // `group add` puts the table on the master: not on a read-only one (a fenced master: the
    // DDL would be an errant transaction there), once on a writable one, nothing written when
    // it is there.
    let was_read_only = db1.server_info().await.unwrap().read_only;
    db1.exec("DROP DATABASE IF EXISTS mha_raft").await.unwrap();
    db1.set_read_only(true).await.unwrap();
    assert_eq!(
        db1.prepare_epoch_table().await.unwrap(),
        EpochTable::ReadOnly
    );
    db1.set_read_only(false).await.unwrap();
    assert_eq!(
        db1.prepare_epoch_table().await.unwrap(),
        EpochTable::Created
    );
    let gtid_before = db1.server_info().await.unwrap().gtid.binlog_pos;
    assert_eq!(db1.prepare_epoch_table().await.unwrap(), EpochTable::There);
    assert_eq!(
        db1.server_info().await.unwrap().gtid.binlog_pos,
        gtid_before,
        "nothing binlogged when the table is there"
    );
    db1.set_read_only(was_read_only).await.unwrap();
    db1.exec("DROP DATABASE IF EXISTS mha_raft").await.unwrap();
    assert_eq!(db1.read_epoch("g").await.unwrap(), None);
    let row = |epoch| EpochRow {
        group: "g",
        epoch,
        run: 7,
        term: 2,
        manager: 1,
    };
    db1.write_epoch(&row(3)).await.unwrap();
    assert_eq!(db1.read_epoch("g").await.unwrap(), Some((3, 7)));
    db1.write_epoch(&row(4)).await.unwrap();
    assert_eq!(db1.read_epoch("g").await.unwrap(), Some((4, 7)));

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

/// The VIP moves over SSH without a moment of silence: fenced on the old master (kept, every
/// TCP packet to it answered with a reset: a client's connection attempt is refused at once,
/// not left to time out), added on the new one, then released from the old one; each operation
/// idempotent (a repeat does nothing); a fencing rule left on a host is cleared when it takes
/// the VIP again; and clients reach the new holder through the VIP.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vip_moves_idempotently() {
    use mha_raft::adapters::ssh::vip::{self, Fenced, Vip};
    let Some(lab) = Lab::up(&["--no-managers"]) else {
        return;
    };
    let kh = format!("{}/ssh/known_hosts", lab_dir());
    let ssh = SshPool::new(ssh_cfg("id_ed25519", kh, false)).unwrap();
    let v = Vip {
        cidr: "10.77.0.100/24".into(),
        interface: "eth0".into(),
    };
    let t = Duration::from_secs(5);
    let reject_rules = |host: &str| {
        let out = lab.lab(&["exec", host, "--", "iptables", "-w", "-S", "INPUT"]);
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.contains("10.77.0.100/32") && l.contains("REJECT"))
            .count()
    };
    // A TCP connection attempt from the client host to the VIP, with a long timeout.
    let knock = || {
        let out = Command::new("ip")
            .args([
                "netns",
                "exec",
                "mhalab-client",
                "timeout",
                "5",
                "bash",
                "-c",
            ])
            .arg("exec 3<>/dev/tcp/10.77.0.100/3306")
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    assert!(vip::present(&ssh, "10.77.0.11", 22, &v, t).await.unwrap());
    assert_eq!(knock().0, Some(0), "db1's mysqld accepts through the VIP");
    assert_eq!(
        vip::fence(&ssh, "10.77.0.11", 22, &v, 3306, t)
            .await
            .unwrap(),
        Fenced::Rejecting
    );
    assert_eq!(
        vip::fence(&ssh, "10.77.0.11", 22, &v, 3306, t)
            .await
            .unwrap(),
        Fenced::Rejecting
    );
    assert_eq!(
        reject_rules("db1"),
        2,
        "a fence run again adds a copy (inserted without checking first, one iptables process \
         less on the failover's path); the release deletes every copy"
    );
    assert!(vip::present(&ssh, "10.77.0.11", 22, &v, t).await.unwrap());
    let (code, err) = knock();
    assert!(
        code == Some(1) && err.contains("Connection refused"),
        "a fenced VIP resets at once (exit {code:?}): {err}"
    );
    assert_eq!(
        vip::fence(&ssh, "10.77.0.12", 22, &v, 3306, t)
            .await
            .unwrap(),
        Fenced::Absent,
        "db2 does not hold it"
    );
    assert!(vip::add(&ssh, "10.77.0.12", 22, &v, t).await.unwrap());
    assert!(
        !vip::add(&ssh, "10.77.0.12", 22, &v, t).await.unwrap(),
        "second add is a no-op"
    );
    assert!(vip::release(&ssh, "10.77.0.11", 22, &v, t).await.unwrap());
    assert!(
        !vip::release(&ssh, "10.77.0.11", 22, &v, t).await.unwrap(),
        "second release is a no-op"
    );
    assert_eq!(reject_rules("db1"), 0, "released with its rule");
    vip::announce(&ssh, "10.77.0.12", 22, &v, t).await.unwrap();
    assert_eq!(lab.vip_holder(), "db2");
    // The client host reaches db2 through the VIP.
    let pw = lab_secret("mha");
    wait_for("the client to reach db2 through the VIP", WAIT, || {
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
            .env("MYSQL_PWD", pw.expose())
            .args(["-N", "-B", "-e", "SELECT @@server_id"])
            .output()
            .unwrap();
        let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if id == "2" {
            Ok(())
        } else {
            Err(format!(
                "server_id {id:?}, {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    });
    // A rule left on a host (its release failed) goes when the host takes the VIP again.
    let leave_rule = |host: &str| {
        lab.lab(&[
            "exec",
            host,
            "--",
            "iptables",
            "-w",
            "-I",
            "INPUT",
            "-d",
            "10.77.0.100/32",
            "-p",
            "tcp",
            "-j",
            "REJECT",
            "--reject-with",
            "tcp-reset",
        ])
    };
    // Deleted ahead (a failover's 3.5, alongside its SQL) from a host that does not hold the
    // VIP; kept on one that does, until the VIP's add once the new master is writable.
    leave_rule("db3");
    leave_rule("db2");
    assert!(vip::unfence(&ssh, "10.77.0.13", 22, &v, t).await.unwrap());
    assert_eq!(reject_rules("db3"), 0, "deleted ahead");
    assert!(
        !vip::unfence(&ssh, "10.77.0.12", 22, &v, t).await.unwrap(),
        "db2 holds the VIP"
    );
    assert_eq!(reject_rules("db2"), 1, "kept on the holder");
    assert!(!vip::add(&ssh, "10.77.0.12", 22, &v, t).await.unwrap());
    assert_eq!(reject_rules("db2"), 0, "the add deletes it");
    assert!(!vip::add_unfenced(&ssh, "10.77.0.12", 22, &v, t)
        .await
        .unwrap());
    leave_rule("db1");
    assert_eq!(reject_rules("db1"), 1);
    assert!(vip::release(&ssh, "10.77.0.12", 22, &v, t).await.unwrap());
    assert!(vip::add(&ssh, "10.77.0.11", 22, &v, t).await.unwrap());
    assert_eq!(reject_rules("db1"), 0, "cleared by add");
    assert_eq!(lab.vip_holder(), "db1");
    replica_host_refuses_the_old_master(&lab, &ssh).await;
    ssh.close_all().await;
}

/// Phase 2's refusal on a replica host (adapters/ssh/egress.rs), on the VIP test's lab: while
/// placed, db2's connections to db1's MySQL port are refused at once (not left to time out),
/// its other connections to db1 are not touched; placed twice, one deletion takes both; then db2
/// connects again.
async fn replica_host_refuses_the_old_master(lab: &Lab, ssh: &SshPool) {
    use mha_raft::adapters::ssh::egress;
    let t = Duration::from_secs(5);
    // From db2's namespace, a TCP connection to db1's `port`: bash's exit and stderr.
    let knock = |port: u16| {
        let out = Command::new("ip")
            .args(["netns", "exec", "mhalab-db2", "timeout", "5", "bash", "-c"])
            .arg(format!("exec 3<>/dev/tcp/10.77.0.11/{port}"))
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let refusals = || {
        let out = lab.lab(&["exec", "db2", "--", "iptables", "-w", "-S", "OUTPUT"]);
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.contains("10.77.0.11/32") && l.contains("REJECT"))
            .count()
    };
    assert_eq!(knock(3306).0, Some(0), "db2 reaches db1's mysqld");
    let db1 = std::net::Ipv4Addr::new(10, 77, 0, 11);
    for _ in 0..2 {
        assert_eq!(
            egress::refuse(ssh, "10.77.0.12", 22, db1, 3306, t)
                .await
                .unwrap(),
            egress::Placed::Refusing
        );
    }
    assert_eq!(refusals(), 2);
    let (code, err) = knock(3306);
    assert!(
        code == Some(1) && err.contains("Connection refused"),
        "refused at once (exit {code:?}): {err}"
    );
    assert_eq!(knock(22).0, Some(0), "db1's sshd is not refused");
    egress::allow(ssh, "10.77.0.12", 22, db1, 3306, t)
        .await
        .unwrap();
    assert_eq!(refusals(), 0, "every copy deleted");
    assert_eq!(knock(3306).0, Some(0), "db2 reaches db1's mysqld again");
    egress::allow(ssh, "10.77.0.12", 22, db1, 3306, t)
        .await
        .unwrap();
}

/// Fencing a reachable master: read_only on, client connections killed, replication untouched;
/// an application user can no longer write; fencing again does nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fence_makes_master_refuse_writes() {
    let Some(lab) = Lab::up(&["--no-managers"]) else {
        return;
    };
    let pw = lab_secret("mha");
    let app_pw = Secret::new(APP_PW);
    lab.app_setup();
    let ep = ep("10.77.0.11");
    let t = Duration::from_secs(3);
    let mut app = Session::connect(&ep, "app", &app_pw, t).await.unwrap();
    app.exec("INSERT INTO mha_lab.acked (id) VALUES (1)")
        .await
        .unwrap();

    let mut admin = Session::connect(&ep, "mha", &pw, t).await.unwrap();
    let r = admin.fence_writes().await.unwrap();
    assert!(r.was_writable);
    assert!(!r.killed.is_empty(), "the app connection is killed");
    assert!(
        app.exec("INSERT INTO mha_lab.acked (id) VALUES (2)")
            .await
            .is_err(),
        "the old connection is gone"
    );
    let mut app2 = Session::connect(&ep, "app", &app_pw, t).await.unwrap();
    let e = app2
        .exec("INSERT INTO mha_lab.acked (id) VALUES (3)")
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
    let again = admin.fence_writes().await.unwrap();
    assert!(!again.was_writable);
    assert_eq!(
        again.killed.len(),
        1,
        "only app2's connection was left to kill"
    );
    admin.close().await;
}
