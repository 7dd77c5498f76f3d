//! Group commit on the one writer connection.
//!
//! Every write runs inside a SAVEPOINT of a shared IMMEDIATE transaction, so a failing write
//! rolls back only its own work (a write that opens the transaction needs none: it fails by
//! rolling the transaction back). The thread that finishes a write commits when nobody is
//! queued behind it; otherwise it leaves the transaction open for the next writer and waits
//! until a later writer's COMMIT covers its work. Concurrent writes therefore share one
//! COMMIT (one WAL append of the shared index and table pages) while a lone write commits at
//! once. A write returns only after the COMMIT that holds it succeeded: an acknowledged write
//! is as durable as with one transaction per write. Writes of one resource reach it from one
//! thread (`serial.rs`), which shares transactions itself through [`Writer::batched`], or, the
//! only write in flight, from its request's worker; Bulk requests and other writers still
//! arrive from the blocking pool.
//!
//! The WAL is rewritten from its start only when a write transaction begins with every frame
//! already copied into the database. Back-to-back shared transactions never see that moment
//! (the background checkpointer always trails the last COMMIT), so under sustained writes the
//! WAL grew without end (200 MB for 10,000 creates) and every frame landed on a fresh page
//! of the file. Once the WAL passes [`RESTART_AFTER_FRAMES`], the background checkpointer,
//! right after a checkpoint of its own, holds the next transaction back while it copies the
//! few frames committed meanwhile ([`Writer::catch_up_checkpoint`]); that transaction then
//! starts the WAL over. The checkpoint's fsyncs stay off the writer's thread, unless that
//! checkpoint falls so far behind that the WAL passes [`COPY_BEFORE_WRITING_PAST`].

use super::StoreError;
use rusqlite::Connection;
use rusqlite::wal::CheckpointMode;
use std::cell::Cell;
use std::collections::HashSet;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

/// Writes per shared transaction at most: bounds how long the first of them waits.
const MAX_BATCH: usize = 256;

/// WAL frames (pages) after which the WAL is made to start over: about 32 MB with 4 KB pages.
/// Each start-over ends with a checkpoint that writes every page changed since the last one;
/// a longer WAL lets a page changed many times be written once (measured at 8 MB against
/// 32 MB: PATCH 13.6k against 16.4k per second, creates unchanged).
const RESTART_AFTER_FRAMES: i32 = 8192;

/// WAL frames past which the writer copies the WAL into the database itself before it begins
/// the next transaction: about 42 MB. The checkpointer starts the WAL over well before this
/// unless its checkpoint is slow (a loaded disk's fsync); writes then wait for the copy
/// instead of growing the WAL by whatever arrives meanwhile (a CI host reached 50 MB).
const COPY_BEFORE_WRITING_PAST: i32 = RESTART_AFTER_FRAMES + RESTART_AFTER_FRAMES / 4;

/// How long the writer waits for the checkpointer's own checkpoint to end (only one may run)
/// before it begins its transaction anyway.
const COPY_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// How a write that shares its transaction with others is undone when it fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Undo {
    /// Its own SAVEPOINT: a failure at any point undoes its work alone.
    Savepoint,
    /// No savepoint, for a write that does every check that may refuse it before its first
    /// change: a failure that changed nothing (no row inserted, updated or deleted, as SQLite
    /// counts them) needs no undo, and one after a change (only the store's own errors, such
    /// as a full disk) rolls back the whole shared transaction, whose writes fail as after a
    /// failed COMMIT. A savepoint copies every page the write changes that an earlier write
    /// of the transaction changed too: each create of a Bulk copied about 5 pages into the
    /// sub-journal, a fifth of its CPU.
    Transaction,
}

