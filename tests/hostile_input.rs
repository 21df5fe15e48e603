//! Hostile input never panics and never changes state (issue #13, "Hostile input"), shown with
//! property tests over arbitrary and mutated input:
//! - the group file parser (`mhactl group add -f FILE`): arbitrary text, byte-level mutations
//!   and line-level mutations (values replaced, keys swapped, lines dropped or moved) of a valid
//!   file give a group or a clean error;
//! - the admin API's conversions (proto → domain, both the requests the server reads and the
//!   replies mhactl reads): any protobuf bytes, random wire-format messages and valid messages
//!   with random fields merged in, decoded as every message type, convert or fail cleanly; a
//!   group spec that converts reaches the replicated state machine, whose refusal changes
//!   nothing;
//! - the replicated state machine itself: random sequences of every command (what a Raft log
//!   entry can carry) never panic, and a refused or no-op command leaves the state as it was.
//!
//! The binlog reader and the Raft message decoding have their properties next to their code
//! (they need private access): `adapters::binlog::hostile_tests`, `server::raft_service` and
//! `raft::network`.

use std::collections::BTreeMap;

use mha_raft::api::{json, pb};
use mha_raft::group_file;
use mha_raft::model::{BinlogCoord, ManagerVote, ReplicaIo, Target, Verdict, VerdictKind};
use mha_raft::state::group::{DiscoveredServer, ReplicationMode, Role};
use mha_raft::state::journal::{Decided, RunKind, StepName, StepOutcome, StepReport, StepState};
use mha_raft::state::recovery::{DiffFile, RecoveryNote, Salvage};
use mha_raft::state::{ClusterState, Cmd, CmdResult, Group, GroupSpec, Rejection, Topology};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::Index;
use prost::Message;

/// Modest case counts (the suite runs on 2 cores) and no persisted failure files: a failing
/// case is printed, and kept as a regression test by hand.
fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

// ---------------------------------------------------------------------------------------------
// Seeds: the one place that knows the group file's keys.

/// A valid group file, the start of every mutation. Only this function knows the keys; the
/// properties take keys, values and sections from its lines.
fn seed_group_file() -> &'static str {
    r#"name = "app1"
user = "mha"
password = "mha"
repl_user = "repl"
repl_password = "repl"
ssh_user = "root"
ssh_profile = "default"
ssh_port = 22
vip = "10.0.0.100/24"
vip_interface = "eth0"
[ping]
type = "select"
interval_ms = 1000
failure_threshold = 3
replica_policy = "none_connected"
[failover]
shutdown_script = "power_off"
last_failover_minute = 480
apply_timeout_ms = 60000
master_binlog_dir = "/var/lib/mysql,/var/log/mysql"
latest_priority = true
[[servers]]
name = "db1"
host = "10.0.0.11"
port = 3306
candidate_master = true
[[servers]]
name = "db2"
host = "10.0.0.12"
port = 3306
no_master = true
master_binlog_dir = "/data/binlog"
[[servers]]
name = "db3"
host = "10.0.0.13"
port = 3307
"#
}

fn seed_spec() -> GroupSpec {
    group_file::parse(seed_group_file()).expect("the seed group file is valid")
}

fn spec_named(name: &str) -> GroupSpec {
    let mut s = seed_spec();
    s.name = name.to_string();
    s
}

/// The topology discovery would find for `spec` with `master` as its master.
fn topology_of(spec: &GroupSpec, master: &str, mode: ReplicationMode) -> Topology {
    Topology {
        master: master.to_string(),
        servers: spec
            .servers
            .iter()
            .map(|s| {
                let is_master = s.name == master;
                (
                    s.name.clone(),
                    DiscoveredServer {
                        name: s.name.clone(),
                        role: if is_master {
                            Role::Master
                        } else {
                            Role::Replica
                        },
                        server_id: 1,
                        version: "10.11.6-MariaDB".into(),
                        read_only: !is_master,
                        log_bin: true,
                        replicates_from: (!is_master).then(|| master.to_string()),
                    },
                )
            })
            .collect(),
        mode,
        semisync: false,
        warnings: vec![],
        discovered_at_ms: 1,
    }
}

