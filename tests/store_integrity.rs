//! Invariant 8 from outside, with real `mhad` processes on loopback: a manager of a 3-node
//! cluster is stopped and its data dir damaged — 8 bytes flipped at 25/50/75 % of every sled
//! file, the largest file cut in half, a file deleted, the whole dir wiped — and started again
//! with the same flags. Each time it either refuses to start (non-zero exit, the message names
//! the store and says how to rejoin) or, where a flip hit bytes sled never reads, starts on
//! content that is not behind what its integrity record says it promised (vote term, last log,
//! the same three voters). Meanwhile the other two keep a quorum and commit. Finally the
//! documented procedure (member remove, wipe, start without initial_members, member add)
//! brings it back as a caught-up voter.

mod prockit;

use std::path::{Path, PathBuf};
use std::time::Instant;

use mha_raft::store::RecordFile;
use prockit::*;
use serde_json::Value;

const ADVICE: &str = "Replacing a manager whose disk died";

/// How one start attempt ended.
enum Outcome {
    /// Exited with this code; its log output.
    Refused(Option<i32>, String),
    /// Running; the `store opened` log record.
    Started(Value),
}

/// Starts `p` and waits until it exits or logs "mhad started".
fn attempt(p: &mut Proc) -> Outcome {
    let from = p.log().len();
    p.spawn_with(&["--log-format", "json"]);
    let start = Instant::now();
    loop {
        let out = p.log()[from..].to_string();
        if let Some(st) = p.child.as_mut().unwrap().try_wait().unwrap() {
            p.child = None;
            return Outcome::Refused(st.code(), out);
        }
        if out.contains("mhad started") {
            let opened = out
                .lines()
                .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                .find(|v| v["fields"]["message"] == "store opened")
                .expect("a started node logged what its store holds");
            return Outcome::Started(opened["fields"].clone());
        }
        assert!(
            start.elapsed() < WAIT,
            "node {} neither exited nor started: {out}",
            p.id
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else if std::fs::metadata(&p).unwrap().len() > 0 {
            out.push(p);
        }
    }
    out.sort();
    out
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let p = e.unwrap().path();
        let dest = to.join(p.file_name().unwrap());
        if p.is_dir() {
            copy_dir(&p, &dest);
        } else {
            std::fs::copy(&p, &dest).unwrap();
        }
    }
}

fn restore(data: &Path, backup: &Path) {
    std::fs::remove_dir_all(data).unwrap();
    copy_dir(backup, data);
}

/// The two live managers still have a leader with a quorum, and a write commits through Raft
/// (removing a group that does not exist is refused by the applied state, after it committed).
fn others_available(ep: &str) {
    wait_status(ep, "the two others keep a quorum", |v| {
        v["has_quorum"] == true
    });
    let out = mhactl(
        ep,
        &["group", "remove", "--group", "no-such-group", "--yes"],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("does not exist"),
        "write did not commit: {err}"
    );
}

/// The refusal names the data dir and says what to do.
fn assert_refusal(code: Option<i32>, text: &str, data: &Path, what: &str) {
    assert!(
        code.is_some_and(|c| c != 0),
        "{what}: exit {code:?}: {text}"
    );
    assert!(
        text.contains(&data.display().to_string()),
        "{what}: no path in: {text}"
    );
    assert!(text.contains(ADVICE), "{what}: no advice in: {text}");
}

/// A node that started anyway: its store keeps every promise of the record read before the
/// start, and has the same voters. Then it rejoins and stops cleanly.
fn assert_not_behind(p: &mut Proc, opened: &Value, before: &mha_raft::store::Marks, ep: &str) {
    let n = |k: &str| opened[k].as_u64();
    if let Some(v) = before.vote {
        assert!(n("vote_term") >= Some(v.term), "{opened} vs {before:?}");
    }
    if let Some(l) = before.last_log {
        assert!(n("last_log") >= Some(l.index), "{opened} vs {before:?}");
    }
    if let Some(c) = before.committed {
        assert!(n("committed") >= Some(c.index), "{opened} vs {before:?}");
    }
    assert_eq!(opened["voters"], "[1, 2, 3]", "{opened}");
    wait_status(ep, "node back and caught up", |v| {
        all_followers_caught_up(v, 3)
    });
    assert!(p.term().success());
}

