//! A small static HTTP/1.1 file server for the demo and the browser tests, on `std::net` with a
//! thread per connection.
//!
//! It owns URL → file mapping ([`Mount`]s, `index.html` for directories, no `..`), the headers a
//! cross-origin-isolated page needs (COOP/COEP/CORP, so SharedArrayBuffer and wasm threads stay
//! possible), single byte ranges (206 / 416) and HEAD. Files are streamed in 64 KiB chunks, never
//! read whole. It is a development server: it binds where it is told and trusts the files it
//! serves, but it never serves a path outside its mounts.

use std::{
    fs::File,
    io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write},
    net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs},
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    thread::{self, JoinHandle},
    time::Duration,
};

/// Body chunk size when streaming a file.
const CHUNK: usize = 64 * 1024;
/// Largest request head (request line and headers) accepted.
const MAX_HEAD: usize = 16 * 1024;
/// How long an idle keep-alive connection keeps its thread.
const IDLE: Duration = Duration::from_secs(30);

/// URLs under `prefix` map to files under `dir`: with prefix `/fixtures/`, `/fixtures/a/b.onnx`
/// is `dir/a/b.onnx`. The longest matching prefix wins.
#[derive(Clone, Debug)]
pub struct Mount {
    prefix: String,
    dir: PathBuf,
}

impl Mount {
    /// `prefix` starts and ends with `/` (both are added when missing).
    pub fn new(prefix: &str, dir: impl Into<PathBuf>) -> Mount {
        let trimmed = prefix.trim_matches('/');
        let prefix = if trimmed.is_empty() {
            "/".to_string()
        } else {
            format!("/{trimmed}/")
        };
        Mount {
            prefix,
            dir: dir.into(),
        }
    }
}

/// A running server; dropping it (or [`Server::stop`]) stops accepting connections.
pub struct Server {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    /// Stops accepting and waits for the accept loop to end. Connections already open finish on
    /// their own threads.
    pub fn stop(mut self) {
        self.shutdown();
    }

    /// Blocks for as long as the server runs (until the process is interrupted).
    pub fn wait(mut self) {
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }

