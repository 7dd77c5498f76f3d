//! The PostgreSQL backend: several scimlab processes on one database.
//!
//! Every call blocks, as with SQLite: the connections run on the store's own small runtime,
//! and a caller waits for the reply on its own thread (`futures_executor::block_on`), so it
//! may be any thread — an async worker doing a point read included — without blocking that
//! runtime. Writes run in a transaction each (READ COMMITTED) that first takes a
//! transaction-scoped advisory lock per virtual server it touches: writes to one server are
//! serialised across every replica, as the SQLite writer serialises them in one process, so
//! read-modify-write (PATCH, membership changes) stays atomic and a unique value checked in
//! a write stays free until it commits. Reads take no lock.

pub mod import;
pub mod query;
pub mod sql;

use super::plan::{self, Dialect};
use super::{
    Conn, Delivery, EventRecord, Grant, GroupRef, Keyset, KeysetFrom, Member, PushRecord, Row,
    Search, Snapshot, StoreError, UniqueValues, request_log,
};
use crate::model::ServerModel;
use query::{Binder, Param};
use std::cell::RefCell;
use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio_postgres::types::ToSql;
use tokio_postgres::{NoTls, Statement};

mod embedded {
    refinery::embed_migrations!("src/store/pg/migrations");
}

/// Connections per process: reads and writes share the main ones; point reads (GET by id,
/// counts; they run on async workers) have their own, so that they never wait behind a
/// search; the request log writes on one of its own.
const MAIN: usize = 6;
/// Searches at once: the main connections less two, which writes can always get.
pub const SEARCH_SLOTS: usize = MAIN - 2;
const POINT: usize = 4;
const LOG: usize = 1;
/// The advisory lock that serialises migrations and index creation across replicas.
const SCHEMA_LOCK: i64 = 0x5c1_4ab;

pub struct PgStore {
    rt: Option<tokio::runtime::Runtime>,
    config: tokio_postgres::Config,
    /// MAIN connections, then POINT, then LOG (see [`Pool`]).
    conns: Vec<Mutex<Client>>,
    next: AtomicUsize,
    cursor_key: Vec<u8>,
    /// This process's number among the replicas (0–255), for the request log's numbering.
    replica: i64,
}

/// Which connections a call uses.
#[derive(Debug, Clone, Copy)]
enum Pool {
    Main,
    Point,
    Log,
}

/// One connection and its prepared statements.
struct Client {
    client: tokio_postgres::Client,
    statements: HashMap<String, Statement>,
}

impl Drop for PgStore {
    fn drop(&mut self) {
        // Dropping a runtime blocks; a store may be dropped on an async worker.
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    futures_executor::block_on(f)
}

impl PgStore {
    /// Connects to `url` (`postgres://user@host/db`), runs scimlab's migrations (once, whichever
    /// replica gets there first) and opens the connections.
    pub fn open(url: &str) -> Result<PgStore, StoreError> {
        let config: tokio_postgres::Config = url
            .parse()
            .map_err(|e| StoreError::Migration(format!("database URL {url:?}: {e}")))?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("scimlab-pg")
            .enable_all()
            .build()
            .map_err(|e| StoreError::Migration(format!("starting the database runtime: {e}")))?;
        let handle = rt.handle().clone();
        let cfg = config.clone();
        // On a thread of its own: `block_on` of a runtime refuses to run inside another one.
        let opened = std::thread::scope(|s| {
            s.spawn(|| {
                handle.block_on(async {
                    let mut first = connect(&cfg).await?;
                    migrate(&mut first).await?;
                    let cursor_key = cursor_key(&first).await?;
                    let replica: i64 = first
                        .query_one("SELECT nextval('replica_numbers') % 256", &[])
                        .await?
                        .get(0);
                    let mut conns = vec![first];
                    for _ in 1..MAIN + POINT + LOG {
                        conns.push(connect(&cfg).await?);
                    }
                    Ok::<_, StoreError>((conns, cursor_key, replica))
                })
            })
            .join()
            .unwrap_or_else(|p| resume_unwind(p))
        });
        let (conns, cursor_key, replica) = match opened {
            Ok(opened) => opened,
            Err(e) => {
                // Dropping a runtime blocks, which panics when `open` runs on an async worker.
                rt.shutdown_background();
                return Err(e);
            }
        };
        Ok(PgStore {
            rt: Some(rt),
            config,
            conns: conns
                .into_iter()
                .map(|client| {
                    Mutex::new(Client {
                        client,
                        statements: HashMap::new(),
                    })
                })
                .collect(),
            next: AtomicUsize::new(0),
            cursor_key,
            replica,
        })
    }

    pub fn cursor_key(&self) -> &[u8] {
        &self.cursor_key
    }

    /// A free connection of `pool` (else the next one in turn), reconnected if the server
    /// dropped it.
    fn checkout(&self, pool: Pool) -> Result<std::sync::MutexGuard<'_, Client>, StoreError> {
        let conns = match pool {
            Pool::Main => &self.conns[..MAIN],
            Pool::Point => &self.conns[MAIN..MAIN + POINT],
            Pool::Log => &self.conns[MAIN + POINT..],
        };
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let mut guard = None;
        for i in 0..conns.len() {
            if let Ok(c) = conns[(start + i) % conns.len()].try_lock() {
                guard = Some(c);
                break;
            }
        }
        let mut c = match guard {
            Some(c) => c,
            None => {
                super::without_stalling_workers(|| crate::sync::lock(&conns[start % conns.len()]))
            }
        };
        if c.client.is_closed() {
            c.client = self.connect_new()?;
            c.statements.clear();
        }
        Ok(c)
    }

    /// Runs `f` on a main connection (outside a transaction).
    pub fn read<T, E: From<StoreError>>(
        &self,
        f: impl FnOnce(&dyn Conn) -> Result<T, E>,
    ) -> Result<T, E> {
        let mut c = self.checkout(Pool::Main)?;
        let conn = PgConn::new(&mut c, false);
        f(&conn)
    }

    /// Runs `f`, which reads a few rows by key, on a connection searches never hold.
    pub fn read_point<T, E: From<StoreError>>(
        &self,
        f: impl FnOnce(&dyn Conn) -> Result<T, E>,
    ) -> Result<T, E> {
        let mut c = self.checkout(Pool::Point)?;
        let conn = PgConn::new(&mut c, false);
        f(&conn)
    }

    /// Runs `f` in one transaction; returns once it is committed (rolled back if `f` fails).
    pub fn write<T, E: From<StoreError>>(
        &self,
        f: impl FnOnce(&dyn Conn) -> Result<T, E>,
    ) -> Result<T, E> {
        self.transaction(Pool::Main, |c| f(c))
    }

