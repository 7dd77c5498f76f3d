//! The writer thread: a SQLite store's single-resource writes (create, replace, PATCH, delete)
//! run one after another on one thread of their own, which commits each run of queued writes
//! as one transaction before it answers them.
//!
//! Run on the blocking pool, each write took a pool thread, then the writer connection's lock
//! (contended by up to eight such threads), then waited on a condition variable for the
//! COMMIT that held it: a profile of creates at 32 connections put a fifth of the server's CPU
//! in futexes, `sched_yield` and the pool's own lock. Here a write is one message in and one
//! reply out, and the thread, busy under load, never sleeps between them; a transaction holds
//! every write queued when it began (up to [`MAX_JOBS`]) instead of the few threads that
//! happened to wait. The one connection already ran the writes one at a time; what now also
//! runs on this thread is their parsing and rendering, a fifth of a write's engine time.
//!
//! A write with nobody to share a transaction with (no other write queued or running, none
//! answered by the thread in the last [`STREAM_GAP`], the connection free) runs where it is
//! asked instead, on the request's worker like a read of one resource, and commits alone,
//! when its caller calls it small (a request body of at most 64 KB: a group of thousands of
//! members, written there, would hold the worker and the requests queued on it).
//! Sent to the thread, it cost two wake-ups, the writer's and then the worker's: one
//! connection adding and removing group members spent 58% of the process's CPU in the
//! kernel, mostly futex, epoll and eventfd calls (measured, three alternating pairs: p50
//! 0.41 / 0.38 / 0.42 → 0.23 / 0.21 / 0.24 ms, CPU 437 / 390 / 456 → 267 / 268 / 284 µs per
//! request). The gap keeps a stream of concurrent writes on the thread, sharing transactions:
//! with only the in-flight check, PATCHes at 32 connections, all of whose writes are answered
//! now and then, ran some on the workers and fell from 17.2 / 11.5 / 17.0% to 14.2 / 13.6 /
//! 14.8% of the bare handler.
//!
//! A reply goes out only after the COMMIT that holds the write: an acknowledged write is as
//! durable as before. A write refused on its own is answered with its refusal; when the
//! COMMIT fails, every write it held that had succeeded fails with it.

use super::StoreError;
use super::writer::Writer;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, OnceLock};

/// A write: runs on the writer thread and returns what answers it once its transaction ended.
pub type Job = Box<dyn FnOnce() -> Reply + Send>;

/// Answers a write; called with whether its transaction was committed.
pub type Reply = Box<dyn FnOnce(bool) + Send>;

/// Writes per transaction at most. It bounds how long the first of them waits for its answer,
/// and keeps the two sides of a write busy at once: while the writer runs the next few writes,
/// the async workers send the answers to the last few and read the requests that follow. With
/// every queued write in one transaction (up to 64), 32 connections' writes all waited for
/// one COMMIT, and then the writer waited for all of them to come back: during PATCHes the
/// process used 1.06 of the 2 cores and the machine sat 30% idle (measured: PATCH 7,787 → 9,819/s at 32 connections, medians of five
/// in-process runs; `scimlab serve` alone, three alternating pairs: creates 5,792/5,676/6,475
/// → 6,905/6,282/9,234/s, PATCH 4,304/4,706/7,006 → 4,735/7,786/7,977/s).
const MAX_JOBS: usize = 8;

/// How long after the thread last answered writes a write still goes to it: longer than the
/// gaps in a stream of concurrent writes, shorter than one client's pause between writes.
const STREAM_GAP: std::time::Duration = std::time::Duration::from_millis(1);

/// The writer thread of one store, started by its first write.
pub struct Serial {
    writer: Arc<Writer>,
    /// Writes asked for and not answered yet, on the thread or where they were asked.
    in_flight: Arc<AtomicUsize>,
    /// Until when ([`clock`]) writes go to the thread: `stream_gap` past its last answers.
    streaming_until: Arc<AtomicU64>,
    /// [`STREAM_GAP`] (tests change it).
    stream_gap: std::time::Duration,
    /// `None` when the thread could not be started (writes then run where they are asked).
    jobs: OnceLock<Option<Sender<Job>>>,
}

