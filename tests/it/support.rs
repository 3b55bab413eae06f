//! Helpers the test modules share: raw scripted servers, a clock for hangs,
//! waits for events, byte scans, servers that record what they were asked,
//! and a per-thread capture of log lines.

use std::cell::RefCell;
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::{mpsc, Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use parfetch::{Fetcher, Request};

use crate::server::{Reply, TestServer};

/// A raw server: reads each request head (byte by byte) and then runs
/// `script` on the connection, one thread per connection.
pub(crate) fn scripted(script: impl Fn(&mut TcpStream, &str) + Send + Sync + 'static) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let script = Arc::new(script);
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let script = Arc::clone(&script);
            std::thread::spawn(move || {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    match stream.read(&mut byte) {
                        Ok(1) => head.push(byte[0]),
                        _ => return,
                    }
                }
                let head = String::from_utf8_lossy(&head).into_owned();
                script(&mut stream, &head);
            });
        }
    });
    format!("http://{addr}")
}

/// Writes `bytes` one at a time, `every` apart (cycling), until the client
/// goes away or `total` has passed.
pub(crate) fn trickle(stream: &mut TcpStream, bytes: &[u8], every: Duration, total: Duration) {
    let started = Instant::now();
    for byte in bytes.iter().cycle() {
        if started.elapsed() > total || stream.write_all(&[*byte]).is_err() {
            return;
        }
        std::thread::sleep(every);
    }
}

/// Runs `f` on its own thread; `None` if it has not finished after `limit`.
pub(crate) fn within<T: Send + 'static>(
    limit: Duration,
    f: impl FnOnce() -> T + Send + 'static,
) -> Option<T> {
    let (send, receive) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = send.send(f());
    });
    receive.recv_timeout(limit).ok()
}

/// Waits until `ready` holds, looking every 10 ms; fails the test with
/// `what` after `limit`. Tests wait for an event this way, never for a
/// guessed time.
pub(crate) fn wait_until(limit: Duration, what: &str, mut ready: impl FnMut() -> bool) {
    let started = Instant::now();
    while !ready() {
        assert!(started.elapsed() < limit, "waited {limit:?} for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The bytes of every file under `dir`, concatenated (for scanning a cache
/// directory for secrets).
pub(crate) fn all_bytes(dir: &Path) -> Vec<u8> {
    let mut bytes = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(dir) = todo.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                todo.push(path);
            } else {
                bytes.extend(std::fs::read(&path).unwrap_or_default());
            }
        }
    }
    bytes
}

/// Whether `needle` occurs in `haystack`.
pub(crate) fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle.as_bytes())
}

/// `data` gzip-compressed.
pub(crate) fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

/// A raw server that answers every request with `head`, then trickles
/// `drip` a byte every 100 ms for up to a minute.
pub(crate) fn trickling(head: &'static [u8], drip: &'static [u8]) -> String {
    scripted(move |stream, _| {
        let _ = stream.write_all(head);
        trickle(
            stream,
            drip,
            Duration::from_millis(100),
            Duration::from_secs(60),
        );
    })
}

/// A fetcher with a 1 s timeout and no retries.
pub(crate) fn one_second() -> Fetcher {
    crate::quick()
        .timeout(Duration::from_secs(1))
        .max_retries(0)
        .breaker_threshold(0)
        .build()
        .unwrap()
}

/// Sends `request` with `fetcher` and asserts that it ends, with an error,
/// well within a bound that only an unbounded attempt would pass.
pub(crate) fn assert_bounded(fetcher: Fetcher, request: Request) -> parfetch::Error {
    let started = Instant::now();
    let result = within(Duration::from_secs(30), move || fetcher.get_bytes(request))
        .expect("the attempt outlived its 1 s timeout by 30 s");
    let elapsed = started.elapsed();
    let error = result.expect_err("a hostile server was answered with success");
    assert!(
        elapsed < Duration::from_secs(10),
        "1 s timeout, ended after {elapsed:?}: {error:?}"
    );
    error
}

