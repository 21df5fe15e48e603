//! After a failover: the lab's passwords appear nowhere a manager writes or shows, and its
//! files are private (issue #13's "what is already good and must stay", now checked).

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use super::*;

/// Every regular file under `dir`, recursively.
fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            files_under(&p, out);
        } else if p.is_file() {
            out.push(p);
        }
    }
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

impl Lab {
    /// The passwords of the lab (the mha and repl users'), as configured.
    fn passwords(&self) -> Vec<String> {
        ["mha", "repl"]
            .iter()
            .map(|n| {
                std::fs::read_to_string(format!("{}/secrets/{n}.pw", lab_dir()))
                    .unwrap()
                    .trim()
                    .to_string()
            })
            .collect()
    }

    /// No configured password in: every manager's log and store files, what mhactl shows
    /// (status, groups, history, plus `extra` views such as the audit trail), and the files
    /// the failover left in the DB hosts' work directory. Data directories 0700, store files
    /// 0600.
    pub fn assert_no_secrets_anywhere(&self, extra: &[&[&str]]) {
        let secrets = self.passwords();
        let mut places: Vec<(String, Vec<u8>)> = Vec::new();
        let mut views: Vec<&[&str]> = vec![
            &["cluster", "status", "--json"],
            &["group", "list", "--json"],
            &["failover", "history", "--group", "lab", "--json"],
            &["failover", "history", "--group", "lab"],
        ];
        views.extend_from_slice(extra);
        for v in views {
            let out = self.mhactl(v);
            assert!(
                out.status.success(),
                "{v:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            places.push((format!("mhactl {}", v.join(" ")), out.stdout));
        }
        let mut store_files = 0;
        for m in 1..=3 {
            let dir = PathBuf::from(format!("{}/m{m}", lab_dir()));
            let log = dir.join("mhad.log");
            places.push((
                log.display().to_string(),
                std::fs::read(&log).unwrap_or_default(),
            ));
            let data = dir.join("data");
            assert_eq!(mode(&data), 0o700, "{}", data.display());
            let mut files = Vec::new();
            files_under(&data, &mut files);
            for f in files {
                assert_eq!(mode(&f), 0o600, "{}", f.display());
                store_files += 1;
                places.push((
                    f.display().to_string(),
                    std::fs::read(&f).unwrap_or_default(),
                ));
            }
        }
        assert!(store_files >= 3, "no store files found");
        // The DB hosts share this machine's file system (the lab isolates networks only).
        let mut left = Vec::new();
        files_under(Path::new("/var/tmp"), &mut left);
        for f in left.into_iter().filter(|f| {
            f.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("mha-raft-"))
        }) {
            places.push((
                f.display().to_string(),
                std::fs::read(&f).unwrap_or_default(),
            ));
        }
        for (what, bytes) in &places {
            for s in &secrets {
                assert!(
                    !bytes.windows(s.len()).any(|w| w == s.as_bytes()),
                    "a configured password appears in {what}"
                );
            }
        }
    }
}
