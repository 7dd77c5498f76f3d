//! A VFS over SQLite's own that gathers a commit's WAL appends into one `write` system call.
//!
//! SQLite appends each WAL frame as two writes (its 24-byte header, then its page), so a
//! commit of ten pages costs twenty `pwrite` calls; in a create's profile they were three
//! quarters of COMMIT. On this machine one 41 KB write costs about a tenth of twenty small
//! ones. This VFS forwards everything to the platform VFS except writes to a WAL file, which
//! it holds while they continue one another and writes out in one call:
//! - when the frame that commits a transaction is complete (its header carries the database
//!   size, SQLite's commit mark), from inside that frame's own write, so a failed write
//!   fails the COMMIT exactly as before;
//! - before any other operation on the WAL file (read, sync, truncate, size, file control,
//!   close), so SQLite never sees the file without its own writes;
//! - when the next write would take them past [`HOLD_MAX`] bytes (a large transaction).
//!
//! A write that does not continue the previous one (a page rewritten in place, a checksum
//! rewrite, the header of a restarted WAL, the rest of a write split at a sync point) goes
//! out at once, after what was held. Other connections learn of new frames only from the
//! wal-index, which SQLite updates after the commit frame is written, by then on disk in
//! full: what other connections and processes read, and what recovery after a crash finds,
//! is the same as without this VFS.

use rusqlite::ffi;
use std::ffi::{c_int, c_void};
use std::sync::OnceLock;

/// The name connections open the database with.
pub const VFS_NAME: &str = "scimlab-wal";
const VFS_NAME_C: &std::ffi::CStr = c"scimlab-wal";

/// Bytes held at most: a commit of up to 15 pages of 4 KB goes out in one write, a larger one
/// in writes of this size. It must stay under 128 KB: SQLite's unix VFS takes a write's length
/// modulo 128 KB (`nBuf &= 0x1ffff`). The buffer is allocated once per WAL file at this size
/// (measured: letting it grow to 512 KB added 8 MB to the server's peak RSS at 100,000 users).
const HOLD_MAX: usize = 64 << 10;

/// Size of a WAL frame header; bytes 4..8 hold the database size on a commit frame, else 0.
const FRAME_HEADER: usize = 24;

/// Registers the VFS (once per process); its name for `Connection::open_with_flags_and_vfs`.
pub fn register() -> rusqlite::Result<&'static str> {
    static REGISTERED: OnceLock<c_int> = OnceLock::new();
    let rc = *REGISTERED.get_or_init(|| {
        // SAFETY: `sqlite3_vfs_find` initialises SQLite and returns the default VFS, which
        // lives as long as the process; the VFS registered here is leaked, so it does too.
        unsafe {
            let real = ffi::sqlite3_vfs_find(std::ptr::null());
            if real.is_null() {
                return ffi::SQLITE_ERROR;
            }
            let _ = REAL.set(Real(real));
            // The platform VFS's own functions: the unix VFS's do not read the VFS object
            // they are given (os_unix.c, SQLite 3.54). Files are opened by `open` below.
            let mut vfs = *real;
            vfs.zName = VFS_NAME_C.as_ptr();
            vfs.pNext = std::ptr::null_mut();
            vfs.szOsFile = (std::mem::size_of::<File>() as c_int) + (*real).szOsFile;
            vfs.xOpen = Some(open);
            ffi::sqlite3_vfs_register(Box::into_raw(Box::new(vfs)), 0)
        }
    });
    match rc {
        ffi::SQLITE_OK => Ok(VFS_NAME),
        rc => Err(rusqlite::Error::SqliteFailure(
            ffi::Error::new(rc),
            Some(format!("registering the {VFS_NAME} VFS failed")),
        )),
    }
}

/// The platform VFS this one forwards to.
struct Real(*mut ffi::sqlite3_vfs);
// SAFETY: a VFS object is immutable once registered and SQLite calls it from any thread.
unsafe impl Send for Real {}
unsafe impl Sync for Real {}
static REAL: OnceLock<Real> = OnceLock::new();

/// An open file: SQLite's handle (first, as SQLite requires), then the platform VFS's file,
/// which SQLite allocates right after this struct (`szOsFile` counts both).
#[repr(C)]
struct File {
    base: ffi::sqlite3_file,
    real: *mut ffi::sqlite3_file,
    /// A WAL file: its appends are gathered.
    wal: bool,
    /// Writes held, continuing one another from `held_at`.
    held: Vec<u8>,
    held_at: i64,
    /// Where the previous write ended (`i64::MIN`: no write to continue).
    end: i64,
    /// The previous write was the header of a commit frame: the next write completes it.
    commit_next: bool,
}

