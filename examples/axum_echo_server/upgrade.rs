//! An axum extractor for wscore upgrades: [`WebSocketUpgrade`] validates the request with the
//! [`ServerUpgrade`] in the router's state (HTTP/1.1 `GET` upgrades and, when axum serves
//! HTTP/2, RFC 8441 extended CONNECT), rejects a bad one with the status wscore picks, and
//! [`on_upgrade`](WebSocketUpgrade::on_upgrade) answers it and runs a handler on the
//! [`WebSocketStream`] once hyper hands the stream over.
//!
//! Used by the `axum_echo_server` example and by `tests/hyper.rs`.

use std::future::Future;

use axum::body::Body;
use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use hyper::upgrade::{OnUpgrade, Upgraded};
use hyper_util::rt::TokioIo;
use wscore::tokio::WebSocketStream;
use wscore::{Accept, HandshakeError, HttpVersion, PendingUpgrade, Reject, ServerUpgrade};

/// The stream a handler gets.
pub(crate) type WebSocket = WebSocketStream<TokioIo<Upgraded>>;

/// A validated WebSocket upgrade request (extract it in a handler; the router's state must
/// provide a [`ServerUpgrade`] through [`FromRef`]).
#[derive(Debug)]
pub(crate) struct WebSocketUpgrade {
    pending: PendingUpgrade,
    on_upgrade: OnUpgrade,
}

impl<S: Send + Sync> FromRequestParts<S> for WebSocketUpgrade
where
    ServerUpgrade: FromRef<S>,
{
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Response> {
        let server = ServerUpgrade::from_ref(state);
        // Over HTTP/2 hyper keeps `:protocol` as a request extension.
        let protocol = parts.extensions.get::<hyper::ext::Protocol>().map(hyper::ext::Protocol::as_str);
        let version = HttpVersion::from_http(parts.version);
        let pending = server.validate_http_parts(parts, protocol).map_err(|e| reject(&e, version))?;
        // hyper puts this handle in the request when the connection can be upgraded.
        let on_upgrade = parts
            .extensions
            .remove::<OnUpgrade>()
            .ok_or_else(|| into_response(Reject::new(500).body("this connection cannot be upgraded\n")))?;
        Ok(Self { pending, on_upgrade })
    }
}

impl WebSocketUpgrade {
    /// The request: path, query, headers, origin, offered subprotocols.
    pub(crate) fn request(&self) -> &wscore::Request {
        self.pending.request()
    }

    /// Accepts with `accept` and returns the response (101 or 200) for the handler to return;
    /// `handler` runs in a new task on the stream once hyper has switched protocols.
    pub(crate) fn on_upgrade<F, Fut>(self, accept: Accept, handler: F) -> Response
    where
        F: FnOnce(WebSocket) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let version = self.pending.version();
        let (response, conn) = match self.pending.accept(accept) {
            Ok(accepted) => accepted,
            Err(e) => return reject(&e, version),
        };
        let on_upgrade = self.on_upgrade;
        tokio::spawn(async move {
            match on_upgrade.await {
                Ok(upgraded) => handler(WebSocketStream::from_connection(TokioIo::new(upgraded), conn)).await,
                Err(e) => eprintln!("upgrade failed: {e}"),
            }
        });
        response.to_http::<Body>().map_or_else(|e| internal_error(&e), IntoResponse::into_response)
    }
}

fn reject(error: &HandshakeError, version: HttpVersion) -> Response {
    into_response(error.reject(version))
}

fn into_response(reject: Reject) -> Response {
    reject.to_http::<Body>().map_or_else(|e| internal_error(&e), IntoResponse::into_response)
}

fn internal_error(e: &axum::http::Error) -> Response {
    (axum::http::StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response()
}
