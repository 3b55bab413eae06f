//! A paginated JSON API, as GitHub's and most others are: follow the
//! `Link: <…>; rel="next"` header (RFC 8288) page by page, then fetch every
//! item's details in one parallel batch.
//!
//! Starts its own API on 127.0.0.1 (5 pages of 4 items; each answer says
//! how many requests are left in `X-RateLimit-Remaining`), so it needs no
//! internet:
//!
//! ```text
//! cargo run --example paginated
//! ```

#[path = "../tests/it/server.rs"]
mod server;

use std::sync::atomic::{AtomicU32, Ordering};

use parfetch::{Fetcher, Request, Response};
use serde::Deserialize;
use url::Url;

use server::{Reply, TestServer};

/// One page of the listing.
#[derive(Deserialize)]
struct Page {
    items: Vec<Summary>,
}

/// An item as the listing shows it: where its details are.
#[derive(Deserialize)]
struct Summary {
    url: String,
}

/// An item's details.
#[derive(Deserialize)]
struct Item {
    id: u32,
    name: String,
    price_cents: u64,
    stock: u64,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let api = start_api();
    // The API is on this machine: a proxy set in the environment must not
    // stand in between.
    let fetcher = Fetcher::builder().concurrency(8).no_proxy().build()?;

    // Page by page, while the server says there is a next one.
    let mut next = Some(Request::get(api.url("/items")).query("per_page", "4"));
    let (mut pages, mut total_pages, mut remaining) = (0, None, None);
    let mut detail_urls = Vec::new();
    while let Some(request) = next.take() {
        let page = fetcher.send::<Page>(request)?;
        pages += 1;
        total_pages = total_pages.or(number(&page, "x-total-pages"));
        remaining = number(&page, "x-ratelimit-remaining");
        next = link(&page, "next").map(Request::from);
        // An item's URL may be relative: to the page it was listed on.
        let base = Url::parse(page.url())?;
        for item in page.into_body().items {
            detail_urls.push(base.join(&item.url)?.to_string());
        }
    }
    println!(
        "{pages} pages (the server said {}), {} items; rate limit left: {}",
        total_pages.map_or("nothing".into(), |n| n.to_string()),
        detail_urls.len(),
        remaining.map_or("unknown".into(), |n| n.to_string()),
    );
    if total_pages != Some(pages) {
        return Err(format!("followed {pages} pages of {total_pages:?}").into());
    }

    // Every item's details at once, handed over as each one arrives.
    let mut items = Vec::new();
    let mut responses = fetcher.batch(&detail_urls).iter::<Item>();
    for (_index, result) in &mut responses {
        let response = result?;
        if let Some(left) = number(&response, "x-ratelimit-remaining") {
            remaining = Some(remaining.map_or(left, |before| before.min(left)));
        }
        items.push(response.into_body());
    }
    let stats = responses.stats();
    items.sort_by_key(|item| item.id);

    for item in items.iter().take(3) {
        println!(
            "  #{:<3} {:<12} {:>4} in stock at {:>3}.{:02}",
            item.id,
            item.name,
            item.stock,
            item.price_cents / 100,
            item.price_cents % 100
        );
    }
    println!("  …");
    let value: u64 = items.iter().map(|i| i.stock * i.price_cents).sum();
    println!(
        "{} items fetched in parallel in {:.0?} ({} failed); stock worth {}.{:02}; rate limit left: {}",
        stats.stats.successes,
        stats.elapsed,
        stats.stats.failures,
        value / 100,
        value % 100,
        remaining.map_or("unknown".into(), |n| n.to_string()),
    );
    Ok(())
}

/// A header holding a whole number, if it is there and is one.
fn number<T>(response: &Response<T>, header: &str) -> Option<u32> {
    response.header(header)?.trim().parse().ok()
}

/// The target of the response's first link with relation `rel` (such as
/// `next`), resolved against the response's URL: its `Link` headers may
/// be several, each with several links.
fn link<T>(response: &Response<T>, rel: &str) -> Option<Url> {
    let base = Url::parse(response.url()).ok()?;
    let target = response
        .headers()
        .get_all("link")
        .find_map(|header| link_target(header, rel))?;
    base.join(target).ok()
}

/// In one `Link` header value (RFC 8288 §3: `<target>; rel="next"; …,
/// <target>; …`), the target of the first link whose relations (`rel`,
/// one or more, space-separated; only the first `rel` parameter counts)
/// include `wanted`, compared without case. Commas and semicolons inside
/// `<…>` and quoted strings are not separators. Stops at the first piece
/// that is not a link.
fn link_target<'a>(header: &'a str, wanted: &str) -> Option<&'a str> {
    let mut rest = header;
    loop {
        rest = rest.trim_start_matches([' ', '\t', ',']);
        let (target, after) = rest.strip_prefix('<')?.split_once('>')?;
        rest = after;
        let mut rels: Option<String> = None;
        // The parameters, up to the comma that ends this link.
        while let Some(after) = rest.trim_start().strip_prefix(';') {
            let after = after.trim_start();
            let name_end = after
                .find(|c: char| matches!(c, '=' | ';' | ',') || c.is_whitespace())
                .unwrap_or(after.len());
            let (name, after) = after.split_at(name_end);
            let (value, after) = match after.trim_start().strip_prefix('=') {
                Some(value) => parameter_value(value.trim_start())?,
                None => (String::new(), after),
            };
            if name.eq_ignore_ascii_case("rel") && rels.is_none() {
                rels = Some(value);
            }
            rest = after;
        }
        let is_wanted = rels.is_some_and(|rels| {
            rels.split_ascii_whitespace()
                .any(|rel| rel.eq_ignore_ascii_case(wanted))
        });
        if is_wanted {
            return Some(target);
        }
        rest = rest.trim_start();
        if !rest.starts_with(',') {
            return None;
        }
    }
}