pub struct Writer {
    state: Mutex<State>,
    /// Threads between "I will write" and holding `state`: the ones a finished write may
    /// leave its transaction open for.
    queued: AtomicUsize,
    committed: Mutex<Committed>,
    commits: Condvar,
    /// Frames in the WAL after the last COMMIT (SQLite's WAL hook).
    wal_frames: Arc<AtomicI32>,
    /// Set (and signalled) by a COMMIT that leaves the WAL long: wakes the checkpointer.
    wal_long: WalSignal,
    /// [`RESTART_AFTER_FRAMES`] and [`COPY_BEFORE_WRITING_PAST`] (smaller in tests).
    restart_after: i32,
    copy_past: i32,
    /// WAL frames at which the writer next copies the WAL itself: `copy_past`, or further on
    /// after a copy that could not start the WAL over (a reader holding frames back, another
    /// process holding the database), so that writes do not wait for one at every transaction.
    copy_next: AtomicI32,
}

/// What a COMMIT that leaves the WAL long signals: the checkpointer waits on it.
#[derive(Clone, Default)]
pub struct WalSignal(Arc<(Mutex<bool>, Condvar)>);

impl WalSignal {
    fn raise(&self) {
        *crate::sync::lock(&self.0.0) = true;
        self.0.1.notify_one();
    }

    /// Waits up to `timeout`, or until a COMMIT leaves the WAL long (at full write speed the
    /// WAL grows by megabytes in the checkpointer's usual 100 ms pause).
    pub fn wait_while_short(&self, timeout: std::time::Duration) {
        let (flag, woken) = &*self.0;
        let mut long = crate::sync::lock(flag);
        if !*long {
            long =
                (woken.wait_timeout(long, timeout)).map_or_else(|p| p.into_inner().0, |(g, _)| g);
        }
        *long = false;
    }
}

struct State {
    conn: Connection,
    /// The open shared transaction's number, and how many writes it holds.
    open: Option<(u64, usize)>,
    last: u64,
}

#[derive(Default)]
struct Committed {
    /// Every transaction up to this number has ended (committed, or failed to).
    upto: u64,
    /// Transactions whose COMMIT failed (their writes are lost; rare: disk full, I/O error).
    failed: HashSet<u64>,
}

thread_local! {
    /// Inside [`Writer::batched`]: this thread's writes leave the transaction open.
    static HOLD_OPEN: Cell<bool> = const { Cell::new(false) };
    /// The transaction this thread's last write joined.
    static JOINED: Cell<u64> = const { Cell::new(0) };
}

/// Whether this thread is inside [`Writer::batched`].
pub fn holding_open() -> bool {
    HOLD_OPEN.get()
}

impl Writer {
    pub fn new(conn: Connection) -> Result<Writer, StoreError> {
        Writer::with_wal_limits(conn, RESTART_AFTER_FRAMES, COPY_BEFORE_WRITING_PAST)
    }

    fn with_wal_limits(
        mut conn: Connection,
        restart_after: i32,
        copy_past: i32,
    ) -> Result<Writer, StoreError> {
        let wal_frames = Arc::new(AtomicI32::new(0));
        let wal_long = WalSignal::default();
        let (frames, long) = (wal_frames.clone(), wal_long.clone());
        // Replaces SQLite's own autocheckpoint hook, which would checkpoint inside COMMIT,
        // before the batch's writers are told their work is durable.
        conn.wal_hook(Some(move |_: &mut rusqlite::hooks::Wal, pages| {
            frames.store(pages, Ordering::Relaxed);
            if pages >= restart_after {
                long.raise();
            }
            Ok(())
        }))?;
        Ok(Writer {
            state: Mutex::new(State {
                conn,
                open: None,
                last: 0,
            }),
            queued: AtomicUsize::new(0),
            committed: Mutex::new(Committed::default()),
            commits: Condvar::new(),
            wal_frames,
            wal_long,
            restart_after,
            copy_past,
            copy_next: AtomicI32::new(copy_past),
        })
    }

