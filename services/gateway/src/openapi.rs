//! The OpenAPI 3.0 document of the REST API, generated from the same
//! descriptors and `google.api.http` rules the gateway routes by: a path per
//! binding, path and query parameters, request bodies, a schema per message
//! (its proto comments as descriptions, enums as their names, 64-bit
//! integers as strings, well-known types in their JSON forms), the error
//! schema and the bearer (JWT or API key) and `x-api-key` security schemes.

use std::collections::{BTreeMap, HashMap};

use prost_reflect::{DescriptorPool, FieldDescriptor, Kind, MessageDescriptor};
use serde_json::{Map, Value, json};

use crate::rest::problem::CODE_NAMES;
use crate::rest::routes::{Body, Route, Routes};

const ERROR: &str = "itsm.gateway.Error";

/// The document for `routes`.
pub fn document(routes: &Routes) -> Value {
    let comments = Comments::new(&routes.pool);
    let mut schemas = Schemas {
        comments: &comments,
        done: BTreeMap::new(),
    };
    let mut paths: BTreeMap<String, Map<String, Value>> = BTreeMap::new();
    let mut operation_ids: HashMap<String, usize> = HashMap::new();
    for route in &routes.routes {
        let (path, path_params) = route.template.openapi_path();
        let base = format!("{}_{}", route.rpc.parent_service().name(), route.rpc.name());
        let count = operation_ids.entry(base.clone()).or_insert(0);
        let operation_id = if *count == 0 {
            base
        } else {
            format!("{base}_{count}")
        };
        *count += 1;
        let operation = operation(route, &operation_id, &path_params, &mut schemas, &comments);
        paths
            .entry(path)
            .or_default()
            .insert(route.method.as_str().to_ascii_lowercase(), operation);
    }
    let mut components = schemas.done;
    components.insert(ERROR.to_owned(), error_schema());
    let mut tags: Vec<Value> = routes
        .services()
        .iter()
        .filter_map(|name| routes.pool.get_service_by_name(name))
        .map(|service| {
            json!({
                "name": service.name(),
                "description": comments.of(service.parent_file().name(), service.path()),
            })
        })
        .collect();
    tags.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "ITSM API",
            "version": "v1",
            "description": "REST/JSON mapping of the ITSM platform's gRPC services, served by the API gateway. \
                Request and response bodies are canonical protobuf JSON: lowerCamelCase field names \
                (proto names are accepted too), enums as names, 64-bit integers as strings, timestamps \
                in RFC 3339, durations as seconds with an \"s\" suffix. Errors carry the gRPC code, the \
                HTTP status, a message and the google.rpc details (field violations, precondition failures). \
                Send `x-request-timeout` (e.g. 2.5s) to set a deadline.",
        },
        "servers": [{"url": "/"}],
        "tags": tags,
        "security": [{"bearerAuth": []}, {"apiKeyAuth": []}],
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A JWT, or an API key (\"itsm_<id>_<secret>\") as the bearer token.",
                },
                "apiKeyAuth": {"type": "apiKey", "in": "header", "name": "x-api-key"},
            },
        },
    })
}

