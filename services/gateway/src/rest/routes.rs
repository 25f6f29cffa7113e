//! The REST routes: every `google.api.http` binding of every method in the
//! descriptor set, read once at start. No per-method code: a method added to
//! a proto with its option is served after the next build.

use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor, MethodDescriptor, Value};

use super::template::{SplitPath, Template, TemplateError};

/// Where the request body goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    /// No body (GET, DELETE and rules without `body`).
    None,
    /// `body: "*"`: the whole request message, less what the path binds.
    All,
    /// `body: "<field>"`: that top-level field.
    Field(String),
}

/// One binding of one method.
#[derive(Debug, Clone)]
pub struct Route {
    pub method: http::Method,
    pub template: Template,
    pub body: Body,
    /// `response_body`: the reply field sent as the body; empty for all.
    pub response_body: String,
    pub rpc: MethodDescriptor,
    /// The gRPC path, `/itsm.incidents.v1.IncidentService/GetIncident`.
    pub grpc_path: String,
    /// 0 for the rule itself, 1.. for its additional bindings.
    pub binding: usize,
}

/// Why the routes could not be built (a contract error, reported at start).
#[derive(Debug, thiserror::Error)]
pub enum RoutesError {
    #[error("the descriptor set does not decode: {0}")]
    Descriptors(#[from] prost_reflect::DescriptorError),
    #[error("{method}: {source}")]
    Template {
        method: String,
        source: TemplateError,
    },
    #[error("{method}: {reason}")]
    Rule { method: String, reason: String },
    #[error("{first} and {second} both map to {http_method} {template}")]
    Clash {
        first: String,
        second: String,
        http_method: http::Method,
        template: String,
    },
}

/// What a request path and method found.
#[derive(Debug)]
pub enum Found<'a> {
    Route(&'a Route, Vec<(String, String)>),
    /// The path is known, for these other methods.
    WrongMethod(Vec<http::Method>),
    NotFound,
}

/// Every binding, in descriptor order.
#[derive(Debug, Clone)]
pub struct Routes {
    pub pool: DescriptorPool,
    pub routes: Vec<Route>,
}

impl Routes {
    /// The routes of the project's own contracts.
    pub fn from_contracts() -> Result<Self, RoutesError> {
        Self::new(DescriptorPool::decode(itsm_proto::FILE_DESCRIPTOR_SET)?)
    }

    /// The routes of every method carrying a `google.api.http` option.
    pub fn new(pool: DescriptorPool) -> Result<Self, RoutesError> {
        let mut routes = Vec::new();
        if let Some(http) = pool.get_extension_by_name("google.api.http") {
            for service in pool.services() {
                for rpc in service.methods() {
                    let options = rpc.options();
                    if !options.has_extension(&http) {
                        continue;
                    }
                    let name = rpc.full_name().to_owned();
                    if rpc.is_client_streaming() || rpc.is_server_streaming() {
                        return Err(RoutesError::Rule {
                            method: name,
                            reason: "streaming methods have no REST mapping".into(),
                        });
                    }
                    let Value::Message(rule) = options.get_extension(&http).into_owned() else {
                        continue;
                    };
                    let grpc_path = format!("/{}/{}", service.full_name(), rpc.name());
                    let mut rules = vec![rule.clone()];
                    if let Some(Value::List(extra)) = rule
                        .get_field_by_name("additional_bindings")
                        .map(std::borrow::Cow::into_owned)
                    {
                        rules.extend(extra.into_iter().filter_map(|v| match v {
                            Value::Message(m) => Some(m),
                            _ => None,
                        }));
                    }
                    for (binding, rule) in rules.iter().enumerate() {
                        routes.push(route(&rpc, &grpc_path, rule, binding)?);
                    }
                }
            }
        }
        let table = Self { pool, routes };
        table.check_clashes()?;
        Ok(table)
    }