#[cfg(test)]
thread_local! {
    /// Writes on this thread, for tests: those SQLite asked for, and those made for them.
    static WRITES: std::cell::Cell<(u64, u64)> = const { std::cell::Cell::new((0, 0)) };
}

impl File {
    /// # Safety
    /// `file` is a handle this VFS opened and has not closed.
    unsafe fn of<'a>(file: *mut ffi::sqlite3_file) -> &'a mut File {
        // SAFETY: `open` wrote a `File` at this address, and SQLite uses a handle from one
        // thread at a time.
        unsafe { &mut *(file as *mut File) }
    }

    fn methods(&self) -> &ffi::sqlite3_io_methods {
        // SAFETY: the platform VFS opened `real` successfully, so its methods are set and
        // live as long as the process.
        unsafe { &*(*self.real).pMethods }
    }

    /// One write through the platform VFS.
    fn write_through(&mut self, data: *const c_void, amt: c_int, at: i64) -> c_int {
        #[cfg(test)]
        WRITES.set((WRITES.get().0, WRITES.get().1 + 1));
        match self.methods().xWrite {
            // SAFETY: forwarding SQLite's own arguments (or the held buffer) to the file.
            Some(write) => unsafe { write(self.real, data, amt, at) },
            None => ffi::SQLITE_IOERR_WRITE,
        }
    }

    /// Writes what is held. On failure the held writes are dropped: SQLite rolls back the
    /// transaction they belong to.
    fn release(&mut self) -> c_int {
        if self.held.is_empty() {
            return ffi::SQLITE_OK;
        }
        let held = std::mem::take(&mut self.held);
        let rc = self.write_through(held.as_ptr().cast(), held.len() as c_int, self.held_at);
        // Keep the buffer for the next transaction.
        self.held = held;
        self.held.clear();
        if rc != ffi::SQLITE_OK {
            self.end = i64::MIN;
            self.commit_next = false;
        }
        rc
    }

    fn write(&mut self, data: *const c_void, amt: c_int, at: i64) -> c_int {
        #[cfg(test)]
        WRITES.set((WRITES.get().0 + 1, WRITES.get().1));
        if !self.wal || amt <= 0 {
            return self.write_through(data, amt, at);
        }
        // SAFETY: SQLite passes `amt` readable bytes at `data`.
        let bytes = unsafe { std::slice::from_raw_parts(data.cast::<u8>(), amt as usize) };
        let commit_header = bytes.len() == FRAME_HEADER && bytes[4..8] != [0; 4];
        if at != self.end {
            // Not an append to the previous write: after what is held, at once.
            let rc = self.release();
            if rc != ffi::SQLITE_OK {
                return rc;
            }
            let rc = self.write_through(data, amt, at);
            let ok = rc == ffi::SQLITE_OK;
            self.end = if ok { at + i64::from(amt) } else { i64::MIN };
            self.commit_next = ok && commit_header;
            return rc;
        }
        if self.held.len() + bytes.len() > HOLD_MAX {
            let rc = self.release();
            if rc != ffi::SQLITE_OK {
                return rc;
            }
        }
        if self.held.is_empty() {
            self.held_at = at;
        }
        self.held.extend_from_slice(bytes);
        self.end = at + i64::from(amt);
        if std::mem::replace(&mut self.commit_next, commit_header) {
            // This write completes a commit frame: the transaction is written now.
            self.commit_next = false;
            return self.release();
        }
        ffi::SQLITE_OK
    }
}

