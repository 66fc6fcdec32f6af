//! The device: adapter selection, the compiled programs, reusable buffers,
//! and running a list of dispatches with one submission.
//!
//! Adapter choice: `AZTEC_PROVER_WGPU_ADAPTER` (an index into the list, or
//! part of a name, case-insensitive) picks one; otherwise the first discrete
//! GPU, then integrated, virtual, and last a CPU implementation (lavapipe).
//! `WGPU_BACKEND` (`vulkan`, `gl`, `metal`, `dx12`) limits the APIs searched.
//!
//! Field layout: the wide limbs where the adapter has 64-bit integers, the
//! narrow ones otherwise; `AZTEC_PROVER_WGPU_LIMBS=13` or `29` asks for one.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::error::GpuError;

use crate::shader::{Limbs, WORKGROUP};

/// Environment variable choosing the adapter (index or name part).
pub const ADAPTER_ENV: &str = "AZTEC_PROVER_WGPU_ADAPTER";

/// Environment variable turning on the per-dispatch profile on stderr.
pub const TRACE_ENV: &str = "AZTEC_PROVER_WGPU_TRACE";

/// Environment variable lowering the largest binding used (bytes): inputs
/// are chunked to it, as on a device whose own limit is that small.
pub const MAX_BINDING_ENV: &str = "AZTEC_PROVER_WGPU_MAX_BINDING";

/// Environment variable choosing the field layout: `13` (narrow) or `29`
/// (wide, which needs the adapter's 64-bit integers).
pub const LIMBS_ENV: &str = "AZTEC_PROVER_WGPU_LIMBS";

/// Whether `TRACE_ENV` asks for the profile.
fn tracing() -> bool {
    crate::options::get(TRACE_ENV).is_some_and(|v| v != "0")
}

/// The layout asked for in `LIMBS_ENV`, or the best one the adapter has.
fn choose_limbs(asked: Option<&str>, int64: bool) -> Result<Limbs, GpuError> {
    match asked.map(str::trim) {
        None | Some("") => Ok(if int64 { Limbs::Wide } else { Limbs::Narrow }),
        Some("13") => Ok(Limbs::Narrow),
        Some("29") if int64 => Ok(Limbs::Wide),
        Some("29") => Err(GpuError::Device(format!(
            "{LIMBS_ENV}=29 needs 64-bit shader integers, which this adapter lacks; use 13 or leave it unset"
        ))),
        Some(v) => Err(GpuError::Device(format!(
            "{LIMBS_ENV}={v:?}: expected 13 or 29"
        ))),
    }
}

/// Words of parameters each dispatch gets.
pub const PARAM_WORDS: usize = 32;

/// One adapter as listed.
#[derive(Debug, Clone)]
pub struct AdapterSummary {
    /// Position in the list (what `AZTEC_PROVER_WGPU_ADAPTER=<index>` means).
    pub index: usize,
    /// Name.
    pub name: String,
    /// API (Vulkan, Gl, ...).
    pub backend: String,
    /// Discrete, integrated, virtual, CPU.
    pub kind: String,
}

fn summary(index: usize, i: &wgpu::AdapterInfo) -> AdapterSummary {
    AdapterSummary {
        index,
        name: i.name.clone(),
        backend: format!("{:?}", i.backend),
        kind: format!("{:?}", i.device_type),
    }
}

fn rank(t: wgpu::DeviceType) -> u32 {
    match t {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Other => 3,
        wgpu::DeviceType::Cpu => 4,
    }
}

fn instance() -> (wgpu::Instance, wgpu::Backends) {
    let desc = wgpu::InstanceDescriptor::new_without_display_handle_from_env();
    let backends = crate::options::get(crate::options::API_ENV)
        .map(|v| wgpu::Backends::from_comma_list(&v))
        .unwrap_or(wgpu::Backends::all());
    (wgpu::Instance::new(desc), backends)
}

/// Every adapter wgpu finds, in the order `AZTEC_PROVER_WGPU_ADAPTER` indexes.
pub fn list_adapters() -> Vec<AdapterSummary> {
    let (inst, backends) = instance();
    pollster::block_on(inst.enumerate_adapters(backends))
        .iter()
        .enumerate()
        .map(|(k, a)| summary(k, &a.get_info()))
        .collect()
}

