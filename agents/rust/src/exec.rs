//! What the HTTP client needs of an executor, and its three implementations: a TCP
//! connection ([`Conn`]) and a timer ([`Exec::timeout`]), each executor's own. tokio's
//! sockets and timer for the tokio runtimes, smol's (`async-io`) for smol, async-std's for
//! async-std: the runtime axis compares whole stacks, not one reactor under three schedulers.

use std::future::Future;
use std::io;
use std::time::Duration;

/// One TCP connection.
pub(crate) trait Conn {
    /// Writes all of `buf`.
    async fn write_all(&mut self, buf: &[u8]) -> io::Result<()>;
    /// Reads into `buf`; `Ok(0)` at the end of the stream.
    async fn read(&mut self, buf: &mut [u8]) -> io::Result<usize>;
}

/// An executor's sockets and timer.
pub(crate) trait Exec {
    /// Its TCP connection.
    type Conn: Conn;
    /// Connects to `addr` (`host:port`; names are resolved by the executor).
    async fn connect(addr: &str) -> io::Result<Self::Conn>;
    /// Runs `f` for at most `limit`: `None` when the time ran out first (`f` is dropped).
    async fn timeout<F: Future>(limit: Duration, f: F) -> Option<F::Output>;
}

/// tokio: `tokio::net::TcpStream` and `tokio::time::timeout` (needs a tokio runtime with IO
/// and time enabled).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tokio;

impl Conn for tokio::net::TcpStream {
    async fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        tokio::io::AsyncWriteExt::write_all(self, buf).await
    }

    async fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        tokio::io::AsyncReadExt::read(self, buf).await
    }
}

impl Exec for Tokio {
    type Conn = tokio::net::TcpStream;

    async fn connect(addr: &str) -> io::Result<Self::Conn> {
        let s = tokio::net::TcpStream::connect(addr).await?;
        // Best effort: the request goes out in one write anyway.
        let _ = s.set_nodelay(true);
        Ok(s)
    }

    async fn timeout<F: Future>(limit: Duration, f: F) -> Option<F::Output> {
        tokio::time::timeout(limit, f).await.ok()
    }
}

/// smol: `smol::net::TcpStream` (`async-io`'s reactor) and `smol::Timer`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Smol;

impl Conn for smol::net::TcpStream {
    async fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        futures_lite::AsyncWriteExt::write_all(self, buf).await
    }

    async fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        futures_lite::AsyncReadExt::read(self, buf).await
    }
}

impl Exec for Smol {
    type Conn = smol::net::TcpStream;

    async fn connect(addr: &str) -> io::Result<Self::Conn> {
        let s = smol::net::TcpStream::connect(addr).await?;
        let _ = s.set_nodelay(true);
        Ok(s)
    }

    async fn timeout<F: Future>(limit: Duration, f: F) -> Option<F::Output> {
        use futures_lite::FutureExt;
        async { Some(f.await) }
            .or(async {
                smol::Timer::after(limit).await;
                None
            })
            .await
    }
}

/// async-std: `async_std::net::TcpStream` and `async_std::future::timeout`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AsyncStd;

impl Conn for async_std::net::TcpStream {
    async fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        futures_lite::AsyncWriteExt::write_all(self, buf).await
    }

    async fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        futures_lite::AsyncReadExt::read(self, buf).await
    }
}

impl Exec for AsyncStd {
    type Conn = async_std::net::TcpStream;

    async fn connect(addr: &str) -> io::Result<Self::Conn> {
        let s = async_std::net::TcpStream::connect(addr).await?;
        let _ = s.set_nodelay(true);
        Ok(s)
    }

    async fn timeout<F: Future>(limit: Duration, f: F) -> Option<F::Output> {
        async_std::future::timeout(limit, f).await.ok()
    }
}
