//! A small keep-alive HTTP/1.1 loopback server for integration tests (std only).
//!
//! Every connection gets its own thread and serves requests in a loop until the
//! client closes, the request asks for `connection: close`, or the [`Reply`]
//! says to close. Malformed requests just close their connection.
#![allow(dead_code)]

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// Largest request head (request line + headers) accepted.
const MAX_HEAD: u64 = 64 * 1024;
/// Largest request body accepted.
const MAX_BODY: usize = 16 * 1024 * 1024;
/// Polling slice for stalls and delays.
const TICK: Duration = Duration::from_millis(10);

/// One parsed request.
#[derive(Debug, Clone)]
pub(crate) struct Request {
    pub(crate) method: String,
    pub(crate) path: String,
    /// Header names are lowercased; values are trimmed.
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
    /// 0-based, in order of acceptance.
    pub(crate) connection_id: usize,
    /// 0-based position of this request on its connection.
    pub(crate) index_on_connection: usize,
}

impl Request {
    /// First value of header `name` (case-insensitive).
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// What the server does with a request.
#[derive(Debug, Clone)]
pub(crate) enum Reply {
    /// A normal response; `content-length` is added unless the headers
    /// already carry `content-length` or `transfer-encoding` (or the status
    /// is 1xx/204/304). Keeps the connection alive.
    Respond {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    /// Close without any response (shutdown + drop, no SO_LINGER in stable
    /// std: the client sees EOF rather than RST unless it sent unread data).
    ResetNow,
    /// `200` announcing `declared_len` bytes but sending only `body`, then close.
    Truncated { declared_len: usize, body: Vec<u8> },
    /// Write nothing, wait for the duration (or server shutdown), then close.
    Stall(Duration),
    /// Send the head and `first`, then stall like [`Reply::Stall`], then close.
    StallBody {
        declared_len: usize,
        first: Vec<u8>,
        stall: Duration,
    },
    /// Write exactly these bytes and keep the connection alive.
    Raw(Vec<u8>),
    /// Simulated latency before the inner reply.
    Delay(Duration, Box<Reply>),
    /// Perform the inner reply, then close (`connection: close` if it responds).
    CloseAfter(Box<Reply>),
}

impl Reply {
    /// A response with `content-type: application/json`.
    pub(crate) fn json(status: u16, body: impl Into<Vec<u8>>) -> Reply {
        Reply::Respond {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.into(),
        }
    }

    /// A response with an empty body.
    pub(crate) fn status(status: u16) -> Reply {
        Reply::Respond {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// Adds a header to a `Respond` (also through `Delay`/`CloseAfter`);
    /// other variants are returned unchanged.
    pub(crate) fn with_header(
        mut self,
        name: impl Into<String>,
        value: impl Into<String>,
    ) -> Reply {
        self.push_header((name.into(), value.into()));
        self
    }

    fn push_header(&mut self, header: (String, String)) {
        match self {
            Reply::Respond { headers, .. } => headers.push(header),
            Reply::Delay(_, inner) | Reply::CloseAfter(inner) => inner.push_header(header),
            _ => {}
        }
    }
}

type Handler = Box<dyn Fn(&Request) -> Reply + Send + Sync>;

/// A live connection: a clone of its stream (for writing and forced
/// shutdown) and whether it is idle, waiting for its next request.
struct Conn {
    stream: TcpStream,
    idle: Mutex<bool>,
}

struct Shared {
    handler: Handler,
    shutdown: AtomicBool,
    connections: AtomicUsize,
    requests: AtomicUsize,
    live: Mutex<HashMap<usize, Arc<Conn>>>,
}

impl Shared {
    fn live(&self) -> Vec<Arc<Conn>> {
        lock(&self.live).values().cloned().collect()
    }

    /// Sleeps up to `d` in ~10 ms slices; returns false if shutdown cut it short.
    fn sleep(&self, d: Duration) -> bool {
        let deadline = Instant::now() + d;
        while !self.shutdown.load(SeqCst) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return true;
            }
            thread::sleep(left.min(TICK));
        }
        false
    }
}

/// Locks, ignoring poisoning (a panicking handler must not wedge the server).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The loopback server; shuts itself down on drop.
pub(crate) struct TestServer {
    shared: Arc<Shared>,
    addr: SocketAddr,
    accept: Option<JoinHandle<()>>,
}

impl TestServer {
    /// Binds `127.0.0.1:0` and starts accepting connections.
    pub(crate) fn start(handler: impl Fn(&Request) -> Reply + Send + Sync + 'static) -> TestServer {
        TestServer::start_on("127.0.0.1:0", handler)
    }

