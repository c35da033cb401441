//! `{server.NAME}` placeholders of a managed endpoint's `command` items and `env` values:
//! each is replaced by the configuration's `server` value for NAME, else the endpoint's
//! `managed.defaults` value (see [`ManagedServer::render`]).

use std::collections::BTreeSet;

use super::serving::ServerFlags;
use super::spec::ManagedServer;

const OPEN: &str = "{server.";

/// The NAMEs of the `{server.NAME}` placeholders of `text`, in order (repeats kept). A NAME
/// is what lies between `{server.` and the next `}`: not empty, without `{` or whitespace;
/// anything else is plain text.
pub fn server_names(text: &str) -> Vec<&str> {
    pieces(text)
        .into_iter()
        .filter_map(|p| match p {
            Piece::Name(n) => Some(n),
            Piece::Text(_) => None,
        })
        .collect()
}

enum Piece<'a> {
    Text(&'a str),
    Name(&'a str),
}

fn pieces(text: &str) -> Vec<Piece<'_>> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find(OPEN) {
        let after = &rest[i + OPEN.len()..];
        let name = after
            .find('}')
            .map(|end| &after[..end])
            .filter(|n| !n.is_empty() && !n.contains('{') && !n.contains(char::is_whitespace));
        match name {
            Some(n) => {
                out.push(Piece::Text(&rest[..i]));
                out.push(Piece::Name(n));
                rest = &after[n.len() + 1..];
            }
            None => {
                out.push(Piece::Text(&rest[..i + OPEN.len()]));
                rest = after;
            }
        }
    }
    out.push(Piece::Text(rest));
    out
}

/// `text` with each `{server.NAME}` replaced by `flags`' value for NAME, else `defaults`';
/// `Err(NAME)` for the first placeholder neither sets.
pub fn render_server(
    text: &str,
    flags: &ServerFlags,
    defaults: &ServerFlags,
) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    for p in pieces(text) {
        match p {
            Piece::Text(t) => out.push_str(t),
            Piece::Name(n) => {
                let v = flags.0.get(n).or_else(|| defaults.0.get(n));
                out.push_str(v.ok_or_else(|| n.to_owned())?);
            }
        }
    }
    Ok(out)
}

/// A placeholder without a value: where it is (`command[3]`, `env.OLLAMA_NUM_PARALLEL`) and
/// its NAME.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingServerValue {
    /// `command[i]` or `env.KEY`.
    pub key: String,
    /// The placeholder's NAME.
    pub name: String,
}

impl ManagedServer {
    /// Every `{server.NAME}` NAME of `command` and the `env` values.
    pub fn server_names(&self) -> BTreeSet<String> {
        self.command
            .iter()
            .chain(self.env.values())
            .flat_map(|t| server_names(t))
            .map(str::to_owned)
            .collect()
    }

    /// The placeholders of `command` and the `env` values with where each is: (`command[i]` or
    /// `env.KEY`, NAME).
    pub fn server_placeholders(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for (i, a) in self.command.iter().enumerate() {
            for n in server_names(a) {
                out.push((format!("command[{i}]"), n.to_owned()));
            }
        }
        for (k, v) in &self.env {
            for n in server_names(v) {
                out.push((format!("env.{k}"), n.to_owned()));
            }
        }
        out
    }

    /// These settings with every `{server.NAME}` of `command` and the `env` values replaced
    /// (see [`render_server`]); `${VAR}` and `~/` are left for the server stage to expand.
    pub fn render(&self, flags: &ServerFlags) -> Result<ManagedServer, MissingServerValue> {
        let mut out = self.clone();
        for (i, a) in out.command.iter_mut().enumerate() {
            *a = render_server(a, flags, &self.defaults).map_err(|name| MissingServerValue {
                key: format!("command[{i}]"),
                name,
            })?;
        }
        for (k, v) in &mut out.env {
            *v = render_server(v, flags, &self.defaults).map_err(|name| MissingServerValue {
                key: format!("env.{k}"),
                name,
            })?;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(pairs: &[(&str, &str)]) -> ServerFlags {
        ServerFlags(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
    }

    #[test]
    fn placeholders_are_found_and_replaced() {
        assert_eq!(
            server_names("--parallel={server.parallel} {server.ctx}"),
            ["parallel", "ctx"]
        );
        assert!(server_names("{server.} {server.a b} {server.x ${HOME} {x}").is_empty());
        let f = flags(&[("parallel", "4")]);
        let d = flags(&[("parallel", "1"), ("ctx", "2048")]);
        assert_eq!(
            render_server("-np {server.parallel} -c {server.ctx}", &f, &d),
            Ok("-np 4 -c 2048".to_owned())
        );
        assert_eq!(
            render_server("{server.batch}", &f, &d),
            Err("batch".to_owned())
        );
        // Plain text, `${VAR}` and broken placeholders are kept as they are.
        assert_eq!(
            render_server("${HOME}/{server.}/{server.x", &f, &d),
            Ok("${HOME}/{server.}/{server.x".to_owned())
        );
    }

    #[test]
    fn a_managed_server_renders_its_command_and_env() {
        let m = ManagedServer {
            command: vec![
                "llama-server".into(),
                "--parallel".into(),
                "{server.np}".into(),
            ],
            env: [("OLLAMA_NUM_PARALLEL".to_owned(), "{server.np}".to_owned())].into(),
            startup_timeout_s: 60.0,
            defaults: flags(&[("np", "1")]),
        };
        assert_eq!(m.server_names().into_iter().collect::<Vec<_>>(), ["np"]);
        assert_eq!(m.server_placeholders().len(), 2);
        let r = m.render(&flags(&[("np", "8")])).expect("renders");
        assert_eq!(r.command[2], "8");
        assert_eq!(r.env["OLLAMA_NUM_PARALLEL"], "8");
        assert_eq!(
            m.render(&ServerFlags::default()).expect("d").command[2],
            "1"
        );
        let bare = ManagedServer {
            defaults: ServerFlags::default(),
            ..m
        };
        assert_eq!(
            bare.render(&ServerFlags::default()),
            Err(MissingServerValue {
                key: "command[2]".into(),
                name: "np".into()
            })
        );
    }
}
