//! Formatted examples as JSON lines (`dept data export`), so a split can be diffed against another
//! implementation's: one `{"id", "input", "target"}` object a line, plus `"image"` for the vision-language tasks
//! (the image id their features are keyed by).

use std::io::{self, Write};

use serde_json::{json, Value};

use crate::example::TextExample;

/// Writes one JSON object per example, then flushes `out`.
pub fn write_jsonl(out: &mut impl Write, examples: &[TextExample]) -> io::Result<()> {
    for e in examples {
        let mut row = json!({"id": e.id, "input": e.input, "target": e.target});
        if let Some(image) = &e.extra.image {
            row["image"] = Value::from(image.as_str());
        }
        serde_json::to_writer(&mut *out, &row)?;
        out.write_all(b"\n")?;
    }
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::example::Extra;

    #[test]
    fn rows_carry_id_input_target_and_the_image_when_there_is_one() {
        let example = |image: Option<&str>| TextExample {
            id: "7".into(),
            input: "vqa: what \"color\"?".into(),
            target: "red".into(),
            extra: Extra {
                image: image.map(String::from),
                answers: vec!["red".into()],
                ..Extra::default()
            },
        };
        let mut out = Vec::new();
        write_jsonl(&mut out, &[example(None), example(Some("COCO_val2014_1"))]).unwrap();
        let text = String::from_utf8(out).unwrap();
        let rows: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let input = "vqa: what \"color\"?";
        assert_eq!(
            rows,
            [
                json!({"id": "7", "input": input, "target": "red"}),
                json!({"id": "7", "input": input, "target": "red", "image": "COCO_val2014_1"}),
            ]
        );
        assert!(text.ends_with("}\n") && text.lines().count() == 2, "{text}");
    }
}
