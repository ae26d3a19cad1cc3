//! `ProxyHandshake`: the `CONNECT` request built from fuzzed hosts, credentials and extra
//! headers, and the proxy's answer fed in pieces split at fuzzed points (RFC 9110 §9.3.6,
//! §15.2 for interim responses; RFC 7617 for the credentials).
//!
//! Input: a 17-byte plan (see `Plan`; all zero = default limits, no credentials, no extra
//! headers, the response in one chunk after six empty ones), then length-prefixed fields (one
//! length byte, then the bytes): the target host, the proxy host (or proxy URL), the user, the
//! password, then a name and a value per extra header; the rest is the proxy's response.
//!
//! Invariants: no panic; the request is exactly `CONNECT authority HTTP/1.1`, `Host`, the
//! credentials and the extra headers, one line each: CR and LF are removed from names and
//! values (so nothing can inject a header line) and whitespace and control characters from the
//! target host; with token names and values free of control characters, httparse reads the
//! request back with exactly those headers. The outcome does not depend on how the response was
//! split; the bytes handed over with an established tunnel are exactly those after the last
//! response head (checked by re-parsing the heads before them with httparse: interim 1xx heads
//! but 101, which is final, then one 2xx); a refusal carries the proxy's non-2xx status (101
//! included); errors are sticky; the `Debug` output of the `Proxy` and of the handshake at every
//! step is the same as with other credentials and header values (no secret ever shows).

#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use wscore::{Config, Proxy, ProxyError, ProxyHandshake};
use wscore_fuzz::{base64, chunks, is_token, text_field};

#[derive(Arbitrary, Debug)]
struct Plan {
    /// Lengths of the first chunks of the response; the rest is the last chunk.
    chunk_lens: [u8; 6],
    /// `max_handshake_size` 256 and `max_headers` 4 instead of the defaults.
    small_limits: bool,
    /// After the last chunk, end of stream if the tunnel is not open yet.
    eof: bool,
    /// Little-endian ports (0 is a port like any other here).
    target_port: [u8; 2],
    proxy_port: [u8; 2],
    /// Add Basic credentials from the user and password fields.
    credentials: bool,
    /// b % 4 extra headers.
    headers: u8,
    /// Build the proxy with `Proxy::from_url` from the proxy field (else `Proxy::new`).
    from_url: bool,
    _reserved: [u8; 2],
}

/// What a run ends with, comparable across splits.
#[derive(Debug, PartialEq)]
enum Outcome {
    Waiting,
    /// The tunnel's first bytes: what came with the last response head, then every later piece.
    Established(Vec<u8>),
    Failed(ProxyError),
}

/// Removes what the request must never carry from an application string: CR and LF.
fn without_newlines(s: &str) -> String {
    s.chars().filter(|&c| c != '\r' && c != '\n').collect()
}

/// Whether `s` is valid HTTP field content as httparse reads it (no control character but HTAB).
fn is_field_content(s: &str) -> bool {
    s.bytes().all(|b| b == b'\t' || !b.is_ascii_control())
}

struct Setup {
    proxy: Proxy,
    /// The same proxy with other credentials and header values: its `Debug` must be the same.
    decoy: Proxy,
    target: String,
    port: u16,
    /// The credentials the request must carry, when the harness knows them.
    credentials: Option<(String, String)>,
    headers: Vec<(String, String)>,
}

fn setup(plan: &Plan, u: &mut Unstructured<'_>) -> Setup {
    let target = text_field(u);
    let proxy_field = text_field(u);
    let user = text_field(u);
    let password = text_field(u);
    let headers: Vec<(String, String)> = (0..plan.headers % 4).map(|_| (text_field(u), text_field(u))).collect();
    let port = u16::from_le_bytes(plan.target_port);
    let proxy_port = u16::from_le_bytes(plan.proxy_port);

    let base = if plan.from_url {
        match Proxy::from_url(&proxy_field) {
            Ok(proxy) => {
                check_url_proxy(&proxy);
                proxy
            }
            Err(_) => Proxy::new("proxy.example", proxy_port),
        }
    } else {
        Proxy::new(proxy_field, proxy_port)
    };
    // Credentials from the URL stay unknown to the harness (percent-decoded), but are secret too.
    let mut decoy =
        if base.has_credentials() { base.clone().basic_auth("decoy-user", "decoy-pass") } else { base.clone() };
    let mut proxy = base;
    let mut credentials = None;
    if plan.credentials {
        proxy = proxy.basic_auth(&user, &password);
        decoy = decoy.basic_auth("decoy-user", "decoy-pass");
        credentials = Some((user, password));
    }
    for (name, value) in &headers {
        proxy = proxy.header(name.clone(), value.clone());
        decoy = decoy.header(name.clone(), "decoy-value");
    }
    assert_eq!(format!("{proxy:?}"), format!("{decoy:?}"), "Proxy's Debug shows credentials or header values");
    Setup { proxy, decoy, target, port, credentials, headers }
}