/// `data` zlib-compressed (HTTP's `deflate`).
pub(crate) fn zlib(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

/// A fetcher that does not retry and never opens a breaker, so that each
/// case is judged on its own.
pub(crate) fn once() -> parfetch::Fetcher {
    crate::quick()
        .max_retries(0)
        .breaker_threshold(0)
        .build()
        .unwrap()
}

/// Fails each of `urls` (user info `USERTOKEN` and `PASSWORD`, no server)
/// and asserts that neither shows in the error's message, its `Debug`, or
/// the request's `Debug`.
pub(crate) fn assert_user_info_never_shown(urls: &[&str]) {
    let fetcher = crate::quick().max_retries(0).build().unwrap();
    for url in urls {
        let request = Request::get(*url);
        let error = fetcher.get_bytes(request.clone()).unwrap_err();
        for shown in [
            error.to_string(),
            format!("{error:?}"),
            format!("{request:?}"),
        ] {
            assert!(
                !shown.contains("PASSWORD") && !shown.contains("USERTOKEN"),
                "{url}: {shown}"
            );
        }
    }
}

/// Waits until `done` holds, looking every 10 ms: an event, not a guess at
/// how long it takes. Fails the test, naming `what`, after `limit`.
pub(crate) fn wait_for(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < limit, "waited {limit:?} for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// What each request asked: method, path and If-None-Match.
pub(crate) type Recorded = Arc<Mutex<Vec<(String, String, Option<String>)>>>;

/// A server answering `reply(n)` to the n-th request (0-based), recording
/// what each asked.
pub(crate) fn recording(
    reply: impl Fn(usize, &crate::server::Request) -> Reply + Send + Sync + 'static,
) -> (TestServer, Recorded) {
    let asked: Recorded = Arc::default();
    let server = TestServer::start({
        let asked = Arc::clone(&asked);
        move |request| {
            let inm = request.header("if-none-match").map(str::to_owned);
            let n = {
                let mut asked = asked.lock().unwrap();
                asked.push((request.method.clone(), request.path.clone(), inm));
                asked.len() - 1
            };
            reply(n, request)
        }
    });
    (server, asked)
}

/// A server whose every answer is `status` with `body` and `headers`.
pub(crate) fn always(
    status: u16,
    body: &'static str,
    headers: &'static [(&'static str, &'static str)],
) -> (TestServer, Recorded) {
    recording(move |_, _| {
        let mut reply = Reply::json(status, body);
        for (name, value) in headers {
            reply = reply.with_header(*name, *value);
        }
        reply
    })
}

/// How many requests `asked` recorded.
pub(crate) fn count(asked: &Recorded) -> usize {
    asked.lock().unwrap().len()
}

/// A server answering each path of `table` with its reply (404 for others).
pub(crate) fn serve(table: Vec<(&str, Reply)>) -> TestServer {
    let table: Arc<HashMap<String, Reply>> = Arc::new(
        table
            .into_iter()
            .map(|(path, reply)| (path.to_owned(), reply))
            .collect(),
    );
    TestServer::start(move |request| {
        table
            .get(&request.path)
            .cloned()
            .unwrap_or_else(|| Reply::status(404))
    })
}

/// A `status` response with `body` sent in `coding`.
pub(crate) fn encoded(status: u16, coding: &str, body: Vec<u8>) -> Reply {
    Reply::json(status, body).with_header("content-encoding", coding)
}

/// The log lines of one thread, recorded while a [`LogCapture`] of it lives.
type Lines = Vec<(log::Level, String)>;

thread_local! {
    /// This thread's lines, while it captures them.
    static CAPTURED: RefCell<Option<Lines>> = const { RefCell::new(None) };
}

/// How many captures are running: while none is, the log level is off and
/// a log line costs the other tests nothing.
static CAPTURES: Mutex<usize> = Mutex::new(0);

/// Whether the calling thread captures its log lines.
fn capturing() -> bool {
    CAPTURED.with(|captured| captured.try_borrow().is_ok_and(|lines| lines.is_some()))
}

/// The binary's one logger: it records the lines of the threads that
/// capture, as "target: message", and nothing of the others (so that
/// ureq-proto's trace-level dump of every byte is not even formatted for
/// them).
struct PerThread;

impl log::Log for PerThread {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        capturing()
    }

    fn log(&self, record: &log::Record<'_>) {
        if !capturing() {
            return;
        }
        // Formatted outside the borrow: formatting may log in turn.
        let line = format!("{}: {}", record.target(), record.args());
        CAPTURED.with(|captured| {
            if let Ok(mut captured) = captured.try_borrow_mut() {
                if let Some(lines) = captured.as_mut() {
                    lines.push((record.level(), line));
                }
            }
        });
    }

    fn flush(&self) {}
}

/// Records every log line the calling thread emits, at every level, until
/// it is dropped. A fetch made on this thread (`get_bytes`, `get_json`)
/// logs on it; a batch's workers do not.
pub(crate) struct LogCapture {
    /// A capture belongs to its thread.
    _thread: std::marker::PhantomData<*const ()>,
}

impl LogCapture {
    pub(crate) fn start() -> LogCapture {
        static INSTALLED: std::sync::Once = std::sync::Once::new();
        INSTALLED.call_once(|| {
            static LOGGER: PerThread = PerThread;
            log::set_logger(&LOGGER).expect("the test binary's only logger");
        });
        CAPTURED.with(|captured| *captured.borrow_mut() = Some(Vec::new()));
        let mut captures = CAPTURES.lock().unwrap_or_else(PoisonError::into_inner);
        *captures += 1;
        log::set_max_level(log::LevelFilter::Trace);
        LogCapture {
            _thread: std::marker::PhantomData,
        }
    }

    /// The lines recorded so far (on this capture's thread).
    // A method, though the lines live in the thread: they are read while
    // the capture lives.
    #[allow(clippy::unused_self)]
    pub(crate) fn lines(&self) -> Lines {
        CAPTURED.with(|captured| captured.borrow().clone().unwrap_or_default())
    }
}

impl Drop for LogCapture {
    fn drop(&mut self) {
        CAPTURED.with(|captured| *captured.borrow_mut() = None);
        let mut captures = CAPTURES.lock().unwrap_or_else(PoisonError::into_inner);
        *captures -= 1;
        if *captures == 0 {
            log::set_max_level(log::LevelFilter::Off);
        }
    }
}
