//! The SQLite backend's background thread: it moves WAL content into the database file, and
//! between two of its passes keeps a read snapshot open that point reads share.

use super::{StoreError, writer::Writer};
use rusqlite::Connection;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How long the thread sleeps when no commit has left the WAL long.
const PASS_EVERY: Duration = Duration::from_millis(100);

/// How long passes may keep finding the database busy before that is worth a warning.
const BUSY_WARN_AFTER: Duration = Duration::from_secs(5);

/// Starts the thread: a checkpoint every 100 ms, or at once when a commit leaves the WAL long
/// (PASSIVE: never blocks readers or the writer). When the WAL is long it then makes the writer
/// start it over (see `writer`). The thread ends with the store (`stop`, or the writer gone).
pub(super) fn start(
    path: &Path,
    writer: &Arc<Writer>,
    stop: Arc<AtomicBool>,
) -> Result<(), StoreError> {
    let c = Connection::open(path)?;
    c.busy_timeout(std::time::Duration::from_secs(5))?;
    let keeper = SnapshotKeeper::open(path)?;
    // Weak: the thread must not keep the writer's connection open after the store is gone.
    let (wal_long, writer) = (writer.wal_signal(), Arc::downgrade(writer));
    std::thread::Builder::new()
        .name("scimlab-checkpoint".into())
        .spawn(move || {
            let mut last_ended = u64::MAX;
            let mut failures = Failures::default();
            while !stop.load(Ordering::Relaxed) {
                wal_long.wait_while_short(PASS_EVERY);
                let Some(writer) = writer.upgrade().filter(|_| !stop.load(Ordering::Relaxed))
                else {
                    break;
                };
                // Held while writes come, the snapshot would only keep the writer from
                // starting the WAL over (a read after a write cannot share it anyway).
                let ended = writer.transactions_ended();
                let quiet = std::mem::replace(&mut last_ended, ended) == ended;
                match pass(&c, &keeper, &writer, quiet) {
                    Ok(_) => failures.passed(),
                    Err(e) => match failures.failed(&e, Instant::now()) {
                        Failure::Other => tracing::warn!(error = %e, "WAL checkpoint failed"),
                        Failure::BusyStreak(busy_for) => tracing::warn!(
                            error = %e,
                            "WAL checkpoints have found the database busy for {busy_for:?}: \
                             another connection holds it, and the WAL grows until one passes"
                        ),
                        Failure::Busy => {
                            tracing::debug!(error = %e, "WAL checkpoint found the database busy")
                        }
                    },
                }
                if writer.wal_is_long() {
                    // Held back by a long reader: every commit signals, so pause between tries.
                    std::thread::sleep(std::time::Duration::from_millis(5));
                }
            }
        })
        .map_err(|e| StoreError::Migration(format!("starting the checkpoint thread: {e}")))?;
    Ok(())
}

/// The passes that failed since the last one that did not.
///
/// A PASSIVE checkpoint finds the database busy when it reads the WAL index while a commit is
/// changing it, or while another connection checkpoints: under heavy writes that happens now
/// and then, and the next pass a moment later succeeds. Only a streak of such failures long
/// enough to let the WAL grow is worth a warning; any other failure always is.
#[derive(Default)]
struct Failures {
    busy_since: Option<Instant>,
    warned: bool,
}

/// What a failed pass is worth saying.
#[derive(Debug, PartialEq, Eq)]
enum Failure {
    /// Not the database being busy: always a warning.
    Other,
    /// Busy, in a streak not yet long enough (or already warned of): a debug line.
    Busy,
    /// Busy for this long, reaching [`BUSY_WARN_AFTER`]: a warning, once per streak.
    BusyStreak(Duration),
}

impl Failures {
    /// Notes a failed pass at `now`.
    fn failed(&mut self, e: &StoreError, now: Instant) -> Failure {
        if !e.is_busy() {
            return Failure::Other;
        }
        let busy_for = now.duration_since(*self.busy_since.get_or_insert(now));
        if self.warned || busy_for < BUSY_WARN_AFTER {
            return Failure::Busy;
        }
        self.warned = true;
        Failure::BusyStreak(busy_for)
    }

    fn passed(&mut self) {
        *self = Failures::default();
    }
}

/// One pass: the keeper lets go (a held snapshot would stop the checkpoint at the frames it
/// can see), the checkpoint runs, and after a `quiet` interval (no write since the last pass)
/// the keeper holds the new snapshot. Not while writes come, nor while the WAL is long: a held
/// snapshot could keep the writer from starting the WAL over. Returns the WAL's frames and
/// how many of them the database file has now.
pub(super) fn pass(
    c: &Connection,
    keeper: &SnapshotKeeper,
    writer: &Writer,
    quiet: bool,
) -> Result<(i64, i64), StoreError> {
    keeper.release();
    let frames = c.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
        Ok((r.get(1)?, r.get(2)?))
    })?;
    if writer.wal_is_long() {
        writer.catch_up_checkpoint()?;
    }
    if quiet && !writer.wal_is_long() {
        keeper.hold();
    }
    Ok(frames)
}

