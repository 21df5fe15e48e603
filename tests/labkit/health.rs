//! What the detection tests share: the group's health and verdicts as mhactl reports them, the
//! Raft leader's zone, a group with its own `[ping]` settings.

use super::*;

impl Lab {
    /// The group's health (`group list --json`): state, round, verdict history.
    pub fn health(&self) -> Value {
        self.group_json()["health"].clone()
    }

    /// The zone (`m1`, `m2`, …) of the current Raft leader.
    pub fn leader_zone(&self) -> String {
        let out = self.mhactl(&["cluster", "status", "--json"]);
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        format!("m{}", v["leader"]["id"].as_u64().expect("leader"))
    }

    /// Waits until the group's health satisfies `cond`; returns it.
    pub fn wait_health(&self, what: &str, cond: impl Fn(&Value) -> bool) -> Value {
        wait_for(what, WAIT, || {
            let out = self.mhactl(&["group", "list", "--json"]);
            let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
            let h = v[0]["health"].clone();
            if out.status.success() && cond(&h) {
                Ok(h)
            } else {
                Err(format!("{h} {}", String::from_utf8_lossy(&out.stderr)))
            }
        })
    }

    /// The committed verdicts of one kind (`dead`, `unreachable_but_alive`).
    pub fn verdicts(&self, kind: &str) -> Vec<Value> {
        self.health()["verdicts"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|v| v["kind"] == kind)
            .collect()
    }

    /// Adds the lab's group with `ping` (a `[ping]` table) appended to its file.
    pub fn add_group_with_ping(&self, ping: &str) {
        self.add_group_edited(|text| {
            text.replace(
                "vip_interface = \"eth0\"\n",
                &format!("vip_interface = \"eth0\"\n{ping}\n"),
            )
        });
    }
}
