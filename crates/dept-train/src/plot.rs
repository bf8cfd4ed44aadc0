//! `curves.svg`: training loss and the evaluation metric against steps, drawn with `dept-chart`.

use dept_chart::{bounds, Axis, Figure, Line, Mark, Marker, Page, Panel, Stroke, XAxis};
use serde_json::Value;

/// Two panels side by side, no legend (each panel's title names its one curve).
const PAGE: Page = Page {
    width: 960.0,
    height: 360.0,
    font_size: 12.0,
    legend_width: 0.0,
    panels: 2,
    frame_top: 40.0,
    frame_bottom: 320.0,
    inset_left: 60.0,
    inset_right: 20.0,
};
/// Up to this many points a curve also marks each one.
const MARKED_POINTS: usize = 40;

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
    Figure {
        page: PAGE,
        title: None,
        panels: vec![
            panel(loss, "training loss", "#1f77b4"),
            panel(eval, &format!("validation {metric}"), "#d62728"),
        ],
        legend: Vec::new(),
    }
    .to_svg()
}

fn panel(points: Vec<(f64, f64)>, title: &str, colour: &str) -> Panel {
    let points: Vec<(f64, f64)> = points
        .into_iter()
        .filter(|(x, y)| x.is_finite() && y.is_finite())
        .collect();
    let Some(((xmin, xmax), (ymin, ymax))) =
        bounds(points.iter().map(|p| p.0)).zip(bounds(points.iter().map(|p| p.1)))
    else {
        return Panel {
            title: title.to_string(),
            empty_text: "no data".to_string(),
            ..Panel::default()
        };
    };
    let marker = (points.len() < MARKED_POINTS).then(|| Marker {
        colour: colour.to_string(),
        radius: 2.5,
        hollow: false,
    });
    Panel {
        title: title.to_string(),
        y: Some(Axis::nice(ymin, ymax, 5)),
        x: Some(XAxis::from_axis(&Axis::nice(xmin, xmax, 5), "step")),
        marks: vec![Mark::Line(Line {
            points,
            stroke: Some(Stroke::solid(colour, 1.5)),
            marker,
        })],
        ..Panel::default()
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
