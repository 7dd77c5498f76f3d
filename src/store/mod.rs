//! Storage behind a narrow interface ([`Conn`]): SQLite in WAL mode, the embedded default
//! (one writer connection with group commit, a small pool of readers), or PostgreSQL, which
//! several replicas share ([`pg`]). All calls block; the HTTP layer runs them on tokio's
//! blocking pool, except writes of one resource, which a SQLite store runs on a writer thread of
//! its own ([`Store::submit_write`]).

mod anchors;
mod checkpointer;
mod filter;
pub mod pg;
mod plan;
pub mod request_log;
mod serial;
mod sort;
mod sql;
mod wal_appends;
mod writer;

use crate::model::ServerModel;
use plan::IndexSpec;
use rusqlite::{CachedStatement, Connection, OptionalExtension, params};
pub use serial::Job as WriteJob;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use writer::Undo;

mod embedded {
    refinery::embed_migrations!("src/store/migrations");
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("database: {0}")]
    Postgres(String),
    #[error("migrating the database: {0}")]
    Migration(String),
    /// Another resource holds a unique value of the write; `attribute` is the one (as a client
    /// names it), when it could be told.
    #[error("another resource holds this {}", attribute.as_deref().unwrap_or("unique value"))]
    Unique { attribute: Option<String> },
    /// The COMMIT of a shared transaction failed: the writes it held are lost.
    #[error("the database could not commit the write (disk full or an I/O error)")]
    Commit,
    /// An attribute cannot become unique because stored resources already share a value.
    #[error(
        "attribute {attribute} of {resource_type} is now unique, but resources {ids:?} share a value"
    )]
    IndexConflict {
        resource_type: String,
        attribute: String,
        ids: Vec<String>,
    },
}

impl StoreError {
    /// Whether SQLite found the database locked by another connection (a retry may pass).
    pub fn is_busy(&self) -> bool {
        use rusqlite::ErrorCode::{DatabaseBusy, DatabaseLocked};
        matches!(self, StoreError::Sqlite(rusqlite::Error::SqliteFailure(f, _))
            if matches!(f.code, DatabaseBusy | DatabaseLocked))
    }

    /// `spec`'s attribute cannot become unique: the resources `ids` (comma-separated) share
    /// a value.
    fn index_conflict(spec: &IndexSpec, ids: &str) -> StoreError {
        StoreError::IndexConflict {
            resource_type: spec.resource_type.clone(),
            attribute: spec.attribute.clone(),
            ids: ids.split(',').map(str::to_string).collect(),
        }
    }
}

impl From<tokio_postgres::Error> for StoreError {
    /// The server's own message (the error's Display says only "db error").
    fn from(e: tokio_postgres::Error) -> Self {
        StoreError::Postgres(match e.as_db_error() {
            Some(db) => format!("{} ({})", db.message(), db.code().code()),
            None => e.to_string(),
        })
    }
}

/// Whether a write keeps the unique values already stored, so no other resource can hold them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UniqueValues {
    Kept,
    MayChange,
}

/// One stored resource, as read from the database.
#[derive(Debug, Clone)]
pub struct Row {
    pub id: String,
    pub resource_type: String,
    pub version: i64,
    pub created: String,
    pub last_modified: String,
    pub doc: String,
}

/// One group member, with the member's resource type when the member exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub value: String,
    pub display: Option<String>,
    pub member_type: Option<String>,
}

/// A group a resource belongs to.
#[derive(Debug, Clone)]
pub struct GroupRef {
    pub id: String,
    pub resource_type: String,
    pub display: Option<String>,
}

/// Where the data lives: a SQLite file, or a PostgreSQL database several replicas share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    Sqlite(PathBuf),
    Postgres(String),
}

impl Location {
    /// `postgres://…` or `postgresql://…` is PostgreSQL; anything else is a SQLite file path.
    pub fn parse(s: &str) -> Location {
        if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            Location::Postgres(s.to_string())
        } else {
            Location::Sqlite(PathBuf::from(s))
        }
    }
}

impl Location {
    /// As `--db` takes it (a PostgreSQL URL keeps its password).
    pub fn to_url(&self) -> String {
        match self {
            Location::Sqlite(p) => p.display().to_string(),
            Location::Postgres(url) => url.clone(),
        }
    }

    /// Where files that belong with the data go (`<base>.tls-cert.pem`): beside a SQLite
    /// file, else in the working directory.
    pub fn sidecar_base(&self) -> PathBuf {
        match self {
            Location::Sqlite(p) => p.clone(),
            Location::Postgres(_) => PathBuf::from("scimlab"),
        }
    }
}

impl std::fmt::Display for Location {
    /// The location without a password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Sqlite(p) => write!(f, "{}", p.display()),
            Location::Postgres(url) => match url::Url::parse(url) {
                Ok(mut u) => {
                    if u.password().is_some() {
                        let _ = u.set_password(Some("***"));
                    }
                    write!(f, "{u}")
                }
                Err(_) => write!(f, "postgres://…"),
            },
        }
    }
}

/// The store: one backend.
pub struct Store {
    backend: Backend,
    location: Location,
}

enum Backend {
    Sqlite(Box<Sqlite>),
    Postgres(Arc<pg::PgStore>),
}

/// The embedded SQLite backend.
struct Sqlite {
    path: PathBuf,
    writer: Arc<writer::Writer>,
    /// The thread that runs single-resource writes on `writer`.
    serial: serial::Serial,
    /// Readers for searches and other reads that may scan.
    readers: Vec<Mutex<Connection>>,
    /// Readers kept for point reads (GET by id, counts): a scan never holds one, so a point
    /// read — which runs on an async worker — never waits behind a slow search.
    point_readers: Vec<Mutex<Connection>>,
    /// The key that signs cursors (kept in the database: every process on it shares it).
    cursor_key: Vec<u8>,
    next_reader: AtomicUsize,
    stop_checkpointer: Arc<AtomicBool>,
}

impl Drop for Sqlite {
    fn drop(&mut self) {
        self.stop_checkpointer.store(true, Ordering::Relaxed);
    }
}

/// Readers for the blocking pool's searches, and for the async workers' inline point reads.
/// Each holds its own page cache (2 MB), so more readers cost resident memory.
const READERS: usize = 3;
const POINT_READERS: usize = 2;
const POINT_READER_CACHE_KB: i64 = 512;
/// The groups of a page of members. `INDEXED BY`: left to itself the planner walked the
/// covering by-group index over every membership of the server (a group of 10,000 members
/// made each page of users read all 10,000 rows: `userName eq` fell to a tenth of its rate).
const GROUPS_OF_MANY: &str = "SELECT m.member_id, g.id, g.resource_type, json_extract(g.doc,'$.\"displayName\"') \
     FROM memberships m INDEXED BY memberships_by_member \
     JOIN resources g ON g.server_id=$SERVER AND g.id=m.group_id \
     WHERE m.server_id=$SERVER AND m.member_id IN (SELECT value FROM json_each(?1)) ORDER BY m.seq";
/// A member's groups, in the order it joined them: the index on (server, member, seq, group)
/// yields them in that order and covers the lookup (no temporary B-tree on a user's read).
const GROUPS_OF: &str = "SELECT g.id, g.resource_type, json_extract(g.doc,'$.\"displayName\"') \
     FROM memberships m JOIN resources g ON g.server_id=$SERVER AND g.id=m.group_id \
     WHERE m.server_id=$SERVER AND m.member_id=?1 ORDER BY m.seq";
/// The columns [`row`] reads, as a macro so that constant queries can `concat!` them.
macro_rules! row_columns {
    () => {
        "r.id, r.resource_type, r.version, r.created, r.last_modified, r.doc"
    };
}
const ROW_COLUMNS: &str = row_columns!();
/// GET by id runs it on every read: written out once, not formatted per call.
const ROW_BY_ID: &str = concat!(
    "SELECT ",
    row_columns!(),
    " FROM resources r WHERE r.server_id=$SERVER AND r.id=?1"
);
/// A resource and its groups in one statement (GET of a user): the resource is the row whose
/// first column is NULL, then each group with its membership's place.
const ROW_AND_GROUPS_BY_ID: &str = concat!(
    "SELECT NULL, ",
    row_columns!(),
    " FROM resources r WHERE r.server_id=$SERVER AND r.id=?1 \
     UNION ALL SELECT m.seq, g.id, g.resource_type, NULL, NULL, NULL, json_extract(g.doc,'$.\"displayName\"') \
     FROM memberships m JOIN resources g ON g.server_id=$SERVER AND g.id=m.group_id \
     WHERE m.server_id=$SERVER AND m.member_id=?1"
);