/// A state with something of everything: group `app1` idle with a recorded verdict, group
/// `busy` with an active run part-way through its steps, registered managers.
fn rich_state() -> ClusterState {
    let mut s = ClusterState::default();
    let cmds = [
        Cmd::SetClusterName {
            name: "prod".into(),
        },
        Cmd::RegisterManager {
            id: 1,
            addr: "10.0.0.1:7101".into(),
            zone: "a".into(),
            admin_addr: None,
            features: vec![],
            by_self: false,
        },
        Cmd::PutGroup {
            spec: Box::new(spec_named("app1")),
            topology: Box::new(topology_of(
                &spec_named("app1"),
                "db1",
                ReplicationMode::MariadbGtid,
            )),
            replace: false,
            exclusive: false,
        },
        Cmd::PutGroup {
            spec: Box::new(spec_named("busy")),
            topology: Box::new(topology_of(
                &spec_named("busy"),
                "db1",
                ReplicationMode::FilePos,
            )),
            replace: false,
            exclusive: false,
        },
        Cmd::OpenSuspicion {
            group: "app1".into(),
            round: 1,
            since_ms: 10,
        },
        Cmd::RecordVerdict {
            group: "app1".into(),
            verdict: Box::new(Verdict {
                kind: VerdictKind::UnreachableButAlive,
                round: 1,
                suspected_at_ms: 10,
                at_ms: 20,
                failures: 3,
                votes: vec![ManagerVote {
                    manager: 1,
                    zone: "a".into(),
                    reachable: true,
                    detail: "ok".into(),
                    at_ms: 15,
                }],
                replicas: BTreeMap::from([(
                    "db2".to_string(),
                    ReplicaIo::Connected {
                        detail: "io running".into(),
                    },
                )]),
                reason: "a manager reaches it".into(),
            }),
        },
        Cmd::BeginFailover {
            group: "busy".into(),
            kind: RunKind::Manual,
            old_master: "db1".into(),
            verdict_round: None,
            anti_flap_ms: 0,
            forced: Some("db3".into()),
        },
        Cmd::StepBegin {
            run: 1,
            step: StepName::ConfigCheck,
            term: 2,
            node: 1,
        },
        Cmd::StepAdvance {
            run: 1,
            step: StepName::ConfigCheck,
            term: 2,
            outcome: StepOutcome::Done("checked".into()),
            node: 1,
        },
        Cmd::Decide {
            run: 1,
            decided: Decided {
                new_master: "db3".into(),
                rule: "forced".into(),
                target: Target::Coord(BinlogCoord {
                    file: "mysql-bin.000002".into(),
                    pos: 1407,
                }),
            },
        },
        Cmd::RecordRecovery {
            run: 1,
            note: RecoveryNote::NewMasterCoords {
                file: "mysql-bin.000003".into(),
                pos: 4,
            },
        },
    ];
    for (i, c) in cmds.iter().enumerate() {
        let r = s.apply(c, 100 + i as u64);
        assert_eq!(r, CmdResult::Ok, "{c}");
    }
    s
}

/// Encoded valid messages of the admin API, the start of the wire-level mutations.
fn seed_messages() -> Vec<Vec<u8>> {
    let s = rich_state();
    let put = pb::PutGroupRequest {
        spec: Some((&seed_spec()).into()),
    };
    let reply = pb::GroupReply {
        group: Some((&s.groups["app1"]).into()),
        warnings: vec!["relay_log_purge=1".into()],
    };
    let history = pb::FailoverHistoryReply {
        runs: s.runs.values().map(Into::into).collect(),
        failover: Some((&s.failover["busy"]).into()),
    };
    vec![
        put.encode_to_vec(),
        reply.encode_to_vec(),
        history.encode_to_vec(),
    ]
}

// ---------------------------------------------------------------------------------------------
// The state machine's rule: a refused or no-op command changes nothing.

/// Applies `cmd` and checks that a refusal (or a no-op) left the state as it was. The change
/// counter `applied_cmds` counts every command, refused or not, by design; an automatic
/// failover's refusal is itself recorded (`Rejection::FailoverRefused`, documented there).
fn apply_checked(s: &mut ClusterState, cmd: &Cmd, at: u64) -> Result<CmdResult, TestCaseError> {
    let before = s.clone();
    let res = s.apply(cmd, at);
    prop_assert_eq!(s.applied_cmds, before.applied_cmds + 1);
    let mut after = s.clone();
    after.applied_cmds = before.applied_cmds;
    match &res {
        CmdResult::Ok | CmdResult::Rejected(Rejection::FailoverRefused { .. }) => {}
        CmdResult::Unchanged | CmdResult::Rejected(_) => {
            prop_assert!(
                after == before,
                "{cmd} at {at} gave {res:?} but changed the state:\nbefore {}\nafter  {}",
                serde_json::to_string(&before).unwrap(),
                serde_json::to_string(&after).unwrap()
            );
        }
    }
    Ok(res)
}

// ---------------------------------------------------------------------------------------------
// Group file.

/// One edit of a file's bytes.
#[derive(Clone, Debug)]
enum ByteEdit {
    Flip(Index, u8),
    Truncate(Index),
    Delete(Index, usize),
    Insert(Index, Vec<u8>),
    Overwrite(Index, u8),
}

