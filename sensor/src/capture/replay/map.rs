//! The memory-mapped source of `replay` (issue 14): an uncompressed regular capture file is
//! mapped read-only and its records are read in place, with no copy out of the page cache.
//!
//! Contract:
//! - **Bounded RSS.** Pages the reader has passed are dropped from the process every
//!   [`DROP_BEHIND_BYTES`] (`MADV_DONTNEED`: the page-cache pages stay, only this process's
//!   mapping of them goes), so the mapped pages resident in the process stay under about
//!   twice that, plus the kernel's read-ahead, whatever the file size.
//! - **No SIGBUS.** A file truncated while it is mapped makes any access past its new end raise
//!   SIGBUS. A process-wide handler, installed once, recognises faults inside a registered map,
//!   replaces the rest of that map with zero pages (so the access completes) and marks the map
//!   as damaged; the reader checks the mark after touching each record and reports the file as
//!   shrunk. Faults anywhere else go to the previous handler, or kill the process as before.
//! - Only this module has `unsafe` code for the map: creating it, dropping pages and the handler,
//!   each with the reason it is sound next to it.
//! - **Page tables off the reader's path.** Filling the page tables ahead and tearing them down
//!   behind is kernel work the size of the file (a fifth of the reading thread's time on an
//!   881 MB replay). A file larger than [`KEEPER_MIN_BYTES`] gets a keeper thread that does it
//!   as the reader moves (told every [`DROP_BEHIND_BYTES`]); the reader takes a page fault
//!   only where it overtook the keeper, and drops behind itself when the keeper lags, so the
//!   bound above holds either way.

use std::ffi::c_void;
use std::fs::File;
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use memmap2::{Advice, Mmap, UncheckedAdvice};

/// Bytes read between two drop-behind steps (each an `madvise` and an `fstat`). Smaller keeps
/// fewer pages in the process; each step costs a system call and the page-table teardown.
pub(super) const DROP_BEHIND_BYTES: usize = 8 << 20;

/// Files from this size on get a keeper thread for their page tables; smaller ones are
/// populated whole when opened (a thread per small file would cost more than it saves).
const KEEPER_MIN_BYTES: usize = 4 * DROP_BEHIND_BYTES;

/// How far ahead of the reader the keeper fills the page tables.
const KEEPER_AHEAD_BYTES: usize = 3 * DROP_BEHIND_BYTES;

/// The kernel's default fault-around window (`fault_around_bytes`): one fault on a file map
/// maps the pages of this aligned window that are in the page cache. Smaller settings only
/// leave the reader more faults of its own.
const FAULT_AROUND_BYTES: usize = 64 << 10;

/// How far ahead of the next record the reader asks for cache lines (see
/// [`MappedFile::prefetch`]).
const PREFETCH_AHEAD_BYTES: usize = 2048;

/// Most files mapped at once in the process; a reader that finds no free slot reads instead.
const GUARD_SLOTS: usize = 64;

/// An uncompressed capture file mapped read-only, guarded against SIGBUS.
pub(super) struct MappedFile {
    /// The map of the whole file as it was when opened (shared with its keeper, which
    /// therefore never outlives it).
    map: Arc<Mmap>,
    /// The thread that fills page tables ahead and drops them behind, for a large file.
    keeper: Option<Keeper>,
    /// The file, to see whether it shrank.
    file: File,
    /// The guard slot of this map, cleared on drop before the map is unmapped.
    slot: &'static GuardSlot,
    /// Offset of the next unread byte.
    pos: usize,
    /// Pages before this offset were dropped from the process (page-aligned).
    dropped: usize,
    /// Offset of the last drop-behind step.
    stepped: usize,
    /// Page tables were filled ([`fill_page_tables`]) up to this offset.
    populated: usize,
    /// Cache lines were asked for up to this offset.
    prefetched: usize,
    /// Size of a page, a power of two.
    page: usize,
    /// The file was seen shorter than the map (by `fstat`).
    shrunk: bool,
}

