//! JSON's number grammar (RFC 8259 §6), apart from any range.
//!
//! `1e400` is a JSON number: the grammar says what a number looks like,
//! and leaves its range to the reader. simd-json refuses one that does not
//! fit an `f64`, which is right for a [`Value`](crate::Value) (it holds
//! `f64`s) but not for a [`RawJson`](crate::RawJson), which keeps the text.
//! This tells the two apart, for `RawJson` and for the words of an error.

use super::input::Strings;

/// Whether `token` is one JSON number:
/// `-? (0 | [1-9][0-9]*) (\.[0-9]+)? ([eE][+-]?[0-9]+)?`.
pub(crate) fn is_number(token: &[u8]) -> bool {
    let mut rest = token.strip_prefix(b"-").unwrap_or(token);
    rest = match rest {
        [b'0', after @ ..] => after,
        [b'1'..=b'9', ..] => skip_digits(rest),
        _ => return false,
    };
    if let Some(after) = rest.strip_prefix(b".") {
        rest = skip_digits(after);
        if rest.len() == after.len() {
            return false;
        }
    }
    if let [b'e' | b'E', after @ ..] = rest {
        let after = after
            .strip_prefix(b"+")
            .or_else(|| after.strip_prefix(b"-"))
            .unwrap_or(after);
        rest = skip_digits(after);
        if rest.len() == after.len() {
            return false;
        }
    }
    rest.is_empty()
}

/// The length of the run of bytes a number can hold at the start of
/// `bytes`: what a number token spans, valid or not.
pub(crate) fn token_len(bytes: &[u8]) -> usize {
    bytes
        .iter()
        .take_while(|b| matches!(b, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E'))
        .count()
}

/// `json` with every number outside its strings that the grammar accepts
/// written as `0` and spaces (the same length, so offsets hold): what is
/// left for a parser to refuse is then anything but a number's range.
pub(crate) fn zero_numbers(json: &mut [u8]) {
    let mut at = 0;
    let mut strings = Strings::default();
    while let Some(&byte) = json.get(at) {
        // A number's bytes, skipped below, hold no quote: the scan of the
        // strings stays right.
        if !strings.holds(byte) && (byte == b'-' || byte.is_ascii_digit()) {
            let len = token_len(&json[at..]);
            if is_number(&json[at..at + len]) {
                json[at] = b'0';
                json[at + 1..at + len].fill(b' ');
            }
            at += len;
            continue;
        }
        at += 1;
    }
}

fn skip_digits(bytes: &[u8]) -> &[u8] {
    let digits = bytes.iter().take_while(|b| b.is_ascii_digit()).count();
    &bytes[digits..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_grammar_and_only_the_grammar() {
        for good in [
            "0",
            "-0",
            "1",
            "10",
            "1.5",
            "-0.25",
            "1e400",
            "1E-400",
            "2e+3",
            "1.0e10",
            "123456789012345678901234567890",
        ] {
            assert!(is_number(good.as_bytes()), "{good}");
        }
        for bad in [
            "", "-", "01", "-01", "1.", ".5", "1e", "1e+", "+1", "1.5.2", "1e5e5", "--1", "0x1",
            "1-", "1.e3",
        ] {
            assert!(!is_number(bad.as_bytes()), "{bad}");
        }
    }

    #[test]
    fn numbers_are_zeroed_outside_strings_only() {
        let mut json = br#"{"1e400":[1e400,-2.5E+999,"x\"9e999",01,7]}"#.to_vec();
        zero_numbers(&mut json);
        assert_eq!(
            String::from_utf8(json).unwrap(),
            r#"{"1e400":[0    ,0        ,"x\"9e999",01,0]}"#
        );
    }
}