/// `xOpen`: the platform VFS opens the file into the space after our struct.
unsafe extern "C" fn open(
    _vfs: *mut ffi::sqlite3_vfs,
    name: ffi::sqlite3_filename,
    file: *mut ffi::sqlite3_file,
    flags: c_int,
    out_flags: *mut c_int,
) -> c_int {
    let Some(Real(real_vfs)) = REAL.get() else {
        return ffi::SQLITE_ERROR;
    };
    // SAFETY: SQLite allocated `szOsFile` bytes at `file`: a `File`, then the platform
    // VFS's file (whose alignment `File`'s size, a multiple of 8, keeps).
    unsafe {
        let real = file
            .cast::<u8>()
            .add(std::mem::size_of::<File>())
            .cast::<ffi::sqlite3_file>();
        (*real).pMethods = std::ptr::null();
        let rc = match (**real_vfs).xOpen {
            Some(xopen) => xopen(*real_vfs, name, real, flags, out_flags),
            None => ffi::SQLITE_ERROR,
        };
        if (*real).pMethods.is_null() {
            // Nothing to close: SQLite will not call this file's methods.
            (*file).pMethods = std::ptr::null();
            return rc;
        }
        let wal = flags & ffi::SQLITE_OPEN_WAL != 0;
        std::ptr::write(
            file.cast::<File>(),
            File {
                base: ffi::sqlite3_file { pMethods: &METHODS },
                real,
                wal,
                held: if wal {
                    Vec::with_capacity(HOLD_MAX)
                } else {
                    Vec::new()
                },
                held_at: 0,
                end: i64::MIN,
                commit_next: false,
            },
        );
        rc
    }
}

/// Forwards a call to the platform file's method `$m`, first writing what is held when
/// `$release` is true; a missing method is an I/O error.
macro_rules! forward {
    ($file:ident, $m:ident, $release:expr $(, $arg:expr)*) => {{
        // SAFETY: SQLite calls file methods only on handles `open` returned.
        let f = unsafe { File::of($file) };
        if $release {
            let rc = f.release();
            if rc != ffi::SQLITE_OK {
                return rc;
            }
        }
        match f.methods().$m {
            // SAFETY: SQLite's own arguments, passed on to the platform file.
            Some(m) => unsafe { m(f.real $(, $arg)*) },
            None => ffi::SQLITE_IOERR,
        }
    }};
}

unsafe extern "C" fn close(file: *mut ffi::sqlite3_file) -> c_int {
    // SAFETY: SQLite closes each handle `open` returned once, and uses it no more.
    let f = unsafe { File::of(file) };
    let released = f.release();
    let closed = match f.methods().xClose {
        // SAFETY: the platform file is open; it is closed once.
        Some(close) => unsafe { close(f.real) },
        None => ffi::SQLITE_OK,
    };
    // SAFETY: drops the `File` written by `open` (its buffer); the memory is SQLite's.
    unsafe { std::ptr::drop_in_place(file.cast::<File>()) };
    if released != ffi::SQLITE_OK {
        released
    } else {
        closed
    }
}

unsafe extern "C" fn read(
    file: *mut ffi::sqlite3_file,
    buf: *mut c_void,
    amt: c_int,
    at: ffi::sqlite3_int64,
) -> c_int {
    forward!(file, xRead, true, buf, amt, at)
}

unsafe extern "C" fn write(
    file: *mut ffi::sqlite3_file,
    data: *const c_void,
    amt: c_int,
    at: ffi::sqlite3_int64,
) -> c_int {
    // SAFETY: SQLite calls file methods only on handles `open` returned.
    unsafe { File::of(file) }.write(data, amt, at)
}

unsafe extern "C" fn truncate(file: *mut ffi::sqlite3_file, size: ffi::sqlite3_int64) -> c_int {
    // SAFETY: as in `forward!`.
    unsafe { File::of(file) }.end = i64::MIN;
    forward!(file, xTruncate, true, size)
}

unsafe extern "C" fn sync(file: *mut ffi::sqlite3_file, flags: c_int) -> c_int {
    // A write after a sync goes out by itself: SQLite splits a frame at a sync point and
    // counts on the part after it being written.
    // SAFETY: as in `forward!`.
    let rc = forward!(file, xSync, true, flags);
    // SAFETY: as in `forward!`.
    unsafe { File::of(file) }.end = i64::MIN;
    rc
}

unsafe extern "C" fn file_size(
    file: *mut ffi::sqlite3_file,
    size: *mut ffi::sqlite3_int64,
) -> c_int {
    forward!(file, xFileSize, true, size)
}

unsafe extern "C" fn lock(file: *mut ffi::sqlite3_file, level: c_int) -> c_int {
    forward!(file, xLock, true, level)
}

unsafe extern "C" fn unlock(file: *mut ffi::sqlite3_file, level: c_int) -> c_int {
    forward!(file, xUnlock, true, level)
}

unsafe extern "C" fn check_reserved_lock(file: *mut ffi::sqlite3_file, out: *mut c_int) -> c_int {
    forward!(file, xCheckReservedLock, false, out)
}

