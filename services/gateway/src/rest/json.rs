//! Canonical protobuf JSON both ways, through the descriptors: the request
//! message of a REST call from its path variables, query string and body,
//! and the JSON of a reply.
//!
//! Field names are accepted as lowerCamelCase JSON names or proto names;
//! replies use JSON names, enums as names, 64-bit integers as strings,
//! timestamps in RFC 3339 and durations as "3600s", and leave out fields at
//! their defaults (proto3 JSON).

use prost::Message;
use prost_reflect::{
    DeserializeOptions, DynamicMessage, FieldDescriptor, Kind, MessageDescriptor, ReflectMessage,
    SerializeOptions,
};
use serde_json::{Map, Value};

use super::problem::Problem;
use super::routes::{Body, Route};

/// The request message of one call.
pub fn request(
    route: &Route,
    bound: &[(String, String)],
    query: Option<&str>,
    body: &[u8],
) -> Result<DynamicMessage, Problem> {
    let input = route.rpc.input();
    let mut message = match &route.body {
        Body::None => {
            if !body.iter().all(u8::is_ascii_whitespace) {
                return Err(Problem::invalid_field(
                    "body",
                    format!(
                        "{} {} takes no body; give the fields in the query string",
                        route.method, route.template
                    ),
                ));
            }
            DynamicMessage::new(input.clone())
        }
        Body::All => parse_body(&input, body, "")?,
        Body::Field(name) => {
            let mut message = DynamicMessage::new(input.clone());
            let Some(field) = input.get_field_by_name(name) else {
                return Err(Problem::new(
                    tonic::Code::Internal,
                    "the route's body field is gone",
                ));
            };
            if !is_blank(body) {
                set_body_field(&mut message, &field, body)?;
            }
            message
        }
    };

    // Query parameters, then path variables (which win), as one JSON object
    // merged over the body: a path variable is the resource named in the URL.
    let mut params = Map::new();
    if let Some(query) = query {
        let pairs: Vec<(String, String)> =
            axum::extract::Query::<Vec<(String, String)>>::try_from_uri(
                &format!("/?{query}").parse::<http::Uri>().map_err(|_| {
                    Problem::invalid_field("query", "the query string is not valid")
                })?,
            )
            .map_err(|error| Problem::invalid_field("query", error.body_text()))?
            .0;
        for (key, value) in pairs {
            if route.body == Body::All {
                return Err(Problem::invalid_field(
                    &key,
                    format!(
                        "{} {} takes every field in the body, none in the query string",
                        route.method, route.template
                    ),
                ));
            }
            if let Body::Field(name) = &route.body
                && key
                    .split('.')
                    .next()
                    .is_some_and(|top| is_field(&input, top, name))
            {
                return Err(Problem::invalid_field(
                    &key,
                    format!("is part of the body ({name}), not a query parameter"),
                ));
            }
            insert(&mut params, &input, &key, &value, true)?;
        }
    }
    for (field, value) in bound {
        insert(&mut params, &input, field, value, false)?;
    }
    if !params.is_empty() {
        let from_params = DynamicMessage::deserialize_with_options(
            input.clone(),
            Value::Object(params),
            &DeserializeOptions::new(),
        )
        .map_err(|error| Problem::invalid_field("query", error.to_string()))?;
        message
            .merge(from_params.encode_to_vec().as_slice())
            .map_err(|error| Problem::new(tonic::Code::Internal, error.to_string()))?;
    }
    Ok(message)
}

