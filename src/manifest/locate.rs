//! Source locations of YAML nodes by key path, for messages about valid YAML that breaks a rule.
//!
//! The typed deserializer knows where a type error is; a rule checked afterwards (an unknown
//! endpoint id, a duplicate configuration id) only knows the key path. This module re-reads the
//! event stream once and answers "where is `matrix[2].configurations[5].id`?".

use granit_parser::{Event, Parser};

/// One step of a key path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg {
    /// A mapping key.
    Key(String),
    /// A sequence index.
    Index(usize),
}

/// A key path, e.g. `matrix[2].configurations[5].id`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyPath(pub Vec<Seg>);

impl KeyPath {
    /// The empty (root) path.
    pub fn root() -> Self {
        Self(Vec::new())
    }

    /// This path with a key appended.
    pub fn key(&self, k: &str) -> Self {
        let mut v = self.0.clone();
        v.push(Seg::Key(k.to_owned()));
        Self(v)
    }

    /// This path with an index appended.
    pub fn index(&self, i: usize) -> Self {
        let mut v = self.0.clone();
        v.push(Seg::Index(i));
        Self(v)
    }

    /// Each item of `list`, the value of key `k` below this path, with its path (`k[i]`).
    pub fn items<'a, T>(
        &self,
        k: &str,
        list: &'a [T],
    ) -> impl Iterator<Item = (Self, &'a T)> + use<'a, T> {
        let base = self.key(k);
        list.iter()
            .enumerate()
            .map(move |(i, x)| (base.index(i), x))
    }
}

impl std::fmt::Display for KeyPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0.is_empty() {
            return f.write_str("(document root)");
        }
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                Seg::Key(k) if i == 0 => write!(f, "{k}")?,
                Seg::Key(k) => write!(f, ".{k}")?,
                Seg::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

/// A 1-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pos {
    /// Line, from 1.
    pub line: u32,
    /// Column, from 1.
    pub column: u32,
}

enum Node {
    Scalar(Pos),
    Seq(Pos, Vec<Node>),
    Map(Pos, Vec<(String, Pos, Node)>),
}

impl Node {
    fn pos(&self) -> Pos {
        match self {
            Node::Scalar(p) | Node::Seq(p, _) | Node::Map(p, _) => *p,
        }
    }
}

fn pos_of(span: &granit_parser::Span) -> Pos {
    Pos {
        line: u32::try_from(span.start.line()).unwrap_or(u32::MAX),
        column: u32::try_from(span.start.col() + 1).unwrap_or(u32::MAX),
    }
}

struct Reader<'a> {
    parser: Parser<'a, granit_parser::StrInput<'a>>,
    depth: usize,
}

impl<'a> Reader<'a> {
    fn next(&mut self) -> Option<(Event<'a>, Pos)> {
        loop {
            match self.parser.next()? {
                Ok((ev, span)) => {
                    let p = pos_of(&span);
                    match ev {
                        Event::StreamStart | Event::DocumentStart(..) => continue,
                        _ => return Some((ev, p)),
                    }
                }
                Err(_) => return None,
            }
        }
    }

    /// Reads the items of a collection, one level deeper, up to the event `is_end` accepts:
    /// `item` gets the first event of each item and its position, and reads the rest.
    fn items(
        &mut self,
        is_end: fn(&Event<'a>) -> bool,
        mut item: impl FnMut(&mut Self, Event<'a>, Pos) -> Option<()>,
    ) -> Option<()> {
        self.depth += 1;
        loop {
            let (ev, p) = self.next()?;
            if is_end(&ev) {
                break;
            }
            item(self, ev, p)?;
        }
        self.depth -= 1;
        Some(())
    }

    /// Reads one node whose first event is `first`.
    fn node(&mut self, first: Event<'a>, pos: Pos) -> Option<Node> {
        // Bound recursion: locations are a convenience, never a crash.
        if self.depth > 200 {
            return None;
        }
        match first {
            Event::SequenceStart(..) => {
                let mut items = Vec::new();
                self.items(
                    |ev| matches!(ev, Event::SequenceEnd),
                    |r, ev, p| {
                        items.push(r.node(ev, p)?);
                        Some(())
                    },
                )?;
                Some(Node::Seq(pos, items))
            }
            Event::MappingStart(..) => {
                let mut entries = Vec::new();
                self.items(
                    |ev| matches!(ev, Event::MappingEnd),
                    |r, ev, kp| {
                        let key = match &ev {
                            Event::Scalar(s, ..) => s.to_string(),
                            _ => String::new(),
                        };
                        // Complex keys are read and ignored.
                        let _ = r.node(ev, kp)?;
                        let (vev, vp) = r.next()?;
                        let value = r.node(vev, vp)?;
                        entries.push((key, kp, value));
                        Some(())
                    },
                )?;
                Some(Node::Map(pos, entries))
            }
            _ => Some(Node::Scalar(pos)),
        }
    }
}

/// Where the node at `path` starts in `source`; for a mapping entry, `key_pos` selects the
/// key instead of the value. Falls back to the deepest existing ancestor.
pub fn locate(source: &str, path: &KeyPath, key_pos: bool) -> Option<Pos> {
    let mut reader = Reader {
        parser: Parser::new_from_str(source),
        depth: 0,
    };
    let (first, p) = reader.next()?;
    let root = reader.node(first, p)?;
    let mut node = &root;
    let mut best = root.pos();
    for (i, seg) in path.0.iter().enumerate() {
        let last = i + 1 == path.0.len();
        match (seg, node) {
            (Seg::Key(k), Node::Map(_, entries)) => {
                let Some((_, kp, v)) = entries.iter().find(|(key, _, _)| key == k) else {
                    return Some(best);
                };
                best = if last && key_pos { *kp } else { v.pos() };
                node = v;
            }
            (Seg::Index(n), Node::Seq(_, items)) => {
                let Some(v) = items.get(*n) else {
                    return Some(best);
                };
                best = v.pos();
                node = v;
            }
            _ => return Some(best),
        }
    }
    Some(best)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_nested_keys_and_indices() {
        let src = "a: 1\nb:\n  - x: 1\n  - x: 2\n    y: [3, 4]\n";
        let p = KeyPath::root().key("b").index(1).key("y");
        assert_eq!(locate(src, &p, false), Some(Pos { line: 5, column: 8 }));
        assert_eq!(locate(src, &p, true), Some(Pos { line: 5, column: 5 }));
        assert_eq!(p.to_string(), "b[1].y");
    }

    #[test]
    fn missing_path_falls_back_to_ancestor() {
        let src = "a: 1\nb:\n  c: 2\n";
        let p = KeyPath::root().key("b").key("zz");
        assert_eq!(locate(src, &p, false), Some(Pos { line: 3, column: 3 }));
    }

    #[test]
    fn broken_yaml_gives_none_not_panic() {
        assert_eq!(locate("a: [", &KeyPath::root().key("a"), false), None);
    }
}
