//! The builder of one operation of a document: parameters, body, answers, links. Problem
//! answers share the `Problem` schema; 429 and 503 carry `Retry-After`.

use serde_json::{Map, Value, json};

use super::schemas;
use crate::problem::PROBLEM_JSON;

/// One operation of a document, built step by step; [`Operation::build`] gives its JSON.
#[derive(Debug, Clone)]
pub(crate) struct Operation {
    fields: Map<String, Value>,
    parameters: Vec<Value>,
    responses: Map<String, Value>,
    /// Headers any answer of the operation may carry (the Services API's rate-limit hints).
    common_headers: Map<String, Value>,
}

impl Operation {
    /// An operation with a unique `operation_id`, a one-line summary and a tag.
    pub(crate) fn new(operation_id: &str, summary: &str, tag: &str) -> Self {
        let mut fields = Map::new();
        fields.insert("operationId".into(), operation_id.into());
        fields.insert("summary".into(), summary.into());
        fields.insert("tags".into(), json!([tag]));
        Self {
            fields,
            parameters: Vec::new(),
            responses: Map::new(),
            common_headers: Map::new(),
        }
    }

    /// The operation a handler's `#[utoipa::path]` documents, completed with what io answers
    /// around every handler: an answer of 400 or more is a problem (`problem+json`, with
    /// `Retry-After` on 429 and 503) and a JSON body brings the answers of [`Operation::json_body`].
    pub(crate) fn derived(operation: Value) -> Self {
        let Value::Object(mut fields) = operation else {
            panic!("an operation is an object");
        };
        let parameters = match fields.remove("parameters") {
            Some(Value::Array(parameters)) => parameters,
            _ => Vec::new(),
        };
        let answers = match fields.remove("responses") {
            Some(Value::Object(responses)) => responses,
            _ => Map::new(),
        };
        let has_body = fields.contains_key("requestBody");
        // utoipa writes an optional body (`Option<T>`) as `T` or `null`; io's optional bodies
        // are absent, never `null` (which would not decode).
        if let Some(schema) = fields
            .get_mut("requestBody")
            .and_then(|body| body.pointer_mut("/content/application~1json/schema"))
            && let Some(Value::Array(choices)) = schema.get("oneOf")
            && choices.len() == 2
            && choices[1] == json!({ "type": "null" })
        {
            *schema = choices[0].clone();
        }
        let mut operation = Self {
            fields,
            parameters,
            responses: Map::new(),
            common_headers: Map::new(),
        };
        for (status, answer) in answers {
            let code: u16 = status.parse().expect("io documents numeric statuses");
            if code >= 400 && answer.get("content").is_none() {
                let description = answer["description"].as_str().unwrap_or_default();
                operation = operation.problem(code, description);
            } else {
                operation.responses.insert(status, answer);
            }
        }
        if has_body {
            operation = operation.body_problems();
        }
        operation
    }

    /// A longer description.
    pub(crate) fn describe(mut self, text: &str) -> Self {
        self.fields.insert("description".into(), text.into());
        self
    }

    /// Anyone may call it: no security requirement.
    pub(crate) fn public(mut self) -> Self {
        self.fields.insert("security".into(), json!([]));
        self
    }

    fn parameter(mut self, place: &str, name: &str, required: bool, schema: Value) -> Self {
        self.parameters.push(json!({
            "name": name,
            "in": place,
            "required": required,
            "schema": schema,
        }));
        self
    }

    /// A path parameter.
    pub(crate) fn path(self, name: &str, schema: Value) -> Self {
        self.parameter("path", name, true, schema)
    }

    /// A required JSON body (`crate::body::JsonBody`), with the answers every JSON body can get:
    /// 400 (malformed, or a field of the wrong type), 413 (over `max_body_bytes`), 415 (not JSON).
    pub(crate) fn json_body(mut self, schema: Value) -> Self {
        self.fields.insert(
            "requestBody".into(),
            json!({ "required": true, "content": { "application/json": { "schema": schema } } }),
        );
        self.body_problems()
    }