    /// Runs `f` atomically and returns once its work is committed; `undo` says how its work
    /// is undone when it fails while sharing its transaction.
    pub fn write<T, E: From<StoreError>>(
        &self,
        undo: Undo,
        f: impl FnOnce(&Connection) -> Result<T, E>,
    ) -> Result<T, E> {
        self.queued.fetch_add(1, Ordering::SeqCst);
        let mut st = crate::sync::lock(&self.state);
        self.queued.fetch_sub(1, Ordering::SeqCst);
        if HOLD_OPEN.get() && self.batch_lost(&st) {
            // The batch already lost writes: the rest would land without them.
            return Err(StoreError::Commit.into());
        }
        let (txn, first) = match st.open {
            Some((n, _)) => (n, false),
            None => {
                let next = self.copy_next.load(Ordering::Relaxed);
                if self.wal_frames.load(Ordering::Relaxed) >= next {
                    self.copy_wal_waiting(&st.conn);
                }
                st.conn
                    .prepare_cached("BEGIN IMMEDIATE")
                    .and_then(|mut s| s.execute([]))
                    .map_err(StoreError::from)?;
                st.last += 1;
                st.open = Some((st.last, 0));
                (st.last, true)
            }
        };
        JOINED.set(txn);
        let changes_before = st.conn.total_changes();
        let out = match (first, undo) {
            // Alone in its transaction, the write needs no savepoint: if it fails, the whole
            // transaction is rolled back (measured: the savepoint's statements and page
            // copies were about 5% of a create's CPU, and half the writes open their
            // transaction).
            (true, _) | (false, Undo::Transaction) => caught(|| f(&st.conn)),
            (false, Undo::Savepoint) => savepoint(&st.conn, f),
        };
        // A failed write ends the whole transaction when it opened it (nobody else joined),
        // when it is an `Undo::Transaction` write that changed something, or when SQLite
        // ended the transaction itself (as it does on some I/O errors); in the last two
        // cases every write the transaction held fails, as after a failed COMMIT.
        let changed = || st.conn.total_changes() != changes_before;
        if !out.is_ok()
            && (first || (undo == Undo::Transaction && changed()) || st.conn.is_autocommit())
        {
            if !st.conn.is_autocommit() {
                let _ = st.conn.execute_batch("ROLLBACK");
            }
            st.open = None;
            drop(st);
            // Opened by this write, it held nothing else: kept, so `batched` may wait for it.
            self.ended(txn, first);
            return out.into_result();
        }
        if let Some((_, n)) = st.open.as_mut() {
            *n += 1;
        }
        let full = st.open.is_some_and(|(_, n)| n >= MAX_BATCH);
        let others = self.queued.load(Ordering::SeqCst) > 0;
        let outcome = if !full && HOLD_OPEN.get() {
            // Committed by this thread's next write or at the end of `batched`.
            Ok(())
        } else if !full && others {
            // A queued writer commits this transaction.
            drop(st);
            match &out {
                Outcome::Done(Ok(_)) => self.wait_for(txn),
                _ => Ok(()),
            }
        } else {
            self.commit(st)
        };
        let v = out.into_result()?;
        outcome?;
        Ok(v)
    }

    /// Runs `f`, whose writes (on this thread) share transactions instead of each waiting for
    /// its COMMIT, then commits: a Bulk request's operations. Each write stays atomic; the
    /// writes are durable when this returns Ok.
    pub fn batched<T>(&self, f: impl FnOnce() -> T) -> Result<T, StoreError> {
        let before = HOLD_OPEN.replace(true);
        JOINED.set(0);
        let out = catch_unwind(AssertUnwindSafe(f));
        HOLD_OPEN.set(before);
        let joined = JOINED.get();
        if joined > 0 {
            let st = crate::sync::lock(&self.state);
            if st.open.is_some_and(|(n, _)| n == joined) {
                self.commit(st)?;
            } else {
                drop(st);
                self.wait_for(joined)?;
            }
        }
        out.map_err(|p| resume_unwind(p))
    }

    /// Runs `f` on the writer connection (inside the open transaction, if any): reads that
    /// must see this thread's uncommitted writes.
    pub fn read_own<T>(&self, f: impl FnOnce(&Connection) -> T) -> T {
        let st = crate::sync::lock(&self.state);
        f(&st.conn)
    }

