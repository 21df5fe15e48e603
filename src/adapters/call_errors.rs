//! Failed MySQL and SSH calls, counted where the calls are made (the adapters) by service,
//! endpoint and kind of failure; the metrics exporter reads them at scrape time
//! (`mha_raft_mysql_errors_total`, `mha_raft_ssh_errors_total`). Endpoints are the group
//! files' servers, so the number of series stays bounded.

use std::collections::BTreeMap;
use std::sync::Mutex;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Service {
    Mysql,
    Ssh,
}

type Key = (Service, String, &'static str);

static COUNTS: Mutex<BTreeMap<Key, u64>> = Mutex::new(BTreeMap::new());

/// Counts one failed call of `service` to `endpoint` (host:port, or the SSH host).
pub fn record(service: Service, endpoint: &str, kind: &'static str) {
    let mut counts = COUNTS.lock().unwrap_or_else(|e| e.into_inner());
    *counts
        .entry((service, endpoint.to_string(), kind))
        .or_default() += 1;
}

/// Every count so far: (service, endpoint, kind, failed calls).
pub fn snapshot() -> Vec<(Service, String, &'static str, u64)> {
    COUNTS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .map(|((s, e, k), n)| (*s, e.clone(), *k, *n))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_service_endpoint_and_kind() {
        let before = |s, e: &str, k| {
            snapshot()
                .into_iter()
                .find(|(s2, e2, k2, _)| *s2 == s && e2 == e && *k2 == k)
                .map_or(0, |x| x.3)
        };
        let b = before(Service::Ssh, "unit-test-host", "timeout");
        record(Service::Ssh, "unit-test-host", "timeout");
        record(Service::Ssh, "unit-test-host", "timeout");
        record(Service::Mysql, "unit-test-host:3306", "connect");
        assert_eq!(before(Service::Ssh, "unit-test-host", "timeout"), b + 2);
        assert!(before(Service::Mysql, "unit-test-host:3306", "connect") >= 1);
    }
}