    fn shutdown(&mut self) {
        let Some(thread) = self.thread.take() else {
            return;
        };
        self.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accept() with a connection of our own.
        let mut wake = self.addr;
        if wake.ip().is_unspecified() {
            wake.set_ip(if wake.is_ipv4() {
                std::net::Ipv4Addr::LOCALHOST.into()
            } else {
                std::net::Ipv6Addr::LOCALHOST.into()
            });
        }
        if TcpStream::connect_timeout(&wake, Duration::from_secs(1)).is_ok() {
            let _ = thread.join();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Binds `addr` (port 0 picks a free port) and serves `mounts` from a background thread.
/// Returns the bound address and the handle that stops the server.
pub fn serve(addr: impl ToSocketAddrs, mounts: Vec<Mount>) -> io::Result<(SocketAddr, Server)> {
    let listener = TcpListener::bind(addr)?;
    let addr = listener.local_addr()?;
    let stop = Arc::new(AtomicBool::new(false));
    let mounts: Arc<[Mount]> = mounts.into();
    let thread = {
        let stop = stop.clone();
        thread::Builder::new()
            .name("serve-accept".into())
            .spawn(move || {
                for conn in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    match conn {
                        Ok(stream) => {
                            let mounts = mounts.clone();
                            // A connection that fails mid-response is simply dropped.
                            thread::spawn(move || drop(connection(stream, &mounts)));
                        }
                        Err(err) => {
                            eprintln!("serve: accept failed: {err}");
                            thread::sleep(Duration::from_millis(50));
                        }
                    }
                }
            })?
    };
    Ok((
        addr,
        Server {
            addr,
            stop,
            thread: Some(thread),
        },
    ))
}

/// Answers requests on one connection until the client closes it or asks to.
fn connection(stream: TcpStream, mounts: &[Mount]) -> io::Result<()> {
    stream.set_read_timeout(Some(IDLE))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut out = stream;
    loop {
        let request = match read_request(&mut reader) {
            Ok(Some(request)) => request,
            Ok(None) => return Ok(()),
            Err(RequestError::Io(err)) => return Err(err),
            Err(RequestError::Bad(status)) => {
                let reply = Reply::error(status, false);
                return reply.send(&mut out, false);
            }
        };
        let reply = respond(&request, mounts);
        if reply.status >= 400 {
            eprintln!(
                "serve: {} {} {}",
                reply.status, request.method, request.target
            );
        }
        let keep_alive = reply.keep_alive;
        reply.send(&mut out, request.method == "HEAD")?;
        if !keep_alive {
            return Ok(());
        }
    }
}

struct Request {
    method: String,
    target: String,
    /// Header names lower-cased.
    headers: Vec<(String, String)>,
    keep_alive: bool,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

enum RequestError {
    Io(io::Error),
    /// Malformed or too large: answer with this status and close.
    Bad(u16),
}

impl From<io::Error> for RequestError {
    fn from(err: io::Error) -> Self {
        RequestError::Io(err)
    }
}

/// Reads one request head; `None` when the client closed the connection between requests.
fn read_request(reader: &mut impl BufRead) -> Result<Option<Request>, RequestError> {
    let mut lines = Vec::new();
    let mut size = 0;
    loop {
        let mut line = String::new();
        let n = reader
            .by_ref()
            .take((MAX_HEAD + 1 - size) as u64)
            .read_line(&mut line)?;
        size += n;
        if n == 0 {
            return if lines.is_empty() {
                Ok(None)
            } else {
                Err(RequestError::Bad(400))
            };
        }
        if size > MAX_HEAD {
            return Err(RequestError::Bad(431));
        }
        let line = line.trim_end_matches(['\r', '\n']);
        if line.is_empty() {
            if lines.is_empty() {
                continue; // Stray CRLF between requests is allowed.
            }
            break;
        }
        lines.push(line.to_string());
    }
    let mut parts = lines[0].split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(RequestError::Bad(400));
    };
    if !version.starts_with("HTTP/1.") {
        return Err(RequestError::Bad(505));
    }
    let mut headers = Vec::new();
    for line in &lines[1..] {
        let Some((name, value)) = line.split_once(':') else {
            return Err(RequestError::Bad(400));
        };
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
    }
    let mut request = Request {
        method: method.into(),
        target: target.into(),
        headers,
        keep_alive: false,
    };
    // Requests with a body are never expected; rather than skip it, close after answering.
    let has_body = request.header("transfer-encoding").is_some()
        || request
            .header("content-length")
            .is_some_and(|len| len.trim() != "0");
    let connection = request
        .header("connection")
        .unwrap_or("")
        .to_ascii_lowercase();
    request.keep_alive = !has_body
        && if version == "HTTP/1.0" {
            connection.contains("keep-alive")
        } else {
            !connection.contains("close")
        };
    Ok(Some(request))
}

/// What a request maps to on disk.
#[derive(Debug, PartialEq)]
enum Target {
    File(PathBuf),
    /// A directory named without its trailing slash: send the browser to `location`.
    Redirect(String),
    NotFound,
    /// `..`, or a path that cannot name a file under a mount.
    Forbidden,
    BadRequest,
}

fn resolve(target: &str, mounts: &[Mount]) -> Target {
    // `rest` is the query (and a fragment, should a client send one), kept for redirects.
    let (path, rest) = target.split_at(target.find(['?', '#']).unwrap_or(target.len()));
    if !path.starts_with('/') {
        return Target::BadRequest;
    }
    let Some(decoded) = percent_decode(path) else {
        return Target::BadRequest;
    };
    if decoded
        .split('/')
        .any(|seg| seg == ".." || seg.contains(['\\', '\0']))
    {
        return Target::Forbidden;
    }
    let mount = mounts
        .iter()
        .filter(|m| decoded.starts_with(&m.prefix) || format!("{decoded}/") == m.prefix)
        .max_by_key(|m| m.prefix.len());
    let Some(mount) = mount else {
        return Target::NotFound;
    };
    if decoded.len() < mount.prefix.len() {
        return Target::Redirect(format!("{path}/{rest}"));
    }
    let mut file = mount.dir.clone();
    file.extend(
        decoded[mount.prefix.len()..]
            .split('/')
            .filter(|s| !s.is_empty() && *s != "."),
    );
    if file.is_dir() {
        if !path.ends_with('/') {
            return Target::Redirect(format!("{path}/{rest}"));
        }
        file.push("index.html");
    }
    if file.is_file() {
        Target::File(file)
    } else {
        Target::NotFound
    }
}

/// `%XX` escapes decoded; `None` for a bad escape or a path that is not UTF-8.
fn percent_decode(path: &str) -> Option<String> {
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

pub fn content_type(path: &Path) -> &'static str {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    match ext.as_str() {
        "html" | "htm" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript",
        "wasm" => "application/wasm",
        "json" | "map" => "application/json",
        "css" => "text/css",
        "png" => "image/png",
        "svg" => "image/svg+xml",
        "ts" | "txt" | "md" => "text/plain; charset=utf-8",
        // .onnx, .onnx_data, .bin, .pb and anything unknown.
        _ => "application/octet-stream",
    }
}

/// A requested byte range, after checking it against the file length.
#[derive(Debug, PartialEq)]
enum Range {
    Full,
    /// First and last byte, inclusive.
    Part(u64, u64),
    Unsatisfiable,
}

/// One `bytes=a-b`, `bytes=a-` or `bytes=-n` range. Anything else (several ranges, another unit,
/// bad syntax) is ignored and the whole file is sent, as RFC 9110 allows.
fn parse_range(header: Option<&str>, len: u64) -> Range {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return Range::Full;
    };
    let Some((first, last)) = spec.trim().split_once('-') else {
        return Range::Full;
    };
    let (first, last) = (first.trim(), last.trim());
    if first.is_empty() {
        return match last.parse::<u64>() {
            Ok(0) => Range::Unsatisfiable,
            Ok(_) if len == 0 => Range::Unsatisfiable,
            Ok(n) => Range::Part(len.saturating_sub(n), len - 1),
            Err(_) => Range::Full,
        };
    }
    let Ok(first) = first.parse::<u64>() else {
        return Range::Full;
    };
    let last = if last.is_empty() {
        u64::MAX
    } else {
        match last.parse::<u64>() {
            Ok(last) if last >= first => last,
            _ => return Range::Full,
        }
    };
    if first >= len {
        Range::Unsatisfiable
    } else {
        Range::Part(first, last.min(len - 1))
    }
}

