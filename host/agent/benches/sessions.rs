//! Benchmark for issue 7 (sessions): batched session appends versus durable SQLite, live-session memory, 1,000 concurrent sessions.
//!
//! Run: `cargo bench -p agent-host-agent --bench sessions --features bench`. Prints one table and
//! exits. Everything runs in temp dirs on the same filesystem, so the sled
//! writer and SQLite pay the same fsync cost.

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use agent_host_agent::sessions::{LiveSessions, Sessions, WriterConfig};
use agent_host_llm::{Message, Usage};
use agent_host_runtime::bench::rss_kib;
use agent_host_runtime::store::DataStore;

const N_APPENDS: usize = 20_000;
const N_SQLITE: usize = 2_000;
const IDLE_SESSIONS: usize = 1_000;
const IDLE_MESSAGES: usize = 10;
const CONCURRENT: usize = 1_000;
const CONCURRENT_APPENDS: usize = 20;

/// A user message of about 200 bytes, numbered so bodies differ.
fn body(i: usize) -> String {
    format!("{i:08} {}", "lorem ipsum dolor sit amet ".repeat(7))
}

/// Counts live heap bytes. RSS alone under-reports the idle-session cost,
/// because the allocator reuses memory the setup freed; this is the exact
/// figure next to it.
struct Counting;

static LIVE_BYTES: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator unchanged, only counting sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE_BYTES.fetch_add(layout.size(), Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE_BYTES.fetch_sub(layout.size(), Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE_BYTES.fetch_add(new_size, Ordering::Relaxed);
        LIVE_BYTES.fetch_sub(layout.size(), Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Hands freed heap pages back to the OS so the next RSS reading is not
/// hidden by the allocator reusing memory the setup just freed.
fn release_free_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        unsafe extern "C" {
            fn malloc_trim(pad: usize) -> i32;
        }
        // SAFETY: glibc's malloc_trim only releases free memory; no invariants.
        unsafe {
            malloc_trim(0);
        }
    }
}

fn open(dir: &Path) -> (DataStore, Sessions) {
    let store = DataStore::open(dir).expect("open store");
    let sessions = Sessions::open(&store, WriterConfig::default());
    (store, sessions)
}

/// Part 1a: N appends to one session; the close (drain + fsync) is in the time,
/// so the figure is for durable data, not just queued data.
fn batched_appends(rt: &tokio::runtime::Runtime) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    rt.block_on(async {
        let (_store, sessions) = open(dir.path());
        let mut record = sessions.create("bench", "none", "none");
        let messages: Vec<Message> = (0..N_APPENDS).map(|i| Message::user(body(i))).collect();
        let start = Instant::now();
        for message in &messages {
            sessions.append(
                &mut record,
                std::slice::from_ref(message),
                Usage::default(),
                None,
            );
        }
        sessions.close().await;
        N_APPENDS as f64 / start.elapsed().as_secs_f64()
    })
}

/// Part 1b: the baseline: one durable SQLite transaction per message
/// (rollback journal, synchronous=FULL, autocommit).
fn sqlite_inserts() -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let db = rusqlite::Connection::open(dir.path().join("sessions.db")).unwrap();
    db.execute_batch(
        "PRAGMA journal_mode=DELETE; PRAGMA synchronous=FULL;
         CREATE TABLE messages (session TEXT, seq INTEGER, body TEXT);",
    )
    .unwrap();
    let mut insert = db
        .prepare("INSERT INTO messages (session, seq, body) VALUES (?1, ?2, ?3)")
        .unwrap();
    let bodies: Vec<String> = (0..N_SQLITE)
        .map(|i| serde_json::to_string(&Message::user(body(i))).unwrap())
        .collect();
    let start = Instant::now();
    for (seq, body) in bodies.iter().enumerate() {
        insert
            .execute(rusqlite::params!["bench", seq as i64, body])
            .unwrap();
    }
    N_SQLITE as f64 / start.elapsed().as_secs_f64()
}

