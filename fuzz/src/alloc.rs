//! A counting global allocator: the peak of live heap bytes one thread holds while it measures.
//!
//! Counts are per thread, so tests that measure in parallel do not see each other's
//! allocations. A binary or test opts in with
//! `#[global_allocator] static A: dkp_fuzz::Counting = dkp_fuzz::Counting;`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Wraps [`System`], counting the bytes requested by the measuring thread.
pub struct Counting;

thread_local! {
    static ON: Cell<bool> = const { Cell::new(false) };
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
    static LARGEST: Cell<usize> = const { Cell::new(0) };
    static COUNT: Cell<u64> = const { Cell::new(0) };
}

/// A single request above this many bytes, while measuring, is refused instead of
/// served: the process then aborts ("memory allocation failed") rather than letting
/// a bad input actually take gigabytes. Before refusing, [`set_refusal_hook`]'s hook
/// runs, so the driver can save the input.
pub static HARD_CAP: AtomicUsize = AtomicUsize::new(1 << 30);

static REFUSAL_HOOK: std::sync::OnceLock<fn(usize)> = std::sync::OnceLock::new();

/// Runs `hook(size)` (once per process at most matters: the process aborts next)
/// before a request above [`HARD_CAP`] is refused.
pub fn set_refusal_hook(hook: fn(usize)) {
    let _ = REFUSAL_HOOK.set(hook);
}

/// What one measured stretch allocated.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Most bytes live at once (a moving `realloc` counts old and new block).
    pub peak: usize,
    /// The largest single request.
    pub largest: usize,
    /// Number of allocations (including reallocations).
    pub count: u64,
}

fn on_alloc(size: usize) {
    let _ = ON.try_with(|on| {
        if !on.get() {
            return;
        }
        let live = LIVE.get() + size as isize;
        LIVE.set(live);
        if live > PEAK.get() {
            PEAK.set(live);
        }
        if size > LARGEST.get() {
            LARGEST.set(size);
        }
        COUNT.set(COUNT.get() + 1);
    });
}

fn on_free(size: usize) {
    let _ = ON.try_with(|on| {
        if on.get() {
            LIVE.set(LIVE.get() - size as isize);
        }
    });
}

/// Whether a request must be refused (measuring and above the cap); runs the hook first.
fn refuse(size: usize) -> bool {
    if size <= HARD_CAP.load(Ordering::Relaxed) || !ON.try_with(Cell::get).unwrap_or(false) {
        return false;
    }
    // The hook allocates (file names, formatting); stop measuring so that it cannot recurse here.
    ON.set(false);
    if let Some(hook) = REFUSAL_HOOK.get() {
        hook(size);
    }
    true
}

// SAFETY: every call forwards to `System` with the same layout; the bookkeeping only
// touches const-initialised thread-locals without destructors, which never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if refuse(layout.size()) {
            return std::ptr::null_mut();
        }
        on_alloc(layout.size());
        System.alloc(layout)
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if refuse(layout.size()) {
            return std::ptr::null_mut();
        }
        on_alloc(layout.size());
        System.alloc_zeroed(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        on_free(layout.size());
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if refuse(new_size) {
            return std::ptr::null_mut();
        }
        // Conservatively as alloc-then-free: a moving realloc holds both blocks.
        on_alloc(new_size);
        on_free(layout.size());
        System.realloc(ptr, layout, new_size)
    }
}

/// Measures the allocations `f` makes on this thread. Only meaningful where
/// [`Counting`] is the global allocator; elsewhere every count is 0.
pub fn measure<T>(f: impl FnOnce() -> T) -> (T, Usage) {
    LIVE.set(0);
    PEAK.set(0);
    LARGEST.set(0);
    COUNT.set(0);
    ON.set(true);
    let out = f();
    ON.set(false);
    let usage = Usage { peak: PEAK.get().max(0) as usize, largest: LARGEST.get(), count: COUNT.get() };
    (out, usage)
}

/// Whether [`Counting`] is this process's global allocator (a 1-byte box is counted).
pub fn counting_is_installed() -> bool {
    let (_, u) = measure(|| std::hint::black_box(Box::new(0u8)));
    u.count > 0
}
