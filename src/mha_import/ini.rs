//! MHA's configuration files as MHA reads them (Config::Tiny): `[block]` headers, `key=value`
//! lines, whole-line comments starting with `#` or `;`. Keys and values are trimmed; a value in
//! matching double or single quotes loses them (MHA passes such values through a shell, which
//! drops them too). Anything else is an error naming its line.

/// One `[block]` and its settings, in file order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Block {
    pub name: String,
    pub line: usize,
    pub entries: Vec<Entry>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub key: String,
    pub value: String,
    pub line: usize,
}

/// Parses one file's text; `file` names it in errors.
pub fn parse(file: &str, text: &str) -> Result<Vec<Block>, Vec<String>> {
    let mut blocks: Vec<Block> = Vec::new();
    let mut errs = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let line = strip_inline_comment(raw).trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(rest) = line.strip_prefix('[') {
            match rest.strip_suffix(']') {
                Some(name) if !name.trim().is_empty() => blocks.push(Block {
                    name: name.trim().to_string(),
                    line: n,
                    entries: Vec::new(),
                }),
                _ => errs.push(format!("{file}:{n}: a block header is [name]")),
            }
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            errs.push(format!("{file}:{n}: expected key=value or [block]"));
            continue;
        };
        let key = key.trim();
        if key.is_empty() {
            errs.push(format!("{file}:{n}: a setting without a key"));
            continue;
        }
        let Some(block) = blocks.last_mut() else {
            errs.push(format!(
                "{file}:{n}: {key} is outside any block ([server default], [server1], ...)"
            ));
            continue;
        };
        block.entries.push(Entry {
            key: key.to_string(),
            value: unquote(value.trim()).to_string(),
            line: n,
        });
    }
    if errs.is_empty() {
        Ok(blocks)
    } else {
        Err(errs)
    }
}

/// Config::Tiny drops an inline comment: whitespace, `;`, whitespace and the rest of the line.
fn strip_inline_comment(line: &str) -> &str {
    let b = line.as_bytes();
    for i in 0..b.len().saturating_sub(3) {
        if b[i].is_ascii_whitespace() && b[i + 1] == b';' && b[i + 2].is_ascii_whitespace() {
            return &line[..i];
        }
    }
    line
}

fn unquote(v: &str) -> &str {
    for q in ['"', '\''] {
        if v.len() >= 2 && v.starts_with(q) && v.ends_with(q) {
            return &v[1..v.len() - 1];
        }
    }
    v
}

/// Splits a script setting into words the way a shell would for plain words and quotes (MHA
/// runs these through a shell); `None` if it uses anything else a shell would interpret
/// (pipes, variables, redirections), which cannot become an argv.
pub fn words(v: &str) -> Option<Vec<String>> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = v.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' | '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some(x) if x == c => break,
                        Some('$' | '`') if c == '"' => return None,
                        Some(x) => cur.push(x),
                        None => return None,
                    }
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            '|' | '&' | ';' | '<' | '>' | '$' | '`' | '(' | ')' | '\\' | '*' | '?' => return None,
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        out.push(cur);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_blocks_comments_and_quotes() {
        let text = "# MHA\n[server default]\nuser=mha\n  password = 'se cret' \n; x\n\n[server1]\nhostname=db1\nhostname=db1b\n";
        let b = parse("app1.cnf", text).unwrap();
        assert_eq!(b.len(), 2);
        assert_eq!(b[0].name, "server default");
        assert_eq!(b[0].entries[1].key, "password");
        assert_eq!(b[0].entries[1].value, "se cret");
        assert_eq!(b[1].entries.len(), 2);
        assert_eq!(b[1].entries[1].value, "db1b");
        assert_eq!(b[1].line, 7);
    }

    #[test]
    fn inline_comments_go_as_in_config_tiny() {
        let b = parse("a", "[server1]\nhostname=h1 ; the first\npassword=a;b\n").unwrap();
        assert_eq!(b[0].entries[0].value, "h1");
        assert_eq!(b[0].entries[1].value, "a;b");
    }

    #[test]
    fn errors_name_the_line() {
        let errs = parse("a.cnf", "user=x\n[server1]\nnot a setting\n[]\n").unwrap_err();
        assert_eq!(errs.len(), 3, "{errs:?}");
        assert!(errs[0].starts_with("a.cnf:1: user is outside"), "{errs:?}");
        assert!(errs[1].starts_with("a.cnf:3:"), "{errs:?}");
        assert!(errs[2].starts_with("a.cnf:4:"), "{errs:?}");
    }

    #[test]
    fn script_words() {
        assert_eq!(
            words("/usr/bin/masterha_secondary_check -s 'remote dc1' -s dc2").unwrap(),
            [
                "/usr/bin/masterha_secondary_check",
                "-s",
                "remote dc1",
                "-s",
                "dc2"
            ]
        );
        assert_eq!(words("  /x  ").unwrap(), ["/x"]);
        assert_eq!(words("\"\"").unwrap(), [""]);
        assert!(words("/x | tee /tmp/y").is_none());
        assert!(words("/x --user=$USER").is_none());
        assert!(words("/x 'open").is_none());
    }
}
