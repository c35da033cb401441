//! The kernel's receive time of bytes read from a TCP socket (`SO_TIMESTAMPNS`, Linux).
//!
//! A task that reads a socket runs some time after the bytes arrived: on a busy machine
//! (64 users on 2 cores) a millisecond or more later. Both ends of a measurement want the
//! arrival, not the read: the emulator starts a request's ground truth when the request
//! arrived, and the client notes a reply chunk when it arrived. The kernel stamps every
//! packet it receives; a read asks for the stamp of the newest bytes it returns. Where the
//! kernel gives none (another system; the first packets after receive stamps were first
//! asked for, while the kernel turns them on), the read time stands.

use std::time::{Duration, Instant, SystemTime};

#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) use linux::{control_buffer, enable, keep_on, recv};
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub(crate) use other::{control_buffer, enable, keep_on, recv};

/// A receive time further back than this is not believed (a clock step): the read time is
/// used instead.
const MAX_AGE: Duration = Duration::from_secs(60);

#[cfg(any(target_os = "linux", target_os = "android"))]
mod linux {
    use std::io;
    use std::os::fd::AsRawFd;
    use std::sync::OnceLock;
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg, setsockopt, sockopt};
    use nix::sys::time::TimeSpec;
    use tokio::net::TcpStream;

    /// Asks the kernel to stamp what `sock` receives; whether it took the option.
    pub(crate) fn enable(sock: &TcpStream) -> bool {
        keep_on();
        setsockopt(sock, sockopt::ReceiveTimestampns, &true).is_ok()
    }

    /// Turns the kernel's receive stamps on for as long as the process lives, ahead of the first
    /// measured read: call it when a client or a server is set up.
    ///
    /// The kernel stamps packets only while some socket asks for stamps, and turns stamping on
    /// and off with deferred work that patches its code on every CPU. Left to the first measured
    /// connection, that happens while the load starts: the first replies come unstamped and the
    /// patching stalls the machine for a moment (seen as p99 TTFT errors of 1 to 2 ms at 64
    /// users on 2 cores, in 1 run of 8). A socket of the process's own that asks for stamps and
    /// stays open keeps them on from set-up until the process ends.
    pub(crate) fn keep_on() {
        static ANCHOR: OnceLock<Option<std::net::UdpSocket>> = OnceLock::new();
        ANCHOR.get_or_init(|| {
            let sock = std::net::UdpSocket::bind(("127.0.0.1", 0)).ok()?;
            setsockopt(&sock, sockopt::ReceiveTimestampns, &true).ok()?;
            Some(sock)
        });
    }

    /// Room for a receive stamp's control message, for [`recv`].
    pub(crate) fn control_buffer() -> Vec<u8> {
        nix::cmsg_space!(TimeSpec)
    }

    /// One non-blocking read of `sock` into `dst` (for `TcpStream::try_io`): the bytes read and
    /// the kernel's receive time of the newest of them, when it gave one.
    pub(crate) fn recv(
        sock: &TcpStream,
        dst: &mut [u8],
        control: &mut [u8],
    ) -> io::Result<(usize, Option<SystemTime>)> {
        let mut iov = [io::IoSliceMut::new(dst)];
        let msg = recvmsg::<()>(sock.as_raw_fd(), &mut iov, Some(control), MsgFlags::empty())
            .map_err(io::Error::from)?;
        let stamp = msg.cmsgs().ok().and_then(|mut c| {
            c.find_map(|m| match m {
                ControlMessageOwned::ScmTimestampns(t) => Some(t),
                _ => None,
            })
        });
        let at = stamp.and_then(|t| {
            let (s, ns) = (
                u64::try_from(t.tv_sec()).ok()?,
                u32::try_from(t.tv_nsec()).ok()?,
            );
            Some(UNIX_EPOCH + Duration::new(s, ns))
        });
        Ok((msg.bytes, at))
    }
}

/// Where the kernel gives no receive times: none asked for, reads never stamped.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
mod other {
    use std::io;
    use std::time::SystemTime;

    use tokio::net::TcpStream;

    /// Receive stamps are not available here.
    pub(crate) fn enable(_sock: &TcpStream) -> bool {
        false
    }

    /// Nothing to keep on.
    pub(crate) fn keep_on() {}

    /// No control messages.
    pub(crate) fn control_buffer() -> Vec<u8> {
        Vec::new()
    }

    /// Never called ([`enable`] says no).
    pub(crate) fn recv(
        _sock: &TcpStream,
        _dst: &mut [u8],
        _control: &mut [u8],
    ) -> io::Result<(usize, Option<SystemTime>)> {
        Err(io::ErrorKind::Unsupported.into())
    }
}

/// The monotonic instant and the wall-clock time of a receive stamp `at` (none: now).
pub(crate) fn instant_of(at: Option<SystemTime>) -> (Instant, SystemTime) {
    let (now, wall) = (Instant::now(), SystemTime::now());
    match at.map(|at| (at, wall.duration_since(at))) {
        Some((at, Ok(ago))) if ago <= MAX_AGE => (now.checked_sub(ago).unwrap_or(now), at),
        // None, in the future (a clock step) or too old: the read time.
        _ => (now, wall),
    }
}