impl MappedFile {
    /// Maps `file`, of `len` bytes (> 0; the caller checked it is a regular file), when the
    /// SIGBUS guard is installed and a slot is free; gives the file back to be read otherwise.
    #[allow(unsafe_code)] // Creating the map: see SAFETY below.
    pub(super) fn new(file: File, len: u64) -> Result<MappedFile, File> {
        let Some(len) = usize::try_from(len).ok().filter(|&l| l > 0) else {
            return Err(file);
        };
        let Some(page) = guard_installed() else {
            return Err(file);
        };
        let Some(slot) = GuardSlot::claim() else {
            return Err(file);
        };
        // SAFETY: `Mmap` hands out `&[u8]` over memory another process may change or cut. A
        // change to bytes we read gives wrong packets, not unsoundness: the bytes are plain
        // `u8` with no invariant, and every parser checks every length it reads from them. A cut
        // raises SIGBUS on access; the guard registered below (before any byte is read) turns
        // that into zero pages and a mark the reader checks. The length is the file's size now,
        // so nothing past the end of the file is mapped.
        let map = match unsafe { memmap2::MmapOptions::new().len(len).map(&file) } {
            Ok(map) => map,
            Err(_) => {
                slot.release();
                return Err(file);
            }
        };
        let start = map.as_ptr() as usize;
        slot.register(start, start.saturating_add(map.len()));
        // Read-ahead is a hint; a failure changes nothing but speed.
        let _ = map.advise(Advice::Sequential);
        let map = Arc::new(map);
        let keeper = (map.len() >= KEEPER_MIN_BYTES)
            .then(|| Keeper::start(Arc::clone(&map), page))
            .flatten();
        let mut mapped = MappedFile {
            map,
            keeper,
            file,
            slot,
            pos: 0,
            dropped: 0,
            stepped: 0,
            populated: 0,
            prefetched: 0,
            page,
            shrunk: false,
        };
        if let Some(k) = &mapped.keeper {
            k.moved_to(0);
        } else {
            mapped.populate_ahead();
        }
        Ok(mapped)
    }

    /// The unread bytes, at most `limit` of them (the streaming reader's buffer bound, so that
    /// both sources accept and reject the same blocks).
    pub(super) fn window(&self, limit: usize) -> &[u8] {
        let end = self.pos.saturating_add(limit).min(self.map.len());
        self.map.get(self.pos..end).unwrap_or_default()
    }

    /// Offset of the next unread byte.
    pub(super) fn pos(&self) -> usize {
        self.pos
    }

    /// Marks `n` bytes read; drops pages behind and looks at the file size every
    /// [`DROP_BEHIND_BYTES`]. Inlined (once per record), the step out of line.
    #[inline]
    pub(super) fn consume(&mut self, n: usize) {
        self.pos = self.pos.saturating_add(n).min(self.map.len());
        if self.pos - self.stepped >= DROP_BEHIND_BYTES {
            self.stepped = self.pos;
            self.drop_behind();
        }
    }

    /// Reads one byte of every page of `range` (offsets from the start of the file) after the
    /// first, which the parser already read, so that a cut file faults here, before the record
    /// is handed out; `false` when the file shrank. The bytes read are the first of each page:
    /// touching the record's last byte instead costs a cache miss on nearly every packet
    /// (measured: 4 % of a replay), for a line the decoder seldom reads.
    pub(super) fn touch(&self, range: std::ops::Range<usize>) -> bool {
        let mut at = (range.start & !(self.page - 1)).saturating_add(self.page);
        while at < range.end {
            black_box(self.map.get(at).copied());
            at = at.saturating_add(self.page);
        }
        !self.shrank()
    }

