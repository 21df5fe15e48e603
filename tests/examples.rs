//! The example configurations in deploy/examples/ parse and validate (with data_dir pointed at a
//! temp dir), and form one consistent three-zone cluster; the example group file names only
//! hooks, credentials and an SSH profile that every zone's config defines.

use std::collections::BTreeSet;
use std::path::Path;

use mha_raft::config::{NodeConfig, RawConfig};

#[test]
fn three_zone_examples_validate() {
    let tmp = tempfile::tempdir().unwrap();
    let mut ids = BTreeSet::new();
    let mut zones = BTreeSet::new();
    let mut members = BTreeSet::new();
    let group = mha_raft::group_file::parse(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/examples/group-app1.toml"),
        )
        .unwrap(),
    )
    .unwrap_or_else(|e| panic!("group-app1.toml: {e:?}"));
    for z in ["a", "b", "c"] {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join(format!("deploy/examples/mhad-zone-{z}.toml"));
        let raw = RawConfig::from_file(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let over = RawConfig {
            data_dir: Some(tmp.path().join(z)),
            ..Default::default()
        };
        let cfg = NodeConfig::try_from(raw.merge(over))
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(cfg.initial_members.get(&cfg.id), Some(&cfg.advertise));
        mha_raft::runtime::credentials::check_names(&cfg.local, &group)
            .unwrap_or_else(|e| panic!("{}: {e:?}", path.display()));
        let mut uncommented = group.clone();
        uncommented.failover.master_ip_failover_script = Some("master_ip_failover".into());
        mha_raft::runtime::credentials::check_names(&cfg.local, &uncommented)
            .unwrap_or_else(|e| panic!("{}: {e:?}", path.display()));
        ids.insert(cfg.id);
        zones.insert(cfg.zone.clone());
        members.insert(format!("{:?}", cfg.initial_members));
    }
    assert_eq!(ids.len(), 3);
    assert_eq!(zones.len(), 3);
    assert_eq!(
        members.len(),
        1,
        "all three must list the same initial members"
    );
}
