//! Content encodings: asked for, and undone.
//!
//! parfetch asks for `gzip`, `deflate`, `br` and `zstd` (`Accept-Encoding`)
//! and undoes them itself, not ureq: ureq knows `gzip` and `br` spelt exactly
//! so and on one header line, and retries a body that will not decode.
//! Here the codings of every `Content-Encoding` line count, in the order
//! applied (`gzip` on two lines is two layers), without case; `x-gzip` is
//! gzip; `deflate` is zlib (RFC 9110) or, as some servers send it, raw.
//! The body limit counts what the codings decode to.
//!
//! gzip members and zstd frames back to back are one body, and bytes after
//! the last whole one that do not make another whole one (padding, a
//! damaged or cut-off extra member) are ignored, for both codings alike.
//! Other clients differ: urllib3 ignores such bytes after a gzip member but
//! refuses them after a zstd frame; curl refuses any byte after the first
//! gzip member (a second member too) and after the last zstd frame. parfetch
//! takes urllib3's gzip rule for both, because what it keeps has passed the
//! coding's own checks (gzip's CRC-32 and length, zstd's frame structure
//! and checksum), and refusing it would fail a document that arrived whole
//! with an error no retry mends; what is kept is then parsed as JSON. An empty body is empty
//! whatever it claims. A body that will not decode is the body's fault,
//! not the network's: it is not retried. A coding parfetch cannot undo
//! (`compress`) leaves the body as it came, and a JSON parse that then
//! fails names it; `ACCEPTED` lists only codings undone here.
//!
//! zstd is undone by the `zstd` crate (the reference C library, built with
//! the C compiler that `ring` needs already), not the pure-Rust `ruzstd`.
//! Decoding the corpus documents (`cargo bench -p parfetch-benches --bench
//! decode`, medians, one core; gzip at level 6, zstd at 3), in ms:
//!
//! | document | gzip (flate2) | zstd (`zstd`) | zstd (`ruzstd`) |
//! |---|---:|---:|---:|
//! | twitter.json, 632 kB | 0.46 | 0.23 | 1.03 |
//! | citm_catalog.json, 1.7 MB | 0.51 | 0.24 | 0.86 |
//! | canada.json, 2.3 MB of floats | 6.4 | 3.4 | 17.3 |
//!
//! With `ruzstd`, a server that prefers zstd would cost two to three times
//! the CPU of gzip; with `zstd` it costs half. Its window is held to 8 MiB,
//! as RFC 9659 asks of zstd as an HTTP coding, so that a frame cannot make
//! a decoder allocate gigabytes before the body limit is reached.

use std::io::Read;

use crate::transport::body_budget::{self, Room};

/// What parfetch asks servers for.
pub(crate) const ACCEPTED: &str = "gzip, deflate, br, zstd";

/// The largest zstd window accepted, as a power of two: 8 MiB, the most a
/// server may use for the `zstd` coding (RFC 9659).
const ZSTD_WINDOW_LOG_MAX: u32 = 23;

/// Why a body could not be decoded.
#[derive(Debug)]
pub(crate) enum DecodeError {
    /// Larger than the limit once decoded.
    TooLarge(u64),
    /// Damaged compressed data: the coding, and what the decoder said.
    Damaged(String, std::io::Error),
    /// Stopped while it waited for room for what it decodes to
    /// (`body_budget.rs`): the kind of the stop.
    NoRoom(crate::error::ErrorKind),
}

/// `body`, received with the `Content-Encoding` lines `lines`, decoded as
/// far as parfetch can within `limit` bytes, taking `room` for what it
/// decodes to as it goes; and the codings left undone (as listed), if any.
///
/// # Errors
///
/// A body larger than `limit` once decoded, or whose compressed data is
/// damaged, or a wait for room that stopped.
pub(crate) fn decode<'a>(
    lines: impl IntoIterator<Item = &'a str>,
    body: Vec<u8>,
    limit: u64,
    room: &mut Room<'_, '_>,
) -> Result<(Vec<u8>, Option<String>), DecodeError> {
    let codings = codings(lines);
    if body.is_empty() || codings.is_empty() {
        return Ok((body, None));
    }
    let mut body = body;
    // Applied in the order listed, so undone from the last.
    for (undone, coding) in codings.iter().enumerate().rev() {
        let decoded = match coding.as_str() {
            "gzip" | "x-gzip" => gzip(&body, limit, room),
            "deflate" if is_zlib(&body) => {
                read_all(flate2::read::ZlibDecoder::new(&body[..]), limit, room)
            }
            "deflate" => read_all(flate2::read::DeflateDecoder::new(&body[..]), limit, room),
            "br" => read_all(
                brotli_decompressor::Decompressor::new(&body[..], 4096),
                limit,
                room,
            ),
            "zstd" => zstd(&body, limit, room),
            _ => return Ok((body, Some(codings[..=undone].join(", ")))),
        };
        body = decoded.map_err(|error| match error {
            DecodeError::Damaged(_, io) => DecodeError::Damaged(coding.clone(), io),
            other => other,
        })?;
    }
    Ok((body, None))
}

