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
