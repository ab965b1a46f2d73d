//! Builders for the `x-kubernetes-validations` (CEL) entries of the schema.
//! A rule carries a `message` written for the administrator and, where the
//! rule is about one field, a `fieldPath`, so the apiserver's refusal names
//! that field.

use schemars::Schema;
use serde_json::{Map, Value, json};

/// The apiserver reports a failing rule with this `reason`.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Reason {
    Required,
    Forbidden,
}

impl Reason {
    fn as_str(self) -> &'static str {
        match self {
            Reason::Required => "FieldValueRequired",
            Reason::Forbidden => "FieldValueForbidden",
        }
    }
}

pub(crate) fn rule(
    rule: &str,
    message: &str,
    field_path: Option<&str>,
    reason: Option<Reason>,
) -> Value {
    let mut entry = Map::new();
    entry.insert("rule".into(), json!(rule));
    entry.insert("message".into(), json!(message));
    if let Some(path) = field_path {
        entry.insert("fieldPath".into(), json!(path));
    }
    if let Some(reason) = reason {
        entry.insert("reason".into(), json!(reason.as_str()));
    }
    Value::Object(entry)
}

/// The two rules of a one-of object: at least one key (`Required`), at most
/// one (`Forbidden`). Two rules rather than one so the message says which
/// of the two mistakes was made.
pub(crate) fn exactly_one_rules(keys: &[&str], what: &str) -> Vec<Value> {
    let has: Vec<String> = keys.iter().map(|key| format!("has(self.{key})")).collect();
    let list = keys.join(", ");
    vec![
        rule(
            &has.join(" || "),
            &format!("set one {what}: one of {list}"),
            None,
            Some(Reason::Required),
        ),
        with_message_expression(
            rule(
                &format!("[{}].filter(x, x).size() <= 1", has.join(", ")),
                &format!("set only one {what}; found several of {list}"),
                None,
                Some(Reason::Forbidden),
            ),
            &format!(
                "'set only one {what}; found:' + {}",
                keys.iter()
                    .map(|key| format!("(has(self.{key}) ? ' {key}' : '')"))
                    .collect::<Vec<_>>()
                    .join(" + ")
            ),
        ),
    ]
}

/// Adds a `messageExpression`: the apiserver shows its result (here: which
/// keys were found; concatenation, not `join`, keeps its estimated cost
/// within the apiserver's budget) and falls back to `message` if it cannot evaluate it.
fn with_message_expression(mut rule: Value, expression: &str) -> Value {
    rule["messageExpression"] = json!(expression);
    rule
}

/// Schema of an object with one optional property per variant and the
/// exactly-one rules: the structural form of an externally tagged enum.
pub(crate) fn exactly_one_of_schema(
    properties: Map<String, Value>,
    keys: &[&str],
    what: &str,
) -> Schema {
    let schema = json!({
        "type": "object",
        "properties": properties,
        "x-kubernetes-validations": exactly_one_rules(keys, what),
    });
    Schema::try_from(schema).expect("a JSON object is a schema")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exactly_one_rules_name_every_key() {
        let rules = exactly_one_rules(&["a", "b"], "thing");
        assert_eq!(rules[0]["rule"], "has(self.a) || has(self.b)");
        assert_eq!(
            rules[1]["rule"],
            "[has(self.a), has(self.b)].filter(x, x).size() <= 1"
        );
        assert_eq!(rules[0]["message"], "set one thing: one of a, b");
        assert_eq!(rules[0]["reason"], "FieldValueRequired");
    }
}
