//! What the failover tests share: the application user and table, the failover history as
//! mhactl reports it, runs, steps, VIP holder, convergence of the survivors.

use std::collections::BTreeSet;

use super::*;

pub const APP_PW: &str = "app-lab-pass";

impl Lab {
    /// The application user and table, created on the master and replicated.
    pub fn app_setup(&self) {
        self.sql(
            "db1",
            &format!(
                "CREATE USER 'app'@'10.77.0.%' IDENTIFIED BY '{APP_PW}'; \
                 GRANT SELECT, INSERT ON mha_lab.* TO 'app'@'10.77.0.%'; \
                 CREATE TABLE mha_lab.acked (id INT PRIMARY KEY, at TIMESTAMP(3) DEFAULT CURRENT_TIMESTAMP(3))"
            ),
        );
    }

    pub fn history(&self) -> Value {
        let out = self.mhactl(&["failover", "history", "--group", "lab", "--json"]);
        assert!(
            out.status.success(),
            "history: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// The history, or Null while there is no leader to answer (a leader change in progress).
    pub fn try_history(&self) -> Value {
        let out = self.mhactl(&["failover", "history", "--group", "lab", "--json"]);
        if !out.status.success() {
            return Value::Null;
        }
        serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
    }

    /// Waits until run `id` is no longer running; returns it.
    pub fn wait_run_end(&self, id: u64) -> Value {
        wait_for(
            &format!("failover run {id} to end"),
            Duration::from_secs(120),
            || {
                let h = self.try_history();
                match h["runs"]
                    .as_array()
                    .and_then(|a| a.iter().find(|r| r["id"] == id))
                {
                    Some(r) if r["state"]["state"] != "running" => Ok(r.clone()),
                    _ => Err(format!("{h:#}")),
                }
            },
        )
    }

    /// One host's entry of `lab status --json` (processes and their states).
    pub fn host_status(&self, host: &str) -> Value {
        let status = self.lab(&["status", "--json"]);
        let v: Value = serde_json::from_slice(&status.stdout).unwrap();
        v["hosts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|h| h["name"] == host)
            .cloned()
            .unwrap_or_else(|| panic!("no host {host} in {v:#}"))
    }

    pub fn vip_holder(&self) -> String {
        String::from_utf8_lossy(&self.lab(&["vip-holder"]).stdout)
            .trim()
            .to_string()
    }

    pub fn status_code(&self) -> i32 {
        self.mhactl(&["check", "status", "--group", "lab"])
            .status
            .code()
            .unwrap_or(-1)
    }

    /// Run `run`'s work files (salvaged binlog copies, diffs, replayed files) as `host` sees
    /// them in the lab group's remote_workdir (/var/tmp: the lab's hosts share one filesystem,
    /// each file names its server): `(mode, file name)`, e.g. `(0o600, "mha-raft-lab-run1-diff-db3.binlog")`.
    pub fn work_files(&self, host: &str, run: u64) -> Vec<(u32, String)> {
        let out = self.lab(&[
            "exec",
            host,
            "--",
            "sh",
            "-c",
            &format!("stat -c '%a %n' /var/tmp/mha-raft-lab-run{run}-* 2>/dev/null; true"),
        ]);
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| {
                let (mode, path) = l.split_once(' ')?;
                let name = path.rsplit_once('/').map(|(_, n)| n).unwrap_or(path);
                Some((u32::from_str_radix(mode, 8).ok()?, name.to_string()))
            })
            .collect()
    }

    /// Removes work files an earlier lab left in /var/tmp (run ids start at 1 in every lab).
    pub fn clear_work_files(&self) {
        self.lab(&[
            "exec",
            "db1",
            "--",
            "sh",
            "-c",
            "rm -f /var/tmp/mha-raft-lab-run*",
        ]);
    }

    /// Waits until every listed server has the same rows and checksum of the writer's table.
    pub fn wait_converged(&self, hosts: &[&str]) -> BTreeSet<i64> {
        wait_for(&format!("servers {hosts:?} to converge"), WAIT, || {
            let sums: Vec<Option<String>> = hosts
                .iter()
                .map(|h| self.try_sql(h, "CHECKSUM TABLE mha_lab.acked"))
                .collect();
            if sums.iter().all(|s| s.is_some()) && sums.windows(2).all(|w| w[0] == w[1]) {
                Ok(())
            } else {
                Err(format!("checksums {sums:?}"))
            }
        });
        self.sql(hosts[0], "SELECT id FROM mha_lab.acked")
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    }
}

pub fn step<'a>(run: &'a Value, name: &str) -> &'a Value {
    run["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no step {name} in {run:#}"))
}

pub fn check_no_loss(acked: &[i64], present: &BTreeSet<i64>) {
    let lost: Vec<&i64> = acked.iter().filter(|i| !present.contains(i)).collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged writes lost: {lost:?}",
        lost.len()
    );
}
