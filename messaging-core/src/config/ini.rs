//! The oslo.config INI dialect: a port of `oslo_config/iniparser.py` and the
//! assignment and `$var` substitution rules of `oslo_config/cfg.py`.
//!
//! Differences from common INI readers (and why this is not the `rust-ini` crate,
//! which disagrees on several of them):
//! * a line starting with a space or tab continues the previous value (joined with a
//!   newline); a blank line ends the value; an indented line with no value to continue
//!   is an error;
//! * `#` and `;` start a comment only at the beginning of a line (`a = b # c` is the
//!   value `b # c`);
//! * the separator is the first `=` or `:` on the line;
//! * a value fully enclosed in matching single or double quotes loses them, nothing
//!   else is unquoted or unescaped;
//! * section names are lowercased, except `DEFAULT`; repeated sections merge;
//! * an assignment before any section, a line without `=` or `:`, an empty key and an
//!   unterminated `[section` are errors;
//! * `$name`, `${name}` and `${section.name}` are replaced by the value of that option
//!   (same section first, then `[DEFAULT]`), `$$` and `\$` by a literal `$`. References
//!   to options this file does not set are left as written.
//!
//! Error messages give line numbers but never echo the line: it may hold a password.

use super::de::{Document, Entry, IniValue, Origin, normalize_section};

/// One `key = value` assignment, continuation lines joined.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Assignment {
    pub(crate) section: String,
    pub(crate) key: String,
    pub(crate) value: String,
    pub(crate) line: usize,
}

/// Parses the text into assignments in file order; sections are normalised.
pub(crate) fn parse(text: &str) -> Result<Vec<Assignment>, String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut out = Vec::new();
    let mut section: Option<String> = None;
    // The assignment being read: (key, value lines, line number).
    let mut pending: Option<(String, Vec<String>, usize)> = None;

    let flush = |pending: &mut Option<(String, Vec<String>, usize)>,
                 section: &Option<String>,
                 out: &mut Vec<Assignment>|
     -> Result<(), String> {
        if let Some((key, lines, line)) = pending.take() {
            let Some(section) = section else {
                return Err(format!(
                    "line {line}: option {key:?} appears before any [section]"
                ));
            };
            out.push(Assignment {
                section: section.clone(),
                key,
                value: lines.join("\n"),
                line,
            });
        }
        Ok(())
    };

    for (index, raw) in text.lines().enumerate() {
        let lineno = index + 1;
        let line = raw.trim_end();
        if line.is_empty() {
            flush(&mut pending, &section, &mut out)?;
            continue;
        }
        if line.starts_with([' ', '\t']) {
            match pending.as_mut() {
                Some((_, lines, _)) => lines.push(line.trim_start().to_string()),
                None => return Err(format!("line {lineno}: unexpected continuation line")),
            }
            continue;
        }
        flush(&mut pending, &section, &mut out)?;
        if line.starts_with('[') {
            if !line.ends_with(']') {
                return Err(format!(
                    "line {lineno}: invalid section header (must end with ']')"
                ));
            }
            if line.len() <= 2 {
                return Err(format!("line {lineno}: empty section name"));
            }
            section = Some(normalize_section(&line[1..line.len() - 1]));
        } else if line.starts_with(['#', ';']) {
            // comment
        } else {
            let (key, value) = split_key_value(line)
                .ok_or_else(|| format!("line {lineno}: no ':' or '=' found in assignment"))?;
            if key.is_empty() {
                return Err(format!("line {lineno}: key cannot be empty"));
            }
            pending = Some((key.to_string(), vec![value.to_string()], lineno));
        }
    }
    flush(&mut pending, &section, &mut out)?;
    Ok(out)
}

/// `iniparser._split_key_value`: the first of `=` and `:` separates; the value is
/// stripped and loses one pair of enclosing matching quotes.
fn split_key_value(line: &str) -> Option<(&str, &str)> {
    let at = match (line.find('='), line.find(':')) {
        (None, None) => return None,
        (Some(e), None) => e,
        (None, Some(c)) => c,
        (Some(e), Some(c)) => e.min(c),
    };
    let key = line[..at].trim();
    let mut value = line[at + 1..].trim();
    if let (Some(first), Some(last)) = (value.chars().next(), value.chars().last())
        && (first == '"' || first == '\'')
        && first == last
    {
        value = if value.len() >= 2 {
            &value[1..value.len() - 1]
        } else {
            ""
        };
    }
    Some((key, value))
}