    /// Binds `addr` and starts accepting connections. (`0.0.0.0:0` answers
    /// every loopback address, 127.x.y.z: only the perf example uses it,
    /// inside a network namespace of its own.)
    pub(crate) fn start_on(
        addr: &str,
        handler: impl Fn(&Request) -> Reply + Send + Sync + 'static,
    ) -> TestServer {
        let listener = TcpListener::bind(addr).expect("bind loopback test server");
        let addr = listener.local_addr().expect("test server address");
        let shared = Arc::new(Shared {
            handler: Box::new(handler),
            shutdown: AtomicBool::new(false),
            connections: AtomicUsize::new(0),
            requests: AtomicUsize::new(0),
            live: Mutex::new(HashMap::new()),
        });
        let accept_shared = Arc::clone(&shared);
        let accept = thread::spawn(move || accept_loop(&listener, &accept_shared));
        TestServer {
            shared,
            addr,
            accept: Some(accept),
        }
    }

    /// Connections accepted so far.
    pub(crate) fn connections(&self) -> usize {
        self.shared.connections.load(SeqCst)
    }

    /// Requests successfully parsed so far.
    pub(crate) fn requests(&self) -> usize {
        self.shared.requests.load(SeqCst)
    }

    /// Connections currently open on the server side.
    pub(crate) fn live_connections(&self) -> usize {
        lock(&self.shared.live).len()
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `"127.0.0.1:PORT"`.
    pub(crate) fn host(&self) -> String {
        format!("127.0.0.1:{}", self.addr.port())
    }

    /// `"http://127.0.0.1:PORT/path"` (a leading `/` is added if missing).
    pub(crate) fn url(&self, path: &str) -> String {
        let slash = if path.starts_with('/') { "" } else { "/" };
        format!("http://{}{slash}{path}", self.host())
    }

    /// Shuts down every connection waiting for its next request, like a
    /// server idle timeout, so a client's pooled connection goes stale.
    /// A connection counts as idle from the moment its last keep-alive
    /// response is fully written (so calling this right after the client has
    /// read a response always catches that connection) until the first byte
    /// of its next request arrives.
    pub(crate) fn close_idle_connections(&self) {
        for conn in self.shared.live() {
            let idle = lock(&conn.idle);
            if *idle {
                let _ = conn.stream.shutdown(Shutdown::Both);
            }
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shared.shutdown.store(true, SeqCst);
        // Wake the blocking accept() so the loop sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        for conn in self.shared.live() {
            let _ = conn.stream.shutdown(Shutdown::Both);
        }
        // Connection threads are not joined: they notice the shutdown within ~10 ms.
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
    }
}

fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>) {
    for stream in listener.incoming() {
        if shared.shutdown.load(SeqCst) {
            break;
        }
        let Ok((stream, clone)) = stream.and_then(|s| s.try_clone().map(|c| (s, c))) else {
            thread::sleep(TICK);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let id = shared.connections.fetch_add(1, SeqCst);
        let conn = Arc::new(Conn {
            stream: clone,
            idle: Mutex::new(true),
        });
        {
            // Checked under the lock so Drop cannot miss a fresh connection.
            let mut live = lock(&shared.live);
            if shared.shutdown.load(SeqCst) {
                break;
            }
            live.insert(id, Arc::clone(&conn));
        }
        let shared = Arc::clone(shared);
        thread::spawn(move || serve_connection(&shared, &conn, stream, id));
    }
}

/// Unregisters and shuts down the connection, even if the handler panics.
struct LiveGuard<'a>(&'a Shared, &'a Conn, usize);

impl Drop for LiveGuard<'_> {
    fn drop(&mut self) {
        lock(&self.0.live).remove(&self.2);
        let _ = self.1.stream.shutdown(Shutdown::Both);
    }
}

fn serve_connection(shared: &Shared, conn: &Conn, stream: TcpStream, id: usize) {
    let _guard = LiveGuard(shared, conn, id);
    let mut reader = BufReader::new(stream);
    for index in 0.. {
        // Block until the next request starts (or EOF / forced shutdown).
        match reader.fill_buf() {
            Ok(buf) if !buf.is_empty() && !shared.shutdown.load(SeqCst) => {}
            _ => break,
        }
        *lock(&conn.idle) = false;
        let Ok((request, close)) = read_request(&mut reader, id, index) else {
            break;
        };
        shared.requests.fetch_add(1, SeqCst);
        let reply = (shared.handler)(&request);
        let Ok(Some(last)) = perform(shared, &conn.stream, reply, close) else {
            break;
        };
        // Send the final bytes and turn idle atomically (see close_idle_connections).
        let mut idle = lock(&conn.idle);
        if (&conn.stream).write_all(&last).is_err() {
            break;
        }
        *idle = true;
    }
}

fn bad(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_string())
}

/// Parses one request, plus whether the client wants the connection closed
/// after it. Any error means the connection should be closed.
fn read_request(
    reader: &mut BufReader<TcpStream>,
    connection_id: usize,
    index_on_connection: usize,
) -> io::Result<(Request, bool)> {
    // read_line rejects non-UTF-8; `take` bounds a head without line breaks.
    let (mut head, mut limited) = (String::new(), (&mut *reader).take(MAX_HEAD));
    loop {
        let start = head.len();
        if limited.read_line(&mut head)? == 0 || !head.ends_with('\n') {
            return Err(bad("incomplete request head"));
        }
        // Blank line ends the head (blank lines before the request line are skipped).
        if head[start..].trim().is_empty() && !head.trim().is_empty() {
            break;
        }
    }
    let mut lines = head.lines().filter(|line| !line.trim().is_empty());
    let parts: Vec<&str> = lines.next().unwrap_or("").split_whitespace().collect();
    let [method, path, version] = parts[..] else {
        return Err(bad("bad request line"));
    };
    if !version.starts_with("HTTP/1.") {
        return Err(bad("unsupported HTTP version"));
    }
    let mut headers = Vec::new();
    for line in lines {
        let (name, value) = line.split_once(':').ok_or_else(|| bad("bad header"))?;
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
    }
    let mut request = Request {
        method: method.to_string(),
        path: path.to_string(),
        headers,
        body: Vec::new(),
        connection_id,
        index_on_connection,
    };
    if request.header("transfer-encoding").is_some() {
        return Err(bad("chunked request bodies are not supported"));
    }
    if let Some(len) = request.header("content-length") {
        let len: usize = len.parse().map_err(|_| bad("bad content-length"))?;
        if len > MAX_BODY {
            return Err(bad("request body too large"));
        }
        request.body = vec![0; len];
        reader.read_exact(&mut request.body)?;
    }
    let conn = request
        .header("connection")
        .unwrap_or("")
        .to_ascii_lowercase();
    let close = conn.contains("close") || (version == "HTTP/1.0" && !conn.contains("keep-alive"));
    Ok((request, close))
}

/// Performs `reply`. If the connection stays open, returns the final bytes
/// for the caller to send; otherwise writes everything itself and returns
/// `None` (always `None` when `close` is set).
fn perform(
    shared: &Shared,
    mut out: &TcpStream,
    reply: Reply,
    close: bool,
) -> io::Result<Option<Vec<u8>>> {
    let last = match reply {
        Reply::Respond {
            status,
            headers,
            body,
        } => {
            let mut head = format!("HTTP/1.1 {status} {}\r\n", reason(status));
            let has = |n: &str| headers.iter().any(|(h, _)| h.eq_ignore_ascii_case(n));
            let bodiless = status < 200 || status == 204 || status == 304;
            if !bodiless && !has("content-length") && !has("transfer-encoding") {
                let _ = write!(head, "content-length: {}\r\n", body.len());
            }
            if close && !has("connection") {
                head += "connection: close\r\n";
            }
            for (name, value) in &headers {
                let _ = write!(head, "{name}: {value}\r\n");
            }
            head += "\r\n";
            [head.into_bytes(), body].concat()
        }
        Reply::Raw(bytes) => bytes,
        Reply::Delay(d, inner) if shared.sleep(d) => return perform(shared, out, *inner, close),
        Reply::CloseAfter(inner) => return perform(shared, out, *inner, true),
        Reply::Truncated { declared_len, body } => {
            out.write_all(&partial_head(declared_len, &body))?;
            return Ok(None);
        }
        Reply::StallBody {
            declared_len,
            first,
            stall,
        } => {
            out.write_all(&partial_head(declared_len, &first))?;
            shared.sleep(stall);
            return Ok(None);
        }
        Reply::Stall(d) => {
            shared.sleep(d);
            return Ok(None);
        }
        Reply::ResetNow | Reply::Delay(..) => return Ok(None),
    };
    if close {
        out.write_all(&last)?;
        return Ok(None);
    }
    Ok(Some(last))
}

/// A `200` head declaring `declared_len` bytes, followed by `body`.
fn partial_head(declared_len: usize, body: &[u8]) -> Vec<u8> {
    let mut bytes = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
         content-length: {declared_len}\r\n\r\n"
    )
    .into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        408 => "Request Timeout",
        410 => "Gone",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Unknown",
    }
}

