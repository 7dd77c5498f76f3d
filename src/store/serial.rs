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
//! A reply goes out only after the COMMIT that holds the write: an acknowledged write is as
//! durable as before. A write refused on its own is answered with its refusal; when the
//! COMMIT fails, every write it held that had succeeded fails with it.

use super::StoreError;
use super::writer::Writer;
use std::panic::{AssertUnwindSafe, catch_unwind};
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

/// The writer thread of one store, started by its first write.
pub struct Serial {
    writer: Arc<Writer>,
    /// `None` when the thread could not be started (writes then run where they are asked).
    jobs: OnceLock<Option<Sender<Job>>>,
}

impl Serial {
    pub fn new(writer: Arc<Writer>) -> Serial {
        Serial {
            writer,
            jobs: OnceLock::new(),
        }
    }

    /// Queues `job`; gives it back when there is no writer thread.
    pub fn submit(&self, job: Job) -> Result<(), Job> {
        let jobs = self.jobs.get_or_init(|| {
            let (tx, rx) = channel();
            let writer = self.writer.clone();
            let spawned = std::thread::Builder::new()
                .name("scimlab-writer".into())
                .spawn(move || run(&writer, &rx));
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

/// The writer thread's loop: ends when the store is dropped.
fn run(writer: &Writer, jobs: &Receiver<Job>) {
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
        for reply in replies {
            reply(kept);
        }
    }
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
                        assert!(serial.submit(insert(&writer, v, answers.clone())).is_ok());
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
        let queued = 2 * MAX_JOBS + 1;
        for i in 0..queued {
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
            serial.submit(job).ok().unwrap();
        }
        release.send(()).unwrap();
        let got: Vec<(usize, bool, u64)> = (0..queued).map(|_| answered.recv().unwrap()).collect();
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
        serial
            .submit(Box::new(move || {
                held.recv().unwrap();
                first()
            }))
            .ok()
            .unwrap();
        serial
            .submit(insert(&writer, "second".into(), answers.clone()))
            .ok()
            .unwrap();
        let w = writer.clone();
        let lost = answers.clone();
        serial
            .submit(Box::new(move || {
                let r: Result<(), StoreError> = w.write(Undo::Transaction, |c| {
                    c.execute("INSERT INTO t VALUES ('third')", [])?;
                    Err(StoreError::Commit)
                });
                Box::new(move |committed| {
                    let _ = lost.send(("third".into(), r.is_ok(), committed));
                })
            }))
            .ok()
            .unwrap();
        // Queued behind the loss: runs in a transaction of its own.
        serial
            .submit(insert(&writer, "fourth".into(), answers.clone()))
            .ok()
            .unwrap();
        serial
            .submit(Box::new(|| panic!("a bug in one write")))
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
            .submit(insert(&writer, "after".into(), answers))
            .ok()
            .unwrap();
        assert_eq!(answered.recv().unwrap(), ("after".to_string(), true, true));
        assert_eq!(count(&outside, "after"), 1);
    }
}