/// As much of `start` (the first bytes of a body) as decodes: for the
/// excerpt of an error response, never an error itself.
pub(crate) fn decode_start<'a>(
    lines: impl IntoIterator<Item = &'a str>,
    start: Vec<u8>,
) -> Vec<u8> {
    let mut start = start;
    for coding in codings(lines).iter().rev() {
        match decode_start_layer(coding, &start) {
            Some(decoded) => start = decoded,
            None => return start,
        }
    }
    start
}

/// As much of `start` as decodes from `coding`; `None` for a coding
/// parfetch cannot undo.
fn decode_start_layer(coding: &str, start: &[u8]) -> Option<Vec<u8>> {
    let reader: Box<dyn Read + '_> = match coding {
        "gzip" | "x-gzip" => Box::new(flate2::read::MultiGzDecoder::new(start)),
        "deflate" if is_zlib(start) => Box::new(flate2::read::ZlibDecoder::new(start)),
        "deflate" => Box::new(flate2::read::DeflateDecoder::new(start)),
        "br" => Box::new(brotli_decompressor::Decompressor::new(start, 4096)),
        "zstd" => Box::new(zstd_reader(start).ok()?),
        _ => return None,
    };
    // A start cut off mid-stream decodes as far as it goes.
    let mut decoded = Vec::new();
    let _ = reader
        .take(start.len() as u64 * 4 + 4096)
        .read_to_end(&mut decoded);
    Some(decoded)
}

/// The codings of `lines`, lower-cased, in the order applied, without
/// `identity`.
fn codings<'a>(lines: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    lines
        .into_iter()
        .flat_map(|line| line.split(','))
        .map(|coding| coding.trim().to_ascii_lowercase())
        .filter(|coding| !coding.is_empty() && coding != "identity")
        .collect()
}

/// The first gzip member of `body`, and the ones that follow it back to
/// back; bytes after those that do not make another whole member are
/// ignored (the module's doc says why).
fn gzip(body: &[u8], limit: u64, room: &mut Room<'_, '_>) -> Result<Vec<u8>, DecodeError> {
    let mut rest = body;
    let mut decoded = Vec::new();
    let mut first = true;
    let base = room.held();
    loop {
        let mut member = flate2::bufread::GzDecoder::new(rest);
        let left = limit.saturating_sub(decoded.len() as u64);
        let before = decoded.len();
        if let Err(io) = room
            .reader(&mut member, base.saturating_add(before as u64))
            .take(left.saturating_add(1))
            .read_to_end(&mut decoded)
        {
            no_room(&io)?;
            if first {
                return Err(DecodeError::Damaged(String::new(), io));
            }
            // A damaged member after a whole one is trailing garbage, as
            // urllib3 reads it.
            decoded.truncate(before);
            return Ok(decoded);
        }
        if decoded.len() as u64 > limit {
            return Err(DecodeError::TooLarge(limit));
        }
        rest = member.into_inner();
        if !rest.starts_with(&[0x1f, 0x8b]) {
            return Ok(decoded);
        }
        first = false;
    }
}

/// The first zstd frame of `body`, and the ones that follow it back to
/// back; bytes after those that do not make another whole frame are
/// ignored, as in [`gzip`].
fn zstd(body: &[u8], limit: u64, room: &mut Room<'_, '_>) -> Result<Vec<u8>, DecodeError> {
    let mut rest = body;
    let mut decoded = Vec::new();
    let mut first = true;
    let base = room.held();
    loop {
        let left = limit.saturating_sub(decoded.len() as u64);
        let before = decoded.len();
        let frame = zstd_reader(rest).and_then(|frame| {
            let mut frame = frame.single_frame();
            room.reader(&mut frame, base.saturating_add(before as u64))
                .take(left.saturating_add(1))
                .read_to_end(&mut decoded)?;
            Ok(frame.finish())
        });
        if let Err(io) = &frame {
            no_room(io)?;
        }
        match frame {
            Ok(after) => rest = after,
            Err(io) if first => return Err(DecodeError::Damaged(String::new(), io)),
            Err(_) => {
                decoded.truncate(before);
                return Ok(decoded);
            }
        }
        if decoded.len() as u64 > limit {
            return Err(DecodeError::TooLarge(limit));
        }
        if rest.is_empty() {
            return Ok(decoded);
        }
        first = false;
    }
}

