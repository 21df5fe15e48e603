//! GTID positions, pure: the set every survivor must reach after a failover is the union of
//! what any surviving replica received or executed, so nothing a replica already has is given
//! up. MariaDB positions are one `domain-server-seq` per domain (the highest seq wins);
//! MySQL sets are `uuid:interval[:interval]` lists (intervals are merged).

use std::collections::BTreeMap;

/// A GTID position or set that cannot be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum GtidError {
    #[error("malformed MariaDB GTID {0:?}")]
    MariaDb(String),
    #[error("malformed MySQL GTID set entry {0:?}")]
    MySqlEntry(String),
    #[error("malformed MySQL GTID interval {interval:?} in {entry:?}")]
    MySqlInterval { interval: String, entry: String },
}

/// Merges MariaDB GTID positions (`0-1-57,1-3-9`): per domain, the entry with the highest
/// sequence number. Empty inputs are ignored; malformed entries are reported.
pub fn merge_mariadb<'a>(
    positions: impl IntoIterator<Item = &'a str>,
) -> Result<String, GtidError> {
    let mut best: BTreeMap<u32, (u32, u64)> = BTreeMap::new();
    for pos in positions {
        for g in pos.split(',').map(str::trim).filter(|g| !g.is_empty()) {
            let (d, s, n) = parse_mariadb(g)?;
            match best.get(&d) {
                Some((_, seq)) if *seq >= n => {}
                _ => {
                    best.insert(d, (s, n));
                }
            }
        }
    }
    Ok(best
        .iter()
        .map(|(d, (s, n))| format!("{d}-{s}-{n}"))
        .collect::<Vec<_>>()
        .join(","))
}

/// Per MariaDB (domain, server id), the highest sequence number in `positions` (e.g.
/// gtid_binlog_state, which keeps one entry per domain and server, and gtid_slave_pos): a
/// transaction of that server in that domain with a sequence number up to it is there, since
/// one server's sequence numbers only grow within a domain.
pub fn mariadb_last_seq<'a>(
    positions: impl IntoIterator<Item = &'a str>,
) -> Result<BTreeMap<(u32, u32), u64>, GtidError> {
    let mut max: BTreeMap<(u32, u32), u64> = BTreeMap::new();
    for pos in positions {
        for g in pos.split(',').map(str::trim).filter(|g| !g.is_empty()) {
            let (d, s, n) = parse_mariadb(g)?;
            let e = max.entry((d, s)).or_insert(0);
            *e = (*e).max(n);
        }
    }
    Ok(max)
}

