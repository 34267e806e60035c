//! `${NAME}` and `${NAME:-default}` in the stack file's strings, as in a shell, so the file reads like
//! the scripts it replaced; the default may itself hold references (`${STACK_DIR:-${ROOT}/.stack}`).
//! `${NAME+N}` adds N to a numeric value (ports in a block: `${BASE+1}`).
//! A reference to a name nobody defines is an error rather than an empty string: a typo in the stack
//! file fails at once instead of starting a service with a broken URL.

/// Replace every `${...}` in `text`, asking `lookup` for each name. A `$` not followed by `{` is kept.
pub fn substitute(
    text: &str,
    lookup: &mut dyn FnMut(&str) -> Result<Option<String>, String>,
) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = closing_brace(after).ok_or_else(|| format!("unclosed `${{` in {text:?}"))?;
        let inner = &after[..end];
        let (name, default) = match inner.find(":-") {
            Some(i) => (&inner[..i], Some(&inner[i + 2..])),
            None => (inner, None),
        };
        let (name, offset) = match name.split_once('+') {
            Some((n, o)) => (
                n,
                Some(
                    o.parse::<i64>()
                        .map_err(|_| format!("bad offset in {text:?}"))?,
                ),
            ),
            None => (name, None),
        };
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!("bad variable name {name:?} in {text:?}"));
        }
        let value = match (lookup(name)?, offset) {
            (Some(v), Some(o)) => {
                let n: i64 = v
                    .trim()
                    .parse()
                    .map_err(|_| format!("${{{name}}} is not a number ({v:?}) in {text:?}"))?;
                Some((n + o).to_string())
            }
            (v, _) => v,
        };
        match (value, default) {
            (Some(v), Some(_)) if !v.is_empty() => out.push_str(&v),
            (Some(v), None) => out.push_str(&v),
            (_, Some(d)) => out.push_str(&substitute(d, lookup)?),
            (None, None) => return Err(format!("unknown variable ${{{name}}} in {text:?}")),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The index of the `}` closing a `${` whose inside starts `s`, nested `${...}` skipped.
fn closing_brace(s: &str) -> Option<usize> {
    let bytes = s.as_bytes();
    let mut depth = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'$' if bytes.get(i + 1) == Some(&b'{') => {
                depth += 1;
                i += 1;
            }
            b'}' if depth == 0 => return Some(i),
            b'}' => depth -= 1,
            _ => {}
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(vars: &[(&str, &str)], text: &str) -> Result<String, String> {
        substitute(text, &mut |n| {
            Ok(vars
                .iter()
                .find(|(k, _)| *k == n)
                .map(|(_, v)| v.to_string()))
        })
    }

    #[test]
    fn names_and_defaults_are_replaced() {
        let vars = [("PORT", "16080"), ("EMPTY", ""), ("ROOT", "/r")];
        assert_eq!(
            with(&vars, "http://127.0.0.1:${PORT}/x").unwrap(),
            "http://127.0.0.1:16080/x"
        );
        assert_eq!(with(&vars, "${MISSING:-7}").unwrap(), "7");
        assert_eq!(
            with(&vars, "${EMPTY:-d}").unwrap(),
            "d",
            "an empty value takes the default, as :- does"
        );
        assert_eq!(with(&vars, "${EMPTY}").unwrap(), "");
        assert_eq!(with(&vars, "${PORT:-1}").unwrap(), "16080");
        assert_eq!(with(&vars, "${DIR:-${ROOT}/.stack}").unwrap(), "/r/.stack");
        assert_eq!(with(&vars, "${NONE:-}").unwrap(), "");
        assert_eq!(with(&vars, "cost $5 {x}").unwrap(), "cost $5 {x}");
        assert_eq!(with(&vars, "${PORT+8}").unwrap(), "16088");
        assert!(
            with(&vars, "${ROOT+1}")
                .unwrap_err()
                .contains("not a number")
        );
    }

    #[test]
    fn unknown_names_and_bad_syntax_are_errors() {
        assert!(
            with(&[], "${NOPE}")
                .unwrap_err()
                .contains("unknown variable ${NOPE}")
        );
        assert!(with(&[], "${OPEN").unwrap_err().contains("unclosed"));
        assert!(
            with(&[], "${a b}")
                .unwrap_err()
                .contains("bad variable name")
        );
    }
}
