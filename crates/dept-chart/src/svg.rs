//! Writing SVG elements: coordinates to one decimal, every text and attribute value escaped.

use std::fmt::Write;

/// An SVG document being written.
pub(crate) struct Svg {
    out: String,
}

impl Svg {
    pub(crate) fn open(width: f64, height: f64, font_size: f64) -> Self {
        Svg {
            out: format!(
                "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" \
                 viewBox=\"0 0 {width} {height}\" font-family=\"sans-serif\" font-size=\"{font_size}\">\n\
                 <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
            ),
        }
    }

    pub(crate) fn finish(mut self) -> String {
        self.out += "</svg>\n";
        self.out
    }

    /// `<text>` at (x, y); `attrs` are written as given (the caller's constants), `content` escaped.
    pub(crate) fn text(&mut self, x: f64, y: f64, attrs: &str, content: &str) {
        let sep = if attrs.is_empty() { "" } else { " " };
        let _ = writeln!(
            self.out,
            "<text x=\"{x:.1}\" y=\"{y:.1}\"{sep}{attrs}>{}</text>",
            escape(content)
        );
    }

    pub(crate) fn line(&mut self, (x1, y1): (f64, f64), (x2, y2): (f64, f64), attrs: &str) {
        let _ = writeln!(
            self.out,
            "<line x1=\"{x1:.1}\" y1=\"{y1:.1}\" x2=\"{x2:.1}\" y2=\"{y2:.1}\" {attrs}/>"
        );
    }

    pub(crate) fn rect(&mut self, (x, y): (f64, f64), (w, h): (f64, f64), attrs: &str) {
        let _ = writeln!(
            self.out,
            "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"{h:.1}\" {attrs}/>"
        );
    }

    pub(crate) fn circle(&mut self, (x, y): (f64, f64), r: f64, attrs: &str) {
        let _ = writeln!(
            self.out,
            "<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"{r}\" {attrs}/>"
        );
    }

    pub(crate) fn polyline(&mut self, points: &[(f64, f64)], attrs: &str) {
        let path: Vec<String> = points
            .iter()
            .map(|(x, y)| format!("{x:.1},{y:.1}"))
            .collect();
        let _ = writeln!(
            self.out,
            "<polyline fill=\"none\" {attrs} points=\"{}\"/>",
            path.join(" ")
        );
    }
}

/// `text` safe inside an element or a double-quoted attribute.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out += "&amp;",
            '<' => out += "&lt;",
            '>' => out += "&gt;",
            '"' => out += "&quot;",
            '\'' => out += "&apos;",
            c => out.push(c),
        }
    }
    out
}

/// At most `max` characters, the last an ellipsis when cut.
pub fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
        cut.push('…');
        cut
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(escape("a<b>&\"c'"), "a&lt;b&gt;&amp;&quot;c&apos;");
        let mut svg = Svg::open(10.0, 10.0, 11.0);
        svg.text(1.0, 2.0, "", "<x>");
        assert!(svg
            .finish()
            .contains("<text x=\"1.0\" y=\"2.0\">&lt;x&gt;</text>"));
    }

    #[test]
    fn truncates_by_characters_not_bytes() {
        assert_eq!(truncate("÷÷÷÷", 4), "÷÷÷÷");
        assert_eq!(truncate("abcdef", 4), "abc…");
    }
}
