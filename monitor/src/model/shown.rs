//! Strings the build controls, made safe to show on a terminal or in a rendered document.
//!
//! Paths, argv, comm, host names, socket paths and even crate names reach buildwatch from the
//! watched build. Printed raw, a name carrying `ESC [2K ESC [1A` erases and rewrites the lines
//! above it — a crate could overwrite buildwatch's own findings with "findings: none". A newline
//! in a name forges a whole line, and Unicode bidirectional overrides reorder what the reader sees
//! (CVE-2021-42574, "Trojan Source"). Every human-facing output (plain text, TUI, Markdown
//! summary, SARIF message text) shows such strings through [`shown`]; the JSON outputs keep them
//! exact, since a JSON string cannot carry a raw control character.
use std::{borrow::Cow, fmt};

/// `s` with every control character, C1 control and bidirectional/invisible formatting character
/// replaced by a visible escape (`\e`, `\n`, `\t`, `\x7f`, `\u{202e}`, ...). Printable text,
/// including every non-ASCII letter, is kept as it is; a string with nothing to escape is
/// borrowed, not copied (nearly every path).
pub fn shown(s: &str) -> Cow<'_, str> {
    if !s.chars().any(needs_escape) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        push_shown(&mut out, c);
    }
    Cow::Owned(out)
}

/// A value that displays its string through [`shown`]: `format!("{}", Shown(path))`.
#[derive(Clone, Copy, Debug)]
pub struct Shown<'a>(pub &'a str);

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Through `pad` so that width and alignment (`{:<36}`) still apply to table cells.
        f.pad(&shown(self.0))
    }
}

/// Whether `c` must not reach a terminal or a rendered page as it is.
fn needs_escape(c: char) -> bool {
    c.is_control() // C0, DEL and C1 (U+0080..U+009F, where 8-bit CSI U+009B lives)
        || matches!(c,
            // Bidirectional embeddings, overrides and isolates, and the implicit marks.
            '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
            // Zero-width characters that hide text between visible ones.
            | '\u{200b}'..='\u{200d}' | '\u{2060}' | '\u{feff}'
            // Line and paragraph separators, which some renderers break on.
            | '\u{2028}' | '\u{2029}')
}

fn push_shown(out: &mut String, c: char) {
    use fmt::Write as _;
    if !needs_escape(c) {
        out.push(c);
        return;
    }
    let _ = match c {
        '\u{1b}' => write!(out, "\\e"),
        '\n' => write!(out, "\\n"),
        '\r' => write!(out, "\\r"),
        '\t' => write!(out, "\\t"),
        '\0' => write!(out, "\\0"),
        c if (c as u32) < 0x100 => write!(out, "\\x{:02x}", c as u32),
        c => write!(out, "\\u{{{:x}}}", c as u32),
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printable_text_is_borrowed_unchanged() {
        for s in ["/usr/bin/cc", "naïve/日本語/файл", "a b\\c", ""] {
            assert!(matches!(shown(s), Cow::Borrowed(_)), "{s}");
        }
    }

    #[test]
    fn terminal_sequences_become_visible() {
        let forged = "/tmp/x\u{1b}[2K\u{1b}[1A\u{1b}[32mfindings: none\u{1b}[0m\n";
        let s = shown(forged);
        assert_eq!(
            s, "/tmp/x\\e[2K\\e[1A\\e[32mfindings: none\\e[0m\\n",
            "escape sequences and newlines are shown, not obeyed"
        );
        assert!(!s.chars().any(char::is_control));
    }

    #[test]
    fn c1_controls_and_bidi_overrides_are_escaped() {
        // U+009B is the 8-bit CSI: a terminal in 8-bit mode obeys it like ESC [.
        assert_eq!(shown("a\u{9b}2Kb"), "a\\x9b2Kb");
        assert_eq!(shown("x\u{7f}"), "x\\x7f");
        assert_eq!(shown("main\u{202e}sr.exe"), "main\\u{202e}sr.exe");
        assert_eq!(shown("a\u{200b}b\u{2066}"), "a\\u{200b}b\\u{2066}");
        assert_eq!(shown("\r\t\0"), "\\r\\t\\0");
    }

    #[test]
    fn shown_pads_like_a_str() {
        assert_eq!(format!("{:<6}|", Shown("a\nb")), "a\\nb  |");
        assert_eq!(format!("{:>3}", Shown("ab")), " ab");
    }
}
