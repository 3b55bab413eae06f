//! Content encodings ureq does not decode.
//!
//! ureq decodes `gzip` and `br`, spelt exactly so. Servers also send
//! `deflate` unasked (RFC 9110 defines it as zlib; some send it raw),
//! `x-gzip`, upper case, or several codings in a row (`gzip, br`): those
//! are decoded here, with the body limit counted on what they decode to. A
//! coding parfetch cannot decode (`compress`, `zstd`, anything else) leaves
//! the body as it came, and a JSON parse that then fails names it.

use std::io::Read;

/// `body`, received with `content_encoding`, decoded as far as parfetch
/// can, within `limit` bytes; and the coding it could not decode, if any.
///
/// # Errors
///
/// A body larger than `limit` once decoded, or whose compressed data is
/// damaged.
pub(crate) fn decode(
    content_encoding: Option<&str>,
    body: Vec<u8>,
    limit: u64,
) -> Result<(Vec<u8>, Option<String>), ureq::Error> {
    let Some(header) = content_encoding else {
        return Ok((body, None));
    };
    // Exactly these, ureq has decoded already.
    if matches!(header, "gzip" | "br") {
        return Ok((body, None));
    }
    let codings: Vec<String> = header
        .split(',')
        .map(|coding| coding.trim().to_ascii_lowercase())
        .filter(|coding| !coding.is_empty() && coding != "identity")
        .collect();
    let mut body = body;
    // Applied in the order listed, so undone from the last.
    for coding in codings.iter().rev() {
        body = match coding.as_str() {
            "gzip" | "x-gzip" => read_all(flate2::read::MultiGzDecoder::new(&body[..]), limit)?,
            "deflate" if is_zlib(&body) => {
                read_all(flate2::read::ZlibDecoder::new(&body[..]), limit)?
            }
            "deflate" => read_all(flate2::read::DeflateDecoder::new(&body[..]), limit)?,
            "br" => read_all(
                brotli_decompressor::Decompressor::new(&body[..], 4096),
                limit,
            )?,
            _ => return Ok((body, Some(header.trim().to_owned()))),
        };
    }
    Ok((body, None))
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
fn read_all(reader: impl Read, limit: u64) -> Result<Vec<u8>, ureq::Error> {
    let mut decoded = Vec::new();
    reader
        .take(limit.saturating_add(1))
        .read_to_end(&mut decoded)
        .map_err(ureq::Error::from)?;
    if decoded.len() as u64 > limit {
        return Err(ureq::Error::BodyExceedsLimit(limit));
    }
    Ok(decoded)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    const DOC: &[u8] = br#"{"encoded":true,"padding":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}"#;

    fn compressed(encoder: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
        let mut out = Vec::new();
        encoder(&mut out);
        out
    }

    fn zlib() -> Vec<u8> {
        compressed(|out| {
            let mut e = flate2::write::ZlibEncoder::new(out, flate2::Compression::default());
            e.write_all(DOC).unwrap();
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

    fn gzip(data: &[u8]) -> Vec<u8> {
        compressed(|out| {
            let mut e = flate2::write::GzEncoder::new(out, flate2::Compression::default());
            e.write_all(data).unwrap();
            e.finish().unwrap();
        })
    }

    #[test]
    fn codings_ureq_leaves_are_decoded() {
        for (header, body) in [
            ("deflate", zlib()),
            ("Deflate", raw_deflate()),
            ("x-gzip", gzip(DOC)),
            ("GZIP", gzip(DOC)),
            ("identity", DOC.to_vec()),
            // Applied deflate first, then gzip: undone gzip first.
            ("deflate, gzip", gzip(&zlib())),
        ] {
            let (decoded, undecoded) = decode(Some(header), body, 1 << 20).unwrap();
            assert_eq!(decoded, DOC, "{header}");
            assert_eq!(undecoded, None, "{header}");
        }
        // What ureq decoded is left alone.
        let (same, _) = decode(Some("gzip"), DOC.to_vec(), 1 << 20).unwrap();
        assert_eq!(same, DOC);
    }

    #[test]
    fn unknown_codings_are_named_and_limits_hold() {
        let (body, undecoded) = decode(Some("zstd"), b"\x28\xb5\x2f\xfd".to_vec(), 100).unwrap();
        assert_eq!((body.len(), undecoded.as_deref()), (4, Some("zstd")));
        // A bomb: 10 MB of zeros in a few kB.
        let bomb = gzip(&vec![0; 10 << 20]);
        let error = decode(Some("x-gzip"), bomb, 1 << 20).unwrap_err();
        assert!(matches!(error, ureq::Error::BodyExceedsLimit(_)), "{error}");
        // Damaged data is an error, not a panic.
        let mut damaged = zlib();
        damaged.truncate(damaged.len() / 2);
        assert!(decode(Some("deflate"), damaged, 1 << 20).is_err());
        let _ = decode(Some("deflate"), b"\x00".to_vec(), 1 << 20);
    }
}
