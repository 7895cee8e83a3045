//! Every tool's advertised schema against its parser: a valid example call
//! per tool is accepted (and fits the schema), an invalid one gets the
//! message the model sees; plus a snapshot of the schemas themselves.

use serde_json::{json, Value};

use super::*;

fn toolbox(dir: &std::path::Path) -> Toolbox {
    std::fs::create_dir_all(dir.join("src")).expect("mkdir");
    std::fs::write(dir.join("src/lib.rs"), "pub fn add(a: i32, b: i32) -> i32 {\n    a + b\n}\n").expect("write");
    Toolbox::new(Workspace::new(dir).expect("workspace")).with_isolation(Isolation::Bwrap)
}

fn call(name: &str, arguments: Value) -> ToolCall {
    ToolCall { id: "call-1".into(), name: name.into(), arguments }
}

/// Whether `value` has the JSON type a schema property names.
fn has_type(value: &Value, kind: &str) -> bool {
    match kind {
        "string" => value.is_string(),
        "integer" => value.is_u64() || value.is_i64(),
        "boolean" => value.is_boolean(),
        "array" => value.is_array(),
        other => panic!("schema type {other} not covered by this test"),
    }
}

/// Checks `arguments` against an advertised schema on its own terms: every
/// required key present, every key a property, every value of its type.
fn fits_schema(schema: &Value, arguments: &Value) -> Result<(), String> {
    let properties = schema["properties"].as_object().ok_or("no properties")?;
    let object = arguments.as_object().ok_or("not an object")?;
    for required in schema["required"].as_array().into_iter().flatten() {
        let key = required.as_str().ok_or("required entry not a string")?;
        if !object.contains_key(key) {
            return Err(format!("missing {key}"));
        }
    }
    for (key, value) in object {
        let property = properties.get(key).ok_or(format!("{key} is not advertised"))?;
        let kind = property["type"].as_str().ok_or(format!("{key} has no single type"))?;
        if !has_type(value, kind) {
            return Err(format!("{key} is not a {kind}"));
        }
    }
    Ok(())
}

#[test]
fn every_schema_accepts_a_valid_call_and_its_parser_rejects_an_invalid_one() {
    // (tool, valid arguments, invalid arguments, the error the model gets)
    let table: Vec<(&str, Value, Value, &str)> = vec![
        (
            names::READ_FILE,
            json!({"path": "src/lib.rs", "start_line": 1, "end_line": 2}),
            json!({"path": "src/lib.rs", "start_line": -3}),
            "read_file: argument `start_line` must be a non-negative integer",
        ),
        (
            names::LIST_DIR,
            json!({"path": "src"}),
            json!({"path": 7}),
            "list_dir: argument `path` must be a string, got 7",
        ),
        (
            names::GLOB,
            json!({"pattern": "**/*.rs", "path": "."}),
            json!({"path": "."}),
            "glob: missing required argument `pattern`",
        ),
        (
            names::GREP,
            json!({"pattern": "fn \\w+", "path": "src", "glob": "*.rs", "case_insensitive": true}),
            json!({"pattern": "fn", "case_insensitive": "yes"}),
            "grep: argument `case_insensitive` must be true or false, got \"yes\"",
        ),
        (
            names::REPO_MAP,
            json!({"focus": ["src/lib.rs"], "mentions": ["add"], "max_tokens": 256}),
            json!({"mentions": ["add", 3]}),
            "repo_map: `mentions` must be a list of strings",
        ),
        (names::FIND_SYMBOL, json!({"name": "add"}), json!({}), "find_symbol: missing required argument `name`"),
        (
            names::EDIT_FILE,
            json!({"path": "src/lib.rs", "search": "a + b", "replace": "a.wrapping_add(b)"}),
            json!({"path": "src/lib.rs", "search": "a + b"}),
            "edit_file: missing required argument `replace`",
        ),
        (
            names::WRITE_FILE,
            json!({"path": "src/new.rs", "content": "pub const X: u8 = 1;\n"}),
            json!({"path": "src/new.rs", "content": ["not", "text"]}),
            "write_file: argument `content` must be a string, got [\"not\",\"text\"]",
        ),
        (
            names::RUN_SHELL,
            json!({"command": "cargo test", "timeout_secs": 60}),
            json!({"command": "cargo test", "timeout_secs": {"minutes": 1}}),
            "run_shell: argument `timeout_secs` must be an integer, got {\"minutes\":1}",
        ),
        (
            names::UNDO,
            json!({"path": "src/lib.rs"}),
            json!("[1, 2]"),
            "undo: arguments must be a JSON object, got the string \"[1, 2]\"",
        ),
    ];
    let dir = tempfile::tempdir().expect("tempdir");
    let toolbox = toolbox(dir.path());
    let specs = toolbox.specs();
    let names_in_table: Vec<&str> = table.iter().map(|row| row.0).collect();
    let advertised: Vec<&str> = specs.iter().map(|spec| spec.name.as_str()).collect();
    assert_eq!(names_in_table, advertised, "one row per advertised tool");
    for ((name, valid, invalid, message), spec) in table.into_iter().zip(&specs) {
        fits_schema(&spec.parameters, &valid).unwrap_or_else(|problem| panic!("{name}: {problem}"));
        if let Err(output) = toolbox.prepare(&call(name, valid.clone())) {
            panic!("{name} rejected a valid call {valid}: {}", output.text);
        }
        match toolbox.prepare(&call(name, invalid.clone())) {
            Ok(_) => panic!("{name} accepted an invalid call {invalid}"),
            Err(output) => {
                assert!(output.is_error && !output.refused, "{name}: {output:?}");
                assert_eq!(output.text, message, "{name}");
            }
        }
    }
}

#[test]
fn lenient_forms_models_send_are_accepted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let toolbox = toolbox(dir.path());
    let accepted = [
        // Integers as strings, lists as one string, null as absent, the
        // whole object as a JSON string.
        call(names::READ_FILE, json!({"path": "src/lib.rs", "start_line": " 2", "end_line": null})),
        call(names::REPO_MAP, json!({"focus": "src/lib.rs"})),
        call(names::LIST_DIR, Value::Null),
        call(names::FIND_SYMBOL, json!("{\"name\": \"add\"}")),
        // Unknown keys are ignored.
        call(names::GLOB, json!({"pattern": "*.rs", "recursive": true})),
    ];
    for call in accepted {
        if let Err(output) = toolbox.prepare(&call) {
            panic!("{} {}: {}", call.name, call.arguments, output.text);
        }
    }
    let prepared = toolbox.prepare(&call(names::READ_FILE, json!({"path": "src/lib.rs", "start_line": "2"})));
    match prepared.map(|prepared| prepared.action) {
        Ok(Action::ReadFile(action)) => assert!(format!("{action:?}").contains("start: Some(2)"), "{action:?}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn unknown_tools_are_named_with_the_available_ones() {
    let dir = tempfile::tempdir().expect("tempdir");
    let output = toolbox(dir.path()).prepare(&call("nonexistent_tool", json!({}))).expect_err("unknown");
    assert_eq!(
        output.text,
        "unknown tool \"nonexistent_tool\"; available tools: read_file, list_dir, glob, grep, repo_map, \
         find_symbol, edit_file, write_file, run_shell, undo"
    );
}

#[test]
fn tool_schemas_snapshot() {
    let dir = tempfile::tempdir().expect("tempdir");
    let specs = toolbox(dir.path()).specs();
    let text = serde_json::to_string_pretty(&specs).expect("json") + "\n";
    expect_test::expect_file!["snapshots/tool_schemas.json"].assert_eq(&text);
}
