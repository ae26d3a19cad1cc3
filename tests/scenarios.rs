//! The seed scenarios, run as the real example binaries over loopback TCP:
//!
//! - `auth_echo_server` refuses an upgrade without a valid `session` cookie with 401 and a JSON
//!   body, echoes with one, and fails a message over 256 KiB with close code 1009;
//! - `cookie_json_client` logs in with the cookie, exchanges JSON requests and answers, and when
//!   the server is killed mid-run (or shuts down with 1001 on Ctrl-C) backs off, reconnects to
//!   the restarted server and finishes its work; Ctrl-C stops it with a clean close;
//! - `std_client` (the blocking client with a heartbeat thread) logs in with `--header`, echoes
//!   lines and gets its heartbeat pings answered.
//!
//! `cargo test` builds the examples before the integration tests; the binaries are found next
//! to this test's executable (`target/<profile>/examples/`). When they are missing or older
//! than their sources (`cargo test --test scenarios` builds no examples), they are built first.
//!
//! Nothing here waits on the clock: every step waits for a line the programs print. A line
//! that does not come within [`LINE_DEADLINE`] fails the test instead of hanging it.

#![cfg(feature = "tokio")]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::thread;
use std::time::{Duration, SystemTime};

use wscore::blocking::WebSocket;
use wscore::{ClientRequest, CloseCode, Config, DriverError, Event, HandshakeError, Message};

/// How long to wait for a line before failing (a hang guard, far above what any step takes).
const LINE_DEADLINE: Duration = Duration::from_secs(60);
/// The server's message size limit.
const LIMIT: usize = 256 << 10;

// ----- running the examples -----

/// The path of an example binary, built first if it is missing or older than its sources.
fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test's own path");
    // target/<profile>/deps/scenarios-HASH -> target/<profile>
    let profile_dir = exe.parent().and_then(Path::parent).expect("target/<profile>");
    let binary = profile_dir.join("examples").join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    // Not Cargo.toml: cargo relinks no example for most manifest edits, so its mtime would
    // call for a build every time.
    let sources = [root.join("examples").join(format!("{name}.rs")), root.join("src")];
    let built = std::fs::metadata(&binary).and_then(|m| m.modified()).ok();
    if built.is_none_or(|built| sources.iter().any(|s| newest(s) > built)) {
        build(name, profile_dir);
    }
    binary
}

/// The newest modification time of a file or of the files below a directory.
fn newest(path: &Path) -> SystemTime {
    let Ok(meta) = std::fs::metadata(path) else { return SystemTime::UNIX_EPOCH };
    let own = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
    if !meta.is_dir() {
        return own;
    }
    let entries = std::fs::read_dir(path).into_iter().flatten().flatten();
    entries.map(|entry| newest(&entry.path())).fold(own, SystemTime::max)
}

/// `cargo build --example NAME` for the profile this test was built with.
fn build(name: &str, profile_dir: &Path) {
    let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") | None => "dev",
        Some(other) => other,
    };
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "--example", name, "--features", "tokio", "--profile", profile])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .expect("run cargo");
    assert!(status.success(), "cargo build --example {name} failed");
}

/// A running example: its output, line by line, and a kill on drop so no test leaves a process
/// behind.
struct Program {
    name: &'static str,
    child: Child,
    /// Lines of stdout and stderr, in the order they were read (each stream in order).
    lines: Receiver<String>,
    /// Every line taken so far, for failure messages.
    seen: Vec<String>,
}