fn byte_edit() -> impl Strategy<Value = ByteEdit> {
    prop_oneof![
        (any::<Index>(), 0u8..8).prop_map(|(i, b)| ByteEdit::Flip(i, b)),
        any::<Index>().prop_map(ByteEdit::Truncate),
        (any::<Index>(), 1usize..16).prop_map(|(i, n)| ByteEdit::Delete(i, n)),
        (
            any::<Index>(),
            prop_oneof![
                vec(any::<u8>(), 1..8),
                prop::sample::select(vec![
                    &b"\""[..],
                    b"[",
                    b"]",
                    b"=",
                    b"\n",
                    b"#",
                    b"\\",
                    b"'''",
                    b"[[servers]]\n",
                    b"\xff\xfe",
                ])
                .prop_map(<[u8]>::to_vec),
            ]
        )
            .prop_map(|(i, b)| ByteEdit::Insert(i, b)),
        (any::<Index>(), any::<u8>()).prop_map(|(i, b)| ByteEdit::Overwrite(i, b)),
    ]
}

fn apply_byte_edits(seed: &[u8], edits: &[ByteEdit]) -> Vec<u8> {
    let mut b = seed.to_vec();
    for e in edits {
        let at = |i: &Index, len: usize| if len == 0 { 0 } else { i.index(len) };
        match e {
            ByteEdit::Flip(i, bit) if !b.is_empty() => {
                let k = at(i, b.len());
                b[k] ^= 1 << bit;
            }
            ByteEdit::Truncate(i) => b.truncate(at(i, b.len() + 1)),
            ByteEdit::Delete(i, n) if !b.is_empty() => {
                let k = at(i, b.len());
                let end = (k + n).min(b.len());
                b.drain(k..end);
            }
            ByteEdit::Insert(i, ins) => {
                let k = at(i, b.len() + 1);
                b.splice(k..k, ins.iter().copied());
            }
            ByteEdit::Overwrite(i, v) if !b.is_empty() => {
                let k = at(i, b.len());
                b[k] = *v;
            }
            _ => {}
        }
    }
    b
}

/// A TOML value of any type, valid or not, with the edge cases of the fields' types.
fn toml_value() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i64>().prop_map(|v| v.to_string()),
        prop::sample::select(vec![
            "0",
            "-1",
            "65535",
            "65536",
            "4294967296",
            "18446744073709551615",
            "18446744073709551616",
            "1e400",
            "nan",
            "-inf",
            "0x7fffffff",
            "true",
            "false",
            "1979-05-27T07:32:00Z",
            "[]",
            "[1, \"a\", []]",
            "{}",
            "{ name = \"db9\", host = \"h\" }",
            "\"\"",
            "''",
            "\"\"\"\nmulti\nline\"\"\"",
            "\"a\\u0000b\"",
            "\"10.0.0.100/999\"",
            "\"::1/128\"",
            "\"../../etc/shadow\"",
            "\"$(id)\"",
            "\"unterminated",
        ])
        .prop_map(String::from),
        // Any string, quoted (JSON escapes are valid TOML basic-string escapes).
        any::<String>().prop_map(|s| serde_json::to_string(&s).expect("a string")),
        // Raw junk.
        "[ -~]{0,24}",
    ]
}

/// The seed's lines: (key, value) for `key = value` lines, else the whole line as key.
fn seed_lines() -> Vec<(String, Option<String>)> {
    seed_group_file()
        .lines()
        .map(|l| match l.split_once(" = ") {
            Some((k, v)) => (k.to_string(), Some(v.to_string())),
            None => (l.to_string(), None),
        })
        .collect()
}

/// One edit of a file's lines, taking keys and sections from the seed itself.
#[derive(Clone, Debug)]
enum LineEdit {
    Drop(Index),
    Duplicate(Index),
    Swap(Index, Index),
    SetValue(Index, String),
    /// `key = value` becomes `value = key`.
    SwapKeyValue(Index),
    /// The key of one line with the value of another.
    KeyOf(Index, Index),
    /// A line of the seed (a key, a section header) inserted elsewhere.
    Move(Index, Index),
    Raw(Index, String),
}

fn line_edit() -> impl Strategy<Value = LineEdit> {
    prop_oneof![
        1 => any::<Index>().prop_map(LineEdit::Drop),
        1 => any::<Index>().prop_map(LineEdit::Duplicate),
        1 => (any::<Index>(), any::<Index>()).prop_map(|(a, b)| LineEdit::Swap(a, b)),
        3 => (any::<Index>(), toml_value()).prop_map(|(a, v)| LineEdit::SetValue(a, v)),
        1 => any::<Index>().prop_map(LineEdit::SwapKeyValue),
        2 => (any::<Index>(), any::<Index>()).prop_map(|(a, b)| LineEdit::KeyOf(a, b)),
        1 => (any::<Index>(), any::<Index>()).prop_map(|(a, b)| LineEdit::Move(a, b)),
        1 => (any::<Index>(), "[ -~]{0,30}").prop_map(|(a, s)| LineEdit::Raw(a, s)),
    ]
}