/// Part 2: RSS growth per idle live session. The sessions are written through the
/// same store first, so sled's page cache is already resident and the delta
/// is (mostly) the live records and histories themselves; freed setup memory
/// is trimmed first so the allocator cannot hide the growth by reusing it.
fn idle_memory(rt: &tokio::runtime::Runtime) -> (u64, u64, f64, f64, usize) {
    let dir = tempfile::tempdir().unwrap();
    rt.block_on(async {
        let (_store, sessions) = open(dir.path());
        let sessions = Arc::new(sessions);
        let mut ids = Vec::with_capacity(IDLE_SESSIONS);
        for s in 0..IDLE_SESSIONS {
            let mut record = sessions.create("idle", "none", "none");
            let messages: Vec<Message> = (0..IDLE_MESSAGES)
                .map(|i| Message::user(body(s * 100 + i)))
                .collect();
            sessions.append(&mut record, &messages, Usage::default(), None);
            ids.push(record.id);
        }
        sessions.flush().await;
        let live = LiveSessions::new(
            sessions.clone(),
            2 * IDLE_SESSIONS,
            Duration::from_secs(3600),
        );
        release_free_heap();
        let before = rss_kib();
        let heap_before = LIVE_BYTES.load(Ordering::Relaxed);
        for id in &ids {
            live.get(id).await.expect("session exists");
        }
        let after = rss_kib();
        let heap = LIVE_BYTES
            .load(Ordering::Relaxed)
            .saturating_sub(heap_before);
        // Divide by what is actually live: ids made in one burst can collide
        // (new_id is millis + 16 bits of nanos), which the table reports.
        let loaded = live.len().max(1);
        sessions.close().await;
        let per = after.saturating_sub(before) as f64 / loaded as f64;
        let heap_per = heap as f64 / 1024.0 / loaded as f64;
        (before, after, per, heap_per, IDLE_SESSIONS - live.len())
    })
}

/// Part 3: Many sessions appending at once; yield_now between appends so the
/// tasks interleave like real conversations instead of running back to back.
fn concurrent(rt: &tokio::runtime::Runtime) -> (Duration, f64, u64) {
    let dir = tempfile::tempdir().unwrap();
    rt.block_on(async {
        let (_store, sessions) = open(dir.path());
        let sessions = Arc::new(sessions);
        let live = Arc::new(LiveSessions::new(
            sessions.clone(),
            2 * CONCURRENT,
            Duration::from_secs(3600),
        ));
        let start = Instant::now();
        let tasks: Vec<_> = (0..CONCURRENT)
            .map(|t| {
                let live = live.clone();
                tokio::spawn(async move {
                    let session = live.create("concurrent", "none", "none");
                    for i in 0..CONCURRENT_APPENDS {
                        let message = Message::user(body(t * 100 + i));
                        live.append(
                            &mut *session.lock().await,
                            &[message],
                            Usage::default(),
                            None,
                        );
                        tokio::task::yield_now().await;
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        sessions.close().await;
        let elapsed = start.elapsed();
        let total = (CONCURRENT * CONCURRENT_APPENDS) as f64;
        (elapsed, total / elapsed.as_secs_f64(), rss_kib())
    })
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());

    let appends = batched_appends(&rt);
    let inserts = sqlite_inserts();
    let (before, after, per_session, heap_per_session, collisions) = idle_memory(&rt);
    let (wall, concurrent_rate, rss_end) = concurrent(&rt);

    println!("sessions benchmark (issue 7)");
    println!("command: cargo bench -p agent-host --bench sessions");
    println!(
        "machine: {cores} cores (nproc), temp dirs under {}",
        std::env::temp_dir().display()
    );
    println!();
    println!("{:<58} {:>16}", "measurement", "value");
    println!("{}", "-".repeat(75));
    println!(
        "{:<58} {:>16.0}",
        format!("sled writer appends/s (N={N_APPENDS}, incl. close)"),
        appends
    );
    println!(
        "{:<58} {:>16.0}",
        format!("SQLite FULL autocommit inserts/s (N={N_SQLITE})"),
        inserts
    );
    println!(
        "{:<58} {:>15.1}x",
        "ratio (target >= 20x)",
        appends / inserts
    );
    println!(
        "{:<58} {:>13} kB",
        "RSS before loading idle sessions", before
    );
    println!("{:<58} {:>13} kB", "RSS after loading idle sessions", after);
    println!(
        "{:<58} {:>12.1} KiB",
        format!("memory per idle live session ({IDLE_SESSIONS} x {IDLE_MESSAGES} msgs)"),
        per_session
    );
    println!(
        "{:<58} {:>12.1} KiB",
        "  same, live heap bytes (counting allocator)", heap_per_session
    );
    println!(
        "{:<58} {:>16}",
        "  session id collisions among them", collisions
    );
    println!(
        "{:<58} {:>13.0} ms",
        format!("{CONCURRENT} concurrent sessions x {CONCURRENT_APPENDS} appends, wall"),
        wall.as_secs_f64() * 1e3
    );
    println!("{:<58} {:>16.0}", "  appends/s", concurrent_rate);
    println!("{:<58} {:>13} kB", "  process RSS at end", rss_end);
}