    /// Runs `f` on the connection outside any shared transaction (schema changes), first
    /// committing one that is open.
    pub fn exclusive<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut st = crate::sync::lock(&self.state);
        // Committed without letting go of the connection: a writer let in between would
        // begin another transaction, and `f` (a checkpoint) would run inside it.
        if let Some((txn, r)) = end_open(&mut st) {
            self.announce(txn, r)?;
        }
        f(&st.conn)
    }

    /// Whether the WAL has grown past [`RESTART_AFTER_FRAMES`] since it last started over.
    pub fn wal_is_long(&self) -> bool {
        self.wal_frames.load(Ordering::Relaxed) >= self.restart_after
    }

    /// How many shared transactions have ended: unchanged between two looks, no write came.
    pub fn transactions_ended(&self) -> u64 {
        crate::sync::lock(&self.committed).upto
    }

    /// What wakes the checkpointer when the WAL has grown long.
    pub fn wal_signal(&self) -> WalSignal {
        self.wal_long.clone()
    }

    /// Between two transactions, copies into the database the frames the last checkpoint left
    /// (PASSIVE: a long reader may hold some back), so that the next transaction starts the
    /// WAL over. Cheap right after a checkpoint: only the frames committed since then.
    pub fn catch_up_checkpoint(&self) -> Result<(), StoreError> {
        self.exclusive(|c| self.copy_wal(c))
    }

    /// Copies the WAL into the database (PASSIVE: frames a reader still needs stay); when all
    /// of it is copied, the next transaction starts it over.
    fn copy_wal(&self, c: &Connection) -> Result<(), StoreError> {
        let (log, copied) = c.wal_checkpoint_v2(None::<&str>, CheckpointMode::PASSIVE)?;
        if log == copied {
            self.wal_frames.store(0, Ordering::Relaxed);
            self.copy_next.store(self.copy_past, Ordering::Relaxed);
        }
        Ok(())
    }

    /// [`Writer::copy_wal`] on the writer's thread, between two transactions, when the
    /// checkpointer has fallen behind: writes wait meanwhile. Only one checkpoint runs at a
    /// time, so while the checkpointer's is running this one waits for it to end (up to
    /// [`COPY_WAIT`]; it then has little left to copy). When the WAL still cannot start over,
    /// the next try waits for another quarter of [`RESTART_AFTER_FRAMES`] of growth.
    fn copy_wal_waiting(&self, c: &Connection) {
        let started = std::time::Instant::now();
        let failed = loop {
            match self.copy_wal(c) {
                Err(e) if e.is_busy() && started.elapsed() < COPY_WAIT => {
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
                Err(e) => break Some(e),
                Ok(()) => break None,
            }
        };
        let frames = self.wal_frames.load(Ordering::Relaxed);
        if frames == 0 {
            return;
        }
        let next = frames.saturating_add(self.restart_after / 4);
        let first_miss = self.copy_next.swap(next, Ordering::Relaxed) == self.copy_past;
        if let Some(e) = failed.filter(|_| first_miss) {
            tracing::warn!(error = %e, "the WAL is long and could not be copied into the database");
        }
    }

    /// Commits the open transaction and tells its waiters.
    fn commit(&self, mut st: MutexGuard<'_, State>) -> Result<(), StoreError> {
        let Some((txn, r)) = end_open(&mut st) else {
            return Ok(());
        };
        drop(st);
        self.announce(txn, r)
    }

    /// Records how transaction `txn` ended and wakes the writers waiting for it.
    fn announce(&self, txn: u64, r: rusqlite::Result<()>) -> Result<(), StoreError> {
        self.ended(txn, r.is_ok());
        r.map_err(StoreError::from)
    }

    /// Records that transaction `txn` has ended, and whether the writes it held are kept, and
    /// wakes the writers waiting for it.
    fn ended(&self, txn: u64, kept: bool) {
        let mut c = crate::sync::lock(&self.committed);
        c.upto = c.upto.max(txn);
        if !kept {
            c.failed.insert(txn);
        }
        drop(c);
        self.commits.notify_all();
    }

    /// Whether a write begun now would find the connection free: no transaction open, no
    /// thread waiting for it, no checkpoint holding it. A glance, not a reservation.
    pub fn is_free(&self) -> bool {
        self.queued.load(Ordering::SeqCst) == 0
            && self.state.try_lock().is_ok_and(|st| st.open.is_none())
    }

    /// Inside [`Writer::batched`]: whether the transaction this thread's last write joined
    /// has ended and failed. Checked before every write of the batch, so a lost transaction
    /// stays the last one joined (later writes are refused before joining another) and the
    /// end of the batch, which waits for it, fails too.
    fn batch_lost(&self, st: &State) -> bool {
        st.open.is_none_or(|(n, _)| n != JOINED.get()) && self.batch_is_lost()
    }

    /// Inside [`Writer::batched`]: whether the transaction this thread's last write joined
    /// failed (it is then in the failed set, which holds only ended transactions), so that
    /// any further write of the batch would be refused.
    pub fn batch_is_lost(&self) -> bool {
        let last = JOINED.get();
        last != 0 && crate::sync::lock(&self.committed).failed.contains(&last)
    }

    /// Blocks until transaction `txn` has ended; an error if its COMMIT failed.
    fn wait_for(&self, txn: u64) -> Result<(), StoreError> {
        let mut c = crate::sync::lock(&self.committed);
        while c.upto < txn {
            c = self
                .commits
                .wait(c)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
        }
        if c.failed.contains(&txn) {
            return Err(StoreError::Commit);
        }
        Ok(())
    }
}

