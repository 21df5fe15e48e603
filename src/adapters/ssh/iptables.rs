//! iptables on a DB host, as the failover uses it: rules inserted without checking first (one
//! process less on the failover's path; a rule inserted twice is harmless) and deleted copy by
//! copy until none is left.

/// `iptables` bounded: `-w` alone waits for the xtables lock without limit, and Docker,
/// kube-proxy or fail2ban may hold it.
pub(super) const IPTABLES: &str = "timeout 0.5 iptables -w";

/// Shell that inserts `rule` first in its chain and echoes `word`; `none` where iptables is
/// missing or refuses it (not root, no such target): the caller goes without; `unclear` when
/// the insert was cut off by its time bound (it may have been committed first).
pub(super) fn insert_rule(rule: &str, word: &str) -> String {
    format!(
        "if command -v iptables >/dev/null 2>&1; then \
           {IPTABLES} -I {rule} 2>/dev/null; \
           case $? in 0) echo {word} ;; 124) echo unclear ;; *) echo none ;; esac; \
         else echo none; fi"
    )
}

/// Shell that deletes every copy of `rule` (`what` names it in the error), when iptables
/// exists. It fails when a copy may still be there: the last `-D` timed out (124, `timeout`)
/// or met the xtables lock (4) three times, or the copies never ran out (something adds the
/// rule back). Any other exit (1: no such rule; an iptables that cannot work here, where no
/// rule can exist either) passes.
pub(super) fn drop_rule(rule: &str, what: &str) -> String {
    format!(
        "if command -v iptables >/dev/null 2>&1; then \
           d=1; n=0; t=0; \
           while [ $n -lt 64 ]; do n=$((n+1)); {IPTABLES} -D {rule} 2>/dev/null; d=$?; \
             case $d in 0) ;; 124|4) t=$((t+1)); [ $t -lt 3 ] || break ;; *) break ;; esac; \
           done; \
           case $d in 0|124|4) \
             echo \"iptables -D of {what} failed (exit $d)\" >&2; false ;; \
           esac; \
         fi"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULE: &str = "INPUT -d 10.0.0.100/32 -p tcp -j REJECT --reject-with tcp-reset";

    #[test]
    fn commands_parse() {
        super::super::shell::assert_parses(&[
            insert_rule(RULE, "done"),
            drop_rule(RULE, "the rule"),
        ]);
    }

    /// The deletion's verdict: no such rule (1), or an iptables that cannot work here (2,
    /// 127), passes; a `-D` that keeps timing out (124) or meeting the lock (4), or copies that
    /// never run out, fail with the code on stderr. `timeout` and `iptables` are shell
    /// functions here (no files executed: nothing for a parallel fork to hold open).
    #[test]
    fn rule_deletion_fails_unless_the_rule_is_gone() {
        // (what each -D answers in turn, the last one repeated; passes)
        let cases: [(&[u32], bool); 6] = [
            (&[1], true),
            (&[0, 0, 1], true),
            (&[124, 1], true),
            (&[124], false),
            (&[4], false),
            (&[0], false),
        ];
        for (codes, ok) in cases {
            let list: Vec<String> = codes.iter().map(u32::to_string).collect();
            let script = format!(
                "set -- {}; iptables() {{ :; }}; \
                 timeout() {{ c=$1; [ $# -gt 0 ] && shift; [ $# -gt 0 ] && c=$1; \
                   if [ \"$LEFT\" ]; then set -- $LEFT; c=$1; shift; LEFT=\"$*\"; \
                   [ \"$LEFT\" ] || LEFT=; LAST=$c; else c=$LAST; fi; return $c; }}; \
                 LEFT=\"$*\"; LAST=1; {}",
                list.join(" "),
                drop_rule(RULE, "the rule")
            );
            let out = std::process::Command::new("sh")
                .args(["-c", &script])
                .output()
                .unwrap();
            assert_eq!(
                out.status.success(),
                ok,
                "{codes:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            if !ok {
                let err = String::from_utf8_lossy(&out.stderr);
                assert!(err.contains("the rule failed (exit"), "{err}");
            }
        }
    }

    /// What the insert says: done, `none` without iptables or when iptables refuses, and
    /// `unclear` when its time bound cut it off. `timeout` and `iptables` are shell functions
    /// here, as above.
    #[test]
    fn insert_says_what_happened() {
        let without = format!("PATH=/nonexistent; {}", insert_rule(RULE, "done"));
        for (script, want) in [
            (without, "none"),
            (
                format!(
                    "iptables() {{ :; }}; timeout() {{ return 0; }}; {}",
                    insert_rule(RULE, "done")
                ),
                "done",
            ),
            (
                format!(
                    "iptables() {{ :; }}; timeout() {{ return 4; }}; {}",
                    insert_rule(RULE, "done")
                ),
                "none",
            ),
            (
                format!(
                    "iptables() {{ :; }}; timeout() {{ return 124; }}; {}",
                    insert_rule(RULE, "done")
                ),
                "unclear",
            ),
        ] {
            let out = std::process::Command::new("/bin/sh")
                .args(["-c", &script])
                .output()
                .unwrap();
            assert!(out.status.success());
            assert_eq!(
                String::from_utf8_lossy(&out.stdout).trim(),
                want,
                "{script}"
            );
        }
    }
}
