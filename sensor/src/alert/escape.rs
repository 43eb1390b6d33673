//! JSON output that a terminal, a log viewer or a parser cannot be fooled by.
//!
//! serde_json escapes what JSON requires (quotes, backslash, U+0000 to U+001F). Strings from
//! the wire (DNS names, evidence) can also carry characters that are valid JSON but act on
//! whoever reads the line: DEL and the C1 controls U+0080 to U+009F (U+009B is a one-byte
//! CSI that starts a terminal escape sequence), the bidi overrides and isolates U+202A to
//! U+202E and U+2066 to U+2069 (text that reads differently from what it is), and U+2028 and
//! U+2029 (line breaks to JavaScript and some log viewers). [`EveFormatter`] writes each as
//! `\uXXXX` in every string of every event; the decoded value is unchanged.

use std::io::{self, Write};

use serde::Serialize;
use serde_json::ser::{CompactFormatter, Formatter};

/// serde_json's compact formatter, with the extra escapes above.
#[derive(Clone, Copy, Debug, Default)]
pub struct EveFormatter;

/// Whether a character is written as `\uXXXX` beyond what JSON requires.
pub fn needs_escape(c: char) -> bool {
    matches!(
        c,
        '\u{7f}'..='\u{9f}' | '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
    )
}

impl Formatter for EveFormatter {
    #[inline]
    fn write_string_fragment<W: ?Sized + Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        // Almost every string is printable ASCII: one scan, one write.
        if fragment.bytes().all(|b| b < 0x7f) {
            return writer.write_all(fragment.as_bytes());
        }
        let mut start = 0;
        for (i, c) in fragment.char_indices() {
            if needs_escape(c) {
                writer.write_all(&fragment.as_bytes()[start..i])?;
                write!(writer, "\\u{:04x}", u32::from(c))?;
                start = i + c.len_utf8();
            }
        }
        writer.write_all(&fragment.as_bytes()[start..])
    }
}

// The other methods are CompactFormatter's (the trait's defaults): no whitespace.
const _: CompactFormatter = CompactFormatter;

/// Serializes `value` as compact JSON with [`EveFormatter`]'s escapes.
pub fn to_writer<W: Write, T: ?Sized + Serialize>(writer: W, value: &T) -> serde_json::Result<()> {
    let mut ser = serde_json::Serializer::with_formatter(writer, EveFormatter);
    value.serialize(&mut ser)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(s: &str) -> String {
        let mut out = Vec::new();
        to_writer(&mut out, s).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn each_class_is_escaped_and_decodes_back() {
        for (c, want) in [
            ('\u{7f}', "\\u007f"),
            ('\u{80}', "\\u0080"),
            ('\u{9b}', "\\u009b"),
            ('\u{9f}', "\\u009f"),
            ('\u{202a}', "\\u202a"),
            ('\u{202e}', "\\u202e"),
            ('\u{2066}', "\\u2066"),
            ('\u{2069}', "\\u2069"),
            ('\u{2028}', "\\u2028"),
            ('\u{2029}', "\\u2029"),
        ] {
            let input = format!("a{c}b{c}");
            let out = render(&input);
            assert_eq!(out, format!("\"a{want}b{want}\""), "{c:?}");
            assert!(!out.contains(c));
            let back: String = serde_json::from_str(&out).unwrap();
            assert_eq!(back, input);
        }
    }

    #[test]
    fn ordinary_text_is_unchanged() {
        for s in [
            "plain",
            "caf\u{e9} \u{a0}\u{a1}",
            "\u{202f}\u{2065}\u{206a}",
            "\u{1F600}",
        ] {
            assert_eq!(render(s), serde_json::to_string(s).unwrap());
        }
        // JSON's own escapes still apply.
        assert_eq!(render("\"\n\u{1}"), "\"\\\"\\n\\u0001\"");
    }

    #[test]
    fn the_event_writer_escapes_every_class() {
        // What a sink writes reaches the output through this formatter.
        let path = std::env::temp_dir().join(format!("mw-escape-{}.json", std::process::id()));
        let target = crate::alert::OutputTarget::File(path.clone());
        let writer = crate::alert::EventWriter::spawn(&target).unwrap();
        let mut sink = writer.sink();
        let name = "a\u{7f}b\u{85}c\u{9b}[2Jd\u{202e}e\u{2067}f\u{2028}g\u{2029}";
        sink.write(&serde_json::json!({ "name": name })).unwrap();
        sink.flush().unwrap();
        drop(sink);
        writer.finish().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let _ = std::fs::remove_file(&path);
        assert_eq!(
            text,
            "{\"name\":\"a\\u007fb\\u0085c\\u009b[2Jd\\u202ee\\u2067f\\u2028g\\u2029\"}\n"
        );
        assert!(text.is_ascii());
        let back: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back["name"], name);
    }

    #[test]
    fn keys_and_nested_strings_go_through_it_too() {
        let mut m = std::collections::BTreeMap::new();
        m.insert("k\u{85}", vec!["x\u{2028}"]);
        let mut out = Vec::new();
        to_writer(&mut out, &m).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"k\u0085":["x\u2028"]}"#
        );
    }
}
