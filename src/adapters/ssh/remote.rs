//! The shell the manager runs on database hosts, in one place: reading a dead master's binlog
//! in one round trip, writing a work file, replaying a binlog file with the host's own
//! `mysqlbinlog | mysql`, reading a relay-log index and removing a run's work files. Every value
//! is quoted; nothing secret goes into a command line (a password travels on stdin).
//!
//! Work files (salvaged binlogs, diffs: row data) are created private: `umask 077`, and the
//! temporary file is created exclusively (`set -C`, after removing a leftover) so a file or
//! symlink planted under the predictable name in a shared directory such as /var/tmp is never
//! written through; the rename then puts the 0600 file in place.

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
         echo \"$d\"; for n in \"$d\"/*; do printf '%s ' \"${{n##*/}}\"; done; echo; \
         stat -c %s \"$p\"; \
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

/// The temporary name a work file is written under before it is renamed into place.
pub fn tmp_path(path: &str) -> String {
    format!("{path}.mha-tmp")
}

/// Stdin to `path`, mode 0600: written to [`tmp_path`] (created exclusively under `umask 077`),
/// then renamed.
fn write_private(path: &str) -> String {
    format!(
        "rm -f {t} && set -C && cat > {t} && mv -f {t} {p}",
        t = shell_quote(&tmp_path(path)),
        p = shell_quote(path)
    )
}

/// Writes stdin to the file `path`, mode 0600, atomically (temporary file, then rename).
pub fn write_file(path: &str) -> String {
    format!("umask 077 && {}", write_private(path))
}

/// Reads stdin — the password's line (into MYSQL_PWD, never argv), then the binlog file — keeps
/// the file at `path` (mode 0600, written as in [`write_file`]) and replays it with
/// `mysqlbinlog | mysql --binary-mode`.
pub fn replay_binlog(t: &ReplayTarget<'_>, path: &str) -> String {
    format!(
        "umask 077; IFS= read -r MYSQL_PWD; export MYSQL_PWD; set -o pipefail 2>/dev/null; \
         {} && \
         {} --no-defaults {f} | {} --no-defaults --binary-mode --max-allowed-packet=1073741824 \
         -h {} -P {} -u {}",
        write_private(path),
        client_tool(t.bindir, "mysqlbinlog"),
        client_tool(t.bindir, "mysql"),
        shell_quote(t.host),
        t.port,
        shell_quote(t.user),
        f = shell_quote(path),
    )
}

