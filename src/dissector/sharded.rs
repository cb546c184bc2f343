//! `-j N` on a capture file: connections dissected on N worker threads, with output
//! byte-identical to one thread.
//!
//! What must be decided in capture order across connections stays on one thread; what is
//! private to a connection is spread out:
//! - the *reader* thread reads the capture, decodes packets and runs the flow table (stream
//!   numbers, the connection limit's evictions, reassembly), and hands each TCP event, with
//!   its bytes copied, to the worker of the connection's shard;
//! - each *worker* runs the TLS, HTTP, WebSocket and application stages of its connections
//!   (the bulk of the work: unmasking, inflating, validating, decoding) and records what they
//!   emit;
//! - the calling thread replays the workers' records in the order one thread would have
//!   produced them, through the same [`Sequencer`], into the sink (which need not be `Send`).
//!
//! A shard is a union of [`SidTable`] partitions (by host pair): Engine.IO sessions span the
//! connections between two hosts, and their state must see those connections in order. Role
//! swaps asked for by a session (a capture that starts mid-connection) are applied by the
//! worker: the reader's flow table keeps its first guess and the worker relabels the sides.
//!
//! Work moves in epochs: the reader fills one batch per worker and a route list (which worker
//! produced the records of each event, interleaved with the reader's own records), then
//! sends each worker its batch and the calling thread the routes. Workers send their records
//! back in chunks of bounded size, a chunk at the end of each batch, and the calling thread
//! returns each chunk once replayed (see [`merge`]). Every channel is bounded
//! and first-in first-out, and the calling thread only ever waits for records that come
//! before any a blocked thread holds, so memory stays bounded and no thread waits on another
//! in a cycle.

use super::{
    capture_notice_problem, count_packet, decode_notice_problem, undecodable_problem,
    unsupported_link_problem, Conn, Dissect, Sequencer, Spent,
};
use crate::app::polling::{SidTable, SID_PARTITIONS};
use crate::capture::{CaptureNotice, CaptureRecord, LinkType};
use crate::decode::{Decoded, Decoder};
use crate::event::{Event, Meta};
use crate::session::{Accounting, Ctx, Emitter, Options};
use crate::sink::{RunTotals, Sink};
use crate::tcp::{ConnInfo, Feedback, FlowTable, PacketMeta, TcpEvent};
use crate::tls::KeyLog;
use foldhash::HashMap;
use std::collections::BTreeSet;
use std::io;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};

/// An epoch ends after this many routed events or this many copied stream bytes.
const EPOCH_ROUTES: usize = 4096;
const EPOCH_BYTES: usize = 1 << 20;
/// Epochs waiting in each channel.
const EPOCHS_IN_FLIGHT: usize = 4;
/// Chunks of records waiting from each worker.
const CHUNKS_IN_FLIGHT: usize = 8;

/// A TCP event whose bytes live in its batch's buffer.
enum Work {
    Tcp {
        meta: Meta,
        stream: u64,
        /// The connection, with its `Opened` event.
        opened: Option<Box<ConnInfo>>,
        ev: TcpEvent<'static>,
        /// Bytes of a `Data` event: a range of [`Batch::data`].
        data: (usize, usize),
    },
    Secrets {
        kind: u32,
        data: Vec<u8>,
    },
}

struct Batch {
    work: Vec<Work>,
    data: Vec<u8>,
}

impl Batch {
    /// A batch that will not grow by copying (grown from empty, it copied what it held at
    /// each doubling), unless one packet brings more than the slack.
    fn with_room() -> Batch {
        Batch {
            work: Vec::with_capacity(ROUTES_ROOM),
            data: Vec::with_capacity(EPOCH_BYTES + EPOCH_BYTES_SLACK),
        }
    }
}

/// Routes (and work items, which are fewer) an epoch holds room for: a packet may add several
/// after the epoch is full.
const ROUTES_ROOM: usize = EPOCH_ROUTES + EPOCH_SLACK;
/// What the packet that fills an epoch may add beyond it: routes (or work items), and bytes.
const EPOCH_SLACK: usize = 1024;
const EPOCH_BYTES_SLACK: usize = 64 << 10;

/// Where the records of the next event come from, in the order one thread makes them.
enum Route {
    CaptureStart(Meta),
    Now(u64),
    Worker(usize),
    /// A record of the reader's own (a problem below TCP): rare, so boxed to keep routes small.
    Record(Box<Event<'static>>),
}

// Nearly every item is a record: boxing them to shrink the rare `Classify` would cost an
// allocation per record.
#[allow(clippy::large_enum_variant)]
enum Item {
    /// A record and its [`super::payload_size`] before any cut.
    Record(Event<'static>, usize),
    Classify(u64, bool),
    /// Frame and message records without problems that the sink does not read, made in a
    /// row by one event: counted, and weighed while records are held, but not handed over.
    Unread {
        frames: u32,
        messages: u32,
        size: usize,
    },
    /// A record the calling thread took out of its chunk to hold back.
    Taken,
}

/// A worker's records, sent in chunks: `ends` lists where the records of each of its events
/// stop (an event whose records fill more than one chunk ends in a later one).
#[derive(Default)]
struct Records {
    items: Vec<Item>,
    ends: Vec<usize>,
}

impl Records {
    /// A chunk that will not grow by copying (its vectors are as long as a chunk gets).
    fn with_capacity() -> Records {
        Records { items: Vec::with_capacity(CHUNK_ITEMS), ends: Vec::with_capacity(CHUNK_ITEMS) }
    }