fn choose(adapters: Vec<wgpu::Adapter>) -> Result<wgpu::Adapter, GpuError> {
    let listed: Vec<String> = adapters
        .iter()
        .enumerate()
        .map(|(k, a)| {
            let s = summary(k, &a.get_info());
            format!("{}: {} ({}, {})", s.index, s.name, s.backend, s.kind)
        })
        .collect();
    if adapters.is_empty() {
        return Err(GpuError::Device(format!(
            "no GPU adapter found (WGPU_BACKEND={}); install a Vulkan driver \
             (on Debian: mesa-vulkan-drivers for lavapipe, or the GPU vendor's driver) \
             or choose another API with WGPU_BACKEND",
            crate::options::get(crate::options::API_ENV).unwrap_or_else(|| "all".into())
        )));
    }
    if let Some(want) = crate::options::get(ADAPTER_ENV) {
        let want = want.trim().to_string();
        let pos = match want.parse::<usize>() {
            Ok(k) if k < adapters.len() => Some(k),
            Ok(_) => None,
            Err(_) => adapters.iter().position(|a| {
                a.get_info()
                    .name
                    .to_lowercase()
                    .contains(&want.to_lowercase())
            }),
        };
        return match pos {
            Some(k) => Ok(adapters
                .into_iter()
                .nth(k)
                .unwrap_or_else(|| unreachable!())),
            None => Err(GpuError::Device(format!(
                "{ADAPTER_ENV}={want:?} matches no adapter; found: {}",
                listed.join("; ")
            ))),
        };
    }
    let mut adapters = adapters;
    adapters.sort_by_key(|a| rank(a.get_info().device_type));
    Ok(adapters.remove(0))
}

/// A compiled WGSL module: its bind group layout and one pipeline per entry point.
pub struct Program {
    layout: wgpu::BindGroupLayout,
    pipelines: HashMap<&'static str, wgpu::ComputePipeline>,
    buffers: u32,
}

/// One dispatch: an entry point, its parameters, and how many threads.
#[derive(Debug, Clone)]
pub struct Dispatch {
    /// Entry point.
    pub entry: &'static str,
    /// Parameter words (see each kernel).
    pub params: [u32; PARAM_WORDS],
    /// Threads (one per item; rounded up to workgroups).
    pub threads: u64,
}

impl Dispatch {
    /// A dispatch whose first parameter words are `head`.
    pub fn new(entry: &'static str, threads: u64, head: &[u32]) -> Dispatch {
        let mut params = [0u32; PARAM_WORDS];
        params[..head.len()].copy_from_slice(head);
        Dispatch {
            entry,
            params,
            threads,
        }
    }

    /// Sets 8 words at `at` (a 256-bit constant).
    pub fn with_words(mut self, at: usize, words: &[u32; 8]) -> Dispatch {
        self.params[at..at + 8].copy_from_slice(words);
        self
    }
}

/// The opened device.
pub struct Gpu {
    /// wgpu's device.
    pub device: wgpu::Device,
    /// Its queue.
    pub queue: wgpu::Queue,
    /// What it is.
    pub info: wgpu::AdapterInfo,
    /// The limits we asked for (the adapter's own).
    pub limits: wgpu::Limits,
    /// The field layout the programs are generated for.
    pub limbs: Limbs,
    errors: Arc<Mutex<Vec<String>>>,
    buffers: Mutex<HashMap<&'static str, wgpu::Buffer>>,
}

