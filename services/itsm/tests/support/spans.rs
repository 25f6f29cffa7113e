//! One trace out of what the test OTLP receiver got: its spans by id, walks
//! up to ancestors, and a tree to show when an assertion fails.
#![allow(dead_code)] // each test binary uses its own subset

use std::collections::HashMap;
use std::fmt::Write as _;

pub use itsm_testkit::otlp::{ReceivedSpan as Span, SpanKind};

/// The spans of one trace, by id.
pub struct Trace {
    pub spans: Vec<Span>,
    by_id: HashMap<String, usize>,
}

impl Trace {
    pub fn of(all: &[Span], trace_id: &str) -> Self {
        let spans: Vec<Span> = all
            .iter()
            .filter(|s| s.trace_id == trace_id)
            .cloned()
            .collect();
        let by_id = spans
            .iter()
            .enumerate()
            .map(|(i, s)| (s.span_id.clone(), i))
            .collect();
        Self { spans, by_id }
    }

    pub fn get(&self, span_id: &str) -> Option<&Span> {
        self.by_id.get(span_id).map(|&i| &self.spans[i])
    }

    pub fn parent(&self, span: &Span) -> Option<&Span> {
        self.get(&span.parent_span_id)
    }

    /// Spans whose parent is not in the trace, other than `allowed_parent`'s children.
    pub fn orphans(&self, allowed_parent: &str) -> Vec<&Span> {
        self.spans
            .iter()
            .filter(|s| s.parent_span_id != allowed_parent && self.parent(s).is_none())
            .collect()
    }

    /// True when `ancestor` is `span`'s parent, grandparent, ...
    pub fn descends_from(&self, span: &Span, ancestor: &Span) -> bool {
        let mut at = self.parent(span);
        // A cycle cannot happen in a real trace; the bound keeps a broken one from hanging the test.
        for _ in 0..self.spans.len() {
            match at {
                Some(s) if s.span_id == ancestor.span_id => return true,
                Some(s) => at = self.parent(s),
                None => return false,
            }
        }
        false
    }

    /// The first span matching `what`.
    pub fn find(&self, what: impl Fn(&Span) -> bool) -> Option<&Span> {
        self.spans.iter().find(|s| what(s))
    }

    /// The trace as an indented tree, for failure messages.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let mut roots: Vec<&Span> = self
            .spans
            .iter()
            .filter(|s| self.parent(s).is_none())
            .collect();
        roots.sort_by(|a, b| a.name.cmp(&b.name));
        for root in roots {
            self.render_from(root, 0, &mut out);
        }
        out
    }

    fn render_from(&self, span: &Span, depth: usize, out: &mut String) {
        let _ = writeln!(
            out,
            "{:indent$}{} [{} {:?} {}] {} <- {}",
            "",
            span.name,
            span.service,
            span.kind,
            span.status,
            span.span_id,
            span.parent_span_id,
            indent = depth * 2
        );
        for child in self
            .spans
            .iter()
            .filter(|s| s.parent_span_id == span.span_id)
        {
            self.render_from(child, depth + 1, out);
        }
    }
}
