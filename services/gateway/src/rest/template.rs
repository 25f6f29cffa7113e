//! HTTP path templates of `google.api.http` rules: parsing and matching.
//!
//! Grammar (the subset the contracts use, and `**`):
//! `"/" Segments [ ":" Verb ]`, a segment being a literal, `*`, `**` or a
//! variable `{field.path=Segments}` (`{field}` alone is `{field=*}`).

use std::fmt;

/// One piece of a template's path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    /// Must equal this text.
    Literal(String),
    /// Any one non-empty segment.
    Star,
    /// The rest of the path, one segment or more (last only).
    DoubleStar,
}

/// A variable: the request field it sets and the segments it spans.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variable {
    /// Dotted field path in proto names, e.g. `incident.name`.
    pub field: String,
    /// First segment (index into [`Template::segments`]) and how many.
    pub start: usize,
    pub len: usize,
}

/// A parsed path template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    pub segments: Vec<Segment>,
    pub variables: Vec<Variable>,
    pub verb: Option<String>,
    source: String,
}

/// Why a template does not parse (a contract error, reported at start).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("path template {template:?}: {reason}")]
pub struct TemplateError {
    pub template: String,
    pub reason: String,
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl Template {
    /// Parses `"/v1/{name=incidents/*}:assign"`.
    pub fn parse(source: &str) -> Result<Self, TemplateError> {
        let fail = |reason: &str| TemplateError {
            template: source.to_owned(),
            reason: reason.to_owned(),
        };
        let rest = source
            .strip_prefix('/')
            .ok_or_else(|| fail("does not start with '/'"))?;
        // The verb follows the last ':' outside braces.
        let mut depth = 0usize;
        let mut verb_at = None;
        for (i, c) in rest.char_indices() {
            match c {
                '{' => depth += 1,
                '}' => depth = depth.checked_sub(1).ok_or_else(|| fail("unbalanced '}'"))?,
                ':' if depth == 0 => verb_at = Some(i),
                _ => {}
            }
        }
        if depth != 0 {
            return Err(fail("unbalanced '{'"));
        }
        let (path, verb) = match verb_at {
            Some(i) => (&rest[..i], Some(rest[i + 1..].to_owned())),
            None => (rest, None),
        };
        if verb.as_deref() == Some("") {
            return Err(fail("empty verb"));
        }
        let mut segments = Vec::new();
        let mut variables = Vec::new();
        let mut chars = path;
        while !chars.is_empty() {
            if let Some(after) = chars.strip_prefix('{') {
                let end = after.find('}').ok_or_else(|| fail("unclosed variable"))?;
                let inner = &after[..end];
                let (field, pattern) = inner.split_once('=').unwrap_or((inner, "*"));
                if field.is_empty()
                    || !field.split('.').all(|p| {
                        !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                    })
                {
                    return Err(fail("bad variable name"));
                }
                let start = segments.len();
                for part in pattern.split('/') {
                    segments.push(segment(part).ok_or_else(|| fail("bad segment in variable"))?);
                }
                variables.push(Variable {
                    field: field.to_owned(),
                    start,
                    len: segments.len() - start,
                });
                chars = &after[end + 1..];
            } else {
                let end = chars.find('/').unwrap_or(chars.len());
                let part = &chars[..end];
                if part.contains('{') {
                    return Err(fail("a variable must be a whole segment"));
                }
                segments.push(segment(part).ok_or_else(|| fail("empty segment"))?);
                chars = &chars[end..];
            }
            if let Some(after) = chars.strip_prefix('/') {
                if after.is_empty() {
                    return Err(fail("trailing '/'"));
                }
                chars = after;
            } else if !chars.is_empty() {
                return Err(fail("a variable must be a whole segment"));
            }
        }
        if let Some(i) = segments.iter().position(|s| *s == Segment::DoubleStar)
            && i + 1 != segments.len()
        {
            return Err(fail("'**' must be last"));
        }
        Ok(Self {
            segments,
            variables,
            verb,
            source: source.to_owned(),
        })
    }

    /// Matches a request path (still percent-encoded); on success, each
    /// variable's field with its decoded value (`"incidents/INC0000042"`).
    /// The template as written in the HTTP rule (`/v1/{name=incidents/*}`).
    pub fn as_str(&self) -> &str {
        &self.source
    }

    pub fn matches(&self, path: &str) -> Option<Vec<(String, String)>> {
        let split = SplitPath::new(path)?;
        self.matches_split(&split)
    }

    /// [`Template::matches`] over a path split once for every template.
    pub fn matches_split(&self, path: &SplitPath<'_>) -> Option<Vec<(String, String)>> {
        if path.verb != self.verb.as_deref() {
            return None;
        }
        let parts = &path.parts;
        let double = self.segments.last() == Some(&Segment::DoubleStar);
        if (!double && parts.len() != self.segments.len())
            || (double && parts.len() < self.segments.len())
        {
            return None;
        }
        for (i, seg) in self.segments.iter().enumerate() {
            let part = parts[i];
            match seg {
                Segment::Literal(text) => {
                    if part != text {
                        return None;
                    }
                }
                Segment::Star | Segment::DoubleStar => {
                    if part.is_empty() {
                        return None;
                    }
                }
            }
        }
        let mut bound = Vec::with_capacity(self.variables.len());
        for var in &self.variables {
            let end = if double && var.start + var.len == self.segments.len() {
                parts.len()
            } else {
                var.start + var.len
            };
            let mut value = String::new();
            for (i, part) in parts[var.start..end].iter().enumerate() {
                if i > 0 {
                    value.push('/');
                }
                value.push_str(&percent_decode(part)?);
            }
            bound.push((var.field.clone(), value));
        }
        Some(bound)
    }

    /// The template as an OpenAPI path: each `*` of a variable becomes a
    /// parameter named after the collection before it (`incidents/{incident}`
    /// style: `incidentsId`), and the names of those parameters.
    pub fn openapi_path(&self) -> (String, Vec<String>) {
        let mut out = String::new();
        let mut params = Vec::new();
        for (i, seg) in self.segments.iter().enumerate() {
            out.push('/');
            let in_var = self
                .variables
                .iter()
                .any(|v| i >= v.start && i < v.start + v.len);
            match seg {
                Segment::Literal(text) => out.push_str(text),
                Segment::Star | Segment::DoubleStar => {
                    let base = match i.checked_sub(1).map(|p| &self.segments[p]) {
                        Some(Segment::Literal(text)) if in_var => text.clone(),
                        _ => format!("segment{i}"),
                    };
                    let mut name = format!("{base}Id");
                    while params.contains(&name) {
                        name.push('_');
                    }
                    out.push('{');
                    out.push_str(&name);
                    out.push('}');
                    params.push(name);
                }
            }
        }
        if let Some(verb) = &self.verb {
            out.push(':');
            out.push_str(verb);
        }
        (out, params)
    }

    /// Top-level request fields the path binds (`incident` for `incident.name`).
    pub fn bound_fields(&self) -> impl Iterator<Item = &str> {
        self.variables.iter().map(|v| v.field.as_str())
    }
}

fn segment(part: &str) -> Option<Segment> {
    match part {
        "" => None,
        "*" => Some(Segment::Star),
        "**" => Some(Segment::DoubleStar),
        text => Some(Segment::Literal(text.to_owned())),
    }
}

/// A request path cut into segments and verb.
#[derive(Debug)]
pub struct SplitPath<'a> {
    parts: Vec<&'a str>,
    verb: Option<&'a str>,
}