    /// Records that went back to their worker outside a chunk (see [`merge`]).
    fn of_spent(records: Vec<Event<'static>>) -> Records {
        Records { items: records.into_iter().map(|ev| Item::Record(ev, 0)).collect(), ends: vec![] }
    }
}

/// Emptied chunks a worker keeps to fill again: a fresh one is two allocations, and its
/// first records land on pages the allocator has to map again.
const SPARE_CHUNKS: usize = 2;

/// Records of at most this many items or payload bytes are sent in one chunk: an event may
/// make any number of records (a segment of a million empty frames), and what waits between
/// the threads must stay bounded whatever the input.
const CHUNK_ITEMS: usize = 1024;
const CHUNK_BYTES: usize = 1 << 20;

/// The worker's emitter: collects records and sends them on in chunks.
struct Chunker {
    chunk: Records,
    /// Emptied chunks back from the calling thread.
    spare: Vec<Records>,
    bytes: usize,
    tx: SyncSender<Records>,
    /// The calling thread has stopped taking records.
    closed: bool,
    /// The sink's [`Sink::payload_prefix`]: payloads are cut to it.
    payload_prefix: Option<usize>,
    /// The sink's [`Sink::reads_frames`].
    reads_frames: bool,
    /// The sink's [`Sink::reads_json_marks`].
    reads_json_marks: bool,
}

impl Chunker {
    fn send(&mut self) {
        // An empty chunk is never asked for: sent, it would wait in the channel for good and
        // fill it (a worker whose shard has no connection in a batch).
        if self.chunk.items.is_empty() && self.chunk.ends.is_empty() {
            return;
        }
        let fresh = self.spare.pop().unwrap_or_else(Records::with_capacity);
        let chunk = std::mem::replace(&mut self.chunk, fresh);
        self.bytes = 0;
        if !self.closed && self.tx.send(chunk).is_err() {
            self.closed = true;
        }
    }

    fn push(&mut self, item: Item, bytes: usize) {
        self.chunk.items.push(item);
        self.bytes += bytes;
        if self.chunk.items.len() >= CHUNK_ITEMS || self.bytes >= CHUNK_BYTES {
            self.send();
        }
    }

    fn end_of_event(&mut self) {
        self.chunk.ends.push(self.chunk.items.len());
    }

    /// Counts an unread record into the item before it when that one counts unread records
    /// of the same event: a segment carries dozens of frames, and `conns` reads none.
    fn unread(&mut self, message: bool, size: usize) {
        let event_start = self.chunk.ends.last().copied().unwrap_or(0);
        if self.chunk.items.len() > event_start {
            if let Some(Item::Unread { frames, messages, size: total }) =
                self.chunk.items.last_mut()
            {
                let count = if message { messages } else { frames };
                if let Some(n) = count.checked_add(1) {
                    *count = n;
                    *total = total.saturating_add(size);
                    return;
                }
            }
        }
        let (frames, messages) = if message { (0, 1) } else { (1, 0) };
        self.push(Item::Unread { frames, messages, size }, 16);
    }
}

impl Emitter for Chunker {
    fn emit(&mut self, mut ev: Event<'_>) {
        if !self.reads_frames && ev.problems().is_empty() {
            if let Event::Frame(_) | Event::Message(_) = ev {
                let message = matches!(ev, Event::Message(_));
                self.unread(message, super::payload_size(&ev));
                return;
            }
        }
        let size = super::payload_size(&ev);
        if let Some(keep) = self.payload_prefix {
            ev.cut_payload(keep, self.reads_json_marks);
        }
        let bytes = super::kept_size(&ev);
        self.push(Item::Record(ev.into_owned(), size), bytes);
    }
    fn classify(&mut self, stream: u64, websocket: bool) {
        self.push(Item::Classify(stream, websocket), 16);
    }
}

/// The reader's side: decoding and the flow table, feeding the workers.
pub struct Reader {
    decoder: Decoder,
    /// Each connection's worker, chosen when it opens.
    flows: FlowTable<Option<usize>>,
    workers: Vec<SyncSender<Batch>>,
    /// Batches the workers are done with, emptied, to fill again: a fresh one would grow its
    /// buffers by doubling, copying each epoch's bytes over again.
    spare: Receiver<Batch>,
    merger: SyncSender<Vec<Route>>,
    batches: Vec<Batch>,
    shards: Shards,
    routes: Vec<Route>,
    epoch_bytes: usize,
    totals: RunTotals,
    unsupported_links: BTreeSet<u32>,
    last_meta: Meta,
    /// A thread downstream has stopped (the output failed): reading stops too.
    stopped: bool,
}

/// Which worker dissects each partition of host pairs: every connection between two hosts
/// goes to one worker, and a partition goes, when first seen, to the worker that has been
/// given the fewest bytes so far (a fixed mapping left one of two workers with 56 % of the
/// work on the benchmark capture).
struct Shards {
    of_partition: Vec<Option<usize>>,
    load: Vec<u64>,
}

impl Shards {
    fn new(workers: usize) -> Shards {
        Shards { of_partition: vec![None; SID_PARTITIONS], load: vec![0; workers] }
    }