impl Serial {
    pub fn new(writer: Arc<Writer>) -> Serial {
        Serial {
            writer,
            in_flight: Arc::new(AtomicUsize::new(0)),
            streaming_until: Arc::new(AtomicU64::new(0)),
            stream_gap: STREAM_GAP,
            jobs: OnceLock::new(),
        }
    }

    /// Runs `job` here, answered before this returns, when it is the only write and `small`
    /// (the caller's word that it is quick: it holds the calling thread; see the module's
    /// notes); otherwise queues it. Gives it back when there is no writer thread.
    pub fn submit(&self, job: Job, small: bool) -> Result<(), Job> {
        let in_flight = InFlight::new(&self.in_flight);
        // Cheapest first: under load a write is rarely alone, and then neither the clock nor
        // the writer's lock is looked at.
        if small && in_flight.alone && !self.streaming() && self.writer.is_free() {
            // Each of its writes commits on its own (or with one that arrived meanwhile),
            // before it returns. A job that panicked drops its reply sender, as on the thread.
            if let Ok(reply) = catch_unwind(AssertUnwindSafe(job)) {
                reply(true);
            }
            return Ok(());
        }
        self.queue(job, in_flight)
    }

    /// Whether the thread answered writes less than `stream_gap` ago.
    fn streaming(&self) -> bool {
        clock() < self.streaming_until.load(Ordering::Relaxed)
    }

    /// Queues `job` for the thread; it stays counted in flight until answered.
    fn queue(&self, job: Job, in_flight: InFlight) -> Result<(), Job> {
        let job: Job = Box::new(move || {
            let reply = job();
            Box::new(move |committed| {
                drop(in_flight);
                reply(committed)
            })
        });
        let jobs = self.jobs.get_or_init(|| {
            let (tx, rx) = channel();
            let writer = self.writer.clone();
            let streaming_until = self.streaming_until.clone();
            let gap = u64::try_from(self.stream_gap.as_nanos()).unwrap_or(u64::MAX);
            let spawned = std::thread::Builder::new()
                .name("scimlab-writer".into())
                .spawn(move || run(&writer, &rx, &streaming_until, gap));
            match spawned {
                Ok(_) => Some(tx),
                Err(e) => {
                    tracing::warn!(error = %e, "no writer thread: writes run on the blocking pool");
                    None
                }
            }
        });
        match jobs {
            // The thread ends only when the store (and with it the sender) is dropped.
            Some(tx) => tx.send(job).map_err(|e| e.0),
            None => Err(job),
        }
    }
}

/// One write asked for and not answered yet: counted from its creation to its drop.
struct InFlight {
    count: Arc<AtomicUsize>,
    /// Whether no other write was in flight when this one was asked for.
    alone: bool,
}