fn apply_line_edits(edits: &[LineEdit]) -> String {
    let seed = seed_lines();
    let mut lines = seed.clone();
    for e in edits {
        let n = lines.len();
        if n == 0 {
            break;
        }
        match e {
            LineEdit::Drop(i) => {
                lines.remove(i.index(n));
            }
            LineEdit::Duplicate(i) => {
                let l = lines[i.index(n)].clone();
                lines.insert(i.index(n), l);
            }
            LineEdit::Swap(a, b) => lines.swap(a.index(n), b.index(n)),
            LineEdit::SetValue(a, v) => lines[a.index(n)].1 = Some(v.clone()),
            LineEdit::SwapKeyValue(a) => {
                let (k, v) = lines[a.index(n)].clone();
                if let Some(v) = v {
                    lines[a.index(n)] = (v, Some(k));
                }
            }
            LineEdit::KeyOf(a, b) => {
                let k = seed[b.index(seed.len())].0.clone();
                lines[a.index(n)].0 = k;
            }
            LineEdit::Move(a, b) => {
                let l = seed[b.index(seed.len())].clone();
                lines.insert(a.index(n + 1), l);
            }
            LineEdit::Raw(a, s) => lines.insert(a.index(n + 1), (s.clone(), None)),
        }
    }
    lines
        .into_iter()
        .map(|(k, v)| match v {
            Some(v) => format!("{k} = {v}\n"),
            None => format!("{k}\n"),
        })
        .collect()
}

/// What `parse` may answer: a group that is valid and crosses the wire unchanged, or errors
/// that say something.
fn check_parse(text: &str) -> Result<(), TestCaseError> {
    match group_file::parse(text) {
        Ok(spec) => {
            prop_assert_eq!(spec.validate(), Ok(()));
            let back = GroupSpec::try_from(pb::GroupSpec::from(&spec));
            prop_assert_eq!(back, Ok(spec));
        }
        Err(errs) => {
            prop_assert!(!errs.is_empty(), "an error without a message");
            prop_assert!(errs.iter().all(|e| !e.trim().is_empty()), "{errs:?}");
        }
    }
    Ok(())
}

#[test]
fn seed_group_file_is_valid() {
    assert_eq!(seed_spec().servers.len(), 3);
    check_parse(seed_group_file()).unwrap();
}

proptest! {
    #![proptest_config(config(256))]

    /// Any text at all: a group or a clean error.
    #[test]
    fn group_file_arbitrary_text(text in any::<String>()) {
        check_parse(&text)?;
    }

    /// Any bytes (read as mhactl would after a lossy decoding): a group or a clean error.
    #[test]
    fn group_file_arbitrary_bytes(bytes in vec(any::<u8>(), 0..600)) {
        check_parse(&String::from_utf8_lossy(&bytes))?;
    }

    /// The valid file with bytes flipped, cut, deleted, inserted or overwritten.
    #[test]
    fn group_file_byte_mutations(edits in vec(byte_edit(), 1..8)) {
        let b = apply_byte_edits(seed_group_file().as_bytes(), &edits);
        check_parse(&String::from_utf8_lossy(&b))?;
    }

    /// The valid file with lines dropped, duplicated, moved; values of any type; keys and
    /// values swapped; keys moved to other lines and sections.
    #[test]
    fn group_file_line_mutations(edits in vec(line_edit(), 1..4)) {
        check_parse(&apply_line_edits(&edits))?;
    }
}

// ---------------------------------------------------------------------------------------------
// Admin API messages.

/// A protobuf wire-format field of any number and wire type: random messages that know nothing
/// of the schema, so they stay valid input when the schema changes.
#[derive(Clone, Debug)]
enum Field {
    Varint(u32, u64),
    Fixed64(u32, u64),
    Fixed32(u32, u32),
    Bytes(u32, Vec<u8>),
    Message(u32, Vec<Field>),
}

fn put_key(n: u32, wire_type: u64, out: &mut Vec<u8>) {
    prost::encoding::encode_varint((u64::from(n) << 3) | wire_type, out);
}

fn encode_fields(fields: &[Field], out: &mut Vec<u8>) {
    for f in fields {
        match f {
            Field::Varint(n, v) => {
                put_key(*n, 0, out);
                prost::encoding::encode_varint(*v, out);
            }
            Field::Fixed64(n, v) => {
                put_key(*n, 1, out);
                out.extend_from_slice(&v.to_le_bytes());
            }
            Field::Fixed32(n, v) => {
                put_key(*n, 5, out);
                out.extend_from_slice(&v.to_le_bytes());
            }
            Field::Bytes(n, b) => {
                put_key(*n, 2, out);
                prost::encoding::encode_varint(b.len() as u64, out);
                out.extend_from_slice(b);
            }
            Field::Message(n, fs) => {
                let mut inner = Vec::new();
                encode_fields(fs, &mut inner);
                put_key(*n, 2, out);
                prost::encoding::encode_varint(inner.len() as u64, out);
                out.extend_from_slice(&inner);
            }
        }
    }
}

