//! Where a diff keeps its message renderings until the report: an unnamed temporary file,
//! so that memory holds only what open connections have not yet written out, not the
//! capture.
//!
//! A connection's renderings, per direction, go out in blocks of about [`BLOCK`] bytes; the
//! report reads back one connection at a time. Blocks of different connections interleave
//! in the file as connections interleave in the capture. When no temporary file can be
//! made (no writable `TMPDIR`), the blocks stay in memory, as before spooling existed.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};

/// Bytes a direction's pending renderings reach before they are written out as a block.
const BLOCK: usize = 16 * 1024;

/// Pending bytes of all connections together past which every connection's are written
/// out, so that many connections open at once stay bounded too.
const PENDING_CAP: usize = 8 * 1024 * 1024;

/// One message as the diff compares it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Item {
    pub render: String,
    /// Milliseconds since the epoch, for `--ignore-order` windows.
    pub at_ms: f64,
}

/// The renderings of one direction of one connection: blocks in the spool, then the ones
/// not yet written out.
#[derive(Debug, Default)]
pub struct Items {
    count: u64,
    /// Offset and length of each block in the spool.
    blocks: Vec<(u64, usize)>,
    pending: Vec<u8>,
}

impl Items {
    pub fn len(&self) -> u64 {
        self.count
    }
}

#[derive(Debug)]
enum Backing {
    File(File),
    Memory(Vec<u8>),
}

/// The file (or, failing one, the memory) that blocks are written to.
#[derive(Debug, Default)]
pub struct Spool {
    backing: Option<Backing>,
    /// Where the next block goes.
    end: u64,
    pending: usize,
}

impl Spool {
    /// Adds one item to `items`; says whether all pending items together passed the cap,
    /// so that the caller writes every connection's out ([`Spool::write_out`]).
    pub fn push(&mut self, items: &mut Items, item: &Item) -> io::Result<bool> {
        let before = items.pending.len();
        items.pending.extend_from_slice(&item.at_ms.to_le_bytes());
        // A rendering is at most a few KB (payloads are cut before rendering).
        let len = u32::try_from(item.render.len()).unwrap_or(u32::MAX);
        items.pending.extend_from_slice(&len.to_le_bytes());
        items.pending.extend_from_slice(&item.render.as_bytes()[..len as usize]);
        items.count += 1;
        self.pending += items.pending.len() - before;
        if items.pending.len() >= BLOCK {
            self.write_out(items)?;
        }
        Ok(self.pending > PENDING_CAP)
    }

    /// Writes `items`' pending renderings out as a block and frees their memory.
    pub fn write_out(&mut self, items: &mut Items) -> io::Result<()> {
        if items.pending.is_empty() {
            return Ok(());
        }
        let block = std::mem::take(&mut items.pending);
        self.pending = self.pending.saturating_sub(block.len());
        let backing = match &mut self.backing {
            Some(b) => b,
            none => none.insert(match tempfile::tempfile() {
                Ok(f) => Backing::File(f),
                Err(_) => Backing::Memory(Vec::new()),
            }),
        };
        match backing {
            Backing::File(f) => {
                f.seek(SeekFrom::Start(self.end)).map_err(spool_error)?;
                f.write_all(&block).map_err(spool_error)?;
            }
            Backing::Memory(m) => m.extend_from_slice(&block),
        }
        items.blocks.push((self.end, block.len()));
        self.end += block.len() as u64;
        Ok(())
    }

    /// All of `items`, in the order they were pushed.
    pub fn read(&mut self, items: &Items) -> io::Result<Vec<Item>> {
        let mut out = Vec::with_capacity(usize::try_from(items.count).unwrap_or(0));
        let mut buf = Vec::new();
        for block in 0..=items.blocks.len() {
            self.decode_block(items, block, &mut buf, &mut out)?;
        }
        Ok(out)
    }