impl InFlight {
    fn new(count: &Arc<AtomicUsize>) -> InFlight {
        let before = count.fetch_add(1, Ordering::SeqCst);
        InFlight {
            count: count.clone(),
            alone: before == 0,
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.count.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The writer thread's loop: ends when the store is dropped.
fn run(writer: &Writer, jobs: &Receiver<Job>, streaming_until: &AtomicU64, gap: u64) {
    while let Ok(first) = jobs.recv() {
        let mut replies: Vec<Reply> = Vec::new();
        let committed = writer.batched(|| {
            let mut next = Some(first);
            while let Some(job) = next {
                // A job that panicked drops its reply sender: its request fails on its own.
                if let Ok(reply) = catch_unwind(AssertUnwindSafe(job)) {
                    replies.push(reply);
                }
                // Once the transaction is lost, later writes would be refused with it: they
                // wait for the next one instead.
                next = if replies.len() < MAX_JOBS && !writer.batch_is_lost() {
                    jobs.try_recv().ok()
                } else {
                    None
                };
            }
        });
        let kept = committed.is_ok();
        if let Err(e) = committed {
            log_lost(&e);
        }
        streaming_until.store(clock().saturating_add(gap), Ordering::Relaxed);
        for reply in replies {
            reply(kept);
        }
    }
}

/// Nanoseconds on a monotonic clock (since its first reading).
fn clock() -> u64 {
    static START: OnceLock<std::time::Instant> = OnceLock::new();
    let elapsed = START.get_or_init(std::time::Instant::now).elapsed();
    u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX)
}

fn log_lost(e: &StoreError) {
    tracing::error!(error = %e, "a transaction of queued writes failed to commit; its writes were answered with errors");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::writer::Undo;
    use rusqlite::Connection;
    use std::sync::mpsc;

    /// A writer thread on a new WAL database with `CREATE TABLE t (v TEXT UNIQUE)`, and a
    /// connection of its own that counts the committed rows.
    fn serial() -> (tempfile::TempDir, Serial, Arc<Writer>, Connection) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let c = Connection::open(&path).unwrap();
        c.execute_batch("PRAGMA journal_mode=WAL; CREATE TABLE t (v TEXT UNIQUE)")
            .unwrap();
        let writer = Arc::new(Writer::new(c).unwrap());
        let outside = Connection::open(&path).unwrap();
        (dir, Serial::new(writer.clone()), writer, outside)
    }

    /// Queues `job` for the thread whatever else is in flight: a first job that holds the
    /// thread while the test queues others behind it.
    fn queued(serial: &Serial, job: Job) {
        serial
            .queue(job, InFlight::new(&serial.in_flight))
            .ok()
            .unwrap();
    }

    /// A job answering on `answers` with the name of the thread it ran on, once committed.
    fn on_thread(answers: &mpsc::Sender<String>) -> Job {
        let answers = answers.clone();
        Box::new(move || {
            let name = std::thread::current()
                .name()
                .unwrap_or_default()
                .to_string();
            Box::new(move |committed| {
                assert!(committed);
                let _ = answers.send(name);
            })
        })
    }

    /// With no other write in flight and the thread not answering a stream of writes, a
    /// write runs on the thread that asks for it and is answered before `submit` returns;
    /// with another in flight, or within the gap after the thread's last answers, it goes
    /// to the thread.
    #[test]
    fn a_lone_write_runs_where_it_is_asked_and_others_go_to_the_thread() {
        let (_dir, mut serial, writer, outside) = serial();
        let here = std::thread::current()
            .name()
            .unwrap_or_default()
            .to_string();
        let (answers, answered) = mpsc::channel();
        serial.stream_gap = std::time::Duration::from_secs(3600);
        let (done, _) = mpsc::channel();
        serial
            .submit(insert(&writer, "alone".into(), done), true)
            .ok()
            .unwrap();
        assert_eq!(
            count(&outside, "alone"),
            1,
            "committed before submit returned"
        );
        serial.submit(on_thread(&answers), true).ok().unwrap();
        assert_eq!(answered.try_recv().unwrap(), here);

        // Behind a write the thread holds: queued, answered on the thread.
        let (release, held) = mpsc::channel::<()>();
        queued(
            &serial,
            Box::new(move || {
                held.recv().unwrap();
                Box::new(|_| {})
            }),
        );
        serial.submit(on_thread(&answers), true).ok().unwrap();
        assert!(answered.try_recv().is_err(), "waits for the held write");
        release.send(()).unwrap();
        assert_eq!(answered.recv().unwrap(), "scimlab-writer");

        // The thread has just answered: within the (hour-long) gap, the next write goes to
        // it even though nothing else is in flight.
        serial.submit(on_thread(&answers), true).ok().unwrap();
        assert_eq!(answered.recv().unwrap(), "scimlab-writer");
    }

    /// Once the gap after the thread's last answers has passed, a lone write runs here again;
    /// one its caller does not call small goes to the thread all the same.
    #[test]
    fn after_the_gap_a_lone_write_runs_where_it_is_asked_again() {
        let (_dir, mut serial, _writer, _outside) = serial();
        serial.stream_gap = std::time::Duration::from_millis(1);
        let here = std::thread::current()
            .name()
            .unwrap_or_default()
            .to_string();
        let (answers, answered) = mpsc::channel();
        queued(&serial, on_thread(&answers));
        assert_eq!(answered.recv().unwrap(), "scimlab-writer");
        std::thread::sleep(std::time::Duration::from_millis(20));
        serial.submit(on_thread(&answers), true).ok().unwrap();
        assert_eq!(answered.try_recv().unwrap(), here);
        serial.submit(on_thread(&answers), false).ok().unwrap();
        assert_eq!(answered.recv().unwrap(), "scimlab-writer");
    }

    fn count(c: &Connection, v: &str) -> i64 {
        c.query_row("SELECT count(*) FROM t WHERE v = ?1", [v], |r| r.get(0))
            .unwrap()
    }

    /// A job inserting `v` (as a write that checks before it changes anything), answering on
    /// `answers` with `v`, whether the insert succeeded, and whether it was committed.
    fn insert(writer: &Arc<Writer>, v: String, answers: mpsc::Sender<(String, bool, bool)>) -> Job {
        let writer = writer.clone();
        Box::new(move || {
            let r: Result<usize, StoreError> = writer.write(Undo::Transaction, |c| {
                Ok(c.execute("INSERT INTO t VALUES (?1)", [&v])?)
            });
            Box::new(move |committed| {
                let _ = answers.send((v, r.is_ok(), committed));
            })
        })
    }

    /// Writes queued from many threads: each is answered once, a refused one alone, and an
    /// answered success is already committed (another connection reads it).
    #[test]
    fn queued_writes_are_answered_after_their_commit_and_fail_alone() {
        let (_dir, serial, writer, outside) = serial();
        let serial = Arc::new(serial);
        let (answers, answered) = mpsc::channel();
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let (serial, writer, answers) = (serial.clone(), writer.clone(), answers.clone());
                std::thread::spawn(move || {
                    for i in 0..200 {
                        // Every 20th value is also written by every other thread.
                        let v = if i % 20 == 0 {
                            format!("dup{i}")
                        } else {
                            format!("{t}-{i}")
                        };
                        assert!(
                            serial
                                .submit(insert(&writer, v, answers.clone()), true)
                                .is_ok()
                        );
                    }
                })
            })
            .collect();
        drop(answers);
        for t in threads {
            t.join().unwrap();
        }
        let (mut ok, mut answers) = (0, 0);
        for (v, inserted, committed) in answered {
            answers += 1;
            assert!(committed, "{v}: nothing failed to commit");
            if inserted {
                ok += 1;
                assert_eq!(
                    count(&outside, &v),
                    1,
                    "{v} is answered, so it is committed"
                );
            }
        }
        assert_eq!(answers, 8 * 200);
        // 8 × 190 values of one thread's own, and one of each of the 10 shared values.
        assert_eq!(ok, 8 * 190 + 10);
    }

    /// A transaction holds at most `MAX_JOBS` writes, in the order they were queued: with
    /// more queued, the first are answered before the rest run.
    #[test]
    fn a_transaction_holds_at_most_max_jobs_writes() {
        let (_dir, serial, writer, _outside) = serial();
        let (answers, answered) = mpsc::channel();
        // The first write holds the thread until the others are queued behind it.
        let (release, held) = mpsc::channel::<()>();
        let mut held = Some(held);
        let writes = 2 * MAX_JOBS + 1;
        for i in 0..writes {
            let (w, answers, wait) = (writer.clone(), answers.clone(), held.take());
            let job: Job = Box::new(move || {
                if let Some(wait) = wait {
                    wait.recv().unwrap();
                }
                let r: Result<usize, StoreError> = w.write(Undo::Transaction, |c| {
                    Ok(c.execute("INSERT INTO t VALUES (?1)", [i.to_string()])?)
                });
                assert!(r.is_ok());
                // Answered after the COMMIT that held it: the transactions ended so far
                // tell which one that was.
                Box::new(move |committed| {
                    let _ = answers.send((i, committed, w.transactions_ended()));
                })
            });
            if i == 0 {
                queued(&serial, job);
            } else {
                serial.submit(job, true).ok().unwrap();
            }
        }
        release.send(()).unwrap();
        let got: Vec<(usize, bool, u64)> = (0..writes).map(|_| answered.recv().unwrap()).collect();
        assert!(got.iter().all(|(_, committed, _)| *committed));
        assert!(got.windows(2).all(|w| w[0].0 < w[1].0), "answered in order");
        let mut sizes = std::collections::BTreeMap::new();
        for (_, _, txn) in &got {
            *sizes.entry(*txn).or_insert(0) += 1;
        }
        let sizes: Vec<usize> = sizes.into_values().collect();
        assert_eq!(sizes, [MAX_JOBS, MAX_JOBS, 1]);
    }

    /// Writes queued together share a transaction: when one of them fails after a change
    /// (which rolls the transaction back), every write it held is answered as not committed
    /// and none of them stays; a write queued behind it runs in a new transaction. A job that
    /// panics is not answered; the thread goes on.
    #[test]
    fn a_lost_transaction_fails_every_write_it_held_and_the_thread_goes_on() {
        let (_dir, serial, writer, outside) = serial();
        let (answers, answered) = mpsc::channel();
        // The first write holds the thread until the others are queued behind it.
        let (release, held) = mpsc::channel::<()>();
        let first = insert(&writer, "first".into(), answers.clone());
        queued(
            &serial,
            Box::new(move || {
                held.recv().unwrap();
                first()
            }),
        );
        serial
            .submit(insert(&writer, "second".into(), answers.clone()), true)
            .ok()
            .unwrap();
        let w = writer.clone();
        let lost = answers.clone();
        serial
            .submit(
                Box::new(move || {
                    let r: Result<(), StoreError> = w.write(Undo::Transaction, |c| {
                        c.execute("INSERT INTO t VALUES ('third')", [])?;
                        Err(StoreError::Commit)
                    });
                    Box::new(move |committed| {
                        let _ = lost.send(("third".into(), r.is_ok(), committed));
                    })
                }),
                true,
            )
            .ok()
            .unwrap();
        // Queued behind the loss: runs in a transaction of its own.
        serial
            .submit(insert(&writer, "fourth".into(), answers.clone()), true)
            .ok()
            .unwrap();
        serial
            .submit(Box::new(|| panic!("a bug in one write")), true)
            .ok()
            .unwrap();
        release.send(()).unwrap();
        let mut got: Vec<_> = (0..4).map(|_| answered.recv().unwrap()).collect();
        got.sort();
        assert_eq!(
            got,
            [
                ("first".to_string(), true, false),
                ("fourth".to_string(), true, true),
                ("second".to_string(), true, false),
                ("third".to_string(), false, false)
            ]
        );
        assert_eq!(count(&outside, "fourth"), 1);
        for v in ["first", "second", "third"] {
            assert_eq!(count(&outside, v), 0, "{v} was rolled back");
        }
        // The thread survived the panic and commits what comes next.
        serial
            .submit(insert(&writer, "after".into(), answers), true)
            .ok()
            .unwrap();
        assert_eq!(answered.recv().unwrap(), ("after".to_string(), true, true));
        assert_eq!(count(&outside, "after"), 1);
    }
}
