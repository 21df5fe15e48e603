//! Config layering and validation: every error names its key.
use super::*;

fn base(dir: &Path) -> RawConfig {
    RawConfig {
        id: Some(1),
        data_dir: Some(dir.to_path_buf()),
        initial_members: Some(vec![
            "1=127.0.0.1:7101,2=127.0.0.1:7102,3=127.0.0.1:7103".into()
        ]),
        tls: Some(RawTlsConfig {
            ca: Some("/etc/mhad/tls/ca.crt".into()),
            cert: Some("/etc/mhad/tls/node-1.crt".into()),
            key: Some("/etc/mhad/tls/node-1.key".into()),
        }),
        ..Default::default()
    }
}

fn err_key(raw: RawConfig) -> String {
    match NodeConfig::try_from(raw).unwrap_err() {
        ConfigError::Invalid { key, .. } => key.to_string(),
        other => panic!("unexpected {other}"),
    }
}

/// Flags alone (the form tests and scripts use) give a complete, defaulted config.
#[test]
fn flags_alone_are_enough() {
    let dir = tempfile::tempdir().unwrap();
    let c = NodeConfig::try_from(base(dir.path())).unwrap();
    assert_eq!(c.advertise, "127.0.0.1:7101");
    assert_eq!(c.zone, "zone-1");
    assert_eq!(c.initial_members.len(), 3);
    assert_eq!(c.raft, RaftTimings::default());
}

/// Every validation error names its key.
#[test]
fn validation_names_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cases: Vec<(RawConfig, &str)> = vec![
        (
            RawConfig {
                id: None,
                ..base(d)
            },
            "id",
        ),
        (
            RawConfig {
                id: Some(0),
                ..base(d)
            },
            "id",
        ),
        (
            RawConfig {
                listen: Some("localhost".into()),
                ..base(d)
            },
            "listen",
        ),
        (
            RawConfig {
                initial_members: Some(vec!["1=a:1,1=b:2".into()]),
                ..base(d)
            },
            "initial_members",
        ),
        (
            RawConfig {
                initial_members: Some(vec!["1=nohostport".into()]),
                ..base(d)
            },
            "initial_members",
        ),
        (
            RawConfig {
                initial_members: Some(vec!["2=h:1,3=h:2".into()]),
                ..base(d)
            },
            "initial_members",
        ),
        (
            RawConfig {
                initial_members: Some(vec!["x=h:1".into()]),
                ..base(d)
            },
            "initial_members",
        ),
        (
            RawConfig {
                data_dir: Some("/proc/mhad-cannot-write-here".into()),
                ..base(d)
            },
            "data_dir",
        ),
        (
            RawConfig {
                data_dir: None,
                ..base(d)
            },
            "data_dir",
        ),
        (
            RawConfig {
                log_format: Some("xml".into()),
                ..base(d)
            },
            "log_format",
        ),
        (
            RawConfig {
                raft: Some(RawRaftConfig {
                    // Not above the heartbeat (40 ms by default).
                    election_timeout_min_ms: Some(40),
                    ..Default::default()
                }),
                ..base(d)
            },
            "raft.election_timeout_min_ms",
        ),
        (
            RawConfig {
                raft: Some(RawRaftConfig {
                    // Below the minimum (125 ms by default).
                    election_timeout_max_ms: Some(100),
                    ..Default::default()
                }),
                ..base(d)
            },
            "raft.election_timeout_max_ms",
        ),
        (
            RawConfig {
                listen: Some("0.0.0.0:7101".into()),
                initial_members: None,
                ..base(d)
            },
            "advertise",
        ),
        (
            RawConfig {
                tls: None,
                ..base(d)
            },
            "tls",
        ),
        (
            RawConfig {
                admin_advertise: Some("h:7201".into()),
                ..base(d)
            },
            "admin_advertise",
        ),
        (
            RawConfig {
                metrics_listen: Some("localhost:9104".into()),
                ..base(d)
            },
            "metrics_listen",
        ),
        (
            RawConfig {
                metrics_listen: Some("127.0.0.1:7101".into()),
                ..base(d)
            },
            "metrics_listen",
        ),
        (
            RawConfig {
                admin_listen: Some("127.0.0.1:7101".into()),
                ..base(d)
            },
            "admin_listen",
        ),
        (
            RawConfig {
                admin_listen: Some("0.0.0.0:7201".into()),
                ..base(d)
            },
            "admin_advertise",
        ),
        (
            RawConfig {
                insecure: Some(true),
                ..base(d)
            },
            "insecure",
        ),
        (
            RawConfig {
                tls: Some(RawTlsConfig {
                    key: None,
                    ..base(d).tls.unwrap()
                }),
                ..base(d)
            },
            "tls.key",
        ),
    ];
    for (raw, key) in cases {
        assert_eq!(err_key(raw), key);
    }
}

/// Flags override the file; the file's unset keys stay.
#[test]
fn merge_layers() {
    let file =
        RawConfig::from_toml("id = 1\nzone = \"a\"\n[raft]\nheartbeat_interval_ms = 50\n").unwrap();
    let flags = RawConfig {
        zone: Some("b".into()),
        ..Default::default()
    };
    let m = file.merge(flags);
    assert_eq!(m.zone.as_deref(), Some("b"));
    assert_eq!(m.id, Some(1));
    assert_eq!(m.raft.unwrap().heartbeat_interval_ms, Some(50));
}

/// Broken TOML, unknown keys and wrong types are reported with the offending key or line.
#[test]
fn bad_toml_is_explained() {
    let e = RawConfig::from_toml("id = 1\nbogus_key = 3\n").unwrap_err();
    assert!(e.contains("bogus_key"), "{e}");
    let e = RawConfig::from_toml("id = \"one\"\n").unwrap_err();
    assert!(e.contains("id") && e.contains("invalid type"), "{e}");
    let e = RawConfig::from_toml("[raft]\nheartbeat_interval_ms = \"fast\"\n").unwrap_err();
    assert!(e.contains("heartbeat_interval_ms"), "{e}");
    let e = RawConfig::from_toml("id = = 1").unwrap_err();
    assert!(e.contains("line 1"), "{e}");
}

/// Leader-only tasks kept through a lapse of the lease are gone, a supervisor tick (50 ms) to
/// spare, before a new leader can exist (max + min after the last acknowledgement).
#[test]
fn tasks_kept_through_a_lapse_end_before_a_new_leader_can_exist() {
    for (min, max) in [(125, 250), (40, 100), (1000, 2000), (150, 160)] {
        let t = RaftTimings {
            election_timeout_min: Duration::from_millis(min),
            election_timeout_max: Duration::from_millis(max),
            ..RaftTimings::default()
        };
        let gone = t.leader_lease() + t.lapse_keep() + Duration::from_millis(50);
        assert!(
            gone < t.election_timeout_min + t.election_timeout_max,
            "{min}/{max}: {gone:?}"
        );
    }
    assert_eq!(
        RaftTimings::default().lapse_keep(),
        Duration::from_millis(150)
    );
}