    /// Decodes block `index` of `items` onto `out`; the index past the last block is the
    /// pending items.
    fn decode_block(
        &mut self,
        items: &Items,
        index: usize,
        buf: &mut Vec<u8>,
        out: &mut Vec<Item>,
    ) -> io::Result<()> {
        let Some(&(at, len)) = items.blocks.get(index) else {
            return decode(&items.pending, out);
        };
        let block: &[u8] = match &mut self.backing {
            Some(Backing::File(f)) => {
                buf.resize(len, 0);
                f.seek(SeekFrom::Start(at)).map_err(spool_error)?;
                f.read_exact(buf).map_err(spool_error)?;
                buf
            }
            Some(Backing::Memory(m)) => usize::try_from(at)
                .ok()
                .and_then(|at| m.get(at..at + len))
                .ok_or_else(|| corrupt("a block lies outside the spool"))?,
            None => return Err(corrupt("a block was never written")),
        };
        decode(block, out)
    }
}

/// Whether two item lists (of two spools) have the same renderings in the same order, read
/// a block at a time, so that a long connection is compared without being held whole.
pub fn same_renderings(a: (&mut Spool, &Items), b: (&mut Spool, &Items)) -> io::Result<bool> {
    if a.1.count != b.1.count {
        return Ok(false);
    }
    let mut sides = [Reader::new(a.0, a.1), Reader::new(b.0, b.1)];
    loop {
        for side in &mut sides {
            side.fill()?;
        }
        let [x, y] = &mut sides;
        let n = x.queue.len().min(y.queue.len());
        if n == 0 {
            // Equal counts: both ran out together.
            return Ok(x.queue.is_empty() && y.queue.is_empty());
        }
        if x.queue.drain(..n).zip(y.queue.drain(..n)).any(|(p, q)| p.render != q.render) {
            return Ok(false);
        }
    }
}

/// Calls `f` with each of `items` in order, holding one block at a time.
pub fn for_each(
    spool: &mut Spool,
    items: &Items,
    mut f: impl FnMut(&Item) -> io::Result<()>,
) -> io::Result<()> {
    let mut reader = Reader::new(spool, items);
    loop {
        reader.fill()?;
        if reader.queue.is_empty() {
            return Ok(());
        }
        reader.queue.iter().try_for_each(&mut f)?;
        reader.queue.clear();
    }
}

/// Items of one list, a block at a time.
struct Reader<'s> {
    spool: &'s mut Spool,
    items: &'s Items,
    next_block: usize,
    buf: Vec<u8>,
    queue: Vec<Item>,
}

impl<'s> Reader<'s> {
    fn new(spool: &'s mut Spool, items: &'s Items) -> Self {
        Reader { spool, items, next_block: 0, buf: Vec::new(), queue: Vec::new() }
    }

    /// Decodes blocks until some item is queued or the list is done.
    fn fill(&mut self) -> io::Result<()> {
        while self.queue.is_empty() && self.next_block <= self.items.blocks.len() {
            self.spool.decode_block(self.items, self.next_block, &mut self.buf, &mut self.queue)?;
            self.next_block += 1;
        }
        Ok(())
    }
}

fn decode(mut block: &[u8], out: &mut Vec<Item>) -> io::Result<()> {
    while !block.is_empty() {
        let (head, rest) = block.split_at_checked(12).ok_or_else(|| corrupt("cut item"))?;
        let at_ms = f64::from_le_bytes(head[..8].try_into().unwrap_or_default());
        let len = u32::from_le_bytes(head[8..].try_into().unwrap_or_default()) as usize;
        let (text, rest) = rest.split_at_checked(len).ok_or_else(|| corrupt("cut item"))?;
        let render = String::from_utf8(text.to_vec()).map_err(|_| corrupt("item not UTF-8"))?;
        out.push(Item { render, at_ms });
        block = rest;
    }
    Ok(())
}

/// A failure of the temporary file (a full disk, say), told apart from a failure to write
/// the output.
#[derive(Debug, thiserror::Error)]
#[error("diff's temporary file: {0}")]
pub struct SpoolError(String);

/// Whether `e` is a failure of the temporary file.
pub fn is_spool_error(e: &io::Error) -> bool {
    e.get_ref().is_some_and(|inner| inner.is::<SpoolError>())
}

fn spool_error(e: io::Error) -> io::Error {
    io::Error::new(e.kind(), SpoolError(e.to_string()))
}

