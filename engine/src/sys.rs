//! The engine's only `unsafe`: thin wrappers over the OS calls and memory
//! maps that std does not offer, each with its safety argument.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;

/// CPU time of this process so far: (user, system) seconds.
pub fn cpu_seconds() -> (f64, f64) {
    // SAFETY: getrusage writes into the struct we pass and nothing else;
    // a zeroed rusage is a valid value of that plain C struct.
    let ru = unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut ru);
        ru
    };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    (secs(ru.ru_utime), secs(ru.ru_stime))
}

/// Allocates `len` bytes of `file` from `offset`, extending it: unlike a
/// sparse `set_len`, a later write into a mapping of that range cannot fail
/// for lack of space (which would be SIGBUS), because the blocks exist.
pub fn allocate(file: &File, offset: u64, len: u64) -> io::Result<()> {
    // SAFETY: fallocate only reads its integer arguments; the fd is open for
    // writing for the lifetime of `file`.
    let r = unsafe {
        libc::fallocate(
            file.as_raw_fd(),
            0,
            offset as libc::off_t,
            len as libc::off_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Bytes free to an unprivileged user on the filesystem holding `file`.
pub fn free_space(file: &File) -> io::Result<u64> {
    // SAFETY: fstatvfs fills the struct we pass; a zeroed statvfs is a valid
    // value of that plain C struct.
    unsafe {
        let mut st: libc::statvfs = std::mem::zeroed();
        if libc::fstatvfs(file.as_raw_fd(), &mut st) != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(st.f_bavail as u64 * st.f_frsize as u64)
    }
}

/// Makes writing past `ulimit -f` fail with EFBIG instead of killing the
/// process with SIGXFSZ, so a full file is an error the engine can report.
pub fn ignore_sigxfsz() {
    // SAFETY: setting a signal's disposition to SIG_IGN installs no handler
    // code; it is safe at any time.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
    }
}

/// A writable shared mapping of `len` bytes of `file` from `offset`
/// (page-aligned).
///
/// The caller must keep the file at least `offset + len` long while the map
/// lives; the sample writer allocates the range first and truncates only
/// after every map is dropped.
pub fn map_window(file: &File, offset: u64, len: usize) -> io::Result<memmap2::MmapMut> {
    // SAFETY: the file is created by this process with create_new and no
    // other process is expected to modify it; memmap2's remaining
    // requirement, that the range stay backed, is the caller's contract
    // above.
    unsafe {
        memmap2::MmapOptions::new()
            .offset(offset)
            .len(len)
            .map_mut(file)
    }
}

/// Sends `signal` to process `pid`.
pub fn kill(pid: u32, signal: i32) -> io::Result<()> {
    // SAFETY: kill(2) takes plain integers and touches no memory of ours.
    let r = unsafe { libc::kill(pid as libc::pid_t, signal) };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Whether process `pid` is running (it may belong to another user). A
/// zombie — exited, not yet reaped by its parent — is not, although
/// `kill(pid, 0)` succeeds on one: a daemon watching an adopted engine
/// (not its child) would otherwise wait on it until something reaps it.
pub fn alive(pid: u32) -> bool {
    let exists =
        kill(pid, 0).is_ok() || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
    exists && !exited(pid)
}

/// Whether `pid` has exited but is not reaped yet (state Z or X in /proc).
fn exited(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .map(|(_, rest)| rest.trim_start().starts_with(['Z', 'X']))
        })
        .unwrap_or(false)
}

/// Takes an exclusive lock on `file` without waiting; false when another
/// process holds it. The lock lasts as long as the file stays open.
pub fn try_lock(file: &File) -> io::Result<bool> {
    // SAFETY: flock(2) on an fd we own; no memory is passed.
    let r = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if r == 0 {
        return Ok(true);
    }
    let e = io::Error::last_os_error();
    if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
        Ok(false)
    } else {
        Err(e)
    }
}

/// Runs `f` with the process umask set to `mask`, then restores it, so a
/// socket or file is created with no window of wider permissions.
pub fn with_umask<T>(mask: u32, f: impl FnOnce() -> T) -> T {
    // SAFETY: umask(2) only swaps an integer in the process's state.
    let old = unsafe { libc::umask(mask as libc::mode_t) };
    let out = f();
    // SAFETY: as above, restoring the previous value.
    unsafe { libc::umask(old) };
    out
}

