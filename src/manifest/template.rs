//! Configuration id templates (`gpu{num_gpu}_temp{temperature:p}`), read once into pieces
//! that the rules check and the planner fills in.

/// One piece of an id template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Piece<'a> {
    /// Literal text.
    Text(&'a str),
    /// A `{name}` placeholder; `p_style` for `{name:p}` (`0.6` written as `0p6`).
    Field {
        /// The placeholder name (an axis, or `id`).
        name: &'a str,
        /// True for the `:p` form.
        p_style: bool,
    },
    /// A `{` without its `}`: the rest of the template, from the brace on.
    Unclosed(&'a str),
}

/// The pieces of template `t`, in order.
pub fn pieces(t: &str) -> Vec<Piece<'_>> {
    let mut out = Vec::new();
    let mut rest = t;
    while let Some(open) = rest.find('{') {
        if open > 0 {
            out.push(Piece::Text(&rest[..open]));
        }
        let Some(close) = rest[open..].find('}') else {
            out.push(Piece::Unclosed(&rest[open..]));
            return out;
        };
        let inner = &rest[open + 1..open + close];
        out.push(match inner.strip_suffix(":p") {
            Some(name) => Piece::Field {
                name,
                p_style: true,
            },
            None => Piece::Field {
                name: inner,
                p_style: false,
            },
        });
        rest = &rest[open + close + 1..];
    }
    if !rest.is_empty() {
        out.push(Piece::Text(rest));
    }
    out
}

/// Fills the `{name}` placeholders of a command argument with `value(name)`; `{{` and `}}`
/// are literal braces. Fails with the first name `value` does not know, or an unclosed `{`.
pub fn fill_braces(arg: &str, value: impl Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(arg.len());
    let mut rest = arg;
    while let Some(i) = rest.find(['{', '}']) {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        if let Some(t) = tail.strip_prefix("{{") {
            out.push('{');
            rest = t;
        } else if let Some(t) = tail.strip_prefix("}}") {
            out.push('}');
            rest = t;
        } else if let Some(t) = tail.strip_prefix('}') {
            out.push('}');
            rest = t;
        } else {
            let Some(close) = tail.find('}') else {
                return Err(format!(
                    "`{tail}` (a `{{` without its `}}`; write `{{{{` for a brace)"
                ));
            };
            let name = &tail[1..close];
            out.push_str(&value(name).ok_or_else(|| format!("{{{name}}}"))?);
            rest = &tail[close + 1..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_arguments_fill_and_escape() {
        let v = |n: &str| (n == "url").then(|| "http://h:1".to_string());
        assert_eq!(
            fill_braces("--url={url}", v).as_deref(),
            Ok("--url=http://h:1")
        );
        assert_eq!(
            fill_braces("{{x}} {url}", v).as_deref(),
            Ok("{x} http://h:1")
        );
        assert_eq!(fill_braces("{nope}", v), Err("{nope}".to_string()));
        assert!(fill_braces("a{url", v).is_err());
        assert_eq!(fill_braces("plain", v).as_deref(), Ok("plain"));
    }

    #[test]
    fn templates_split_into_text_fields_and_an_unclosed_tail() {
        assert_eq!(
            pieces("gpu{num_gpu}_t{temperature:p}"),
            [
                Piece::Text("gpu"),
                Piece::Field {
                    name: "num_gpu",
                    p_style: false
                },
                Piece::Text("_t"),
                Piece::Field {
                    name: "temperature",
                    p_style: true
                },
            ]
        );
        assert_eq!(pieces("a{b"), [Piece::Text("a"), Piece::Unclosed("{b")]);
        assert!(pieces("").is_empty());
    }
}
