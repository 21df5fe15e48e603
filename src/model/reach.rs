//! What one manager reaches of a group's servers from its own zone: the facts the leader picks
//! the manager that acts a failover's steps from.

use std::collections::BTreeSet;

/// One manager's view of a group's servers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReachView {
    pub manager: u64,
    /// Servers whose mysqld answered.
    pub mysql: BTreeSet<String>,
    /// Servers whose host answered over SSH.
    pub ssh: BTreeSet<String>,
}

impl ReachView {
    pub fn new<'a>(
        manager: u64,
        mysql: impl IntoIterator<Item = &'a str>,
        ssh: impl IntoIterator<Item = &'a str>,
    ) -> ReachView {
        ReachView {
            manager,
            mysql: mysql.into_iter().map(str::to_string).collect(),
            ssh: ssh.into_iter().map(str::to_string).collect(),
        }
    }
}