/// A response: status, headers beyond the common ones, and a body from a file or memory.
struct Reply {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: Body,
    keep_alive: bool,
    /// Sends COOP/COEP: off for a page asked for with `?isolated=0` (the tests' and benches'
    /// not-isolated page, where the worker falls back to its single-threaded build).
    isolated: bool,
}

enum Body {
    Bytes(Vec<u8>),
    /// `len` bytes of `file` from `start`.
    File {
        file: File,
        start: u64,
        len: u64,
    },
}

impl Reply {
    fn error(status: u16, keep_alive: bool) -> Reply {
        let body = format!("{status} {}\n", reason(status)).into_bytes();
        let headers = vec![("Content-Type", "text/plain; charset=utf-8".to_string())];
        Reply {
            status,
            headers,
            body: Body::Bytes(body),
            keep_alive,
            isolated: true,
        }
    }

    fn send(self, out: &mut impl Write, head_only: bool) -> io::Result<()> {
        let len = match &self.body {
            Body::Bytes(bytes) => bytes.len() as u64,
            Body::File { len, .. } => *len,
        };
        let mut head = format!("HTTP/1.1 {} {}\r\n", self.status, reason(self.status));
        for (name, value) in &self.headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        if self.isolated {
            head.push_str(
                "Cross-Origin-Opener-Policy: same-origin\r\n\
                 Cross-Origin-Embedder-Policy: require-corp\r\n",
            );
        }
        head.push_str(&format!(
            "Content-Length: {len}\r\n\
             Cross-Origin-Resource-Policy: same-origin\r\n\
             Cache-Control: no-store\r\n\
             Connection: {}\r\n\r\n",
            if self.keep_alive {
                "keep-alive"
            } else {
                "close"
            }
        ));
        out.write_all(head.as_bytes())?;
        if !head_only {
            match self.body {
                Body::Bytes(bytes) => out.write_all(&bytes)?,
                Body::File {
                    mut file,
                    start,
                    len,
                } => {
                    file.seek(SeekFrom::Start(start))?;
                    let mut buf = vec![0; CHUNK];
                    let mut left = len;
                    while left > 0 {
                        let want = left.min(CHUNK as u64) as usize;
                        let n = file.read(&mut buf[..want])?;
                        if n == 0 {
                            // The file shrank under us; the connection cannot be reused.
                            return Err(io::ErrorKind::UnexpectedEof.into());
                        }
                        out.write_all(&buf[..n])?;
                        left -= n as u64;
                    }
                }
            }
        }
        out.flush()
    }
}

