//! The body as the parsers take it: a byte order mark read as whitespace,
//! simd-json's scratch buffers, kept per thread, and where its strings are.

use std::cell::RefCell;

use simd_json::tape::Tape;
use simd_json::Buffers;

/// Documents up to this size reuse the thread's scratch buffers; larger ones
/// get buffers of their own that are freed afterwards.
pub(crate) const REUSE_LIMIT: usize = 4 << 20;

thread_local! {
    /// Empty at first: they grow to the largest document the thread has
    /// parsed (a worker that parses nothing, or only small documents,
    /// holds little: 16 KiB each was 10 MB at 256 workers).
    static BUFFERS: RefCell<Buffers> = RefCell::new(Buffers::new(0));
    /// A tape's list of nodes, empty between documents, kept for its room.
    static TAPE: RefCell<Option<Tape<'static>>> = const { RefCell::new(None) };
}

/// Reads a UTF-8 byte order mark as whitespace, as RFC 8259 §8.1 allows
/// (and jq does): skipped, while every offset, in a message too, still
/// counts from the body's first byte.
pub(crate) fn skip_bom(body: &mut [u8]) {
    if let Some(bom) = body
        .get_mut(..3)
        .filter(|start| *start == [0xef, 0xbb, 0xbf])
    {
        bom.fill(b' ');
    }
}

/// Runs `parse` with the thread's scratch buffers (fresh ones for a body of
/// more than [`REUSE_LIMIT`] bytes, or when they are in use).
pub(crate) fn with_buffers<R>(len: usize, parse: impl FnOnce(&mut Buffers) -> R) -> R {
    if len > REUSE_LIMIT {
        return parse(&mut Buffers::new(len));
    }
    BUFFERS.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buffers) => parse(&mut buffers),
        // Re-entered (a Deserialize impl that fetches): use fresh buffers.
        Err(_) => parse(&mut Buffers::new(len)),
    })
}

/// Parses `body` into a tape and hands it to `read`, with the address of
/// the body's first byte (the tape's strings are in the body). It uses the
/// thread's scratch buffers, and a tape whose room is kept from one
/// document to the next (up to [`REUSE_LIMIT`] bytes' worth). The body
/// grows by simd-json's padding while it is parsed, so that simd-json
/// reads it in place instead of copying it (the transport reserves that
/// room when it reads a body).
pub(crate) fn with_tape<R>(
    body: &mut Vec<u8>,
    read: impl FnOnce(&mut Tape<'_>, usize) -> R,
) -> Result<R, simd_json::Error> {
    let kept = TAPE.with(|cell| cell.try_borrow_mut().ok().and_then(|mut kept| kept.take()));
    let mut tape = kept.map_or_else(|| Tape(Vec::new()), Tape::reset);
    let len = body.len();
    body.resize(len.saturating_add(simd_json::INPUT_PADDING), 0);
    let start = body.as_ptr() as usize;
    let (result, tape) = with_buffers(len, |buffers| {
        let result = simd_json::fill_tape_padded(body, len, buffers, &mut tape)
            .map(|()| read(&mut tape, start));
        (result, tape.reset())
    });
    body.truncate(len);
    let room = tape
        .0
        .capacity()
        .saturating_mul(std::mem::size_of::<simd_json::Node<'_>>());
    if room <= REUSE_LIMIT {
        TAPE.with(|cell| {
            if let Ok(mut kept) = cell.try_borrow_mut() {
                *kept = Some(tape);
            }
        });
    }
    result
}

/// Where a scan of JSON text stands with respect to its strings: fed each
/// byte in order, it says whether the byte belongs to a string (its quotes
/// included), escapes heeded. The one string scanner of `number.rs` and
/// `raw_json.rs`.
#[derive(Default)]
pub(crate) struct Strings {
    in_string: bool,
    escaped: bool,
}

impl Strings {
    /// Whether `byte`, the next byte of the text, belongs to a string.
    pub(crate) fn holds(&mut self, byte: u8) -> bool {
        if self.in_string {
            if self.escaped {
                self.escaped = false;
            } else if byte == b'\\' {
                self.escaped = true;
            } else if byte == b'"' {
                self.in_string = false;
            }
            true
        } else {
            self.in_string = byte == b'"';
            self.in_string
        }
    }
}