/// A deterministic, valid JSON object, distinct per `index`: laps fill it up
/// to `size` bytes and a `"pad"` string makes it exactly `size` where possible
/// (small sizes yield the ~40-byte minimum).
pub(crate) fn json_doc(index: usize, size: usize) -> Vec<u8> {
    const DRIVERS: [&str; 8] = ["VER", "HAM", "LEC", "NOR", "ALO", "PIA", "RUS", "SAI"];
    let mut doc = format!(
        r#"{{"index":{index},"driver":"{}","laps":["#,
        DRIVERS[index % DRIVERS.len()]
    );
    for lap in 1.. {
        let ms = 90_000 + (index * 7919 + lap * 104_729) % 5_000;
        let s1 = 29_000 + (index * 31 + lap * 17) % 2_000;
        let s2 = 30_000 + (index * 13 + lap * 29) % 2_000;
        let (sep, s3) = (if lap == 1 { "" } else { "," }, ms - s1 - s2);
        let [t, s1, s2, s3] = [ms, s1, s2, s3].map(|ms| format!("{}.{:03}", ms / 1000, ms % 1000));
        let entry = format!(r#"{sep}{{"lap":{lap},"time":{t},"sector":[{s1},{s2},{s3}]}}"#);
        if doc.len() + entry.len() + 2 > size {
            break;
        }
        doc += &entry;
    }
    // Pad to exactly `size` when there is room for the pad field.
    match size.checked_sub(doc.len() + r#"],"pad":""}"#.len()) {
        Some(pad) => {
            let _ = write!(doc, r#"],"pad":"{}"}}"#, "x".repeat(pad));
        }
        None => doc += "]}",
    }
    doc.into_bytes()
}
