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

/// Whether process `pid` exists (it may belong to another user).
pub fn alive(pid: u32) -> bool {
    kill(pid, 0).is_ok() || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
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
    // SAFETY: setsockopt reads `size_of::<linger>()` bytes from a valid
    // struct on our stack; the fd belongs to `sock` for the call.
    let r = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&l as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
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