impl Store {
    /// Opens (creating if needed) a SQLite database and runs scimlab's migrations.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        Ok(Store {
            backend: Backend::Sqlite(Box::new(Sqlite::open(path)?)),
            location: Location::Sqlite(path.to_path_buf()),
        })
    }

    /// Opens the store at `location`, running scimlab's migrations.
    pub fn connect(location: &Location) -> Result<Store, StoreError> {
        match location {
            Location::Sqlite(path) => Store::open(path),
            Location::Postgres(url) => Ok(Store {
                backend: Backend::Postgres(Arc::new(pg::PgStore::open(url)?)),
                location: location.clone(),
            }),
        }
    }

    /// Where the data lives.
    pub fn location(&self) -> &Location {
        &self.location
    }

    /// Where replicas share the store (PostgreSQL): the store itself, which then also keeps
    /// what every replica must see alike (rate-limit buckets).
    pub fn shared(&self) -> Option<&pg::PgStore> {
        match &self.backend {
            Backend::Sqlite(_) => None,
            Backend::Postgres(p) => Some(p),
        }
    }

    /// Runs `f`, which writes in several transactions, while no other process sharing the
    /// store runs work under the same `name` (on SQLite, one process: just runs it).
    pub fn exclusive<T>(&self, name: &str, f: impl FnOnce() -> T) -> Result<T, StoreError> {
        match &self.backend {
            Backend::Sqlite(_) => Ok(f()),
            Backend::Postgres(p) => p.exclusive(name, f),
        }
    }

    /// How many searches may run at once: two per reader connection, so that one is always
    /// ready to take a reader the moment it is free (measured: with one per reader, pages of
    /// 100 ran 20% slower, readers idling while the next search was woken). More would only
    /// hold blocking threads waiting for a connection, which writes then wait for.
    pub fn search_slots(&self) -> usize {
        match &self.backend {
            Backend::Sqlite(s) => 2 * s.readers.len(),
            Backend::Postgres(_) => pg::SEARCH_SLOTS,
        }
    }

    /// Whether other processes may share this store (PostgreSQL).
    pub fn is_shared(&self) -> bool {
        matches!(self.backend, Backend::Postgres(_))
    }

    /// A writer for the request log, on its own connection where the backend has one.
    pub fn log_writer(&self) -> Result<(request_log::LogWriter, i64), StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => request_log::LogWriter::open(&s.path),
            Backend::Postgres(p) => Ok(request_log::LogWriter::postgres(p.clone())),
        }
    }

    /// The secret that signs RFC 9865 cursors.
    pub fn cursor_key(&self) -> &[u8] {
        match &self.backend {
            Backend::Sqlite(s) => &s.cursor_key,
            Backend::Postgres(p) => p.cursor_key(),
        }
    }

    /// Runs `f` on a reader connection (blocking: call it from the blocking pool).
    pub fn read<T, E: From<StoreError>>(
        &self,
        f: impl FnOnce(&dyn Conn) -> Result<T, E>,
    ) -> Result<T, E> {
        match &self.backend {
            Backend::Sqlite(s) => s.read_from(&s.readers, ReadScope::Transaction, f),
            Backend::Postgres(p) => p.read(f),
        }
    }

    /// Runs `f`, which reads a few rows by key and never scans, on a reader kept for such
    /// reads: it waits at most for another point read, never for a search.
    pub fn read_point<T, E: From<StoreError>>(
        &self,
        f: impl FnOnce(&dyn Conn) -> Result<T, E>,
    ) -> Result<T, E> {
        match &self.backend {
            Backend::Sqlite(s) => s.read_from(&s.point_readers, ReadScope::Transaction, f),
            // A network round trip: hand the worker's other tasks on while it waits.
            Backend::Postgres(p) => without_stalling_workers(|| p.read_point(f)),
        }
    }

    /// As [`Store::read_point`], for `f` that runs one statement: SQLite opens no transaction
    /// around it, as a statement sees one snapshot on its own (BEGIN and COMMIT were a sixth
    /// of a GET's store work).
    pub fn read_single<T, E: From<StoreError>>(
        &self,
        f: impl FnOnce(&dyn Conn) -> Result<T, E>,
    ) -> Result<T, E> {
        match &self.backend {
            Backend::Sqlite(s) => s.read_from(&s.point_readers, ReadScope::Statement, f),
            Backend::Postgres(p) => without_stalling_workers(|| p.read_point(f)),
        }
    }

    /// Runs `f` atomically and returns once its work is committed; nothing of `f` is kept if
    /// it fails.
    pub fn write<T, E: From<StoreError>>(
        &self,
        f: impl FnOnce(&dyn Conn) -> Result<T, E>,
    ) -> Result<T, E> {
        self.write_undone_by(Undo::Savepoint, f)
    }

    /// As [`Store::write`], for `f` that makes every check that may refuse it before its first
    /// change: on SQLite it shares its transaction without a savepoint of its own (see
    /// [`Undo::Transaction`]).
    pub fn write_checked_first<T, E: From<StoreError>>(
        &self,
        f: impl FnOnce(&dyn Conn) -> Result<T, E>,
    ) -> Result<T, E> {
        self.write_undone_by(Undo::Transaction, f)
    }

    fn write_undone_by<T, E: From<StoreError>>(
        &self,
        undo: Undo,
        f: impl FnOnce(&dyn Conn) -> Result<T, E>,
    ) -> Result<T, E> {
        match &self.backend {
            Backend::Sqlite(s) => s.writer.write(undo, |c| f(c)),
            // One transaction per write: nothing shared to undo.
            Backend::Postgres(p) => p.write(f),
        }
    }

    /// Queues a write (`job`) for the store's writer thread, which runs queued writes in one
    /// transaction and answers each once it is committed (see `store/serial.rs`); the only
    /// write in flight, when `small`, runs at once on the calling thread, answered before this
    /// returns. Gives the job back where there is no such thread: on PostgreSQL, where each
    /// write commits on its own connection, the caller runs it and answers it as committed.
    pub fn submit_write(&self, job: WriteJob, small: bool) -> Result<(), WriteJob> {
        match &self.backend {
            Backend::Sqlite(s) => s.serial.submit(job, small),
            Backend::Postgres(_) => Err(job),
        }
    }

    /// Runs `f`, whose writes share transactions and are committed together at the end (each
    /// write still atomic): Bulk requests. On PostgreSQL each write commits on its own.
    pub fn batched<T>(&self, f: impl FnOnce() -> T) -> Result<T, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => s.writer.batched(f),
            // Each operation commits on its own: a savepoint per operation in one transaction
            // made a Bulk of 1,000 twice as slow (PostgreSQL's subtransaction cache overflows
            // past 64), and an operation must stay atomic.
            Backend::Postgres(_) => Ok(f()),
        }
    }

    /// Creates the server's indexes that do not exist yet. A unique attribute whose stored
    /// values are not unique is reported with the conflicting resources. Attributes that were
    /// already unique in `before` (the server as this process served it until now) are not
    /// checked again: every write since that definition was loaded was checked, and the check
    /// reads every resource of the type (a hot reload of a server with 100,000 users took
    /// 47–73 ms, against 0–1 ms without it).
    pub fn apply_indexes(
        &self,
        server: &ServerModel,
        before: Option<&ServerModel>,
    ) -> Result<(), StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => {
                (s.writer).exclusive(|c| Sqlite::create_indexes(c, server, before))
            }
            Backend::Postgres(p) => p.apply_indexes(server, before),
        }
    }
}

impl Sqlite {
    fn open(path: &Path) -> Result<Sqlite, StoreError> {
        let mut writer = open_writing(path)?;
        writer.pragma_update(None, "journal_mode", "WAL")?;
        // NORMAL in WAL mode: a committed write survives a killed process (it is in the WAL
        // before COMMIT returns); only an OS crash may lose the last transactions.
        writer.pragma_update(None, "synchronous", "NORMAL")?;
        // Checkpoints run on a background connection (see `checkpointer`), not inside the
        // commits that happen to cross the WAL threshold.
        writer.pragma_update(None, "wal_autocheckpoint", 0)?;
        // A WAL that grew while a long read held back checkpoints shrinks back to this when
        // it next starts over (see `writer`); above the usual peak, which is never cut.
        writer.pragma_update(None, "journal_size_limit", 48 * 1024 * 1024)?;
        // Each write runs in a savepoint of a shared transaction (group commit, Bulk); the
        // pages a savepoint may roll back go to a sub-journal. Left at its default, SQLite
        // keeps it in memory in one buffer up to 64 KB and spills a larger one to a temp
        // file. Not `temp_store=MEMORY`: that keeps every sub-journal in memory but in 1 KB
        // pieces, five allocations per page (measured on Bulk of 1,000 creates: 51–53 ms of
        // CPU with it against 46–47 ms without).
        writer.busy_timeout(std::time::Duration::from_secs(5))?;
        // Query-planner stability: plans never depend on bound values, so re-binding a
        // cached statement never forces SQLite to re-prepare it (measured: ~25% of CPU).
        writer.set_db_config(
            rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
            true,
        )?;
        writer.set_prepared_statement_cache_capacity(1024);
        embedded::migrations::runner()
            .run(&mut writer)
            .map_err(|e| StoreError::Migration(e.to_string()))?;
        Sqlite::drop_legacy_indexes(&writer)?;
        writer.execute(
            "INSERT OR IGNORE INTO secrets (name, value) VALUES ('cursor', randomblob(32))",
            [],
        )?;
        let cursor_key: Vec<u8> =
            writer.query_row("SELECT value FROM secrets WHERE name='cursor'", [], |r| {
                r.get(0)
            })?;
        let mut readers = Vec::new();
        for _ in 0..READERS + POINT_READERS {
            let c = Connection::open(path)?;
            c.busy_timeout(std::time::Duration::from_secs(5))?;
            c.set_db_config(
                rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
                true,
            )?;
            c.pragma_update(None, "query_only", true)?;
            // No mmap: every mapped page a scan touches stays resident (measured: 73 MB of
            // RSS at 30,000 users with 256 MB maps), while pread() through the connection's
            // 2 MB page cache keeps memory flat; scans cost about a quarter more.
            c.set_prepared_statement_cache_capacity(1024);
            if readers.len() >= READERS {
                // Point reads touch a handful of pages: a small cache holds the upper index
                // levels.
                c.pragma_update(None, "cache_size", -POINT_READER_CACHE_KB)?;
            }
            readers.push(Mutex::new(c));
        }
        let stop = Arc::new(AtomicBool::new(false));
        let writer = Arc::new(writer::Writer::new(writer)?);
        checkpointer::start(path, &writer, stop.clone())?;
        let point_readers = readers.split_off(READERS);
        Ok(Sqlite {
            cursor_key,
            path: path.to_path_buf(),
            serial: serial::Serial::new(writer.clone()),
            writer,
            readers,
            point_readers,
            next_reader: AtomicUsize::new(0),
            stop_checkpointer: stop,
        })
    }

    fn read_from<T, E: From<StoreError>>(
        &self,
        pool: &[Mutex<Connection>],
        scope: ReadScope,
        f: impl FnOnce(&dyn Conn) -> Result<T, E>,
    ) -> Result<T, E> {
        if writer::holding_open() {
            // Inside `batched`: this thread's writes are not committed yet; read them.
            return self.writer.read_own(|c| f(c));
        }
        let start = self.next_reader.fetch_add(1, Ordering::Relaxed);
        // Take the first free reader, else wait on the one this call was assigned.
        let c = match (0..pool.len()).find_map(|i| pool[(start + i) % pool.len()].try_lock().ok()) {
            Some(c) => c,
            None => without_stalling_workers(|| crate::sync::lock(&pool[start % pool.len()])),
        };
        match scope {
            ReadScope::Transaction => in_snapshot(&c, f),
            ReadScope::Statement => {
                end_abandoned_read(&c)?;
                f(&*c)
            }
        }
    }

    /// Creates the server's indexes that do not exist yet, and refuses a newly unique attribute
    /// whose stored values are not unique.
    fn create_indexes(
        c: &Connection,
        server: &ServerModel,
        before: Option<&ServerModel>,
    ) -> Result<(), StoreError> {
        let specs = plan::indexes_for(server, plan::Dialect::Sqlite);
        for spec in &specs {
            c.execute_batch(&plan::create_sql(
                plan::Dialect::Sqlite,
                &spec.name,
                &spec.expression,
            ))?;
        }
        refuse_duplicates(server, before, &specs, plan::Dialect::Sqlite, |q| {
            Ok(c.query_row(q, [], |r| r.get(0)).optional()?)
        })
    }

    /// Drops the per-server partial indexes of earlier versions (see `plan`): each of them
    /// slowed every write, whichever server it was for.
    fn drop_legacy_indexes(c: &Connection) -> Result<(), StoreError> {
        let legacy: Vec<String> = c
            .prepare("SELECT name, sql FROM sqlite_master WHERE type='index' AND tbl_name='resources' AND sql IS NOT NULL")?
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?
            .filter_map(Result::ok)
            .filter(|(name, sql)| plan::is_legacy_index(name, sql))
            .map(|(name, _)| name)
            .collect();
        for name in legacy {
            c.execute_batch(&format!(
                "DROP INDEX IF EXISTS \"{}\"",
                name.replace('"', "")
            ))?;
        }
        Ok(())
    }
}

fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _)
        if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE)
}

/// Refuses `r` when another resource of its server and type holds the value of one of its
/// type's unique attributes (see `plan` for why the store, not an index, checks this). Exact:
/// it runs in the write's transaction, and a server's writes are serialised on both backends.
/// `taken` runs one of [`plan::cached_unique_checks`] with (server id, resource type, id, doc).
fn check_unique(
    server: &ServerModel,
    r: &Row,
    dialect: plan::Dialect,
    mut taken: impl FnMut(&str) -> Result<bool, StoreError>,
) -> Result<(), StoreError> {
    let Some(rt) = server.by_name(&r.resource_type) else {
        return Ok(());
    };
    for (attribute, sql) in plan::cached_unique_checks(rt, dialect).iter() {
        if taken(sql)? {
            return Err(StoreError::Unique {
                attribute: Some(attribute.clone()),
            });
        }
    }
    Ok(())
}

