//! The names a JSON schema defines, for the tests that check a docs page
//! names every one.

use serde_json::Value;

/// Property names and `const`/`enum` strings of `schema`, in the order met.
pub fn schema_names(schema: &Value) -> Vec<String> {
    let mut names = Vec::new();
    collect(schema, &mut names);
    names
}

fn collect(schema: &Value, names: &mut Vec<String>) {
    match schema {
        Value::Object(map) => {
            for (key, value) in map {
                match key.as_str() {
                    "properties" => names.extend(value.as_object().unwrap().keys().cloned()),
                    "const" | "enum" => {
                        let values = value.as_array().cloned().unwrap_or(vec![value.clone()]);
                        names.extend(values.iter().filter_map(|v| v.as_str().map(String::from)));
                    }
                    _ => {}
                }
                collect(value, names);
            }
        }
        Value::Array(items) => items.iter().for_each(|i| collect(i, names)),
        _ => {}
    }
}