    /// Asks the CPU for every cache line up to [`PREFETCH_AHEAD_BYTES`] past `offset` (the
    /// next record) not asked for yet: the reader walks the map once, and each record's first
    /// touch was a miss to memory (measured: 10 to 18 % of a replay in `next_packet`, most of
    /// it on the header load). Asking for the next record's first two lines alone left 43 %
    /// of `next_packet` on that load; a stream of lines 2 KiB ahead hides it (0.93 and 0.95
    /// of the wall time of a 881 MB replay, two calls of 31 pairs; 1 KiB and 4 KiB did less).
    #[inline]
    #[allow(unsafe_code)] // A prefetch: see SAFETY below.
    pub(super) fn prefetch(&mut self, offset: usize) {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
            let base = self.map.as_ptr();
            let len = self.map.len();
            let target = offset.saturating_add(PREFETCH_AHEAD_BYTES).min(len);
            let mut at = (self.prefetched.max(offset) & !63).min(target);
            // At most a page per call: a jump over a large record is not worth more.
            let stop = target.min(at.saturating_add(4096));
            while at < stop {
                // SAFETY: a prefetch is a hint. It reads nothing into the program, never
                // faults (an address not mapped, or a page cut from the file, is ignored),
                // and SSE is part of every x86-64 CPU. `at < len`: the pointer is inside the
                // map.
                unsafe { _mm_prefetch::<_MM_HINT_T0>(base.wrapping_add(at).cast::<i8>()) };
                at += 64;
            }
            self.prefetched = self.prefetched.max(stop);
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = offset;
    }

    /// Whether a keeper thread looks after the page tables, and the bytes of the map resident
    /// in this process now (its `Rss` in `/proc/self/smaps`).
    #[cfg(test)]
    pub(super) fn residency(&self) -> (bool, usize) {
        let rss = self.smaps_field("Rss:").unwrap_or(usize::MAX);
        (self.keeper.is_some(), rss)
    }

    /// One size field of this map's entry in `/proc/self/smaps`, in bytes.
    fn smaps_field(&self, field: &str) -> Option<usize> {
        let start = format!("{:x}-", self.map.as_ptr() as usize);
        let smaps = std::fs::read_to_string("/proc/self/smaps").ok()?;
        let kib = smaps
            .lines()
            .skip_while(|l| !l.starts_with(&start))
            .skip(1)
            // The next map's header line ends this one's fields.
            .take_while(|l| {
                l.split_whitespace()
                    .next()
                    .is_some_and(|w| w.ends_with(':'))
            })
            .find_map(|l| l.strip_prefix(field))?;
        kib.trim()
            .trim_end_matches("kB")
            .trim()
            .parse::<usize>()
            .ok()?
            .checked_mul(1024)
    }

    /// How the page cache holds the whole file now (see [`PageCacheLayout`]): maps every page
    /// (reading in those not cached) and asks the kernel how many it mapped, and how many of
    /// those with 2 MiB entries. `None` where `/proc/self/smaps` has no such fields.
    pub(super) fn page_cache_layout(&self) -> Option<PageCacheLayout> {
        fill_page_tables(&self.map, 0, self.map.len());
        if self.shrank() {
            return None;
        }
        Some(PageCacheLayout {
            mapped_bytes: self.smaps_field("Rss:")? as u64,
            huge_bytes: self.smaps_field("FilePmdMapped:")? as u64,
        })
    }

    /// Whether the file was found shorter than the map (a fault in it, or `fstat`).
    pub(super) fn shrank(&self) -> bool {
        self.shrunk || self.slot.faulted.load(Ordering::Acquire)
    }

    /// Looks at the file size now (at the end of the map: a cut that left the reader in the
    /// zeroed tail of the last page raises no fault).
    pub(super) fn check_size(&mut self) -> bool {
        if self
            .file
            .metadata()
            .is_ok_and(|m| m.len() < self.map.len() as u64)
        {
            self.shrunk = true;
        }
        !self.shrank()
    }

    #[inline(never)]
    fn drop_behind(&mut self) {
        let upto = self.pos & !(self.page - 1);
        match &self.keeper {
            // The keeper drops and fills; the reader steps in only when the keeper is more
            // than two steps behind (not scheduled), so resident pages stay bounded.
            Some(k) => {
                k.moved_to(self.pos);
                let kept = k.dropped.load(Ordering::Acquire);
                if upto.saturating_sub(kept.max(self.dropped)) > 2 * DROP_BEHIND_BYTES {
                    drop_pages(&self.map, kept.max(self.dropped), upto);
                    self.dropped = upto;
                }
            }
            None => {
                drop_pages(&self.map, self.dropped, upto);
                self.dropped = self.dropped.max(upto);
                self.populate_ahead();
            }
        }
        self.check_size();
    }

