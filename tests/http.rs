//! A small blocking HTTP/1.1 client for the server tests: one request per
//! connection (`Connection: close`), the answer read by its
//! `Content-Length` (chunked answers and answers that end with the
//! connection are read too). Every socket has a timeout, so a server that
//! does not answer fails the test instead of hanging it.

use std::{
    io::{self, Read, Write},
    net::{TcpStream, ToSocketAddrs},
    time::Duration,
};

use serde_json::Value;

/// How long a read or write may block.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// One HTTP answer.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    /// In the order received, names lowercased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The first header named `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON (panics, showing the body, when it is not).
    #[track_caller]
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "status {}: the body is not JSON ({e}): {}",
                self.status,
                self.text()
            )
        })
    }

    /// The `error` message of an error answer, after checking its status.
    #[track_caller]
    pub fn error(&self, status: u16) -> String {
        assert_eq!(self.status, status, "unexpected answer: {}", self.text());
        match self.json().get("error").and_then(Value::as_str) {
            Some(e) => e.to_string(),
            None => panic!("no `error` in the {status} answer: {}", self.text()),
        }
    }
}

/// A connection with read and write timeouts.
pub fn connect(addr: &str) -> io::Result<TcpStream> {
    let target = addr
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, addr.to_string()))?;
    let s = TcpStream::connect_timeout(&target, TIMEOUT)?;
    s.set_read_timeout(Some(TIMEOUT))?;
    s.set_write_timeout(Some(TIMEOUT))?;
    s.set_nodelay(true)?;
    Ok(s)
}

/// The request head: request line, `Host`, `Connection: close`,
/// `Content-Length` (when `body_len` is given) and `headers`.
pub fn head(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body_len: Option<usize>,
) -> Vec<u8> {
    let mut h = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if let Some(n) = body_len {
        h.push_str(&format!("Content-Length: {n}\r\n"));
    }
    for (k, v) in headers {
        h.push_str(&format!("{k}: {v}\r\n"));
    }
    h.push_str("\r\n");
    h.into_bytes()
}

/// Sends one request and reads its answer.
pub fn try_request(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> io::Result<Response> {
    let mut s = connect(addr)?;
    let mut msg = head(addr, method, path, headers, Some(body.len()));
    msg.extend_from_slice(body);
    s.write_all(&msg)?;
    read_response(&mut s)
}

/// [`try_request`] that panics on a transport error.
#[track_caller]
pub fn request(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Response {
    try_request(addr, method, path, headers, body)
        .unwrap_or_else(|e| panic!("{method} {path} on {addr}: {e}"))
}

#[track_caller]
pub fn get(addr: &str, path: &str) -> Response {
    request(addr, "GET", path, &[], b"")
}

#[track_caller]
pub fn post(addr: &str, path: &str, body: &Value) -> Response {
    request(
        addr,
        "POST",
        path,
        &[("Content-Type", "application/json")],
        body.to_string().as_bytes(),
    )
}

fn bad(what: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.into())
}

/// Position of the first `\r\n\r\n` in `buf`.
fn end_of_head(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n")
}

/// Reads one answer from `s`.
pub fn read_response(s: &mut impl Read) -> io::Result<Response> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_len = loop {
        if let Some(i) = end_of_head(&buf) {
            break i;
        }
        let n = s.read(&mut chunk)?;
        if n == 0 {
            return Err(bad(format!(
                "the connection closed before the answer's head ({} bytes: {:?})",
                buf.len(),
                String::from_utf8_lossy(&buf)
            )));
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = std::str::from_utf8(&buf[..head_len]).map_err(|e| bad(e.to_string()))?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    if !version.starts_with("HTTP/1.") {
        return Err(bad(format!("not an HTTP/1 status line: {status_line:?}")));
    }
    let status: u16 = parts
        .next()
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| bad(format!("no status code in {status_line:?}")))?;
    let mut headers = Vec::new();
    for line in lines {
        let (k, v) = line
            .split_once(':')
            .ok_or_else(|| bad(format!("not a header: {line:?}")))?;
        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
    }
    let mut body = buf[head_len + 4..].to_vec();
    let find = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    if let Some(len) = find("content-length") {
        let len: usize = len
            .parse()
            .map_err(|_| bad(format!("Content-Length {len:?}")))?;
        while body.len() < len {
            let n = s.read(&mut chunk)?;
            if n == 0 {
                return Err(bad(format!(
                    "the body ended after {} of its {len} bytes",
                    body.len()
                )));
            }
            body.extend_from_slice(&chunk[..n]);
        }
        body.truncate(len);
    } else if find("transfer-encoding").is_some_and(|t| t.eq_ignore_ascii_case("chunked")) {
        body = read_chunked(s, body)?;
    } else {
        s.read_to_end(&mut body)?;
    }
    Ok(Response {
        status,
        headers,
        body,
    })
}

/// The payload of a chunked body whose first bytes are `got`.
fn read_chunked(s: &mut impl Read, mut got: Vec<u8>) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut chunk = [0u8; 8192];
    let mut more = |got: &mut Vec<u8>| -> io::Result<()> {
        let n = s.read(&mut chunk)?;
        if n == 0 {
            return Err(bad("the chunked body ended early"));
        }
        got.extend_from_slice(&chunk[..n]);
        Ok(())
    };
    loop {
        let line_end = loop {
            if let Some(i) = got.windows(2).position(|w| w == b"\r\n") {
                break i;
            }
            more(&mut got)?;
        };
        let size_text = String::from_utf8_lossy(&got[..line_end]).into_owned();
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| bad(format!("chunk size {size_text:?}")))?;
        got.drain(..line_end + 2);
        while got.len() < size + 2 {
            more(&mut got)?;
        }
        if size == 0 {
            return Ok(out);
        }
        out.extend_from_slice(&got[..size]);
        got.drain(..size + 2);
    }
}