    /// Finds the route of a request. Among several matches the one with the
    /// most literal segments wins (`/v1/cis:batchGet` over `/v1/{name=cis/*}`).
    pub fn find(&self, method: &http::Method, path: &str) -> Found<'_> {
        // The best match so far: its route, bound variables and literal count.
        type Best<'r> = (&'r Route, Vec<(String, String)>, usize);
        let mut best: Option<Best<'_>> = None;
        let mut others = Vec::new();
        let Some(path) = SplitPath::new(path) else {
            return Found::NotFound;
        };
        for route in &self.routes {
            let Some(bound) = route.template.matches_split(&path) else {
                continue;
            };
            if route.method != *method {
                if !others.contains(&route.method) {
                    others.push(route.method.clone());
                }
                continue;
            }
            let literals = literal_count(&route.template);
            if best.as_ref().is_none_or(|(_, _, l)| literals > *l) {
                best = Some((route, bound, literals));
            }
        }
        match best {
            Some((route, bound, _)) => Found::Route(route, bound),
            None if !others.is_empty() => Found::WrongMethod(others),
            None => Found::NotFound,
        }
    }

    /// The services with REST routes, sorted.
    pub fn services(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .routes
            .iter()
            .map(|r| r.rpc.parent_service().full_name().to_owned())
            .collect();
        names.sort();
        names.dedup();
        names
    }

    fn check_clashes(&self) -> Result<(), RoutesError> {
        let mut seen: std::collections::HashMap<(http::Method, String), &Route> =
            std::collections::HashMap::new();
        for route in &self.routes {
            let (shape, _) = route.template.openapi_path();
            let shape = strip_names(&shape);
            if let Some(first) = seen.insert((route.method.clone(), shape.clone()), route) {
                return Err(RoutesError::Clash {
                    first: first.rpc.full_name().to_owned(),
                    second: route.rpc.full_name().to_owned(),
                    http_method: route.method.clone(),
                    template: route.template.to_string(),
                });
            }
        }
        Ok(())
    }
}

fn literal_count(template: &Template) -> usize {
    template
        .segments
        .iter()
        .filter(|s| matches!(s, super::template::Segment::Literal(_)))
        .count()
}

/// `/v1/incidents/{incidentsId}` -> `/v1/incidents/{}`.
fn strip_names(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut skipping = false;
    for c in path.chars() {
        match c {
            '{' => {
                skipping = true;
                out.push_str("{}");
            }
            '}' => skipping = false,
            _ if skipping => {}
            _ => out.push(c),
        }
    }
    out
}

fn text(rule: &DynamicMessage, field: &str) -> String {
    match rule.get_field_by_name(field).as_deref() {
        Some(Value::String(s)) => s.clone(),
        _ => String::new(),
    }
}

fn route(
    rpc: &MethodDescriptor,
    grpc_path: &str,
    rule: &DynamicMessage,
    binding: usize,
) -> Result<Route, RoutesError> {
    let fail = |reason: String| RoutesError::Rule {
        method: rpc.full_name().to_owned(),
        reason,
    };
    let mut found = None;
    for (verb, method) in [
        ("get", http::Method::GET),
        ("put", http::Method::PUT),
        ("post", http::Method::POST),
        ("delete", http::Method::DELETE),
        ("patch", http::Method::PATCH),
    ] {
        let path = text(rule, verb);
        if !path.is_empty() {
            found = Some((method, path));
        }
    }
    if found.is_none()
        && let Some(Value::Message(custom)) = rule.get_field_by_name("custom").as_deref()
    {
        let kind = text(custom, "kind");
        let method = http::Method::from_bytes(kind.as_bytes())
            .map_err(|_| fail(format!("custom HTTP method {kind:?} is not a method")))?;
        found = Some((method, text(custom, "path")));
    }
    let (method, path) =
        found.ok_or_else(|| fail("the HTTP rule names no method and path".into()))?;
    let template = Template::parse(&path).map_err(|source| RoutesError::Template {
        method: rpc.full_name().to_owned(),
        source,
    })?;
    let input = rpc.input();
    for var in &template.variables {
        check_path_field(&input, &var.field).map_err(fail)?;
    }
    let body = match text(rule, "body").as_str() {
        "" => Body::None,
        "*" => Body::All,
        field => {
            if input.get_field_by_name(field).is_none() {
                return Err(fail(format!(
                    "body field {field:?} is not a field of {}",
                    input.full_name()
                )));
            }
            Body::Field(field.to_owned())
        }
    };
    let response_body = text(rule, "response_body");
    if !response_body.is_empty() && rpc.output().get_field_by_name(&response_body).is_none() {
        return Err(fail(format!(
            "response_body {response_body:?} is not a field of the reply"
        )));
    }
    Ok(Route {
        method,
        template,
        body,
        response_body,
        rpc: rpc.clone(),
        grpc_path: grpc_path.to_owned(),
        binding,
    })
}