    /// Fills the page tables of the next [`DROP_BEHIND_BYTES`] ahead of the reader (see
    /// [`fill_page_tables`]). Pages not in the cache are read in here, as read-ahead would.
    fn populate_ahead(&mut self) {
        let target = self
            .pos
            .saturating_add(2 * DROP_BEHIND_BYTES)
            .min(self.map.len());
        let from = self.populated.max(self.dropped);
        fill_page_tables(&self.map, from, target);
        self.populated = self.populated.max(target);
    }
}

impl Drop for MappedFile {
    fn drop(&mut self) {
        // The keeper is stopped and joined first: it holds the map, which is unmapped only
        // when the last holder is gone, but its work on it is pointless now.
        drop(self.keeper.take());
        // Unregistered before `map` is unmapped (fields drop after this).
        self.slot.release();
    }
}

/// Drops this process's page-table entries of `[from, to)` (offsets in the map, page-aligned
/// `from`); nothing when the range is empty.
#[allow(unsafe_code)] // MADV_DONTNEED: see SAFETY below.
fn drop_pages(map: &Mmap, from: usize, to: usize) {
    let to = to.min(map.len());
    if to > from {
        // SAFETY: MADV_DONTNEED on a shared read-only file map only removes this process's
        // page-table entries; a later access maps the same file bytes again from the page
        // cache (or zeros, where the guard replaced the pages), so no reference into the map
        // ever sees its bytes change through this call, whatever thread makes it and whenever.
        // The range lies inside the map, which the caller's reference keeps mapped.
        let _ = unsafe { map.unchecked_advise_range(UncheckedAdvice::DontNeed, from, to - from) };
    }
}

/// The keeper of one large map's page tables: a thread told where the reader is.
struct Keeper {
    shared: Arc<KeeperShared>,
    /// A message per reader step; closed to stop the thread.
    wake: Option<crossbeam_channel::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

struct KeeperShared {
    /// Where the reader is.
    pos: AtomicUsize,
    /// Pages before this offset were dropped by the keeper.
    dropped: AtomicUsize,
}

impl Keeper {
    /// Starts the keeper of `map`; `None` if no thread could be started (the reader then does
    /// the work itself).
    fn start(map: Arc<Mmap>, page: usize) -> Option<Keeper> {
        let shared = Arc::new(KeeperShared {
            pos: AtomicUsize::new(0),
            dropped: AtomicUsize::new(0),
        });
        // One pending wake-up is enough: the keeper reads the latest position when it runs.
        let (wake, woken) = crossbeam_channel::bounded::<()>(1);
        let state = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("mw-map-keeper".to_owned())
            .spawn(move || {
                // Its few hundred microseconds of work must come before the reader reaches
                // the pages, not after a busy thread's slice.
                crate::sched::request_short_slice();
                keep(&map, &state, &woken, page)
            })
            .ok()?;
        Some(Keeper {
            shared,
            wake: Some(wake),
            thread: Some(thread),
        })
    }