impl Program {
    fn start(name: &'static str, args: &[&str]) -> Self {
        let mut child = Command::new(example(name))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("start {name}: {e}"));
        let (tx, lines) = mpsc::channel();
        let stdout: Box<dyn Read + Send> = Box::new(child.stdout.take().expect("piped stdout"));
        let stderr: Box<dyn Read + Send> = Box::new(child.stderr.take().expect("piped stderr"));
        for stream in [stdout, stderr] {
            let tx = tx.clone();
            thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
        }
        Self { name, child, lines, seen: Vec::new() }
    }

    /// Takes lines until one satisfies `want`; returns it. Fails if the program's output ends
    /// (or stalls past [`LINE_DEADLINE`]) first.
    fn expect(&mut self, what: &str, want: impl Fn(&str) -> bool) -> String {
        loop {
            match self.lines.recv_timeout(LINE_DEADLINE) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if want(&line) {
                        return line;
                    }
                }
                Err(e) => panic!("{}: no line {what} ({e:?}); output so far:\n{}", self.name, self.seen.join("\n")),
            }
        }
    }

    /// Takes lines until one starts with `prefix`; returns the rest of it.
    fn expect_prefix(&mut self, prefix: &str) -> String {
        let line = self.expect(&format!("starting with {prefix:?}"), |l| l.starts_with(prefix));
        line[prefix.len()..].to_owned()
    }

    fn stdin(&mut self) -> &mut ChildStdin {
        self.child.stdin.as_mut().expect("piped stdin")
    }

    /// Waits for the program to exit (with [`LINE_DEADLINE`] as a hang guard) and returns its
    /// status with the rest of its output.
    fn wait(mut self) -> (ExitStatus, Vec<String>) {
        drop(self.child.stdin.take());
        let mut rest = Vec::new();
        // The output ends when the program exits (both pipes close).
        loop {
            match self.lines.recv_timeout(LINE_DEADLINE) {
                Ok(line) => rest.push(line),
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
                Err(e) => panic!("{}: did not exit ({e:?}); output:\n{}", self.name, self.seen.join("\n")),
            }
        }
        let status = self.child.wait().expect("wait");
        (status, rest)
    }

    /// Kills the program (SIGKILL: no goodbye to its peers) and reaps it.
    fn kill(mut self) {
        self.child.kill().expect("kill");
        self.child.wait().expect("reap");
    }
}

