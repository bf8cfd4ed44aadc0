//! `curves.svg`: training loss and the evaluation metric against steps, written by hand (no plotting library).

use serde_json::Value;

/// An SVG with two panels (loss; `metric` on validation) from `metrics.jsonl` records.
pub fn curves_svg(records: &[Value], metric: &str) -> String {
    let loss: Vec<(f64, f64)> = records
        .iter()
        .filter_map(|r| Some((r.get("step")?.as_f64()?, r.get("loss")?.as_f64()?)))
        .collect();
    let eval: Vec<(f64, f64)> = records
        .iter()
        .filter(|r| r.get("split").and_then(Value::as_str) == Some("validation"))
        .filter_map(|r| {
            Some((
                r.get("step")?.as_f64()?,
                r.get("metrics")?.get(metric)?.as_f64()?,
            ))
        })
        .collect();
    let (width, height) = (960.0, 360.0);
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" \
         font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
    );
    svg += &panel(&loss, "training loss", 0.0, width / 2.0, height, "#1f77b4");
    svg += &panel(
        &eval,
        &format!("validation {metric}"),
        width / 2.0,
        width / 2.0,
        height,
        "#d62728",
    );
    svg += "</svg>\n";
    svg
}

fn panel(points: &[(f64, f64)], title: &str, x0: f64, w: f64, h: f64, color: &str) -> String {
    let (left, right, top, bottom) = (x0 + 60.0, x0 + w - 20.0, 30.0, h - 40.0);
    let mut out = format!(
        "<text x=\"{}\" y=\"18\" text-anchor=\"middle\" font-weight=\"bold\">{title}</text>\n\
         <rect x=\"{left}\" y=\"{top}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"#999\"/>\n",
        (left + right) / 2.0,
        right - left,
        bottom - top
    );
    if points.is_empty() {
        out += &format!(
            "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"#999\">no data</text>\n",
            (left + right) / 2.0,
            (top + bottom) / 2.0
        );
        return out;
    }
    let (xmin, xmax) = bounds(points.iter().map(|p| p.0));
    let (ymin, ymax) = bounds(points.iter().map(|p| p.1));
    let sx = |x: f64| left + (x - xmin) / (xmax - xmin) * (right - left);
    let sy = |y: f64| bottom - (y - ymin) / (ymax - ymin) * (bottom - top);
    let path: Vec<String> = points
        .iter()
        .map(|&(x, y)| format!("{:.1},{:.1}", sx(x), sy(y)))
        .collect();
    out += &format!(
        "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"1.5\" points=\"{}\"/>\n",
        path.join(" ")
    );
    if points.len() < 40 {
        for &(x, y) in points {
            out += &format!(
                "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"2.5\" fill=\"{color}\"/>\n",
                sx(x),
                sy(y)
            );
        }
    }
    for (value, y) in [(ymax, top), (ymin, bottom)] {
        out += &format!(
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>\n",
            left - 6.0,
            y + 4.0,
            short(value)
        );
    }
    for (value, x) in [(xmin, left), (xmax, right)] {
        out += &format!(
            "<text x=\"{x}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n",
            bottom + 16.0,
            short(value)
        );
    }
    out += &format!(
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">step</text>\n",
        (left + right) / 2.0,
        bottom + 32.0
    );
    out
}

fn bounds(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    if (hi - lo).abs() < 1e-12 {
        (lo - 0.5, hi + 0.5)
    } else {
        (lo, hi)
    }
}

fn short(v: f64) -> String {
    if v.abs() >= 1000.0 || v == v.trunc() {
        format!("{v:.0}")
    } else {
        format!("{v:.3}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_both_curves() {
        let records = vec![
            serde_json::json!({"step": 1, "loss": 2.0}),
            serde_json::json!({"step": 2, "loss": 1.0}),
            serde_json::json!({"step": 2, "split": "validation", "metrics": {"accuracy": 50.0}}),
        ];
        let svg = curves_svg(&records, "accuracy");
        assert!(svg.starts_with("<svg"));
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert!(svg.contains("validation accuracy"));
    }
}
