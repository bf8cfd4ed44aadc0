//! The OpenAPI 3.1 document served at `/openapi.json`: every route, its request body and its answers. The
//! server's tests check real responses against these schemas ([`check`]), so the document cannot drift from what
//! the routes send.

use serde_json::{json, Value};

fn error_responses(codes: &[&str]) -> Value {
    let mut map = serde_json::Map::new();
    for code in codes {
        map.insert(
            code.to_string(),
            json!({"description": "An error (OpenAI's shape)",
                   "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}),
        );
    }
    Value::Object(map)
}

fn ok(schema: &str, description: &str) -> Value {
    json!({"description": description,
           "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema}")}}}})
}

fn with_errors(ok_response: Value, codes: &[&str]) -> Value {
    let mut responses = error_responses(codes);
    if let Value::Object(map) = &mut responses {
        map.insert("200".into(), ok_response);
    }
    responses
}

fn body(schema: &str) -> Value {
    json!({"required": true,
           "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema}")}}}})
}

/// The document.
pub fn document() -> Value {
    let generation_errors = ["400", "404", "413", "429", "500", "503", "504"];
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "dept serve",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "DePT and prompt-tuning adapters on one frozen backbone, mixed in one batch. \
                            /v1/completions and /v1/models follow OpenAI's API; `model` names an adapter."
        },
        "paths": {
            "/v1/completions": {"post": {
                "summary": "Greedy completion of one or more prompts with an adapter",
                "requestBody": body("CompletionRequest"),
                "responses": with_errors(ok("CompletionResponse", "The completions"), &generation_errors)
            }},
            "/v1/models": {"get": {
                "summary": "The loaded adapters",
                "responses": {"200": ok("ModelList", "Every loaded adapter")}
            }},
            "/v1/predict": {"post": {
                "summary": "Task fields in, label names out, with the adapter's task template and verbaliser",
                "requestBody": body("PredictRequest"),
                "responses": with_errors(ok("PredictResponse", "One prediction per input"), &generation_errors)
            }},
            "/v1/adapters": {"post": {
                "summary": "Load (or atomically replace) an adapter from under the adapter root (admin token)",
                "requestBody": body("LoadRequest"),
                "responses": with_errors(ok("AdapterInfo", "The loaded adapter"),
                                         &["400", "401", "403", "413", "422", "503"])
            }},
            "/v1/adapters/{name}": {"delete": {
                "summary": "Unload an adapter (admin token); requests in flight finish on it",
                "parameters": [{"name": "name", "in": "path", "required": true, "schema": {"type": "string"}}],
                "responses": with_errors(ok("AdapterInfo", "The unloaded adapter"), &["401", "403", "404"])
            }},
            "/healthz": {"get": {"summary": "The process is up",
                                 "responses": with_errors(ok("Health", "Alive"), &["500"])}},
            "/readyz": {"get": {"summary": "Ready to take requests (503 while shutting down)",
                                "responses": with_errors(ok("Readiness", "Ready"), &["500", "503"])}},
            "/metrics": {"get": {"summary": "Prometheus metrics (text exposition format)",
                                 "responses": {"200": {"description": "Metrics",
                                                       "content": {"text/plain": {"schema": {"type": "string"}}}}}}},
            "/openapi.json": {"get": {"summary": "This document",
                                      "responses": {"200": {"description": "OpenAPI 3.1",
                                                            "content": {"application/json": {}}}}}}
        },
        "components": {"schemas": schemas()}
    })
}