/// Field numbers: mostly the low ones every message uses, sometimes any valid one.
fn field_number() -> impl Strategy<Value = u32> {
    prop_oneof![9 => 1u32..=16, 1 => 1u32..=(1 << 29) - 1]
}

/// Varints with the edges of the fields' types (enums, ports, u32 and i32 carried as varint).
fn varint() -> impl Strategy<Value = u64> {
    prop_oneof![
        3 => 0u64..8,
        1 => any::<u64>(),
        1 => prop::sample::select(vec![
            u64::MAX,
            u64::from(u16::MAX) + 1,
            u64::from(u32::MAX),
            u64::from(u32::MAX) + 1,
            i32::MIN as u64,
            -1i64 as u64,
        ]),
    ]
}

fn field() -> impl Strategy<Value = Field> {
    let leaf = prop_oneof![
        3 => (field_number(), varint()).prop_map(|(n, v)| Field::Varint(n, v)),
        1 => (field_number(), any::<u64>()).prop_map(|(n, v)| Field::Fixed64(n, v)),
        1 => (field_number(), any::<u32>()).prop_map(|(n, v)| Field::Fixed32(n, v)),
        3 => (
            field_number(),
            prop_oneof![
                any::<String>().prop_map(String::into_bytes),
                vec(any::<u8>(), 0..24),
            ]
        )
            .prop_map(|(n, b)| Field::Bytes(n, b)),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        (field_number(), vec(inner, 0..8)).prop_map(|(n, fs)| Field::Message(n, fs))
    })
}

/// What the server does with a group spec that arrives: convert it, check it, and (the
/// topology discovered) propose it; the state machine refuses what its rules refuse.
fn put_group_path(req: pb::PutGroupRequest) -> Result<(), TestCaseError> {
    let Some(spec) = req.spec else {
        return Ok(());
    };
    let Ok(spec) = GroupSpec::try_from(spec) else {
        return Ok(());
    };
    let back = GroupSpec::try_from(pb::GroupSpec::from(&spec));
    prop_assert_eq!(back.as_ref(), Ok(&spec), "the wire loses nothing");
    if spec.validate().is_err() {
        return Ok(());
    }
    let master = spec.servers[0].name.clone();
    let topology = topology_of(&spec, &master, ReplicationMode::MysqlGtid);
    for replace in [false, true] {
        let mut s = rich_state();
        let cmd = Cmd::PutGroup {
            spec: Box::new(spec.clone()),
            topology: Box::new(topology.clone()),
            replace,
            exclusive: true,
        };
        apply_checked(&mut s, &cmd, 1_000)?;
    }
    Ok(())
}

/// Reads `bytes` as every admin message and converts what decodes, the way the server reads a
/// request and mhactl a reply. Only panics (and a changed state) fail.
fn every_message(bytes: &[u8]) -> Result<(), TestCaseError> {
    // Requests the server reads.
    if let Ok(m) = pb::PutGroupRequest::decode(bytes) {
        put_group_path(m)?;
    }
    if let Ok(m) = pb::GroupSpec::decode(bytes) {
        put_group_path(pb::PutGroupRequest { spec: Some(m) })?;
    }
    if let Ok(m) = pb::InitClusterRequest::decode(bytes) {
        for member in &m.members {
            let _ = mha_raft::config::check_host_port(&member.addr);
        }
    }
    if let Ok(m) = pb::RegisterManagerRequest::decode(bytes) {
        let _ = mha_raft::config::check_host_port(&m.addr);
    }
    let _ = pb::AddMemberRequest::decode(bytes);
    let _ = pb::RemoveMemberRequest::decode(bytes);
    let _ = pb::RemoveGroupRequest::decode(bytes);
    let _ = pb::FailoverRequest::decode(bytes);
    let _ = pb::AckFailoverRequest::decode(bytes);
    let _ = pb::CheckGroupRequest::decode(bytes);
    let _ = pb::FailoverHistoryRequest::decode(bytes);
    let _ = pb::ClusterStatusRequest::decode(bytes);
    // Replies mhactl reads and renders (`--json` converts them to domain values).
    if let Ok(m) = pb::GroupReply::decode(bytes) {
        if let Some(g) = &m.group {
            check_group(g)?;
        }
    }
    if let Ok(m) = pb::Group::decode(bytes) {
        check_group(&m)?;
    }
    if let Ok(m) = pb::ListGroupsReply::decode(bytes) {
        for g in &m.groups {
            check_group(g)?;
        }
    }
    if let Ok(m) = pb::FailoverHistoryReply::decode(bytes) {
        for r in &m.runs {
            let _ = json::run(r);
        }
        if let Some(f) = &m.failover {
            let _ = json::group_failover(f);
        }
    }
    if let Ok(m) = pb::FailoverRun::decode(bytes) {
        let _ = json::run(&m);
    }
    if let Ok(m) = pb::CheckReplReply::decode(bytes) {
        if let Some(r) = &m.report {
            let _ = json::repl_report(r);
        }
    }
    if let Ok(m) = pb::ClusterStatusReply::decode(bytes) {
        for g in &m.groups {
            let _ = json::group_live(g);
        }
    }
    if let Ok(m) = pb::GroupLive::decode(bytes) {
        let _ = json::group_live(&m);
    }
    if let Ok(m) = pb::FailoverReply::decode(bytes) {
        if let Some(s) = &m.selection {
            let _ = json::selection(s);
        }
        let _ = json::excluded(&m.excluded);
    }
    let _ = pb::NodeStatusReply::decode(bytes);
    let _ = pb::CheckSshReply::decode(bytes);
    let _ = pb::MemberReply::decode(bytes);
    Ok(())
}