/// A proxy parsed from a URL has a usable host, and the URL it amounts to parses back to it.
fn check_url_proxy(proxy: &Proxy) {
    let host = proxy.host();
    assert!(!host.is_empty(), "from_url accepted an empty host");
    assert!(!host.contains(|c: char| c.is_whitespace() || c.is_control()), "from_url kept a bad host {host:?}");
    if host.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b':') {
        let url = if host.contains(':') {
            format!("http://[{host}]:{}", proxy.port())
        } else {
            format!("http://{host}:{}", proxy.port())
        };
        let again = Proxy::from_url(&url).expect("a proxy's own URL does not parse");
        assert_eq!((again.host(), again.port()), (host, proxy.port()), "{url}");
    }
}

/// The request is exactly the lines it should be, and httparse reads it back when the
/// application's strings are valid HTTP.
fn check_request(s: &Setup, request: &[u8]) {
    let host: String = s.target.chars().filter(|c| !c.is_whitespace() && !c.is_control()).collect();
    let authority = if host.contains(':') { format!("[{host}]:{}", s.port) } else { format!("{host}:{}", s.port) };
    let mut lines = vec![format!("CONNECT {authority} HTTP/1.1"), format!("Host: {authority}")];
    let text = std::str::from_utf8(request).expect("the request is not UTF-8");
    let mut auth_line = None;
    if s.proxy.has_credentials() {
        let line = match &s.credentials {
            Some((user, password)) => {
                format!("Proxy-Authorization: Basic {}", base64(format!("{user}:{password}").as_bytes()))
            }
            // From the URL: only the shape is known.
            None => {
                let line = text.split("\r\n").nth(2).unwrap_or_default().to_string();
                let value = line.strip_prefix("Proxy-Authorization: Basic ").expect("no Proxy-Authorization line");
                assert!(value.bytes().all(|b| b.is_ascii_alphanumeric() || b"+/=".contains(&b)), "{line:?}");
                line
            }
        };
        auth_line = Some(line.clone());
        lines.push(line);
    }
    for (name, value) in &s.headers {
        lines.push(format!("{}: {}", without_newlines(name), without_newlines(value)));
    }
    let expected = lines.join("\r\n") + "\r\n\r\n";
    assert_eq!(text, expected, "the CONNECT request is not what it should be");
    // No line carries a stray CR or LF: nothing was injected.
    let head = text.strip_suffix("\r\n\r\n").unwrap_or_default();
    assert!(head.split("\r\n").all(|line| !line.contains(['\r', '\n'])), "{head:?}");
    assert_eq!(head.split("\r\n").count(), 2 + usize::from(auth_line.is_some()) + s.headers.len());

    let valid = s.headers.iter().all(|(n, v)| is_token(&without_newlines(n)) && is_field_content(&without_newlines(v)));
    if !valid {
        return;
    }
    let mut storage = [httparse::EMPTY_HEADER; 8];
    let mut parsed = httparse::Request::new(&mut storage);
    let status = parsed.parse(request).unwrap_or_else(|e| panic!("httparse rejects the request ({e}): {text:?}"));
    assert_eq!(status, httparse::Status::Complete(request.len()));
    assert_eq!((parsed.method, parsed.path, parsed.version), (Some("CONNECT"), Some(authority.as_str()), Some(1)));
    let got: Vec<(String, String)> = parsed
        .headers
        .iter()
        .map(|h| (h.name.to_string(), String::from_utf8_lossy(h.value).trim_matches([' ', '\t']).to_string()))
        .collect();
    let mut want = vec![("Host".to_string(), authority.clone())];
    if let Some(line) = auth_line {
        want.push(("Proxy-Authorization".into(), line["Proxy-Authorization: ".len()..].to_string()));
    }
    for (name, value) in &s.headers {
        want.push((without_newlines(name), without_newlines(value).trim_matches([' ', '\t']).to_string()));
    }
    assert_eq!(got, want, "httparse reads other headers than were asked for");
}