fn schemas() -> Value {
    json!({
        "CompletionRequest": {
            "type": "object", "required": ["model", "prompt"],
            "properties": {
                "model": {"type": "string", "description": "The adapter's name"},
                "prompt": {"oneOf": [
                    {"type": "string"}, {"type": "array", "items": {"type": "string"}},
                    {"type": "array", "items": {"type": "integer"}},
                    {"type": "array", "items": {"type": "array", "items": {"type": "integer"}}}]},
                "max_tokens": {"type": "integer", "minimum": 1, "default": 16},
                "temperature": {"type": "number", "description": "0 only: decoding is greedy"},
                "truncate": {"type": "boolean", "default": false,
                             "description": "Cut inputs longer than the adapter's s instead of refusing them"}
            }
        },
        "CompletionResponse": {
            "type": "object",
            "required": ["id", "object", "created", "model", "choices", "usage", "system_fingerprint"],
            "properties": {
                "id": {"type": "string"}, "object": {"type": "string", "enum": ["text_completion"]},
                "created": {"type": "integer"}, "model": {"type": "string"},
                "system_fingerprint": {"type": "string", "description": "The adapter version that answered"},
                "choices": {"type": "array", "items": {
                    "type": "object", "required": ["index", "text", "finish_reason", "logprobs"],
                    "properties": {"index": {"type": "integer"}, "text": {"type": "string"},
                                   "logprobs": {"type": "null"},
                                   "finish_reason": {"type": "string", "enum": ["stop", "length"]}}}},
                "usage": {"type": "object", "required": ["prompt_tokens", "completion_tokens", "total_tokens"],
                          "properties": {"prompt_tokens": {"type": "integer"},
                                         "completion_tokens": {"type": "integer"},
                                         "total_tokens": {"type": "integer"}}}
            }
        },
        "ModelList": {
            "type": "object", "required": ["object", "data"],
            "properties": {"object": {"type": "string", "enum": ["list"]},
                           "data": {"type": "array", "items": {"$ref": "#/components/schemas/ModelCard"}}}
        },
        "ModelCard": {
            "type": "object",
            "required": ["id", "object", "created", "owned_by", "parent", "method", "m", "r", "d", "version",
                         "max_input_tokens", "max_target_len"],
            "properties": {
                "id": {"type": "string"}, "object": {"type": "string", "enum": ["model"]},
                "created": {"type": "integer"}, "owned_by": {"type": "string"},
                "parent": {"type": "string", "description": "The backbone"},
                "method": {"type": "string", "enum": ["dept", "prompt_tuning"]},
                "m": {"type": "integer"}, "r": {"type": "integer"}, "s": {"type": ["integer", "null"]},
                "d": {"type": "integer"}, "task": {"type": ["string", "null"]},
                "version": {"type": "string"}, "max_input_tokens": {"type": "integer"},
                "max_target_len": {"type": "integer"}, "base_model": {"type": ["string", "null"]}
            }
        },
        "AdapterInfo": {
            "type": "object",
            "required": ["name", "method", "m", "r", "d", "version", "max_input_tokens", "max_target_len"],
            "properties": {
                "name": {"type": "string"}, "method": {"type": "string", "enum": ["dept", "prompt_tuning"]},
                "m": {"type": "integer"}, "r": {"type": "integer"}, "s": {"type": ["integer", "null"]},
                "d": {"type": "integer"}, "task": {"type": ["string", "null"]}, "version": {"type": "string"},
                "max_input_tokens": {"type": "integer"}, "max_target_len": {"type": "integer"},
                "base_model": {"type": ["string", "null"]}
            }
        },
        "PredictRequest": {
            "type": "object", "required": ["adapter", "inputs"],
            "properties": {
                "adapter": {"type": "string"},
                "inputs": {"type": "array", "items": {"type": "object",
                           "description": "The task's raw fields, e.g. sentence1 and sentence2 for RTE"}},
                "truncate": {"type": "boolean", "default": false},
                "return_tokens": {"type": "boolean", "default": false}
            }
        },
        "PredictResponse": {
            "type": "object", "required": ["adapter", "task", "version", "predictions"],
            "properties": {
                "adapter": {"type": "string"}, "task": {"type": "string"}, "version": {"type": "string"},
                "predictions": {"type": "array", "items": {
                    "type": "object", "required": ["label", "text", "valid", "input"],
                    "properties": {"label": {"type": "string"}, "text": {"type": "string"},
                                   "valid": {"type": "boolean"}, "input": {"type": "string"},
                                   "tokens": {"type": "array", "items": {"type": "integer"}}}}}
            }
        },
        "LoadRequest": {
            "type": "object", "required": ["name", "path"],
            "properties": {"name": {"type": "string"},
                           "path": {"type": "string", "description": "Relative to the adapter root"}}
        },
        "Health": {"type": "object", "required": ["status"], "properties": {"status": {"type": "string"}}},
        "Readiness": {
            "type": "object", "required": ["status", "adapters", "queued"],
            "properties": {"status": {"type": "string"}, "adapters": {"type": "integer"},
                           "queued": {"type": "integer"}}
        },
        "Error": {
            "type": "object", "required": ["error"],
            "properties": {"error": {"type": "object", "required": ["message", "type", "code"],
                                     "properties": {"message": {"type": "string"}, "type": {"type": "string"},
                                                    "param": {"type": ["string", "null"]},
                                                    "code": {"type": "integer"}}}}
        }
    })
}