/// A group reply that converts crosses the wire back unchanged.
fn check_group(g: &pb::Group) -> Result<(), TestCaseError> {
    let _ = json::mode_name(g.topology.as_ref().map_or(0, |t| t.mode));
    if let Ok(group) = Group::try_from(g.clone()) {
        prop_assert_eq!(Group::try_from(pb::Group::from(&group)), Ok(group));
    }
    Ok(())
}

/// The seed messages decode, convert and reach the state machine as they should.
#[test]
fn seed_messages_convert() {
    let seeds = seed_messages();
    let put = pb::PutGroupRequest::decode(&seeds[0][..]).unwrap();
    assert_eq!(GroupSpec::try_from(put.spec.unwrap()).unwrap(), seed_spec());
    let reply = pb::GroupReply::decode(&seeds[1][..]).unwrap();
    assert!(json::group(&reply.group.unwrap()).is_ok());
    let history = pb::FailoverHistoryReply::decode(&seeds[2][..]).unwrap();
    assert!(json::run(&history.runs[0]).is_ok());
    for s in &seeds {
        every_message(s).unwrap();
    }
}

proptest! {
    #![proptest_config(config(256))]

    /// Any bytes, read as every admin message.
    #[test]
    fn admin_messages_arbitrary_bytes(bytes in vec(any::<u8>(), 0..256)) {
        every_message(&bytes)?;
    }

    /// Random wire-format messages (any field numbers, types, nesting), read as every admin
    /// message: they decode far more often than random bytes, deep into nested messages.
    #[test]
    fn admin_messages_random_wire(fields in vec(field(), 0..12)) {
        let mut bytes = Vec::new();
        encode_fields(&fields, &mut bytes);
        every_message(&bytes)?;
    }

    /// A valid message with random fields merged in at some depth (protobuf merges a repeated
    /// sub-message, so this overrides single fields deep inside an otherwise valid message:
    /// a port out of range, an unknown enum, a missing credential...).
    #[test]
    fn admin_messages_valid_with_random_fields(
        seed in any::<Index>(),
        path in vec(1u32..=16, 0..4),
        fields in vec(field(), 1..6),
    ) {
        let seeds = seed_messages();
        let mut bytes = seeds[seed.index(seeds.len())].clone();
        let mut fields = fields;
        for n in path.iter().rev() {
            fields = vec![Field::Message(*n, fields)];
        }
        encode_fields(&fields, &mut bytes);
        every_message(&bytes)?;
    }

    /// Valid messages with bytes flipped, cut, deleted, inserted.
    #[test]
    fn admin_messages_byte_mutations(seed in any::<Index>(), edits in vec(byte_edit(), 1..6)) {
        let seeds = seed_messages();
        let bytes = apply_byte_edits(&seeds[seed.index(seeds.len())], &edits);
        every_message(&bytes)?;
    }

    /// Enum values of any number render as "unknown", never panic.
    #[test]
    fn enum_names_of_any_number(v in any::<i32>()) {
        let _ = json::mode_name(v);
        let _ = json::verdict_kind_name(v);
        let _ = json::phase(v);
    }
}

// ---------------------------------------------------------------------------------------------
// The replicated state machine: every command, any values.

/// Group names: mostly ones the state has (so rules are reached), sometimes anything.
fn group_name() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => prop::sample::select(vec!["app1", "busy", "new"]).prop_map(String::from),
        1 => any::<String>(),
    ]
}

/// Numbers (run ids, rounds, terms, times): mostly small, with the edges.
fn num() -> impl Strategy<Value = u64> {
    prop_oneof![
        6 => 0u64..6,
        1 => Just(u64::MAX),
        1 => any::<u64>(),
    ]
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![Just(String::new()), "[a-z0-9.:-]{0,12}", any::<String>(),]
}

fn server_name() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(vec!["db1", "db2", "db3"]).prop_map(String::from),
        1 => text(),
    ]
}

fn step_name() -> impl Strategy<Value = StepName> {
    prop::sample::select(StepName::ALL.to_vec())
}