    /// A new connection outside the pools.
    fn connect_new(&self) -> Result<tokio_postgres::Client, StoreError> {
        let handle = self
            .rt
            .as_ref()
            .map(|rt| rt.handle().clone())
            .ok_or_else(|| StoreError::Migration("the store is closed".into()))?;
        let cfg = self.config.clone();
        std::thread::scope(|s| {
            s.spawn(|| handle.block_on(connect(&cfg)))
                .join()
                .unwrap_or_else(|p| resume_unwind(p))
        })
    }

    /// [`PgStore::write`] on a connection of `pool`, with the PostgreSQL connection itself.
    fn transaction<T, E: From<StoreError>>(
        &self,
        pool: Pool,
        f: impl FnOnce(&PgConn<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        let mut c = self.checkout(pool)?;
        let conn = PgConn::beginning(&mut c);
        let out = catch_unwind(AssertUnwindSafe(|| f(&conn)));
        let began = conn.began();
        drop(conn);
        if !began {
            return match out {
                Ok(r) => r,
                Err(p) => resume_unwind(p),
            };
        }
        match out {
            Ok(Ok(v)) => match block_on(c.client.batch_execute("COMMIT")) {
                Ok(()) => Ok(v),
                Err(e) => {
                    tracing::warn!(error = %e, "COMMIT failed");
                    Err(StoreError::Commit.into())
                }
            },
            Ok(Err(e)) => {
                let _ = block_on(c.client.batch_execute("ROLLBACK"));
                Err(e)
            }
            Err(p) => {
                let _ = block_on(c.client.batch_execute("ROLLBACK"));
                resume_unwind(p)
            }
        }
    }

    /// Takes one token from each of a server's buckets `(key, capacity, refill per second)`,
    /// or none when one is short: then the index of that bucket and the seconds until it
    /// holds a token again. The buckets live in the database, so every replica spends from
    /// the same tokens.
    pub fn take_tokens(
        &self,
        server: &str,
        buckets: &[(String, f64, f64)],
    ) -> Result<Option<(usize, f64)>, StoreError> {
        super::without_stalling_workers(|| {
            self.transaction(Pool::Point, |c| {
                let mut short = None;
                for (i, (key, capacity, per_sec)) in buckets.iter().enumerate() {
                    // Refill (and lock) the bucket; a changed limit starts full.
                    let tokens: f64 = c.query(
                        "INSERT INTO rate_buckets AS b (server_id, key, capacity, per_sec, tokens, at) \
                         VALUES ($1, $2, $3, $4, $3, extract(epoch from clock_timestamp())) \
                         ON CONFLICT (server_id, key) DO UPDATE SET \
                           tokens = CASE WHEN b.capacity <> excluded.capacity OR b.per_sec <> excluded.per_sec THEN excluded.capacity \
                                    ELSE least(excluded.capacity, b.tokens + (excluded.at - b.at) * excluded.per_sec) END, \
                           capacity = excluded.capacity, per_sec = excluded.per_sec, at = excluded.at \
                         RETURNING tokens",
                        &[&server, key, capacity, per_sec],
                    )?[0]
                        .get(0);
                    if tokens < 1.0 && short.is_none() {
                        short = Some((i, (1.0 - tokens) / per_sec));
                    }
                }
                if short.is_none() {
                    let keys: Vec<&str> = buckets.iter().map(|(k, _, _)| k.as_str()).collect();
                    c.execute(
                        "UPDATE rate_buckets SET tokens = tokens - 1 WHERE server_id=$1 AND key = ANY($2::text[])",
                        &[&server, &keys],
                    )?;
                }
                Ok(short)
            })
        })
    }

    /// Tokens left per bucket of a server.
    pub fn tokens(&self, server: &str) -> Result<Vec<(String, f64)>, StoreError> {
        self.transaction(Pool::Main, |c| {
            Ok(c.query(
                "SELECT key, least(capacity, tokens + (extract(epoch from clock_timestamp()) - at) * per_sec) \
                 FROM rate_buckets WHERE server_id=$1 ORDER BY key",
                &[&server],
            )?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect())
        })
    }

    /// Runs `f` while holding the session advisory lock `name` on a connection of its own:
    /// work of several transactions (preparing a server: indexes, catalogue, seed data) that
    /// replicas starting together must not do at the same time.
    pub fn exclusive<T>(&self, name: &str, f: impl FnOnce() -> T) -> Result<T, StoreError> {
        let lock = self.connect_new()?;
        block_on(lock.execute("SELECT pg_advisory_lock(hashtextextended($1, 1))", &[&name]))?;
        let out = f();
        // Ending the session releases the lock.
        drop(lock);
        Ok(out)
    }

    /// Creates the server's indexes that do not exist yet (one replica at a time), and refuses
    /// a newly unique attribute whose stored values are not unique.
    pub fn apply_indexes(
        &self,
        server: &ServerModel,
        before: Option<&ServerModel>,
    ) -> Result<(), StoreError> {
        self.transaction(Pool::Main, |conn| {
            conn.query(&format!("SELECT pg_advisory_xact_lock({SCHEMA_LOCK})"), &[])?;
            let specs = plan::indexes_for(server, Dialect::Postgres);
            for spec in &specs {
                conn.execute(
                    &plan::create_sql(Dialect::Postgres, &spec.name, &spec.expression),
                    &[],
                )?;
            }
            super::refuse_duplicates(server, before, &specs, Dialect::Postgres, |q| {
                Ok(conn.query(q, &[])?.first().map(|r| r.get(0)))
            })
        })
    }
}

/// Creates an empty database beside the one `base` names (`postgres://user@host[:port][/db]`)
/// and returns its URL: each test, benchmark or ephemeral run gets a database of its own.
pub fn fresh_database(base: &str, prefix: &str) -> Result<String, StoreError> {
    let mut url = url::Url::parse(base)
        .map_err(|e| StoreError::Migration(format!("database URL {base:?}: {e}")))?;
    url.set_path("/postgres");
    let admin: tokio_postgres::Config = url
        .as_str()
        .parse()
        .map_err(|e| StoreError::Migration(format!("database URL {base:?}: {e}")))?;
    let name = format!("{prefix}_{}", uuid::Uuid::new_v4().simple());
    // A runtime of its own, made and dropped on a thread of its own (neither may happen
    // inside another runtime).
    std::thread::scope(|s| {
        s.spawn(|| {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| StoreError::Migration(e.to_string()))?;
            rt.block_on(async {
                let client = connect(&admin).await?;
                client
                    .batch_execute(&format!("CREATE DATABASE \"{name}\""))
                    .await?;
                Ok::<_, StoreError>(())
            })
        })
        .join()
        .unwrap_or_else(|p| resume_unwind(p))
    })?;
    url.set_path(&format!("/{name}"));
    Ok(url.to_string())
}

