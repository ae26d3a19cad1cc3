//! permessage-deflate pieces the deflate test files share: the agreed parameters, configs with
//! deflate settings, an in-memory upgrade that reports the extension headers both ends sent,
//! and the compressed messages one end wrote, read back off the wire.

use super::{CLIENT_SEED, Side};
use wscore::{
    Accept, ClientHandshake, ClientRequest, Config, Connection, DeflateConfig, DeflateParams, HandshakeError, OpCode,
    SeededRandom, ServerHandshake,
};

/// The parameters of a default offer accepted by a default server.
pub const DEFAULT_PARAMS: DeflateParams = params(false, false, 15, 15);

/// Deflate parameters, in the order server_no_context_takeover, client_no_context_takeover,
/// server_max_window_bits, client_max_window_bits.
pub const fn params(server_nct: bool, client_nct: bool, server_bits: u8, client_bits: u8) -> DeflateParams {
    DeflateParams {
        server_no_context_takeover: server_nct,
        client_no_context_takeover: client_nct,
        server_max_window_bits: server_bits,
        client_max_window_bits: client_bits,
    }
}

/// The default configuration with these deflate settings.
pub fn with_deflate(deflate: DeflateConfig) -> Config {
    Config::default().deflate(Some(deflate))
}

/// What both ends of an in-memory upgrade said and ended up with.
pub struct Upgrade {
    /// The client's `Sec-WebSocket-Extensions` value, if any.
    pub offer: Option<String>,
    /// The server's `Sec-WebSocket-Extensions` value, if any.
    pub answer: Option<String>,
    /// The client's connection, or why it refused the response.
    pub client: Result<Connection, HandshakeError>,
    /// The server's connection.
    pub server: Connection,
}

/// The value of the only `Sec-WebSocket-Extensions` header in an HTTP head, if any.
pub fn extensions_in(head: &[u8]) -> Option<String> {
    let head = std::str::from_utf8(head).unwrap();
    let mut values = head.lines().filter_map(|l| l.strip_prefix("Sec-WebSocket-Extensions: "));
    let value = values.next().map(String::from);
    assert_eq!(values.next(), None, "at most one extensions header");
    value
}

/// Runs the upgrade for `ws://example.com/chat` in memory (no split) and reports both ends'
/// `Sec-WebSocket-Extensions` values and connections.
pub fn upgrade(client_config: Config, server_config: Config) -> Upgrade {
    let request = ClientRequest::from_url("ws://example.com/chat").unwrap();
    let mut client = ClientHandshake::with_random(request, client_config, Box::new(SeededRandom::new(CLIENT_SEED)));
    let request = client.request_bytes();
    let mut server = ServerHandshake::new(server_config);
    assert!(server.receive(&request).unwrap().is_some());
    let mut server = server.accept(Accept::new()).unwrap();
    let response = server.take_transmit();
    assert!(response.starts_with(b"HTTP/1.1 101 Switching Protocols\r\n"));
    let client = client.receive(&response).map(|c| c.expect("complete response"));
    Upgrade { offer: extensions_in(&request), answer: extensions_in(&response), client, server }
}

/// The data messages one end wrote, as (opcode of the first frame, RSV1 of the first frame,
/// payload joined over its frames). Checks that no continuation frame carries RSV1.
pub fn wire_messages(side: &Side) -> Vec<(OpCode, bool, Vec<u8>)> {
    let mut out: Vec<(OpCode, bool, Vec<u8>)> = Vec::new();
    let mut open = false;
    for frame in side.frames() {
        match frame.opcode() {
            OpCode::Text | OpCode::Binary => {
                assert!(!open, "new message inside another");
                out.push((frame.opcode(), frame.header.rsv[0], frame.payload.clone()));
            }
            OpCode::Continuation => {
                assert!(open, "continuation outside a message");
                assert!(!frame.header.rsv[0], "RSV1 on a continuation frame");
                out.last_mut().unwrap().2.extend_from_slice(&frame.payload);
            }
            _ => continue,
        }
        open = !frame.header.fin;
    }
    assert!(!open, "unfinished message on the wire");
    out
}