fn respond(request: &Request, mounts: &[Mount]) -> Reply {
    let keep_alive = request.keep_alive;
    if request.method != "GET" && request.method != "HEAD" {
        let mut reply = Reply::error(405, false);
        reply.headers.push(("Allow", "GET, HEAD".into()));
        return reply;
    }
    let path = match resolve(&request.target, mounts) {
        Target::File(path) => path,
        Target::Redirect(location) => {
            let mut reply = Reply::error(301, keep_alive);
            reply.headers.push(("Location", location));
            return reply;
        }
        Target::NotFound => return Reply::error(404, keep_alive),
        Target::Forbidden => return Reply::error(403, keep_alive),
        Target::BadRequest => return Reply::error(400, false),
    };
    let opened = File::open(&path).and_then(|file| Ok((file.metadata()?.len(), file)));
    let Ok((size, file)) = opened else {
        return Reply::error(403, keep_alive);
    };
    let mut headers = vec![
        ("Content-Type", content_type(&path).to_string()),
        ("Accept-Ranges", "bytes".to_string()),
    ];
    let (status, start, len) = match parse_range(request.header("range"), size) {
        Range::Full => (200, 0, size),
        Range::Part(first, last) => {
            headers.push(("Content-Range", format!("bytes {first}-{last}/{size}")));
            (206, first, last - first + 1)
        }
        Range::Unsatisfiable => {
            let mut reply = Reply::error(416, keep_alive);
            reply
                .headers
                .push(("Content-Range", format!("bytes */{size}")));
            return reply;
        }
    };
    Reply {
        status,
        headers,
        body: Body::File { file, start, len },
        keep_alive,
        isolated: !not_isolated(&request.target),
    }
}

