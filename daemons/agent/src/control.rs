//! The agent's live settings and counters, shared by the workers, the
//! D-Bus object and the status line. Changes take effect without a
//! restart: pause at once, threads and backend from the next job.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use aztec_backend_abi::Backend;
use aztec_prover_protocol::JobType;
use tokio::sync::{Notify, broadcast};

/// Something a worker did, for D-Bus signals.
#[derive(Debug, Clone)]
pub enum Event {
    /// A job was taken.
    Started {
        /// Job id.
        id: String,
        /// Job type.
        job_type: JobType,
    },
    /// A job ended.
    Finished {
        /// Job id.
        id: String,
        /// Job type.
        job_type: JobType,
        /// Proven and accepted by the broker.
        ok: bool,
        /// How long it took.
        ms: u64,
    },
}

/// The backend in use, swappable at run time.
pub struct BackendSlot {
    /// Its name or path as configured.
    pub spec: String,
    /// The loaded library.
    pub backend: Backend,
}

/// Shared state.
pub struct Control {
    threads: AtomicU32,
    paused: AtomicBool,
    stopping: AtomicBool,
    poll_interval_ms: AtomicU64,
    allowed: Mutex<Vec<JobType>>,
    backend: Mutex<std::sync::Arc<BackendSlot>>,
    current: Mutex<Vec<Option<String>>>,
    configured: Mutex<Option<(usize, u32)>>,
    agents: u32,
    completed: AtomicU64,
    failed: AtomicU64,
    /// Wakes idle workers when something changed (resume, stop, poll interval).
    pub changed: Notify,
    /// Worker events.
    pub events: broadcast::Sender<Event>,
    /// The most threads the placement offers.
    pub max_threads: u32,
    /// The backend options of the settings, for every backend loaded.
    options: Vec<(String, String)>,
}

impl Control {
    /// New state.
    pub fn new(
        agents: usize,
        threads: u32,
        max_threads: u32,
        poll_interval_ms: u64,
        allowed: Vec<JobType>,
        backend: BackendSlot,
        options: Vec<(String, String)>,
    ) -> Control {
        Control {
            options,
            threads: AtomicU32::new(threads),
            paused: AtomicBool::new(false),
            stopping: AtomicBool::new(false),
            poll_interval_ms: AtomicU64::new(poll_interval_ms),
            allowed: Mutex::new(allowed),
            backend: Mutex::new(std::sync::Arc::new(backend)),
            current: Mutex::new(vec![None; agents]),
            configured: Mutex::new(None),
            agents: agents as u32,
            completed: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            changed: Notify::new(),
            events: broadcast::channel(256).0,
            max_threads,
        }
    }

    /// Proving threads per agent.
    pub fn threads(&self) -> u32 {
        self.threads.load(Ordering::Relaxed)
    }

    /// Sets the proving threads (from the next job).
    pub fn set_threads(&self, n: u32) -> Result<(), String> {
        if n == 0 || n > self.max_threads {
            return Err(format!(
                "Threads must be between 1 and {} (the CPUs of this agent's placement)",
                self.max_threads
            ));
        }
        self.threads.store(n, Ordering::Relaxed);
        Ok(())
    }

    /// Whether taking new jobs is paused.
    pub fn paused(&self) -> bool {
        self.paused.load(Ordering::Relaxed)
    }

    /// Pauses or resumes (at once: idle workers stop asking for jobs).
    pub fn set_paused(&self, p: bool) {
        self.paused.store(p, Ordering::Relaxed);
        self.changed.notify_waiters();
    }

    /// Whether the process is stopping.
    pub fn stopping(&self) -> bool {
        self.stopping.load(Ordering::Relaxed)
    }

    /// Starts stopping.
    pub fn stop(&self) {
        self.stopping.store(true, Ordering::Relaxed);
        self.changed.notify_waiters();
    }

    /// Idle poll interval.
    pub fn poll_interval_ms(&self) -> u64 {
        self.poll_interval_ms.load(Ordering::Relaxed)
    }