/// A read transaction held open from the end of one checkpoint pass to the start of the next.
///
/// Each read transaction takes a shared lock on one of the WAL's read-mark slots. SQLite takes
/// it with an `fcntl()` call, under a mutex that every connection of the process shares —
/// unless a connection of this process already holds that slot, which then costs neither.
/// Point reads choose the slot that marks the newest commit; while no write has come since the
/// keeper began, that is the keeper's slot. Measured on GET by id: two system calls and most
/// of the two async workers' queueing on that mutex gone, 42% → 47% of the bare handler.
///
/// Reads are not served from this snapshot: every read still begins its own transaction and
/// sees every commit made before it. It is held only after an interval without writes, and
/// released before each checkpoint, which it would otherwise hold back; after a write, reads
/// take the locks themselves until a pass finds the writer quiet again.
pub(super) struct SnapshotKeeper(Connection);

impl SnapshotKeeper {
    pub(super) fn open(path: &Path) -> Result<SnapshotKeeper, StoreError> {
        let c = Connection::open(path)?;
        // It reads one page of the schema.
        c.pragma_update(None, "cache_size", 4)?;
        c.pragma_update(None, "query_only", true)?;
        Ok(SnapshotKeeper(c))
    }

    /// Begins a read transaction (BEGIN alone is deferred: the first read takes the lock).
    pub(super) fn hold(&self) {
        self.release();
        let r = (self.0.execute_batch("BEGIN"))
            .and_then(|()| {
                (self.0).query_row("SELECT 1 FROM sqlite_schema LIMIT 1", [], |_| Ok(()))
            })
            .or_else(|e| match e {
                rusqlite::Error::QueryReturnedNoRows => Ok(()),
                e => Err(e),
            });
        if let Err(e) = r {
            // Only a speed-up: reads take their locks themselves meanwhile.
            tracing::debug!(error = %e, "holding a read snapshot failed");
            self.release();
        }
    }

    /// Ends the held read transaction, if any.
    pub(super) fn release(&self) {
        if !self.0.is_autocommit()
            && let Err(e) = self.0.execute_batch("ROLLBACK")
        {
            tracing::debug!(error = %e, "ending the held read snapshot failed");
        }
    }

    /// Whether a read transaction is held (tests).
    #[cfg(test)]
    pub(super) fn holding(&self) -> bool {
        !self.0.is_autocommit()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn busy() -> StoreError {
        let code = rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY);
        StoreError::Sqlite(rusqlite::Error::SqliteFailure(code, None))
    }

    /// A database busy now and then is noted quietly; a busy streak warns once it has lasted
    /// long enough, once; any other failure warns at once; a pass that succeeds ends a streak.
    #[test]
    fn only_a_long_busy_streak_or_another_failure_warns() {
        let t0 = Instant::now();
        let mut f = Failures::default();
        assert_eq!(f.failed(&busy(), t0), Failure::Busy);
        assert_eq!(
            f.failed(&busy(), t0 + Duration::from_secs(1)),
            Failure::Busy
        );
        let at = t0 + BUSY_WARN_AFTER;
        assert_eq!(f.failed(&busy(), at), Failure::BusyStreak(BUSY_WARN_AFTER));
        assert_eq!(
            f.failed(&busy(), at + Duration::from_secs(1)),
            Failure::Busy,
            "once per streak"
        );
        let io = StoreError::Sqlite(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_IOERR),
            None,
        ));
        assert_eq!(f.failed(&io, at), Failure::Other);
        f.passed();
        let later = at + Duration::from_secs(60);
        assert_eq!(
            f.failed(&busy(), later),
            Failure::Busy,
            "a new streak starts over"
        );
    }

    /// What a pass returns while another connection holds the database exclusively is the
    /// busy failure the streak counts.
    #[test]
    fn a_checkpoint_while_another_connection_holds_the_database_is_busy() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        Connection::open(&path)
            .unwrap()
            .execute_batch("PRAGMA journal_mode=WAL; CREATE TABLE t (x)")
            .unwrap();
        // In WAL mode only a connection in exclusive locking mode keeps others out entirely
        // (an `sqlite3` shell could do this to a running server's file).
        let holder = Connection::open(&path).unwrap();
        holder
            .execute_batch("PRAGMA locking_mode=EXCLUSIVE; INSERT INTO t VALUES (1)")
            .unwrap();
        let c = Connection::open(&path).unwrap();
        c.busy_timeout(Duration::from_millis(50)).unwrap();
        let e = c
            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get::<_, i64>(0))
            .map_err(StoreError::from)
            .unwrap_err();
        assert!(e.is_busy(), "{e}");
    }
}