impl Gpu {
    /// Opens the chosen adapter with its full limits.
    pub fn open() -> Result<Gpu, GpuError> {
        let (inst, backends) = instance();
        let adapter = choose(pollster::block_on(inst.enumerate_adapters(backends)))?;
        let info = adapter.get_info();
        let limits = adapter.limits();
        let int64 = adapter.features().contains(wgpu::Features::SHADER_INT64);
        let limbs = choose_limbs(crate::options::get(LIMBS_ENV).as_deref(), int64)?;
        let features = if limbs == Limbs::Wide {
            wgpu::Features::SHADER_INT64
        } else {
            wgpu::Features::empty()
        };
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("aztec-prover"),
            required_features: features,
            required_limits: limits.clone(),
            experimental_features: wgpu::ExperimentalFeatures::default(),
            memory_hints: wgpu::MemoryHints::Performance,
            trace: wgpu::Trace::Off,
        }))
        .map_err(|e| GpuError::Device(format!("cannot open {}: {e}", info.name)))?;
        let errors: Arc<Mutex<Vec<String>>> = Arc::default();
        let sink = errors.clone();
        // The default handler panics; a library reports instead.
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            if let Ok(mut v) = sink.lock() {
                v.push(e.to_string());
            }
        }));
        Ok(Gpu {
            device,
            queue,
            info,
            limits,
            limbs,
            errors,
            buffers: Mutex::default(),
        })
    }

    /// Whether the adapter is a device of its own, not the host's cores
    /// (lavapipe is a CPU adapter).
    pub fn is_device(&self) -> bool {
        self.info.device_type != wgpu::DeviceType::Cpu
    }

    /// "name (API, kind, limb bits)".
    pub fn describe(&self) -> String {
        format!(
            "{} ({:?}, {:?}, {}-bit limbs)",
            self.info.name,
            self.info.backend,
            self.info.device_type,
            self.limbs.name()
        )
    }

    /// The largest buffer one binding may cover (the device's limit, or
    /// less with `AZTEC_PROVER_WGPU_MAX_BINDING`).
    pub fn max_binding(&self) -> u64 {
        let device = self
            .limits
            .max_storage_buffer_binding_size
            .min(self.limits.max_buffer_size);
        let asked = crate::options::get(MAX_BINDING_ENV)
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map_or(u64::MAX, |b| b.max(4096) / 4 * 4);
        device.min(asked)
    }

    fn take_errors(&self) -> Result<(), GpuError> {
        let mut v = self
            .errors
            .lock()
            .map_err(|_| GpuError::from("error list poisoned"))?;
        if v.is_empty() {
            Ok(())
        } else {
            Err(GpuError::Device(format!(
                "GPU error: {}",
                std::mem::take(&mut *v).join("; ")
            )))
        }
    }

    /// Compiles `source` with `buffers` storage buffers after the parameters.
    pub fn program(
        &self,
        label: &str,
        source: &str,
        buffers: u32,
        entries: &[&'static str],
    ) -> Result<Program, GpuError> {
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let module = self
            .device
            .create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some(label),
                source: wgpu::ShaderSource::Wgsl(source.into()),
            });
        let storage = |binding: u32, read_only: bool| wgpu::BindGroupLayoutEntry {
            binding,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer {
                ty: wgpu::BufferBindingType::Storage { read_only },
                has_dynamic_offset: false,
                min_binding_size: None,
            },
            count: None,
        };
        let mut entries_layout = vec![storage(0, true)];
        entries_layout.extend((1..=buffers).map(|b| storage(b, false)));
        let layout = self
            .device
            .create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
                label: Some(label),
                entries: &entries_layout,
            });
        let pl = self
            .device
            .create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
                label: Some(label),
                bind_group_layouts: &[Some(&layout)],
                immediate_size: 0,
            });
        if let Some(err) = pollster::block_on(scope.pop()) {
            return Err(GpuError::Device(format!(
                "the {label} shaders do not compile: {err}"
            )));
        }
        // The driver compiles each entry point on its own, for seconds on a
        // CPU implementation: on several threads they take the longest one's
        // time, not the sum. (Error scopes are per thread; a pipeline that
        // fails lands in the uncaptured-error list, read just after.)
        let compiling = std::time::Instant::now();
        let compile = |e: &'static str| {
            let p = self
                .device
                .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                    label: Some(e),
                    layout: Some(&pl),
                    module: &module,
                    entry_point: Some(e),
                    compilation_options: Default::default(),
                    cache: None,
                });
            (e, p)
        };
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(entries.len())
            .max(1);
        // Each thread takes the next entry point not yet taken.
        let next = std::sync::atomic::AtomicUsize::new(0);
        let pipelines: HashMap<&'static str, wgpu::ComputePipeline> = std::thread::scope(|s| {
            let workers: Vec<_> = (0..threads)
                .map(|_| {
                    s.spawn(|| {
                        let mut done = Vec::new();
                        loop {
                            let k = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            match entries.get(k) {
                                Some(e) => done.push(compile(e)),
                                None => return done,
                            }
                        }
                    })
                })
                .collect();
            workers
                .into_iter()
                .flat_map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
                .collect()
        });
        self.trace(
            &format!("compile of {} {label} entry points", entries.len()),
            compiling,
        );
        self.take_errors()
            .map_err(|e| GpuError::Device(format!("the {label} shaders do not compile: {e}")))?;
        Ok(Program {
            layout,
            pipelines,
            buffers,
        })
    }

    /// A storage buffer named `name` of at least `bytes`, reused across calls.
    pub fn buffer(&self, name: &'static str, bytes: u64) -> Result<wgpu::Buffer, GpuError> {
        let bytes = bytes.max(256).next_multiple_of(256);
        let mut map = self
            .buffers
            .lock()
            .map_err(|_| GpuError::from("buffer pool poisoned"))?;
        if let Some(b) = map.get(name) {
            if b.size() >= bytes {
                return Ok(b.clone());
            }
            b.destroy();
        }
        let usage = if name.starts_with("staging") {
            wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST
        } else if name.starts_with("upload") {
            wgpu::BufferUsages::MAP_WRITE | wgpu::BufferUsages::COPY_SRC
        } else {
            wgpu::BufferUsages::STORAGE
                | wgpu::BufferUsages::COPY_DST
                | wgpu::BufferUsages::COPY_SRC
        };
        let b = self.create(name, bytes, usage)?;
        map.insert(name, b.clone());
        Ok(b)
    }

    /// A storage buffer of at least `bytes` of its own, outside the pool
    /// (kept by its owner, freed when dropped).
    pub fn storage(&self, label: &str, bytes: u64) -> Result<wgpu::Buffer, GpuError> {
        self.create(
            label,
            bytes.max(256).next_multiple_of(256),
            wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
        )
    }

    fn create(
        &self,
        label: &str,
        bytes: u64,
        usage: wgpu::BufferUsages,
    ) -> Result<wgpu::Buffer, GpuError> {
        if bytes > self.limits.max_buffer_size {
            return Err(GpuError::Device(format!(
                "{label}: {bytes} bytes is over the device's buffer limit of {}",
                self.limits.max_buffer_size
            )));
        }
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let b = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: bytes,
            usage,
            mapped_at_creation: false,
        });
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(GpuError::OutOfMemory(format!(
                "out of GPU memory for {label} ({bytes} bytes): {e}"
            )));
        }
        Ok(b)
    }

    /// Zeroes the first `bytes` of `buffer` on the device (a multiple of 4).
    pub fn clear(&self, buffer: &wgpu::Buffer, bytes: u64) {
        let mut enc = self
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None });
        enc.clear_buffer(buffer, 0, Some(bytes));
        self.queue.submit([enc.finish()]);
    }

    /// Copies large inputs to the device through one kept, mapped upload
    /// buffer (`queue.write_buffer` would allocate and fault in a fresh
    /// staging area of the same size on every call). Each part goes to the
    /// start of its buffer; lengths are multiples of 4.
    pub fn upload(&self, parts: &[(&wgpu::Buffer, &[u8])]) -> Result<(), GpuError> {
        let total: u64 = parts.iter().map(|(_, b)| b.len() as u64).sum();
        if total == 0 {
            return Ok(());
        }
        let t = std::time::Instant::now();
        let st = self.buffer("upload", total)?;
        let slice = st.slice(0..total);
        let (tx, rx) = std::sync::mpsc::channel();
        slice.map_async(wgpu::MapMode::Write, move |r| {
            let _ = tx.send(r);
        });
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| {
                GpuError::Device(format!("GPU error while mapping the upload buffer: {e}"))
            })?;
        rx.recv()
            .map_err(|_| GpuError::from("the GPU never mapped the upload buffer"))?
            .map_err(|e| GpuError::Device(format!("cannot map the upload buffer: {e}")))?;
        {
            let mut view = slice
                .get_mapped_range_mut()
                .map_err(|e| GpuError::Device(format!("cannot write the upload buffer: {e}")))?;
            let mut at = 0usize;
            for (_, bytes) in parts {
                copy_in_parallel(view.slice(at..at + bytes.len()), bytes);
                at += bytes.len();
            }
        }
        st.unmap();
        let mut enc = self
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None });
        let mut at = 0u64;
        for (dst, bytes) in parts {
            enc.copy_buffer_to_buffer(&st, at, dst, 0, bytes.len() as u64);
            at += bytes.len() as u64;
        }
        self.queue.submit([enc.finish()]);
        if tracing() {
            eprintln!(
                "wgpu trace: host upload of {total} bytes {:.2} ms",
                t.elapsed().as_secs_f64() * 1e3
            );
        }
        Ok(())
    }

    /// Prints `line` when tracing.
    pub fn note(&self, line: std::fmt::Arguments<'_>) {
        if tracing() {
            eprintln!("wgpu trace: {line}");
        }
    }

    /// Marks the start of one ABI call in the trace (`gpu-check.sh` splits
    /// the trace at these lines into transfers and kernels per call).
    pub fn call(&self, op: &str, elements: usize) {
        self.note(format_args!("call {op} of {elements} elements"));
    }

    /// Prints `what` and the time since `since` when tracing.
    pub fn trace(&self, what: &str, since: std::time::Instant) {
        if tracing() {
            eprintln!(
                "wgpu trace: host {what} {:.2} ms",
                since.elapsed().as_secs_f64() * 1e3
            );
        }
    }

    /// Runs `dispatches` in order over `buffers` (bound at 1, 2, ...), then
    /// copies each of `reads` (buffer, byte offset) back into its slice, all
    /// in one readback.
    ///
    /// With `AZTEC_PROVER_WGPU_TRACE=1` every dispatch is submitted and
    /// waited for on its own and its time printed to stderr (a profile; slower).
    pub fn run(
        &self,
        program: &Program,
        buffers: &[&wgpu::Buffer],
        dispatches: &[Dispatch],
        reads: &mut [(&wgpu::Buffer, u64, &mut [u8])],
    ) -> Result<(), GpuError> {
        let trace = tracing();
        if buffers.len() != program.buffers as usize {
            return Err(GpuError::Device(format!(
                "internal: {} buffers bound, the program has {}",
                buffers.len(),
                program.buffers
            )));
        }
        let stride = (self.limits.min_storage_buffer_offset_alignment as usize)
            .max(PARAM_WORDS * 4)
            .next_multiple_of(256);
        let mut blob = vec![0u8; stride * dispatches.len().max(1)];
        for (k, d) in dispatches.iter().enumerate() {
            blob[k * stride..k * stride + PARAM_WORDS * 4].copy_from_slice(as_bytes(&d.params));
        }
        let params = self.buffer("params", blob.len() as u64)?;
        self.queue.write_buffer(&params, 0, &blob);
        let mut groups = Vec::with_capacity(dispatches.len());
        for k in 0..dispatches.len() {
            let mut entries = vec![wgpu::BindGroupEntry {
                binding: 0,
                resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                    buffer: &params,
                    offset: (k * stride) as u64,
                    size: wgpu::BufferSize::new((PARAM_WORDS * 4) as u64),
                }),
            }];
            for (b, buf) in buffers.iter().enumerate() {
                let size = buf.size().min(self.max_binding() / 4 * 4);
                entries.push(wgpu::BindGroupEntry {
                    binding: b as u32 + 1,
                    resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                        buffer: buf,
                        offset: 0,
                        size: wgpu::BufferSize::new(size),
                    }),
                });
            }
            groups.push(self.device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: None,
                layout: &program.layout,
                entries: &entries,
            }));
        }
        let mut enc = self
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None });
        let wait = |what: &str| -> Result<(), GpuError> {
            self.device
                .poll(wgpu::PollType::wait_indefinitely())
                .map(|_| ())
                .map_err(|e| GpuError::Device(format!("GPU error while waiting for {what}: {e}")))
        };
        let started = std::time::Instant::now();
        if trace {
            self.queue.submit([]);
            wait("the uploads")?;
            eprintln!(
                "wgpu trace: uploads {:.2} ms",
                started.elapsed().as_secs_f64() * 1e3
            );
        }
        for (d, g) in dispatches.iter().zip(&groups) {
            if d.threads == 0 {
                continue;
            }
            let pipeline = program
                .pipelines
                .get(d.entry)
                .ok_or_else(|| GpuError::Device(format!("internal: no kernel {}", d.entry)))?;
            let (x, y) = grid(d.threads)?;
            {
                let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: None,
                    timestamp_writes: None,
                });
                pass.set_pipeline(pipeline);
                pass.set_bind_group(0, g, &[]);
                pass.dispatch_workgroups(x, y, 1);
            }
            if trace {
                let t = std::time::Instant::now();
                let done = std::mem::replace(
                    &mut enc,
                    self.device
                        .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None }),
                );
                self.queue.submit([done.finish()]);
                wait(d.entry)?;
                eprintln!(
                    "wgpu trace: {:<20} {:>10} threads {:>9.2} ms",
                    d.entry,
                    d.threads,
                    t.elapsed().as_secs_f64() * 1e3
                );
            }
        }
        let total: u64 = reads.iter().map(|r| r.2.len() as u64).sum();
        let staging = if total > 0 {
            let st = self.buffer("staging", total)?;
            let mut at = 0;
            for (src, offset, out) in reads.iter() {
                enc.copy_buffer_to_buffer(src, *offset, &st, at, out.len() as u64);
                at += out.len() as u64;
            }
            Some(st)
        } else {
            None
        };
        let t = std::time::Instant::now();
        self.queue.submit([enc.finish()]);
        match staging {
            Some(st) => {
                let slice = st.slice(0..total);
                let (tx, rx) = std::sync::mpsc::channel();
                slice.map_async(wgpu::MapMode::Read, move |r| {
                    let _ = tx.send(r);
                });
                wait("the result")?;
                rx.recv()
                    .map_err(|_| GpuError::from("the GPU never answered the read"))?
                    .map_err(|e| GpuError::Device(format!("cannot read the result back: {e}")))?;
                {
                    let view = slice.get_mapped_range().map_err(|e| {
                        GpuError::Device(format!("cannot read the result back: {e}"))
                    })?;
                    let mut at = 0;
                    for (_, _, out) in reads.iter_mut() {
                        let len = out.len();
                        copy_back_in_parallel(out, &view[at..at + len]);
                        at += len;
                    }
                }
                st.unmap();
            }
            None => wait("the kernels")?,
        }
        if trace {
            eprintln!(
                "wgpu trace: {:<20} {:>9.2} ms",
                "readback",
                t.elapsed().as_secs_f64() * 1e3
            );
        }
        self.take_errors()
    }
}