fn operation(
    route: &Route,
    operation_id: &str,
    path_params: &[String],
    schemas: &mut Schemas<'_>,
    comments: &Comments,
) -> Value {
    let rpc = &route.rpc;
    let description = comments.of(rpc.parent_file().name(), rpc.path());
    let summary = description.lines().next().unwrap_or(rpc.name()).to_owned();
    let mut parameters = Vec::new();
    let bound: Vec<String> = route
        .template
        .variables
        .iter()
        .map(|v| v.field.clone())
        .collect();
    for (name, var) in path_params.iter().zip(path_variables(route)) {
        parameters.push(json!({
            "name": name,
            "in": "path",
            "required": true,
            "description": format!("A segment of the {var} field."),
            "schema": {"type": "string"},
        }));
    }
    let input = rpc.input();
    let mut request_body = None;
    match &route.body {
        Body::All => {
            // The request message less the fields the path sets.
            let mut schema = schemas.message(&input);
            if let Some(properties) = schema["properties"].as_object_mut() {
                for field in route.template.bound_fields() {
                    if let Some(top) = input.get_field_by_name(field) {
                        properties.remove(top.json_name());
                    }
                }
            }
            request_body = Some(json!({
                "required": true,
                "content": {"application/json": {"schema": schema}},
            }));
        }
        Body::Field(name) => {
            if let Some(field) = input.get_field_by_name(name) {
                request_body = Some(json!({
                    "required": true,
                    "description": comments.of(field.parent_file().name(), field.path()),
                    "content": {"application/json": {"schema": schemas.field(&field)}},
                }));
            }
            query_parameters(
                &input,
                "",
                &bound,
                Some(name),
                0,
                schemas,
                comments,
                &mut parameters,
            );
        }
        Body::None => {
            query_parameters(
                &input,
                "",
                &bound,
                None,
                0,
                schemas,
                comments,
                &mut parameters,
            );
        }
    }
    let output = rpc.output();
    let mut reply = schemas.reference(&output);
    if !route.response_body.is_empty()
        && let Some(field) = output.get_field_by_name(&route.response_body)
    {
        reply = schemas.field(&field);
    }
    let mut op = json!({
        "operationId": operation_id,
        "tags": [rpc.parent_service().name()],
        "summary": summary,
        "description": format!("{description}\n\ngRPC: `{}`", route.grpc_path),
        "parameters": parameters,
        "responses": {
            "200": {
                "description": "The reply.",
                "content": {"application/json": {"schema": reply}},
            },
            "default": {
                "description": "An error: the gRPC code, its HTTP status, a message and details.",
                "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{ERROR}")}}},
            },
        },
    });
    if let Some(body) = request_body
        && let Some(object) = op.as_object_mut()
    {
        object.insert("requestBody".to_owned(), body);
    }
    op
}

/// The field of each path parameter, in order.
fn path_variables(route: &Route) -> Vec<String> {
    let mut out = Vec::new();
    for var in &route.template.variables {
        for i in var.start..var.start + var.len {
            if !matches!(
                route.template.segments[i],
                crate::rest::template::Segment::Literal(_)
            ) {
                out.push(var.field.clone());
            }
        }
    }
    out
}

#[allow(clippy::too_many_arguments)]
fn query_parameters(
    message: &MessageDescriptor,
    prefix: &str,
    bound: &[String],
    body: Option<&str>,
    depth: usize,
    schemas: &mut Schemas<'_>,
    comments: &Comments,
    out: &mut Vec<Value>,
) {
    for field in message.fields() {
        let path = if prefix.is_empty() {
            field.json_name().to_owned()
        } else {
            format!("{prefix}.{}", field.json_name())
        };
        let proto_path = path_in_proto_names(message, prefix, &field);
        if bound.contains(&proto_path) || (depth == 0 && body == Some(field.name())) {
            continue;
        }
        if field.is_map() {
            continue;
        }
        if let Kind::Message(inner) = field.kind()
            && !inner.full_name().starts_with("google.protobuf.")
        {
            // Nested messages are set field by field, a few levels deep.
            if !field.is_list() && depth < 2 {
                query_parameters(
                    &inner,
                    &path,
                    bound,
                    body,
                    depth + 1,
                    schemas,
                    comments,
                    out,
                );
            }
            continue;
        }
        out.push(json!({
            "name": path,
            "in": "query",
            "required": false,
            "description": comments.of(field.parent_file().name(), field.path()),
            "schema": schemas.field(&field),
        }));
    }
}

fn path_in_proto_names(
    _message: &MessageDescriptor,
    prefix: &str,
    field: &FieldDescriptor,
) -> String {
    // Path variables bind top-level or nested fields by proto name; nested
    // query names use JSON names, so compare the last part only at depth 0.
    if prefix.is_empty() {
        field.name().to_owned()
    } else {
        format!("{prefix}.{}", field.name())
    }
}

fn error_schema() -> Value {
    json!({
        "type": "object",
        "description": "An error. `code` is the gRPC status code's name, `status` the HTTP status it maps to.",
        "required": ["code", "status", "message"],
        "properties": {
            "code": {"type": "string", "enum": CODE_NAMES},
            "status": {"type": "integer", "format": "int32"},
            "message": {"type": "string", "description": "What went wrong, for a person."},
            "details": {
                "type": "array",
                "description": "google.rpc details, each with its \"@type\": BadRequest (fieldViolations: field, description), PreconditionFailure (violations: type, subject, description), ErrorInfo, ResourceInfo, RetryInfo, Help...",
                "items": {
                    "type": "object",
                    "properties": {"@type": {"type": "string"}},
                    "additionalProperties": true,
                },
            },
        },
    })
}

