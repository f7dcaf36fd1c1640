//! Nested documents (JSON, YAML, and what `sops -d` prints) as flat lists
//! of secrets, and the rule that names them.
//!
//! The rule, for every string, number or boolean in the document:
//!
//! 1. its path is the keys from the top down (array items by their index
//!    from 0), joined with `.`: `{"db": {"password": "…"}}` is
//!    `db.password`, `{"hosts": ["a"]}` is `hosts.0`;
//! 2. the secret name is the path lowercased, with every run of characters
//!    other than `a-z` and `0-9` turned into one `-`, and `-` trimmed from
//!    both ends: `db.password` is `db-password`, `STRIPE_SECRET_KEY` is
//!    `stripe-secret-key`, `Db__Pass` is `db-pass`;
//! 3. a path whose name is still not a valid secret name (under 3 or over
//!    63 characters, or `vault-key`), a `null`, and two paths that give the
//!    same name are all reported, together, before anything is written.
//!    An empty object or array holds no value and is skipped (sops gives
//!    every INI file an empty `DEFAULT` section).
//!
//! Numbers and booleans become their text as the document's reader gives
//! it (`5432`, `true`); quote a value in the source to keep it exactly.

use zeroize::Zeroizing;

use crate::name::SecretName;

/// A parsed document, reduced to what the rule needs.
pub enum Node {
    /// A string.
    Str(Zeroizing<String>),
    /// A number or boolean, as text.
    Scalar(Zeroizing<String>),
    /// `null` (or YAML's `~`).
    Null,
    /// An array.
    List(Vec<Node>),
    /// An object: YAML's in document order, JSON's in key order (the
    /// order does not matter: `import` sorts by name).
    Map(Vec<(String, Node)>),
}

/// One leaf of a document.
pub struct Leaf {
    /// The path, keys joined with `.`: what the name is made from.
    pub path: String,
    /// The path as shown in messages: the same, with any key that holds a
    /// `.` in double quotes, so that `{"a": {"b": 1}}` (`a.b`) and
    /// `{"a.b": 1}` (`"a.b"`) read differently.
    pub shown: String,
    /// The value, or why there is none to import.
    pub value: Result<Zeroizing<String>, &'static str>,
}

impl std::fmt::Debug for Leaf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Leaf")
            .field("path", &self.path)
            .field("value", &"[redacted]")
            .finish()
    }
}

/// The leaves of `node` (the top level must be an object), in document
/// order.
pub fn leaves(node: Node) -> Result<Vec<Leaf>, &'static str> {
    let Node::Map(members) = node else {
        return Err("the top level is not an object of names and values");
    };
    let mut out = Vec::new();
    for (k, v) in members {
        let shown = show_key(&k);
        walk(k, shown, v, &mut out);
    }
    Ok(out)
}

fn show_key(k: &str) -> String {
    if k.contains('.') {
        format!("{k:?}")
    } else {
        k.to_owned()
    }
}

fn walk(path: String, shown: String, node: Node, out: &mut Vec<Leaf>) {
    let leaf = |path, shown, value| Leaf { path, shown, value };
    match node {
        Node::Str(s) | Node::Scalar(s) => out.push(leaf(path, shown, Ok(s))),
        Node::Null => out.push(leaf(path, shown, Err("it is null"))),
        Node::List(items) => {
            for (i, item) in items.into_iter().enumerate() {
                walk(format!("{path}.{i}"), format!("{shown}.{i}"), item, out);
            }
        }
        Node::Map(members) => {
            for (k, v) in members {
                let s = format!("{shown}.{}", show_key(&k));
                walk(format!("{path}.{k}"), s, v, out);
            }
        }
    }
}

/// The secret name for a path (rule 2), or why there is none.
pub fn secret_name(path: &str) -> Result<SecretName, String> {
    let mut name = String::with_capacity(path.len());
    for c in path.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            name.push(c);
        } else if !name.ends_with('-') {
            name.push('-');
        }
    }
    let name = name.trim_matches('-');
    name.parse::<SecretName>().map_err(|e| match e {
        crate::Error::InvalidName { reason, .. } => format!("as a secret name, {name:?}: {reason}"),
        _ => format!("{name:?} is not a valid secret name"),
    })
}

/// Reads a JSON document into a [`Node`].
pub fn from_json(bytes: &[u8]) -> Result<Node, String> {
    let v: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| {
        // serde_json's message names a line and column, never the text.
        e.to_string()
    })?;
    Ok(json_node(v))
}