/// Whether the query asks for a page that is not cross-origin isolated (`isolated=0`).
fn not_isolated(target: &str) -> bool {
    target
        .split_once('?')
        .is_some_and(|(_, query)| query.split(['&', '#']).any(|pair| pair == "isolated=0"))
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        206 => "Partial Content",
        301 => "Moved Permanently",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        416 => "Range Not Satisfiable",
        431 => "Request Header Fields Too Large",
        505 => "HTTP Version Not Supported",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::{fs, sync::atomic::AtomicUsize};

    /// A scratch tree: `site/` (index.html, app.js, big.bin, sub/index.html, empty/),
    /// `fixtures/` (model.onnx) and `secret.txt` beside them.
    struct Tree(PathBuf);

    impl Tree {
        fn new() -> Tree {
            static N: AtomicUsize = AtomicUsize::new(0);
            let n = N.fetch_add(1, Ordering::SeqCst);
            let root = std::env::temp_dir().join(format!("xtask-serve-{}-{n}", std::process::id()));
            let _ = fs::remove_dir_all(&root);
            for dir in ["site/sub", "site/empty", "fixtures"] {
                fs::create_dir_all(root.join(dir)).unwrap();
            }
            fs::write(root.join("site/index.html"), "<h1>wick</h1>").unwrap();
            fs::write(root.join("site/app.js"), "export {};").unwrap();
            fs::write(root.join("site/big.bin"), big()).unwrap();
            fs::write(root.join("site/sub/index.html"), "sub").unwrap();
            fs::write(root.join("fixtures/model.onnx"), "0123456789").unwrap();
            fs::write(root.join("secret.txt"), "secret").unwrap();
            Tree(root)
        }

        fn start(&self) -> (SocketAddr, Server) {
            let mounts = vec![
                Mount::new("/", self.0.join("site")),
                Mount::new("/fixtures/", self.0.join("fixtures")),
            ];
            serve("127.0.0.1:0", mounts).unwrap()
        }
    }

    impl Drop for Tree {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    /// 200 KiB + 7 bytes: several chunks and a partial one.
    fn big() -> Vec<u8> {
        (0..200 * 1024 + 7)
            .map(|i: u32| (i * 31 % 251) as u8)
            .collect()
    }

    struct Response {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    }

    impl Response {
        fn header(&self, name: &str) -> Option<&str> {
            let name = name.to_ascii_lowercase();
            self.headers
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.as_str())
        }
    }

    /// Sends `raw` verbatim and reads until the server closes the connection.
    fn exchange(addr: SocketAddr, raw: &str) -> Vec<u8> {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        stream.write_all(raw.as_bytes()).unwrap();
        let mut bytes = Vec::new();
        stream.read_to_end(&mut bytes).unwrap();
        bytes
    }

    fn parse(bytes: &[u8]) -> Response {
        let split = bytes
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("a complete head");
        let head = std::str::from_utf8(&bytes[..split]).unwrap();
        let mut lines = head.split("\r\n");
        let status = lines
            .next()
            .unwrap()
            .split(' ')
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        let headers = lines
            .map(|l| {
                let (n, v) = l.split_once(':').unwrap();
                (n.trim().to_ascii_lowercase(), v.trim().to_string())
            })
            .collect();
        Response {
            status,
            headers,
            body: bytes[split + 4..].to_vec(),
        }
    }

    fn get(addr: SocketAddr, path: &str, extra: &str) -> Response {
        parse(&exchange(
            addr,
            &format!("GET {path} HTTP/1.1\r\nHost: x\r\n{extra}Connection: close\r\n\r\n"),
        ))
    }

    #[test]
    fn serves_files_with_isolation_headers() {
        let tree = Tree::new();
        let (addr, server) = tree.start();
        let r = get(addr, "/index.html", "");
        assert_eq!(r.status, 200);
        assert_eq!(r.body, b"<h1>wick</h1>");
        assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
        assert_eq!(r.header("content-length"), Some("13"));
        assert_eq!(r.header("cross-origin-opener-policy"), Some("same-origin"));
        assert_eq!(
            r.header("cross-origin-embedder-policy"),
            Some("require-corp")
        );
        assert_eq!(
            r.header("cross-origin-resource-policy"),
            Some("same-origin")
        );
        assert_eq!(r.header("cache-control"), Some("no-store"));
        assert_eq!(r.header("accept-ranges"), Some("bytes"));
        assert_eq!(
            get(addr, "/app.js?v=1", "").header("content-type"),
            Some("text/javascript")
        );
        let fixture = get(addr, "/fixtures/model.onnx", "");
        assert_eq!(
            (fixture.status, fixture.body.as_slice()),
            (200, &b"0123456789"[..])
        );
        assert_eq!(
            fixture.header("content-type"),
            Some("application/octet-stream")
        );
        let big = get(addr, "/big.bin", "");
        assert_eq!(big.status, 200);
        assert!(
            big.body == super::tests::big(),
            "large file streamed intact"
        );
        server.stop();
    }

    #[test]
    fn isolated_0_serves_a_page_without_coop_and_coep() {
        let tree = Tree::new();
        let (addr, _server) = tree.start();
        for target in ["/?isolated=0", "/app.js?v=1&isolated=0"] {
            let r = get(addr, target, "");
            assert_eq!(r.status, 200, "{target}");
            assert_eq!(r.header("cross-origin-opener-policy"), None, "{target}");
            assert_eq!(r.header("cross-origin-embedder-policy"), None, "{target}");
        }
        let r = get(addr, "/?isolated=01", "");
        assert_eq!(r.header("cross-origin-embedder-policy"), Some("require-corp"));
    }

    #[test]
    fn directories_serve_index_html() {
        let tree = Tree::new();
        let (addr, _server) = tree.start();
        assert_eq!(get(addr, "/", "").body, b"<h1>wick</h1>");
        assert_eq!(get(addr, "/sub/", "").body, b"sub");
        let r = get(addr, "/sub", "");
        assert_eq!((r.status, r.header("location")), (301, Some("/sub/")));
        let r = get(addr, "/fixtures", "");
        assert_eq!((r.status, r.header("location")), (301, Some("/fixtures/")));
        assert_eq!(get(addr, "/empty/", "").status, 404);
    }

    #[test]
    fn missing_files_are_404() {
        let tree = Tree::new();
        let (addr, _server) = tree.start();
        let r = get(addr, "/nope.js", "");
        assert_eq!(r.status, 404);
        assert_eq!(
            r.header("cross-origin-embedder-policy"),
            Some("require-corp")
        );
        assert_eq!(get(addr, "/fixtures/nope.onnx", "").status, 404);
    }

    #[test]
    fn byte_ranges() {
        let tree = Tree::new();
        let (addr, _server) = tree.start();
        let r = get(addr, "/fixtures/model.onnx", "Range: bytes=2-5\r\n");
        assert_eq!((r.status, r.body.as_slice()), (206, &b"2345"[..]));
        assert_eq!(r.header("content-range"), Some("bytes 2-5/10"));
        assert_eq!(r.header("content-length"), Some("4"));
        let r = get(addr, "/fixtures/model.onnx", "Range: bytes=7-\r\n");
        assert_eq!((r.status, r.body.as_slice()), (206, &b"789"[..]));
        assert_eq!(r.header("content-range"), Some("bytes 7-9/10"));
        let r = get(addr, "/fixtures/model.onnx", "Range: bytes=8-100\r\n");
        assert_eq!((r.status, r.body.as_slice()), (206, &b"89"[..]));
        let r = get(addr, "/fixtures/model.onnx", "Range: bytes=10-\r\n");
        assert_eq!(
            (r.status, r.header("content-range")),
            (416, Some("bytes */10"))
        );
        let r = get(addr, "/big.bin", "Range: bytes=65530-140000\r\n");
        assert_eq!(r.status, 206);
        assert!(r.body == big()[65530..=140000]);
    }

    #[test]
    fn range_parsing() {
        assert_eq!(parse_range(None, 10), Range::Full);
        assert_eq!(parse_range(Some("bytes=0-0"), 10), Range::Part(0, 0));
        assert_eq!(parse_range(Some("bytes=-3"), 10), Range::Part(7, 9));
        assert_eq!(parse_range(Some("bytes=-30"), 10), Range::Part(0, 9));
        assert_eq!(parse_range(Some("bytes=5-2"), 10), Range::Full);
        assert_eq!(parse_range(Some("bytes=0-1,4-5"), 10), Range::Full);
        assert_eq!(parse_range(Some("items=0-1"), 10), Range::Full);
        assert_eq!(parse_range(Some("bytes=0-"), 0), Range::Unsatisfiable);
    }

    #[test]
    fn traversal_is_rejected() {
        let tree = Tree::new();
        let (addr, _server) = tree.start();
        for path in [
            "/../secret.txt",
            "/%2e%2e/secret.txt",
            "/fixtures/../../secret.txt",
            "/sub/..%2f..%2fsecret.txt",
        ] {
            let raw = exchange(
                addr,
                &format!("GET {path} HTTP/1.1\r\nConnection: close\r\n\r\n"),
            );
            let r = parse(&raw);
            assert_eq!(r.status, 403, "{path}");
            assert!(
                !raw.windows(6).any(|w| w == b"secret"),
                "{path} leaked the file"
            );
        }
        assert_eq!(get(addr, "/%zz", "").status, 400);
    }

    #[test]
    fn head_and_keep_alive() {
        let tree = Tree::new();
        let (addr, _server) = tree.start();
        let r = parse(&exchange(
            addr,
            "HEAD /app.js HTTP/1.1\r\nConnection: close\r\n\r\n",
        ));
        assert_eq!((r.status, r.header("content-length")), (200, Some("10")));
        assert!(r.body.is_empty());
        // Two pipelined requests on one connection; the second closes it.
        let raw = exchange(
            addr,
            "GET /app.js HTTP/1.1\r\n\r\nGET /sub/ HTTP/1.1\r\nConnection: close\r\n\r\n",
        );
        let text = String::from_utf8(raw).unwrap();
        assert_eq!(text.matches("HTTP/1.1 200 OK").count(), 2);
        assert!(text.contains("export {};") && text.ends_with("sub"));
        let r = parse(&exchange(
            addr,
            "POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
        ));
        assert_eq!(r.status, 405);
    }

    #[test]
    fn stop_releases_the_port() {
        let tree = Tree::new();
        let (addr, server) = tree.start();
        server.stop();
        assert!(TcpListener::bind(addr).is_ok());
    }
}