unsafe extern "C" fn file_control(
    file: *mut ffi::sqlite3_file,
    op: c_int,
    arg: *mut c_void,
) -> c_int {
    forward!(file, xFileControl, true, op, arg)
}

unsafe extern "C" fn sector_size(file: *mut ffi::sqlite3_file) -> c_int {
    // SAFETY: as in `forward!`.
    let f = unsafe { File::of(file) };
    // SAFETY: forwarding to the platform file.
    f.methods()
        .xSectorSize
        .map_or(4096, |m| unsafe { m(f.real) })
}

unsafe extern "C" fn device_characteristics(file: *mut ffi::sqlite3_file) -> c_int {
    // SAFETY: as in `forward!`.
    let f = unsafe { File::of(file) };
    // SAFETY: forwarding to the platform file.
    f.methods()
        .xDeviceCharacteristics
        .map_or(0, |m| unsafe { m(f.real) })
}

unsafe extern "C" fn shm_map(
    file: *mut ffi::sqlite3_file,
    page: c_int,
    size: c_int,
    extend: c_int,
    out: *mut *mut c_void,
) -> c_int {
    forward!(file, xShmMap, false, page, size, extend, out)
}

unsafe extern "C" fn shm_lock(
    file: *mut ffi::sqlite3_file,
    at: c_int,
    n: c_int,
    flags: c_int,
) -> c_int {
    forward!(file, xShmLock, false, at, n, flags)
}

unsafe extern "C" fn shm_barrier(file: *mut ffi::sqlite3_file) {
    // SAFETY: as in `forward!`.
    let f = unsafe { File::of(file) };
    if let Some(m) = f.methods().xShmBarrier {
        // SAFETY: forwarding to the platform file.
        unsafe { m(f.real) }
    }
}

unsafe extern "C" fn shm_unmap(file: *mut ffi::sqlite3_file, delete: c_int) -> c_int {
    forward!(file, xShmUnmap, false, delete)
}

unsafe extern "C" fn fetch(
    file: *mut ffi::sqlite3_file,
    at: ffi::sqlite3_int64,
    amt: c_int,
    out: *mut *mut c_void,
) -> c_int {
    forward!(file, xFetch, true, at, amt, out)
}

unsafe extern "C" fn unfetch(
    file: *mut ffi::sqlite3_file,
    at: ffi::sqlite3_int64,
    p: *mut c_void,
) -> c_int {
    forward!(file, xUnfetch, false, at, p)
}

