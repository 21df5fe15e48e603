//! The SSH adapter on the lab's real sshd, driven directly with no manager running: commands,
//! files and host keys, and the shells it keeps on each host (adapters/ssh/host_shell.rs).
//! Root only (skipped, loudly, otherwise); one lab at a time.

mod labkit;

use labkit::*;
use mha_raft::adapters::ssh::{ExecOutput, SshError, SshPool};

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

const DB1: &str = "10.77.0.11";

fn text(out: &ExecOutput) -> String {
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Runs `cmd` on db1 as a command of its own (a command with input never goes to a kept
/// shell).
async fn on_its_own(pool: &SshPool, cmd: &str) -> ExecOutput {
    pool.exec_with_input(DB1, 22, cmd, Some(b""), Duration::from_secs(5))
        .await
        .unwrap()
}

/// The shells kept on a host: commands run in one shell, one after another, with what a
/// command of its own gives (both streams, exit status, binary output byte for byte, several
/// MB); what a command does to its shell (exit, cd, variables, a syntax error) stays with it;
/// a shell something writes to between commands is not used again; a command that outlives
/// its timeout (its connection is dropped, as for a command of its own), or kills its shell,
/// fails alone and the next one runs;
/// a shell that died while idle costs the next command nothing; a burst past the kept shells
/// runs; closing the pool ends the shells on the host.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kept_shells_on_real_sshd() {
    let Some(lab) = Lab::up(&["--no-managers"]) else {
        return;
    };
    let kh = format!("{}/ssh/known_hosts", lab_dir());
    let pool = SshPool::new(ssh_cfg("id_ed25519", kh, false)).unwrap();
    let t = Duration::from_secs(5);
    let exec = |cmd: &'static str| pool.exec(DB1, 22, cmd, t);

    // One kept shell answers command after command; a command with input runs on its own.
    let shell = text(&exec("echo $$").await.unwrap());
    assert_eq!(text(&exec("echo $$").await.unwrap()), shell);
    assert_ne!(text(&on_its_own(&pool, "echo $$").await), shell);

    // Both streams and the exit status, as on its own.
    let out = exec("echo out; echo err >&2; exit 3").await.unwrap();
    assert_eq!(
        (out.status, &out.stdout[..], &out.stderr[..]),
        (Some(3), &b"out\n"[..], &b"err\n"[..])
    );
    // What a command does to its shell stays with it.
    let home = text(&on_its_own(&pool, "pwd").await);
    exec("cd /tmp; x=set; exit 0").await.unwrap();
    assert_eq!(
        text(&exec("pwd; echo \"x=$x\"").await.unwrap()),
        format!("{home}\nx=")
    );
    let out = exec("if then").await.unwrap();
    assert_eq!(out.status, Some(2), "a syntax error: {out:?}");
    assert_eq!(text(&exec("echo $$").await.unwrap()), shell);

    // Binary output without a final newline, byte for byte, and 4 MB of it.
    let out = exec("printf 'a\\000b\\nc'").await.unwrap();
    assert_eq!(out.stdout, b"a\0b\nc");
    let out = exec("dd if=/dev/zero bs=65536 count=64 status=none")
        .await
        .unwrap();
    assert_eq!(out.stdout.len(), 4 << 20);
    assert!(out.stdout.iter().all(|b| *b == 0));
    assert_eq!(text(&exec("echo $$").await.unwrap()), shell);

    // Something a command leaves writing to the shell: its output is nobody's, and that shell
    // is not used again.
    assert!(exec("(sleep 0.2; echo stray) &").await.unwrap().success());
    tokio::time::sleep(Duration::from_millis(500)).await;
    let out = exec("echo $$").await.unwrap();
    assert_ne!(text(&out), shell, "{out:?}");
    assert!(!text(&out).contains("stray"), "{out:?}");

    // Past its timeout a command fails alone; the next one runs.
    let e = pool
        .exec(DB1, 22, "sleep 2", Duration::from_millis(300))
        .await
        .unwrap_err();
    assert!(matches!(e, SshError::Timeout { .. }), "{e}");
    assert!(exec("true").await.unwrap().success());

    // A command that kills its own shell fails; the next one runs in another.
    let shell = text(&exec("echo $$").await.unwrap());
    let e = exec("kill -9 $$").await.unwrap_err();
    assert!(matches!(e, SshError::Channel { .. }), "{e}");
    let next = text(&exec("echo $$").await.unwrap());
    assert_ne!(next, shell);

    // A shell that died while idle (killed by its pid from a command of its own) is left for
    // another: the next command runs as if nothing happened (sshd says the shell ended within
    // milliseconds; the pause leaves it ample time).
    on_its_own(&pool, &format!("kill -9 {next}")).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = exec("echo $$").await.unwrap();
    assert!(after.success());
    assert_ne!(text(&after), next);

    // A burst of commands at once, more than the shells kept: every one runs and says its own.
    let burst = futures::future::join_all((0..12).map(|i| {
        let pool = &pool;
        async move {
            let cmd = format!("sleep 0.2; echo {i}");
            (i, pool.exec(DB1, 22, &cmd, t).await)
        }
    }))
    .await;
    for (i, r) in burst {
        assert_eq!(text(&r.unwrap()), i.to_string());
    }

    // The kept shells are processes of db1's sshd session; closing the pool ends them.
    let shell = text(&exec("echo $$").await.unwrap());
    pool.close_all().await;
    let check = SshPool::new(ssh_cfg(
        "id_ed25519",
        format!("{}/ssh/known_hosts", lab_dir()),
        false,
    ))
    .unwrap();
    wait_for_async(
        "the kept shell to end",
        Duration::from_secs(5),
        async || {
            let out = check
                .exec_with_input(DB1, 22, &format!("kill -0 {shell}"), Some(b""), t)
                .await
                .unwrap();
            if out.success() {
                Err(format!("process {shell} still there"))
            } else {
                Ok(())
            }
        },
    )
    .await;
    drop(lab);
}
