//! A lab with several replication groups (`lab up --groups N`): instance K of every DB host on
//! port 3306+K-1, group K named lab, lab2, lab3, … with its own VIP and group file.

use std::collections::BTreeSet;

use super::*;

/// One of the lab's groups, as `lab groups` lists it.
#[derive(Clone, Debug)]
pub struct LabGroup {
    pub k: u32,
    pub name: String,
    pub port: u16,
    pub vip: String,
    pub file: String,
}

impl Lab {
    pub fn groups(&self) -> Vec<LabGroup> {
        let out = self.lab(&["groups"]);
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                LabGroup {
                    k: f[0].parse().unwrap(),
                    name: f[1].into(),
                    port: f[2].parse().unwrap(),
                    vip: f[3].into(),
                    file: f[4].into(),
                }
            })
            .collect()
    }

    /// Every group added (`mhactl group add -f`), with the application user and table.
    pub fn add_groups(&self) -> Vec<LabGroup> {
        let groups = self.groups();
        for g in &groups {
            self.group_add(&g.file);
            self.sql_in(
                "db1",
                g.k,
                &format!(
                    "CREATE USER 'app'@'10.77.0.%' IDENTIFIED BY '{APP_PW}'; \
                     GRANT SELECT, INSERT ON mha_lab.* TO 'app'@'10.77.0.%'; \
                     CREATE TABLE mha_lab.acked (id INT PRIMARY KEY)"
                ),
            );
        }
        groups
    }

    /// SQL as root on instance `k` of `host`; panics when it fails.
    pub fn sql_in(&self, host: &str, k: u32, sql: &str) -> String {
        self.try_sql_in(host, k, sql)
            .unwrap_or_else(|| panic!("SQL on {host} (group {k}) failed: {sql}"))
    }

    pub fn try_sql_in(&self, host: &str, k: u32, sql: &str) -> Option<String> {
        self.try_sql_at(host, &["--group", &k.to_string()], sql)
    }

    /// A group's entry in `group list --json`.
    pub fn group_named(&self, name: &str) -> Value {
        let out = self.mhactl(&["group", "list", "--json"]);
        assert!(out.status.success());
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        v.as_array()
            .and_then(|a| a.iter().find(|g| g["spec"]["name"] == name).cloned())
            .unwrap_or_else(|| panic!("no group {name} in {v:#}"))
    }

    /// A group's runs (`failover history --group`), empty while no leader answers.
    pub fn runs_of(&self, name: &str) -> Vec<Value> {
        let out = self.mhactl(&["failover", "history", "--group", name, "--json"]);
        let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        v["runs"].as_array().cloned().unwrap_or_default()
    }

    /// Waits until the group's latest run has ended; returns it.
    pub fn wait_group_run_end(&self, name: &str) -> Value {
        wait_for(
            &format!("a failover run of {name} to end"),
            Duration::from_secs(120),
            || match self.runs_of(name).last() {
                Some(r) if r["state"]["state"] != "running" => Ok(r.clone()),
                other => Err(format!("{other:?}")),
            },
        )
    }

    pub fn vip_holder_of(&self, k: u32) -> String {
        let out = self.lab(&["vip-holder", "--group", &k.to_string()]);
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Waits until instance `k` of every listed host has the same rows; returns them.
    pub fn wait_converged_in(&self, k: u32, hosts: &[&str]) -> BTreeSet<i64> {
        wait_for(&format!("group {k} on {hosts:?} to converge"), WAIT, || {
            let sums: Vec<Option<String>> = hosts
                .iter()
                .map(|h| self.try_sql_in(h, k, "CHECKSUM TABLE mha_lab.acked"))
                .collect();
            if sums.iter().all(|s| s.is_some()) && sums.windows(2).all(|w| w[0] == w[1]) {
                Ok(())
            } else {
                Err(format!("checksums {sums:?}"))
            }
        });
        self.sql_in(hosts[0], k, "SELECT id FROM mha_lab.acked")
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    }
}
