//! Confirmation of destructive commands: `--yes`, or a "y" typed on a terminal. A script (no
//! terminal on standard input) must say `--yes`; it is never asked, so it never hangs.

use std::io::{BufRead, IsTerminal, Write};

/// How a destructive command may go on.
#[derive(Debug, PartialEq, Eq)]
pub enum Confirmation {
    /// --yes, or the operator typed y.
    Given,
    /// The operator answered anything else on the terminal.
    Declined,
    /// No terminal to ask on, and no --yes.
    NeedsYes,
}

/// `--yes` confirms; otherwise the operator is asked `question` on the terminal (standard
/// error), when there is one.
pub fn confirm(yes: bool, question: &str) -> Confirmation {
    if yes {
        return Confirmation::Given;
    }
    if !std::io::stdin().is_terminal() {
        return Confirmation::NeedsYes;
    }
    let mut err = std::io::stderr().lock();
    let _ = write!(err, "{question} [y/N] ");
    let _ = err.flush();
    let mut answer = String::new();
    if std::io::stdin().lock().read_line(&mut answer).is_err() {
        return Confirmation::Declined;
    }
    answer_is_yes(&answer)
}

fn answer_is_yes(answer: &str) -> Confirmation {
    match answer.trim().to_ascii_lowercase().as_str() {
        "y" | "yes" => Confirmation::Given,
        _ => Confirmation::Declined,
    }
}

/// The exit code and message for a confirmation not given (`None` when it was): declined → 1,
/// no terminal and no --yes → 2 (a usage error: the script must say --yes).
pub fn refused(c: Confirmation, what: &str) -> Option<i32> {
    match c {
        Confirmation::Given => None,
        Confirmation::Declined => {
            eprintln!("{what}: not confirmed, nothing changed");
            Some(super::exit::ERROR)
        }
        Confirmation::NeedsYes => {
            eprintln!(
                "error: {what} needs confirmation: add --yes (asked only on a terminal); \
                 nothing changed"
            );
            Some(super::exit::USAGE)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yes_confirms_without_asking() {
        assert_eq!(confirm(true, "never shown"), Confirmation::Given);
    }

    #[test]
    fn answers() {
        assert_eq!(answer_is_yes("y\n"), Confirmation::Given);
        assert_eq!(answer_is_yes(" YES \n"), Confirmation::Given);
        assert_eq!(answer_is_yes("\n"), Confirmation::Declined);
        assert_eq!(answer_is_yes("no\n"), Confirmation::Declined);
    }

    #[test]
    fn exit_codes() {
        assert_eq!(refused(Confirmation::Given, "x"), None);
        assert_eq!(refused(Confirmation::Declined, "x"), Some(1));
        assert_eq!(refused(Confirmation::NeedsYes, "x"), Some(2));
    }
}