/// How deep `$a` -> `$b` -> ... references may go before it is called a loop.
const MAX_SUBSTITUTION_DEPTH: usize = 16;

/// Looks up raw values for substitution: the last occurrence of `(section, key)`.
struct Raw<'a> {
    assignments: &'a [Assignment],
}

impl Raw<'_> {
    fn get(&self, section: &str, key: &str) -> Option<&str> {
        self.assignments
            .iter()
            .rev()
            .find(|a| a.section == section && a.key == key)
            .map(|a| a.value.as_str())
    }

    /// Python's `string.Template.safe_substitute` with oslo.config's lookup.
    fn substitute(&self, value: &str, section: &str, depth: usize) -> Result<String, ()> {
        if !value.contains('$') {
            return Ok(value.to_string());
        }
        if depth > MAX_SUBSTITUTION_DEPTH {
            return Err(());
        }
        let value = value.replace("\\$", "$$");
        let mut out = String::with_capacity(value.len());
        let mut rest = value.as_str();
        while let Some(pos) = rest.find('$') {
            out.push_str(&rest[..pos]);
            let after = &rest[pos + 1..];
            if let Some(tail) = after.strip_prefix('$') {
                out.push('$');
                rest = tail;
                continue;
            }
            let (name, tail) = if let Some(inner) = after.strip_prefix('{') {
                match inner.find('}') {
                    Some(end) if is_identifier(&inner[..end]) => (&inner[..end], &inner[end + 1..]),
                    _ => ("", after),
                }
            } else {
                let len = identifier_len(after);
                (&after[..len], &after[len..])
            };
            if name.is_empty() {
                out.push('$');
                rest = after;
                continue;
            }
            match self.lookup(name, section, depth)? {
                Some(resolved) => out.push_str(&resolved),
                None => out.push_str(&rest[pos..rest.len() - tail.len()]),
            }
            rest = tail;
        }
        out.push_str(rest);
        Ok(out)
    }

    /// `StrSubWrapper.__getitem__`: `group.opt` names a section, a bare name is looked
    /// up in the option's own section, then as a `[DEFAULT]` option.
    fn lookup(&self, name: &str, section: &str, depth: usize) -> Result<Option<String>, ()> {
        let mut candidates = Vec::new();
        if let Some((group, option)) = name.split_once('.') {
            candidates.push((normalize_section(group), option));
        } else {
            candidates.push((section.to_string(), name));
        }
        candidates.push(("DEFAULT".to_string(), name));
        for (group, option) in candidates {
            if let Some(raw) = self.get(&group, option) {
                return self.substitute(raw, &group, depth + 1).map(Some);
            }
        }
        Ok(None)
    }
}

/// Length of the identifier at the start of `s` (`[_a-zA-Z][._a-zA-Z0-9]*`), 0 if none.
fn identifier_len(s: &str) -> usize {
    let mut chars = s.char_indices();
    match chars.next() {
        Some((_, c)) if c == '_' || c.is_ascii_alphabetic() => {}
        _ => return 0,
    }
    chars
        .find(|(_, c)| !(*c == '_' || *c == '.' || c.is_ascii_alphanumeric()))
        .map(|(i, _)| i)
        .unwrap_or(s.len())
}

fn is_identifier(s: &str) -> bool {
    !s.is_empty() && identifier_len(s) == s.len()
}

