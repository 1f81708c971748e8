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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_on_a_character_boundary_and_says_so() {
        assert_eq!(bounded("short", 10), "short");
        assert_eq!(bounded("abcdef", 3), "abc…");
        // 'é' is two bytes: a cut inside it moves back before it.
        assert_eq!(bounded("aé", 2), "a…");
    }
}