impl<'a> SplitPath<'a> {
    /// `None` when the path does not start with '/'.
    pub fn new(path: &'a str) -> Option<Self> {
        let rest = path.strip_prefix('/')?;
        let (rest, verb) = split_verb(rest);
        let parts = if rest.is_empty() {
            Vec::new()
        } else {
            rest.split('/').collect()
        };
        Some(Self { parts, verb })
    }
}

/// Splits `incidents/INC1:assign` into the path and the verb.
pub fn split_verb(path: &str) -> (&str, Option<&str>) {
    let last = path.rfind('/').map_or(0, |i| i + 1);
    match path[last..].rfind(':') {
        Some(i) => (&path[..last + i], Some(&path[last + i + 1..])),
        None => (path, None),
    }
}

/// Decodes `%XX` escapes; `None` when an escape is broken or the result is not UTF-8.
pub fn percent_decode(text: &str) -> Option<String> {
    if !text.contains('%') {
        return Some(text.to_owned());
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables_bind_nested_fields_and_verbs_select() {
        let get = Template::parse("/v1/{name=incidents/*}").unwrap();
        let assign = Template::parse("/v1/{name=incidents/*}:assign").unwrap();
        let update = Template::parse("/v1/{incident.name=incidents/*}").unwrap();
        assert_eq!(
            get.matches("/v1/incidents/INC0000042"),
            Some(vec![("name".into(), "incidents/INC0000042".into())])
        );
        assert_eq!(get.matches("/v1/incidents/INC0000042:assign"), None);
        assert_eq!(
            assign.matches("/v1/incidents/INC1:assign"),
            Some(vec![("name".into(), "incidents/INC1".into())])
        );
        assert_eq!(assign.matches("/v1/incidents/INC1"), None);
        assert_eq!(
            update.matches("/v1/incidents/INC1"),
            Some(vec![("incident.name".into(), "incidents/INC1".into())])
        );
        assert_eq!(get.matches("/v1/incidents"), None);
        assert_eq!(get.matches("/v1/incidents/"), None);
        assert_eq!(get.matches("/v1/problems/PRB1"), None);
        assert_eq!(get.matches("/v1/incidents/INC1/tasks"), None);
    }

    #[test]
    fn literals_collections_and_escapes() {
        let list = Template::parse("/v1/{parent=requests/*/items/*}/tasks").unwrap();
        assert_eq!(
            list.matches("/v1/requests/REQ1/items/RITM%2D2/tasks"),
            Some(vec![("parent".into(), "requests/REQ1/items/RITM-2".into())])
        );
        let singleton = Template::parse("/v1/{settings.name=incidentSettings}").unwrap();
        assert_eq!(
            singleton.matches("/v1/incidentSettings"),
            Some(vec![("settings.name".into(), "incidentSettings".into())])
        );
        let plain = Template::parse("/v1/alerts:ingest").unwrap();
        assert_eq!(plain.matches("/v1/alerts:ingest"), Some(vec![]));
        assert_eq!(plain.matches("/v1/alerts"), None);
        let rest = Template::parse("/v1/{name=files/**}").unwrap();
        assert_eq!(
            rest.matches("/v1/files/a/b"),
            Some(vec![("name".into(), "files/a/b".into())])
        );
        assert_eq!(get_err("v1/x"), "does not start with '/'");
        assert_eq!(get_err("/v1/{name=x/*"), "unbalanced '{'");
        assert_eq!(get_err("/v1/a{name}"), "a variable must be a whole segment");
        assert_eq!(get_err("/v1/**/x"), "'**' must be last");
        assert_eq!(get_err("/v1/x/"), "trailing '/'");
    }

    fn get_err(t: &str) -> String {
        Template::parse(t).unwrap_err().reason
    }

    #[test]
    fn openapi_paths_name_a_parameter_per_wildcard() {
        let t = Template::parse("/v1/{name=incidents/*/tasks/*}:start").unwrap();
        assert_eq!(
            t.openapi_path(),
            (
                "/v1/incidents/{incidentsId}/tasks/{tasksId}:start".to_owned(),
                vec!["incidentsId".to_owned(), "tasksId".to_owned()]
            )
        );
        let t = Template::parse("/v1/{settings.name=incidentSettings}").unwrap();
        assert_eq!(
            t.openapi_path(),
            ("/v1/incidentSettings".to_owned(), vec![])
        );
    }
}
