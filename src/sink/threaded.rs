//! A sink that runs another sink on a thread of its own (`-j 2`).
//!
//! Formatting records (JSON string escaping, base64, table cells) costs about as much as
//! dissecting them, so the two halves run on two cores: the dissecting thread hands owned
//! events over in batches, and the formatting thread feeds them to the real sink in the same
//! order, so the output is byte-identical to a single-threaded run. It works with the
//! sharded dissector of `-j N` (`crate::dissector::run_sharded`), whose records it formats.
//!
//! The JSON marks of text messages (`MessageRecord::is_json`), when the sink shows them, are
//! decided by whichever thread has time: a batch that finds the formatting thread's queue
//! full has its marks decided on the dissecting thread, which would otherwise only wait; the
//! others are decided as they are formatted. The check is a fifth of the work of JSON
//! output, and neither thread is always the busier one (compressed traffic loads the
//! dissecting thread, long text the formatting one). The marks are the same either way.
//!
//! Memory stays bounded: a batch is cut at `BATCH_EVENTS` events or `BATCH_BYTES` payload
//! bytes, and at most `BATCHES_IN_FLIGHT` batches wait; the dissecting thread blocks beyond.
//!
//! Formatted batches go back to the dissecting thread, which frees them as it makes the next
//! one. Their payloads were allocated there, and a thread that frees what another allocated
//! takes the allocator's lock of the other's arena (glibc): the dissecting thread then waited
//! for it in a tenth of the profile of `--json`.

use super::{RunInfo, RunTotals, Sink};
use crate::event::{Event, Meta};
use std::io;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::thread::JoinHandle;

const BATCH_EVENTS: usize = 512;
const BATCH_BYTES: usize = 1 << 20;
const BATCHES_IN_FLIGHT: usize = 4;

enum Msg {
    Begin(RunInfo),
    CaptureStart(Meta),
    Events(Vec<Event<'static>>),
    End(Box<RunTotals>),
}

/// What the sink on the formatting thread reads, asked once when it is made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Reads {
    frames: bool,
    json_marks: bool,
    payload_prefix: Option<usize>,
}

impl Reads {
    fn of(sink: &dyn Sink) -> Reads {
        Reads {
            frames: sink.reads_frames(),
            json_marks: sink.reads_json_marks(),
            payload_prefix: sink.payload_prefix(),
        }
    }
}

/// Runs the sink made by a factory on its own thread.
pub struct Threaded {
    tx: Option<SyncSender<Msg>>,
    /// Batches the formatting thread is done with.
    done: Receiver<Vec<Event<'static>>>,
    handle: Option<JoinHandle<io::Result<()>>>,
    batch: Vec<Event<'static>>,
    batch_bytes: usize,
    reads: Reads,
}

impl Threaded {
    /// `make` runs on the new thread (so the sink and its writer need not be `Send`).
    pub fn spawn<F>(make: F) -> io::Result<Threaded>
    where
        F: FnOnce() -> Box<dyn Sink> + Send + 'static,
    {
        let (tx, rx) = sync_channel::<Msg>(BATCHES_IN_FLIGHT);
        let (reads_tx, reads_rx) = sync_channel::<Reads>(1);
        let (done_tx, done) = sync_channel::<Vec<Event<'static>>>(BATCHES_IN_FLIGHT + 1);
        let handle = std::thread::Builder::new().name("format".into()).spawn(move || {
            let mut sink = make();
            // The receiver waits for this answer before anything else is sent.
            let _ = reads_tx.send(Reads::of(sink.as_ref()));
            for msg in rx {
                match msg {
                    Msg::Begin(info) => sink.begin(&info)?,
                    Msg::CaptureStart(meta) => sink.capture_start(meta),
                    Msg::Events(events) => {
                        for ev in &events {
                            sink.event(ev)?;
                        }
                        // Should the dissecting thread lag in taking them back, they are
                        // freed here.
                        let _ = done_tx.try_send(events);
                    }
                    Msg::End(totals) => sink.end(&totals)?,
                }
            }
            Ok(())
        })?;
        let mut threaded = Threaded {
            tx: Some(tx),
            done,
            handle: Some(handle),
            batch: Vec::with_capacity(BATCH_EVENTS),
            batch_bytes: 0,
            reads: Reads { frames: true, json_marks: false, payload_prefix: None },
        };
        match reads_rx.recv() {
            Ok(reads) => threaded.reads = reads,
            // The factory panicked: the thread's end is the answer.
            Err(_) => return Err(threaded.join().err().unwrap_or_else(thread_stopped)),
        }
        Ok(threaded)
    }

    fn send(&mut self, msg: Msg) -> io::Result<()> {
        let sent = self.tx.as_ref().map(|tx| tx.send(msg).is_ok()).unwrap_or(false);
        if sent {
            Ok(())
        } else {
            // The formatting thread stopped: its error (a closed pipe, say) is the answer.
            Err(self.join().err().unwrap_or_else(thread_stopped))
        }
    }

