//! When a request arrived: the kernel's receive time of the bytes the emulator reads.
//!
//! The ground truth of a request starts when the request was in the emulator's socket, not
//! when the emulator's task got round to reading it. Under a heavy load (64 users on 2 cores)
//! the task can wait a millisecond or more for its turn; that wait is the server's latency,
//! which a client sees and rightly measures, so a truth that started at the read would charge
//! it to the client as error. On Linux every read asks the kernel for the time it received the
//! bytes (see [`crate::util::stamp`]); elsewhere, or when the kernel gives none, the read
//! time stands.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::{Instant, SystemTime};

use tokio::io::{AsyncRead, Interest, ReadBuf};
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedReadHalf;

use crate::util::stamp;

/// The read half of a connection, noting the kernel's receive time of the newest bytes read.
#[derive(Debug)]
pub(super) struct StampedRead {
    inner: OwnedReadHalf,
    /// Whether the kernel was asked for receive times.
    stamps: bool,
    /// The kernel's receive time of the newest bytes read (wall clock).
    newest: Option<SystemTime>,
    control: Vec<u8>,
}

impl StampedRead {
    /// `sock`'s halves, the read half stamped (when the kernel takes `SO_TIMESTAMPNS`).
    pub(super) fn split(sock: TcpStream) -> (StampedRead, tokio::net::tcp::OwnedWriteHalf) {
        let stamps = stamp::enable(&sock);
        let (rd, wr) = sock.into_split();
        let read = StampedRead {
            inner: rd,
            stamps,
            newest: None,
            control: stamp::control_buffer(),
        };
        (read, wr)
    }

    /// When the bytes read since the last call arrived (monotonic and wall clock): the
    /// kernel's receive time of the newest of them, or now when there is none.
    pub(super) fn arrival(&mut self) -> (Instant, SystemTime) {
        stamp::instant_of(self.newest.take())
    }
}

impl AsyncRead for StampedRead {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.stamps {
            return Pin::new(&mut this.inner).poll_read(cx, buf);
        }
        let StampedRead {
            inner,
            newest,
            control,
            ..
        } = this;
        let tcp: &TcpStream = inner.as_ref();
        loop {
            ready!(tcp.poll_read_ready(cx))?;
            let read = tcp.try_io(Interest::READABLE, || {
                stamp::recv(tcp, buf.initialize_unfilled(), control)
            });
            match read {
                Ok((n, at)) => {
                    buf.advance(n);
                    if at.is_some() {
                        *newest = at;
                    }
                    return Poll::Ready(Ok(()));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Bytes that sat in the socket before they were read get their arrival time, not the
    /// read time.
    #[tokio::test]
    async fn the_arrival_is_when_the_bytes_came_not_when_they_were_read() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("socket");
        let addr = listener.local_addr().expect("address");
        let mut client = TcpStream::connect(addr).await.expect("socket");
        let (sock, _) = listener.accept().await.expect("socket");
        let (mut rd, _wr) = StampedRead::split(sock);
        if cfg!(target_os = "linux") {
            // The kernel turns receive times on a little after the first socket asks (deferred
            // work); until then reads carry none and the read time stands.
            let mut stamped = false;
            for _ in 0..200 {
                client.write_all(b"x").await.expect("socket");
                tokio::time::sleep(Duration::from_millis(5)).await;
                let mut one = [0u8; 1];
                rd.read_exact(&mut one).await.expect("socket");
                if rd.newest.take().is_some() {
                    stamped = true;
                    break;
                }
            }
            assert!(stamped, "no kernel receive time within a second");
        }
        client.write_all(b"hello").await.expect("socket");
        let written = Instant::now();
        std::thread::sleep(Duration::from_millis(50));
        let mut got = [0u8; 5];
        rd.read_exact(&mut got).await.expect("socket");
        let (at, _) = rd.arrival();
        assert_eq!(&got, b"hello");
        if cfg!(target_os = "linux") {
            assert!(rd.stamps, "Linux takes SO_TIMESTAMPNS on TCP");
            // Within 10 ms of the write, 50 ms before the read.
            let off = at.saturating_duration_since(written) + written.saturating_duration_since(at);
            assert!(
                off < Duration::from_millis(10),
                "arrival {off:?} from the write"
            );
            // Nothing read since: now.
            let (again, _) = rd.arrival();
            assert!(again >= at + Duration::from_millis(40));
        }
    }
}