/// The JSON of a reply message (or of its `response_body` field).
pub fn reply(route: &Route, encoded: &[u8]) -> Result<Vec<u8>, Problem> {
    let message = DynamicMessage::decode(route.rpc.output(), encoded).map_err(|error| {
        tracing::error!(%error, method = route.rpc.full_name(), "backend reply does not decode");
        Problem::new(tonic::Code::Internal, "the backend's reply does not decode")
    })?;
    if route.response_body.is_empty() {
        // Straight to bytes: no intermediate JSON tree on the common path.
        let mut out = Vec::with_capacity(encoded.len() * 2);
        return message
            .serialize_with_options(
                &mut serde_json::Serializer::new(&mut out),
                &SerializeOptions::new(),
            )
            .map(|()| out)
            .map_err(|error| Problem::new(tonic::Code::Internal, error.to_string()));
    }
    let mut value = to_json(&message)?;
    if let Some(field) = route.rpc.output().get_field_by_name(&route.response_body) {
        value = value
            .get_mut(field.json_name())
            .map(Value::take)
            .unwrap_or(Value::Null);
    }
    serde_json::to_vec(&value)
        .map_err(|error| Problem::new(tonic::Code::Internal, error.to_string()))
}

/// A message as canonical protobuf JSON.
pub fn to_json(message: &DynamicMessage) -> Result<Value, Problem> {
    message
        .serialize_with_options(serde_json::value::Serializer, &SerializeOptions::new())
        .map_err(|error| Problem::new(tonic::Code::Internal, error.to_string()))
}

fn is_blank(body: &[u8]) -> bool {
    body.iter().all(u8::is_ascii_whitespace)
}

fn is_field(message: &MessageDescriptor, key: &str, name: &str) -> bool {
    field_named(message, key).is_some_and(|f| f.name() == name)
}

/// A field by proto name or JSON name.
fn field_named(message: &MessageDescriptor, key: &str) -> Option<FieldDescriptor> {
    message
        .get_field_by_name(key)
        .or_else(|| message.get_field_by_json_name(key))
}