    fn of(&mut self, info: &ConnInfo) -> usize {
        let part = SidTable::partition_of(SidTable::host_pair(info.client.addr, info.server.addr));
        let load = &self.load;
        *self.of_partition[part]
            .get_or_insert_with(|| (0..load.len()).min_by_key(|&w| load[w]).unwrap_or(0))
    }
}

/// What an event adds to its worker's load, besides its bytes.
const EVENT_LOAD: u64 = 256;

/// A borrowed TCP event as one that owns nothing, its bytes appended to `buf`.
fn detach(ev: TcpEvent<'_>, buf: &mut Vec<u8>) -> (TcpEvent<'static>, (usize, usize)) {
    let mut range = (0, 0);
    let ev = ev.map_data(|data| {
        range = (buf.len(), data.len());
        buf.extend_from_slice(data);
        &[]
    });
    (ev, range)
}

/// The event with its bytes back, and with its side relabelled when the worker swapped the
/// connection's roles.
fn attach<'d>(
    ev: TcpEvent<'static>,
    range: (usize, usize),
    buf: &'d [u8],
    swapped: bool,
) -> TcpEvent<'d> {
    let mut ev = ev.map_data(|_| buf.get(range.0..range.0 + range.1).unwrap_or_default());
    if let (true, Some(from)) = (swapped, ev.from_mut()) {
        *from = from.other();
    }
    ev
}

impl Reader {
    fn route(&mut self, ev: Event<'static>) {
        self.routes.push(Route::Record(Box::new(ev)));
    }

    /// Sends the epoch: each worker its batch (possibly empty), then the routes.
    fn flush(&mut self) {
        if self.stopped {
            return;
        }
        for (tx, batch) in self.workers.iter().zip(self.batches.iter_mut()) {
            let fresh = self.spare.try_recv().unwrap_or_else(|_| Batch::with_room());
            if tx.send(std::mem::replace(batch, fresh)).is_err() {
                self.stopped = true;
                return;
            }
        }
        let routes = std::mem::replace(&mut self.routes, Vec::with_capacity(ROUTES_ROOM));
        self.epoch_bytes = 0;
        if self.merger.send(routes).is_err() {
            self.stopped = true;
        }
    }

    fn stop_error(&self) -> io::Result<()> {
        if self.stopped {
            Err(io::Error::new(io::ErrorKind::BrokenPipe, "output stopped"))
        } else {
            Ok(())
        }
    }

    fn tcp(&mut self, meta: Meta, seg: &crate::decode::TcpSegment<'_>) {
        let pkt = PacketMeta { number: meta.packet, ts: meta.ts };
        let (batches, routes, bytes) = (&mut self.batches, &mut self.routes, &mut self.epoch_bytes);
        let shards = &mut self.shards;
        self.flows.process(pkt, seg, |info, worker, ev| {
            route_tcp(batches, routes, bytes, shards, info, worker, meta, ev);
            Feedback::Continue
        });
    }

    /// End of input: closes every connection and sends the last epoch.
    fn finish(mut self) -> RunTotals {
        let meta = self.last_meta;
        let pkt = PacketMeta { number: meta.packet, ts: meta.ts };
        let (batches, routes, bytes) = (&mut self.batches, &mut self.routes, &mut self.epoch_bytes);
        let shards = &mut self.shards;
        self.flows.finish(pkt, |info, worker, ev| {
            route_tcp(batches, routes, bytes, shards, info, worker, meta, ev);
            Feedback::Continue
        });
        self.flush();
        self.totals
    }
}

#[allow(clippy::too_many_arguments)] // the reader's fields, split to borrow around the table
fn route_tcp(
    batches: &mut [Batch],
    routes: &mut Vec<Route>,
    epoch_bytes: &mut usize,
    shards: &mut Shards,
    info: &ConnInfo,
    worker: &mut Option<usize>,
    meta: Meta,
    ev: TcpEvent<'_>,
) {
    let w = *worker.get_or_insert_with(|| shards.of(info));
    let batch = &mut batches[w];
    let opened = matches!(ev, TcpEvent::Opened).then(|| Box::new(info.clone()));
    let (ev, data) = detach(ev, &mut batch.data);
    *epoch_bytes += data.1;
    shards.load[w] += data.1 as u64 + EVENT_LOAD;
    batch.work.push(Work::Tcp { meta, stream: info.stream, opened, ev, data });
    routes.push(Route::Worker(w));
}