fn run_kind() -> impl Strategy<Value = RunKind> {
    prop::sample::select(vec![RunKind::Auto, RunKind::Manual, RunKind::Switchover])
}

fn outcome() -> impl Strategy<Value = StepOutcome> {
    prop_oneof![
        (
            text(),
            proptest::option::of(text()),
            vec(server_name(), 0..3)
        )
            .prop_map(|(detail, statement, failed_replicas)| StepOutcome::Done(
                StepReport {
                    detail,
                    statement,
                    failed_replicas,
                }
            )),
        text().prop_map(|detail| StepOutcome::Failed { detail }),
        text().prop_map(|detail| StepOutcome::Skipped { detail }),
    ]
}

fn coord() -> impl Strategy<Value = BinlogCoord> {
    (text(), num()).prop_map(|(file, pos)| BinlogCoord { file, pos })
}

fn decided() -> impl Strategy<Value = Decided> {
    (
        server_name(),
        text(),
        prop_oneof![
            text().prop_map(Target::Gtid),
            coord().prop_map(Target::Coord)
        ],
    )
        .prop_map(|(new_master, rule, target)| Decided {
            new_master,
            rule,
            target,
        })
}

fn recovery_note() -> impl Strategy<Value = RecoveryNote> {
    prop_oneof![
        (any::<bool>(), num(), text()).prop_map(|(saved, bytes, detail)| {
            RecoveryNote::Salvage(Salvage {
                saved,
                bytes,
                detail,
                ..Salvage::default()
            })
        }),
        (server_name(), text(), num(), proptest::option::of(text())).prop_map(
            |(server, path, bytes, error)| RecoveryNote::Diff {
                server,
                diff: DiffFile {
                    path,
                    bytes,
                    error,
                    ..DiffFile::default()
                },
            }
        ),
        (server_name(), text())
            .prop_map(|(server, detail)| RecoveryNote::Applied { server, detail }),
        (text(), num()).prop_map(|(file, pos)| RecoveryNote::NewMasterCoords { file, pos }),
    ]
}

fn verdict() -> impl Strategy<Value = Verdict> {
    (
        prop::sample::select(vec![VerdictKind::Dead, VerdictKind::UnreachableButAlive]),
        (num(), num(), num(), any::<u32>()),
        vec(
            (num(), text(), any::<bool>(), text(), num()).prop_map(
                |(manager, zone, reachable, detail, at_ms)| ManagerVote {
                    manager,
                    zone,
                    reachable,
                    detail,
                    at_ms,
                },
            ),
            0..3,
        ),
        proptest::collection::btree_map(
            server_name(),
            text().prop_map(|detail| ReplicaIo::Disconnected { detail }),
            0..3,
        ),
        text(),
    )
        .prop_map(
            |(kind, (round, suspected_at_ms, at_ms, failures), votes, replicas, reason)| Verdict {
                kind,
                round,
                suspected_at_ms,
                at_ms,
                failures,
                votes,
                replicas,
                reason,
            },
        )
}

fn put_group_cmd() -> impl Strategy<Value = Cmd> {
    (
        group_name(),
        server_name(),
        prop::sample::select(vec![
            ReplicationMode::MariadbGtid,
            ReplicationMode::MysqlGtid,
            ReplicationMode::FilePos,
        ]),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(name, master, mode, replace, exclusive)| {
            let spec = spec_named(&name);
            let topology = topology_of(&spec, &master, mode);
            Cmd::PutGroup {
                spec: Box::new(spec),
                topology: Box::new(topology),
                replace,
                exclusive,
            }
        })
}