/// Schemas of the messages referenced so far.
struct Schemas<'a> {
    comments: &'a Comments,
    done: BTreeMap<String, Value>,
}

impl Schemas<'_> {
    /// A `$ref` to the message's schema (made on first use), or the inline
    /// JSON form of a well-known type.
    fn reference(&mut self, message: &MessageDescriptor) -> Value {
        if let Some(wkt) = well_known(message) {
            return wkt;
        }
        let name = message.full_name().to_owned();
        if !self.done.contains_key(&name) {
            // Placeholder first: messages may refer to themselves.
            self.done.insert(name.clone(), Value::Null);
            let schema = self.message(message);
            self.done.insert(name.clone(), schema);
        }
        json!({"$ref": format!("#/components/schemas/{name}")})
    }

    fn message(&mut self, message: &MessageDescriptor) -> Value {
        let mut properties = Map::new();
        for field in message.fields() {
            let mut schema = self.field(&field);
            let description = self.comments.of(field.parent_file().name(), field.path());
            if !description.is_empty() {
                schema = describe(schema, &description);
            }
            properties.insert(field.json_name().to_owned(), schema);
        }
        json!({
            "type": "object",
            "description": self.comments.of(message.parent_file().name(), message.path()),
            "properties": properties,
        })
    }

    /// The schema of one field's JSON value.
    fn field(&mut self, field: &FieldDescriptor) -> Value {
        if field.is_map()
            && let Kind::Message(entry) = field.kind()
            && let Some(value) = entry.get_field(2)
        {
            return json!({"type": "object", "additionalProperties": self.single(&value.kind())});
        }
        let one = self.single(&field.kind());
        if field.is_list() {
            json!({"type": "array", "items": one})
        } else {
            one
        }
    }

    fn single(&mut self, kind: &Kind) -> Value {
        match kind {
            Kind::Double => json!({"type": "number", "format": "double"}),
            Kind::Float => json!({"type": "number", "format": "float"}),
            Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => {
                json!({"type": "integer", "format": "int32"})
            }
            Kind::Uint32 | Kind::Fixed32 => {
                json!({"type": "integer", "format": "int64", "minimum": 0})
            }
            Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => {
                json!({"type": "string", "format": "int64"})
            }
            Kind::Uint64 | Kind::Fixed64 => json!({"type": "string", "format": "uint64"}),
            Kind::Bool => json!({"type": "boolean"}),
            Kind::String => json!({"type": "string"}),
            Kind::Bytes => json!({"type": "string", "format": "byte"}),
            Kind::Enum(e) => json!({
                "type": "string",
                "enum": e.values().map(|v| v.name().to_owned()).collect::<Vec<_>>(),
                "description": self.comments.of(e.parent_file().name(), e.path()),
            }),
            Kind::Message(m) => self.reference(m),
        }
    }
}

/// `$ref` siblings are ignored in OpenAPI 3.0: wrap in allOf to describe.
fn describe(mut schema: Value, description: &str) -> Value {
    if schema.get("$ref").is_some() {
        return json!({"allOf": [schema], "description": description});
    }
    if let Some(object) = schema.as_object_mut() {
        let text = match object.get("description").and_then(Value::as_str) {
            Some(own) if !own.is_empty() => format!("{description}\n\n{own}"),
            _ => description.to_owned(),
        };
        object.insert("description".to_owned(), Value::String(text));
    }
    schema
}