fn corrupt(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, SpoolError(what.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(i: usize) -> Item {
        Item { render: format!("text \"{i}\" {}", "é".repeat(i % 700)), at_ms: i as f64 * 1.5 }
    }

    #[test]
    fn items_come_back_in_order_across_blocks_and_connections() {
        let mut spool = Spool::default();
        let (mut a, mut b) = (Items::default(), Items::default());
        for i in 0..500 {
            spool.push(&mut a, &item(i)).unwrap();
            spool.push(&mut b, &item(i + 1)).unwrap();
        }
        spool.write_out(&mut a).unwrap();
        assert!(a.blocks.len() > 10 && b.blocks.len() > 10 && !b.pending.is_empty());
        assert!(matches!(spool.backing, Some(Backing::File(_))));
        assert_eq!(spool.read(&a).unwrap(), (0..500).map(item).collect::<Vec<_>>());
        assert_eq!(spool.read(&b).unwrap(), (1..501).map(item).collect::<Vec<_>>());
        let mut seen = Vec::new();
        for_each(&mut spool, &b, |i| {
            seen.push(i.clone());
            Ok(())
        })
        .unwrap();
        assert_eq!(seen, (1..501).map(item).collect::<Vec<_>>());
        assert_eq!(a.len(), 500);
    }

    #[test]
    fn lists_compare_equal_only_with_the_same_renderings_in_order() {
        let (mut s1, mut s2) = (Spool::default(), Spool::default());
        let (mut a, mut b, mut c) = (Items::default(), Items::default(), Items::default());
        for i in 0..300 {
            s1.push(&mut a, &item(i)).unwrap();
            // Other times and other block boundaries: only renderings count.
            let mut moved = item(i);
            moved.at_ms += 7.0;
            s2.push(&mut b, &moved).unwrap();
            if i % 3 == 0 {
                s2.write_out(&mut b).unwrap();
            }
            s2.push(&mut c, &item(if i == 299 { 0 } else { i })).unwrap();
        }
        assert!(same_renderings((&mut s1, &a), (&mut s2, &b)).unwrap());
        assert!(!same_renderings((&mut s1, &a), (&mut s2, &c)).unwrap());
        s2.push(&mut b, &item(1)).unwrap();
        assert!(!same_renderings((&mut s1, &a), (&mut s2, &b)).unwrap());
        let (empty1, empty2) = (Items::default(), Items::default());
        assert!(same_renderings((&mut s1, &empty1), (&mut s2, &empty2)).unwrap());
    }

    #[test]
    fn pending_bytes_of_all_connections_are_capped() {
        let mut spool = Spool::default();
        let mut lists: Vec<Items> = (0..2000).map(|_| Items::default()).collect();
        let big = Item { render: "x".repeat(2000), at_ms: 0.0 };
        let mut capped = false;
        'fill: for _ in 0..8 {
            for l in &mut lists {
                if spool.push(l, &big).unwrap() {
                    capped = true;
                    break 'fill;
                }
            }
        }
        assert!(capped, "2000 connections of 8 KB pending pass the cap");
        lists.iter_mut().for_each(|l| spool.write_out(l).unwrap());
        assert_eq!(spool.pending, 0);
        assert!(lists.iter().all(|l| l.pending.capacity() == 0));
    }

    #[test]
    fn its_errors_are_told_apart_from_output_errors() {
        assert!(is_spool_error(&corrupt("cut item")));
        assert!(is_spool_error(&spool_error(io::Error::other("disk full"))));
        assert_eq!(corrupt("cut item").to_string(), "diff's temporary file: cut item");
        assert!(!is_spool_error(&io::Error::other("broken pipe")));
    }

    #[test]
    fn memory_backing_reads_back_the_same() {
        let mut spool = Spool { backing: Some(Backing::Memory(Vec::new())), ..Spool::default() };
        let mut a = Items::default();
        for i in 0..100 {
            spool.push(&mut a, &item(i)).unwrap();
        }
        spool.write_out(&mut a).unwrap();
        assert_eq!(spool.read(&a).unwrap(), (0..100).map(item).collect::<Vec<_>>());
    }
}
