//! MHA's replication filtering check (check_repl_filter, on by default): a replica promoted with
//! other filtering rules than its peers would silently lose, or apply, a different set of
//! databases and tables. Every replica must have the same `Replicate_*` rules; every server
//! that writes a binlog the same `Binlog_Do_DB` / `Binlog_Ignore_DB`; and where both a binlog
//! and a replication rule name databases, they must be the same list. Pure: the caller reads
//! SHOW SLAVE STATUS and SHOW MASTER STATUS.

use crate::model::{BinlogFilters, ServerInfo};

/// What is wrong with the filtering rules of `master` (None when it is dead: only the
/// replicas are compared) and `replicas`, in MHA's words; empty when they agree.
pub fn problems(
    master: Option<(&str, &ServerInfo)>,
    replicas: &[(&str, &ServerInfo)],
) -> Vec<String> {
    let mut out = Vec::new();
    let described = |name: &str, i: &ServerInfo| describe(name, i);
    let all = || {
        master
            .iter()
            .chain(replicas.iter())
            .map(|(n, i)| described(n, i))
            .collect::<Vec<_>>()
            .join("; ")
    };
    let with_rules = replicas
        .iter()
        .filter_map(|(n, i)| Some((*n, i.replica.as_ref()?)));
    let mut first_repl = None;
    for (name, r) in with_rules {
        match first_repl {
            None => first_repl = Some((name, &r.filters)),
            Some((_, f)) if *f == r.filters => {}
            Some(_) => {
                out.push(format!(
                    "replication filtering check failed on {name}: every replica must have the \
                     same replication filtering rules ({})",
                    all()
                ));
                break;
            }
        }
    }
    let binlogs = master
        .iter()
        .chain(replicas.iter())
        .filter(|(_, i)| i.log_bin)
        .map(|(n, i)| (*n, &i.binlog_filters));
    let mut first_binlog: Option<&BinlogFilters> = None;
    for (name, b) in binlogs {
        match first_binlog {
            None => first_binlog = Some(b),
            Some(f) if f == b => {}
            Some(_) => {
                out.push(format!(
                    "binlog filtering check failed on {name}: every server with log_bin must \
                     have the same binlog-do-db and binlog-ignore-db ({})",
                    all()
                ));
                break;
            }
        }
    }
    if let (Some(b), Some((_, r))) = (first_binlog, first_repl) {
        if !b.do_db.is_empty() && !r.do_db.is_empty() && b.do_db != r.do_db {
            out.push(format!(
                "binlog_do_db ({}) must be the same as the replicas' replicate_do_db ({})",
                b.do_db, r.do_db
            ));
        }
        if !b.ignore_db.is_empty() && !r.ignore_db.is_empty() && b.ignore_db != r.ignore_db {
            out.push(format!(
                "binlog_ignore_db ({}) must be the same as the replicas' replicate_ignore_db ({})",
                b.ignore_db, r.ignore_db
            ));
        }
    }
    out
}

/// `db3: replicate_do_db=app` — only the rules that are set.
fn describe(name: &str, i: &ServerInfo) -> String {
    let mut set = Vec::new();
    let mut add = |k: &str, v: &str| {
        if !v.is_empty() {
            set.push(format!("{k}={v}"));
        }
    };
    if i.log_bin {
        add("binlog_do_db", &i.binlog_filters.do_db);
        add("binlog_ignore_db", &i.binlog_filters.ignore_db);
    }
    if let Some(r) = &i.replica {
        let f = &r.filters;
        add("replicate_do_db", &f.do_db);
        add("replicate_ignore_db", &f.ignore_db);
        add("replicate_do_table", &f.do_table);
        add("replicate_ignore_table", &f.ignore_table);
        add("replicate_wild_do_table", &f.wild_do_table);
        add("replicate_wild_ignore_table", &f.wild_ignore_table);
    }
    if set.is_empty() {
        format!("{name}: none")
    } else {
        format!("{name}: {}", set.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::failover::fixtures::{running_status, server};
    use crate::model::Flavor;

    fn replica(id: u32) -> ServerInfo {
        ServerInfo {
            replica: Some(running_status("10.0.0.1")),
            ..server(Flavor::MariaDb, id)
        }
    }

    #[test]
    fn same_rules_everywhere_pass_and_any_difference_is_named() {
        let m = server(Flavor::MariaDb, 1);
        let (r2, mut r3) = (replica(2), replica(3));
        assert!(problems(Some(("db1", &m)), &[("db2", &r2), ("db3", &r3)]).is_empty());

        r3.replica.as_mut().unwrap().filters.do_db = "app".into();
        let p = problems(Some(("db1", &m)), &[("db2", &r2), ("db3", &r3)]);
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(
            p[0].starts_with("replication filtering check failed on db3")
                && p[0].contains("db3: replicate_do_db=app")
                && p[0].contains("db2: none"),
            "{p:?}"
        );

        // Same replication rules, but the master's binlog filters differ from the replicas'.
        let mut r2 = replica(2);
        r2.replica.as_mut().unwrap().filters.do_db = "app".into();
        let mut m = server(Flavor::MariaDb, 1);
        m.binlog_filters.ignore_db = "scratch".into();
        let p = problems(Some(("db1", &m)), &[("db2", &r2), ("db3", &r3)]);
        assert!(
            p.len() == 1 && p[0].starts_with("binlog filtering check failed on db2"),
            "{p:?}"
        );
        // A replica without log_bin writes no binlog: its (empty) binlog rules do not count.
        let (mut r2, mut r3) = (r2.clone(), r3.clone());
        r2.log_bin = false;
        r3.log_bin = false;
        assert!(problems(Some(("db1", &m)), &[("db2", &r2), ("db3", &r3)]).is_empty());

        // Both a binlog and a replication database list: they must be the same list.
        let mut m = server(Flavor::MariaDb, 1);
        m.binlog_filters.do_db = "app,billing".into();
        let p = problems(Some(("db1", &m)), &[("db2", &r2), ("db3", &r3)]);
        assert!(
            p == vec![
                "binlog_do_db (app,billing) must be the same as the replicas' replicate_do_db (app)"
                    .to_string()
            ],
            "{p:?}"
        );
        // The master dead: the replicas alone.
        assert!(problems(None, &[("db2", &r2), ("db3", &r3)]).is_empty());
    }
}