/// The bytes before the tunnel's first ones are response heads: interim 1xx ones, then a 2xx
/// ending exactly where the tunnel starts.
fn check_heads(prefix: &[u8]) {
    let mut at = 0;
    loop {
        let mut storage = [httparse::EMPTY_HEADER; 128];
        let mut parsed = httparse::Response::new(&mut storage);
        let rest = &prefix[at..];
        let n = match parsed.parse(rest) {
            Ok(httparse::Status::Complete(n)) => n,
            other => panic!(
                "the bytes before the tunnel are not response heads ({other:?}): {:?}",
                String::from_utf8_lossy(rest)
            ),
        };
        let code = parsed.code.unwrap_or_default();
        at += n;
        match code {
            100 | 102..=199 => assert!(at < prefix.len(), "the tunnel opened on an interim response"),
            200..=299 => {
                assert_eq!(at, prefix.len(), "the tunnel does not start right after the 2xx head");
                return;
            }
            _ => panic!("the tunnel opened on a {code}"),
        }
    }
}

fn run(s: &Setup, config: &Config, pieces: &[&[u8]], eof: bool) -> Outcome {
    let mut hs = ProxyHandshake::new(&s.proxy, &s.target, s.port, config);
    let mut decoy = ProxyHandshake::new(&s.decoy, &s.target, s.port, config);
    let debug_same = |hs: &ProxyHandshake, decoy: &ProxyHandshake| {
        assert_eq!(format!("{hs:?}"), format!("{decoy:?}"), "the handshake's Debug shows secrets");
    };
    debug_same(&hs, &decoy);
    let mut tunnel: Option<Vec<u8>> = None;
    for piece in pieces {
        if let Some(tunnel) = tunnel.as_mut() {
            tunnel.extend_from_slice(piece);
            // Feeding an open tunnel's bytes to the handshake is a mistake it reports, harmlessly.
            assert!(hs.receive(piece).is_err());
            assert!(hs.is_established());
            continue;
        }
        let result = hs.receive(piece);
        let _ = decoy.receive(piece);
        debug_same(&hs, &decoy);
        match result {
            Ok(Some(rest)) => {
                assert!(hs.is_established());
                tunnel = Some(rest.to_vec());
            }
            Ok(None) => assert!(!hs.is_established()),
            Err(err) => return failed(&mut hs, err),
        }
    }
    match tunnel {
        Some(tunnel) => Outcome::Established(tunnel),
        None if eof => match hs.receive_eof() {
            Ok(()) => panic!("receive_eof succeeded"),
            Err(err) => {
                assert_eq!(err, ProxyError::UnexpectedEof);
                failed(&mut hs, err)
            }
        },
        None => Outcome::Waiting,
    }
}

fn failed(hs: &mut ProxyHandshake, err: ProxyError) -> Outcome {
    assert!(!hs.is_established());
    match &err {
        ProxyError::Refused(response) => {
            // 101 is final (RFC 9110 §15.2.2): no tunnel, a refusal like any non-2xx.
            let interim = response.status == 100 || (102..200).contains(&response.status);
            assert!(!interim && !(200..300).contains(&response.status), "refused with status {}", response.status);
            assert_eq!(err.status(), Some(response.status));
            assert!(response.body.is_empty());
        }
        ProxyError::InvalidResponse(_) | ProxyError::UnexpectedEof => assert_eq!(err.status(), None),
        other => panic!("unexpected error {other:?}"),
    }
    assert_eq!(hs.receive(b"HTTP/1.1 200 OK\r\n\r\n").unwrap_err(), err, "errors are sticky");
    assert_eq!(hs.receive_eof().unwrap_err(), err, "errors are sticky");
    assert!(!hs.is_established());
    Outcome::Failed(err)
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let Ok(plan) = Plan::arbitrary(&mut u) else { return };
    let s = setup(&plan, &mut u);
    let response = u.take_rest();
    let mut config = Config::default();
    if plan.small_limits {
        config = config.max_handshake_size(256).max_headers(4);
    }
    let request = ProxyHandshake::new(&s.proxy, &s.target, s.port, &config).request_bytes();
    check_request(&s, &request);

    let split = run(&s, &config, &chunks(response, plan.chunk_lens.map(usize::from)), plan.eof);
    let whole = run(&s, &config, &[response], plan.eof);
    wscore_fuzz::debug(|| format!("{plan:?}\n{}\n{split:?}", String::from_utf8_lossy(&request)));
    assert_eq!(split, whole, "the outcome depends on how the response was split");
    if let Outcome::Established(tunnel) = &whole {
        assert!(response.ends_with(tunnel), "the tunnel's bytes are not the end of the input");
        check_heads(&response[..response.len() - tunnel.len()]);
    }
});
