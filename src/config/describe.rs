//! `mhad --check-config`: the effective configuration (file, then MHAD_* environment, then
//! flags) as a TOML document mhad itself accepts, to read or diff. Hooks, credentials and SSH
//! profiles are listed by name only, as comments: their definitions stay in the operator's file
//! (a copy of this output lacks them).

use toml::{Table, Value};

use super::{LogFormat, NodeConfig, TransportConfig};

impl NodeConfig {
    pub fn describe(&self) -> String {
        let mut t = Table::new();
        let s = |v: &str| Value::String(v.to_string());
        t.insert("id".into(), Value::Integer(self.id as i64));
        t.insert("listen".into(), s(&self.listen.to_string()));
        if let Some(a) = &self.admin {
            t.insert("admin_listen".into(), s(&a.listen.to_string()));
            t.insert("admin_advertise".into(), s(&a.advertise));
        }
        if let Some(m) = self.metrics_listen {
            t.insert("metrics_listen".into(), s(&m.to_string()));
        }
        t.insert("advertise".into(), s(&self.advertise));
        t.insert("zone".into(), s(&self.zone));
        t.insert("data_dir".into(), s(&self.data_dir.display().to_string()));
        t.insert("cluster_name".into(), s(&self.cluster_name));
        if !self.initial_members.is_empty() {
            t.insert(
                "initial_members".into(),
                Value::Array(
                    self.initial_members
                        .iter()
                        .map(|(id, addr)| s(&format!("{id}={addr}")))
                        .collect(),
                ),
            );
        }
        t.insert(
            "log_format".into(),
            s(match self.log_format {
                LogFormat::Text => "text",
                LogFormat::Json => "json",
            }),
        );
        t.insert(
            "log_level".into(),
            s(&self.log_level.to_string().to_ascii_lowercase()),
        );
        match &self.transport {
            TransportConfig::Insecure => {
                t.insert("insecure".into(), Value::Boolean(true));
            }
            TransportConfig::Tls(f) => {
                let mut tls = Table::new();
                tls.insert("ca".into(), s(&f.ca.display().to_string()));
                tls.insert("cert".into(), s(&f.cert.display().to_string()));
                tls.insert("key".into(), s(&f.key.display().to_string()));
                t.insert("tls".into(), Value::Table(tls));
            }
        }
        let ms = |d: std::time::Duration| Value::Integer(d.as_millis() as i64);
        let r = &self.raft;
        let mut raft = Table::new();
        raft.insert("heartbeat_interval_ms".into(), ms(r.heartbeat_interval));
        raft.insert("election_timeout_min_ms".into(), ms(r.election_timeout_min));
        raft.insert("election_timeout_max_ms".into(), ms(r.election_timeout_max));
        raft.insert(
            "snapshot_logs_since_last".into(),
            Value::Integer(r.snapshot_logs_since_last as i64),
        );
        raft.insert(
            "max_logs_to_keep".into(),
            Value::Integer(r.max_logs_to_keep as i64),
        );
        raft.insert("propose_timeout_ms".into(), ms(r.propose_timeout));
        t.insert("raft".into(), Value::Table(raft));
        let names = |m: Vec<&String>| {
            if m.is_empty() {
                "(none)".to_string()
            } else {
                m.into_iter().cloned().collect::<Vec<_>>().join(", ")
            }
        };
        let l = &self.local;
        format!(
            "# mhad's effective configuration (file, then MHAD_* environment, then flags).\n\
             # [hooks]: {}\n# [credentials]: {}\n# [ssh_profiles]: {}\n{}",
            names(l.hooks.keys().collect()),
            names(l.credentials.keys().collect()),
            names(l.ssh_profiles.keys().collect()),
            toml::to_string(&t).expect("a table of strings, numbers and tables")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::super::{NodeConfig, RawConfig};

    /// What --check-config prints is a config mhad accepts, and means the same.
    #[test]
    fn the_description_reads_back_as_the_same_config() {
        let raw = RawConfig::from_toml(
            "id = 2\ndata_dir = \"/var/lib/mhad\"\ninsecure = true\nlisten = \"10.0.0.2:7101\"\n\
             metrics_listen = \"10.0.0.2:9104\"\nzone = \"zone-b\"\n\
             initial_members = [\"1=10.0.0.1:7101\", \"2=10.0.0.2:7101\", \"3=10.0.0.3:7101\"]\n\
             [raft]\nheartbeat_interval_ms = 50\n",
        )
        .unwrap();
        let c = NodeConfig::try_from(raw).unwrap();
        let text = c.describe();
        assert!(
            text.starts_with("# mhad's effective configuration"),
            "{text}"
        );
        let back = NodeConfig::try_from(RawConfig::from_toml(&text).unwrap()).unwrap();
        assert_eq!(
            (
                back.id,
                back.listen,
                back.metrics_listen,
                back.zone.as_str()
            ),
            (c.id, c.listen, c.metrics_listen, "zone-b")
        );
        assert_eq!(back.initial_members, c.initial_members);
        assert_eq!(back.raft, c.raft);
        assert_eq!(back.advertise, c.advertise);
    }
}
