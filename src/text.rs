//! Text from other systems (Quay, git servers, remote clusters) bounded
//! before it reaches a condition, an event or a log line.

/// At most `max` bytes of `s` (cut on a character boundary), marked with
/// `…` when cut.
pub fn bounded(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// At most `max` characters of `s`, keeping a trailing parenthesised
/// note (an owner record) whole when it is short enough: the text before
/// it is cut and marked with `…`. Quay refuses robot descriptions over 255
/// characters, and quayside's owner record is at the end of its own.
pub fn fit_keeping_note(s: &str, max: usize) -> String {
    let count = s.chars().count();
    if count <= max {
        return s.to_string();
    }
    let note = s
        .trim_end()
        .ends_with(')')
        .then(|| s.rfind(" (").map(|at| &s[at + 1..]))
        .flatten()
        .filter(|n| n.chars().count() + 2 <= max / 2 + max / 4);
    match note {
        Some(note) => {
            let head: String = s.chars().take(max - 2 - note.chars().count()).collect();
            format!("{}… {note}", head.trim_end())
        }
        None => format!("{}…", s.chars().take(max - 1).collect::<String>()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trailing_note_survives_the_cut() {
        assert_eq!(fit_keeping_note("short (note)", 255), "short (note)");
        let note = "(managed by quayside; owner uid 1234)";
        let long = format!("{} {note}", "n".repeat(300));
        let fit = fit_keeping_note(&long, 255);
        assert!(fit.chars().count() <= 255, "{}", fit.chars().count());
        assert!(fit.ends_with(&format!("… {note}")), "{fit}");
        let plain = "é".repeat(300);
        let fit = fit_keeping_note(&plain, 255);
        assert_eq!(fit.chars().count(), 255);
        assert!(fit.ends_with('…'));
    }

    #[test]
    fn cuts_on_a_character_boundary_and_says_so() {
        assert_eq!(bounded("short", 10), "short");
        assert_eq!(bounded("abcdef", 3), "abc…");
        // 'é' is two bytes: a cut inside it moves back before it.
        assert_eq!(bounded("aé", 2), "a…");
    }
}