static METHODS: ffi::sqlite3_io_methods = ffi::sqlite3_io_methods {
    iVersion: 3,
    xClose: Some(close),
    xRead: Some(read),
    xWrite: Some(write),
    xTruncate: Some(truncate),
    xSync: Some(sync),
    xFileSize: Some(file_size),
    xLock: Some(lock),
    xUnlock: Some(unlock),
    xCheckReservedLock: Some(check_reserved_lock),
    xFileControl: Some(file_control),
    xSectorSize: Some(sector_size),
    xDeviceCharacteristics: Some(device_characteristics),
    xShmMap: Some(shm_map),
    xShmLock: Some(shm_lock),
    xShmBarrier: Some(shm_barrier),
    xShmUnmap: Some(shm_unmap),
    xFetch: Some(fetch),
    xUnfetch: Some(unfetch),
};

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::Connection;
    use std::path::Path;

    /// A connection through this VFS on a WAL database at `uri`, with one table.
    fn writing(uri: &str, synchronous: &str) -> Connection {
        let c = Connection::open_with_flags_and_vfs(
            uri,
            rusqlite::OpenFlags::default(),
            register().unwrap(),
        )
        .unwrap();
        c.pragma_update(None, "journal_mode", "WAL").unwrap();
        c.pragma_update(None, "synchronous", synchronous).unwrap();
        // Everything stays in the WAL: what a copy recovers from it is what was written.
        c.pragma_update(None, "wal_autocheckpoint", 0).unwrap();
        c.execute_batch(
            "CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT); CREATE INDEX t_v ON t (v);",
        )
        .unwrap();
        c
    }

    /// What another process finds in the files now: the database and its WAL copied (as a
    /// crash would leave them) and opened through the platform VFS, which rebuilds the
    /// wal-index from the WAL, checking every frame's checksum: (rows, total length of `v`).
    fn recovered(db: &Path) -> (i64, i64) {
        let copy = tempfile::tempdir().unwrap();
        let to = copy.path().join("copy.db");
        std::fs::copy(db, &to).unwrap();
        let wal = db.with_extension("db-wal");
        std::fs::copy(&wal, copy.path().join("copy.db-wal")).unwrap();
        let c = Connection::open(&to).unwrap();
        let check: String = c
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(check, "ok");
        c.query_row(
            "SELECT count(*), coalesce(sum(length(v)), 0) FROM t",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap()
    }

    fn value(i: i64) -> String {
        // Some values overflow a page, so commits hold one to a few frames.
        "x".repeat(if i % 7 == 0 {
            5000
        } else {
            20 + (i as usize * 37) % 300
        })
    }

    /// Commits one at a time; after each, a copy of the files recovers every one of them.
    fn commits_are_whole_on_return(uri: &str, db: &Path, synchronous: &str) {
        let c = writing(uri, synchronous);
        // Another connection, through the platform VFS, reading pages from the WAL as the
        // wal-index maps them.
        let reader = Connection::open(db).unwrap();
        let (mut rows, mut len) = (0, 0);
        WRITES.set((0, 0));
        for i in 0..120 {
            let v = value(i);
            c.execute(
                "INSERT INTO t (k, v) VALUES (?1, ?2)",
                rusqlite::params![i, v],
            )
            .unwrap();
            (rows, len) = (rows + 1, len + v.len() as i64);
            let read: (i64, i64) = reader
                .query_row("SELECT count(*), sum(length(v)) FROM t", [], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .unwrap();
            assert_eq!(read, (rows, len), "read after commit {i}");
            if i % 10 == 9 {
                assert_eq!(recovered(db), (rows, len), "after commit {i}");
                let check: String =
                    (reader.query_row("PRAGMA integrity_check", [], |r| r.get(0))).unwrap();
                assert_eq!(check, "ok");
            }
        }
        let (asked, made) = WRITES.get();
        if synchronous == "NORMAL" {
            // Each commit's frames (two writes each) went out in one write.
            assert!(made * 3 <= asked, "{made} writes made for {asked}");
        }
    }

    #[test]
    fn every_commit_is_in_the_wal_when_commit_returns() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("t.db");
        commits_are_whole_on_return(db.to_str().unwrap(), &db, "NORMAL");
    }

    #[test]
    fn synchronous_full_with_padded_frames_loses_nothing() {
        // Without powersafe overwrite SQLite pads each commit to a sector with copies of its
        // last frame and syncs in the middle of one: the write after the sync must go out.
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("t.db");
        let uri = format!("file:{}?psow=0", db.display());
        commits_are_whole_on_return(&uri, &db, "FULL");
    }

    #[test]
    fn spilled_rewritten_and_rolled_back_transactions_recover_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("t.db");
        let mut c = writing(db.to_str().unwrap(), "NORMAL");
        // A page cache of a few pages: a large transaction spills frames into the WAL before
        // it commits, then writes some pages again in place, and COMMIT rewrites checksums.
        c.pragma_update(None, "cache_size", 4).unwrap();
        let tx = c.transaction().unwrap();
        for i in 0..2000 {
            tx.execute(
                "INSERT INTO t (k, v) VALUES (?1, ?2)",
                rusqlite::params![i, value(i)],
            )
            .unwrap();
        }
        tx.execute("UPDATE t SET v = v || 'y'", []).unwrap();
        tx.commit().unwrap();
        let len: i64 = (0..2000).map(|i| value(i).len() as i64 + 1).sum();
        assert_eq!(recovered(&db), (2000, len));
        // A spilled transaction rolled back leaves nothing behind, and later commits are
        // whole.
        let tx = c.transaction().unwrap();
        tx.execute("UPDATE t SET v = v || 'zzzz'", []).unwrap();
        tx.execute("DELETE FROM t WHERE k % 2 = 0", []).unwrap();
        tx.rollback().unwrap();
        assert_eq!(recovered(&db), (2000, len));
        c.execute("DELETE FROM t WHERE k >= 1000", []).unwrap();
        let kept: i64 = (0..1000).map(|i| value(i).len() as i64 + 1).sum();
        assert_eq!(recovered(&db), (1000, kept));
        // Readers through the platform VFS see the same.
        let reader = Connection::open(&db).unwrap();
        let n: i64 = reader
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 1000);
    }
}