/// Every command the state machine knows, with values from the pools above.
fn cmd() -> impl Strategy<Value = Cmd> {
    // Boxed arms: the unboxed union's value trees overflow a test thread's stack in debug builds.
    let arms: Vec<BoxedStrategy<Cmd>> = vec![
        text().prop_map(|name| Cmd::SetClusterName { name }).boxed(),
        (num(), text(), text(), vec(text(), 0..3))
            .prop_map(|(id, addr, zone, features)| Cmd::RegisterManager {
                id,
                addr,
                zone,
                admin_addr: None,
                features,
                by_self: false,
            })
            .boxed(),
        (num(), vec(text(), 7))
            .prop_map(|(manager, t)| Cmd::Audit {
                entry: Box::new(mha_raft::state::AuditEntry {
                    manager,
                    who: t[0].clone(),
                    from: t[1].clone(),
                    rpc: t[2].clone(),
                    what: t[3].repeat(40),
                    result: t[4].clone(),
                    detail: t[5].clone() + &t[6],
                }),
            })
            .boxed(),
        num().prop_map(|id| Cmd::ForgetManager { id }).boxed(),
        put_group_cmd().boxed(),
        group_name()
            .prop_map(|name| Cmd::RemoveGroup { name })
            .boxed(),
        (group_name(), num(), num())
            .prop_map(|(group, round, since_ms)| Cmd::OpenSuspicion {
                group,
                round,
                since_ms,
            })
            .boxed(),
        (group_name(), num())
            .prop_map(|(group, round)| Cmd::CloseSuspicion { group, round })
            .boxed(),
        (group_name(), verdict())
            .prop_map(|(group, v)| Cmd::RecordVerdict {
                group,
                verdict: Box::new(v),
            })
            .boxed(),
        (group_name(), verdict())
            .prop_map(|(group, v)| Cmd::RecordVerdictAndBegin {
                group,
                verdict: Box::new(v),
            })
            .boxed(),
        group_name()
            .prop_map(|group| Cmd::AckFailover { group })
            .boxed(),
        (group_name(), num())
            .prop_map(|(group, before)| Cmd::PruneRuns { group, before })
            .boxed(),
        (
            group_name(),
            run_kind(),
            server_name(),
            proptest::option::of(num()),
            num(),
            proptest::option::of(server_name()),
        )
            .prop_map(
                |(group, kind, old_master, verdict_round, anti_flap_ms, forced)| {
                    Cmd::BeginFailover {
                        group,
                        kind,
                        old_master,
                        verdict_round,
                        anti_flap_ms,
                        forced,
                    }
                },
            )
            .boxed(),
        (num(), step_name(), num(), num())
            .prop_map(|(run, step, term, node)| Cmd::StepBegin {
                run,
                step,
                term,
                node,
            })
            .boxed(),
        (num(), step_name(), num(), outcome())
            .prop_map(|(run, step, term, outcome)| Cmd::StepEnd {
                run,
                step,
                term,
                outcome,
            })
            .boxed(),
        (num(), step_name(), num(), outcome(), num())
            .prop_map(|(run, step, term, outcome, node)| Cmd::StepAdvance {
                run,
                step,
                term,
                outcome,
                node,
            })
            .boxed(),
        (num(), decided())
            .prop_map(|(run, decided)| Cmd::Decide { run, decided })
            .boxed(),
        (num(), recovery_note())
            .prop_map(|(run, note)| Cmd::RecordRecovery { run, note })
            .boxed(),
        (num(), proptest::option::of(text()))
            .prop_map(|(run, failed)| Cmd::FinishFailover { run, failed })
            .boxed(),
    ];
    proptest::strategy::Union::new(arms)
}

/// Points a run command at a run the state has, and a step command at that run's next step in
/// the run's term (random ids alone seldom reach a run's later steps, its decision or its end).
fn aim(c: &Cmd, s: &ClusterState, pick: &Index) -> Cmd {
    let mut c = c.clone();
    let Some((&id, r)) = s.runs.iter().nth(pick.index(s.runs.len().max(1))) else {
        return c;
    };
    let next = r.first_unfinished();
    let reached = r
        .steps
        .iter()
        .filter_map(|s| match s.state {
            StepState::Running { term, .. }
            | StepState::Done { term, .. }
            | StepState::Failed { term, .. } => Some(term),
            _ => None,
        })
        .max();
    match &mut c {
        Cmd::StepBegin {
            run, step, term, ..
        }
        | Cmd::StepEnd {
            run, step, term, ..
        }
        | Cmd::StepAdvance {
            run, step, term, ..
        } => {
            *run = id;
            *step = next.unwrap_or(*step);
            *term = reached.unwrap_or(*term);
        }
        Cmd::Decide { run, .. }
        | Cmd::RecordRecovery { run, .. }
        | Cmd::FinishFailover { run, .. } => *run = id,
        _ => {}
    }
    c
}

proptest! {
    #![proptest_config(config(256))]

    /// Random sequences of every command, from an empty state and from one with groups and an
    /// active run: no command panics, and every refused or no-op command leaves the state as
    /// it was (an entry a hostile or buggy leader commits can at worst be refused).
    #[test]
    fn commands_never_panic_and_refusals_change_nothing(
        rich in any::<bool>(),
        cmds in vec((cmd(), num(), proptest::option::of(any::<Index>())), 1..24),
    ) {
        let mut s = if rich { rich_state() } else { ClusterState::default() };
        for (c, at, pick) in &cmds {
            let c = match pick {
                Some(p) => aim(c, &s, p),
                None => c.clone(),
            };
            apply_checked(&mut s, &c, *at)?;
        }
    }

    /// A log entry's command (JSON, as Raft carries it) with its bytes mutated: a clean error,
    /// or a command the state machine applies under its rules.
    #[test]
    fn command_encoding_mutations(c in cmd(), edits in vec(byte_edit(), 0..4)) {
        let bytes = apply_byte_edits(&serde_json::to_vec(&c).expect("a command serializes"), &edits);
        if let Ok(c) = serde_json::from_slice::<Cmd>(&bytes) {
            apply_checked(&mut rich_state(), &c, 1_000)?;
        }
    }
}