impl Dissect for Reader {
    fn packet(&mut self, rec: &CaptureRecord<'_>) -> io::Result<()> {
        let meta = count_packet(&mut self.totals, rec);
        if meta.packet == 1 {
            self.routes.push(Route::CaptureStart(meta));
        }
        self.last_meta = meta;
        self.routes.push(Route::Now(meta.packet));
        match self.decoder.decode(rec) {
            Decoded::Tcp(seg) => {
                self.totals.tcp_packets += 1;
                self.tcp(meta, &seg);
            }
            Decoded::FragmentHeld | Decoded::NotTcp => {}
            Decoded::UnsupportedLink(LinkType(link)) => {
                if self.unsupported_links.insert(link) {
                    self.route(unsupported_link_problem(meta, link));
                }
            }
            Decoded::Error(e) => self.route(undecodable_problem(meta, &e)),
        }
        for notice in self.decoder.take_notices() {
            self.route(decode_notice_problem(meta, notice));
        }
        if self.routes.len() >= EPOCH_ROUTES || self.epoch_bytes >= EPOCH_BYTES {
            self.flush();
        }
        self.stop_error()
    }

    fn add_secrets(&mut self, secrets_type: u32, data: &[u8]) {
        for b in &mut self.batches {
            b.work.push(Work::Secrets { kind: secrets_type, data: data.to_vec() });
        }
    }

    fn capture_notice(&mut self, notice: CaptureNotice) {
        let ev = capture_notice_problem(self.last_meta, notice);
        self.route(ev);
    }
}

/// A connection on a worker (boxed in the worker's map: the state is over a kilobyte, and a
/// hash table of inline values would reserve that for each of its empty buckets).
struct WorkerConn {
    info: ConnInfo,
    swapped: bool,
    conn: Conn,
}

/// A worker's channels.
struct WorkerLinks {
    /// Batches from the reader.
    batches: Receiver<Batch>,
    /// Records to the calling thread.
    records: SyncSender<Records>,
    /// Emptied batches back to the reader.
    spare: SyncSender<Batch>,
    /// Chunks of records the sink is done with, back from the calling thread (see
    /// [`merge`]).
    spent: Receiver<Records>,
}

/// Dissects the connections of one shard, batch by batch, until the reader is done.
fn work(
    opts: &Options,
    mut keys: KeyLog,
    links: WorkerLinks,
    payload_prefix: Option<usize>,
    reads: (bool, bool),
) -> Accounting {
    let WorkerLinks { batches: rx, records: tx, spare, spent } = links;
    let mut conns: HashMap<u64, Box<WorkerConn>> = HashMap::default();
    let mut acct = Accounting::default();
    let mut sids = SidTable::default();
    let mut out = Chunker {
        chunk: Records::with_capacity(),
        spare: Vec::with_capacity(SPARE_CHUNKS),
        bytes: 0,
        tx,
        closed: false,
        payload_prefix,
        reads_frames: reads.0,
        reads_json_marks: reads.1,
    };
    for mut batch in rx {
        // Freed here, where they were allocated: see [`merge`].
        while let Ok(mut chunk) = spent.try_recv() {
            chunk.items.clear();
            chunk.ends.clear();
            if out.spare.len() < SPARE_CHUNKS && chunk.items.capacity() >= CHUNK_ITEMS {
                out.spare.push(chunk);
            }
        }
        let Batch { work, data } = &mut batch;
        for w in work.drain(..) {
            let (meta, stream, opened, ev, range) = match w {
                Work::Secrets { kind, data } => {
                    keys.add_dsb(kind, &data);
                    continue;
                }
                Work::Tcp { meta, stream, opened, ev, data } => (meta, stream, opened, ev, data),
            };
            if let Some(info) = opened {
                let c = WorkerConn { info: *info, swapped: false, conn: Conn::default() };
                conns.insert(stream, Box::new(c));
            }
            let closed = matches!(ev, TcpEvent::Closed { .. });
            // invariant: the flow table opens a stream before any other event of it and sends
            // nothing after its `Closed`.
            if let Some(c) = conns.get_mut(&stream) {
                let ev = attach(ev, range, data, c.swapped);
                let mut ctx = Ctx { opts, out: &mut out, acct: &mut acct, sids: &mut sids };
                let feedback = c.conn.on_tcp(&c.info, meta, ev, &mut ctx, &mut keys);
                if feedback == Feedback::SwapRoles && !c.info.roles_from_syn {
                    std::mem::swap(&mut c.info.client, &mut c.info.server);
                    c.swapped = !c.swapped;
                }
            }
            if closed {
                conns.remove(&stream);
            }
            out.end_of_event();
        }
        data.clear();
        let _ = spare.try_send(batch);
        // The calling thread needs this batch's records before the reader sends the next.
        out.send();
        if out.closed {
            break;
        }
    }
    acct
}