async fn connect(cfg: &tokio_postgres::Config) -> Result<tokio_postgres::Client, StoreError> {
    let (client, connection) = cfg.connect(NoTls).await?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::warn!(error = %e, "PostgreSQL connection ended");
        }
    });
    // Notices ("index … already exists, skipping") are not news.
    client
        .batch_execute("SET client_min_messages TO warning")
        .await?;
    Ok(client)
}

/// Runs the migrations under a session advisory lock, so that replicas starting together
/// migrate once.
async fn migrate(c: &mut tokio_postgres::Client) -> Result<(), StoreError> {
    c.execute("SELECT pg_advisory_lock($1)", &[&SCHEMA_LOCK])
        .await?;
    let mut out = embedded::migrations::runner()
        .run_async(c)
        .await
        .map(|_| ())
        .map_err(|e| StoreError::Migration(e.to_string()));
    if out.is_ok() {
        out = drop_legacy_indexes(c).await;
    }
    c.execute("SELECT pg_advisory_unlock($1)", &[&SCHEMA_LOCK])
        .await?;
    out
}

/// Drops the per-server partial indexes of earlier versions (see `plan`): each of them
/// slowed every write, whichever server it was for. Under the schema lock.
async fn drop_legacy_indexes(c: &tokio_postgres::Client) -> Result<(), StoreError> {
    let rows = c
        .query(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() AND tablename = 'resources'",
            &[],
        )
        .await?;
    for r in rows {
        let (name, definition): (String, String) = (r.get(0), r.get(1));
        if plan::is_legacy_index(&name, &definition) {
            c.batch_execute(&format!(
                "DROP INDEX IF EXISTS \"{}\"",
                name.replace('"', "")
            ))
            .await?;
        }
    }
    Ok(())
}

/// The cursor-signing key every replica shares (made by the first).
async fn cursor_key(c: &tokio_postgres::Client) -> Result<Vec<u8>, StoreError> {
    let fresh: Vec<u8> = uuid::Uuid::new_v4()
        .as_bytes()
        .iter()
        .chain(uuid::Uuid::new_v4().as_bytes())
        .copied()
        .collect();
    c.execute(
        "INSERT INTO secrets (name, value) VALUES ('cursor', $1) ON CONFLICT (name) DO NOTHING",
        &[&fresh],
    )
    .await?;
    let row = c
        .query_one("SELECT value FROM secrets WHERE name='cursor'", &[])
        .await?;
    Ok(row.get(0))
}

/// A connection in a read or in a write transaction.
pub struct PgConn<'a> {
    client: &'a tokio_postgres::Client,
    statements: RefCell<&'a mut HashMap<String, Statement>>,
    write: bool,
    /// Servers whose write lock this transaction holds.
    locked: RefCell<Vec<String>>,
    /// A transaction is wanted but BEGIN not sent yet: it goes with the first statement, or
    /// with the first write lock in one round trip (a write that ends up running nothing
    /// needs neither BEGIN nor COMMIT).
    pending_begin: std::cell::Cell<bool>,
}

type Rows = Vec<tokio_postgres::Row>;

