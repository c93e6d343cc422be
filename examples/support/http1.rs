//! HTTP/1.1 response reading shared by the load examples (`loadgen`, `soak`): status line,
//! headers, a `Content-Length` body.

use std::io::{BufRead, BufReader, Read};
use std::net::TcpStream;

/// Read one response: (status, the server closes the connection).
pub fn response(r: &mut BufReader<TcpStream>) -> Option<(u16, bool)> {
    let mut line = String::new();
    let mut status = 0u16;
    let mut len = 0usize;
    let mut close = false;
    let mut first = true;
    loop {
        line.clear();
        if r.read_line(&mut line).ok()? == 0 {
            return None;
        }
        if first {
            status = line.split(' ').nth(1)?.parse().ok()?;
            first = false;
        }
        if line == "\r\n" {
            break;
        }
        let l = line.to_ascii_lowercase();
        if let Some(v) = l.strip_prefix("content-length:") {
            len = v.trim().parse().unwrap_or(0);
        }
        if l.starts_with("connection:") && l.contains("close") {
            close = true;
        }
    }
    let mut buf = vec![0u8; len];
    r.read_exact(&mut buf).ok()?;
    Some((status, close))
}