/// The open-file limit: (soft, hard).
pub fn nofile() -> io::Result<(u64, u64)> {
    // SAFETY: getrlimit writes into the struct we pass; a zeroed rlimit is valid.
    unsafe {
        let mut r: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok((r.rlim_cur as u64, r.rlim_max as u64))
    }
}

/// Raises the soft open-file limit to `soft` (at most the hard limit).
pub fn set_nofile(soft: u64) -> io::Result<()> {
    let (_, hard) = nofile()?;
    let r = libc::rlimit {
        rlim_cur: soft.min(hard) as libc::rlim_t,
        rlim_max: hard as libc::rlim_t,
    };
    // SAFETY: setrlimit reads the struct we pass and nothing else.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &r) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Sets SO_LINGER: with `Some(Duration::ZERO)`, closing the socket sends a
/// reset instead of a FIN (used by tests that play a hostile server).
pub fn set_linger(sock: &impl AsRawFd, linger: Option<std::time::Duration>) -> io::Result<()> {
    let l = libc::linger {
        l_onoff: i32::from(linger.is_some()),
        l_linger: linger.map_or(0, |d| d.as_secs() as i32),
    };
    set_socket_option(sock, libc::SO_LINGER, &l)
}

/// setsockopt(SOL_SOCKET, `name`) with `value`, a plain C value whose type
/// is the one the option takes.
fn set_socket_option<T: Copy>(sock: &impl AsRawFd, name: libc::c_int, value: &T) -> io::Result<()> {
    // SAFETY: setsockopt reads `size_of::<T>()` bytes from `value`, a live
    // reference; the fd belongs to `sock` for the call. The callers pass
    // the C type each option expects.
    let r = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            name,
            (value as *const T).cast(),
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// CPU time of this process's waited-for children so far, in seconds.
pub fn children_cpu_seconds() -> f64 {
    // SAFETY: as in cpu_seconds, for RUSAGE_CHILDREN.
    let ru = unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_CHILDREN, &mut ru);
        ru
    };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(ru.ru_utime) + secs(ru.ru_stime)
}

/// Asks the kernel to note when each packet for `sock` arrives
/// (SO_TIMESTAMPNS); [`recv_stamped`] reads the note back.
pub fn enable_rx_timestamps(sock: &impl AsRawFd) -> io::Result<()> {
    set_socket_option(sock, libc::SO_TIMESTAMPNS, &(1 as libc::c_int))
}

/// Reads like `read(2)`, and returns with the byte count when the kernel
/// received the last packet read (CLOCK_REALTIME, since the Unix epoch), if
/// [`enable_rx_timestamps`] is on and the kernel said.
pub fn recv_stamped(
    sock: &impl AsRawFd,
    buf: &mut [u8],
) -> io::Result<(usize, Option<std::time::Duration>)> {
    // Room for one SCM_TIMESTAMPNS message (a cmsghdr and a timespec: 32
    // bytes on 64-bit Linux) and slack, aligned as a cmsghdr must be.
    let mut control = [0u64; 8];
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: a zeroed msghdr is a valid value of that plain C struct (it
    // may have private padding fields, hence not a struct literal).
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&control) as _;
    // SAFETY: recvmsg writes at most `iov_len` bytes into `buf` and at most
    // `msg_controllen` bytes into `control`, both live and exclusively ours
    // for the call; the fd belongs to `sock`.
    let n = unsafe { libc::recvmsg(sock.as_raw_fd(), &mut msg, 0) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut stamp = None;
    // SAFETY: the CMSG_* macros walk the control messages the kernel wrote
    // into `control`, bounded by the `msg_controllen` it set; a timestamp's
    // data is a timespec, read unaligned because CMSG_DATA need not be.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_TIMESTAMPNS
            {
                let ts: libc::timespec = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast());
                if let (Ok(s), Ok(ns)) = (u64::try_from(ts.tv_sec), u32::try_from(ts.tv_nsec)) {
                    stamp = Some(std::time::Duration::new(s, ns));
                }
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
    }
    Ok((n as usize, stamp))
}

/// A CLOCK_MONOTONIC timerfd: a wake-up epoll can wait for with nanosecond
/// precision (an epoll timeout is whole milliseconds). Register it with mio
/// through `mio::unix::SourceFd` for READABLE.
pub struct TimerFd(std::os::fd::OwnedFd);