#[test]
fn damaged_store_is_refused_and_replaced() {
    let mut c = Cluster::start(3);
    let all = c.endpoints();
    let v = wait_status(&all, "3 caught-up managers", |v| {
        v["has_quorum"] == true && all_followers_caught_up(v, 3)
    });
    // Some history: refused writes are committed (and audited) like any other.
    for _ in 0..5 {
        others_available(&all);
    }
    let victim = (1..=3).find(|i| Some(*i) != leader_id(&v)).unwrap();
    let others: Vec<String> = c
        .procs
        .iter()
        .filter(|p| p.id != victim)
        .map(|p| p.addr.clone())
        .collect();
    let ep = others.join(",");
    let tmp = tempfile::tempdir().unwrap();
    let backup = tmp.path().join("backup");
    let p = c.proc(victim);
    let data = p.dir.join("data");
    let store = data.join("raft");
    let record = data.join("raft.hwm");
    assert!(p.term().success());

    tracing_phase("byte flips");
    let (mut refused, mut started) = (0, 0);
    for file in files_under(&store) {
        for pct in [25u64, 50, 75] {
            let len = std::fs::metadata(&file).unwrap().len();
            let at = (len * pct / 100).min(len.saturating_sub(8)) as usize;
            let (_, promised) = RecordFile::load(&record).unwrap().unwrap();
            let _ = std::fs::remove_dir_all(&backup);
            copy_dir(&data, &backup);
            let mut bytes = std::fs::read(&file).unwrap();
            let end = (at + 8).min(bytes.len());
            for b in &mut bytes[at..end] {
                *b ^= 0xA5;
            }
            std::fs::write(&file, &bytes).unwrap();
            let what = format!("{} at {pct}% (byte {at})", file.display());
            match attempt(p) {
                Outcome::Refused(code, text) => {
                    assert_refusal(code, &text, &data, &what);
                    let why = text
                        .lines()
                        .rfind(|l| l.starts_with("mhad: "))
                        .unwrap_or("");
                    eprintln!("{what}: refused: {}", &why[..why.len().min(220)]);
                    refused += 1;
                    restore(&data, &backup);
                }
                Outcome::Started(opened) => {
                    assert_not_behind(p, &opened, &promised, &ep);
                    started += 1;
                }
            }
            others_available(&ep);
        }
    }
    eprintln!("byte flips: {refused} refused, {started} started on content not behind");

    tracing_phase("largest file cut in half");
    let largest = files_under(&store)
        .into_iter()
        .max_by_key(|f| std::fs::metadata(f).unwrap().len())
        .unwrap();
    let _ = std::fs::remove_dir_all(&backup);
    copy_dir(&data, &backup);
    let len = std::fs::metadata(&largest).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&largest)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    let Outcome::Refused(code, text) = attempt(p) else {
        panic!("started on {} cut to {} bytes", largest.display(), len / 2);
    };
    assert_refusal(code, &text, &data, "cut");
    others_available(&ep);
    restore(&data, &backup);

    tracing_phase("a file deleted");
    std::fs::remove_file(&largest).unwrap();
    let Outcome::Refused(code, text) = attempt(p) else {
        panic!("started without {}", largest.display());
    };
    assert_refusal(code, &text, &data, "deleted");
    others_available(&ep);
    restore(&data, &backup);

    tracing_phase("record deleted");
    std::fs::remove_file(&record).unwrap();
    let Outcome::Refused(code, text) = attempt(p) else {
        panic!("started without its record");
    };
    assert_refusal(code, &text, &data, "record deleted");
    assert!(text.contains("raft.hwm is missing"), "{text}");
    restore(&data, &backup);

    tracing_phase("data dir wiped, same initial_members");
    std::fs::remove_dir_all(&data).unwrap();
    let Outcome::Refused(code, text) = attempt(p) else {
        panic!("a wiped member started with initial_members");
    };
    assert!(code.is_some_and(|c| c != 0), "{text}");
    for needle in [
        "ran before",
        &format!("mhactl member remove --id {victim}"),
        &format!("mhactl member add --id {victim} --addr {}", p.addr),
        "WITHOUT initial_members",
        ADVICE,
    ] {
        assert!(text.contains(needle), "{needle}: {text}");
    }
    others_available(&ep);

    tracing_phase("the documented procedure");
    // Three voters down to two: mhactl asks for confirmation (the broken node is out anyway).
    let out = mhactl(
        &ep,
        &["member", "remove", "--id", &victim.to_string(), "--yes"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = std::fs::remove_dir_all(&data);
    p.members = String::new();
    let mark = p.log_mark();
    p.spawn();
    p.wait_listening();
    let addr = p.addr.clone();
    let out = mhactl(
        &ep,
        &[
            "member",
            "add",
            "--id",
            &victim.to_string(),
            "--addr",
            &addr,
            "--zone",
            &format!("zone-{victim}"),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v =
        wait_status(&all, "the replaced node a caught-up voter", |v| {
            all_followers_caught_up(v, 3)
                && v["managers"].as_array().unwrap().iter().any(|r| {
                    r["id"] == victim && (r["role"] == "follower" || r["role"] == "leader")
                })
        });
    assert_eq!(v["has_quorum"], true);

    tracing_phase("the re-added member wiped, started without initial_members");
    // It registered itself (so it ran): from now on the leader tells it so on every call.
    p.wait_log(mark, &["registered this manager in the cluster state"]);
    assert!(p.term().success());
    std::fs::remove_dir_all(&data).unwrap();
    let from = p.log().len();
    p.spawn();
    let (code, text) = wait_exit(p, from);
    assert!(code.is_some_and(|c| c != 0), "exit {code:?}: {text}");
    for needle in [
        "has no Raft state",
        "counts it as a voter that ran before",
        &format!("mhactl member remove --id {victim}"),
        ADVICE,
    ] {
        assert!(text.contains(needle), "{needle}: {text}");
    }
    // It took no part: its empty store stayed empty (no vote, no entry saved).
    assert!(
        RecordFile::load(&data.join("raft.hwm"))
            .unwrap()
            .is_none_or(|(_, m)| m.is_empty()),
        "the refusing node saved something"
    );
    others_available(&ep);
}

/// Waits until `p` exits by itself; its exit code and what it logged since `from`.
fn wait_exit(p: &mut Proc, from: usize) -> (Option<i32>, String) {
    let start = Instant::now();
    loop {
        if let Some(st) = p.child.as_mut().unwrap().try_wait().unwrap() {
            p.child = None;
            return (st.code(), p.log()[from..].to_string());
        }
        assert!(
            start.elapsed() < WAIT,
            "node {} kept running: {}",
            p.id,
            &p.log()[from..]
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// Marks a phase in the test output (mhad's own logs are in each node's mhad.log).
fn tracing_phase(what: &str) {
    eprintln!("--- {what}");
}
