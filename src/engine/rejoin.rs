//! Bringing an old master back as a replica, sans-I/O: what it may not have. An old master
//! that holds a transaction the current master lacks (written after its replicas lost it, never
//! salvaged) would either break replication or silently keep a row no other server has; it is
//! refused and the transactions are named, never discarded.

use std::collections::BTreeMap;

/// MariaDB: the transactions `old` holds that `new` lacks, per (domain, server id), named by
/// the last of them and where the master stops: `0-1-103 (server 1's in domain 0 after
/// 0-1-100)`. Both maps give, per (domain, server), the highest sequence number held
/// (engine::gtid::mariadb_last_seq of gtid_binlog_state and gtid_slave_pos): one server's
/// sequence numbers only grow within a domain, so everything of that server past the master's
/// last is missing there. (Sequence numbers are the domain's, not the server's: how many
/// transactions lie between is not known from these positions, so no count is claimed.)
pub fn mariadb_errant(
    old: &BTreeMap<(u32, u32), u64>,
    new: &BTreeMap<(u32, u32), u64>,
) -> Vec<String> {
    old.iter()
        .filter_map(|(&(d, s), &last)| {
            let have = new.get(&(d, s)).copied().unwrap_or(0);
            (last > have).then(|| match have {
                0 => format!(
                    "{d}-{s}-{last} (server {s}'s in domain {d}; the master has none of them)"
                ),
                h => format!("{d}-{s}-{last} (server {s}'s in domain {d} after {d}-{s}-{h})"),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::gtid::mariadb_last_seq;

    fn seqs(pos: &[&str]) -> BTreeMap<(u32, u32), u64> {
        mariadb_last_seq(pos.iter().copied()).unwrap()
    }

    /// The old master db1 (server 1) wrote up to 0-1-100; the new master db2 (server 2)
    /// replicated it all and went on: nothing errant. One that holds more of its own than the
    /// new master got is named by its last; a domain the new master never saw, whole.
    #[test]
    fn what_the_old_master_holds_beyond_the_new_one() {
        let new = seqs(&["0-1-100,0-2-140", "0-1-100"]);
        assert!(mariadb_errant(&seqs(&["0-1-100"]), &new).is_empty());
        assert!(mariadb_errant(&seqs(&["0-1-90,0-2-120"]), &new).is_empty());
        assert_eq!(
            mariadb_errant(&seqs(&["0-1-103"]), &new),
            vec!["0-1-103 (server 1's in domain 0 after 0-1-100)".to_string()]
        );
        assert_eq!(
            mariadb_errant(&seqs(&["0-1-101,5-1-1"]), &new),
            vec![
                "0-1-101 (server 1's in domain 0 after 0-1-100)".to_string(),
                "5-1-1 (server 1's in domain 5; the master has none of them)".to_string()
            ]
        );
    }
}
