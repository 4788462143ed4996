//! Reading a paged log endpoint to its end through HTTP.

use serde_json::Value;

/// Every event of a paged read, following `next`: `url(from)` is the
/// request for the page starting at `from` (a position for `/all`, a
/// revision for `/streams/S`).
pub async fn read_pages(http: &reqwest::Client, url: impl Fn(u64) -> String) -> Vec<Value> {
    let mut out = Vec::new();
    let mut from = 1u64;
    loop {
        let page: Value = http
            .get(url(from))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        out.extend(page["events"].as_array().unwrap().iter().cloned());
        match page["next"].as_u64() {
            Some(n) => from = n,
            None => return out,
        }
    }
}