/// Parses a JSON body as `descriptor`; errors name the line, column and, for
/// a value of the wrong type, the field (`prefix` + its path in the body).
fn parse_body(
    descriptor: &MessageDescriptor,
    body: &[u8],
    prefix: &str,
) -> Result<DynamicMessage, Problem> {
    if is_blank(body) {
        return Ok(DynamicMessage::new(descriptor.clone()));
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    let mut track = serde_path_to_error::Track::new();
    let parsed = DynamicMessage::deserialize_with_options(
        descriptor.clone(),
        serde_path_to_error::Deserializer::new(&mut de, &mut track),
        &DeserializeOptions::new(),
    )
    .and_then(|message| de.end().map(|()| message));
    parsed.map_err(|error| {
        let path = track.path().to_string();
        let field = match (prefix.is_empty(), path.as_str()) {
            (_, "" | ".") => prefix.to_owned(),
            (true, path) => path.to_owned(),
            (false, path) => format!("{prefix}.{path}"),
        };
        json_problem(&error, &field)
    })
}

fn json_problem(error: &serde_json::Error, field: &str) -> Problem {
    let (line, column) = (error.line(), error.column());
    let text = error.to_string();
    let what = text
        .strip_suffix(&format!(" at line {line} column {column}"))
        .unwrap_or(&text);
    let (field, description) = match error.classify() {
        serde_json::error::Category::Data if !field.is_empty() => (
            field.to_owned(),
            format!("at line {line}, column {column}: {what}"),
        ),
        _ => (
            "body".to_owned(),
            format!("malformed JSON at line {line}, column {column}: {what}"),
        ),
    };
    Problem::invalid_field(&field, description)
}

fn set_body_field(
    message: &mut DynamicMessage,
    field: &FieldDescriptor,
    body: &[u8],
) -> Result<(), Problem> {
    match field.kind() {
        Kind::Message(inner) if !field.is_list() && !field.is_map() => {
            let value = parse_body(&inner, body, field.name())?;
            message.set_field(field, prost_reflect::Value::Message(value));
            Ok(())
        }
        _ => {
            // A scalar, list or map body: read it as that field of the request.
            let value: Value =
                serde_json::from_slice(body).map_err(|e| json_problem(&e, field.name()))?;
            let mut object = Map::new();
            object.insert(field.name().to_owned(), value);
            let parsed = DynamicMessage::deserialize_with_options(
                message.descriptor(),
                Value::Object(object),
                &DeserializeOptions::new(),
            )
            .map_err(|e| Problem::invalid_field(field.name(), e.to_string()))?;
            message
                .merge(parsed.encode_to_vec().as_slice())
                .map_err(|e| Problem::new(tonic::Code::Internal, e.to_string()))
        }
    }
}

/// Puts `key=value` (a dotted field path) into the JSON object of `message`,
/// typed by the field it names. Repeated fields take every occurrence.
fn insert(
    object: &mut Map<String, Value>,
    message: &MessageDescriptor,
    key: &str,
    raw: &str,
    from_query: bool,
) -> Result<(), Problem> {
    let mut descriptor = message.clone();
    let mut target = object;
    let parts: Vec<&str> = key.split('.').collect();
    for (i, part) in parts.iter().enumerate() {
        let Some(field) = field_named(&descriptor, part) else {
            return Err(Problem::invalid_field(
                key,
                format!(
                    "{} has no field {part:?}",
                    if i == 0 {
                        "the request".to_owned()
                    } else {
                        descriptor.full_name().to_owned()
                    }
                ),
            ));
        };
        let last = i + 1 == parts.len();
        let kind = field.kind();
        if !last {
            let Kind::Message(inner) = kind else {
                return Err(Problem::invalid_field(
                    key,
                    format!("{part:?} has no fields"),
                ));
            };
            if field.is_list() || field.is_map() || is_well_known(&inner) {
                return Err(Problem::invalid_field(
                    key,
                    format!("{part:?} cannot be set field by field in the query string"),
                ));
            }
            let slot = target
                .entry(field.name().to_owned())
                .or_insert_with(|| Value::Object(Map::new()));
            let Value::Object(next) = slot else {
                return Err(Problem::invalid_field(key, "given twice"));
            };
            target = next;
            descriptor = inner;
            continue;
        }
        if field.is_map() {
            return Err(Problem::invalid_field(
                key,
                "map fields cannot be set in the query string",
            ));
        }
        let value = scalar(&kind, raw).map_err(|why| Problem::invalid_field(key, why))?;
        if field.is_list() {
            let slot = target
                .entry(field.name().to_owned())
                .or_insert_with(|| Value::Array(Vec::new()));
            if let Value::Array(items) = slot {
                items.push(value);
            }
        } else if from_query && target.contains_key(field.name()) {
            return Err(Problem::invalid_field(key, "given twice"));
        } else {
            target.insert(field.name().to_owned(), value);
        }
    }
    Ok(())
}

fn is_well_known(message: &MessageDescriptor) -> bool {
    message.full_name().starts_with("google.protobuf.")
}

/// The JSON form of one query-string value for a field of `kind`.
fn scalar(kind: &Kind, raw: &str) -> Result<Value, String> {
    Ok(match kind {
        Kind::Bool => match raw {
            "true" | "1" => Value::Bool(true),
            "false" | "0" => Value::Bool(false),
            _ => return Err(format!("{raw:?} is not true or false")),
        },
        Kind::Enum(_) => raw.parse::<i64>().map_or_else(
            |_| Value::String(raw.to_owned()),
            |n| Value::Number(n.into()),
        ),
        Kind::Message(inner) => match inner.full_name() {
            "google.protobuf.BoolValue" => scalar(&Kind::Bool, raw)?,
            name if name.starts_with("google.protobuf.") => Value::String(raw.to_owned()),
            name => {
                return Err(format!(
                    "is a message ({name}); set its fields, e.g. {{field}}.name=..."
                ));
            }
        },
        // Numbers go as strings, which protobuf JSON reads for every number type.
        _ => Value::String(raw.to_owned()),
    })
}

#[cfg(test)]
mod tests {
    use super::super::routes::{Found, Routes};
    use super::*;

    fn call(method: http::Method, path_and_query: &str, body: &str) -> Result<Value, Problem> {
        let routes = Routes::from_contracts().unwrap();
        let (path, query) = path_and_query
            .split_once('?')
            .map_or((path_and_query, None), |(p, q)| (p, Some(q)));
        let Found::Route(route, bound) = routes.find(&method, path) else {
            panic!("no route for {method} {path}");
        };
        let message = request(route, &bound, query, body.as_bytes())?;
        Ok(serde_json::json!({
            "method": route.rpc.name(),
            "request": to_json(&message).unwrap(),
        }))
    }

    #[test]
    fn path_query_and_body_fill_the_request() {
        let got = call(
            http::Method::PATCH,
            "/v1/incidents/INC1?update_mask=title,urgency&etag=e1",
            r#"{"title": "VPN down", "urgency": "URGENCY_HIGH", "callerTimeZone": "Europe/Paris", "name": "incidents/OTHER"}"#,
        )
        .unwrap();
        assert_eq!(got["method"], "UpdateIncident");
        let request = &got["request"];
        assert_eq!(
            request["incident"]["name"], "incidents/INC1",
            "the path wins"
        );
        assert_eq!(request["incident"]["title"], "VPN down");
        assert_eq!(request["incident"]["callerTimeZone"], "Europe/Paris");
        assert_eq!(request["updateMask"], "title,urgency");
        assert_eq!(request["etag"], "e1");

        let got = call(
            http::Method::GET,
            "/v1/incidents?pageSize=5&filter=state%20%3D%20NEW&order_by=priority",
            "",
        )
        .unwrap();
        assert_eq!(
            got["request"],
            serde_json::json!({"pageSize": 5, "filter": "state = NEW", "orderBy": "priority"})
        );

        let got = call(
            http::Method::GET,
            "/v1/incidentKpis?period.start_time=2026-01-01T00:00:00Z&period.endTime=2026-02-01T00:00:00Z",
            "",
        )
        .unwrap();
        assert_eq!(
            got["request"]["period"]["startTime"],
            "2026-01-01T00:00:00Z"
        );
        assert_eq!(got["request"]["period"]["endTime"], "2026-02-01T00:00:00Z");

        let got = call(
            http::Method::POST,
            "/v1/incidents/INC1:hold",
            r#"{"reason": 1, "note": "n"}"#,
        )
        .unwrap();
        assert_eq!(got["request"]["reason"], "HOLD_REASON_AWAITING_CALLER");
        assert_eq!(got["request"]["name"], "incidents/INC1");
        let got = call(http::Method::POST, "/v1/incidents/INC1:close", "").unwrap();
        assert_eq!(got["request"]["name"], "incidents/INC1");
    }

    #[test]
    fn bad_json_names_line_column_and_field() {
        let problem = call(
            http::Method::POST,
            "/v1/incidents",
            "{\n  \"title\": \"x\",\n  \"impact\": [1]\n}",
        )
        .unwrap_err();
        let body = problem.body();
        let violation = &body["details"][0]["fieldViolations"][0];
        assert_eq!(violation["field"], "incident.impact", "{body}");
        assert!(
            violation["description"]
                .as_str()
                .unwrap()
                .contains("line 3, column"),
            "{body}"
        );

        let problem = call(
            http::Method::POST,
            "/v1/incidents",
            "{\n  \"title\": \"x\"\n  \"impact\": 1}",
        )
        .unwrap_err();
        let body = problem.body();
        assert_eq!(body["status"], 400);
        assert_eq!(body["details"][0]["fieldViolations"][0]["field"], "body");
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .contains("malformed JSON at line 3, column 3"),
            "{body}"
        );

        let problem = call(http::Method::POST, "/v1/incidents", r#"{"titel": "x"}"#).unwrap_err();
        assert!(
            problem.body()["message"]
                .as_str()
                .unwrap()
                .contains("titel"),
            "{}",
            problem.body()
        );
        let problem = call(http::Method::GET, "/v1/incidents?colour=red", "").unwrap_err();
        assert_eq!(
            problem.body()["details"][0]["fieldViolations"][0]["field"],
            "colour"
        );
        let problem = call(http::Method::GET, "/v1/incidents?pageSize=ten", "").unwrap_err();
        assert_eq!(problem.status(), http::StatusCode::BAD_REQUEST);
        let problem = call(http::Method::GET, "/v1/incidents/INC1", "{}").unwrap_err();
        assert_eq!(
            problem.body()["details"][0]["fieldViolations"][0]["field"],
            "body"
        );
    }
}