/// Parses `text` and builds the document of the sections `wanted` says yes to, values
/// substituted, repeated keys gathered in file order.
pub(crate) fn document(
    text: &str,
    wanted: impl Fn(&str) -> bool,
) -> Result<Document<IniValue>, String> {
    let assignments = parse(text)?;
    let raw = Raw {
        assignments: &assignments,
    };
    let mut doc: Document<IniValue> = Document::new();
    for a in &assignments {
        if !wanted(&a.section) {
            continue;
        }
        let (value, error) = match raw.substitute(&a.value, &a.section, 0) {
            Ok(value) => (value, None),
            Err(()) => (
                String::new(),
                Some("$-substitution loops or nests too deeply".to_string()),
            ),
        };
        let section = doc.section_mut(&a.section);
        match section.entries.iter_mut().find(|e| e.key == a.key) {
            Some(entry) => {
                entry.value.values.push(value);
                entry.value.error = entry.value.error.take().or(error);
                entry.origin.line = Some(a.line);
            }
            None => section.entries.push(Entry {
                key: a.key.clone(),
                origin: Origin {
                    section: a.section.clone(),
                    key: a.key.clone(),
                    line: Some(a.line),
                },
                value: IniValue {
                    values: vec![value],
                    error,
                },
            }),
        }
    }
    Ok(doc)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(text: &str) -> Vec<(String, String, String)> {
        parse(text)
            .unwrap()
            .into_iter()
            .map(|a| (a.section, a.key, a.value))
            .collect()
    }

    fn t(s: &str, k: &str, v: &str) -> (String, String, String) {
        (s.into(), k.into(), v.into())
    }

    #[test]
    fn parses_oslo_dialect() {
        let text = "\u{feff}# comment\n; other comment\n[DEFAULT]\na = 1\nb: two words\n\
                    c=x=y\nd : e=f\n[Oslo_Messaging_Rabbit]\nq = \"quoted\"\nr = 'x' y '\nr2 = \"x'\n\
                    s = v # not a comment\nl = one,\n   two\n\n[DEFAULT]\na = 2\n";
        assert_eq!(
            kv(text),
            vec![
                t("DEFAULT", "a", "1"),
                t("DEFAULT", "b", "two words"),
                t("DEFAULT", "c", "x=y"),
                t("DEFAULT", "d", "e=f"),
                t("oslo_messaging_rabbit", "q", "quoted"),
                t("oslo_messaging_rabbit", "r", "x' y "),
                t("oslo_messaging_rabbit", "r2", "\"x'"),
                t("oslo_messaging_rabbit", "s", "v # not a comment"),
                t("oslo_messaging_rabbit", "l", "one,\ntwo"),
                t("DEFAULT", "a", "2"),
            ]
        );
    }

    #[test]
    fn syntax_errors_name_the_line_but_not_its_text() {
        for (text, want) in [
            ("[DEFAULT]\npassword secret\n", "line 2: no ':' or '='"),
            (
                "a = 1\n",
                "line 1: option \"a\" appears before any [section]",
            ),
            ("[DEFAULT]\n = secret\n", "line 2: unexpected continuation"),
            ("[DEFAULT]\n= secret\n", "line 2: key cannot be empty"),
            ("[DEFAULT\n", "line 1: invalid section header"),
            ("[]\n", "line 1: empty section name"),
        ] {
            let err = parse(text).unwrap_err();
            assert!(err.starts_with(want), "{text:?}: {err}");
            assert!(!err.contains("secret"), "{err}");
        }
    }

    #[test]
    fn substitution() {
        let text = "[DEFAULT]\nhost = h1\nuser = nova\nurl = rabbit://$user:pa$$w\\$rd@${host}:5672/\n\
                    loop = $loop\nkeep = $unknown-${nope} $ 5$\n[oslo_messaging_rabbit]\n\
                    hostname = $host.example\nprocessname = ${DEFAULT.user}-api\nhost = local\n\
                    ssl_ca_file = /etc/$host/ca\n";
        let sections = ["DEFAULT", "oslo_messaging_rabbit"];
        let doc = document(text, |s| sections.contains(&s)).unwrap();
        let get = |s: &str, k: &str| {
            doc.sections
                .iter()
                .find(|x| x.name == s)
                .and_then(|x| x.entries.iter().find(|e| e.key == k))
                .map(|e| e.value.values.join("|"))
                .unwrap()
        };
        let broken = &doc.sections[0]
            .entries
            .iter()
            .find(|e| e.key == "loop")
            .unwrap();
        assert_eq!(
            broken.value.error.as_deref(),
            Some("$-substitution loops or nests too deeply")
        );
        assert_eq!(get("DEFAULT", "url"), "rabbit://nova:pa$w$rd@h1:5672/");
        assert_eq!(get("DEFAULT", "keep"), "$unknown-${nope} $ 5$");
        // `$host.example` is the name `host.example`: section `host`, unknown, kept.
        assert_eq!(get("oslo_messaging_rabbit", "hostname"), "$host.example");
        assert_eq!(get("oslo_messaging_rabbit", "processname"), "nova-api");
        // A bare name looks in the option's own section first.
        assert_eq!(get("oslo_messaging_rabbit", "ssl_ca_file"), "/etc/local/ca");
    }
}
