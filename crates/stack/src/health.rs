//! Readiness checks, each one attempt with short timeouts; the caller polls them until a deadline.
//! HTTP is a bare HTTP/1.0 GET over std's TcpStream: the checks only read a status line on 127.0.0.1,
//! which does not justify an HTTP client and its async runtime in the manager.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// Something accepts TCP connections on 127.0.0.1:`port`.
pub fn port_open(port: u16) -> bool {
    connect("127.0.0.1", port, Duration::from_millis(500)).is_ok()
}

fn connect(host: &str, port: u16, timeout: Duration) -> Result<TcpStream, String> {
    let addr = (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("{host}:{port}: {e}"))?
        .next()
        .ok_or_else(|| format!("{host}:{port}: no address"))?;
    let s =
        TcpStream::connect_timeout(&addr, timeout).map_err(|e| format!("{host}:{port}: {e}"))?;
    s.set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    s.set_write_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    Ok(s)
}

pub fn parse_port(s: &str) -> Result<u16, String> {
    s.trim().parse().map_err(|_| format!("not a port: {s:?}"))
}

/// Connect to 127.0.0.1:`port`; with `send`, write it and expect the answer to start with `expect`.
pub fn tcp(port: u16, send: Option<&str>, expect: Option<&str>) -> Result<(), String> {
    let mut s = connect("127.0.0.1", port, Duration::from_secs(2))?;
    if let Some(msg) = send {
        s.write_all(msg.as_bytes())
            .map_err(|e| format!("writing to :{port}: {e}"))?;
    }
    if let Some(want) = expect {
        let mut buf = vec![0u8; want.len().max(64)];
        let n = s
            .read(&mut buf)
            .map_err(|e| format!("reading from :{port}: {e}"))?;
        let got = String::from_utf8_lossy(&buf[..n]);
        if !got.starts_with(want) {
            return Err(format!(
                ":{port} answered {:?}, not {want:?}",
                got.trim_end()
            ));
        }
    }
    Ok(())
}

/// GET `url` (http://[user:password@]host:port/path) answers 2xx within `timeout`.
pub fn http(url: &str, timeout: Duration) -> Result<(), String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("{url}: only http:// is checked"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let (userinfo, hostport) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    let (host, port) = match hostport.rsplit_once(':') {
        Some((h, p)) => (h, parse_port(p)?),
        None => (hostport, 80),
    };
    let mut s = connect(host, port, timeout)?;
    let mut req = format!(
        "GET {path} HTTP/1.0\r\nHost: {hostport}\r\nUser-Agent: pool-stack\r\nConnection: close\r\n"
    );
    if let Some(u) = userinfo {
        req.push_str(&format!(
            "Authorization: Basic {}\r\n",
            base64(u.as_bytes())
        ));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes())
        .map_err(|e| format!("{url}: {e}"))?;
    let mut head = Vec::new();
    let mut buf = [0u8; 512];
    while !head.contains(&b'\n') {
        let n = s.read(&mut buf).map_err(|e| format!("{url}: {e}"))?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let line = String::from_utf8_lossy(&head);
    let line = line.lines().next().unwrap_or("");
    let code: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    if (200..300).contains(&code) {
        Ok(())
    } else if code == 0 {
        Err(format!("{url}: no HTTP answer ({line:?})"))
    } else {
        Err(format!("{url}: HTTP {code}"))
    }
}

fn base64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(T[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn base64_matches_the_rfc_examples() {
        assert_eq!(base64(b"guest:guest"), "Z3Vlc3Q6Z3Vlc3Q=");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
    }

    /// A one-shot server answering `status`, returning the request it got.
    fn serve(status: &'static str) -> (u16, std::thread::JoinHandle<String>) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let h = std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let mut buf = [0u8; 2048];
            let n = s.read(&mut buf).unwrap();
            s.write_all(format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\n\r\n").as_bytes())
                .unwrap();
            String::from_utf8_lossy(&buf[..n]).into_owned()
        });
        (port, h)
    }

    #[test]
    fn http_checks_want_2xx_and_send_basic_auth() {
        let (port, h) = serve("200 OK");
        http(
            &format!("http://guest:guest@127.0.0.1:{port}/api/overview"),
            Duration::from_secs(5),
        )
        .unwrap();
        let req = h.join().unwrap();
        assert!(req.starts_with("GET /api/overview HTTP/1.0\r\n"), "{req}");
        assert!(
            req.contains("Authorization: Basic Z3Vlc3Q6Z3Vlc3Q=\r\n"),
            "{req}"
        );
        let (port, h) = serve("503 Service Unavailable");
        let e = http(
            &format!("http://127.0.0.1:{port}/ready"),
            Duration::from_secs(5),
        )
        .unwrap_err();
        assert!(e.ends_with("HTTP 503"), "{e}");
        h.join().unwrap();
    }

    #[test]
    fn tcp_checks_connect_and_compare_the_answer() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let h = std::thread::spawn(move || {
            for answer in ["+PONG\r\n", "-ERR\r\n"] {
                let (mut s, _) = l.accept().unwrap();
                let mut buf = [0u8; 64];
                let _ = s.read(&mut buf).unwrap();
                s.write_all(answer.as_bytes()).unwrap();
            }
        });
        tcp(port, Some("PING\r\n"), Some("+PONG")).unwrap();
        assert!(
            tcp(port, Some("PING\r\n"), Some("+PONG"))
                .unwrap_err()
                .contains("answered")
        );
        h.join().unwrap();
    }
}
