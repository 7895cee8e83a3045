//! Typed tool arguments: each tool's `Args` struct (serde `Deserialize` +
//! schemars `JsonSchema`) is both the JSON schema the model is shown and the
//! parser of its calls, so the two cannot drift.
//!
//! Parsing is driven by the generated schema: before serde sees the
//! arguments, each advertised property is checked against its schema type
//! with a message naming the argument (what the model needs to correct
//! itself), and the coercions models need are applied (`null` is absent, an
//! integer may come as a string, a list of strings as one string, the whole
//! object as a JSON string).

use schemars::{JsonSchema, SchemaGenerator};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

/// The schema shown to the model for `T`: properties, their types and
/// descriptions, and the required list, without schemars' bookkeeping
/// (`$schema`, `title`, integer `format`s, `null` in optional types).
pub(super) fn schema_of<T: JsonSchema>() -> Value {
    let mut schema = SchemaGenerator::default().into_root_schema_for::<T>().to_value();
    if let Value::Object(root) = &mut schema {
        for key in ["$schema", "title", "description"] {
            root.remove(key);
        }
    }
    simplify(&mut schema);
    schema
}

/// Drops what adds tokens but nothing a model acts on: `format` (`uint`,
/// `uint64`), and `null` in `type` lists (an optional argument is simply not
/// required).
fn simplify(schema: &mut Value) {
    match schema {
        Value::Object(map) => {
            map.remove("format");
            if let Some(Value::Array(types)) = map.get_mut("type") {
                types.retain(|kind| kind != "null");
                if types.len() == 1 {
                    let only = types.remove(0);
                    map.insert("type".to_string(), only);
                }
            }
            map.values_mut().for_each(simplify);
        }
        Value::Array(items) => items.iter_mut().for_each(simplify),
        _ => {}
    }
}

/// Parses a call's raw arguments into `T`, checked against `T`'s schema. The
/// `Err` is the message for the model (without the tool name).
pub(super) fn parse<T: JsonSchema + DeserializeOwned>(raw: &Value) -> Result<T, String> {
    let mut object = as_object(raw)?;
    let schema = schema_of::<T>();
    let properties = schema.get("properties").and_then(Value::as_object);
    // Absent and null are the same to every tool.
    object.retain(|_, value| !value.is_null());
    if let Some(required) = schema.get("required").and_then(Value::as_array) {
        for key in required.iter().filter_map(Value::as_str) {
            if !object.contains_key(key) {
                return Err(format!("missing required argument `{key}`"));
            }
        }
    }
    for (key, property) in properties.into_iter().flatten() {
        if let Some(value) = object.get_mut(key) {
            check_and_coerce(key, property, value)?;
        }
    }
    serde_json::from_value(Value::Object(object)).map_err(|err| format!("invalid arguments: {err}"))
}

fn as_object(raw: &Value) -> Result<Map<String, Value>, String> {
    match raw {
        Value::Object(map) => Ok(map.clone()),
        Value::Null => Ok(Map::new()),
        // Some providers deliver the arguments as a JSON string.
        Value::String(text) => match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(map)) => Ok(map),
            _ => Err(format!("arguments must be a JSON object, got the string {text:?}")),
        },
        other => Err(format!("arguments must be a JSON object, got {other}")),
    }
}

/// Checks one argument against its property schema, rewriting the lenient
/// forms into the schema's type.
fn check_and_coerce(key: &str, property: &Value, value: &mut Value) -> Result<(), String> {
    match property.get("type").and_then(Value::as_str) {
        Some("string") => match value {
            Value::String(_) => Ok(()),
            other => Err(format!("argument `{key}` must be a string, got {other}")),
        },
        Some("integer") => {
            let not_natural = || format!("argument `{key}` must be a non-negative integer");
            let number = match value {
                Value::Number(number) => number.as_u64().ok_or_else(not_natural)?,
                Value::String(text) => text.trim().parse::<u64>().map_err(|_| not_natural())?,
                other => return Err(format!("argument `{key}` must be an integer, got {other}")),
            };
            *value = Value::from(number);
            Ok(())
        }
        Some("boolean") => match value {
            Value::Bool(_) => Ok(()),
            other => Err(format!("argument `{key}` must be true or false, got {other}")),
        },
        Some("array") => match value {
            Value::String(text) => {
                *value = Value::Array(vec![Value::String(std::mem::take(text))]);
                Ok(())
            }
            Value::Array(items) if items.iter().all(Value::is_string) => Ok(()),
            Value::Array(_) => Err(format!("`{key}` must be a list of strings")),
            other => Err(format!("argument `{key}` must be a list of strings, got {other}")),
        },
        // Other schema types are left to serde.
        _ => Ok(()),
    }
}
