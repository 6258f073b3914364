//! Escaping of untrusted names before they reach a terminal.
//!
//! A bundle's file names are chosen by whoever made the bundle. Printed raw, a
//! name could move the cursor, recolour the screen, or (with bidirectional
//! overrides) make `invoice.exe` look like `exe.eciovni`. Every name that comes
//! from a bundle goes through [`escape`] before it is shown to a person.

/// Returns `name` with control, bidirectional-formatting and other invisible
/// formatting characters replaced by `\u{…}` escapes, and backslashes doubled,
/// so that the result shows exactly one way on any terminal.
///
/// ```
/// use pouch::format::sanitize::escape;
/// assert_eq!(escape("invoice\u{202E}fdp.exe"), "invoice\\u{202e}fdp.exe");
/// assert_eq!(escape("Zeugenaussage Müller.txt"), "Zeugenaussage Müller.txt");
/// ```
pub fn escape(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        if c == '\\' {
            out.push_str("\\\\");
        } else if needs_escape(c) {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

/// Characters that change how surrounding text is shown, or are invisible.
fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{200B}'..='\u{200F}' // zero-width spaces and joiners, LRM, RLM
            | '\u{2028}'..='\u{202E}' // line/paragraph separators, bidi embeddings and overrides
            | '\u{2060}'..='\u{206F}' // word joiner, invisible operators, bidi isolates
            | '\u{FEFF}' // byte order mark
            | '\u{FFF9}'..='\u{FFFB}' // interlinear annotations
        )
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn plain_names_pass_unchanged() {
        assert_eq!(
            escape("case/Zeugenaussage Müller.txt"),
            "case/Zeugenaussage Müller.txt"
        );
    }

    #[test]
    fn control_and_bidi_characters_are_escaped() {
        assert_eq!(escape("a\x1b[31mb"), "a\\u{1b}[31mb");
        assert_eq!(escape("inv\u{202E}txt.exe"), "inv\\u{202e}txt.exe");
        assert_eq!(escape("line\nbreak"), "line\\u{a}break");
        assert_eq!(escape("back\\slash"), "back\\\\slash");
    }
}