/// The JSON forms of the well-known types.
fn well_known(message: &MessageDescriptor) -> Option<Value> {
    Some(match message.full_name() {
        "google.protobuf.Timestamp" => json!({"type": "string", "format": "date-time"}),
        "google.protobuf.Duration" => json!({
            "type": "string",
            "pattern": "^-?[0-9]+(\\.[0-9]{1,9})?s$",
            "description": "Seconds with an \"s\" suffix, e.g. \"3600s\" or \"1.5s\".",
        }),
        "google.protobuf.FieldMask" => json!({
            "type": "string",
            "description": "Field paths separated by commas, e.g. \"title,urgency\".",
        }),
        "google.protobuf.Empty" => json!({"type": "object"}),
        "google.protobuf.Struct" => json!({"type": "object", "additionalProperties": true}),
        "google.protobuf.Value" => json!({}),
        "google.protobuf.ListValue" => json!({"type": "array", "items": {}}),
        "google.protobuf.Any" => json!({
            "type": "object",
            "properties": {"@type": {"type": "string"}},
            "additionalProperties": true,
        }),
        "google.protobuf.StringValue" => json!({"type": "string"}),
        "google.protobuf.BytesValue" => json!({"type": "string", "format": "byte"}),
        "google.protobuf.BoolValue" => json!({"type": "boolean"}),
        "google.protobuf.Int32Value" => json!({"type": "integer", "format": "int32"}),
        "google.protobuf.UInt32Value" => json!({"type": "integer", "format": "int64"}),
        "google.protobuf.Int64Value" => json!({"type": "string", "format": "int64"}),
        "google.protobuf.UInt64Value" => json!({"type": "string", "format": "uint64"}),
        "google.protobuf.DoubleValue" => json!({"type": "number", "format": "double"}),
        "google.protobuf.FloatValue" => json!({"type": "number", "format": "float"}),
        _ => return None,
    })
}

/// Leading comments by file and descriptor path.
struct Comments {
    by_file: HashMap<String, HashMap<Vec<i32>, String>>,
}

impl Comments {
    fn new(pool: &DescriptorPool) -> Self {
        let mut by_file = HashMap::new();
        for file in pool.files() {
            let mut map = HashMap::new();
            if let Some(info) = &file.file_descriptor_proto().source_code_info {
                for location in &info.location {
                    if let Some(text) = &location.leading_comments {
                        let text = text
                            .lines()
                            .map(str::trim)
                            .collect::<Vec<_>>()
                            .join("\n")
                            .trim()
                            .to_owned();
                        if !text.is_empty() {
                            map.insert(location.path.clone(), text);
                        }
                    }
                }
            }
            by_file.insert(file.name().to_owned(), map);
        }
        Self { by_file }
    }

    fn of(&self, file: &str, path: &[i32]) -> String {
        self.by_file
            .get(file)
            .and_then(|m| m.get(path))
            .cloned()
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_binding_is_an_operation_with_its_schemas() {
        let routes = Routes::from_contracts().unwrap();
        let doc = document(&routes);
        let mut operations = 0;
        for item in doc["paths"].as_object().unwrap().values() {
            operations += item.as_object().unwrap().len();
        }
        assert_eq!(operations, routes.routes.len());
        let get = &doc["paths"]["/v1/incidents/{incidentsId}"]["get"];
        assert_eq!(get["operationId"], "IncidentService_GetIncident");
        assert_eq!(
            get["summary"],
            "Reads one incident by name (\"incidents/INC0000042\")."
        );
        let incident = &doc["components"]["schemas"]["itsm.incidents.v1.Incident"];
        let states = incident["properties"]["state"]["enum"].as_array().unwrap();
        assert!(states.contains(&json!("INCIDENT_STATE_NEW")), "{incident}");
        assert_eq!(incident["properties"]["title"]["type"], "string");
        assert_eq!(incident["properties"]["createTime"]["format"], "date-time");
        let list = &doc["paths"]["/v1/incidents"]["get"]["parameters"];
        let names: Vec<&str> = list
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|p| p["name"].as_str())
            .collect();
        assert_eq!(names, ["pageSize", "pageToken", "filter", "orderBy"]);
        let patch = &doc["paths"]["/v1/incidents/{incidentsId}"]["patch"];
        assert_eq!(
            patch["requestBody"]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/itsm.incidents.v1.Incident"
        );
        let assign = &doc["paths"]["/v1/incidents/{incidentsId}:assign"]["post"];
        let body = &assign["requestBody"]["content"]["application/json"]["schema"]["properties"];
        assert!(body.get("name").is_none(), "the path sets name: {body}");
        assert!(body.get("assignmentGroup").is_some(), "{body}");
    }
}