    fn flush_batch(&mut self) -> io::Result<()> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let next = self.take_back_done();
        let events = std::mem::replace(&mut self.batch, next);
        self.batch_bytes = 0;
        let Some(tx) = self.tx.as_ref() else { return self.send(Msg::Events(events)) };
        match tx.try_send(Msg::Events(events)) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(Msg::Events(mut events))) => {
                if self.reads.json_marks {
                    decide_json_marks(&mut events);
                }
                self.send(Msg::Events(events))
            }
            Err(TrySendError::Full(msg) | TrySendError::Disconnected(msg)) => self.send(msg),
        }
    }

    /// Frees the batches the formatting thread is done with; one of them, emptied, holds the
    /// next batch.
    fn take_back_done(&mut self) -> Vec<Event<'static>> {
        let mut next = None;
        while let Ok(mut done) = self.done.try_recv() {
            done.clear();
            next.get_or_insert(done);
        }
        next.unwrap_or_else(|| Vec::with_capacity(BATCH_EVENTS))
    }

    /// Waits for the formatting thread and returns its result.
    fn join(&mut self) -> io::Result<()> {
        self.tx = None;
        match self.handle.take() {
            Some(h) => h.join().unwrap_or_else(|_| Err(io::Error::other("output thread panicked"))),
            None => Ok(()),
        }
    }
}

impl Sink for Threaded {
    fn begin(&mut self, info: &RunInfo) -> io::Result<()> {
        self.send(Msg::Begin(info.clone()))
    }

    fn capture_start(&mut self, first: Meta) {
        // An error here shows at the next event.
        let _ = self.flush_batch().and_then(|()| self.send(Msg::CaptureStart(first)));
    }

    fn event(&mut self, ev: &Event<'_>) -> io::Result<()> {
        self.event_owned(ev.clone().into_owned())
    }

    fn event_owned(&mut self, owned: Event<'static>) -> io::Result<()> {
        self.batch_bytes += payload_len(&owned);
        self.batch.push(owned);
        if self.batch.len() >= BATCH_EVENTS || self.batch_bytes >= BATCH_BYTES {
            self.flush_batch()?;
        }
        Ok(())
    }

    fn keeps_records(&self) -> bool {
        true
    }

    fn reads_frames(&self) -> bool {
        self.reads.frames
    }

    fn reads_json_marks(&self) -> bool {
        self.reads.json_marks
    }

    fn payload_prefix(&self) -> Option<usize> {
        self.reads.payload_prefix
    }

    fn end(&mut self, totals: &RunTotals) -> io::Result<()> {
        self.flush_batch()?;
        self.send(Msg::End(Box::new(totals.clone())))?;
        self.join()
    }
}

impl Drop for Threaded {
    fn drop(&mut self) {
        let _ = self.join();
    }
}