/// A parameter's value, a token or a quoted string (with `\` escapes),
/// and what follows it; `None` if a quoted string does not end.
fn parameter_value(text: &str) -> Option<(String, &str)> {
    let Some(quoted) = text.strip_prefix('"') else {
        let end = text
            .find(|c: char| matches!(c, ';' | ',') || c.is_whitespace())
            .unwrap_or(text.len());
        return Some((text[..end].to_owned(), &text[end..]));
    };
    let mut value = String::new();
    let mut chars = quoted.char_indices();
    while let Some((at, c)) = chars.next() {
        match c {
            '"' => return Some((value, &quoted[at + 1..])),
            '\\' => value.push(chars.next()?.1),
            c => value.push(c),
        }
    }
    None
}

/// The API: `GET /items?page=N&per_page=M` (5 pages of 4 by default) with
/// `Link`, `X-Total-Pages` and `X-RateLimit-Remaining`, and `GET
/// /items/ID`.
fn start_api() -> TestServer {
    const ITEMS: u32 = 20;
    let left = AtomicU32::new(1_000);
    TestServer::start(move |request| {
        let remaining = left.fetch_sub(1, Ordering::Relaxed).saturating_sub(1);
        let reply = match request.path.split_once('?') {
            Some(("/items", query)) => listing(query, ITEMS),
            None if request.path == "/items" => listing("", ITEMS),
            _ => match request.path.strip_prefix("/items/").map(str::parse) {
                Some(Ok(id @ 1..=ITEMS)) => Reply::json(200, details(id)),
                _ => Reply::json(404, r#"{"error":"no such item"}"#),
            },
        };
        reply.with_header("x-ratelimit-remaining", remaining.to_string())
    })
}

/// One page of the listing of `items` items, with its links.
fn listing(query: &str, items: u32) -> Reply {
    let mut page = 1;
    let mut per_page = 4;
    for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
        match (&*name, value.parse::<u32>()) {
            ("page", Ok(n)) if n >= 1 => page = n,
            ("per_page", Ok(n)) if (1..=100).contains(&n) => per_page = n,
            _ => return Reply::json(400, r#"{"error":"page and per_page are whole numbers"}"#),
        }
    }
    let pages = items.div_ceil(per_page);
    let first = (page - 1).saturating_mul(per_page).saturating_add(1);
    let ids = first..=page.saturating_mul(per_page).min(items);
    let listed: Vec<_> = ids
        .map(|id| serde_json::json!({ "id": id, "url": format!("/items/{id}") }))
        .collect();
    let body = serde_json::json!({ "page": page, "items": listed });
    // Links as APIs send them: relative or not, several on one line, one
    // relation on another.
    let at = |page: u32| format!("</items?page={page}&per_page={per_page}>");
    let mut links = vec![format!("{}; rel=\"last\"", at(pages))];
    if page < pages {
        links.insert(0, format!("{}; rel=\"next\"", at(page + 1)));
    }
    Reply::json(200, body.to_string())
        .with_header("link", links.join(", "))
        .with_header("link", format!("{}; rel=first", at(1)))
        .with_header("x-total-pages", pages.to_string())
}

/// The details of item `id`.
fn details(id: u32) -> String {
    const NAMES: [&str; 5] = ["bolt", "washer", "hinge", "bracket", "spring"];
    let name = format!("{} {id}", NAMES[id as usize % NAMES.len()]);
    serde_json::json!({
        "id": id,
        "name": name,
        "price_cents": 25 + u64::from(id) * 37 % 500,
        "stock": u64::from(id) * 7 % 40,
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::link_target;

    #[test]
    fn the_example_runs() {
        super::main().unwrap();
    }

    #[test]
    fn links_are_found_as_rfc_8288_writes_them() {
        let cases = [
            (
                r#"<https://a/?page=2>; rel="next""#,
                Some("https://a/?page=2"),
            ),
            ("<https://a/2>;rel=next", Some("https://a/2")),
            (
                r#"<https://a/1>; rel="prev", <https://a/3>; rel="next""#,
                Some("https://a/3"),
            ),
            // Several relations in one, any case.
            (r#"</3>; rel="Next last""#, Some("/3")),
            // Commas and semicolons inside a target or a quoted string.
            (
                r#"</a,b;c>; title="x, <y>; rel=next"; rel="next""#,
                Some("/a,b;c"),
            ),
            (
                r#"</1>; title="say \"next\"", </2>; rel="next""#,
                Some("/2"),
            ),
            // Only the first rel counts; a relation is not a prefix.
            (r#"</1>; rel="prev"; rel="next""#, None),
            (r#"</1>; rel="nextish""#, None),
            (r#"</1>; rel="last""#, None),
            // Not a link: nothing found, nothing guessed.
            ("https://a/2; rel=next", None),
            (r#"</1>; rel="next"#, None),
            ("", None),
        ];
        for (header, expected) in cases {
            assert_eq!(link_target(header, "next"), expected, "in {header:?}");
        }
    }
}
