//! A session, as `requests.Session` keeps one: log in with a POST, keep
//! the cookie the server sets, and send it back with every request after,
//! parallel batches included.
//!
//! Starts its own API on 127.0.0.1, so it needs no internet: `POST /login`
//! (JSON credentials and an app key) sets a `session` cookie that `GET
//! /me`, `GET /orders?page=N` and `POST /logout` require (401 without).
//!
//! ```text
//! cargo run --example session
//! ```

#[path = "../tests/it/server.rs"]
mod server;

use std::collections::HashSet;
use std::sync::Mutex;

use parfetch::{Error, Fetcher, Request};
use serde::{Deserialize, Serialize};

use server::{Reply, TestServer};

/// The app's key, which the API asks for at login. (Real code reads it,
/// and the password, from the environment or a secret store.)
const APP_KEY: &str = "k-8d0f3c";
/// The one user's password.
const PASSWORD: &str = "correct horse";

#[derive(Serialize)]
struct Credentials<'a> {
    user: &'a str,
    password: &'a str,
}

#[derive(Deserialize)]
struct Me {
    user: String,
    name: String,
}

/// One page of orders; every page says how many there are.
#[derive(Deserialize)]
struct Orders {
    pages: u32,
    orders: Vec<Order>,
}

#[derive(Deserialize)]
struct Order {
    id: u32,
    total_cents: u64,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let api = start_api();
    // The jar keeps the cookies responses set, for every request of this
    // fetcher and its clones. (`no_proxy`: the API is on this machine.)
    let fetcher = Fetcher::builder().cookie_store(true).no_proxy().build()?;

    // Before logging in: a 401, which is an error with its status and the
    // server's own words.
    let refused = unauthorized(&fetcher, &api)?;
    println!("before logging in: {refused}");
    println!(
        "  kind {}, status {}, retryable {}, the server said {}",
        refused.kind(),
        refused.status().unwrap_or_default(),
        refused.is_retryable(),
        refused.body_excerpt().unwrap_or("nothing"),
    );

    // The login: JSON credentials; the key in a header marked sensitive,
    // so that it never shows in messages, logs or `Debug`.
    let login = Request::post(api.url("/login"))
        .sensitive_header("x-app-key", APP_KEY)
        .json(&Credentials {
            user: "ada",
            password: PASSWORD,
        });
    println!("{login:?}");
    let me = fetcher.send::<Me>(login)?;
    println!("logged in as {:?}, status {}", me.body().user, me.status());

    // The session cookie goes back by itself.
    let me: Me = fetcher.get_json(api.url("/me"))?;
    println!("GET /me: {} ({})", me.name, me.user);

    // The first page says how many pages there are: the rest in parallel,
    // in the same session.
    let first: Orders = fetcher.get_json(Request::get(api.url("/orders")).query("page", "1"))?;
    let rest = (2..=first.pages)
        .map(|page| Request::get(api.url("/orders")).query("page", page.to_string()));
    let mut orders = first.orders;
    for page in fetcher.fetch_many::<Orders>(rest) {
        orders.extend(page?.orders);
    }
    let total: u64 = orders.iter().map(|order| order.total_cents).sum();
    let ids: Vec<u32> = orders.iter().map(|order| order.id).collect();
    println!(
        "{} orders on {} pages, {}.{:02} in all: {ids:?}",
        orders.len(),
        first.pages,
        total / 100,
        total % 100
    );

    // A 204 has no content: `()` takes it.
    fetcher.send::<()>(Request::post(api.url("/logout")))?;
    let refused = unauthorized(&fetcher, &api)?;
    println!("after logging out: {refused}");
    Ok(())
}

/// The error of `GET /me`, which must be a 401.
fn unauthorized(fetcher: &Fetcher, api: &TestServer) -> Result<Error, Box<dyn std::error::Error>> {
    match fetcher.get_json::<Me>(api.url("/me")) {
        Err(error) if error.status() == Some(401) => Ok(error),
        Err(error) => Err(error.into()),
        Ok(me) => Err(format!("GET /me answered {:?} without a session", me.user).into()),
    }
}

/// The API: one user, `ada`, and the sessions opened by logging in.
fn start_api() -> TestServer {
    let sessions = Mutex::new(HashSet::new());
    TestServer::start(move |request| {
        let Ok(mut sessions) = sessions.lock() else {
            return Reply::status(500);
        };
        let session = request
            .header("cookie")
            .into_iter()
            .flat_map(|cookies| cookies.split(';'))
            .find_map(|cookie| cookie.trim().strip_prefix("session="))
            .filter(|token| sessions.contains(*token))
            .map(str::to_owned);
        let path = request
            .path
            .split_once('?')
            .map_or(&*request.path, |(path, _)| path);
        match (request.method.as_str(), path, session) {
            ("POST", "/login", _) => {
                let body: serde_json::Value =
                    serde_json::from_slice(&request.body).unwrap_or_default();
                let known = request.header("x-app-key") == Some(APP_KEY)
                    && body["user"] == "ada"
                    && body["password"] == PASSWORD;
                if !known {
                    return Reply::json(401, r#"{"error":"wrong user, password or app key"}"#);
                }
                let token = format!("{:016x}", fastrand::u64(..));
                sessions.insert(token.clone());
                Reply::json(200, r#"{"user":"ada","name":"Ada Lovelace"}"#)
                    .with_header("set-cookie", format!("session={token}; HttpOnly; Path=/"))
            }
            (_, "/me" | "/orders" | "/logout", None) => {
                Reply::json(401, r#"{"error":"log in first: POST /login"}"#)
            }
            ("GET", "/me", Some(_)) => Reply::json(200, r#"{"user":"ada","name":"Ada Lovelace"}"#),
            ("GET", "/orders", Some(_)) => orders(&request.path),
            ("POST", "/logout", Some(token)) => {
                sessions.remove(&token);
                Reply::status(204).with_header("set-cookie", "session=; Max-Age=0; Path=/")
            }
            _ => Reply::json(404, r#"{"error":"no such page"}"#),
        }
    })
}

/// A page of the user's 10 orders, 4 a page.
fn orders(path: &str) -> Reply {
    const ORDERS: u32 = 10;
    const PER_PAGE: u32 = 4;
    let page = path
        .split_once("?page=")
        .and_then(|(_, page)| page.parse::<u32>().ok())
        .filter(|page| *page >= 1);
    let Some(page) = page else {
        return Reply::json(400, r#"{"error":"page is a whole number from 1"}"#);
    };
    let first = (page - 1).saturating_mul(PER_PAGE).saturating_add(1);
    let orders: Vec<_> = (first..=page.saturating_mul(PER_PAGE).min(ORDERS))
        .map(|id| serde_json::json!({ "id": id, "total_cents": 1_999 + u64::from(id) * 250 }))
        .collect();
    let body = serde_json::json!({
        "page": page,
        "pages": ORDERS.div_ceil(PER_PAGE),
        "orders": orders,
    });
    Reply::json(200, body.to_string())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_example_runs() {
        super::main().unwrap();
    }
}