/// A path variable must name a singular string field (through singular messages).
fn check_path_field(input: &MessageDescriptor, path: &str) -> Result<(), String> {
    let mut message = input.clone();
    let mut parts = path.split('.').peekable();
    while let Some(part) = parts.next() {
        let field = message.get_field_by_name(part).ok_or_else(|| {
            format!(
                "path variable {path:?}: no field {part:?} in {}",
                message.full_name()
            )
        })?;
        if field.is_list() || field.is_map() {
            return Err(format!("path variable {path:?}: {part:?} is repeated"));
        }
        match (field.kind(), parts.peek()) {
            (prost_reflect::Kind::String, None) => {}
            (prost_reflect::Kind::Message(inner), Some(_)) => message = inner,
            _ => return Err(format!("path variable {path:?} is not a string field")),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn routes() -> Routes {
        Routes::from_contracts().expect("the contracts' HTTP rules are valid")
    }

    #[test]
    fn every_method_of_every_service_has_a_route() {
        let routes = routes();
        for service in routes.pool.services() {
            if !service.full_name().starts_with("itsm.") {
                continue;
            }
            for rpc in service.methods() {
                assert!(
                    routes.routes.iter().any(|r| r.rpc == rpc),
                    "{} has no google.api.http option",
                    rpc.full_name()
                );
            }
        }
        assert!(
            routes
                .services()
                .contains(&"itsm.incidents.v1.IncidentService".to_owned())
        );
    }

    #[test]
    fn requests_find_their_method() {
        let routes = routes();
        let find = |m: http::Method, p: &str| match routes.find(&m, p) {
            Found::Route(r, bound) => format!("{} {bound:?}", r.rpc.name()),
            Found::WrongMethod(ms) => format!("405 {ms:?}"),
            Found::NotFound => "404".to_owned(),
        };
        assert_eq!(
            find(http::Method::GET, "/v1/incidents/INC0000042"),
            r#"GetIncident [("name", "incidents/INC0000042")]"#
        );
        assert_eq!(
            find(http::Method::POST, "/v1/incidents/INC1:assign"),
            r#"AssignIncident [("name", "incidents/INC1")]"#
        );
        assert_eq!(
            find(http::Method::PATCH, "/v1/incidents/INC1"),
            r#"UpdateIncident [("incident.name", "incidents/INC1")]"#
        );
        assert_eq!(
            find(http::Method::GET, "/v1/cis:batchGet"),
            "BatchGetCis []"
        );
        assert_eq!(
            find(http::Method::GET, "/v1/change/approvalPolicies/cab"),
            r#"GetApprovalPolicy [("name", "approvalPolicies/cab")]"#
        );
        assert_eq!(
            find(http::Method::DELETE, "/v1/incidents"),
            "405 [POST, GET]"
        );
        assert_eq!(find(http::Method::GET, "/v1/nothing/here"), "404");
    }
}