/// Removes files (a run's work files); a file that is not there is no error.
pub fn remove_files(paths: &[String]) -> String {
    let quoted: Vec<String> = paths.iter().map(|p| shell_quote(p)).collect();
    format!("rm -f -- {}", quoted.join(" "))
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
        assert!(r.starts_with("umask 077; IFS= read -r MYSQL_PWD;"), "{r}");
        assert!(
            r.contains("'/opt/my sql/bin/mysqlbinlog' --no-defaults '/var/tmp/x.binlog'"),
            "{r}"
        );
        assert!(r.contains("-h '10.0.0.2' -P 3307 -u 'mha'"), "{r}");
        assert!(
            r.contains(
                "rm -f '/var/tmp/x.binlog.mha-tmp' && set -C && cat > '/var/tmp/x.binlog.mha-tmp' \
                 && mv -f '/var/tmp/x.binlog.mha-tmp' '/var/tmp/x.binlog' && "
            ),
            "{r}"
        );
        assert_eq!(cat("/a b/relay.index"), "cat '/a b/relay.index'");
    }

    /// A work file is created 0600: umask 077 before anything is created, a leftover temporary
    /// file removed, the new one created exclusively (never written through a planted file or
    /// symlink), then renamed into place. The exact text.
    #[test]
    fn work_files_are_written_private() {
        assert_eq!(
            write_file("/var/tmp/mha-raft-g-run3-diff-db2.binlog"),
            "umask 077 && rm -f '/var/tmp/mha-raft-g-run3-diff-db2.binlog.mha-tmp' && set -C && \
             cat > '/var/tmp/mha-raft-g-run3-diff-db2.binlog.mha-tmp' && \
             mv -f '/var/tmp/mha-raft-g-run3-diff-db2.binlog.mha-tmp' \
             '/var/tmp/mha-raft-g-run3-diff-db2.binlog'"
        );
        let r = replay_binlog(
            &ReplayTarget {
                host: "db2",
                port: 3306,
                user: "mha",
                bindir: None,
            },
            "/w/f",
        );
        assert_eq!(
            r,
            "umask 077; IFS= read -r MYSQL_PWD; export MYSQL_PWD; set -o pipefail 2>/dev/null; \
             rm -f '/w/f.mha-tmp' && set -C && cat > '/w/f.mha-tmp' && mv -f '/w/f.mha-tmp' '/w/f' \
             && mysqlbinlog --no-defaults '/w/f' | mysql --no-defaults --binary-mode \
             --max-allowed-packet=1073741824 -h 'db2' -P 3306 -u 'mha'"
        );
    }

    /// Hostile paths stay single, literal arguments: quotes, `$(…)`, backquotes, `;`, spaces,
    /// a newline, a glob and a leading dash (after `--`) are never interpreted.
    #[test]
    fn hostile_paths_are_quoted() {
        let hostile = [
            "/var/tmp/a'b".to_string(),
            "/var/tmp/$(reboot)`id`;rm -rf /".to_string(),
            "-rf".to_string(),
            "/var/tmp/x\ny *".to_string(),
        ];
        assert_eq!(
            remove_files(&hostile),
            "rm -f -- '/var/tmp/a'\\''b' '/var/tmp/$(reboot)`id`;rm -rf /' '-rf' '/var/tmp/x\ny *'"
        );
        assert_eq!(
            write_file("/t/it's $(x)"),
            "umask 077 && rm -f '/t/it'\\''s $(x).mha-tmp' && set -C && \
             cat > '/t/it'\\''s $(x).mha-tmp' && mv -f '/t/it'\\''s $(x).mha-tmp' '/t/it'\\''s $(x)'"
        );
    }

    /// The commands really behave so, run by the local shell in a temporary directory: the
    /// file is 0600 even under a permissive umask and over an older 0644 file; a symlink planted
    /// under the temporary name is not written through; removal takes hostile names literally.
    #[test]
    fn commands_behave_in_a_real_shell() {
        use std::os::unix::fs::PermissionsExt;
        use std::process::{Command, Stdio};
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display().to_string();
        let sh = |cmd: &str, input: &[u8]| {
            use std::io::Write;
            let mut c = Command::new("sh")
                .arg("-c")
                .arg(format!("umask 022; {cmd}"))
                .current_dir(dir.path())
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            c.stdin.take().unwrap().write_all(input).unwrap();
            c.wait().unwrap().success()
        };
        let mode = |p: &str| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let f = format!("{d}/it's $(touch pwned) `touch pwned` f.binlog");
        std::fs::write(&f, b"old").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(sh(&write_file(&f), b"rows"));
        assert_eq!(std::fs::read(&f).unwrap(), b"rows");
        assert_eq!(mode(&f), 0o600);
        assert!(!std::path::Path::new(&format!("{d}/pwned")).exists());
        // A symlink planted as the temporary file: removed, never followed.
        let victim = format!("{d}/victim");
        std::fs::write(&victim, b"keep").unwrap();
        std::os::unix::fs::symlink(&victim, tmp_path(&f)).unwrap();
        assert!(sh(&write_file(&f), b"new rows"));
        assert_eq!(std::fs::read(&victim).unwrap(), b"keep");
        assert_eq!(std::fs::read(&f).unwrap(), b"new rows");
        assert_eq!(mode(&f), 0o600);
        // Removal: the file and a missing one; a name with a leading dash is a name.
        let dash = format!("{d}/-rf");
        std::fs::write(&dash, b"x").unwrap();
        assert!(sh(
            &remove_files(&[f.clone(), tmp_path(&f), dash.clone()]),
            b""
        ));
        assert!(!std::path::Path::new(&f).exists() && !std::path::Path::new(&dash).exists());
        assert!(std::path::Path::new(&victim).exists());
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