/// Workgroups for `threads`, as a 2-D grid within the 65535 per-dimension limit.
pub fn grid(threads: u64) -> Result<(u32, u32), GpuError> {
    let groups = threads.div_ceil(WORKGROUP as u64);
    let x = groups.min(65535);
    let y = groups.div_ceil(x.max(1));
    if y > 65535 {
        return Err(GpuError::Device(format!(
            "{threads} threads is over one dispatch's limit"
        )));
    }
    Ok((x as u32, y as u32))
}

/// Copies `src` into mapped memory, large copies on several threads: one
/// core copies at a fraction of the memory's bandwidth, and an MSM of 2^20
/// points uploads 96 MiB.
fn copy_in_parallel(mut dst: wgpu::WriteOnly<'_, [u8]>, src: &[u8]) {
    let per = copy_piece(src.len());
    if per >= src.len() {
        dst.copy_from_slice(src);
        return;
    }
    // An address, not a pointer, so that the threads may take it.
    let base = dst.as_raw_ptr().as_ptr().cast::<u8>() as usize;
    std::thread::scope(|s| {
        for (k, part) in src.chunks(per).enumerate() {
            s.spawn(move || {
                #[allow(unsafe_code)]
                // SAFETY: `dst` covers `src.len()` bytes and stays mapped until
                // the scope ends; the threads write disjoint ranges of it.
                unsafe {
                    std::ptr::copy_nonoverlapping(
                        part.as_ptr(),
                        (base + k * per) as *mut u8,
                        part.len(),
                    );
                }
            });
        }
    });
}

