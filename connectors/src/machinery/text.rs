//! Long text for platforms with a length limit: split, never truncate.

/// How a platform counts the length of a text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextUnit {
    /// UTF-16 code units (Telegram, LINE): an emoji outside the BMP counts 2.
    Utf16,
    /// Unicode scalar values (Slack, Viber).
    Chars,
}

impl TextUnit {
    pub fn len(self, text: &str) -> usize {
        match self {
            TextUnit::Utf16 => text.encode_utf16().count(),
            TextUnit::Chars => text.chars().count(),
        }
    }

    fn of(self, ch: char) -> usize {
        match self {
            TextUnit::Utf16 => ch.len_utf16(),
            TextUnit::Chars => 1,
        }
    }
}

/// Splits text into pieces of at most `limit` units, preferring to cut
/// after a newline, then after a space, and never inside a character. The
/// pieces joined give the text back unchanged.
pub fn split_text(text: &str, limit: usize, unit: TextUnit) -> Vec<String> {
    let mut pieces = Vec::new();
    let mut rest = text;
    while unit.len(rest) > limit {
        // The largest character boundary within the limit.
        let mut units = 0;
        let mut hard_end = 0;
        for (index, ch) in rest.char_indices() {
            if units + unit.of(ch) > limit {
                break;
            }
            units += unit.of(ch);
            hard_end = index + ch.len_utf8();
        }
        if hard_end == 0 {
            // A limit smaller than one character: take it whole.
            hard_end = rest.chars().next().map_or(rest.len(), char::len_utf8);
        }
        let window = &rest[..hard_end];
        let end = window
            .rfind('\n')
            .or_else(|| window.rfind(' '))
            .map(|at| at + 1)
            .filter(|&at| at > 0)
            .unwrap_or(hard_end);
        pieces.push(rest[..end].to_owned());
        rest = &rest[end..];
    }
    if !rest.is_empty() {
        pieces.push(rest.to_owned());
    }
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_text_is_one_piece() {
        assert_eq!(split_text("hello", 10, TextUnit::Chars), vec!["hello"]);
        assert!(split_text("", 10, TextUnit::Chars).is_empty());
    }

    #[test]
    fn prefers_newlines_then_spaces_and_loses_nothing() {
        let text = "first line\nsecond part of it here";
        let pieces = split_text(text, 15, TextUnit::Chars);
        assert_eq!(pieces[0], "first line\n");
        assert!(pieces.iter().all(|p| p.chars().count() <= 15), "{pieces:?}");
        assert_eq!(pieces.concat(), text);
    }

    #[test]
    fn counts_utf16_units_and_keeps_characters_whole() {
        let emoji = "😀".repeat(5); // 2 UTF-16 units each
        let pieces = split_text(&emoji, 4, TextUnit::Utf16);
        assert_eq!(pieces, vec!["😀😀", "😀😀", "😀"]);
        let pieces = split_text(&emoji, 4, TextUnit::Chars);
        assert_eq!(pieces, vec!["😀😀😀😀", "😀"]);
    }

    #[test]
    fn a_limit_below_one_character_still_progresses() {
        assert_eq!(split_text("😀😀", 1, TextUnit::Utf16), vec!["😀", "😀"]);
    }
}