/// The calling thread's view of one worker's chunks.
struct Incoming {
    rx: Receiver<Records>,
    /// Where chunks go back once replayed.
    back: SyncSender<Records>,
    chunk: Records,
    /// Items of the current chunk replayed so far, and events ended so far.
    at: usize,
    ended: usize,
    /// Records are shown by reference and go back to the worker in their chunk (the sink
    /// keeps nothing); otherwise the sink is handed them.
    by_ref: bool,
}

impl Incoming {
    /// Passes the records of the worker's next event to the sequencer.
    fn next_event(&mut self, seq: &mut Sequencer<'_>) -> io::Result<()> {
        loop {
            if let Some(&end) = self.chunk.ends.get(self.ended) {
                self.ended += 1;
                self.replay_to(seq, end);
                return Ok(());
            }
            // The event's records go on in the next chunk.
            self.replay_to(seq, self.chunk.items.len());
            let next =
                self.rx.recv().map_err(|_| io::Error::other("a dissecting thread stopped"))?;
            self.give_back(next);
        }
    }

    fn replay_to(&mut self, seq: &mut Sequencer<'_>, end: usize) {
        for item in self.chunk.items.get_mut(self.at..end).unwrap_or_default() {
            replay(seq, item, self.by_ref);
        }
        self.at = self.at.max(end);
    }

    /// Sends the current chunk back to be freed and refilled, and goes on with `next`.
    fn give_back(&mut self, next: Records) {
        let done = std::mem::replace(&mut self.chunk, next);
        (self.at, self.ended) = (0, 0);
        // A worker that lags in taking chunks back leaves this one to be freed here.
        let _ = self.back.try_send(done);
    }
}

/// Passes an item to the sequencer: a record by reference where it lies, unless it is to be
/// held or handed over, when it is taken out of its chunk.
fn replay(seq: &mut Sequencer<'_>, item: &mut Item, by_ref: bool) {
    match item {
        Item::Record(ev, _) if by_ref => {
            if !seq.emit_in_place(ev) {
                // Counted by `emit_in_place` already.
                if let Item::Record(ev, size) = std::mem::replace(item, Item::Taken) {
                    seq.hold(ev, size);
                }
            }
        }
        Item::Record(..) => {
            if let Item::Record(ev, size) = std::mem::replace(item, Item::Taken) {
                seq.emit_owned(ev, size);
            }
        }
        Item::Classify(stream, websocket) => seq.classify(*stream, *websocket),
        Item::Unread { frames, messages, size } => seq.unread(*frames, *messages, *size),
        Item::Taken => {}
    }
}

/// Replays the epochs into the sequencer until the reader is done or the output fails.
///
/// Chunks go back to the worker that filled them once replayed, to be refilled. With
/// `give_back`, the records in them go back too, to be freed there: a thread that frees what
/// another allocated takes the allocator's lock of the other's arena (glibc), and the
/// workers waited on it (the table view took 5 % longer, `messages` 15 %). The sink reads
/// those records where they lie, in the chunk: moved out of it, through the sequencer and
/// into a vector of spent records, each record (a couple of hundred bytes) was copied five
/// times on this thread. Records the sequencer held back are sent with those of the event
/// that released them, whichever worker made them, at the end of each epoch or as soon as
/// they weigh [`Spent::MAX_BYTES`]. Not for sinks that keep what they are given
/// ([`Sink::keeps_records`]): they would copy it instead, and are handed the records.
fn merge(
    seq: &mut Sequencer<'_>,
    routes: Receiver<Vec<Route>>,
    workers: Vec<(Receiver<Records>, SyncSender<Records>)>,
    give_back: bool,
) -> io::Result<()> {
    if give_back {
        seq.spent = Some(Spent::default());
    }
    let mut spent: Vec<Spent> = workers.iter().map(|_| Spent::default()).collect();
    let give = |to: &mut Spent, tx: &SyncSender<Records>| {
        // A worker that lags in taking them back leaves them to be freed here.
        let _ = tx.try_send(Records::of_spent(std::mem::take(to).records));
    };
    let mut workers: Vec<Incoming> = workers
        .into_iter()
        .map(|(rx, back)| Incoming {
            rx,
            back,
            chunk: Records::default(),
            at: 0,
            ended: 0,
            by_ref: give_back,
        })
        .collect();
    for epoch in routes {
        for route in epoch {
            match route {
                Route::CaptureStart(meta) => seq.sink.capture_start(meta),
                Route::Now(packet) => seq.now(packet),
                Route::Record(ev) => {
                    let size = super::payload_size(&ev);
                    seq.emit_owned(*ev, size)
                }
                Route::Worker(w) => {
                    let Some(from) = workers.get_mut(w) else { continue };
                    from.next_event(seq)?;
                    if let (Some(done), Some(to)) = (seq.spent.as_mut(), spent.get_mut(w)) {
                        to.append(done);
                        if to.is_full() {
                            give(to, &from.back);
                        }
                    }
                }
            }
        }
        for (to, from) in spent.iter_mut().zip(&workers) {
            if !to.records.is_empty() {
                give(to, &from.back);
            }
        }
        seq.flush_error()?;
    }
    // The last chunks, whose records the sink is done with too.
    for from in &mut workers {
        from.give_back(Records::default());
    }
    Ok(())
}