/// Refuses a plan whose unique attributes the stored data already violates, naming the
/// resources that share a value. Only attributes that `before` (the server as served until
/// now) did not already make unique, with the same expression, are checked. `first_ids` runs
/// one of [`plan::duplicates_sql`].
fn refuse_duplicates(
    server: &ServerModel,
    before: Option<&ServerModel>,
    specs: &[IndexSpec],
    dialect: plan::Dialect,
    mut first_ids: impl FnMut(&str) -> Result<Option<String>, StoreError>,
) -> Result<(), StoreError> {
    let enforced: Vec<IndexSpec> = before.map_or_else(Vec::new, |b| {
        let mut specs = plan::indexes_for(b, dialect);
        specs.retain(|s| s.unique);
        specs
    });
    let newly_unique = |s: &&IndexSpec| {
        s.unique
            && !enforced
                .iter()
                .any(|e| e.resource_type == s.resource_type && e.expression == s.expression)
    };
    for spec in specs.iter().filter(newly_unique) {
        if let Some(ids) = first_ids(&plan::duplicates_sql(dialect, spec, &server.id))? {
            return Err(StoreError::index_conflict(spec, &ids));
        }
    }
    Ok(())
}

/// [`check_unique`] on a SQLite connection.
fn check_unique_here(c: &Connection, server: &ServerModel, r: &Row) -> Result<(), StoreError> {
    check_unique(server, r, plan::Dialect::Sqlite, |sql| {
        let params = params![server.id, r.resource_type, r.id, r.doc];
        Ok(c.prepare_cached(sql)?.query_row(params, |x| x.get(0))?)
    })
}

/// Counts a resource added to its server and type (`resource_counts`, in the write's
/// transaction). A new count row starts its generation at random, so that a row made again (a
/// new database at the same path) never looks like an old one to list paging's anchors.
fn count_added(c: &Connection, server_id: &str, resource_type: &str) -> Result<(), StoreError> {
    // An UPDATE of one row, then an INSERT the first time: an upsert would make SQLite keep a
    // statement journal (see migration V12).
    let bumped = c
        .prepare_cached(
            "UPDATE resource_counts SET n = n + 1 WHERE server_id=?1 AND resource_type=?2",
        )?
        .execute(params![server_id, resource_type])?;
    if bumped == 0 {
        c.prepare_cached(
            "INSERT INTO resource_counts (server_id, resource_type, n, generation) VALUES (?1, ?2, 1, random())",
        )?
        .execute(params![server_id, resource_type])?;
    }
    Ok(())
}

/// Counts one resource of a server and type removed, or (with `None`) every resource of the
/// server, and moves the generations on: positions in insertion order may have changed.
fn count_removed(
    c: &Connection,
    server_id: &str,
    resource_type: Option<&str>,
) -> Result<(), StoreError> {
    match resource_type {
        Some(t) => c
            .prepare_cached("UPDATE resource_counts SET n = n - 1, generation = generation + 1 WHERE server_id=?1 AND resource_type=?2")?
            .execute(params![server_id, t])?,
        None => c
            .prepare_cached("UPDATE resource_counts SET n = 0, generation = generation + 1 WHERE server_id=?1")?
            .execute(params![server_id])?,
    };
    Ok(())
}

/// A write refused by a unique index (only `resources_by_id`: two resources with one id).
fn on_unique(e: rusqlite::Error) -> StoreError {
    match is_unique_violation(&e) {
        true => StoreError::Unique { attribute: None },
        false => e.into(),
    }
}

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Row> {
    row_at(r, 0)
}

/// A [`Row`] from the columns of [`ROW_COLUMNS`], the first at column `at`.
fn row_at(r: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<Row> {
    Ok(Row {
        id: r.get(at)?,
        resource_type: r.get(at + 1)?,
        version: r.get(at + 2)?,
        created: r.get(at + 3)?,
        last_modified: r.get(at + 4)?,
        doc: r.get(at + 5)?,
    })
}

/// A resource read with its groups ([`Conn::get_with_groups`]), each group with its
/// membership's place: the groups in the order the member joined them, as `groups_of` gives.
fn with_groups_in_join_order(
    found: Option<Row>,
    mut groups: Vec<(i64, GroupRef)>,
) -> Option<(Row, Vec<GroupRef>)> {
    groups.sort_by_key(|(seq, _)| *seq);
    found.map(|row| (row, groups.into_iter().map(|(_, g)| g).collect()))
}

/// Prepares `sql` (cached) with `$SERVER` replaced by the server id as an SQL literal, as the
/// filter compiler writes its scope ([`sql::scope`]): the statements of a server are cached
/// as that server's.
fn prepare<'c>(
    c: &'c Connection,
    sql: &str,
    server_id: &str,
) -> rusqlite::Result<CachedStatement<'c>> {
    c.prepare_cached(&sql::with_server(sql, server_id))
}

/// A connection that writes: its commits reach the WAL in one system call each (see
/// [`wal_appends`]).
fn open_writing(path: &Path) -> rusqlite::Result<Connection> {
    let vfs = wal_appends::register()?;
    Connection::open_with_flags_and_vfs(path, rusqlite::OpenFlags::default(), vfs)
}

/// How a reader's statements see the database.
enum ReadScope {
    /// In one read transaction: they see one snapshot (a resource and its groups agree), and
    /// the WAL read lock is taken once, not once per statement.
    Transaction,
    /// The one statement's own.
    Statement,
}

/// Runs `f`'s statements in one read transaction ([`ReadScope::Transaction`]).
fn in_snapshot<T, E: From<StoreError>>(
    c: &Connection,
    f: impl FnOnce(&dyn Conn) -> Result<T, E>,
) -> Result<T, E> {
    let run = |sql: &str| c.prepare_cached(sql).and_then(|mut st| st.execute([]));
    end_abandoned_read(c)?;
    run("BEGIN").map_err(StoreError::from)?;
    let out = f(c);
    // A read transaction has nothing to keep: ending it cannot lose work.
    if let Err(e) = run("COMMIT") {
        tracing::warn!(error = %e, "ending a read transaction failed");
        let _ = run("ROLLBACK");
    }
    out
}

/// Rolls back the transaction a read that panicked left open: its snapshot must not be reused.
fn end_abandoned_read(c: &Connection) -> Result<(), StoreError> {
    if !c.is_autocommit() {
        c.prepare_cached("ROLLBACK")?.execute([])?;
    }
    Ok(())
}

/// Runs `wait` (a wait for a busy reader) so that an async worker thread calling it does not
/// stall the tasks queued behind it: on tokio's multi-thread runtime the worker first hands
/// them to another thread (`block_in_place`). Elsewhere (blocking pool, plain threads) it just
/// waits.
fn without_stalling_workers<T>(wait: impl FnOnce() -> T) -> T {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(h) if h.runtime_flavor() == RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(wait)
        }
        _ => wait(),
    }
}

/// (member id, display, type) → [`Member`].
fn member_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Member> {
    Ok(Member {
        value: r.get(0)?,
        display: r.get(1)?,
        member_type: r.get(2)?,
    })
}

/// Resource counts of a server by resource type name (zero types are absent).
pub fn count_map(store: &Store, server_id: &str) -> std::collections::HashMap<String, i64> {
    store
        .read_point(|c| c.counts(server_id))
        .unwrap_or_default()
        .into_iter()
        .collect()
}

/// A named snapshot of a server's data (an export).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Snapshot {
    pub name: String,
    pub taken: String,
}

/// Where a cursor page ends: the last row's sort key (`Null` when it has no value or the list
/// is unsorted) and its insertion sequence, which breaks ties.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Keyset {
    pub key: serde_json::Value,
    pub seq: i64,
}

/// An `events` row as `jti, created, claims, state, error`.
fn event_record(r: &rusqlite::Row<'_>) -> rusqlite::Result<EventRecord> {
    Ok(EventRecord {
        jti: r.get(0)?,
        created: r.get(1)?,
        claims: r.get(2)?,
        state: r.get(3)?,
        error: r.get(4)?,
    })
}

/// A push as `jti, receiver, state, attempts, last_error`.
fn push_record(r: &rusqlite::Row<'_>) -> rusqlite::Result<PushRecord> {
    Ok(PushRecord {
        jti: r.get(0)?,
        receiver: r.get(1)?,
        state: r.get(2)?,
        attempts: r.get(3)?,
        error: r.get(4)?,
    })
}

/// An OAuth grant a server issued: what it is, to which client, until when.
#[derive(Debug, Clone, PartialEq)]
pub struct Grant {
    /// `consent`, `code`, `access` or `refresh`.
    pub kind: String,
    pub client_id: String,
    /// Unix seconds.
    pub expires_at: i64,
    /// A code's or consent's redirect URI and state (JSON).
    pub detail: Option<String>,
}

/// Where a cursor page starts: after a keyset, or before it (the page before, nearest row
/// first).
#[derive(Debug, Clone, Copy)]
pub enum KeysetFrom<'a> {
    After(&'a Keyset),
    Before(&'a Keyset),
}

/// A push of one SET to one receiver, due now.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub id: i64,
    pub server_id: String,
    pub jti: String,
    pub claims: String,
    pub receiver: String,
    pub attempts: i64,
}

/// Where the push of one event to one receiver stands.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PushRecord {
    pub jti: String,
    pub receiver: String,
    /// `pending`, `delivered` or `failed`.
    pub state: String,
    pub attempts: i64,
    pub error: Option<String>,
}

/// One recorded event and where its delivery stands.
#[derive(Debug, Clone, serde::Serialize)]
pub struct EventRecord {
    pub jti: String,
    pub created: String,
    /// The SET claims (JSON).
    pub claims: String,
    /// `pending`, `acknowledged` or `failed`.
    pub state: String,
    pub error: Option<String>,
}

/// A search over one resource type, checked by the model.
#[derive(Debug, Default)]
pub struct Search<'a> {
    pub query: Option<crate::model::query::Query<'a>>,
    pub sort: Option<crate::model::query::Sort<'a>>,
}

/// One connection's view of the store (a reader, or the writer inside a transaction): every
/// query the engine, data commands and harness need. A storage backend implements it; the
/// SQLite implementation follows.
pub trait Conn {
    /// A server's recorded requests, newest first.
    fn log_entries(
        &self,
        server: &str,
        filter: &request_log::LogFilter<'_>,
    ) -> Result<Vec<request_log::LogText>, StoreError>;

    /// One recorded request by sequence number.
    fn log_entry(&self, server: &str, seq: i64)
    -> Result<Option<request_log::LogText>, StoreError>;

    /// Deletes a server's recorded requests; returns how many there were.
    fn clear_log(&self, server: &str) -> Result<usize, StoreError>;

    /// Reads one resource of a server by id (any resource type).
    fn get(&self, server_id: &str, id: &str) -> Result<Option<Row>, StoreError>;

    /// [`Conn::get`] and the resource's [`Conn::groups_of`] together. SQLite reads both in one
    /// statement, which sees one snapshot on its own (see [`Store::read_single`]).
    fn get_with_groups(
        &self,
        server_id: &str,
        id: &str,
    ) -> Result<Option<(Row, Vec<GroupRef>)>, StoreError> {
        let Some(row) = self.get(server_id, id)? else {
            return Ok(None);
        };
        Ok(Some((row, self.groups_of(server_id, id)?)))
    }

    /// Stores a new resource (refused when another resource holds one of its unique values).
    fn insert(&self, server: &ServerModel, r: &Row) -> Result<(), StoreError>;

    /// Replaces a stored resource's document, version and modification time (refused when
    /// another resource holds one of its unique values; not checked when `unique` says the
    /// values are those already stored).
    fn update(&self, server: &ServerModel, r: &Row, unique: UniqueValues)
    -> Result<(), StoreError>;