    /// The answers every JSON body can get.
    fn body_problems(self) -> Self {
        self.problem(
            400,
            "The body is not JSON of the expected shape (the detail names the JSON path).",
        )
        .problem(413, "The body exceeds the server's size limit.")
        .problem(
            415,
            "The body is not JSON (Content-Type: application/json).",
        )
    }

    /// A successful answer with a JSON body.
    pub(crate) fn answers(self, status: u16, description: &str, schema: Value) -> Self {
        self.answers_with(status, description, schema, Map::new())
    }

    /// A successful answer with a JSON body and response headers.
    pub(crate) fn answers_with(
        mut self,
        status: u16,
        description: &str,
        schema: Value,
        headers: Map<String, Value>,
    ) -> Self {
        let mut response = json!({
            "description": description,
            "content": { "application/json": { "schema": schema } },
        });
        if !headers.is_empty() {
            response["headers"] = Value::Object(headers);
        }
        self.responses.insert(status.to_string(), response);
        self
    }

    /// A problem+json answer; a second description for the same status is appended to the
    /// first. 429 and 503 carry `Retry-After`.
    pub(crate) fn problem(mut self, status: u16, description: &str) -> Self {
        let key = status.to_string();
        if let Some(existing) = self.responses.get_mut(&key) {
            let text = existing["description"].as_str().unwrap_or_default();
            if !text.contains(description) {
                existing["description"] = format!("{text} {description}").into();
            }
            return self;
        }
        let mut response = json!({
            "description": description,
            "content": { PROBLEM_JSON: { "schema": schemas::schema_ref("Problem") } },
        });
        if status == 429 || status == 503 {
            response["headers"] = json!({ "Retry-After": retry_after() });
        }
        self.responses.insert(key, response);
        self
    }

    /// An OpenAPI link from the `status` answer to the operation `operation_id` of the same
    /// document, its `parameters` given by runtime expressions (`$response.body#/id`).
    pub(crate) fn link(
        mut self,
        status: u16,
        name: &str,
        operation_id: &str,
        parameters: Value,
    ) -> Self {
        let response = self
            .responses
            .get_mut(&status.to_string())
            .expect("a link follows the answer it starts from");
        response["links"][name] = json!({ "operationId": operation_id, "parameters": parameters });
        self
    }

    /// The answers of a failing store: 503 (retriable, `Retry-After`) and 500.
    pub(crate) fn store(self) -> Self {
        self.problem(
            503,
            "The store is temporarily unavailable; retry after Retry-After seconds.",
        )
        .problem(
            500,
            "An internal error (logged); the request may be retried.",
        )
    }

    /// Adds `header` to the `status` answer, which must already be listed.
    pub(crate) fn answer_header(mut self, status: u16, name: &str, header: Value) -> Self {
        let response = self
            .responses
            .get_mut(&status.to_string())
            .expect("a header is added to a listed answer");
        response["headers"][name] = header;
        self
    }

    /// Adds `headers` (optional) to every answer of the operation.
    pub(crate) fn every_answer_may_carry(mut self, headers: Map<String, Value>) -> Self {
        self.common_headers.extend(headers);
        self
    }

    /// The operation's JSON.
    pub(crate) fn build(mut self) -> Value {
        if !self.parameters.is_empty() {
            self.fields
                .insert("parameters".into(), Value::Array(self.parameters));
        }
        if !self.common_headers.is_empty() {
            for response in self.responses.values_mut() {
                let headers = response
                    .as_object_mut()
                    .expect("responses are objects")
                    .entry("headers")
                    .or_insert_with(|| json!({}));
                for (name, header) in &self.common_headers {
                    if let Some(headers) = headers.as_object_mut() {
                        headers
                            .entry(name.clone())
                            .or_insert_with(|| header.clone());
                    }
                }
            }
        }
        self.fields
            .insert("responses".into(), Value::Object(self.responses));
        Value::Object(self.fields)
    }
}

/// The `Retry-After` header of 429 and 503 answers (whole seconds, at least 1).
fn retry_after() -> Value {
    json!({
        "description": "Seconds to wait before retrying.",
        "required": true,
        "schema": { "type": "integer", "minimum": 1 }
    })
}