/// Commits the open shared transaction (rolling it back if COMMIT fails): its number and the
/// outcome, or `None` when none is open.
fn end_open(st: &mut State) -> Option<(u64, rusqlite::Result<()>)> {
    let (txn, _) = st.open.take()?;
    let r = (st.conn.prepare_cached("COMMIT"))
        .and_then(|mut s| s.execute([]))
        .map(|_| ());
    if r.is_err() && !st.conn.is_autocommit() {
        let _ = st.conn.execute_batch("ROLLBACK");
    }
    Some((txn, r))
}

enum Outcome<T, E> {
    Done(Result<T, E>),
    Panicked(Box<dyn std::any::Any + Send>),
}

impl<T, E> Outcome<T, E> {
    fn is_ok(&self) -> bool {
        matches!(self, Outcome::Done(Ok(_)))
    }

    /// The result; a panic goes on unwinding in the caller.
    fn into_result(self) -> Result<T, E> {
        match self {
            Outcome::Done(r) => r,
            Outcome::Panicked(p) => resume_unwind(p),
        }
    }
}

/// Runs `f`, catching a panic (the writer then cleans up before it goes on).
fn caught<T, E>(f: impl FnOnce() -> Result<T, E>) -> Outcome<T, E> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => Outcome::Done(r),
        Err(p) => Outcome::Panicked(p),
    }
}