impl<'a> PgConn<'a> {
    fn new(c: &'a mut Client, write: bool) -> PgConn<'a> {
        PgConn {
            client: &c.client,
            statements: RefCell::new(&mut c.statements),
            write,
            locked: RefCell::new(Vec::new()),
            pending_begin: std::cell::Cell::new(false),
        }
    }

    /// A write connection whose transaction begins with its first statement.
    fn beginning(c: &'a mut Client) -> PgConn<'a> {
        let conn = PgConn::new(c, true);
        conn.pending_begin.set(true);
        conn
    }

    /// Whether BEGIN went out (so the transaction must end).
    fn began(&self) -> bool {
        !self.pending_begin.get()
    }

    fn begin_if_pending(&self) -> Result<(), tokio_postgres::Error> {
        if self.pending_begin.replace(false) {
            block_on(self.client.batch_execute("BEGIN"))?;
        }
        Ok(())
    }

    fn prepared(&self, sql: &str) -> Result<Statement, tokio_postgres::Error> {
        if let Some(s) = self.statements.borrow().get(sql) {
            return Ok(s.clone());
        }
        let st = block_on(self.client.prepare(sql))?;
        let mut cache = self.statements.borrow_mut();
        // Filters make statements without end; keep the cache bounded.
        if cache.len() >= 1024 {
            cache.clear();
        }
        cache.insert(sql.to_string(), st.clone());
        Ok(st)
    }

    fn query(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Rows, tokio_postgres::Error> {
        let st = self.prepared(sql)?;
        self.begin_if_pending()?;
        block_on(self.client.query(&st, params))
    }

    fn execute(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64, tokio_postgres::Error> {
        let st = self.prepared(sql)?;
        self.begin_if_pending()?;
        block_on(self.client.execute(&st, params))
    }

    fn query_params(&self, sql: &str, params: &[Param]) -> Result<Rows, tokio_postgres::Error> {
        let refs: Vec<&(dyn ToSql + Sync)> =
            params.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
        self.query(sql, &refs)
    }

    /// In a write: takes this server's write lock (held until the transaction ends).
    fn lock(&self, server_id: &str) -> Result<(), StoreError> {
        if !self.write || self.locked.borrow().iter().any(|s| s == server_id) {
            return Ok(());
        }
        if self.pending_begin.replace(false) {
            block_on(self.client.batch_execute(&format!(
                "BEGIN; SELECT pg_advisory_xact_lock(hashtextextended({}, 0))",
                super::sql::literal(server_id)
            )))?;
        } else {
            self.query(
                "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
                &[&server_id],
            )?;
        }
        self.locked.borrow_mut().push(server_id.to_string());
        Ok(())
    }

    /// [`super::check_unique`] on this connection.
    fn check_unique(&self, server: &ServerModel, r: &Row) -> Result<(), StoreError> {
        super::check_unique(server, r, Dialect::Postgres, |sql| {
            let params: [&(dyn tokio_postgres::types::ToSql + Sync); 4] =
                [&server.id, &r.resource_type, &r.id, &r.doc];
            Ok(self
                .query(sql, &params)?
                .first()
                .is_some_and(|row| row.get(0)))
        })
    }
}

const ROW_COLUMNS: &str =
    "r.id, r.resource_type, r.version, r.created, r.last_modified, r.doc::text";

fn row(r: &tokio_postgres::Row) -> Row {
    row_at(r, 0)
}

/// A [`Row`] from the columns of [`ROW_COLUMNS`], the first at column `at`.
fn row_at(r: &tokio_postgres::Row, at: usize) -> Row {
    Row {
        id: r.get(at),
        resource_type: r.get(at + 1),
        version: r.get(at + 2),
        created: r.get(at + 3),
        last_modified: r.get(at + 4),
        doc: r.get(at + 5),
    }
}

fn member(r: &tokio_postgres::Row) -> Member {
    Member {
        value: r.get(0),
        display: r.get(1),
        member_type: r.get(2),
    }
}

fn event_record(r: &tokio_postgres::Row) -> EventRecord {
    EventRecord {
        jti: r.get(0),
        created: r.get(1),
        claims: r.get(2),
        state: r.get(3),
        error: r.get(4),
    }
}

fn push_record(r: &tokio_postgres::Row) -> PushRecord {
    PushRecord {
        jti: r.get(0),
        receiver: r.get(1),
        state: r.get(2),
        attempts: r.get(3),
        error: r.get(4),
    }
}

/// A [`request_log::LogText`] from the columns of [`request_log::LOG_TEXT_COLUMNS`].
fn log_text(r: &tokio_postgres::Row) -> request_log::LogText {
    request_log::LogText {
        seq: r.get(0),
        entry: r.get(1),
        request_body: r.get(2),
        response_body: r.get(3),
    }
}

impl Conn for PgConn<'_> {
    fn log_entries(
        &self,
        server: &str,
        f: &request_log::LogFilter<'_>,
    ) -> Result<Vec<request_log::LogText>, StoreError> {
        let mut b = Binder::default();
        let mut sql = format!(
            "SELECT {} FROM request_log WHERE server_id={}",
            request_log::LOG_TEXT_COLUMNS,
            b.bind(Param::Text(server.into()))
        );
        if let Some(class) = f.status_class {
            let lo = b.bind(Param::Int(i64::from(class) * 100));
            sql.push_str(&format!(" AND status >= {lo} AND status < {lo} + 100"));
        }
        if let Some(code) = f.status {
            sql.push_str(&format!(
                " AND status = {}",
                b.bind(Param::Int(code.into()))
            ));
        }
        if let Some(m) = f.method {
            sql.push_str(&format!(
                " AND method = {}",
                b.bind(Param::Text(m.to_ascii_uppercase()))
            ));
        }
        if let Some(p) = f.path {
            sql.push_str(&format!(
                " AND strpos(lower(path COLLATE \"C\"), lower({} COLLATE \"C\")) > 0",
                b.bind(Param::Text(p.into()))
            ));
        }
        if let Some(after) = f.after {
            sql.push_str(&format!(" AND seq > {}", b.bind(Param::Int(after))));
        }
        sql.push_str(&format!(
            " ORDER BY seq DESC LIMIT {}",
            b.bind(Param::Int(f.limit as i64))
        ));
        Ok(self
            .query_params(&sql, &b.params)?
            .iter()
            .map(log_text)
            .collect())
    }

    fn log_entry(
        &self,
        server: &str,
        seq: i64,
    ) -> Result<Option<request_log::LogText>, StoreError> {
        let sql = format!(
            "SELECT {} FROM request_log WHERE server_id=$1 AND seq=$2",
            request_log::LOG_TEXT_COLUMNS
        );
        Ok(self.query(&sql, &[&server, &seq])?.first().map(log_text))
    }

    fn clear_log(&self, server: &str) -> Result<usize, StoreError> {
        Ok(self.execute("DELETE FROM request_log WHERE server_id=$1", &[&server])? as usize)
    }

    fn get(&self, server_id: &str, id: &str) -> Result<Option<Row>, StoreError> {
        self.lock(server_id)?;
        Ok(self
            .query(
                &format!("SELECT {ROW_COLUMNS} FROM resources r WHERE r.server_id=$1 AND r.id=$2"),
                &[&server_id, &id],
            )?
            .first()
            .map(row))
    }

    /// One statement, so one round trip (a user's GET): the resource is the row whose first
    /// column is NULL, then each group with its membership's place.
    fn get_with_groups(
        &self,
        server_id: &str,
        id: &str,
    ) -> Result<Option<(Row, Vec<GroupRef>)>, StoreError> {
        self.lock(server_id)?;
        let rows = self.query(
            &format!(
                "SELECT NULL::bigint, {ROW_COLUMNS} FROM resources r WHERE r.server_id=$1 AND r.id=$2 \
                 UNION ALL SELECT m.seq, g.id, g.resource_type, NULL, NULL, NULL, g.doc->>'displayName' \
                 FROM memberships m JOIN resources g ON g.server_id=m.server_id AND g.id=m.group_id \
                 WHERE m.server_id=$1 AND m.member_id=$2"
            ),
            &[&server_id, &id],
        )?;
        let (mut found, mut groups) = (None, Vec::new());
        for r in &rows {
            match r.get::<_, Option<i64>>(0) {
                None => found = Some(row_at(r, 1)),
                Some(seq) => groups.push((
                    seq,
                    GroupRef {
                        id: r.get(1),
                        resource_type: r.get(2),
                        display: r.get(6),
                    },
                )),
            }
        }
        Ok(super::with_groups_in_join_order(found, groups))
    }

    fn insert(&self, server: &ServerModel, r: &Row) -> Result<(), StoreError> {
        self.lock(&server.id)?;
        self.check_unique(server, r)?;
        // ON CONFLICT DO NOTHING: a refused insert (an id already used) leaves the
        // transaction usable.
        let n = self.execute(
            "INSERT INTO resources (server_id, resource_type, id, version, created, last_modified, doc) \
             VALUES ($1,$2,$3,$4,$5,$6,$7::text::jsonb) ON CONFLICT DO NOTHING",
            &[&server.id, &r.resource_type, &r.id, &r.version, &r.created, &r.last_modified, &r.doc],
        )?;
        if n == 0 {
            return Err(StoreError::Unique { attribute: None });
        }
        Ok(())
    }

    fn update(
        &self,
        server: &ServerModel,
        r: &Row,
        unique: UniqueValues,
    ) -> Result<(), StoreError> {
        self.lock(&server.id)?;
        if unique == UniqueValues::MayChange {
            self.check_unique(server, r)?;
        }
        self.execute(
            "UPDATE resources SET version=$3, last_modified=$4, doc=$5::text::jsonb WHERE server_id=$1 AND id=$2",
            &[&server.id, &r.id, &r.version, &r.last_modified, &r.doc],
        )?;
        Ok(())
    }

    fn delete(&self, server_id: &str, id: &str) -> Result<bool, StoreError> {
        self.lock(server_id)?;
        let n = self.execute(
            "DELETE FROM resources WHERE server_id=$1 AND id=$2",
            &[&server_id, &id],
        )?;
        self.execute(
            "DELETE FROM memberships WHERE server_id=$1 AND (group_id=$2 OR member_id=$2)",
            &[&server_id, &id],
        )?;
        Ok(n > 0)
    }

    fn exists(
        &self,
        server_id: &str,
        id: &str,
        resource_types: &[&str],
    ) -> Result<bool, StoreError> {
        let rt: Option<String> = self
            .query(
                "SELECT resource_type FROM resources WHERE server_id=$1 AND id=$2",
                &[&server_id, &id],
            )?
            .first()
            .map(|r| r.get(0));
        Ok(rt
            .is_some_and(|rt| resource_types.is_empty() || resource_types.iter().any(|t| *t == rt)))
    }

    fn members_of(&self, server_id: &str, group_id: &str) -> Result<Vec<Member>, StoreError> {
        Ok(self
            .query(
                "SELECT m.member_id, m.display, coalesce(m.member_type, r.resource_type) FROM memberships m \
                 LEFT JOIN resources r ON r.server_id=m.server_id AND r.id=m.member_id \
                 WHERE m.server_id=$1 AND m.group_id=$2 ORDER BY m.seq",
                &[&server_id, &group_id],
            )?
            .iter()
            .map(member)
            .collect())
    }

    fn stored_members(&self, server_id: &str, group_id: &str) -> Result<Vec<Member>, StoreError> {
        Ok(self
            .query(
                "SELECT member_id, display, member_type FROM memberships WHERE server_id=$1 AND group_id=$2 ORDER BY seq",
                &[&server_id, &group_id],
            )?
            .iter()
            .map(member)
            .collect())
    }

    fn member(
        &self,
        server_id: &str,
        group_id: &str,
        member_id: &str,
    ) -> Result<Option<Member>, StoreError> {
        Ok(self
            .query(
                "SELECT member_id, display, member_type FROM memberships WHERE server_id=$1 AND group_id=$2 AND member_id=$3",
                &[&server_id, &group_id, &member_id],
            )?
            .first()
            .map(member))
    }

    fn remove_all_members(&self, server_id: &str, group_id: &str) -> Result<usize, StoreError> {
        self.lock(server_id)?;
        Ok(self.execute(
            "DELETE FROM memberships WHERE server_id=$1 AND group_id=$2",
            &[&server_id, &group_id],
        )? as usize)
    }

    fn find_id_by_value(
        &self,
        server_id: &str,
        resource_type: &str,
        attribute: &str,
        sub: Option<&str>,
        value: &str,
    ) -> Result<Option<String>, StoreError> {
        let scope = sql::scope("r", server_id, resource_type);
        let q = match sub {
            None => format!(
                "SELECT r.id FROM resources r WHERE {scope} AND lower({}) = lower($1::text COLLATE \"C\") LIMIT 1",
                sql::text("r.doc", None, attribute, None)
            ),
            Some(sub) => format!(
                "SELECT r.id FROM resources r WHERE {scope} AND EXISTS (SELECT 1 FROM {} e(value) WHERE lower({}) = lower($1::text COLLATE \"C\")) LIMIT 1",
                sql::elements(&sql::json("r.doc", None, attribute, None)),
                sql::text("e.value", None, sub, None)
            ),
        };
        Ok(self.query(&q, &[&value])?.first().map(|r| r.get(0)))
    }

    fn groups_of(&self, server_id: &str, member_id: &str) -> Result<Vec<GroupRef>, StoreError> {
        Ok(self
            .query(
                "SELECT g.id, g.resource_type, g.doc->>'displayName' FROM memberships m \
                 JOIN resources g ON g.server_id=m.server_id AND g.id=m.group_id \
                 WHERE m.server_id=$1 AND m.member_id=$2 ORDER BY m.seq",
                &[&server_id, &member_id],
            )?
            .iter()
            .map(|r| GroupRef {
                id: r.get(0),
                resource_type: r.get(1),
                display: r.get(2),
            })
            .collect())
    }

    fn groups_of_many(
        &self,
        server_id: &str,
        member_ids: &[&str],
    ) -> Result<HashMap<String, Vec<GroupRef>>, StoreError> {
        let mut out: HashMap<String, Vec<GroupRef>> = HashMap::new();
        if member_ids.is_empty() {
            return Ok(out);
        }
        let rows = self.query(
            "SELECT m.member_id, g.id, g.resource_type, g.doc->>'displayName' FROM memberships m \
             JOIN resources g ON g.server_id=m.server_id AND g.id=m.group_id \
             WHERE m.server_id=$1 AND m.member_id = ANY($2::text[]) ORDER BY m.seq",
            &[&server_id, &member_ids],
        )?;
        for r in &rows {
            out.entry(r.get(0)).or_default().push(GroupRef {
                id: r.get(1),
                resource_type: r.get(2),
                display: r.get(3),
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
        self.lock(server_id)?;
        if !remove.is_empty() {
            self.execute(
                "DELETE FROM memberships WHERE server_id=$1 AND group_id=$2 AND member_id = ANY($3::text[])",
                &[&server_id, &group_id, &remove],
            )?;
        }
        if !upsert.is_empty() {
            // One statement for the whole change, in the order given (a group of 10,000 members
            // is one round trip, not 10,000).
            let ids: Vec<&str> = upsert.iter().map(|m| m.value.as_str()).collect();
            let types: Vec<Option<&str>> =
                upsert.iter().map(|m| m.member_type.as_deref()).collect();
            let displays: Vec<Option<&str>> = upsert.iter().map(|m| m.display.as_deref()).collect();
            self.execute(
                "INSERT INTO memberships (server_id, group_id, member_id, member_type, display) \
                 SELECT $1, $2, u.id, u.ty, u.display FROM unnest($3::text[], $4::text[], $5::text[]) WITH ORDINALITY u(id, ty, display, i) ORDER BY u.i \
                 ON CONFLICT (server_id, group_id, member_id) DO UPDATE SET member_type=excluded.member_type, display=excluded.display",
                &[&server_id, &group_id, &ids, &types, &displays],
            )?;
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
        let order = match search.sort.as_ref().map(query::order_by) {
            Some(o) => format!("{o}, r.seq"),
            None => "r.seq".to_string(),
        };
        let mut b = Binder::default();
        let Some(q) = search.query.as_ref() else {
            let total: i64 = self
                .query(
                    &format!("SELECT coalesce((SELECT n FROM resource_counts r WHERE {scope}), 0)"),
                    &[],
                )?
                .first()
                .map(|r| r.get(0))
                .unwrap_or(0);
            if limit == 0 || offset >= total as usize {
                return Ok((total as usize, Vec::new()));
            }
            let (l, o) = (
                b.bind(Param::Int(limit as i64)),
                b.bind(Param::Int(offset as i64)),
            );
            let rows = self.query_params(
                // The rows skipped by OFFSET are walked in the (server, type, seq) index only;
                // documents are read for the page alone.
                &format!(
                    "SELECT {ROW_COLUMNS} FROM (SELECT r.seq FROM resources r WHERE {scope} ORDER BY {order} LIMIT {l} OFFSET {o}) p \
                     JOIN resources r ON r.seq = p.seq ORDER BY {order}"
                ),
                &b.params,
            )?;
            return Ok((total as usize, rows.iter().map(row).collect()));
        };
        let w = query::filter(q, &mut b);
        if offset == 0 && search.sort.is_none() && limit > 0 {
            // The usual IdP lookup (`userName eq "…"`, 0 or 1 match), as on SQLite: no ORDER
            // BY, so the planner takes the attribute's index even before the table has
            // statistics (ordered by seq it walked every resource of the type); a page that is
            // not full holds every match, so it is also the count.
            let l = b.bind(Param::Int(limit as i64));
            let mut rows: Vec<(i64, Row)> = self
                .query_params(
                    &format!("SELECT {ROW_COLUMNS}, r.seq FROM resources r WHERE {scope} AND ({w}) LIMIT {l}"),
                    &b.params,
                )?
                .iter()
                .map(|r| (r.get(6), row(r)))
                .collect();
            b.params.pop();
            if rows.len() < limit {
                rows.sort_by_key(|(seq, _)| *seq);
                let rows: Vec<Row> = rows.into_iter().map(|(_, r)| r).collect();
                return Ok((rows.len(), rows));
            }
        }
        let count_sql = format!("SELECT count(*) FROM resources r WHERE {scope} AND ({w})");
        if limit == 0 {
            let total: i64 = self.query_params(&count_sql, &b.params)?[0].get(0);
            return Ok((total as usize, Vec::new()));
        }
        let filter_params = b.params.len();
        let (l, o) = (
            b.bind(Param::Int(limit as i64)),
            b.bind(Param::Int(offset as i64)),
        );
        // The window count is taken over every match before LIMIT applies.
        let rows = self.query_params(
            &format!(
                "SELECT {ROW_COLUMNS}, p.total FROM (SELECT r.seq, count(*) OVER () AS total FROM resources r WHERE {scope} AND ({w}) ORDER BY {order} LIMIT {l} OFFSET {o}) p \
                 JOIN resources r ON r.seq = p.seq ORDER BY {order}"
            ),
            &b.params,
        )?;
        let total = match rows.first() {
            Some(r) => r.get::<_, i64>(6),
            None => self.query_params(&count_sql, &b.params[..filter_params])?[0].get(0),
        };
        Ok((total as usize, rows.iter().map(row).collect()))
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
        let mut b = Binder::default();
        let filter = match &search.query {
            Some(q) => query::filter(q, &mut b),
            None => "TRUE".into(),
        };
        let backward = matches!(from, Some(KeysetFrom::Before(_)));
        let (key_expr, kind, order) = query::keyset_order(search.sort.as_ref(), backward);
        let keyset = match from {
            None => "TRUE".to_string(),
            Some(KeysetFrom::After(k) | KeysetFrom::Before(k)) => {
                let descending = search.sort.as_ref().is_some_and(|s| s.descending);
                query::after(&key_expr, kind, descending, backward, k, &mut b)
            }
        };
        let l = b.bind(Param::Int(limit as i64));
        let q = format!(
            "SELECT {ROW_COLUMNS}, r.seq, to_jsonb({key_expr}) FROM resources r WHERE {scope} AND ({filter}) AND ({keyset}) ORDER BY {order} LIMIT {l}"
        );
        let rows = self.query_params(&q, &b.params)?;
        Ok((
            total,
            rows.iter()
                .map(|r| {
                    let key: Option<serde_json::Value> = r.get(7);
                    (
                        row(r),
                        Keyset {
                            key: key.unwrap_or(serde_json::Value::Null),
                            seq: r.get(6),
                        },
                    )
                })
                .collect(),
        ))
    }

    fn satisfies(
        &self,
        server_id: &str,
        id: &str,
        q: &crate::model::query::Query<'_>,
    ) -> Result<bool, StoreError> {
        let mut b = Binder::default();
        let (s, i) = (
            b.bind(Param::Text(server_id.into())),
            b.bind(Param::Text(id.into())),
        );
        let clause = query::filter(q, &mut b);
        let sql = format!(
            "SELECT EXISTS(SELECT 1 FROM resources r WHERE r.server_id={s} AND r.id={i} AND ({clause}))"
        );
        Ok(self.query_params(&sql, &b.params)?[0].get(0))
    }

    fn all_rows(&self, server_id: &str) -> Result<Vec<Row>, StoreError> {
        Ok(self
            .query(
                &format!(
                    "SELECT {ROW_COLUMNS} FROM resources r WHERE r.server_id=$1 ORDER BY r.seq"
                ),
                &[&server_id],
            )?
            .iter()
            .map(row)
            .collect())
    }

    fn all_memberships(&self, server_id: &str) -> Result<Vec<(String, Member)>, StoreError> {
        Ok(self
            .query(
                "SELECT member_id, display, member_type, group_id FROM memberships WHERE server_id=$1 ORDER BY seq",
                &[&server_id],
            )?
            .iter()
            .map(|r| (r.get(3), member(r)))
            .collect())
    }

    fn delete_server(&self, server_id: &str) -> Result<usize, StoreError> {
        self.lock(server_id)?;
        self.execute("DELETE FROM memberships WHERE server_id=$1", &[&server_id])?;
        let n = self.execute("DELETE FROM resources WHERE server_id=$1", &[&server_id])?;
        // Deliveries go with their events (ON DELETE CASCADE).
        self.execute("DELETE FROM events WHERE server_id=$1", &[&server_id])?;
        Ok(n as usize)
    }

    fn record_event(
        &self,
        server_id: &str,
        jti: &str,
        created: &str,
        claims: &str,
        receivers: &[String],
    ) -> Result<(), StoreError> {
        let seq: i64 = self.query(
            "INSERT INTO events (server_id, jti, created, claims) VALUES ($1, $2, $3, $4) RETURNING seq",
            &[&server_id, &jti, &created, &claims],
        )?[0]
            .get(0);
        if !receivers.is_empty() {
            self.execute(
                "INSERT INTO event_deliveries (event_seq, receiver, next_at) SELECT $1, r, 0 FROM unnest($2::text[]) r",
                &[&seq, &receivers],
            )?;
        }
        Ok(())
    }

    fn due_deliveries(&self, now_ms: i64, limit: usize) -> Result<Vec<Delivery>, StoreError> {
        // Replicas push from one table: two may take the same delivery at once, and the
        // receiver then gets the SET twice (push is at-least-once; receivers drop repeated
        // jti values, RFC 8935 §2).
        Ok(self
            .query(
                "SELECT d.id, e.server_id, e.jti, e.claims, d.receiver, d.attempts FROM event_deliveries d JOIN events e ON e.seq = d.event_seq \
                 WHERE d.state='pending' AND d.next_at <= $1 ORDER BY d.next_at, d.id LIMIT $2",
                &[&now_ms, &(limit as i64)],
            )?
            .iter()
            .map(|r| Delivery {
                id: r.get(0),
                server_id: r.get(1),
                jti: r.get(2),
                claims: r.get(3),
                receiver: r.get(4),
                attempts: r.get(5),
            })
            .collect())
    }

    fn delivery_attempted(
        &self,
        id: i64,
        state: &str,
        status: Option<u16>,
        error: Option<&str>,
        next_at_ms: i64,
    ) -> Result<(), StoreError> {
        let status = status.map(i64::from);
        self.execute(
            "UPDATE event_deliveries SET state=$2, attempts=attempts+1, last_status=$3, last_error=$4, next_at=$5 WHERE id=$1",
            &[&id, &state, &status, &error, &next_at_ms],
        )?;
        Ok(())
    }

    fn deliveries(&self, server_id: &str, limit: usize) -> Result<Vec<PushRecord>, StoreError> {
        Ok(self
            .query(
                "SELECT e.jti, d.receiver, d.state, d.attempts, d.last_error FROM event_deliveries d JOIN events e ON e.seq = d.event_seq \
                 WHERE d.event_seq IN (SELECT seq FROM events WHERE server_id=$1 ORDER BY seq DESC LIMIT $2) ORDER BY d.id",
                &[&server_id, &(limit as i64)],
            )?
            .iter()
            .map(push_record)
            .collect())
    }

    fn pending_events(
        &self,
        server_id: &str,
        max: usize,
    ) -> Result<(Vec<(String, String)>, bool), StoreError> {
        let mut rows: Vec<(String, String)> = self
            .query(
                "SELECT jti, claims FROM events WHERE server_id=$1 AND state='pending' ORDER BY seq LIMIT $2",
                &[&server_id, &(max as i64).saturating_add(1)],
            )?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        let more = rows.len() > max;
        rows.truncate(max);
        Ok((rows, more))
    }

    fn events_of_txn(
        &self,
        server_id: &str,
        txn: &str,
    ) -> Result<Vec<(String, String)>, StoreError> {
        Ok(self
            .query(
                "SELECT jti, claims FROM events WHERE server_id=$1 AND \
                 ((claims::jsonb->>'txn') = $2 OR left(claims::jsonb->>'txn', length($2) + 1) = $2 || ':') ORDER BY seq",
                &[&server_id, &txn],
            )?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect())
    }

    fn settle_events(
        &self,
        server_id: &str,
        acked: &[String],
        failed: &[(String, String)],
    ) -> Result<(), StoreError> {
        if !acked.is_empty() {
            self.execute(
                "UPDATE events SET state='acknowledged' WHERE server_id=$1 AND jti = ANY($2::text[]) AND state='pending'",
                &[&server_id, &acked],
            )?;
        }
        for (jti, error) in failed {
            self.execute(
                "UPDATE events SET state='failed', error=$3 WHERE server_id=$1 AND jti=$2 AND state='pending'",
                &[&server_id, jti, error],
            )?;
        }
        Ok(())
    }

    fn put_grant(&self, server_id: &str, digest: &str, grant: &Grant) -> Result<(), StoreError> {
        // A day past expiry nothing can use a grant any more, not even to be told "expired".
        self.execute(
            "DELETE FROM oauth_grants WHERE expires_at < $1",
            &[&(crate::vocab::time::unix_secs() as i64 - 86400)],
        )?;
        self.execute(
            "INSERT INTO oauth_grants (server_id, digest, kind, client_id, expires_at, detail) VALUES ($1,$2,$3,$4,$5,$6) \
             ON CONFLICT (server_id, digest) DO UPDATE SET kind=excluded.kind, client_id=excluded.client_id, expires_at=excluded.expires_at, detail=excluded.detail",
            &[&server_id, &digest, &grant.kind, &grant.client_id, &grant.expires_at, &grant.detail],
        )?;
        Ok(())
    }

    fn grant(
        &self,
        server_id: &str,
        digest: &str,
        kind: &str,
        take: bool,
    ) -> Result<Option<Grant>, StoreError> {
        // Taking deletes and returns in one statement: two replicas cannot both redeem a code.
        let sql = if take {
            "DELETE FROM oauth_grants WHERE server_id=$1 AND digest=$2 AND kind=$3 RETURNING kind, client_id, expires_at, detail"
        } else {
            "SELECT kind, client_id, expires_at, detail FROM oauth_grants WHERE server_id=$1 AND digest=$2 AND kind=$3"
        };
        Ok(self
            .query(sql, &[&server_id, &digest, &kind])?
            .first()
            .map(|r| Grant {
                kind: r.get(0),
                client_id: r.get(1),
                expires_at: r.get(2),
                detail: r.get(3),
            }))
    }

    fn event_log(&self, server_id: &str, limit: usize) -> Result<Vec<EventRecord>, StoreError> {
        Ok(self
            .query(
                "SELECT jti, created, claims, state, error FROM events WHERE server_id=$1 ORDER BY seq DESC LIMIT $2",
                &[&server_id, &(limit as i64)],
            )?
            .iter()
            .map(event_record)
            .collect())
    }

    fn events_named(
        &self,
        server_id: &str,
        jtis: &[String],
    ) -> Result<(Vec<EventRecord>, Vec<PushRecord>), StoreError> {
        let (mut events, mut pushes) = (Vec::new(), Vec::new());
        for jti in jtis {
            events.extend(
                self.query(
                    "SELECT jti, created, claims, state, error FROM events WHERE server_id=$1 AND jti=$2",
                    &[&server_id, jti],
                )?
                .iter()
                .map(event_record),
            );
            pushes.extend(
                self.query(
                    "SELECT e.jti, d.receiver, d.state, d.attempts, d.last_error FROM event_deliveries d JOIN events e ON e.seq = d.event_seq \
                     WHERE e.server_id=$1 AND e.jti=$2 ORDER BY d.id",
                    &[&server_id, jti],
                )?
                .iter()
                .map(push_record),
            );
        }
        Ok((events, pushes))
    }

    fn all_counts(&self) -> Result<Vec<(String, String, i64)>, StoreError> {
        Ok(self
            .query(
                "SELECT server_id, resource_type, n FROM resource_counts WHERE n > 0 ORDER BY server_id, resource_type",
                &[],
            )?
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect())
    }

    fn counts(&self, server_id: &str) -> Result<Vec<(String, i64)>, StoreError> {
        Ok(self
            .query(
                "SELECT resource_type, n FROM resource_counts WHERE server_id=$1 ORDER BY resource_type",
                &[&server_id],
            )?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect())
    }

    fn user_names(
        &self,
        server_id: &str,
        resource_type: &str,
    ) -> Result<std::collections::HashSet<String>, StoreError> {
        let scope = sql::scope("r", server_id, resource_type);
        Ok(self
            .query(
                &format!(
                    "SELECT lower({}) FROM resources r WHERE {scope}",
                    sql::text("r.doc", None, "userName", None)
                ),
                &[],
            )?
            .iter()
            .filter_map(|r| r.get::<_, Option<String>>(0))
            .collect())
    }

    fn put_snapshot(
        &self,
        server_id: &str,
        name: &str,
        taken: &str,
        data: &str,
    ) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO snapshots (server_id, name, taken, data) VALUES ($1,$2,$3,$4) \
             ON CONFLICT (server_id, name) DO UPDATE SET taken=excluded.taken, data=excluded.data",
            &[&server_id, &name, &taken, &data],
        )?;
        Ok(())
    }

    fn snapshots(&self, server_id: &str) -> Result<Vec<Snapshot>, StoreError> {
        Ok(self
            .query(
                "SELECT name, taken FROM snapshots WHERE server_id=$1 ORDER BY name",
                &[&server_id],
            )?
            .iter()
            .map(|r| Snapshot {
                name: r.get(0),
                taken: r.get(1),
            })
            .collect())
    }

    fn snapshot_data(&self, server_id: &str, name: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .query(
                "SELECT data FROM snapshots WHERE server_id=$1 AND name=$2",
                &[&server_id, &name],
            )?
            .first()
            .map(|r| r.get(0)))
    }

    fn delete_snapshots(&self, server_id: &str, name: Option<&str>) -> Result<usize, StoreError> {
        Ok(match name {
            Some(n) => self.execute(
                "DELETE FROM snapshots WHERE server_id=$1 AND name=$2",
                &[&server_id, &n],
            )?,
            None => self.execute("DELETE FROM snapshots WHERE server_id=$1", &[&server_id])?,
        } as usize)
    }

    fn put_ephemeral(&self, id: &str, definition: &str, created: &str) -> Result<bool, StoreError> {
        Ok(self.execute(
            "INSERT INTO ephemeral_servers (id, definition, created) VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING",
            &[&id, &definition, &created],
        )? == 1)
    }

    fn delete_ephemeral(&self, id: &str) -> Result<(), StoreError> {
        self.execute("DELETE FROM ephemeral_servers WHERE id=$1", &[&id])?;
        Ok(())
    }

    fn ephemeral_servers(&self) -> Result<Vec<(String, String)>, StoreError> {
        Ok(self
            .query(
                "SELECT id, definition FROM ephemeral_servers ORDER BY created, id",
                &[],
            )?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect())
    }

    fn put_override(
        &self,
        server_id: &str,
        kind: &str,
        value: Option<&str>,
    ) -> Result<(), StoreError> {
        match value {
            Some(v) => self.execute(
                "INSERT INTO admin_overrides (server_id, kind, value) VALUES ($1, $2, $3) \
                 ON CONFLICT (server_id, kind) DO UPDATE SET value=excluded.value",
                &[&server_id, &kind, &v],
            )?,
            None => self.execute(
                "DELETE FROM admin_overrides WHERE server_id=$1 AND kind=$2",
                &[&server_id, &kind],
            )?,
        };
        Ok(())
    }

    fn overrides(&self) -> Result<Vec<(String, String, String)>, StoreError> {
        Ok(self
            .query("SELECT server_id, kind, value FROM admin_overrides", &[])?
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect())
    }
}

/// The request log's writer on PostgreSQL (see [`request_log::LogWriter`]).
pub struct PgLog {
    store: Arc<PgStore>,
}

impl PgLog {
    pub fn new(store: Arc<PgStore>) -> PgLog {
        PgLog { store }
    }

    pub fn replica_number(&self) -> i64 {
        self.store.replica
    }

    pub fn write(&self, rows: &[request_log::LogRow<'_>]) -> Result<(), StoreError> {
        self.store.transaction(Pool::Log, |c| {
            for r in rows {
                c.execute(
                    "INSERT INTO request_log (seq, server_id, at, method, path, status, entry, request_body, response_body) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9) \
                     ON CONFLICT (seq) DO UPDATE SET entry=excluded.entry, status=excluded.status, \
                     request_body=excluded.request_body, response_body=excluded.response_body",
                    &[
                        &r.seq,
                        &r.server,
                        &r.at,
                        &r.method,
                        &r.path,
                        &i64::from(r.status),
                        &r.entry,
                        &r.request_body,
                        &r.response_body,
                    ],
                )?;
            }
            let caps = request_log::capacities(rows);
            for (server, cap) in caps {
                c.execute(
                    "DELETE FROM request_log WHERE server_id=$1 AND seq <= (SELECT seq FROM request_log WHERE server_id=$1 ORDER BY seq DESC LIMIT 1 OFFSET $2)",
                    &[&server, &(cap as i64)],
                )?;
            }
            Ok(())
        })
    }
}