/// Runs `read` (which feeds the capture to the [`Dissect`] it is given) on a reader thread
/// with `workers` dissecting threads, and the records into `sink` on this thread. Returns the
/// run totals and what `read` returned (`Err`: an output error; `Ok(Err)`: an input error).
pub fn run_sharded<R>(
    opts: Options,
    keys: KeyLog,
    workers: usize,
    sink: &mut dyn Sink,
    read: R,
) -> io::Result<(RunTotals, Result<(), String>)>
where
    R: FnOnce(&mut dyn Dissect) -> io::Result<Result<(), String>> + Send,
{
    let workers = workers.clamp(1, SID_PARTITIONS);
    let payload_prefix = sink.payload_prefix();
    let reads = (sink.reads_frames(), sink.reads_json_marks());
    let keeps_records = sink.keeps_records();
    let mut seq = Sequencer::new(sink, false);
    let (route_tx, route_rx) = sync_channel::<Vec<Route>>(EPOCHS_IN_FLIGHT);
    let (spare_tx, spare_rx) = sync_channel::<Batch>(workers * EPOCHS_IN_FLIGHT);
    let mut batch_txs = Vec::new();
    let mut record_rxs = Vec::new();
    let mut shards = Vec::new();
    for _ in 0..workers {
        let (btx, brx) = sync_channel::<Batch>(EPOCHS_IN_FLIGHT);
        let (rtx, rrx) = sync_channel::<Records>(CHUNKS_IN_FLIGHT);
        let (stx, srx) = sync_channel::<Records>(CHUNKS_IN_FLIGHT);
        batch_txs.push(btx);
        record_rxs.push((rrx, stx));
        shards.push((brx, rtx, srx));
    }
    let reader = Reader {
        decoder: Decoder::new(&opts.limits),
        flows: FlowTable::new(&opts.limits),
        workers: batch_txs,
        spare: spare_rx,
        merger: route_tx,
        batches: (0..workers).map(|_| Batch::with_room()).collect(),
        shards: Shards::new(workers),
        routes: Vec::with_capacity(ROUTES_ROOM),
        epoch_bytes: 0,
        totals: RunTotals::default(),
        unsupported_links: BTreeSet::new(),
        last_meta: Meta::default(),
        stopped: false,
    };
    let opts = &opts;
    std::thread::scope(|s| {
        let mut handles = Vec::new();
        for (batches, records, spent) in shards {
            let keys = keys.clone();
            let links = WorkerLinks { batches, records, spare: spare_tx.clone(), spent };
            let h = std::thread::Builder::new()
                .name("dissect".into())
                .spawn_scoped(s, move || work(opts, keys, links, payload_prefix, reads))?;
            handles.push(h);
        }
        let reading =
            std::thread::Builder::new().name("read".into()).spawn_scoped(s, move || {
                let mut reader = reader;
                let result = read(&mut reader);
                (reader.finish(), result)
            })?;
        let merged = merge(&mut seq, route_rx, record_rxs, !keeps_records);
        // The receivers are gone: a reader or worker still sending sees it and stops.
        let (mut totals, read_result) =
            reading.join().map_err(|_| io::Error::other("reader thread panicked"))?;
        let mut acct = Accounting::default();
        for h in handles {
            let a = h.join().map_err(|_| io::Error::other("dissecting thread panicked"))?;
            add_accounting(&mut acct, &a);
        }
        merged?;
        let read_result = match read_result {
            Ok(r) => r,
            Err(e) => return Err(e),
        };
        seq.drain_all();
        seq.flush_error()?;
        totals.accounting = acct;
        totals.problems = std::mem::take(&mut seq.problems);
        totals.connections = seq.connections;
        totals.websocket_connections = seq.websocket_connections;
        totals.frames = seq.frames;
        totals.messages = seq.messages;
        Ok((totals, read_result))
    })
}