fn json_node(v: serde_json::Value) -> Node {
    use serde_json::Value;
    match v {
        Value::Null => Node::Null,
        Value::Bool(b) => Node::Scalar(Zeroizing::new(b.to_string())),
        Value::Number(n) => Node::Scalar(Zeroizing::new(n.to_string())),
        Value::String(s) => Node::Str(Zeroizing::new(s)),
        Value::Array(a) => Node::List(a.into_iter().map(json_node).collect()),
        Value::Object(o) => Node::Map(o.into_iter().map(|(k, v)| (k, json_node(v))).collect()),
    }
}

/// Reads a YAML document (one; a stream of several is refused) into a
/// [`Node`].
pub fn from_yaml(bytes: &[u8]) -> Result<Node, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "it is not valid UTF-8".to_owned())?;
    let docs = yaml_rust2::YamlLoader::load_from_str(text).map_err(|e| {
        let m = e.marker();
        // The scanner's own message describes the syntax, not the text.
        format!("line {}, column {}: {}", m.line(), m.col() + 1, e.info())
    })?;
    let mut docs = docs.into_iter();
    let doc = docs
        .next()
        .ok_or_else(|| "it holds no document".to_owned())?;
    if docs.next().is_some() {
        return Err("it holds more than one document (---)".to_owned());
    }
    yaml_node(doc)
}

fn yaml_node(y: yaml_rust2::Yaml) -> Result<Node, String> {
    use yaml_rust2::Yaml;
    Ok(match y {
        Yaml::Null => Node::Null,
        Yaml::Boolean(b) => Node::Scalar(Zeroizing::new(b.to_string())),
        Yaml::Integer(i) => Node::Scalar(Zeroizing::new(i.to_string())),
        Yaml::Real(r) => Node::Scalar(Zeroizing::new(r)),
        Yaml::String(s) => Node::Str(Zeroizing::new(s)),
        Yaml::Array(a) => Node::List(a.into_iter().map(yaml_node).collect::<Result<_, _>>()?),
        Yaml::Hash(h) => {
            let mut members = Vec::with_capacity(h.len());
            for (k, v) in h {
                let key = match k {
                    Yaml::String(s) | Yaml::Real(s) => s,
                    Yaml::Integer(i) => i.to_string(),
                    Yaml::Boolean(b) => b.to_string(),
                    _ => return Err("a key is not a string".to_owned()),
                };
                members.push((key, yaml_node(v)?));
            }
            Node::Map(members)
        }
        Yaml::Alias(_) | Yaml::BadValue => {
            return Err("it uses a YAML alias or a value coffer cannot read".to_owned());
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(doc: Node) -> Vec<(String, Result<String, String>)> {
        leaves(doc)
            .unwrap()
            .into_iter()
            .map(|l| (l.path.clone(), secret_name(&l.path).map(|n| n.to_string())))
            .collect()
    }

    #[test]
    fn nested_keys_flatten_by_the_documented_rule() {
        let doc = from_yaml(
            b"db:\n  password: p\n  Port: 5432\nSTRIPE_SECRET_KEY: s\nhosts: [a, b]\nx: y\n",
        )
        .unwrap();
        let n = names(doc);
        let got: Vec<(&str, Result<&str, &str>)> = n
            .iter()
            .map(|(p, r)| (p.as_str(), r.as_deref().map_err(|e| e.as_str())))
            .collect();
        assert_eq!(got[0], ("db.password", Ok("db-password")));
        assert_eq!(got[1], ("db.Port", Ok("db-port")));
        assert_eq!(got[2], ("STRIPE_SECRET_KEY", Ok("stripe-secret-key")));
        assert_eq!(got[3], ("hosts.0", Ok("hosts-0")));
        assert!(got[5].1.is_err(), "x is too short");
    }

    #[test]
    fn json_numbers_and_nulls() {
        let l = leaves(from_json(br#"{"a": {"port": 5432, "off": null}}"#).unwrap()).unwrap();
        let get = |p: &str| l.iter().find(|l| l.path == p).unwrap();
        assert_eq!(
            get("a.port").value.as_deref().map(|s| s.as_str()),
            Ok("5432")
        );
        assert!(get("a.off").value.is_err());
    }

    #[test]
    fn yaml_streams_and_non_objects_are_refused() {
        assert!(from_yaml(b"a: b\n---\nc: d\n").is_err());
        assert!(leaves(from_yaml(b"- a\n").unwrap()).is_err());
    }
}