    /// The reader is at `pos`.
    fn moved_to(&self, pos: usize) {
        self.shared.pos.store(pos, Ordering::Release);
        if let Some(w) = &self.wake {
            let _ = w.try_send(());
        }
    }
}

impl std::ops::Deref for Keeper {
    type Target = KeeperShared;
    fn deref(&self) -> &KeeperShared {
        &self.shared
    }
}

impl Drop for Keeper {
    fn drop(&mut self) {
        drop(self.wake.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The keeper thread: at each wake-up, drops the pages behind the reader and fills the page
/// tables [`KEEPER_AHEAD_BYTES`] ahead of it ([`fill_page_tables`]).
fn keep(map: &Mmap, shared: &KeeperShared, woken: &crossbeam_channel::Receiver<()>, page: usize) {
    let (mut dropped, mut populated) = (0usize, 0usize);
    while woken.recv().is_ok() {
        let pos = shared.pos.load(Ordering::Acquire);
        let upto = pos & !(page - 1);
        if upto >= dropped.saturating_add(DROP_BEHIND_BYTES) {
            drop_pages(map, dropped, upto);
            dropped = upto;
            shared.dropped.store(dropped, Ordering::Release);
        }
        let target = pos.saturating_add(KEEPER_AHEAD_BYTES).min(map.len());
        fill_page_tables(map, populated.max(upto), target);
        populated = populated.max(target);
    }
}

/// Maps the pages of `[from, to)` (offsets in the map) into the process by reading one byte
/// of every [`FAULT_AROUND_BYTES`]: each fault maps the whole aligned window of pages already
/// in the page cache (the kernel's fault-around), or one 2 MiB entry for a folio that large,
/// and reads in pages not cached yet, as read-ahead would. `MADV_POPULATE_READ` walks every
/// 4 KiB page of the range instead: on a file cached in 4 KiB pages (as a capture writer
/// leaves it) the touches cost the replay of an 881 MB mix 0.94 of its wall time and 0.96 of
/// its CPU (farm-bench, 15 pairs); in 2 MiB folios (read back from storage) both are equal.
/// A file cut meanwhile faults here: the guard takes it as on any access, and the reader
/// reports the cut at its next record.
fn fill_page_tables(map: &Mmap, from: usize, to: usize) {
    let to = to.min(map.len());
    let mut at = from;
    while at < to {
        black_box(map.get(at).copied());
        at = (at | (FAULT_AROUND_BYTES - 1)).saturating_add(1);
    }
}

/// How the page cache holds a file, as mapping it shows: the same bytes cost a reader more
/// in 4 KiB pages (a page-table entry, or a copy, per page) than in the 2 MiB folios
/// read-ahead gives a file read back from storage (one entry each). A file still cached since
/// a capture writer wrote it 4 KiB at a time sits in small pages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageCacheLayout {
    /// Bytes of the file mapped (all of it, rounded up to pages).
    pub mapped_bytes: u64,
    /// Of those, bytes mapped by 2 MiB entries (folios of that size in the page cache).
    pub huge_bytes: u64,
}

impl PageCacheLayout {
    /// Share of the file held in 2 MiB folios, from 0 to 1.
    pub fn huge_share(&self) -> f64 {
        if self.mapped_bytes == 0 {
            return 0.0;
        }
        self.huge_bytes as f64 / self.mapped_bytes as f64
    }
}

/// One registered map: its address range and whether a fault hit it.
struct GuardSlot {
    /// Taken by a live `MappedFile`.
    used: AtomicBool,
    /// First address of the map; 0 while not registered. Written last, read first.
    start: AtomicUsize,
    /// One past the last address of the map.
    end: AtomicUsize,
    /// A SIGBUS hit this map; the rest of it now reads as zeros.
    faulted: AtomicBool,
}

/// The registered maps, looked up by the SIGBUS handler (atomics only: signal-safe).
static SLOTS: [GuardSlot; GUARD_SLOTS] = [const {
    GuardSlot {
        used: AtomicBool::new(false),
        start: AtomicUsize::new(0),
        end: AtomicUsize::new(0),
        faulted: AtomicBool::new(false),
    }
}; GUARD_SLOTS];

impl GuardSlot {
    fn claim() -> Option<&'static GuardSlot> {
        SLOTS.iter().find(|slot| {
            slot.used
                .compare_exchange(false, true, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        })
    }

    fn register(&self, start: usize, end: usize) {
        self.faulted.store(false, Ordering::Release);
        self.end.store(end, Ordering::Release);
        self.start.store(start, Ordering::Release);
    }

    fn release(&self) {
        self.start.store(0, Ordering::Release);
        self.end.store(0, Ordering::Release);
        self.used.store(false, Ordering::Release);
    }
}

/// The handler that was there before ours, called for faults outside our maps.
static PREVIOUS: OnceLock<libc::sigaction> = OnceLock::new();
/// Page size, read once when the handler is installed.
static PAGE_SIZE: AtomicUsize = AtomicUsize::new(0);

/// Installs the SIGBUS handler once; the page size when it is in place, `None` if it could not
/// be installed (the files are then read, not mapped).
fn guard_installed() -> Option<usize> {
    static INSTALLED: OnceLock<Option<usize>> = OnceLock::new();
    *INSTALLED.get_or_init(install_guard)
}

#[allow(unsafe_code)] // sysconf and sigaction: see SAFETY below.
fn install_guard() -> Option<usize> {
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    let page = usize::try_from(page).ok().filter(|p| p.is_power_of_two())?;
    PAGE_SIZE.store(page, Ordering::Release);
    // SAFETY: both structures are fully initialised (zeroed, then the fields we use set);
    // `on_sigbus` has the signature SA_SIGINFO asks for and does only signal-safe work
    // (atomics, mmap, sigaction). The previous action is saved before ours can run.
    unsafe {
        let mut previous: libc::sigaction = std::mem::zeroed();
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_sigbus as *const () as usize;
        action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
        libc::sigemptyset(&mut action.sa_mask);
        if libc::sigaction(libc::SIGBUS, std::ptr::null(), &mut previous) != 0 {
            return None;
        }
        let _ = PREVIOUS.set(previous);
        if libc::sigaction(libc::SIGBUS, &action, std::ptr::null_mut()) != 0 {
            return None;
        }
    }
    Some(page)
}

/// The SIGBUS handler. A fault inside a registered map (its file was cut): map zero pages over
/// the rest of it, mark it, and return so the access completes. Any other fault: the previous
/// handler, or the default action (the process dies, as without us).
#[allow(unsafe_code)] // A signal handler: see SAFETY below.
extern "C" fn on_sigbus(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut c_void) {
    // SAFETY: the kernel passes a valid siginfo for SA_SIGINFO handlers; si_addr is the
    // faulting address for SIGBUS.
    let addr = unsafe { (*info).si_addr() } as usize;
    let page = PAGE_SIZE.load(Ordering::Acquire);
    for slot in &SLOTS {
        let start = slot.start.load(Ordering::Acquire);
        let end = slot.end.load(Ordering::Acquire);
        if start == 0 || page == 0 || addr < start || addr >= end {
            continue;
        }
        let from = addr & !(page - 1);
        // SAFETY: [from, end) lies inside a live map (registered until its owner drops it, and
        // only its owner's thread reads it, so it cannot be unmapped under us). MAP_FIXED
        // replaces those pages with private zero pages, readable like the file pages were, so
        // the faulting read completes and reads 0; the owner's munmap later frees them.
        let zeros = unsafe {
            libc::mmap(
                from as *mut c_void,
                end - from,
                libc::PROT_READ,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
                -1,
                0,
            )
        };
        if zeros != libc::MAP_FAILED {
            slot.faulted.store(true, Ordering::Release);
            return;
        }
        break;
    }
    // SAFETY: calls the saved handler with the arguments the kernel gave us, in the form its
    // flags declare; or restores the default action, after which the faulting access is
    // retried and the process ends as it would have without this handler.
    unsafe {
        match PREVIOUS.get() {
            Some(prev)
                if prev.sa_sigaction != libc::SIG_DFL && prev.sa_sigaction != libc::SIG_IGN =>
            {
                if prev.sa_flags & libc::SA_SIGINFO != 0 {
                    let handler: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut c_void) =
                        std::mem::transmute(prev.sa_sigaction);
                    handler(sig, info, ctx);
                } else {
                    let handler: extern "C" fn(libc::c_int) =
                        std::mem::transmute(prev.sa_sigaction);
                    handler(sig);
                }
            }
            _ => {
                let mut default: libc::sigaction = std::mem::zeroed();
                default.sa_sigaction = libc::SIG_DFL;
                libc::sigaction(sig, &default, std::ptr::null_mut());
            }
        }
    }
}