/// Whether the MySQL GTID set `set` contains `uuid:gno`.
pub fn mysql_contains(set: &str, uuid: &str, gno: u64) -> bool {
    let one = format!("{uuid}:{gno}");
    match (merge_mysql([set, one.as_str()]), merge_mysql([set])) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

fn parse_mariadb(g: &str) -> Result<(u32, u32, u64), GtidError> {
    let bad = || GtidError::MariaDb(g.to_string());
    let mut it = g.split('-');
    let d = it.next().and_then(|x| x.parse().ok()).ok_or_else(bad)?;
    let s = it.next().and_then(|x| x.parse().ok()).ok_or_else(bad)?;
    let n = it.next().and_then(|x| x.parse().ok()).ok_or_else(bad)?;
    if it.next().is_some() {
        return Err(bad());
    }
    Ok((d, s, n))
}

/// Merges MySQL GTID sets (`uuid:1-5:7,uuid2:1-3`, whitespace and newlines allowed): the union
/// of their intervals per source uuid, normalised (sorted, adjacent intervals joined).
pub fn merge_mysql<'a>(sets: impl IntoIterator<Item = &'a str>) -> Result<String, GtidError> {
    let mut by_uuid: BTreeMap<String, Vec<(u64, u64)>> = BTreeMap::new();
    for set in sets {
        let compact: String = set.chars().filter(|c| !c.is_whitespace()).collect();
        for part in compact.split(',').filter(|p| !p.is_empty()) {
            let mut it = part.split(':');
            let uuid = it.next().unwrap_or_default().to_ascii_lowercase();
            if uuid.len() != 36 {
                return Err(GtidError::MySqlEntry(part.to_string()));
            }
            let ivs = by_uuid.entry(uuid).or_default();
            for iv in it {
                let (a, b) = match iv.split_once('-') {
                    Some((a, b)) => (a.parse(), b.parse()),
                    None => (iv.parse(), iv.parse()),
                };
                match (a, b) {
                    (Ok(a), Ok(b)) if a <= b && a > 0 => ivs.push((a, b)),
                    _ => {
                        return Err(GtidError::MySqlInterval {
                            interval: iv.to_string(),
                            entry: part.to_string(),
                        })
                    }
                }
            }
        }
    }
    let mut out = Vec::new();
    for (uuid, mut ivs) in by_uuid {
        if ivs.is_empty() {
            continue;
        }
        ivs.sort();
        let mut merged: Vec<(u64, u64)> = Vec::new();
        for (a, b) in ivs {
            match merged.last_mut() {
                Some(last) if a <= last.1.saturating_add(1) => last.1 = last.1.max(b),
                _ => merged.push((a, b)),
            }
        }
        let text: Vec<String> = merged
            .iter()
            .map(|(a, b)| {
                if a == b {
                    a.to_string()
                } else {
                    format!("{a}-{b}")
                }
            })
            .collect();
        out.push(format!("{uuid}:{}", text.join(":")));
    }
    Ok(out.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mariadb_highest_seq_per_domain() {
        assert_eq!(
            merge_mariadb(["0-1-57", "0-1-60,1-3-9", "", "1-3-4"]).unwrap(),
            "0-1-60,1-3-9"
        );
        // After a failover the domain's newest entry may carry another server id.
        assert_eq!(merge_mariadb(["0-1-60", "0-2-61"]).unwrap(), "0-2-61");
        assert_eq!(merge_mariadb(Vec::<&str>::new()).unwrap(), "");
        assert!(merge_mariadb(["0-1"]).is_err());
        assert!(merge_mariadb(["0-1-x"]).is_err());
    }

    #[test]
    fn mysql_union_of_intervals() {
        let a = "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5";
        let b =
            "3E11FA47-71CA-11E1-9E33-C80AA9429562:4-9:12,\n 4f11fa47-71ca-11e1-9e33-c80aa9429562:1";
        assert_eq!(
            merge_mysql([a, b]).unwrap(),
            "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-9:12,4f11fa47-71ca-11e1-9e33-c80aa9429562:1"
        );
        assert_eq!(
            merge_mysql(["3e11fa47-71ca-11e1-9e33-c80aa9429562:1-3:4-6"]).unwrap(),
            "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-6"
        );
        assert_eq!(merge_mysql([""]).unwrap(), "");
        assert!(merge_mysql(["nonsense:1-2"]).is_err());
        assert!(merge_mysql(["3e11fa47-71ca-11e1-9e33-c80aa9429562:5-2"]).is_err());
    }

    #[test]
    fn what_a_server_has() {
        let m = mariadb_last_seq(["0-1-9,1-2-4,0-3-12", "0-1-7", ""]).unwrap();
        assert_eq!(m[&(0, 1)], 9);
        assert_eq!(m[&(1, 2)], 4);
        // Another server's (errant) transaction does not hide server 1's missing ones.
        assert_eq!(m[&(0, 3)], 12);
        assert!(!m.contains_key(&(0, 2)));
        let set = "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5";
        assert!(mysql_contains(
            set,
            "3e11fa47-71ca-11e1-9e33-c80aa9429562",
            5
        ));
        assert!(!mysql_contains(
            set,
            "3e11fa47-71ca-11e1-9e33-c80aa9429562",
            6
        ));
    }
}