    /// Deletes a resource and every membership it takes part in (as group or as member).
    fn delete(&self, server_id: &str, id: &str) -> Result<bool, StoreError>;

    /// Whether `id` exists on the server with one of `resource_types` (any type when empty).
    fn exists(
        &self,
        server_id: &str,
        id: &str,
        resource_types: &[&str],
    ) -> Result<bool, StoreError>;

    /// Members of a group in the order they were added; `member_type` falls back to the
    /// member's actual resource type.
    fn members_of(&self, server_id: &str, group_id: &str) -> Result<Vec<Member>, StoreError>;

    /// A group's members exactly as stored (`member_type` as the client sent it), in order.
    fn stored_members(&self, server_id: &str, group_id: &str) -> Result<Vec<Member>, StoreError>;

    /// One membership as stored (`member_type` as the client sent it).
    fn member(
        &self,
        server_id: &str,
        group_id: &str,
        member_id: &str,
    ) -> Result<Option<Member>, StoreError>;

    /// Removes every member of a group; returns how many there were.
    fn remove_all_members(&self, server_id: &str, group_id: &str) -> Result<usize, StoreError>;

    /// The id of a resource of `resource_type` whose string attribute `attribute` (or, with `sub`,
    /// some value of the multi-valued `attribute`) equals `value` case-insensitively.
    fn find_id_by_value(
        &self,
        server_id: &str,
        resource_type: &str,
        attribute: &str,
        sub: Option<&str>,
        value: &str,
    ) -> Result<Option<String>, StoreError>;

    /// Groups that have `member_id` as a direct member.
    fn groups_of(&self, server_id: &str, member_id: &str) -> Result<Vec<GroupRef>, StoreError>;

    /// Groups of each of `member_ids` (one query for a whole page of resources).
    fn groups_of_many(
        &self,
        server_id: &str,
        member_ids: &[&str],
    ) -> Result<std::collections::HashMap<String, Vec<GroupRef>>, StoreError>;

    /// Adds (or updates display/type of) members and removes others, one row each.
    fn change_members(
        &self,
        server_id: &str,
        group_id: &str,
        upsert: &[Member],
        remove: &[String],
    ) -> Result<(), StoreError>;

    /// One page of a resource type's resources that match `search`, in its order (then
    /// insertion order), with the number that match.
    fn list(
        &self,
        server_id: &str,
        resource_type: &str,
        search: &Search<'_>,
        offset: usize,
        limit: usize,
    ) -> Result<(usize, Vec<Row>), StoreError>;

    /// Up to `limit` resources matching `search` that come after a keyset in its order (from
    /// the start without one), or before it (nearest first), each with its keyset, and the
    /// number that match in all. The order is total (insertion sequence last), so walking by
    /// keyset never repeats a resource and never skips one that exists for the whole walk
    /// (RFC 9865 §2).
    fn page_from(
        &self,
        server_id: &str,
        resource_type: &str,
        search: &Search<'_>,
        from: Option<KeysetFrom<'_>>,
        limit: usize,
    ) -> Result<(usize, Vec<(Row, Keyset)>), StoreError>;

    /// Whether resource `id` satisfies a checked filter (a data view).
    fn satisfies(
        &self,
        server_id: &str,
        id: &str,
        query: &crate::model::query::Query<'_>,
    ) -> Result<bool, StoreError>;

    /// Every resource of a server in insertion order (exports).
    fn all_rows(&self, server_id: &str) -> Result<Vec<Row>, StoreError>;

    /// Every membership of a server as (group id, member), in insertion order (exports).
    fn all_memberships(&self, server_id: &str) -> Result<Vec<(String, Member)>, StoreError>;

    /// Deletes every resource and membership of a server; returns how many resources there were.
    fn delete_server(&self, server_id: &str) -> Result<usize, StoreError>;

    /// Records a change's SET claims (inside the change's transaction).
    fn record_event(
        &self,
        server_id: &str,
        jti: &str,
        created: &str,
        claims: &str,
        receivers: &[String],
    ) -> Result<(), StoreError>;

    /// Push deliveries due at `now_ms` (Unix milliseconds), oldest first.
    fn due_deliveries(&self, now_ms: i64, limit: usize) -> Result<Vec<Delivery>, StoreError>;

    /// The outcome of one push attempt: `next_at` set for a retry, else the final state.
    fn delivery_attempted(
        &self,
        id: i64,
        state: &str,
        status: Option<u16>,
        error: Option<&str>,
        next_at_ms: i64,
    ) -> Result<(), StoreError>;

    /// Push deliveries of a server's latest `limit` events (those `event_log` lists), oldest
    /// first.
    fn deliveries(&self, server_id: &str, limit: usize) -> Result<Vec<PushRecord>, StoreError>;

    /// Up to `max` unacknowledged events, oldest first, as (jti, claims JSON), and whether
    /// more wait.
    fn pending_events(
        &self,
        server_id: &str,
        max: usize,
    ) -> Result<(Vec<(String, String)>, bool), StoreError>;

    /// The events of transaction `txn` and of its Bulk operations (`txn:0`, `txn:1`, …),
    /// oldest first, as (jti, claims JSON): how a client finds an asynchronous request's
    /// completion (RFC 9967 §2.5.1).
    fn events_of_txn(
        &self,
        server_id: &str,
        txn: &str,
    ) -> Result<Vec<(String, String)>, StoreError>;

    /// Marks events acknowledged, or failed with the receiver's error (RFC 8936 `setErrs`).
    fn settle_events(
        &self,
        server_id: &str,
        acked: &[String],
        failed: &[(String, String)],
    ) -> Result<(), StoreError>;

    /// Keeps an OAuth grant (by the digest of its secret), dropping long-expired ones.
    fn put_grant(&self, server_id: &str, digest: &str, grant: &Grant) -> Result<(), StoreError>;

    /// The grant of `kind` with this digest, if any (expired ones included: the caller says
    /// "expired"); `take` also removes it (codes and consents are single-use).
    fn grant(
        &self,
        server_id: &str,
        digest: &str,
        kind: &str,
        take: bool,
    ) -> Result<Option<Grant>, StoreError>;

    /// The latest events of a server, newest first, with their delivery state.
    fn event_log(&self, server_id: &str, limit: usize) -> Result<Vec<EventRecord>, StoreError>;

    /// The events named by `jtis` (those still kept), in that order, and their pushes: what
    /// one request raised, for the request inspector.
    fn events_named(
        &self,
        server_id: &str,
        jtis: &[String],
    ) -> Result<(Vec<EventRecord>, Vec<PushRecord>), StoreError>;

    /// Resource counts of every server id that has data, defined or not.
    fn all_counts(&self) -> Result<Vec<(String, String, i64)>, StoreError>;

    /// Number of resources per resource type of a server (for `/healthz`), from the
    /// counts kept with every write: a lookup, not a scan.
    fn counts(&self, server_id: &str) -> Result<Vec<(String, i64)>, StoreError>;

    /// Lower-cased `userName`s of a server's resources of `resource_type` (seeding avoids them).
    fn user_names(
        &self,
        server_id: &str,
        resource_type: &str,
    ) -> Result<std::collections::HashSet<String>, StoreError>;

    /// Stores (or replaces) snapshot `name` of a server.
    fn put_snapshot(
        &self,
        server_id: &str,
        name: &str,
        taken: &str,
        data: &str,
    ) -> Result<(), StoreError>;

    /// A server's snapshots by name.
    fn snapshots(&self, server_id: &str) -> Result<Vec<Snapshot>, StoreError>;

    /// The data of snapshot `name`, if it exists.
    fn snapshot_data(&self, server_id: &str, name: &str) -> Result<Option<String>, StoreError>;

    /// Deletes snapshot `name` (every snapshot of the server with None); returns how many went.
    fn delete_snapshots(&self, server_id: &str, name: Option<&str>) -> Result<usize, StoreError>;

    /// Keeps the definition of a server created through the admin API; false when one with
    /// this id is kept already (another replica created it).
    fn put_ephemeral(&self, id: &str, definition: &str, created: &str) -> Result<bool, StoreError>;

    /// Forgets an admin-API server's definition.
    fn delete_ephemeral(&self, id: &str) -> Result<(), StoreError>;

    /// Every kept admin-API server as (id, definition), oldest first.
    fn ephemeral_servers(&self) -> Result<Vec<(String, String)>, StoreError>;

    /// Keeps (Some) or drops (None) an admin-API override of a server: `kind` is `faults` or
    /// `rate-limits`, `value` the JSON the API took.
    fn put_override(
        &self,
        server_id: &str,
        kind: &str,
        value: Option<&str>,
    ) -> Result<(), StoreError>;

    /// Every kept override as (server id, kind, JSON).
    fn overrides(&self) -> Result<Vec<(String, String, String)>, StoreError>;
}

impl Conn for Connection {
    fn log_entries(
        &self,
        server: &str,
        filter: &request_log::LogFilter<'_>,
    ) -> Result<Vec<request_log::LogText>, StoreError> {
        request_log::read(self, server, filter)
    }

    fn log_entry(
        &self,
        server: &str,
        seq: i64,
    ) -> Result<Option<request_log::LogText>, StoreError> {
        request_log::read_one(self, server, seq)
    }

    fn clear_log(&self, server: &str) -> Result<usize, StoreError> {
        request_log::clear(self, server)
    }

    fn get(&self, server_id: &str, id: &str) -> Result<Option<Row>, StoreError> {
        let c = self;
        let mut st = prepare(c, ROW_BY_ID, server_id)?;
        Ok(st.query_row(params![id], row).optional()?)
    }

    fn get_with_groups(
        &self,
        server_id: &str,
        id: &str,
    ) -> Result<Option<(Row, Vec<GroupRef>)>, StoreError> {
        let mut st = prepare(self, ROW_AND_GROUPS_BY_ID, server_id)?;
        let mut rows = st.query(params![id])?;
        let (mut found, mut groups) = (None, Vec::new());
        while let Some(r) = rows.next()? {
            match r.get::<_, Option<i64>>(0)? {
                None => found = Some(row_at(r, 1)?),
                Some(seq) => groups.push((
                    seq,
                    GroupRef {
                        id: r.get(1)?,
                        resource_type: r.get(2)?,
                        display: r.get(6)?,
                    },
                )),
            }
        }
        Ok(with_groups_in_join_order(found, groups))
    }

    fn insert(&self, server: &ServerModel, r: &Row) -> Result<(), StoreError> {
        // Checked by a statement of its own: `INSERT … SELECT … WHERE NOT EXISTS` may insert
        // several rows as far as SQLite knows, so it keeps a statement journal and a temporary
        // table, which cost a create more than the check (measured: 10 µs against 4).
        check_unique_here(self, server, r)?;
        self.prepare_cached(
            "INSERT INTO resources (server_id, resource_type, id, version, created, last_modified, doc) VALUES (?1,?2,?3,?4,?5,?6,?7)",
        )?
        .execute(params![
            server.id,
            r.resource_type,
            r.id,
            r.version,
            r.created,
            r.last_modified,
            r.doc
        ])
        .map_err(on_unique)?;
        count_added(self, &server.id, &r.resource_type)
    }

    fn update(
        &self,
        server: &ServerModel,
        r: &Row,
        unique: UniqueValues,
    ) -> Result<(), StoreError> {
        if unique == UniqueValues::MayChange {
            check_unique_here(self, server, r)?;
        }
        self.prepare_cached(
            "UPDATE resources SET version=?2, last_modified=?3, doc=?4 WHERE server_id=?5 AND id=?1",
        )?
        .execute(params![r.id, r.version, r.last_modified, r.doc, server.id])?;
        Ok(())
    }