fn add_accounting(to: &mut Accounting, a: &Accounting) {
    to.http_bytes += a.http_bytes;
    to.ws_bytes += a.ws_bytes;
    to.skipped_bytes += a.skipped_bytes;
    to.other_bytes += a.other_bytes;
    to.gap_bytes += a.gap_bytes;
    to.tls_bytes += a.tls_bytes;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::Timestamp;
    use crate::tcp::{CloseReason, Endpoint, Side};

    #[test]
    fn events_keep_their_bytes_and_take_the_workers_roles() {
        let mut buf = b"xx".to_vec();
        let data = TcpEvent::Data { from: Side::Client, offset: 7, data: b"hello" };
        let (ev, range) = detach(data, &mut buf);
        assert_eq!(range, (2, 5));
        assert_eq!(
            attach(ev, range, &buf, false),
            TcpEvent::Data { from: Side::Client, offset: 7, data: b"hello" }
        );
        let (ev, range) =
            detach(TcpEvent::Data { from: Side::Client, offset: 7, data: b"hello" }, &mut buf);
        assert_eq!(
            attach(ev, range, &buf, true),
            TcpEvent::Data { from: Side::Server, offset: 7, data: b"hello" }
        );
        let (ev, range) = detach(TcpEvent::Fin { from: Side::Server, ack: true }, &mut buf);
        assert_eq!(attach(ev, range, &buf, true), TcpEvent::Fin { from: Side::Client, ack: true });
        let closed = TcpEvent::Closed { reason: CloseReason::Rst };
        let (ev, range) = detach(closed, &mut buf);
        assert_eq!(attach(ev, range, &buf, true), TcpEvent::Closed { reason: CloseReason::Rst });
        assert_eq!(buf.len(), 12, "only data events add bytes");
    }

    #[test]
    fn both_directions_and_every_port_of_two_hosts_share_a_worker() {
        let info = |a: [u8; 4], pa: u16, b: [u8; 4], pb: u16| ConnInfo {
            stream: 0,
            client: Endpoint { addr: a.into(), port: pa },
            server: Endpoint { addr: b.into(), port: pb },
            roles_from_syn: true,
            first_packet: 1,
            first_ts: Timestamp::default(),
        };
        let (x, y) = ([10, 0, 0, 1], [10, 0, 0, 2]);
        for workers in 1..=5 {
            let mut shards = Shards::new(workers);
            let w = shards.of(&info(x, 40000, y, 80));
            shards.load[w] += 1000;
            assert_eq!(w, shards.of(&info(y, 80, x, 40000)));
            assert_eq!(w, shards.of(&info(x, 40001, y, 8080)));
            assert!(w < workers);
        }
        // New partitions go to the least loaded worker, so many host pairs spread over all.
        let mut shards = Shards::new(4);
        let mut used = BTreeSet::new();
        for i in 0..64u8 {
            let w = shards.of(&info([192, 0, 2, i], 1, y, 80));
            shards.load[w] += 1000;
            used.insert(w);
        }
        assert_eq!(used.len(), 4);
    }

    /// Counts records given by reference and by value, and lists their packets; keeps those
    /// given by value if told to.
    struct Taker {
        keeps: bool,
        by_ref: usize,
        by_value: usize,
        packets: Vec<u64>,
    }

    impl Taker {
        fn new(keeps: bool) -> Taker {
            Taker { keeps, by_ref: 0, by_value: 0, packets: Vec::new() }
        }
    }

    impl Sink for Taker {
        fn event(&mut self, ev: &Event<'_>) -> io::Result<()> {
            self.by_ref += 1;
            self.packets.push(ev.packet());
            Ok(())
        }
        fn event_owned(&mut self, ev: Event<'static>) -> io::Result<()> {
            self.packets.push(ev.packet());
            self.by_value += 1;
            Ok(())
        }
        fn keeps_records(&self) -> bool {
            self.keeps
        }
    }

    fn problem(packet: u64) -> Event<'static> {
        Event::Problem(crate::event::ProblemRecord {
            meta: Meta { packet, ..Meta::default() },
            stream: None,
            h2_stream: None,
            from: None,
            code: crate::problem::ProblemCode::ConnectionLimit,
            detail: String::new(),
        })
    }

    /// Merges one epoch of the given routes over one chunk per worker; returns what the sink
    /// was given, what went back to each worker, and how many records were counted.
    fn merge_chunks(
        keeps: bool,
        routes: Vec<Route>,
        chunks: Vec<Records>,
    ) -> (Taker, Vec<Vec<u64>>, u64) {
        let mut sink = Taker::new(keeps);
        let mut seq = Sequencer::new(&mut sink, false);
        let (route_tx, route_rx) = sync_channel(1);
        route_tx.send(routes).unwrap();
        drop(route_tx);
        let mut workers = Vec::new();
        let mut spent = Vec::new();
        for chunk in chunks {
            let (tx, rx) = sync_channel(1);
            tx.send(chunk).unwrap();
            let (spent_tx, spent_rx) = sync_channel(CHUNKS_IN_FLIGHT);
            workers.push((rx, spent_tx));
            spent.push(spent_rx);
        }
        merge(&mut seq, route_rx, workers, !keeps).unwrap();
        seq.drain_all();
        let counted = seq.emitted;
        drop(seq);
        let records = |chunk: Records| chunk.items.into_iter();
        let back = spent
            .iter()
            .map(|rx| {
                rx.try_iter()
                    .flat_map(records)
                    .filter_map(|item| match item {
                        Item::Record(ev, _) => Some(ev.packet()),
                        _ => None,
                    })
                    .collect()
            })
            .collect();
        (sink, back, counted)
    }

    /// Merges one epoch of three events, two from worker 1 and one from worker 0.
    fn merge_one_epoch(keeps: bool) -> (Taker, Vec<Vec<u64>>) {
        let chunk = |packets: &[u64]| Records {
            items: packets.iter().map(|&p| Item::Record(problem(p), 0)).collect(),
            ends: (1..=packets.len()).collect(),
        };
        let routes = vec![Route::Worker(1), Route::Worker(0), Route::Worker(1)];
        let (sink, back, _) = merge_chunks(keeps, routes, vec![chunk(&[2]), chunk(&[1, 3])]);
        (sink, back)
    }

    /// A SYN of stream 5 (not yet known to be WebSocket) at packet 1.
    fn syn(packet: u64) -> Event<'static> {
        let end = Endpoint { addr: std::net::Ipv4Addr::LOCALHOST.into(), port: 80 };
        Event::Tcp(crate::event::TcpRecord {
            meta: Meta { packet, ..Meta::default() },
            stream: 5,
            from: Side::Client,
            src: end,
            dst: end,
            kind: crate::event::TcpKind::Syn,
            ack: false,
            bytes: None,
            problems: vec![],
        })
    }

    #[test]
    fn records_held_back_are_taken_from_their_chunk_and_shown_in_order() {
        // One event makes the SYN (held: its stream is not classified) and a record held
        // behind it; the next classifies the stream, releasing both, and makes one more.
        let chunk = || Records {
            items: vec![
                Item::Record(syn(1), 0),
                Item::Record(problem(2), 0),
                Item::Classify(5, true),
                Item::Record(problem(3), 0),
            ],
            ends: vec![2, 4],
        };
        for keeps in [false, true] {
            let routes = vec![Route::Worker(0), Route::Worker(0)];
            let (sink, back, counted) = merge_chunks(keeps, routes, vec![chunk()]);
            assert_eq!(sink.packets, vec![1, 2, 3], "keeps: {keeps}");
            assert_eq!(counted, 3, "keeps: {keeps}");
            let back: Vec<u64> = back.into_iter().flatten().collect();
            if keeps {
                assert!(back.is_empty());
            } else {
                // The two held records by way of the sequencer, the last in its chunk.
                assert_eq!(back, vec![1, 2, 3]);
            }
        }
    }

    #[test]
    fn unread_records_of_one_event_are_counted_in_one_item() {
        let (tx, rx) = sync_channel(4);
        let mut out = Chunker {
            chunk: Records::with_capacity(),
            spare: Vec::new(),
            bytes: 0,
            tx,
            closed: false,
            payload_prefix: Some(0),
            reads_frames: false,
            reads_json_marks: false,
        };
        let frame = || Event::Frame(crate::event::FrameRecord::text_for_test(b"ab"[..].into()));
        let message =
            || Event::Message(crate::event::MessageRecord::text_for_test(b"abcd"[..].into()));
        // One event: two frames, a message, a record the sink reads, a frame; then another.
        out.emit(frame());
        out.emit(frame());
        out.emit(message());
        out.emit(problem(9));
        out.emit(frame());
        out.end_of_event();
        out.emit(frame());
        out.end_of_event();
        out.send();
        let chunk = rx.try_recv().unwrap();
        let unread: Vec<_> = chunk
            .items
            .iter()
            .map(|item| match item {
                Item::Unread { frames, messages, .. } => Some((*frames, *messages)),
                _ => None,
            })
            .collect();
        assert_eq!(unread, [Some((2, 1)), None, Some((1, 0)), Some((1, 0))]);
        assert_eq!(chunk.ends, [3, 4]);
        // The sequencer counts what they stand for.
        let (sink, _, counted) =
            merge_chunks(false, vec![Route::Worker(0), Route::Worker(0)], vec![chunk]);
        assert_eq!((counted, sink.packets), (6, vec![9]));
    }

    #[test]
    fn records_go_back_to_the_worker_that_made_them() {
        let (sink, back) = merge_one_epoch(false);
        assert_eq!((sink.by_ref, sink.by_value), (3, 0));
        assert_eq!(back, vec![vec![2], vec![1, 3]]);
    }

    #[test]
    fn a_sink_that_keeps_records_is_given_them() {
        let (sink, back) = merge_one_epoch(true);
        assert_eq!((sink.by_ref, sink.by_value), (0, 3));
        assert_eq!(back, vec![Vec::<u64>::new(), vec![]]);
    }

    #[test]
    fn records_held_to_go_back_stay_bounded() {
        let mut sink = Taker::new(false);
        let mut seq = Sequencer::new(&mut sink, false);
        seq.spent = Some(Spent::default());
        for p in 1..=5000 {
            let payload = std::borrow::Cow::Owned(vec![b'x'; 1000]);
            let mut m = crate::event::MessageRecord::text_for_test(payload);
            m.meta.packet = p;
            let ev = Event::Message(m);
            let size = super::super::payload_size(&ev);
            seq.emit_owned(ev, size);
            let held = seq.spent.as_ref().map_or(0, |s| s.bytes);
            assert!(held < Spent::MAX_BYTES, "{held} bytes held after {p} records");
        }
        drop(seq);
        assert_eq!(sink.by_ref, 5000);
    }
}