/// Copies a mapped result into the caller's memory, large copies on
/// several threads (an NTT of 2^22 reads 128 MiB back).
fn copy_back_in_parallel(dst: &mut [u8], src: &[u8]) {
    let per = copy_piece(src.len());
    if per >= src.len() {
        dst.copy_from_slice(src);
        return;
    }
    std::thread::scope(|s| {
        for (d, part) in dst.chunks_mut(per).zip(src.chunks(per)) {
            s.spawn(move || d.copy_from_slice(part));
        }
    });
}

/// The bytes each thread copies of `len`: all of it below 8 MiB, else a
/// share for up to 8 threads.
fn copy_piece(len: usize) -> usize {
    const SMALL: usize = 8 << 20;
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(8)
        .min(len.div_ceil(SMALL));
    len.div_ceil(threads.max(1)).max(1)
}

/// Little-endian words from bytes.
pub fn words_of(bytes: &[u8]) -> Vec<u32> {
    bytes
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// The bytes of `words` (little-endian, as the GPU reads them).
pub fn as_bytes(words: &[u32]) -> &[u8] {
    // u32 has no padding and every byte pattern is valid u8; x86-64 and the
    // GPUs we target are little-endian, which is the ABI's byte order.
    #[allow(unsafe_code)]
    // SAFETY: the slice covers exactly the memory of `words`, which outlives it.
    unsafe {
        std::slice::from_raw_parts(words.as_ptr().cast::<u8>(), std::mem::size_of_val(words))
    }
}