impl Drop for Program {
    fn drop(&mut self) {
        // Already reaped by `wait`/`kill`, or the test failed: make sure it is gone.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `auth_echo_server` on `addr` (port 0: any) and returns it with the address it bound.
fn start_server(addr: &str) -> (Program, SocketAddr) {
    let mut server = Program::start("auth_echo_server", &[addr, "--session", "demo", "--session", "other"]);
    let bound = server.expect_prefix("listening on ").parse().expect("a socket address");
    (server, bound)
}

fn request(addr: SocketAddr, cookie: Option<&str>) -> ClientRequest {
    let request = ClientRequest::from_url(&format!("ws://{addr}/echo")).expect("URL");
    match cookie {
        Some(cookie) => request.header("Cookie", cookie),
        None => request,
    }
}

/// Reads until the next data message.
fn next_message<S: std::io::Read + std::io::Write + wscore::blocking::Transport>(ws: &mut WebSocket<S>) -> Message {
    loop {
        match ws.read().expect("read") {
            Some(Event::Message(message)) => return message,
            Some(_) => {}
            None => panic!("the connection ended while a message was expected"),
        }
    }
}

// ----- auth_echo_server -----

#[test]
fn server_refuses_an_upgrade_without_a_valid_session_cookie() {
    let (mut server, addr) = start_server("127.0.0.1:0");
    let cases = [
        (None, r#"{"error":"login required"}"#),
        (Some("theme=dark"), r#"{"error":"login required"}"#),
        (Some("session=stolen"), r#"{"error":"invalid session"}"#),
    ];
    for (cookie, body) in cases {
        match WebSocket::connect_with(request(addr, cookie), Config::default()) {
            Err(DriverError::Handshake(HandshakeError::Rejected(response))) => {
                assert_eq!(response.status, 401, "{cookie:?}");
                assert_eq!(response.headers.get_str("Content-Type"), Some("application/json"), "{cookie:?}");
                assert_eq!(std::str::from_utf8(&response.body), Ok(body), "{cookie:?}");
            }
            other => panic!("{cookie:?}: expected a 401 rejection, got {other:?}"),
        }
        let logged = server.expect_prefix("127.0.0.1:");
        assert!(logged.ends_with(&format!("refused: HTTP 401 {body}")), "{logged}");
    }
}

#[test]
fn server_echoes_with_a_cookie_and_fails_a_message_over_256_kib_with_1009() {
    let (mut server, addr) = start_server("127.0.0.1:0");
    // The cookie among others, as browsers send it.
    let mut ws = WebSocket::connect_with(request(addr, Some("theme=dark; session=other")), Config::default())
        .expect("upgrade with a valid session");
    assert!(server.expect_prefix("127.0.0.1:").ends_with("accepted, session other"));

    ws.send_text(r#"{"id":1}"#).unwrap();
    assert_eq!(next_message(&mut ws), Message::Text(r#"{"id":1}"#.into()));
    let at_limit: Vec<u8> = (0..LIMIT).map(|i| (i % 251) as u8).collect();
    ws.send_binary(at_limit.clone()).unwrap();
    assert_eq!(next_message(&mut ws).as_bytes(), &at_limit[..], "exactly 256 KiB is echoed");

    ws.send_binary(vec![7u8; LIMIT + 1]).unwrap();
    match ws.read().expect("the server's close frame") {
        Some(Event::Close(Some(frame))) => {
            assert_eq!(frame.code, CloseCode::TOO_BIG);
            assert_eq!(frame.reason.as_str(), "protocol error: message exceeds the limit of 262144 bytes");
        }
        other => panic!("expected close 1009, got {other:?}"),
    }
    // Our reply went out with `read`; the server then closes the TCP connection: a clean end.
    assert!(ws.read().expect("the end").is_none());
    let logged = server.expect_prefix("127.0.0.1:");
    assert!(logged.ends_with("(sent close code 1009)"), "{logged}");
}

// ----- cookie_json_client -----

#[test]
fn json_client_backs_off_reconnects_and_finishes_after_the_server_is_killed() {
    const COUNT: u64 = 8;
    let (server, addr) = start_server("127.0.0.1:0");
    let url = format!("ws://{addr}/echo");
    let count = COUNT.to_string();
    // The interval keeps the work going long enough for the test to kill the server midway.
    let args = ["--cookie", "session=demo", "--count", &count, "--interval", "150", "--max-backoff", "400"];
    let mut client = Program::start("cookie_json_client", &[&[url.as_str()][..], &args].concat());
    client.expect("`connected`", |l| l == "connected");
    for id in 1..=3 {
        assert_eq!(client.expect_prefix("ack "), id.to_string());
    }
    server.kill();

    // The connection is lost; connecting fails while nothing listens, with a growing backoff.
    let lost = client.expect_prefix("connection lost: ");
    assert!(lost.contains("without a close handshake") || lost.contains("I/O error"), "{lost}");
    let mut caps = Vec::new();
    while caps.len() < 3 {
        let line = client.expect("a backoff or a failed connect", |l| {
            l.starts_with("backoff: ") || l.starts_with("connect failed: ")
        });
        if let Some(cap) = line.strip_suffix(" ms)").and_then(|l| l.rsplit_once("(cap ")) {
            caps.push(cap.1.parse::<u64>().expect("a cap in ms"));
        } else {
            assert!(line.contains("Connection refused"), "{line}");
        }
    }
    assert_eq!(caps, [100, 200, 400], "the cap doubles from 100 ms up to --max-backoff");

    // The server comes back on the same address; the client resumes with the unanswered request.
    let (mut server, again) = start_server(&addr.to_string());
    assert_eq!(again, addr);
    let resumed: u64 = client.expect_prefix("reconnected; resuming at request ").parse().expect("an id");
    assert_eq!(resumed, 4, "requests 1 to 3 were answered before the kill");
    for id in resumed..=COUNT {
        assert_eq!(client.expect_prefix("ack "), id.to_string());
    }
    assert_eq!(client.expect_prefix("done: "), format!("{COUNT} acknowledged, 1 reconnect(s)"));
    let (status, rest) = client.wait();
    assert!(status.success(), "{status:?}; last lines: {rest:?}");
    assert_eq!(rest, ["closed"]);
    assert!(server.expect_prefix("127.0.0.1:").ends_with("accepted, session demo"));
    assert!(server.expect_prefix("127.0.0.1:").ends_with(r#"closed by the client: 1000 "done""#));
}

/// Sends SIGINT (what Ctrl-C sends) to a running example, with the shell's built-in `kill`
/// (no `kill` binary needed, no unsafe `libc::kill`).
#[cfg(unix)]
fn interrupt(program: &Program) {
    let pid = program.child.id().to_string();
    let status = Command::new("sh").args(["-c", "kill -INT \"$0\"", &pid]).status().expect("run sh");
    assert!(status.success(), "kill -INT {pid}");
}

/// The graceful paths: the server shuts down on Ctrl-C with 1001, the client reconnects to the
/// next server; then Ctrl-C on the client closes with 1000 and exits 0 before its work is done.
#[cfg(unix)]
#[test]
fn json_client_reconnects_after_a_graceful_shutdown_and_stops_on_ctrl_c() {
    let (mut server, addr) = start_server("127.0.0.1:0");
    let url = format!("ws://{addr}/echo");
    let args = ["--cookie", "session=demo", "--count", "1000", "--interval", "50", "--max-backoff", "400"];
    let mut client = Program::start("cookie_json_client", &[&[url.as_str()][..], &args].concat());
    assert_eq!(client.expect_prefix("ack "), "1");
    interrupt(&server);
    server.expect("the shutdown", |l| l == "shutting down: closing 1 connection(s) with 1001");
    let lost = client.expect_prefix("connection lost: ");
    assert_eq!(lost, r#"the server closed with 1001 "server shutting down""#);
    assert!(server.expect_prefix("127.0.0.1:").ends_with(": closed"), "the close handshake completed");
    let (status, _) = server.wait();
    assert!(status.success(), "{status:?}");

    let (mut server, _) = start_server(&addr.to_string());
    client.expect_prefix("reconnected; resuming at request ");
    client.expect_prefix("ack ");
    interrupt(&client);
    client.expect("the interruption", |l| l == "interrupted: closing");
    let stopped = client.expect_prefix("stopped: ");
    assert!(stopped.ends_with(" acknowledged, 1 reconnect(s)"), "{stopped}");
    let (status, rest) = client.wait();
    assert!(status.success(), "{status:?}: {rest:?}");
    assert_eq!(rest, ["closed"]);
    assert!(server.expect_prefix("127.0.0.1:").ends_with("accepted, session demo"));
    assert!(server.expect_prefix("127.0.0.1:").ends_with(r#"closed by the client: 1000 "done""#));
}

#[test]
fn json_client_gives_up_when_the_login_is_refused() {
    let (_server, addr) = start_server("127.0.0.1:0");
    let url = format!("ws://{addr}/echo");
    let client = Program::start("cookie_json_client", &[&url, "--cookie", "session=expired"]);
    let (status, rest) = client.wait();
    assert_eq!(status.code(), Some(1), "{rest:?}");
    assert_eq!(
        rest.last().map(String::as_str),
        Some(r#"giving up: upgrade refused: HTTP 401 Unauthorized: {"error":"invalid session"}"#)
    );
}

// ----- std_client: the blocking client with a heartbeat thread -----

#[test]
fn heartbeat_client_logs_in_echoes_lines_and_gets_its_pings_answered() {
    let (mut server, addr) = start_server("127.0.0.1:0");
    let url = format!("ws://{addr}/echo");
    let mut client = Program::start("std_client", &[&url, "--header", "Cookie: session=demo", "--heartbeat", "1"]);
    assert!(server.expect_prefix("127.0.0.1:").ends_with("accepted, session demo"));
    writeln!(client.stdin(), "hello").unwrap();
    client.expect("`hello` echoed", |l| l == "hello");
    // The heartbeat thread pings while the reader blocks; the server's pongs come back.
    client.expect("the first heartbeat's pong", |l| l == "pong: heartbeat 1");
    writeln!(client.stdin(), "still here").unwrap();
    client.expect("`still here` echoed", |l| l == "still here");
    // End of stdin: close 1000, the server's reply, exit 0.
    let (status, rest) = client.wait();
    assert!(status.success(), "{status:?}: {rest:?}");
    assert!(server.expect_prefix("127.0.0.1:").ends_with(r#"closed by the client: 1000 """#));

    let client = Program::start("std_client", &[&url, "--heartbeat", "1"]);
    let (status, rest) = client.wait();
    assert_eq!(status.code(), Some(1), "{rest:?}");
    assert_eq!(rest, ["upgrade rejected: HTTP 401 Unauthorized", r#"{"error":"login required"}"#]);
}