    /// Sets the idle poll interval.
    pub fn set_poll_interval_ms(&self, ms: u64) -> Result<(), String> {
        if ms == 0 || ms > crate::settings::MAX_POLL_INTERVAL_MS {
            return Err(format!(
                "PollIntervalMs must be between 1 and {}",
                crate::settings::MAX_POLL_INTERVAL_MS
            ));
        }
        self.poll_interval_ms.store(ms, Ordering::Relaxed);
        self.changed.notify_waiters();
        Ok(())
    }

    /// Allowed job types (empty: all).
    pub fn allowed(&self) -> Vec<JobType> {
        self.allowed.lock().map(|a| a.clone()).unwrap_or_default()
    }

    /// Sets the allowed job types.
    pub fn set_allowed(&self, types: Vec<JobType>) {
        if let Ok(mut a) = self.allowed.lock() {
            *a = types;
        }
        self.changed.notify_waiters();
    }

    /// The backend for the next job.
    pub fn backend(&self) -> std::sync::Arc<BackendSlot> {
        match self.backend.lock() {
            Ok(b) => b.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// Loads `spec` and makes it the backend for the next jobs.
    pub fn select_backend(&self, spec: &str) -> Result<String, String> {
        let backend = Backend::load_with(spec, &self.options).map_err(|e| e.to_string())?;
        let name = format!(
            "{} ({})",
            backend.info().name,
            backend.info().path.display()
        );
        if let Ok(mut b) = self.backend.lock() {
            *b = std::sync::Arc::new(BackendSlot {
                spec: spec.to_string(),
                backend,
            });
        }
        Ok(name)
    }

    /// Sizes the backend's pool to Threads x agents (at most the placement's
    /// CPUs), pinned to the placement, when that or the backend changed.
    pub fn configure_backend(&self, placement: &crate::numa::Placement) -> Result<(), String> {
        let slot = self.backend();
        let n = (self.threads() * self.agents).min(self.max_threads).max(1);
        let key = (std::sync::Arc::as_ptr(&slot) as usize, n);
        let mut done = self
            .configured
            .lock()
            .map_err(|_| "lock poisoned".to_string())?;
        if *done == Some(key) {
            return Ok(());
        }
        let cpus: Vec<u32> = if placement.pinned {
            placement.cpus.clone()
        } else {
            vec![]
        };
        slot.backend
            .configure(n, &cpus)
            .map_err(|e| e.to_string())?;
        tracing::info!("backend {} runs on {n} thread(s)", slot.spec);
        *done = Some(key);
        Ok(())
    }

    /// Records the job agent `i` works on.
    pub fn set_current(&self, i: usize, job: Option<String>) {
        if let Ok(mut c) = self.current.lock()
            && let Some(slot) = c.get_mut(i)
        {
            *slot = job;
        }
    }

    /// Jobs in progress.
    pub fn current(&self) -> Vec<String> {
        self.current
            .lock()
            .map(|c| c.iter().flatten().cloned().collect())
            .unwrap_or_default()
    }

    /// Counts a finished job.
    pub fn count(&self, ok: bool) {
        if ok { &self.completed } else { &self.failed }.fetch_add(1, Ordering::Relaxed);
    }

    /// Jobs proven.
    pub fn completed(&self) -> u64 {
        self.completed.load(Ordering::Relaxed)
    }

    /// Jobs failed.
    pub fn failed(&self) -> u64 {
        self.failed.load(Ordering::Relaxed)
    }

    /// The `STATUS=` line.
    pub fn status_line(&self) -> String {
        let cur = self.current();
        let head = if cur.is_empty() {
            if self.paused() {
                "paused".to_string()
            } else {
                "idle".to_string()
            }
        } else {
            format!("proving {}", cur.join(", "))
        };
        format!(
            "{head}; {} proven, {} failed",
            self.completed(),
            self.failed()
        )
    }
}
