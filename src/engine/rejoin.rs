//! Bringing an old master back as a replica, sans-I/O: what it may not have. An old master
//! that holds a transaction the current master lacks (written after its replicas lost it, never
//! salvaged) would either break replication or silently keep a row no other server has; it is
//! refused and the transactions are named, never discarded.

use std::collections::BTreeMap;

/// MariaDB: the transactions `old` holds that `new` lacks, per (domain, server id), as
/// `domain-server-first..domain-server-last (n transactions)`. Both maps give, per (domain,
/// server), the highest sequence number held (engine::gtid::mariadb_last_seq of
/// gtid_binlog_state, plus gtid_slave_pos for the new master): one server's sequence numbers
/// only grow within a domain, so everything past the new master's last is missing there.
pub fn mariadb_errant(
    old: &BTreeMap<(u32, u32), u64>,
    new: &BTreeMap<(u32, u32), u64>,
) -> Vec<String> {
    old.iter()
        .filter_map(|(&(d, s), &last)| {
            let have = new.get(&(d, s)).copied().unwrap_or(0);
            (last > have).then(|| {
                let first = have + 1;
                let n = last - have;
                if n == 1 {
                    format!("{d}-{s}-{last} (1 transaction)")
                } else {
                    format!("{d}-{s}-{first}..{d}-{s}-{last} ({n} transactions)")
                }
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
    /// replicated it all and went on: nothing errant. One that holds 0-1-101..103 the new
    /// master never got: those three are named. A domain the new master never saw counts
    /// whole.
    #[test]
    fn what_the_old_master_holds_beyond_the_new_one() {
        let new = seqs(&["0-1-100,0-2-140", "0-1-100"]);
        assert!(mariadb_errant(&seqs(&["0-1-100"]), &new).is_empty());
        assert!(mariadb_errant(&seqs(&["0-1-90,0-2-120"]), &new).is_empty());
        assert_eq!(
            mariadb_errant(&seqs(&["0-1-103"]), &new),
            vec!["0-1-101..0-1-103 (3 transactions)".to_string()]
        );
        assert_eq!(
            mariadb_errant(&seqs(&["0-1-101,5-1-1"]), &new),
            vec![
                "0-1-101 (1 transaction)".to_string(),
                "5-1-1 (1 transaction)".to_string()
            ]
        );
    }
}
