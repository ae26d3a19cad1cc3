//! A WebSocket client over a hyper 1.x HTTP/1.1 connection: hyper sends the upgrade request
//! and reads the answer, wscore builds the one and checks the other.
//!
//! ```text
//! cargo run --example hyper_echo_server -- 127.0.0.1:9002 &
//! cargo run --example hyper_client -- ws://127.0.0.1:9002/ws hello world
//! ```
//!
//! [`ClientUpgrade::to_http_request`](wscore::ClientUpgrade::to_http_request) gives the `GET`
//! with `Host`, `Upgrade`, `Sec-WebSocket-Key`, the subprotocol and deflate offers;
//! [`ClientUpgrade::finish_http`](wscore::ClientUpgrade::finish_http) checks the 101
//! (`Sec-WebSocket-Accept`, the chosen subprotocol and extension) and returns the configured
//! client [`Connection`](wscore::Connection), which
//! [`WebSocketStream::from_connection`](wscore::tokio::WebSocketStream::from_connection) drives
//! over the stream `hyper::upgrade::on` hands back. Each argument is sent as a text message and
//! its echo printed; then the client closes with 1000.

use bytes::Bytes;
use http_body_util::Empty;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use wscore::tokio::WebSocketStream;
use wscore::{ClientRequest, ClientUpgrade, CloseCode, Config, HttpVersion, Message};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let url = args.next().unwrap_or_else(|| "ws://127.0.0.1:9002/ws".into());
    let texts: Vec<String> = args.collect();
    let request = ClientRequest::from_url(&url)?.protocol("chat");
    if request.is_secure() {
        return Err("wss:// needs TLS: connect it and hand the TLS stream to hyper".into());
    }
    let tcp = TcpStream::connect((request.host(), request.port())).await?;
    let (mut sender, connection) = http1::handshake(TokioIo::new(tcp)).await?;
    // The connection task must allow upgrades, or `hyper::upgrade::on` never resolves.
    tokio::spawn(async move {
        if let Err(e) = connection.with_upgrades().await {
            eprintln!("connection: {e}");
        }
    });

    let upgrade = ClientUpgrade::new(request, HttpVersion::Http11, Config::default());
    let response = sender.send_request(upgrade.to_http_request::<Empty<Bytes>>()?).await?;
    // A non-101 answer is `HandshakeError::Rejected` with its status and headers.
    let conn = upgrade.finish_http(&response)?;
    println!("upgraded: subprotocol {:?}, deflate {}", conn.protocol(), conn.deflate_params().is_some());
    let mut ws = WebSocketStream::from_connection(TokioIo::new(hyper::upgrade::on(response).await?), conn);

    for text in texts {
        ws.send(Message::Text(text.into())).await?;
        match ws.next_message().await? {
            Some(Message::Text(echo)) => println!("< {}", echo.as_str()),
            Some(other) => println!("< {} bytes", other.len()),
            None => return Err("the server closed".into()),
        }
    }
    ws.close(CloseCode::NORMAL, "bye").await?;
    while ws.next_event().await?.is_some() {} // the close handshake completes here
    Ok(())
}