fn decide_json_marks(events: &mut [Event<'static>]) {
    for ev in events {
        if let Event::Message(r) = ev {
            if r.json.is_none() {
                r.json = Some(r.is_json());
            }
        }
    }
}

fn thread_stopped() -> io::Error {
    io::Error::other("output thread stopped")
}

fn payload_len(ev: &Event<'_>) -> usize {
    match ev {
        Event::Frame(f) => f.payload.len(),
        Event::Message(m) => m.payload.len(),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::ProblemRecord;
    use std::sync::{Arc, Mutex};

    /// Records what it was given, as text, into a shared log.
    struct Log(Arc<Mutex<Vec<String>>>, Option<usize>);

    impl Sink for Log {
        fn begin(&mut self, info: &RunInfo) -> io::Result<()> {
            self.0.lock().unwrap().push(format!("begin {}", info.view));
            Ok(())
        }
        fn event(&mut self, ev: &Event<'_>) -> io::Result<()> {
            let mut log = self.0.lock().unwrap();
            if Some(log.len()) == self.1 {
                return Err(io::Error::from(io::ErrorKind::BrokenPipe));
            }
            log.push(format!("event {}", ev.packet()));
            Ok(())
        }
        fn end(&mut self, totals: &RunTotals) -> io::Result<()> {
            self.0.lock().unwrap().push(format!("end {}", totals.packets));
            Ok(())
        }
    }

    /// A threaded [`Log`] sink and its log.
    fn logged(fail_at: Option<usize>) -> (Arc<Mutex<Vec<String>>>, Threaded) {
        let log = Arc::new(Mutex::new(Vec::new()));
        let shared = log.clone();
        let sink = Threaded::spawn(move || Box::new(Log(shared, fail_at)) as Box<dyn Sink>);
        (log, sink.unwrap())
    }

    fn problem(packet: u64) -> Event<'static> {
        Event::Problem(ProblemRecord {
            meta: Meta { packet, ..Meta::default() },
            stream: None,
            h2_stream: None,
            from: None,
            code: crate::problem::ProblemCode::ConnectionLimit,
            detail: String::new(),
        })
    }

    #[test]
    fn passes_everything_on_in_order() {
        let (log, mut sink) = logged(None);
        sink.begin(&RunInfo { view: "frames", inputs: vec![] }).unwrap();
        for p in 1..=2000 {
            sink.event(&problem(p)).unwrap();
        }
        sink.end(&RunTotals { packets: 2000, ..RunTotals::default() }).unwrap();
        let log = log.lock().unwrap();
        assert_eq!(log.len(), 2002);
        assert_eq!(log[0], "begin frames");
        assert!(log[1..2001].iter().enumerate().all(|(i, l)| *l == format!("event {}", i + 1)));
        assert_eq!(log[2001], "end 2000");
    }

    #[test]
    fn formatted_batches_come_back_whole_to_be_freed_where_they_were_made() {
        let (log, mut sink) = logged(None);
        // One full batch: handed over as the last event arrives.
        for p in 1..=BATCH_EVENTS as u64 {
            sink.event(&problem(p)).unwrap();
        }
        let back = sink.done.recv_timeout(std::time::Duration::from_secs(10)).unwrap();
        assert_eq!(back.len(), BATCH_EVENTS);
        assert_eq!(back.last().map(Event::packet), Some(BATCH_EVENTS as u64));
        sink.end(&RunTotals::default()).unwrap();
        assert_eq!(log.lock().unwrap().len(), BATCH_EVENTS + 1);
    }

    #[test]
    fn an_output_error_reaches_the_dissecting_thread() {
        let (_log, mut sink) = logged(Some(10));
        sink.begin(&RunInfo::default()).unwrap();
        let mut result = Ok(());
        for p in 1..=100_000 {
            result = sink.event(&problem(p));
            if result.is_err() {
                break;
            }
        }
        let result = result.and_then(|()| sink.end(&RunTotals::default()));
        assert_eq!(result.unwrap_err().kind(), io::ErrorKind::BrokenPipe);
    }

    /// Shows JSON marks and reads 4 payload bytes; logs each message's mark as it arrived and
    /// as the sink reads it. Slow on the first message, so that the queue fills.
    struct Marks(Arc<Mutex<Vec<Arrival>>>);

    /// A message's JSON mark as it arrived, and as the sink read it.
    type Arrival = (Option<bool>, bool);

    impl Sink for Marks {
        fn event(&mut self, ev: &Event<'_>) -> io::Result<()> {
            if let Event::Message(r) = ev {
                let mut log = self.0.lock().unwrap();
                if log.is_empty() {
                    std::thread::sleep(std::time::Duration::from_millis(300));
                }
                log.push((r.json, r.is_json()));
            }
            Ok(())
        }
        fn reads_json_marks(&self) -> bool {
            true
        }
        fn payload_prefix(&self) -> Option<usize> {
            Some(4)
        }
    }

    fn text_message(text: &str) -> Event<'static> {
        let payload = std::borrow::Cow::Owned(text.as_bytes().to_vec());
        Event::Message(crate::event::MessageRecord::text_for_test(payload))
    }

    #[test]
    fn a_full_queue_has_the_dissecting_thread_decide_json_marks() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let shared = log.clone();
        let mut sink = Threaded::spawn(move || Box::new(Marks(shared)) as Box<dyn Sink>).unwrap();
        assert!(sink.reads_json_marks());
        assert_eq!(sink.payload_prefix(), Some(4));
        let texts = ["{\"a\":[1,2]}", "plain text", "{\"a\":"];
        let rounds = BATCH_EVENTS * (BATCHES_IN_FLIGHT + 4);
        for i in 0..rounds {
            sink.event(&text_message(texts[i % 3])).unwrap();
        }
        sink.end(&RunTotals::default()).unwrap();
        let log = log.lock().unwrap();
        assert_eq!(log.len(), rounds);
        for (i, &(arrived, read)) in log.iter().enumerate() {
            assert_eq!(read, i % 3 == 0, "message {i}");
            assert!(arrived.is_none() || arrived == Some(read), "message {i}");
        }
        // The queue was full while the first message was formatted: the marks of the batch
        // that found it so were decided before handing over, the first batch's were not.
        assert!(log.iter().any(|(arrived, _)| arrived.is_some()));
        assert!(log[0].0.is_none());
    }

    #[test]
    fn a_sink_that_shows_no_marks_gets_none_decided() {
        let (log, mut sink) = logged(None);
        assert!(!sink.reads_json_marks());
        assert_eq!(sink.payload_prefix(), None);
        sink.end(&RunTotals::default()).unwrap();
        assert_eq!(*log.lock().unwrap(), vec!["end 0".to_string()]);
    }
}
