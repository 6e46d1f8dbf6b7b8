//! Text as it is kept (trimmed, composed) and folded for search and duplicate detection:
//! case, diacritics and width folded.

use unicode_normalization::char::is_combining_mark;
use unicode_normalization::{IsNormalized, UnicodeNormalization, is_nfc_quick};

/// Text as it is stored: trimmed, in Unicode's composed form (NFC). "é" sent as "e" and a
/// combining accent (as macOS and many legacy exports write it) is kept as the one letter, so
/// that equal names are equal bytes however they were typed.
pub fn clean(input: &str) -> String {
    let trimmed = input.trim();
    match is_nfc_quick(trimmed.chars()) {
        IsNormalized::Yes => trimmed.to_owned(),
        _ => trimmed.nfc().collect(),
    }
}

/// Folds `input` for matching: compatibility-decomposed, combining marks dropped, lower-cased,
/// and the Latin letters that carry their mark inside (ø, ł, æ, ß ...) spelled plainly.
///
/// "Ёлкин" and "елкин" fold alike, as do "José" and "JOSE", "Søren" and "soren";
/// Chinese characters pass through.
pub fn fold(input: &str) -> String {
    let mut folded = String::with_capacity(input.len());
    for c in input
        .nfkd()
        .filter(|c| !is_combining_mark(*c))
        .flat_map(char::to_lowercase)
    {
        match c {
            'ø' => folded.push('o'),
            'ł' => folded.push('l'),
            'đ' | 'ð' => folded.push('d'),
            'ħ' => folded.push('h'),
            'ı' => folded.push('i'),
            'æ' => folded.push_str("ae"),
            'œ' => folded.push_str("oe"),
            'ß' => folded.push_str("ss"),
            'þ' => folded.push_str("th"),
            other => folded.push(other),
        }
    }
    folded
}

/// The folded words of a name, split on anything that is not a letter or a digit.
pub fn words(input: &str) -> Vec<String> {
    fold(input)
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Whether the text is written in a script whose names are written family name first.
pub fn is_family_name_first(input: &str) -> bool {
    input.chars().any(|c| {
        matches!(c as u32,
            0x4E00..=0x9FFF | 0x3400..=0x4DBF | 0x3040..=0x30FF | 0xAC00..=0xD7AF)
    })
}

/// The smallest string greater than every string that starts with `prefix` (for range scans).
pub fn prefix_upper_bound(prefix: &str) -> String {
    let mut upper = prefix.to_owned();
    upper.push(char::MAX);
    upper
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_case_and_diacritics_in_latin_and_cyrillic() {
        assert_eq!(fold("José Müller-Lüdenscheidt"), "jose muller-ludenscheidt");
        assert_eq!(fold("Ёлкин"), "елкин");
        assert_eq!(fold("ЙОГУРТОВ"), "иогуртов");
        assert_eq!(fold("Ｔｏｋｙｏ"), "tokyo");
        assert_eq!(
            fold("Søderberg Łukasz Æsir Straße"),
            "soderberg lukasz aesir strasse"
        );
    }

    #[test]
    fn clean_text_is_trimmed_and_composed() {
        let decomposed = "Jose\u{301} Mu\u{308}ller";
        assert_eq!(clean(&format!("  {decomposed} ")), "Jos\u{e9} M\u{fc}ller");
        assert_eq!(clean("Anna"), "Anna");
        assert_eq!(fold(decomposed), fold(&clean(decomposed)));
        // Hangul syllables compose from their jamo.
        assert_eq!(clean("\u{1100}\u{1161}"), "\u{ac00}");
    }

    #[test]
    fn chinese_passes_through() {
        assert_eq!(fold("王小明"), "王小明");
        assert!(is_family_name_first("王小明"));
        assert!(!is_family_name_first("Anna"));
    }

    #[test]
    fn splits_words_on_punctuation() {
        assert_eq!(
            words("  O'Brien-Smith, Mary "),
            ["o", "brien", "smith", "mary"]
        );
    }

    #[test]
    fn upper_bound_sorts_after_all_extensions() {
        let upper = prefix_upper_bound("mar");
        assert!("mar" < upper.as_str());
        assert!("marzzzz" < upper.as_str());
        assert!("mas" > upper.as_str());
    }
}