/// Checks `value` against the document's schema `name` (the subset of JSON Schema the document uses: `type`,
/// `required`, `properties`, `items`, `enum`, `oneOf`, `$ref`); the error says where it differs.
pub fn check(name: &str, value: &Value) -> Result<(), String> {
    let document = document();
    let schema = &document["components"]["schemas"][name];
    if schema.is_null() {
        return Err(format!("the document has no schema {name}"));
    }
    check_against(&document, schema, value, name)
}

fn check_against(document: &Value, schema: &Value, value: &Value, at: &str) -> Result<(), String> {
    if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
        let name = reference.trim_start_matches("#/components/schemas/");
        return check_against(
            document,
            &document["components"]["schemas"][name],
            value,
            at,
        );
    }
    if let Some(options) = schema.get("oneOf").and_then(Value::as_array) {
        let matching = options
            .iter()
            .filter(|o| check_against(document, o, value, at).is_ok())
            .count();
        return if matching == 1 {
            Ok(())
        } else {
            Err(format!(
                "{at}: matches {matching} of the oneOf schemas, not one"
            ))
        };
    }
    if let Some(kinds) = schema.get("type") {
        let kinds: Vec<&str> = match kinds {
            Value::String(k) => vec![k.as_str()],
            Value::Array(ks) => ks.iter().filter_map(Value::as_str).collect(),
            _ => vec![],
        };
        if !kinds.iter().any(|k| is_kind(value, k)) {
            return Err(format!("{at}: {value} is not of type {kinds:?}"));
        }
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array) {
        if !allowed.contains(value) {
            return Err(format!("{at}: {value} is not one of {allowed:?}"));
        }
    }
    if let (Some(object), Some(required)) = (
        value.as_object(),
        schema.get("required").and_then(Value::as_array),
    ) {
        for field in required.iter().filter_map(Value::as_str) {
            if !object.contains_key(field) {
                return Err(format!("{at}: required field {field:?} is missing"));
            }
        }
    }
    if let (Some(object), Some(properties)) = (
        value.as_object(),
        schema.get("properties").and_then(Value::as_object),
    ) {
        for (field, field_value) in object {
            if let Some(property) = properties.get(field) {
                check_against(document, property, field_value, &format!("{at}.{field}"))?;
            }
        }
    }
    if let (Some(items), Some(values)) = (schema.get("items"), value.as_array()) {
        for (i, item) in values.iter().enumerate() {
            check_against(document, items, item, &format!("{at}[{i}]"))?;
        }
    }
    Ok(())
}

fn is_kind(value: &Value, kind: &str) -> bool {
    match kind {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        "boolean" => value.is_boolean(),
        "null" => value.is_null(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_checker_finds_missing_fields_wrong_types_and_values() {
        let good = json!({"error": {"message": "m", "type": "t", "param": null, "code": 400}});
        assert!(check("Error", &good).is_ok());
        let missing = json!({"error": {"message": "m", "type": "t"}});
        assert!(check("Error", &missing).unwrap_err().contains("\"code\""));
        let wrong = json!({"object": "list", "data": [{"id": 3}]});
        assert!(check("ModelList", &wrong).is_err());
        let bad_enum = json!({"object": "lists", "data": []});
        assert!(check("ModelList", &bad_enum)
            .unwrap_err()
            .contains("not one of"));
        assert!(check("Nope", &good).is_err());
    }
}