    fn delete(&self, server_id: &str, id: &str) -> Result<bool, StoreError> {
        let tx = self;
        let deleted: Option<String> = prepare(
            tx,
            "DELETE FROM resources WHERE server_id=$SERVER AND id=?1 RETURNING resource_type",
            server_id,
        )?
        .query_row(params![id], |r| r.get(0))
        .optional()?;
        if let Some(resource_type) = &deleted {
            count_removed(tx, server_id, Some(resource_type))?;
        }
        prepare(
            tx,
            "DELETE FROM memberships WHERE server_id=$SERVER AND (group_id=?1 OR member_id=?1)",
            server_id,
        )?
        .execute(params![id])?;
        Ok(deleted.is_some())
    }

    fn exists(
        &self,
        server_id: &str,
        id: &str,
        resource_types: &[&str],
    ) -> Result<bool, StoreError> {
        let c = self;
        let mut st = prepare(
            c,
            "SELECT resource_type FROM resources WHERE server_id=$SERVER AND id=?1",
            server_id,
        )?;
        let rt: Option<String> = st.query_row(params![id], |r| r.get(0)).optional()?;
        Ok(rt
            .is_some_and(|rt| resource_types.is_empty() || resource_types.iter().any(|t| *t == rt)))
    }

    fn members_of(&self, server_id: &str, group_id: &str) -> Result<Vec<Member>, StoreError> {
        let c = self;
        let mut st = prepare(
            c,
            "SELECT m.member_id, m.display, coalesce(m.member_type, r.resource_type) FROM memberships m \
             LEFT JOIN resources r ON r.server_id=$SERVER AND r.id=m.member_id \
             WHERE m.server_id=$SERVER AND m.group_id=?1 ORDER BY m.seq",
            server_id,
        )?;
        let rows = st.query_map(params![group_id], member_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn stored_members(&self, server_id: &str, group_id: &str) -> Result<Vec<Member>, StoreError> {
        let c = self;
        let mut st = prepare(
            c,
            "SELECT member_id, display, member_type FROM memberships WHERE server_id=$SERVER AND group_id=?1 ORDER BY seq",
            server_id,
        )?;
        let rows = st.query_map(params![group_id], member_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn member(
        &self,
        server_id: &str,
        group_id: &str,
        member_id: &str,
    ) -> Result<Option<Member>, StoreError> {
        let c = self;
        let mut st = prepare(
            c,
            "SELECT member_id, display, member_type FROM memberships WHERE server_id=$SERVER AND group_id=?1 AND member_id=?2",
            server_id,
        )?;
        Ok(st
            .query_row(params![group_id, member_id], member_row)
            .optional()?)
    }

    fn remove_all_members(&self, server_id: &str, group_id: &str) -> Result<usize, StoreError> {
        let c = self;
        Ok(prepare(
            c,
            "DELETE FROM memberships WHERE server_id=$SERVER AND group_id=?1",
            server_id,
        )?
        .execute(params![group_id])?)
    }

    fn find_id_by_value(
        &self,
        server_id: &str,
        resource_type: &str,
        attribute: &str,
        sub: Option<&str>,
        value: &str,
    ) -> Result<Option<String>, StoreError> {
        let c = self;
        let scope = sql::scope("r", server_id, resource_type);
        let q = match sub {
            None => format!(
                "SELECT r.id FROM resources r WHERE {scope} AND {} = lower(?1) LIMIT 1",
                sql::extract("r.doc", &sql::json_path(None, attribute, None), false)
            ),
            Some(sub) => format!(
                "SELECT r.id FROM resources r WHERE {scope} AND EXISTS (SELECT 1 FROM json_each(r.doc, {}) e WHERE lower(json_extract(e.value, {})) = lower(?1)) LIMIT 1",
                sql::literal(&sql::json_path(None, attribute, None)),
                sql::literal(&format!("$.\"{sub}\""))
            ),
        };
        Ok(c.prepare_cached(&q)?
            .query_row(params![value], |r| r.get(0))
            .optional()?)
    }

    fn groups_of(&self, server_id: &str, member_id: &str) -> Result<Vec<GroupRef>, StoreError> {
        let c = self;
        let mut st = prepare(c, GROUPS_OF, server_id)?;
        let rows = st.query_map(params![member_id], |r| {
            Ok(GroupRef {
                id: r.get(0)?,
                resource_type: r.get(1)?,
                display: r.get(2)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn groups_of_many(
        &self,
        server_id: &str,
        member_ids: &[&str],
    ) -> Result<std::collections::HashMap<String, Vec<GroupRef>>, StoreError> {
        let c = self;
        let mut out: std::collections::HashMap<String, Vec<GroupRef>> =
            std::collections::HashMap::new();
        if member_ids.is_empty() {
            return Ok(out);
        }
        let ids = serde_json::to_string(member_ids).unwrap_or_else(|_| "[]".into());
        let mut st = prepare(c, GROUPS_OF_MANY, server_id)?;
        let mut rows = st.query(params![ids])?;
        while let Some(r) = rows.next()? {
            let member: String = r.get(0)?;
            out.entry(member).or_default().push(GroupRef {
                id: r.get(1)?,
                resource_type: r.get(2)?,
                display: r.get(3)?,
            });
        }
        Ok(out)
    }

    fn change_members(
        &self,
        server_id: &str,
        group_id: &str,
        upsert: &[Member],
        remove: &[String],
    ) -> Result<(), StoreError> {
        let tx = self;
        let mut del = prepare(
            tx,
            "DELETE FROM memberships WHERE server_id=$SERVER AND group_id=?1 AND member_id=?2",
            server_id,
        )?;
        for id in remove {
            del.execute(params![group_id, id])?;
        }
        let mut ins = tx.prepare_cached(
            "INSERT INTO memberships (server_id, group_id, member_id, member_type, display) VALUES (?1,?2,?3,?4,?5) \
             ON CONFLICT (server_id, group_id, member_id) DO UPDATE SET member_type=excluded.member_type, display=excluded.display",
        )?;
        for m in upsert {
            ins.execute(params![
                server_id,
                group_id,
                m.value,
                m.member_type,
                m.display
            ])?;
        }
        Ok(())
    }

    fn list(
        &self,
        server_id: &str,
        resource_type: &str,
        search: &Search<'_>,
        offset: usize,
        limit: usize,
    ) -> Result<(usize, Vec<Row>), StoreError> {
        let scope = sql::scope("r", server_id, resource_type);
        let compiled = search.query.as_ref().map(filter::emit);
        let (where_sql, params) = match &compiled {
            Some(c) => (Some(c.clause.as_str()), c.params.as_slice()),
            None => (None, &[][..]),
        };
        let order_by = search.sort.as_ref().map(sort::order_by);
        let order_by = order_by.as_deref();
        let c = self;
        let order = match order_by {
            Some(o) => format!("{o}, r.seq"),
            None => "r.seq".to_string(),
        };
        let n = params.len();
        let mut bound = params.to_vec();
        bound.push((limit as i64).into());
        bound.push((offset as i64).into());
        let Some(w) = where_sql else {
            // Unfiltered: the count is kept with each write (`count_added`), the page walks an
            // index.
            let count_sql = format!("SELECT n, generation FROM resource_counts r WHERE {scope}");
            let (total, generation): (i64, i64) = c
                .prepare_cached(&count_sql)?
                .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?
                .unwrap_or((0, 0));
            if limit == 0 || offset >= total as usize {
                return Ok((total as usize, Vec::new()));
            }
            // In insertion order a deep page starts from a remembered position near it.
            let (from, skip) = match order_by {
                None if offset >= anchors::STRIDE => {
                    anchors::start_of(c, &scope, server_id, resource_type, generation, offset)?
                }
                _ => None,
            }
            .unwrap_or((i64::MIN, offset));
            let page_sql = format!(
                "SELECT {ROW_COLUMNS} FROM resources r WHERE {scope} AND r.seq >= ?3 ORDER BY {order} LIMIT ?1 OFFSET ?2"
            );
            let rows = c
                .prepare_cached(&page_sql)?
                .query_map(params![limit as i64, skip as i64, from], row)?
                .collect::<Result<_, _>>()?;
            return Ok((total as usize, rows));
        };
        if offset == 0 && search.sort.is_none() && limit > 0 {
            // The usual IdP lookup (`userName eq "…"`, 0 or 1 match): one query, with no ORDER
            // BY so the planner is free to use the attribute's index (ordering by seq made it
            // walk the seq index instead). A page that is not full holds every match, so it is
            // also the count and is put in order here; a full one goes on to the counted path
            // (without an order, a full page stops after `limit` matches).
            let direct = format!(
                "SELECT {ROW_COLUMNS}, r.seq FROM resources r WHERE {scope} AND ({w}) LIMIT ?{}",
                n + 1
            );
            let mut rows: Vec<(i64, Row)> = c
                .prepare_cached(&direct)?
                .query_map(rusqlite::params_from_iter(&bound[..=n]), |r| {
                    Ok((r.get(6)?, row(r)?))
                })?
                .collect::<Result<_, _>>()?;
            if rows.len() < limit {
                rows.sort_by_key(|(seq, _)| *seq);
                let rows: Vec<Row> = rows.into_iter().map(|(_, r)| r).collect();
                return Ok((rows.len(), rows));
            }
        }
        // Filtered: evaluate the filter once. The matching row ids are materialised (not the
        // documents), counted, and the page is read from them.
        let matches = format!(
            "WITH m AS MATERIALIZED (SELECT r.seq AS seq FROM resources r WHERE {scope} AND ({w}))"
        );
        let count_sql = format!("{matches} SELECT count(*) FROM m");
        if limit == 0 {
            let total: i64 = c
                .prepare_cached(&count_sql)?
                .query_row(rusqlite::params_from_iter(params), |r| r.get(0))?;
            return Ok((total as usize, Vec::new()));
        }
        let page_sql = format!(
            "{matches} SELECT {ROW_COLUMNS}, (SELECT count(*) FROM m) FROM m JOIN resources r ON r.seq = m.seq ORDER BY {order} LIMIT ?{} OFFSET ?{}",
            n + 1,
            n + 2
        );
        let mut total = None;
        let mut rows = Vec::new();
        {
            let mut st = c.prepare_cached(&page_sql)?;
            let mut it = st.query(rusqlite::params_from_iter(&bound))?;
            while let Some(r) = it.next()? {
                total = Some(r.get::<_, i64>(6)?);
                rows.push(row(r)?);
            }
        }
        let total = match total {
            Some(t) => t,
            // The page is past the end: count separately.
            None => c
                .prepare_cached(&count_sql)?
                .query_row(rusqlite::params_from_iter(params), |r| r.get(0))?,
        };
        Ok((total as usize, rows))
    }

    fn page_from(
        &self,
        server_id: &str,
        resource_type: &str,
        search: &Search<'_>,
        from: Option<KeysetFrom<'_>>,
        limit: usize,
    ) -> Result<(usize, Vec<(Row, Keyset)>), StoreError> {
        let (total, _) = self.list(server_id, resource_type, search, 0, 0)?;
        let scope = sql::scope("r", server_id, resource_type);
        let compiled = search.query.as_ref().map(filter::emit).unwrap_or_default();
        let mut params = compiled.params;
        let filter = if compiled.clause.is_empty() {
            "1".to_string()
        } else {
            compiled.clause
        };
        let backward = matches!(from, Some(KeysetFrom::Before(_)));
        let (key_expr, order) = sort::keyset_order(search.sort.as_ref(), backward);
        let keyset = match from {
            None => "1".to_string(),
            Some(KeysetFrom::After(k) | KeysetFrom::Before(k)) => {
                let descending = search.sort.as_ref().is_some_and(|s| s.descending);
                sort::after(&key_expr, descending, backward, k, &mut params)
            }
        };
        params.push((limit as i64).into());
        let q = format!(
            "SELECT {ROW_COLUMNS}, r.seq, {key_expr} FROM resources r WHERE {scope} AND ({filter}) AND ({keyset}) ORDER BY {order} LIMIT ?{}",
            params.len()
        );
        let mut st = self.prepare_cached(&q)?;
        let rows = st
            .query_map(rusqlite::params_from_iter(&params), |r| {
                let key = match r.get_ref(7)? {
                    rusqlite::types::ValueRef::Integer(i) => serde_json::json!(i),
                    rusqlite::types::ValueRef::Real(f) => serde_json::json!(f),
                    rusqlite::types::ValueRef::Text(t) => {
                        serde_json::Value::String(String::from_utf8_lossy(t).into_owned())
                    }
                    _ => serde_json::Value::Null,
                };
                Ok((
                    row(r)?,
                    Keyset {
                        key,
                        seq: r.get(6)?,
                    },
                ))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok((total, rows))
    }

    fn satisfies(
        &self,
        server_id: &str,
        id: &str,
        query: &crate::model::query::Query<'_>,
    ) -> Result<bool, StoreError> {
        let c = self;
        let filter::SqlFilter { clause, params } = filter::emit(query);
        let sql = format!(
            "SELECT EXISTS(SELECT 1 FROM resources r WHERE r.server_id=$SERVER AND r.id=?{} AND ({clause}))",
            params.len() + 1
        );
        let mut bound = params;
        bound.push(id.to_string().into());
        let mut st = prepare(c, &sql, server_id)?;
        Ok(st.query_row(rusqlite::params_from_iter(&bound), |r| r.get(0))?)
    }

    fn all_rows(&self, server_id: &str) -> Result<Vec<Row>, StoreError> {
        let c = self;
        let mut st = prepare(
            c,
            &format!(
                "SELECT {ROW_COLUMNS} FROM resources r WHERE r.server_id=$SERVER ORDER BY r.seq"
            ),
            server_id,
        )?;
        let rows = st.query_map([], row)?.collect::<Result<_, _>>()?;
        Ok(rows)
    }

    fn all_memberships(&self, server_id: &str) -> Result<Vec<(String, Member)>, StoreError> {
        let c = self;
        let mut st = prepare(
            c,
            "SELECT member_id, display, member_type, group_id FROM memberships WHERE server_id=$SERVER ORDER BY seq",
            server_id,
        )?;
        let rows = st
            .query_map([], |r| Ok((r.get(3)?, member_row(r)?)))?
            .collect::<Result<_, _>>()?;
        Ok(rows)
    }

    fn delete_server(&self, server_id: &str) -> Result<usize, StoreError> {
        let tx = self;
        prepare(
            tx,
            "DELETE FROM memberships WHERE server_id=$SERVER",
            server_id,
        )?
        .execute([])?;
        let n = prepare(
            tx,
            "DELETE FROM resources WHERE server_id=$SERVER",
            server_id,
        )?
        .execute([])?;
        count_removed(tx, server_id, None)?;
        tx.execute(
            "DELETE FROM event_deliveries WHERE event_seq IN (SELECT seq FROM events WHERE server_id=?1)",
            params![server_id],
        )?;
        tx.execute("DELETE FROM events WHERE server_id=?1", params![server_id])?;
        Ok(n)
    }

    fn record_event(
        &self,
        server_id: &str,
        jti: &str,
        created: &str,
        claims: &str,
        receivers: &[String],
    ) -> Result<(), StoreError> {
        self.prepare_cached(
            "INSERT INTO events (server_id, jti, created, claims) VALUES (?1, ?2, ?3, ?4)",
        )?
        .execute(params![server_id, jti, created, claims])?;
        let seq = self.last_insert_rowid();
        let mut st = self.prepare_cached(
            "INSERT INTO event_deliveries (event_seq, receiver, next_at) VALUES (?1, ?2, 0)",
        )?;
        for r in receivers {
            st.execute(params![seq, r])?;
        }
        Ok(())
    }

    fn due_deliveries(&self, now_ms: i64, limit: usize) -> Result<Vec<Delivery>, StoreError> {
        let mut st = self.prepare_cached(
            "SELECT d.id, e.server_id, e.jti, e.claims, d.receiver, d.attempts FROM event_deliveries d JOIN events e ON e.seq = d.event_seq WHERE d.state='pending' AND d.next_at <= ?1 ORDER BY d.next_at, d.id LIMIT ?2",
        )?;
        let rows = st
            .query_map(params![now_ms, limit as i64], |r| {
                Ok(Delivery {
                    id: r.get(0)?,
                    server_id: r.get(1)?,
                    jti: r.get(2)?,
                    claims: r.get(3)?,
                    receiver: r.get(4)?,
                    attempts: r.get(5)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    fn delivery_attempted(
        &self,
        id: i64,
        state: &str,
        status: Option<u16>,
        error: Option<&str>,
        next_at_ms: i64,
    ) -> Result<(), StoreError> {
        self.prepare_cached(
            "UPDATE event_deliveries SET state=?2, attempts=attempts+1, last_status=?3, last_error=?4, next_at=?5 WHERE id=?1",
        )?
        .execute(params![id, state, status, error, next_at_ms])?;
        Ok(())
    }

    fn deliveries(&self, server_id: &str, limit: usize) -> Result<Vec<PushRecord>, StoreError> {
        let mut st = self.prepare_cached(
            "SELECT e.jti, d.receiver, d.state, d.attempts, d.last_error FROM event_deliveries d JOIN events e ON e.seq = d.event_seq WHERE d.event_seq IN (SELECT seq FROM events WHERE server_id=?1 ORDER BY seq DESC LIMIT ?2) ORDER BY d.id",
        )?;
        let rows = st
            .query_map(params![server_id, limit as i64], push_record)?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    fn pending_events(
        &self,
        server_id: &str,
        max: usize,
    ) -> Result<(Vec<(String, String)>, bool), StoreError> {
        let mut st = self.prepare_cached(
            "SELECT jti, claims FROM events WHERE server_id=?1 AND state='pending' ORDER BY seq LIMIT ?2",
        )?;
        let mut rows = st
            .query_map(params![server_id, (max as i64).saturating_add(1)], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?
            .collect::<Result<Vec<(String, String)>, _>>()?;
        let more = rows.len() > max;
        rows.truncate(max);
        Ok((rows, more))
    }

    fn events_of_txn(
        &self,
        server_id: &str,
        txn: &str,
    ) -> Result<Vec<(String, String)>, StoreError> {
        let mut st = self.prepare_cached(
            "SELECT jti, claims FROM events WHERE server_id=?1 AND \
             (json_extract(claims, '$.txn') = ?2 \
              OR substr(json_extract(claims, '$.txn'), 1, length(?2) + 1) = ?2 || ':') \
             ORDER BY seq",
        )?;
        let rows = st
            .query_map(params![server_id, txn], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<Vec<(String, String)>, _>>()?;
        Ok(rows)
    }

    fn settle_events(
        &self,
        server_id: &str,
        acked: &[String],
        failed: &[(String, String)],
    ) -> Result<(), StoreError> {
        let mut ack = self.prepare_cached(
            "UPDATE events SET state='acknowledged' WHERE server_id=?1 AND jti=?2 AND state='pending'",
        )?;
        for jti in acked {
            ack.execute(params![server_id, jti])?;
        }
        let mut fail = self.prepare_cached(
            "UPDATE events SET state='failed', error=?3 WHERE server_id=?1 AND jti=?2 AND state='pending'",
        )?;
        for (jti, error) in failed {
            fail.execute(params![server_id, jti, error])?;
        }
        Ok(())
    }

    fn event_log(&self, server_id: &str, limit: usize) -> Result<Vec<EventRecord>, StoreError> {
        let mut st = self.prepare_cached(
            "SELECT jti, created, claims, state, error FROM events WHERE server_id=?1 ORDER BY seq DESC LIMIT ?2",
        )?;
        let rows = st
            .query_map(params![server_id, limit as i64], event_record)?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    fn put_grant(&self, server_id: &str, digest: &str, grant: &Grant) -> Result<(), StoreError> {
        // A day past expiry nothing can use a grant any more, not even to be told "expired".
        self.prepare_cached("DELETE FROM oauth_grants WHERE expires_at < ?1")?
            .execute(params![crate::vocab::time::unix_secs() as i64 - 86400])?;
        self.prepare_cached(
            "INSERT OR REPLACE INTO oauth_grants (server_id, digest, kind, client_id, expires_at, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?
        .execute(params![
            server_id,
            digest,
            grant.kind,
            grant.client_id,
            grant.expires_at,
            grant.detail
        ])?;
        Ok(())
    }

    fn grant(
        &self,
        server_id: &str,
        digest: &str,
        kind: &str,
        take: bool,
    ) -> Result<Option<Grant>, StoreError> {
        let found = self
            .prepare_cached(
                "SELECT kind, client_id, expires_at, detail FROM oauth_grants WHERE server_id=?1 AND digest=?2 AND kind=?3",
            )?
            .query_row(params![server_id, digest, kind], |r| {
                Ok(Grant {
                    kind: r.get(0)?,
                    client_id: r.get(1)?,
                    expires_at: r.get(2)?,
                    detail: r.get(3)?,
                })
            })
            .optional()?;
        if take && found.is_some() {
            self.prepare_cached("DELETE FROM oauth_grants WHERE server_id=?1 AND digest=?2")?
                .execute(params![server_id, digest])?;
        }
        Ok(found)
    }

    fn events_named(
        &self,
        server_id: &str,
        jtis: &[String],
    ) -> Result<(Vec<EventRecord>, Vec<PushRecord>), StoreError> {
        let mut event = self.prepare_cached(
            "SELECT jti, created, claims, state, error FROM events WHERE server_id=?1 AND jti=?2",
        )?;
        let mut pushes = self.prepare_cached(
            "SELECT e.jti, d.receiver, d.state, d.attempts, d.last_error FROM event_deliveries d JOIN events e ON e.seq = d.event_seq WHERE e.server_id=?1 AND e.jti=?2 ORDER BY d.id",
        )?;
        let (mut events, mut deliveries) = (Vec::new(), Vec::new());
        for jti in jtis {
            let found = event
                .query_row(params![server_id, jti], event_record)
                .optional()?;
            events.extend(found);
            let rows = pushes.query_map(params![server_id, jti], push_record)?;
            for row in rows {
                deliveries.push(row?);
            }
        }
        Ok((events, deliveries))
    }

    fn all_counts(&self) -> Result<Vec<(String, String, i64)>, StoreError> {
        let c = self;
        let mut st = c.prepare_cached(
            "SELECT server_id, resource_type, n FROM resource_counts WHERE n > 0 ORDER BY server_id, resource_type",
        )?;
        let rows = st
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<Result<_, _>>()?;
        Ok(rows)
    }

    fn counts(&self, server_id: &str) -> Result<Vec<(String, i64)>, StoreError> {
        let c = self;
        let mut st = prepare(
            c,
            "SELECT resource_type, n FROM resource_counts WHERE server_id=$SERVER ORDER BY resource_type",
            server_id,
        )?;
        let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn user_names(
        &self,
        server_id: &str,
        resource_type: &str,
    ) -> Result<std::collections::HashSet<String>, StoreError> {
        let c = self;
        let scope = sql::scope("r", server_id, resource_type);
        let mut st = c.prepare(&format!(
            "SELECT lower(json_extract(r.doc, '$.\"userName\"')) FROM resources r WHERE {scope}"
        ))?;
        let names = st
            .query_map([], |r| r.get::<_, Option<String>>(0))?
            .filter_map(|r| r.ok().flatten())
            .collect();
        Ok(names)
    }

    fn put_snapshot(
        &self,
        server_id: &str,
        name: &str,
        taken: &str,
        data: &str,
    ) -> Result<(), StoreError> {
        let tx = self;
        tx.execute(
            "INSERT INTO snapshots (server_id, name, taken, data) VALUES (?1,?2,?3,?4)
             ON CONFLICT (server_id, name) DO UPDATE SET taken=excluded.taken, data=excluded.data",
            params![server_id, name, taken, data],
        )?;
        Ok(())
    }

    fn snapshots(&self, server_id: &str) -> Result<Vec<Snapshot>, StoreError> {
        let c = self;
        let mut st =
            c.prepare("SELECT name, taken FROM snapshots WHERE server_id=?1 ORDER BY name")?;
        let rows = st.query_map([server_id], |r| {
            Ok(Snapshot {
                name: r.get(0)?,
                taken: r.get(1)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn snapshot_data(&self, server_id: &str, name: &str) -> Result<Option<String>, StoreError> {
        let c = self;
        Ok(c.query_row(
            "SELECT data FROM snapshots WHERE server_id=?1 AND name=?2",
            [server_id, name],
            |r| r.get(0),
        )
        .optional()?)
    }

    fn delete_snapshots(&self, server_id: &str, name: Option<&str>) -> Result<usize, StoreError> {
        let tx = self;
        Ok(match name {
            Some(n) => tx.execute(
                "DELETE FROM snapshots WHERE server_id=?1 AND name=?2",
                [server_id, n],
            )?,
            None => tx.execute("DELETE FROM snapshots WHERE server_id=?1", [server_id])?,
        })
    }

    fn put_ephemeral(&self, id: &str, definition: &str, created: &str) -> Result<bool, StoreError> {
        Ok(self.execute(
            "INSERT INTO ephemeral_servers (id, definition, created) VALUES (?1, ?2, ?3) ON CONFLICT (id) DO NOTHING",
            [id, definition, created],
        )? == 1)
    }

    fn delete_ephemeral(&self, id: &str) -> Result<(), StoreError> {
        self.execute("DELETE FROM ephemeral_servers WHERE id=?1", [id])?;
        Ok(())
    }

    fn ephemeral_servers(&self) -> Result<Vec<(String, String)>, StoreError> {
        let mut st = self
            .prepare_cached("SELECT id, definition FROM ephemeral_servers ORDER BY created, id")?;
        let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn put_override(
        &self,
        server_id: &str,
        kind: &str,
        value: Option<&str>,
    ) -> Result<(), StoreError> {
        match value {
            Some(v) => self.execute(
                "INSERT INTO admin_overrides (server_id, kind, value) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (server_id, kind) DO UPDATE SET value=excluded.value",
                [server_id, kind, v],
            )?,
            None => self.execute(
                "DELETE FROM admin_overrides WHERE server_id=?1 AND kind=?2",
                [server_id, kind],
            )?,
        };
        Ok(())
    }

    fn overrides(&self) -> Result<Vec<(String, String, String)>, StoreError> {
        let mut st = self.prepare_cached("SELECT server_id, kind, value FROM admin_overrides")?;
        let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(yaml: &str) -> Arc<ServerModel> {
        let file = crate::definition::load_str(Path::new("t.yaml"), yaml).unwrap();
        crate::model::compile(&[file], &[])
            .unwrap()
            .servers
            .into_values()
            .next()
            .unwrap()
    }

    fn row(id: &str, doc: &str) -> Row {
        Row {
            id: id.into(),
            resource_type: "User".into(),
            version: 1,
            created: "2024-01-01T00:00:00.000Z".into(),
            last_modified: "2024-01-01T00:00:00.000Z".into(),
            doc: doc.into(),
        }
    }

    /// The snapshot the checkpoint thread holds between passes hides no commit from a read,
    /// and the next pass still moves every frame into the database file (shown to fail when
    /// the pass does not let go of the snapshot first).
    #[test]
    fn a_held_snapshot_hides_no_commit_and_holds_back_no_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let store = Store::open(&path).unwrap();
        let Backend::Sqlite(sqlite) = &store.backend else {
            unreachable!()
        };
        // This test runs the passes; the store's own thread (and its snapshot) must be gone.
        sqlite.stop_checkpointer.store(true, Ordering::Relaxed);
        std::thread::sleep(std::time::Duration::from_millis(300));
        let s = server("id: t\ntokens: [t]\nresource_types:\n  User: {}\n");
        let c = Connection::open(&path).unwrap();
        let keeper = checkpointer::SnapshotKeeper::open(&path).unwrap();
        let (frames, moved) = checkpointer::pass(&c, &keeper, &sqlite.writer, true).unwrap();
        assert_eq!(frames, moved);
        assert!(keeper.holding());
        for i in 0..50 {
            let doc = format!(r#"{{"userName":"u{i}"}}"#);
            store
                .write(|tx| tx.insert(&s, &row(&format!("{i}"), &doc)))
                .unwrap();
        }
        let read = store.read_point(|c| c.get("t", "49")).unwrap();
        assert!(read.is_some(), "a read after a commit sees it");
        let (frames, moved) = checkpointer::pass(&c, &keeper, &sqlite.writer, true).unwrap();
        assert!(frames > 0);
        assert_eq!(frames, moved, "every frame is in the database file");
        assert!(keeper.holding());
        // While writes come, no snapshot is held: it could keep the WAL from starting over.
        checkpointer::pass(&c, &keeper, &sqlite.writer, false).unwrap();
        assert!(!keeper.holding());
    }

    /// The steps of SQLite's plan for `sql` (a store statement of server "t", bound to `param`)
    /// on the database at `path`.
    fn query_plan(path: &Path, sql: &str, param: &str) -> Vec<String> {
        let c = Connection::open(path).unwrap();
        let sql = sql::with_server(&format!("EXPLAIN QUERY PLAN {sql}"), "t");
        let mut st = c.prepare(&sql).unwrap();
        st.query_map(params![param], |r| r.get::<_, String>(3))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    /// A page's groups come from each member's index entries, not from a walk over every
    /// membership of the server (the planner preferred that walk once a large group existed).
    #[test]
    fn groups_of_a_page_look_up_each_member() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.db")).unwrap();
        let s = server("id: t\ntokens: [t]\nresource_types:\n  User: {}\n  Group: {}\n");
        let members: Vec<Member> = (0..2000)
            .map(|i| Member {
                value: format!("u{i}"),
                display: None,
                member_type: None,
            })
            .collect();
        store
            .write(|tx| {
                let mut g = row("g", r#"{"displayName":"everyone"}"#);
                g.resource_type = "Group".into();
                tx.insert(&s, &g)?;
                tx.insert(&s, &row("u7", r#"{"userName":"u7"}"#))?;
                tx.change_members("t", "g", &members, &[])
            })
            .unwrap();
        let plan = query_plan(&dir.path().join("t.db"), GROUPS_OF_MANY, "[\"u7\"]");
        assert!(
            plan.iter().any(|p| p.contains("memberships_by_member")),
            "{plan:?}"
        );
        let groups = store
            .read(|c| c.groups_of_many("t", &["u7", "u9999"]))
            .unwrap();
        assert_eq!(groups.len(), 1);
        assert_eq!(groups["u7"][0].display.as_deref(), Some("everyone"));
    }

    /// A store in `dir` with users "u" and "loner", and groups "group {id}" that "u" joined in
    /// the order of `joined`.
    fn user_in_groups(dir: &Path, joined: &[&str]) -> Store {
        let store = Store::open(&dir.join("t.db")).unwrap();
        let s = server("id: t\ntokens: [t]\nresource_types:\n  User: {}\n  Group: {}\n");
        let member = Member {
            value: "u".into(),
            display: None,
            member_type: None,
        };
        store
            .write(|tx| {
                tx.insert(&s, &row("u", r#"{"userName":"u"}"#))?;
                tx.insert(&s, &row("loner", r#"{"userName":"loner"}"#))?;
                for id in joined {
                    let mut g = row(id, &format!(r#"{{"displayName":"group {id}"}}"#));
                    g.resource_type = "Group".into();
                    tx.insert(&s, &g)?;
                    tx.change_members("t", id, std::slice::from_ref(&member), &[])?;
                }
                Ok::<_, StoreError>(())
            })
            .unwrap();
        store
    }

    /// The counts that answer an unfiltered list's totalResults follow every insert and delete
    /// (kept by the store's statements since migration V12 dropped the triggers): a refused
    /// insert counts nothing, a delete moves the generation on, a server's delete empties it.
    #[test]
    fn resource_counts_follow_inserts_and_deletes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let store = Store::open(&path).unwrap();
        let s = server("id: t\ntokens: [t]\nresource_types:\n  User: {}\n  Group: {}\n");
        let file = Connection::open(&path).unwrap();
        let generation = |t: &str| -> i64 {
            file.query_row(
                "SELECT generation FROM resource_counts WHERE server_id='t' AND resource_type=?1",
                [t],
                |r| r.get(0),
            )
            .unwrap()
        };
        let counts = || store.read_point(|c| c.counts("t")).unwrap();
        let insert = |id: &str, t: &str| {
            let mut r = row(id, &format!(r#"{{"userName":"{id}"}}"#));
            r.resource_type = t.into();
            store.write(|tx| tx.insert(&s, &r))
        };
        for id in ["a", "b", "c"] {
            insert(id, "User").unwrap();
        }
        insert("g", "Group").unwrap();
        assert_eq!(counts(), [("Group".into(), 1), ("User".into(), 3)]);
        // The same id again is refused, and counted nowhere.
        assert!(insert("a", "User").is_err());
        assert_eq!(counts(), [("Group".into(), 1), ("User".into(), 3)]);
        let before = generation("User");
        assert!(store.write(|tx| tx.delete("t", "b")).unwrap());
        assert_eq!(counts(), [("Group".into(), 1), ("User".into(), 2)]);
        assert_ne!(
            generation("User"),
            before,
            "a delete moves the generation on"
        );
        let before = (generation("User"), counts());
        assert!(!store.write(|tx| tx.delete("t", "nobody")).unwrap());
        assert_eq!(
            (generation("User"), counts()),
            before,
            "nothing deleted, nothing moved"
        );
        assert_eq!(store.write(|tx| tx.delete_server("t")).unwrap(), 3);
        assert_eq!(counts(), [("Group".into(), 0), ("User".into(), 0)]);
        insert("d", "User").unwrap();
        assert_eq!(counts(), [("Group".into(), 0), ("User".into(), 1)]);
        let triggers: i64 = file
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type='trigger' AND tbl_name='resources'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(triggers, 0, "no trigger writes in a create's INSERT");
    }

    /// A user's groups come in the order it joined them, read from the covering index in
    /// that order: no temporary B-tree sorts them on each read of a user.
    #[test]
    fn a_members_groups_come_in_join_order_without_a_sort() {
        let dir = tempfile::tempdir().unwrap();
        // Joined "b" first, then "a": the order is not the ids'.
        let store = user_in_groups(dir.path(), &["b", "a"]);
        let groups = store.read_point(|c| c.groups_of("t", "u")).unwrap();
        let ids: Vec<&str> = groups.iter().map(|g| g.id.as_str()).collect();
        assert_eq!(ids, ["b", "a"]);
        let plan = query_plan(&dir.path().join("t.db"), GROUPS_OF, "u");
        assert!(
            plan.iter()
                .any(|p| p.contains("COVERING INDEX memberships_by_member")),
            "{plan:?}"
        );
        assert!(!plan.iter().any(|p| p.contains("TEMP B-TREE")), "{plan:?}");
    }

    /// One statement reads a resource and its groups (a user's GET): the same row and the same
    /// groups, in join order, as the two reads apart; none for a resource in no group, nothing
    /// for an id that does not exist; and no sort in a temporary B-tree.
    #[test]
    fn a_resource_and_its_groups_read_in_one_statement() {
        let dir = tempfile::tempdir().unwrap();
        let store = user_in_groups(dir.path(), &["c", "a", "b"]);
        let together = |id: &str| store.read_single(|c| c.get_with_groups("t", id)).unwrap();
        let (r, groups) = together("u").expect("the user exists");
        let apart = store.read_point(|c| c.get("t", "u")).unwrap().unwrap();
        assert_eq!(
            (&r.id, &r.resource_type, r.version, &r.doc),
            (&apart.id, &apart.resource_type, apart.version, &apart.doc)
        );
        let apart = store.read_point(|c| c.groups_of("t", "u")).unwrap();
        let seen = |g: &[GroupRef]| -> Vec<(String, String, Option<String>)> {
            (g.iter())
                .map(|g| (g.id.clone(), g.resource_type.clone(), g.display.clone()))
                .collect()
        };
        assert_eq!(seen(&groups), seen(&apart));
        assert_eq!(seen(&groups)[0].0, "c", "in the order it joined them");
        assert_eq!(seen(&groups)[0].2.as_deref(), Some("group c"));
        let (r, groups) = together("loner").expect("the user exists");
        assert_eq!((r.id.as_str(), groups.len()), ("loner", 0));
        assert!(together("nobody").is_none());
        let plan = query_plan(&dir.path().join("t.db"), ROW_AND_GROUPS_BY_ID, "u");
        assert!(!plan.iter().any(|p| p.contains("TEMP B-TREE")), "{plan:?}");
        assert!(
            plan.iter()
                .any(|p| p.contains("COVERING INDEX memberships_by_member")),
            "{plan:?}"
        );
    }

    /// The store, not an index, refuses a taken unique value: on update as on insert, never
    /// against the resource itself, and resources without the attribute share nothing.
    #[test]
    fn unique_values_are_checked_on_update_and_absent_values_share_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.db")).unwrap();
        let yaml = "id: t\ntokens: [t]\nresource_types:\n  User:\n    attributes:\n      code: { type: string, uniqueness: server }\n";
        let s = server(yaml);
        store.apply_indexes(&s, None).unwrap();
        let ext = "urn:scimlab:schemas:extension:t:2.0:User";
        for (id, doc) in [
            (
                "1",
                format!(r#"{{"userName":"ann","{ext}":{{"code":"A"}}}}"#),
            ),
            ("2", r#"{"userName":"bob"}"#.to_string()),
            ("3", r#"{"userName":"cy"}"#.to_string()),
        ] {
            store.write(|tx| tx.insert(&s, &row(id, &doc))).unwrap();
        }
        // Rewriting a resource with its own values is no conflict.
        let same = row(
            "1",
            &format!(r#"{{"userName":"ANN","{ext}":{{"code":"A"}}}}"#),
        );
        store
            .write(|tx| tx.update(&s, &same, UniqueValues::MayChange))
            .unwrap();
        let taken = store.write(|tx| {
            tx.update(
                &s,
                &row("2", r#"{"userName":"Ann"}"#),
                UniqueValues::MayChange,
            )
        });
        assert!(
            matches!(&taken, Err(StoreError::Unique { attribute: Some(a) }) if a == "userName"),
            "{taken:?}"
        );
        let code = row(
            "3",
            &format!(r#"{{"userName":"cy","{ext}":{{"code":"A"}}}}"#),
        );
        let taken = store.write(|tx| tx.update(&s, &code, UniqueValues::MayChange));
        assert!(
            matches!(&taken, Err(StoreError::Unique { attribute: Some(a) }) if a.ends_with(":code")),
            "{taken:?}"
        );
        // Nothing of the refused writes was kept.
        let kept = store.read_point(|c| c.get("t", "2")).unwrap().unwrap();
        assert_eq!(kept.doc, r#"{"userName":"bob"}"#);
        // Two resources without `code` do not stop it from being (re)applied as unique.
        store.apply_indexes(&server(yaml), None).unwrap();
    }

    /// The checks written for one shape of a resource type are not used for another: a reload
    /// that makes an attribute unique is enforced at once, and the old shape still is not.
    #[test]
    fn unique_checks_follow_a_reload_that_changes_uniqueness() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.db")).unwrap();
        let plain = "id: t\ntokens: [t]\nresource_types:\n  User:\n    attributes:\n      code: { type: string }\n";
        let unique = plain.replace("{ type: string }", "{ type: string, uniqueness: server }");
        let (plain, unique) = (server(plain), server(&unique));
        let ext = "urn:scimlab:schemas:extension:t:2.0:User";
        let user = |id: &str, name: &str| {
            row(
                id,
                &format!(r#"{{"userName":"{name}","{ext}":{{"code":"X"}}}}"#),
            )
        };
        store.apply_indexes(&plain, None).unwrap();
        store
            .write(|tx| tx.insert(&plain, &user("1", "a")))
            .unwrap();
        store
            .write(|tx| tx.insert(&plain, &user("2", "b")))
            .unwrap();
        store.write(|tx| tx.delete("t", "2")).unwrap();
        store.apply_indexes(&unique, None).unwrap();
        let dup = store.write(|tx| tx.insert(&unique, &user("3", "c")));
        assert!(
            matches!(&dup, Err(StoreError::Unique { attribute: Some(a) }) if a.ends_with(":code")),
            "{dup:?}"
        );
        store
            .write(|tx| tx.insert(&plain, &user("4", "d")))
            .unwrap();
    }

    /// Every server shares the same few indexes on `resources` (each index slows every write,
    /// whichever server it is for), and the per-server partial indexes of earlier versions are
    /// dropped when a database is opened.
    #[test]
    fn indexes_do_not_grow_with_servers_and_legacy_ones_are_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let indexes = || -> Vec<String> {
            let c = Connection::open(&path).unwrap();
            let mut st = c
                .prepare("SELECT name FROM sqlite_master WHERE type='index' AND tbl_name='resources' ORDER BY name")
                .unwrap();
            st.query_map([], |r| r.get(0))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap()
        };
        let store = Store::open(&path).unwrap();
        let define = |id: &str| {
            server(&format!(
                "id: {id}\ntokens: [{id}]\nresource_types:\n  User: {{}}\n  Group: {{}}\n"
            ))
        };
        store.apply_indexes(&define("s0"), None).unwrap();
        let one = indexes();
        for i in 1..20 {
            store
                .apply_indexes(&define(&format!("s{i}")), None)
                .unwrap();
        }
        assert_eq!(indexes(), one);
        let legacy = "scim_s0_User_title_0badc0de";
        drop(store);
        Connection::open(&path)
            .unwrap()
            .execute_batch(&format!(
                "CREATE INDEX \"{legacy}\" ON resources(json_extract(doc,'$.title')) WHERE server_id='s0' AND resource_type='User'"
            ))
            .unwrap();
        assert!(indexes().iter().any(|n| n == legacy));
        let store = Store::open(&path).unwrap();
        assert_eq!(indexes(), one);
        // Uniqueness holds without any unique index.
        let s = define("s0");
        store
            .write(|tx| tx.insert(&s, &row("1", r#"{"userName":"x"}"#)))
            .unwrap();
        let dup = store.write(|tx| tx.insert(&s, &row("2", r#"{"userName":"X"}"#)));
        assert!(matches!(dup, Err(StoreError::Unique { .. })), "{dup:?}");
    }

    #[test]
    fn unique_indexes_refuse_duplicates_and_name_conflicting_data() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.db")).unwrap();
        let plain = "id: t\ntokens: [t]\nresource_types:\n  User:\n    attributes:\n      code: { type: string }\n";
        let s = server(plain);
        store.apply_indexes(&s, None).unwrap();
        store
            .write(|tx| tx.insert(&s, &row("1", r#"{"userName":"Ann","urn:scimlab:schemas:extension:t:2.0:User":{"code":"X"}}"#)))
            .unwrap();
        // userName is unique case-insensitively (RFC 7643 §4.1.1).
        let dup = store.write(|tx| tx.insert(&s, &row("2", r#"{"userName":"ANN"}"#)));
        assert!(
            matches!(&dup, Err(StoreError::Unique { attribute: Some(a) }) if a == "userName"),
            "{dup:?}"
        );
        store
            .write(|tx| tx.insert(&s, &row("3", r#"{"userName":"Bob","urn:scimlab:schemas:extension:t:2.0:User":{"code":"X"}}"#)))
            .unwrap();
        // Making `code` unique now cannot work: the data already shares a value.
        let unique = plain.replace(
            "code: { type: string }",
            "code: { type: string, uniqueness: server }",
        );
        let u = server(&unique);
        match store.apply_indexes(&u, Some(&s)) {
            Err(StoreError::IndexConflict { attribute, ids, .. }) => {
                assert!(attribute.contains("code"), "{attribute}");
                assert_eq!(ids.len(), 2, "{ids:?}");
            }
            other => panic!("{other:?}"),
        }
        // What the served definition already made unique is not read again (every write since
        // was checked); the same attribute compared another way (case-exact before) is.
        store.apply_indexes(&u, Some(&u)).unwrap();
        let exact =
            server(&unique.replace("uniqueness: server", "uniqueness: server, case_exact: true"));
        assert!(matches!(
            store.apply_indexes(&u, Some(&exact)),
            Err(StoreError::IndexConflict { .. })
        ));
        // Point reads and counts see the committed rows.
        let got = store.read_point(|c| c.get("t", "3")).unwrap().unwrap();
        assert_eq!(got.id, "3");
        assert_eq!(
            store.read_point(|c| c.counts("t")).unwrap(),
            [("User".to_string(), 2)]
        );
    }

    #[test]
    fn waiting_for_a_busy_reader_does_not_stall_an_async_worker() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(&dir.path().join("t.db")).unwrap());
        // Every point reader is held until the other task has run (or 10 s pass).
        let Backend::Sqlite(sqlite) = &store.backend else {
            unreachable!()
        };
        let guards: Vec<_> = sqlite
            .point_readers
            .iter()
            .map(|m| m.lock().unwrap())
            .collect();
        let (ran_tx, ran_rx) = std::sync::mpsc::channel::<()>();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let reader = {
            let store = store.clone();
            // On the only worker: waits for a reader.
            rt.spawn(async move { store.read_point(|c| c.counts("t")).unwrap() })
        };
        std::thread::sleep(std::time::Duration::from_millis(50));
        // Another task on the same runtime still runs while the read waits.
        rt.spawn(async move { ran_tx.send(()).unwrap() });
        let ran = ran_rx
            .recv_timeout(std::time::Duration::from_secs(10))
            .is_ok();
        drop(guards);
        assert!(rt.block_on(reader).unwrap().is_empty());
        assert!(ran, "a task queued behind a waiting point read did not run");
    }
}