/// A zstd decoder of `body` (every frame in it), with its window held to
/// [`ZSTD_WINDOW_LOG_MAX`]: a frame that asks for more does not decode.
fn zstd_reader(body: &[u8]) -> std::io::Result<zstd::stream::read::Decoder<'static, &[u8]>> {
    let mut decoder = zstd::stream::read::Decoder::with_buffer(body)?;
    decoder.window_log_max(ZSTD_WINDOW_LOG_MAX)?;
    Ok(decoder)
}

/// `Err` if `io` is a wait for room that stopped: a stop, not damage.
fn no_room(io: &std::io::Error) -> Result<(), DecodeError> {
    match body_budget::no_room(io) {
        Some(kind) => Err(DecodeError::NoRoom(kind)),
        None => Ok(()),
    }
}

/// Whether `body` starts with a zlib header (RFC 1950): deflate, a window
/// size, and a check that makes the first two bytes a multiple of 31.
fn is_zlib(body: &[u8]) -> bool {
    match body {
        [method, flags, ..] => {
            method & 0x0f == 8 && (u16::from(*method) << 8 | u16::from(*flags)) % 31 == 0
        }
        _ => false,
    }
}

/// Everything `reader` decodes, refused past `limit` bytes.
fn read_all(
    reader: impl Read,
    limit: u64,
    room: &mut Room<'_, '_>,
) -> Result<Vec<u8>, DecodeError> {
    let mut decoded = Vec::new();
    let base = room.held();
    if let Err(io) = room
        .reader(reader, base)
        .take(limit.saturating_add(1))
        .read_to_end(&mut decoded)
    {
        no_room(&io)?;
        return Err(DecodeError::Damaged(String::new(), io));
    }
    if decoded.len() as u64 > limit {
        return Err(DecodeError::TooLarge(limit));
    }
    Ok(decoded)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cancel::Stop;
    use crate::transport::body_budget::BodyBudget;
    use std::io::Write;

    /// [`super::decode`] with room enough.
    fn decode<'a>(
        lines: impl IntoIterator<Item = &'a str>,
        body: Vec<u8>,
        limit: u64,
    ) -> Result<(Vec<u8>, Option<String>), DecodeError> {
        let budget = BodyBudget::new(u64::MAX);
        let mut held = budget.none(false);
        let stop = Stop::default();
        super::decode(lines, body, limit, &mut Room::new(&mut held, &stop))
    }

    const DOC: &[u8] = br#"{"encoded":true,"padding":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}"#;

    fn compressed(encoder: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
        let mut out = Vec::new();
        encoder(&mut out);
        out
    }

    fn zlib(data: &[u8]) -> Vec<u8> {
        compressed(|out| {
            let mut e = flate2::write::ZlibEncoder::new(out, flate2::Compression::default());
            e.write_all(data).unwrap();
            e.finish().unwrap();
        })
    }

    fn raw_deflate() -> Vec<u8> {
        compressed(|out| {
            let mut e = flate2::write::DeflateEncoder::new(out, flate2::Compression::default());
            e.write_all(DOC).unwrap();
            e.finish().unwrap();
        })
    }

    fn gzipped(data: &[u8]) -> Vec<u8> {
        compressed(|out| {
            let mut e = flate2::write::GzEncoder::new(out, flate2::Compression::default());
            e.write_all(data).unwrap();
            e.finish().unwrap();
        })
    }

    #[test]
    fn every_coding_parfetch_asks_for_is_undone() {
        let with_padding = [gzipped(DOC), b"\0\0\0\0garbage".to_vec()].concat();
        let two_members = [gzipped(&DOC[..10]), gzipped(&DOC[10..])].concat();
        for (lines, body) in [
            (&["deflate"][..], zlib(DOC)),
            (&["Deflate"], raw_deflate()),
            (&["x-gzip"], gzipped(DOC)),
            (&["GZIP"], gzipped(DOC)),
            (&["identity"], DOC.to_vec()),
            (&["gzip"], with_padding),
            (&["gzip"], two_members),
            // Applied deflate first, then gzip: undone gzip first.
            (&["deflate, gzip"], gzipped(&zlib(DOC))),
            // Two lines are one list.
            (&["gzip", "gzip"], gzipped(&gzipped(DOC))),
            (&["zstd"], zstd::encode_all(DOC, 3).unwrap()),
            // Two zstd frames back to back are one body.
            (
                &["ZSTD"],
                [
                    zstd::encode_all(&DOC[..10], 3).unwrap(),
                    zstd::encode_all(&DOC[10..], 19).unwrap(),
                ]
                .concat(),
            ),
            (&["zstd, gzip"], gzipped(&zstd::encode_all(DOC, 1).unwrap())),
        ] {
            let (decoded, undone) = decode(lines.iter().copied(), body, 1 << 20).unwrap();
            assert_eq!(decoded, DOC, "{lines:?}");
            assert_eq!(undone, None, "{lines:?}");
        }
    }

    #[test]
    fn unknown_codings_are_named_and_limits_hold() {
        let (body, left) = decode(["compress"], b"\x1f\x9d\x90".to_vec(), 100).unwrap();
        assert_eq!((body.len(), left.as_deref()), (3, Some("compress")));
        // The layers under an unknown one stay listed; those over it go.
        let inner = zstd::encode_all(&b"\x1f\x9d"[..], 3).unwrap();
        let (body, left) = decode(["compress, zstd, gzip"], gzipped(&inner), 100).unwrap();
        assert_eq!(
            (&body[..], left.as_deref()),
            (&b"\x1f\x9d"[..], Some("compress"))
        );
        // Empty is empty, whatever it claims.
        assert_eq!(decode(["gzip"], Vec::new(), 100).unwrap().0, b"");
        // A bomb: 10 MB of zeros in a few kB.
        let bomb = gzipped(&vec![0; 10 << 20]);
        assert!(matches!(
            decode(["x-gzip"], bomb, 1 << 20),
            Err(DecodeError::TooLarge(_))
        ));
        // Damaged data is an error naming the coding, not a panic.
        let mut damaged = zlib(DOC);
        damaged.truncate(damaged.len() / 2);
        assert!(matches!(
            decode(["deflate"], damaged, 1 << 20),
            Err(DecodeError::Damaged(coding, _)) if coding == "deflate"
        ));
        let _ = decode(["deflate"], b"\x00".to_vec(), 1 << 20);
    }

    #[test]
    fn the_start_of_an_error_body_decodes_as_far_as_it_goes() {
        let body =
            gzipped(br#"{"error":"database down","detail":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}"#);
        let start = decode_start(["gzip"], body[..body.len() - 8].to_vec());
        assert!(
            start.starts_with(br#"{"error":"database down""#),
            "{start:?}"
        );
        assert_eq!(decode_start(["compress"], b"raw".to_vec()), b"raw");
        let body = zstd::encode_all(&br#"{"error":"database down"}"#[..], 3).unwrap();
        let start = decode_start(["zstd"], body.clone());
        assert_eq!(start, br#"{"error":"database down"}"#);
        // Cut off mid-frame: as far as it goes, never an error.
        let _ = decode_start(["zstd"], body[..body.len() / 2].to_vec());
    }

    /// A frame whose window is past 8 MiB (RFC 9659) is refused as damaged
    /// before its window is allocated; 8 MiB itself decodes.
    #[test]
    fn a_zstd_window_past_8_mib_is_refused() {
        let frame = |window_log: u32| {
            let mut encoder = zstd::stream::write::Encoder::new(Vec::new(), 3).unwrap();
            encoder
                .set_parameter(zstd::zstd_safe::CParameter::WindowLog(window_log))
                .unwrap();
            // No content size in the header, so the window is as set.
            encoder.include_contentsize(false).unwrap();
            encoder.write_all(&vec![7; 9 << 20]).unwrap();
            encoder.finish().unwrap()
        };
        let (decoded, _) = decode(["zstd"], frame(23), 16 << 20).unwrap();
        assert_eq!(decoded.len(), 9 << 20);
        assert!(matches!(
            decode(["zstd"], frame(24), 16 << 20),
            Err(DecodeError::Damaged(coding, _)) if coding == "zstd"
        ));
    }
}
