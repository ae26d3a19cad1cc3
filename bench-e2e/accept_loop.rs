//! The accept loop of the asynchronous echo servers of the end-to-end benchmark (wscore's
//! `wscore-tokio-send` and the tokio peers'), included with `#[path]`: listen on the address
//! given as the first argument (127.0.0.1:9001 by default), say so on stdout (`run.sh` waits for
//! that line), and serve every connection on a task of its own, printing its error if it fails.

use std::fmt::Display;
use std::future::Future;

use tokio::net::{TcpListener, TcpStream};

/// Runs `serve` for every accepted connection until accepting fails.
pub(crate) async fn serve_each<F, Fut, E>(serve: F) -> std::io::Result<()>
where
    F: Fn(TcpStream) -> Fut,
    Fut: Future<Output = Result<(), E>> + Send + 'static,
    E: Display,
{
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:9001".into());
    let listener = TcpListener::bind(&addr).await?;
    println!("listening on {}", listener.local_addr()?);
    loop {
        let (tcp, _) = listener.accept().await?;
        let connection = serve(tcp);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                eprintln!("connection failed: {e}");
            }
        });
    }
}