impl TimerFd {
    pub fn new() -> io::Result<TimerFd> {
        // SAFETY: timerfd_create takes no pointers; a non-negative result is
        // a new fd that nothing else owns.
        let fd = unsafe {
            libc::timerfd_create(
                libc::CLOCK_MONOTONIC,
                libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a fresh descriptor owned by nobody else.
        Ok(TimerFd(unsafe { std::os::fd::FromRawFd::from_raw_fd(fd) }))
    }

    /// Fires once, `after` from now (at least 1 ns: zero would disarm).
    pub fn arm(&self, after: std::time::Duration) -> io::Result<()> {
        let after = after.max(std::time::Duration::from_nanos(1));
        let spec = libc::itimerspec {
            it_interval: libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            it_value: libc::timespec {
                tv_sec: after.as_secs().min(i64::MAX as u64) as libc::time_t,
                tv_nsec: after.subsec_nanos() as libc::c_long,
            },
        };
        // SAFETY: timerfd_settime reads the itimerspec on our stack and
        // writes nothing (old value null); the fd is ours.
        let r =
            unsafe { libc::timerfd_settime(self.0.as_raw_fd(), 0, &spec, std::ptr::null_mut()) };
        if r == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }

    /// Consumes a pending expiry, so the next one raises a new edge.
    pub fn clear(&self) {
        let mut ticks = [0u8; 8];
        // SAFETY: read writes at most 8 bytes into our buffer; the fd is
        // ours. EAGAIN (nothing pending) is fine and ignored.
        let _ = unsafe { libc::read(self.0.as_raw_fd(), ticks.as_mut_ptr().cast(), 8) };
    }
}

impl AsRawFd for TimerFd {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.0.as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_zombie_is_not_alive() {
        let mut child = std::process::Command::new("sleep")
            .arg("0.05")
            .spawn()
            .unwrap();
        let pid = child.id();
        assert!(alive(pid), "running");
        // not reaped: a zombie once it exits
        let t0 = std::time::Instant::now();
        while !exited(pid) {
            assert!(
                t0.elapsed() < std::time::Duration::from_secs(10),
                "never exited"
            );
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert!(kill(pid, 0).is_ok(), "the kernel still has the zombie");
        assert!(!alive(pid), "but it is not running");
        child.wait().unwrap();
        assert!(!alive(pid));
    }
    use std::io::Write;
    use std::net::{TcpListener, TcpStream};
    use std::time::{SystemTime, UNIX_EPOCH};

    fn wall() -> std::time::Duration {
        SystemTime::now().duration_since(UNIX_EPOCH).unwrap()
    }

    #[test]
    fn recv_stamped_reads_and_says_when_the_bytes_arrived() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (mut server, _) = listener.accept().unwrap();
        let mut buf = [0u8; 64];

        // Off: bytes, no stamp.
        server.write_all(b"one").unwrap();
        let (n, stamp) = recv_stamped(&client, &mut buf).unwrap();
        assert_eq!((&buf[..n], stamp), (&b"one"[..], None));

        enable_rx_timestamps(&client).unwrap();
        // The kernel switches packet stamping on in a deferred work item the
        // first time any socket asks: the first bytes may come unstamped.
        let t0 = std::time::Instant::now();
        loop {
            server.write_all(b".").unwrap();
            if recv_stamped(&client, &mut buf).unwrap().1.is_some() {
                break;
            }
            assert!(t0.elapsed().as_secs() < 5, "no stamps within 5 s");
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        let before = wall();
        server.write_all(b"two").unwrap();
        std::thread::sleep(std::time::Duration::from_millis(50));
        let after = wall();
        let (n, stamp) = recv_stamped(&client, &mut buf).unwrap();
        assert_eq!(&buf[..n], b"two");
        // The stamp is when the bytes arrived, not when they were read: it
        // falls between the write and the end of the sleep before the read.
        let stamp = stamp.expect("a receive timestamp");
        assert!(
            before <= stamp && stamp <= after,
            "{before:?} {stamp:?} {after:?}"
        );
    }

    #[test]
    fn recv_stamped_reports_would_block_and_end_of_stream() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        client.set_nonblocking(true).unwrap();
        let mut buf = [0u8; 8];
        let e = recv_stamped(&client, &mut buf).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
        drop(server);
        client.set_nonblocking(false).unwrap();
        assert_eq!(recv_stamped(&client, &mut buf).unwrap().0, 0);
    }
}
