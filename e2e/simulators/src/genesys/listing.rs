//! The `*EntityListing` envelope shared by list endpoints.

use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Paging {
    pub page_size: Option<usize>,
    pub page_number: Option<usize>,
}

impl Paging {
    pub fn size(&self) -> usize {
        self.page_size.unwrap_or(25).clamp(1, 500)
    }
    pub fn number(&self) -> usize {
        self.page_number.unwrap_or(1).max(1)
    }
}

/// One page of `all` in the listing envelope; `path` is the list's URI.
pub(crate) fn page(all: Vec<Value>, paging: &Paging, path: &str, extra_query: &str) -> Value {
    let size = paging.size();
    let number = paging.number();
    let total = all.len();
    let page_count = total.div_ceil(size).max(1);
    let entities: Vec<Value> = all
        .into_iter()
        .skip((number - 1) * size)
        .take(size)
        .collect();
    let uri = |n: usize| format!("{path}?pageSize={size}&pageNumber={n}{extra_query}");
    let mut body = json!({
        "entities": entities,
        "pageSize": size,
        "pageNumber": number,
        "total": total,
        "pageCount": page_count,
        "firstUri": uri(1),
        "lastUri": uri(page_count),
        "selfUri": uri(number),
    });
    if number < page_count {
        body["nextUri"] = Value::String(uri(number + 1));
    }
    if number > 1 {
        body["previousUri"] = Value::String(uri(number - 1));
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_and_links() {
        let all: Vec<Value> = (0..30).map(|n| json!(n)).collect();
        let paging = Paging {
            page_size: Some(25),
            page_number: Some(2),
        };
        let body = page(all, &paging, "/x", "");
        assert_eq!(body["entities"], json!([25, 26, 27, 28, 29]));
        assert_eq!(body["pageCount"], 2);
        assert_eq!(body["total"], 30);
        assert_eq!(body["previousUri"], "/x?pageSize=25&pageNumber=1");
        assert!(body.get("nextUri").is_none());
    }
}