/// `f` between SAVEPOINT and RELEASE; its changes are rolled back when it fails or panics.
fn savepoint<T, E: From<StoreError>>(
    c: &Connection,
    f: impl FnOnce(&Connection) -> Result<T, E>,
) -> Outcome<T, E> {
    if let Err(e) = c
        .prepare_cached("SAVEPOINT w")
        .and_then(|mut s| s.execute([]))
    {
        return Outcome::Done(Err(StoreError::from(e).into()));
    }
    let out = caught(|| f(c));
    if !out.is_ok() {
        let _ = c
            .prepare_cached("ROLLBACK TO w")
            .and_then(|mut s| s.execute([]));
    }
    let released = c
        .prepare_cached("RELEASE w")
        .and_then(|mut s| s.execute([]));
    match (out, released) {
        (Outcome::Done(Ok(_)), Err(e)) => Outcome::Done(Err(StoreError::from(e).into())),
        (out, _) => out,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer on a new WAL database holding `table` (its CREATE TABLE), and the file's path
    /// for other connections.
    fn writer_on(table: &str) -> (tempfile::TempDir, std::path::PathBuf, Writer) {
        let (dir, path, c) = database_with(table);
        (dir, path, Writer::new(c).unwrap())
    }

    /// A new WAL database holding `table`, its path, and a connection to it.
    fn database_with(table: &str) -> (tempfile::TempDir, std::path::PathBuf, Connection) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.db");
        let c = Connection::open(&path).unwrap();
        c.execute_batch(&format!("PRAGMA journal_mode=WAL; {table}"))
            .unwrap();
        (dir, path, c)
    }

    /// A writer whose WAL starts over past 32 frames and that copies it itself past 64, on a
    /// table of blobs ([`insert_page`]), with no checkpointer.
    fn small_wal_writer() -> (tempfile::TempDir, std::path::PathBuf, Writer) {
        let (dir, path, c) = database_with("CREATE TABLE t (v BLOB)");
        (dir, path, Writer::with_wal_limits(c, 32, 64).unwrap())
    }

    /// A row of 3,000 random bytes: at least one new WAL frame.
    fn insert_page(w: &Writer) {
        let r: Result<usize, StoreError> = w.write(Undo::Savepoint, |c| {
            Ok(c.execute("INSERT INTO t VALUES (randomblob(3000))", [])?)
        });
        r.unwrap();
    }

    /// Many threads writing at once: every write returns, every acknowledged write is there,
    /// and a failing write leaves nothing behind while its neighbours in the batch commit.
    #[test]
    fn concurrent_writes_all_commit_and_failures_stay_alone() {
        concurrent_writes_with(Undo::Savepoint);
        // Every refusal here comes before the write's first change.
        concurrent_writes_with(Undo::Transaction);
    }

    fn concurrent_writes_with(undo: Undo) {
        let (_dir, path, w) = writer_on("CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT UNIQUE)");
        let w = Arc::new(w);
        let threads: Vec<_> = (0..16)
            .map(|t| {
                let w = w.clone();
                std::thread::spawn(move || {
                    let mut ok = 0;
                    for i in 0..300 {
                        // Every 10th write inserts a value another thread also inserts.
                        let v = if i % 10 == 0 {
                            format!("dup{i}")
                        } else {
                            format!("{t}-{i}")
                        };
                        let r: Result<(), StoreError> = w.write(undo, |c| {
                            c.execute("INSERT INTO t (v) VALUES (?1)", [&v])?;
                            c.execute("INSERT INTO t (v) VALUES (?1)", [format!("{v}-second")])?;
                            Ok(())
                        });
                        ok += r.is_ok() as usize;
                    }
                    ok
                })
            })
            .collect();
        let ok: usize = threads.into_iter().map(|h| h.join().unwrap()).sum();
        let reader = Connection::open(&path).unwrap();
        let rows: i64 = reader
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        // 16 × 270 unique writes + one winner per duplicated value (30 values).
        assert_eq!(ok, 16 * 270 + 30);
        assert_eq!(
            rows as usize,
            2 * ok,
            "each acknowledged write has both rows, a refused one none"
        );
    }

    /// A batch's writes are read back before their COMMIT on the same thread (`read_own`),
    /// and are all durable once `batched` returns; a failing one is rolled back alone.
    #[test]
    fn batched_writes_commit_at_the_end() {
        let (_dir, path, w) = writer_on("CREATE TABLE t (v TEXT UNIQUE)");
        let count = |c: &Connection| -> i64 {
            c.query_row("SELECT count(*) FROM t", [], |r| r.get(0))
                .unwrap()
        };
        let outside = Connection::open(&path).unwrap();
        let refused = w
            .batched(|| {
                let mut refused = 0;
                for i in 0..100 {
                    let v = if i == 50 {
                        "0".to_string()
                    } else {
                        i.to_string()
                    };
                    let r: Result<usize, StoreError> = w.write(Undo::Savepoint, |c| {
                        Ok(c.execute("INSERT INTO t VALUES (?1)", [v])?)
                    });
                    refused += r.is_err() as usize;
                    assert!(holding_open());
                    assert!(!w.is_free(), "the batch's transaction is open");
                    assert_eq!(w.read_own(count), (i + 1 - refused) as i64);
                }
                // Not visible to another connection before the end.
                assert_eq!(count(&outside), 0);
                refused
            })
            .unwrap();
        assert!(!holding_open());
        assert!(w.is_free(), "nothing open after the batch");
        assert_eq!(refused, 1);
        assert_eq!(count(&outside), 99);
    }

    /// `Undo::Transaction` writes share the batch's transaction without savepoints: one that
    /// fails before changing anything leaves its neighbours alone; one that fails after a
    /// change takes the whole transaction with it, so the batch fails, nothing of it stays,
    /// and the batch's later writes are refused rather than landing without the earlier ones.
    #[test]
    fn a_write_without_savepoint_fails_alone_only_if_it_changed_nothing() {
        let (_dir, path, w) = writer_on("CREATE TABLE t (v TEXT UNIQUE)");
        let outside = Connection::open(&path).unwrap();
        let count = |c: &Connection| -> i64 {
            c.query_row("SELECT count(*) FROM t", [], |r| r.get(0))
                .unwrap()
        };
        let insert = |v: &str| -> Result<usize, StoreError> {
            w.write(Undo::Transaction, |c| {
                Ok(c.execute("INSERT INTO t VALUES (?1)", [v])?)
            })
        };
        let refused_early = w
            .batched(|| {
                insert("a").unwrap();
                // Refused by the index: the statement changed nothing.
                let dup = insert("a").is_err();
                // Refused by a check before any change.
                let checked: Result<(), StoreError> =
                    w.write(Undo::Transaction, |_| Err(StoreError::Commit));
                insert("b").unwrap();
                dup && checked.is_err()
            })
            .unwrap();
        assert!(refused_early);
        assert_eq!(count(&outside), 2, "a and b committed");

        let (later, batch) = {
            let mut later = None;
            let batch = w.batched(|| {
                insert("c").unwrap();
                let failed: Result<(), StoreError> = w.write(Undo::Transaction, |c| {
                    c.execute("INSERT INTO t VALUES ('d')", [])?;
                    Err(StoreError::Commit)
                });
                assert!(failed.is_err());
                later = Some(insert("e"));
            });
            (later.unwrap(), batch)
        };
        assert!(batch.is_err(), "the batch lost c and must say so");
        assert!(later.is_err(), "e must not land without c");
        assert_eq!(count(&outside), 2, "nothing of the failed batch stays");

        // Outside a batch the writer goes on with a new transaction.
        insert("f").unwrap();
        assert_eq!(count(&outside), 3);
    }

    /// A write of two rows whose second the unique index refuses: the first must go too.
    fn insert_twice(w: &Writer, v: &str) -> Result<(), StoreError> {
        w.write(Undo::Savepoint, |c| {
            c.execute("INSERT INTO t VALUES (?1)", [v])?;
            c.execute("INSERT INTO t VALUES (?1)", [v])?;
            Ok(())
        })
    }

    /// A write that opens its transaction runs without a savepoint: when it fails or panics,
    /// the whole transaction is rolled back, nothing of it stays, and the writes after it
    /// (also inside `batched`, which then must not wait for the rolled-back transaction)
    /// commit as usual.
    #[test]
    fn a_failing_write_alone_in_its_transaction_leaves_nothing() {
        let (_dir, path, w) = writer_on("CREATE TABLE t (v TEXT UNIQUE)");
        let w = Arc::new(w);
        let outside = Connection::open(&path).unwrap();
        let values = |c: &Connection| -> Vec<String> {
            let mut st = c.prepare("SELECT v FROM t ORDER BY v").unwrap();
            st.query_map([], |r| r.get(0))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap()
        };
        assert!(insert_twice(&w, "a").is_err());
        let panicked = catch_unwind(AssertUnwindSafe(|| {
            let _: Result<(), StoreError> = w.write(Undo::Savepoint, |c| {
                c.execute("INSERT INTO t VALUES ('p')", [])?;
                panic!("a bug in a write");
            });
        }));
        assert!(panicked.is_err());
        let r: Result<usize, StoreError> = w.write(Undo::Savepoint, |c| {
            Ok(c.execute("INSERT INTO t VALUES ('b')", [])?)
        });
        r.unwrap();
        assert_eq!(values(&outside), ["b"]);
        // Inside `batched`: a first write and a last write that fail, and a batch of one
        // failing write, must all return (on another thread, so that a hang fails the test).
        let (done, finished) = std::sync::mpsc::channel();
        let bw = w.clone();
        std::thread::spawn(move || {
            let w = bw;
            let first = w.batched(|| {
                let mut ok = vec![insert_twice(&w, "c").is_ok()];
                for v in ["d", "e"] {
                    let r: Result<usize, StoreError> = w.write(Undo::Savepoint, |c| {
                        Ok(c.execute("INSERT INTO t VALUES (?1)", [v])?)
                    });
                    ok.push(r.is_ok());
                }
                ok.push(insert_twice(&w, "f").is_ok());
                ok
            });
            let alone = w.batched(|| insert_twice(&w, "g").is_ok());
            done.send((first.unwrap(), alone.unwrap())).unwrap();
        });
        let (first, alone) = finished
            .recv_timeout(std::time::Duration::from_secs(20))
            .expect("batched returns after failing writes");
        assert_eq!(first, [false, true, true, false]);
        assert!(!alone);
        assert_eq!(values(&outside), ["b", "d", "e"]);
    }

    /// With no checkpointer running, the writer copies the WAL itself once it is past its
    /// limit, so the WAL starts over instead of growing with every write.
    #[test]
    fn the_writer_bounds_the_wal_when_no_checkpoint_comes() {
        let (_dir, path, w) = small_wal_writer();
        let wal = path.with_extension("db-wal");
        let mut largest = 0;
        // About 2,000 pages of new rows: each write adds at least one.
        for _ in 0..2000 {
            insert_page(&w);
            largest = largest.max(std::fs::metadata(&wal).unwrap().len());
        }
        let frame = 4096 + 24;
        // The limit, plus the one transaction that crossed it (a few pages).
        assert!(
            largest <= 32 + 72 * frame,
            "the WAL reached {} frames",
            largest / frame
        );
    }

    /// While a reader holds frames back (or another process the database), the writer does not
    /// try to copy the WAL at every transaction: after a try that could not start it over, it
    /// tries again once the WAL has grown by another quarter of its limit, and starts it over
    /// once the reader is gone.
    #[test]
    fn a_wal_that_cannot_be_copied_is_tried_again_only_after_it_grew() {
        let (_dir, path, w) = small_wal_writer();
        for _ in 0..70 {
            insert_page(&w);
        }
        // A reader's snapshot keeps every frame from here on from being copied.
        let reader = Connection::open(&path).unwrap();
        reader.execute_batch("BEGIN").unwrap();
        let _: i64 = reader
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        let mut tries = Vec::new();
        for _ in 0..40 {
            insert_page(&w);
            tries.push(w.copy_next.load(Ordering::Relaxed));
        }
        tries.dedup();
        // Each try that could not start the WAL over puts the next one at least 8 frames (a
        // quarter of 32) further on; without that, every write would try (and it stay at 64).
        assert!(tries.len() >= 3, "tried at {tries:?}");
        assert!(
            tries.windows(2).all(|p| p[1] >= p[0] + 8),
            "tried at {tries:?}"
        );
        reader.execute_batch("COMMIT").unwrap();
        // The checkpointer starting it over puts the writer's limit back too.
        w.catch_up_checkpoint().unwrap();
        assert_eq!(w.copy_next.load(Ordering::Relaxed), 64);
        for _ in 0..70 {
            insert_page(&w);
        }
        assert_eq!(
            w.copy_next.load(Ordering::Relaxed),
            64,
            "the WAL started over"
        );
    }

    /// `exclusive` runs outside any transaction even while other threads write without pause
    /// (a checkpoint inside one fails with SQLITE_LOCKED, and the WAL would not start over).
    #[test]
    fn exclusive_runs_between_transactions_under_concurrent_writes() {
        let (_dir, _path, w) = writer_on("CREATE TABLE t (v INTEGER)");
        let w = Arc::new(w);
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let writers: Vec<_> = (0..4)
            .map(|_| {
                let (w, stop) = (w.clone(), stop.clone());
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        let r: Result<usize, StoreError> = w.write(Undo::Savepoint, |c| {
                            Ok(c.execute("INSERT INTO t VALUES (1)", [])?)
                        });
                        r.unwrap();
                    }
                })
            })
            .collect();
        let mut inside = 0;
        for _ in 0..300 {
            inside += !w.exclusive(|c| Ok(c.is_autocommit())).unwrap() as usize;
            w.catch_up_checkpoint().unwrap();
        }
        stop.store(true, Ordering::Relaxed);
        for t in writers {
            t.join().unwrap();
        }
        assert_eq!(inside, 0, "exclusive ran inside a shared transaction");
    }
}
