//! The shell the manager runs on database hosts, in one place: reading a dead master's binlog
//! in one round trip, replaying a binlog file with the host's own `mysqlbinlog | mysql`, and
//! reading a relay-log index. Every value is quoted; nothing secret goes into a command line
//! (a password travels on stdin).

use super::shell_quote;

/// The first 4096 bytes of a binlog file: enough for its magic and format description event.
pub const BINLOG_HEAD: usize = 4096;

/// Finds binlog `file` in the first of `dirs` (comma-separated) that has it and prints: the
/// directory, its listing (one line), the file's size, then as binary the file's head
/// ([`BINLOG_HEAD`] bytes at most) and the bytes from `pos` to its end. Exit 3 with a message
/// on stderr when no directory has it.
pub fn read_binlog(dirs: &str, file: &str, pos: u64) -> String {
    let dirs: Vec<String> = dirs
        .split(',')
        .map(|d| shell_quote(d.trim()))
        .filter(|d| d != "''")
        .collect();
    let f = shell_quote(file);
    format!(
        "for d in {dirs}; do if [ -f \"$d\"/{f} ]; then p=\"$d\"/{f}; \
         echo \"$d\"; ls -1 \"$d\" | tr '\\n' ' '; echo; stat -c %s \"$p\"; \
         dd if=\"$p\" iflag=count_bytes count={BINLOG_HEAD} bs={BINLOG_HEAD} status=none; \
         dd if=\"$p\" iflag=skip_bytes skip={pos} bs=65536 status=none; exit 0; fi; done; \
         echo 'not in master_binlog_dir' >&2; exit 3",
        dirs = dirs.join(" "),
    )
}

/// What [`read_binlog`] printed.
#[derive(Debug, PartialEq, Eq)]
pub struct BinlogRead<'a> {
    pub dir: String,
    /// The directory's file names.
    pub listing: Vec<String>,
    pub head: &'a [u8],
    /// The bytes from the position on.
    pub rest: &'a [u8],
}

/// Splits [`read_binlog`]'s output; None when it is not what the command prints.
pub fn parse_binlog_read(out: &[u8]) -> Option<BinlogRead<'_>> {
    let mut rest = out;
    let mut lines = Vec::new();
    for _ in 0..3 {
        let nl = rest.iter().position(|b| *b == b'\n')?;
        lines.push(String::from_utf8_lossy(&rest[..nl]).into_owned());
        rest = &rest[nl + 1..];
    }
    let size: usize = lines[2].trim().parse().ok()?;
    let head_len = size.min(BINLOG_HEAD).min(rest.len());
    let (head, rest) = rest.split_at(head_len);
    Some(BinlogRead {
        dir: lines[0].clone(),
        listing: lines[1].split_whitespace().map(str::to_string).collect(),
        head,
        rest,
    })
}

/// A client program: from `bindir` (MHA's client_bindir) or the PATH.
fn client_tool(bindir: Option<&str>, tool: &str) -> String {
    match bindir {
        Some(d) => shell_quote(&format!("{}/{tool}", d.trim_end_matches('/'))),
        None => tool.to_string(),
    }
}

/// Where and as whom a replay connects.
#[derive(Clone, Copy, Debug)]
pub struct ReplayTarget<'a> {
    pub host: &'a str,
    pub port: u16,
    pub user: &'a str,
    /// MHA's client_bindir (PATH when None).
    pub bindir: Option<&'a str>,
}

/// Reads stdin — the password's line (into MYSQL_PWD, never argv), then the binlog file — keeps
/// the file at `path` (written as `path.mha-tmp`, then renamed) and replays it with
/// `mysqlbinlog | mysql --binary-mode`.
pub fn replay_binlog(t: &ReplayTarget<'_>, path: &str) -> String {
    let tmp = format!("{path}.mha-tmp");
    format!(
        "IFS= read -r MYSQL_PWD; export MYSQL_PWD; set -o pipefail 2>/dev/null; \
         cat > {t} && mv -f {t} {f} && \
         {} --no-defaults {f} | {} --no-defaults --binary-mode --max-allowed-packet=1073741824 \
         -h {} -P {} -u {}",
        client_tool(t.bindir, "mysqlbinlog"),
        client_tool(t.bindir, "mysql"),
        shell_quote(t.host),
        t.port,
        shell_quote(t.user),
        t = shell_quote(&tmp),
        f = shell_quote(path),
    )
}

/// Prints a file (a relay-log index).
pub fn cat(path: &str) -> String {
    format!("cat {}", shell_quote(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values with quotes and spaces stay single arguments; the password is not in the line.
    #[test]
    fn commands_quote_every_value() {
        let c = read_binlog("/var/lib/mysql, /var/log/it's", "mysql-bin.000002", 120);
        assert!(
            c.contains("for d in '/var/lib/mysql' '/var/log/it'\\''s'; do"),
            "{c}"
        );
        assert!(c.contains("skip=120 "), "{c}");
        let r = replay_binlog(
            &ReplayTarget {
                host: "10.0.0.2",
                port: 3307,
                user: "mha",
                bindir: Some("/opt/my sql/bin/"),
            },
            "/var/tmp/x.binlog",
        );
        assert!(r.starts_with("IFS= read -r MYSQL_PWD;"), "{r}");
        assert!(
            r.contains("'/opt/my sql/bin/mysqlbinlog' --no-defaults '/var/tmp/x.binlog'"),
            "{r}"
        );
        assert!(r.contains("-h '10.0.0.2' -P 3307 -u 'mha'"), "{r}");
        assert!(
            r.contains("cat > '/var/tmp/x.binlog.mha-tmp' && mv -f"),
            "{r}"
        );
        assert_eq!(cat("/a b/relay.index"), "cat '/a b/relay.index'");
    }

    /// The output splits into its text lines, the head and the rest.
    #[test]
    fn binlog_read_output_splits() {
        let mut out = b"/var/lib/mysql\nmysql-bin.000001 mysql-bin.000002 \n6\n".to_vec();
        out.extend_from_slice(b"HEADERrest-of-file");
        let r = parse_binlog_read(&out).unwrap();
        assert_eq!(r.dir, "/var/lib/mysql");
        assert_eq!(r.listing, ["mysql-bin.000001", "mysql-bin.000002"]);
        assert_eq!(r.head, b"HEADER");
        assert_eq!(r.rest, b"rest-of-file");
        assert_eq!(parse_binlog_read(b"only\ntwo\n"), None);
        assert_eq!(parse_binlog_read(b"d\nl\nnot-a-size\n"), None);
    }
}
