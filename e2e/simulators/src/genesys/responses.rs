//! Response Management (canned responses): libraries, responses and the
//! query endpoint with its `results` wrapper. Read-only seed data.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::error_body::ErrorBody;
use super::listing::{Paging, page};
use super::state::GenesysState;
use super::validate;
use crate::recording::lock;

const LIBRARIES_PATH: &str = "/api/v2/responsemanagement/libraries";
const RESPONSES_PATH: &str = "/api/v2/responsemanagement/responses";
const SEED_DATE: &str = "2024-01-01T00:00:00.000Z";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResponseLibrary {
    pub id: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResponseText {
    pub content: String,
    /// `text/plain` or `text/html`.
    pub content_type: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResponseSubstitution {
    pub id: String,
    pub description: Option<String>,
    pub default_value: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CannedResponse {
    pub id: String,
    pub name: String,
    pub library_ids: Vec<String>,
    pub texts: Vec<ResponseText>,
    #[serde(default)]
    pub substitutions: Vec<ResponseSubstitution>,
    /// e.g. `MessagingTemplate`; None for a plain response.
    #[serde(default)]
    pub response_type: Option<String>,
    /// `chat`, `email` or `twitter`.
    #[serde(default = "chat")]
    pub interaction_type: String,
}

fn chat() -> String {
    "chat".to_owned()
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ResponseSeed {
    pub libraries: Vec<ResponseLibrary>,
    pub responses: Vec<CannedResponse>,
}

impl ResponseSeed {
    /// One library with a greeting that uses a `{{Name}}` substitution and
    /// a plain closing text.
    pub fn example() -> Self {
        let library = ResponseLibrary {
            id: "b7e3f1a2-0000-4000-8000-000000000001".into(),
            name: "Universal Messaging".into(),
        };
        Self {
            responses: vec![
                CannedResponse {
                    id: "c1a2b3c4-0000-4000-8000-000000000001".into(),
                    name: "Greeting".into(),
                    library_ids: vec![library.id.clone()],
                    texts: vec![ResponseText {
                        content: "Hello {{Name}}, how can I help you?".into(),
                        content_type: "text/plain".into(),
                    }],
                    substitutions: vec![ResponseSubstitution {
                        id: "Name".into(),
                        description: Some("Customer name".into()),
                        default_value: Some("there".into()),
                    }],
                    response_type: None,
                    interaction_type: chat(),
                },
                CannedResponse {
                    id: "c1a2b3c4-0000-4000-8000-000000000002".into(),
                    name: "Closing".into(),
                    library_ids: vec![library.id.clone()],
                    texts: vec![ResponseText {
                        content: "Thank you for contacting us.".into(),
                        content_type: "text/plain".into(),
                    }],
                    substitutions: Vec::new(),
                    response_type: None,
                    interaction_type: chat(),
                },
            ],
            libraries: vec![library],
        }
    }
}

fn library_json(library: &ResponseLibrary) -> Value {
    json!({
        "id": library.id,
        "name": library.name,
        "version": 1,
        "dateCreated": SEED_DATE,
        "createdBy": {"id": "seed", "selfUri": "/api/v2/users/seed"},
        "selfUri": format!("{LIBRARIES_PATH}/{}", library.id),
    })
}

fn response_json(seed: &ResponseSeed, response: &CannedResponse) -> Value {
    let libraries: Vec<Value> = response
        .library_ids
        .iter()
        .map(|id| {
            let name = seed
                .libraries
                .iter()
                .find(|library| library.id == *id)
                .map(|library| library.name.clone());
            json!({"id": id, "name": name, "selfUri": format!("{LIBRARIES_PATH}/{id}")})
        })
        .collect();
    let mut body = json!({
        "id": response.id,
        "name": response.name,
        "version": 1,
        "libraries": libraries,
        "texts": response.texts,
        "substitutions": response.substitutions,
        "interactionType": response.interaction_type,
        "dateCreated": SEED_DATE,
        "createdBy": {"id": "seed", "selfUri": "/api/v2/users/seed"},
        "selfUri": format!("{RESPONSES_PATH}/{}", response.id),
    });
    if let Some(kind) = &response.response_type {
        body["responseType"] = json!(kind);
    }
    body
}

pub(crate) async fn list_libraries(
    State(state): State<Arc<GenesysState>>,
    Query(paging): Query<Paging>,
) -> Response {
    let seed = lock(&state.responses);
    let all = seed.libraries.iter().map(library_json).collect();
    Json(page(all, &paging, LIBRARIES_PATH, "")).into_response()
}

pub(crate) async fn get_library(
    State(state): State<Arc<GenesysState>>,
    Path(id): Path<String>,
) -> Response {
    let seed = lock(&state.responses);
    match seed.libraries.iter().find(|library| library.id == id) {
        Some(library) => Json(library_json(library)).into_response(),
        None => ErrorBody::not_found(format!("Library {id} not found")).into_response(),
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ResponsesQuery {
    library_id: Option<String>,
    page_size: Option<usize>,
    page_number: Option<usize>,
}

pub(crate) async fn list_responses(
    State(state): State<Arc<GenesysState>>,
    Query(query): Query<ResponsesQuery>,
) -> Response {
    let Some(library_id) = query.library_id else {
        let mut error = ErrorBody::bad_request("Missing required query parameter 'libraryId'");
        error
            .details
            .push(json!({"fieldName": "libraryId", "errorCode": "required"}));
        return error.into_response();
    };
    let seed = lock(&state.responses);
    let all = seed
        .responses
        .iter()
        .filter(|response| response.library_ids.contains(&library_id))
        .map(|response| response_json(&seed, response))
        .collect();
    let paging = Paging {
        page_size: query.page_size,
        page_number: query.page_number,
    };
    Json(page(
        all,
        &paging,
        RESPONSES_PATH,
        &format!("&libraryId={library_id}"),
    ))
    .into_response()
}

pub(crate) async fn get_response(
    State(state): State<Arc<GenesysState>>,
    Path(id): Path<String>,
) -> Response {
    let seed = lock(&state.responses);
    match seed.responses.iter().find(|response| response.id == id) {
        Some(response) => Json(response_json(&seed, response)).into_response(),
        None => ErrorBody::not_found(format!("Response {id} not found")).into_response(),
    }
}

/// Values a filter can look at for one response.
fn field_values(response: &CannedResponse, name: &str) -> Option<Vec<String>> {
    Some(match name {
        "name" => vec![response.name.clone()],
        "libraryId" => response.library_ids.clone(),
        "text.contentType" => response
            .texts
            .iter()
            .map(|text| text.content_type.clone())
            .collect(),
        "responseType" | "messagingTemplate" => {
            response.response_type.clone().into_iter().collect()
        }
        _ => return None,
    })
}

fn filter_matches(values: &[String], operator: &str, wanted: &[String]) -> bool {
    let any = |test: &dyn Fn(&str, &str) -> bool| {
        values
            .iter()
            .any(|value| wanted.iter().any(|w| test(value, w)))
    };
    match operator {
        "IN" | "EQUALS" => any(&|value, w| value == w),
        "NOTEQUALS" => !any(&|value, w| value == w),
        "BEGINS_WITH" => any(&|value, w| value.starts_with(w)),
        "ENDS_WITH" => any(&|value, w| value.ends_with(w)),
        "CONTAINS" => any(&|value, w| value.contains(w)),
        _ => false,
    }
}

/// Pure search used by `POST /responses/query`.
pub(crate) fn search(seed: &ResponseSeed, request: &Value) -> Result<Vec<Value>, ErrorBody> {
    let phrase = request["queryPhrase"]
        .as_str()
        .unwrap_or_default()
        .to_lowercase();
    let filters = request["filters"].as_array().cloned().unwrap_or_default();
    let mut matched = Vec::new();
    'responses: for response in &seed.responses {
        if !phrase.is_empty() {
            let in_name = response.name.to_lowercase().contains(&phrase);
            let in_text = response
                .texts
                .iter()
                .any(|text| text.content.to_lowercase().contains(&phrase));
            if !in_name && !in_text {
                continue;
            }
        }
        for (index, filter) in filters.iter().enumerate() {
            let name = filter["name"].as_str().unwrap_or_default();
            let operator = filter["operator"].as_str().unwrap_or("EQUALS");
            if ![
                "IN",
                "EQUALS",
                "NOTEQUALS",
                "BEGINS_WITH",
                "ENDS_WITH",
                "CONTAINS",
            ]
            .contains(&operator)
            {
                return Err(ErrorBody::bad_request(format!(
                    "Invalid value for 'filters[{index}].operator': '{operator}'"
                )));
            }
            let wanted: Vec<String> = filter["values"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect();
            let Some(values) = field_values(response, name) else {
                return Err(ErrorBody::bad_request(format!(
                    "Invalid value for 'filters[{index}].name': '{name}'"
                )));
            };
            if !filter_matches(&values, operator, &wanted) {
                continue 'responses;
            }
        }
        matched.push(response_json(seed, response));
    }
    Ok(matched)
}

pub(crate) async fn query(State(state): State<Arc<GenesysState>>, raw: Bytes) -> Response {
    let request = match validate::object(&raw) {
        Ok(body) => Value::Object(body),
        Err(error) => return error.into_response(),
    };
    let page_size = request["pageSize"].as_u64().unwrap_or(25);
    if page_size > 500 {
        return ErrorBody::bad_request("Invalid value for 'pageSize': must be at most 500")
            .into_response();
    }
    let found = {
        let seed = lock(&state.responses);
        search(&seed, &request)
    };
    match found {
        Ok(all) => {
            let paging = Paging {
                page_size: usize::try_from(page_size).ok(),
                page_number: request["pageNumber"]
                    .as_u64()
                    .and_then(|n| usize::try_from(n).ok()),
            };
            Json(json!({"results": page(all, &paging, &format!("{RESPONSES_PATH}/query"), "")}))
                .into_response()
        }
        Err(error) => error.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_phrase_and_filters() {
        let seed = ResponseSeed::example();
        assert_eq!(search(&seed, &json!({})).map(|r| r.len()).ok(), Some(2));
        let hits = search(&seed, &json!({"queryPhrase": "help"})).unwrap_or_default();
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0]["name"], "Greeting");
        let filtered = search(
            &seed,
            &json!({"filters": [{"name": "name", "operator": "BEGINS_WITH", "values": ["Clo"]}]}),
        )
        .unwrap_or_default();
        assert_eq!(filtered.len(), 1);
        assert_eq!(filtered[0]["name"], "Closing");
        assert!(
            search(
                &seed,
                &json!({"filters": [{"name": "colour", "operator": "EQUALS", "values": ["x"]}]})
            )
            .is_err()
        );
    }
}
