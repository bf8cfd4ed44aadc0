//! Placing a [`Figure`] on its page: every pixel coordinate of every figure is computed here.

use crate::axis::Axis;
use crate::figure::{
    BarGroup, Figure, Frame, LegendEntry, Line, Mark, Marker, Page, Panel, Rule, Stroke, XAxis,
};
use crate::svg::{escape, truncate, Svg};

const DASH: &str = "6 4";
const CENTRED: &str = "text-anchor=\"middle\"";
const MUTED: &str = "text-anchor=\"middle\" fill=\"#555\"";
/// Average width of one character at the page's font size, for fitting labels into their room.
const CHAR_W: f64 = 6.5;

impl Figure {
    /// The figure as a standalone SVG document.
    pub fn to_svg(&self) -> String {
        let page = &self.page;
        let mut svg = Svg::open(page.width, page.height, page.font_size);
        if let Some(title) = &self.title {
            let x = page.width / 2.0;
            let bold = "text-anchor=\"middle\" font-size=\"15\" font-weight=\"bold\"";
            svg.text(x, 20.0, bold, &title.text);
            svg.text(x, 38.0, MUTED, &title.subtitle);
        }
        for (k, panel) in self.panels.iter().enumerate() {
            draw_panel(&mut svg, page.frame(k), panel);
        }
        draw_legend(&mut svg, page, &self.legend);
        svg.finish()
    }
}

fn draw_panel(svg: &mut Svg, f: Frame, panel: &Panel) {
    let cx = f.centre_x();
    let bold = "text-anchor=\"middle\" font-size=\"13\" font-weight=\"bold\"";
    svg.text(cx, f.top - 22.0, bold, &panel.title);
    if !panel.subtitle.is_empty() {
        let small = "text-anchor=\"middle\" font-size=\"10\" fill=\"#666\"";
        svg.text(cx, f.top - 8.0, small, &panel.subtitle);
    }
    let size = (f.right - f.left, f.bottom - f.top);
    svg.rect((f.left, f.top), size, "fill=\"none\" stroke=\"#999\"");
    let Some(y) = &panel.y else {
        let faint = "text-anchor=\"middle\" font-size=\"13\" fill=\"#999\"";
        svg.text(cx, (f.top + f.bottom) / 2.0, faint, &panel.empty_text);
        return;
    };
    draw_y_axis(svg, f, y, &panel.y_label);
    if let Some(x) = &panel.x {
        draw_x_axis(svg, f, x);
    }
    for mark in &panel.marks {
        match (mark, &panel.x) {
            (Mark::Line(line), Some(x)) => draw_line(svg, f, x, y, line),
            (Mark::Line(_), None) => {}
            (Mark::Rule(rule), _) => draw_rule(svg, f, y, rule),
            (Mark::Bars(groups), _) => draw_bars(svg, f, y, groups),
        }
    }
}

/// Grid lines and labels at the ticks, the axis label turned along the left edge.
fn draw_y_axis(svg: &mut Svg, f: Frame, axis: &Axis, label: &str) {
    for (&v, text) in axis.ticks.iter().zip(axis.labels()) {
        let y = axis.px(v, f.top, f.bottom);
        svg.line((f.left, y), (f.right, y), "stroke=\"#e5e5e5\"");
        svg.text(f.left - 5.0, y + 4.0, "text-anchor=\"end\"", &text);
    }
    if !label.is_empty() {
        let (x, y) = (f.left - 48.0, (f.top + f.bottom) / 2.0);
        let turned = format!("{MUTED} transform=\"rotate(-90 {x:.1} {y:.1})\"");
        svg.text(x, y, &turned, label);
    }
}

fn draw_x_axis(svg: &mut Svg, f: Frame, axis: &XAxis) {
    for tick in &axis.ticks {
        let x = f.x_px(tick.at, axis);
        svg.line((x, f.bottom), (x, f.bottom + 4.0), "stroke=\"#999\"");
        let attrs = if tick.bold {
            "text-anchor=\"middle\" font-weight=\"bold\""
        } else {
            CENTRED
        };
        svg.text(x, f.bottom + 16.0, attrs, &tick.label);
    }
    if !axis.label.is_empty() {
        svg.text(f.centre_x(), f.bottom + 34.0, MUTED, &axis.label);
    }
}

fn stroke_attrs(stroke: &Stroke) -> String {
    let dash = if stroke.dashed {
        format!(" stroke-dasharray=\"{DASH}\"")
    } else {
        String::new()
    };
    format!(
        "stroke=\"{}\" stroke-width=\"{}\"{dash}",
        escape(&stroke.colour),
        stroke.width
    )
}

fn draw_marker(svg: &mut Svg, at: (f64, f64), marker: &Marker) {
    let colour = escape(&marker.colour);
    let fill = if marker.hollow { "white" } else { &colour };
    let attrs = format!("fill=\"{fill}\" stroke=\"{colour}\" stroke-width=\"1.5\"");
    svg.circle(at, marker.radius, &attrs);
}

fn draw_line(svg: &mut Svg, f: Frame, x: &XAxis, y: &Axis, line: &Line) {
    let points: Vec<(f64, f64)> = line
        .points
        .iter()
        .filter(|(px, py)| px.is_finite() && py.is_finite())
        .map(|&(px, py)| (f.x_px(px, x), y.px(py, f.top, f.bottom)))
        .collect();
    if let (Some(stroke), false) = (&line.stroke, points.is_empty()) {
        svg.polyline(&points, &stroke_attrs(stroke));
    }
    if let Some(marker) = &line.marker {
        for &at in &points {
            draw_marker(svg, at, marker);
        }
    }
}

fn draw_rule(svg: &mut Svg, f: Frame, axis: &Axis, rule: &Rule) {
    if !rule.y.is_finite() {
        return;
    }
    let y = axis.px(rule.y, f.top, f.bottom);
    svg.line((f.left, y), (f.right, y), &stroke_attrs(&rule.stroke));
    if let Some(tab) = &rule.tab {
        let attrs = format!("stroke=\"{}\" stroke-width=\"3\"", escape(tab));
        svg.line((f.left, y), (f.left + 10.0, y), &attrs);
    }
}

/// Groups spread evenly over the width, their bars side by side (at most 36 px wide each), labelled underneath.
fn draw_bars(svg: &mut Svg, f: Frame, axis: &Axis, groups: &[BarGroup]) {
    let group_w = (f.right - f.left) / groups.len().max(1) as f64;
    let max_chars = ((group_w - 4.0) / CHAR_W).max(3.0) as usize;
    for (i, group) in groups.iter().enumerate() {
        let slots = group.bars.len().max(1) as f64;
        let bar_w = (group_w * 0.75 / slots).min(36.0);
        let centre = f.left + (i as f64 + 0.5) * group_w;
        let first = centre - bar_w * slots / 2.0;
        for (slot, bar) in group.bars.iter().enumerate() {
            let x = first + slot as f64 * bar_w;
            match bar.value.filter(|v| v.is_finite()) {
                Some(v) => {
                    let top = axis.px(v, f.top, f.bottom);
                    let size = (bar_w - 2.0, (f.bottom - top).max(0.0));
                    svg.rect(
                        (x + 1.0, top),
                        size,
                        &format!("fill=\"{}\"", escape(&bar.fill)),
                    );
                }
                None => {
                    let faint = "text-anchor=\"middle\" font-size=\"9\" fill=\"#888888\"";
                    svg.text(x + bar_w / 2.0, f.bottom - 4.0, faint, "n/a");
                }
            }
        }
        if let Some(note) = &group.annotation {
            let tallest = group
                .bars
                .iter()
                .filter_map(|b| b.value.filter(|v| v.is_finite()))
                .fold(0.0_f64, f64::max);
            let x = first + (note.bar as f64 + 0.5) * bar_w;
            let attrs = format!(
                "text-anchor=\"middle\" font-size=\"10\" font-weight=\"bold\" fill=\"{}\"",
                escape(&note.colour)
            );
            svg.text(
                x,
                axis.px(tallest, f.top, f.bottom) - 4.0,
                &attrs,
                &note.text,
            );
        }
        svg.text(
            centre,
            f.bottom + 16.0,
            CENTRED,
            &truncate(&group.label, max_chars),
        );
        if !group.note.is_empty() {
            let small = "text-anchor=\"middle\" font-size=\"9\" fill=\"#666\"";
            svg.text(
                centre,
                f.bottom + 28.0,
                small,
                &truncate(&group.note, max_chars + 4),
            );
        }
    }
}

/// The column right of the panels: sample lines, colour swatches and notes, labels cut to fit.
fn draw_legend(svg: &mut Svg, page: &Page, entries: &[LegendEntry]) {
    if page.legend_width <= 0.0 {
        return;
    }
    let x = page.width - page.legend_width + 12.0;
    let label_chars = ((page.legend_width - 46.0) / 5.75).max(3.0) as usize;
    let mut y = page.frame_top + 8.0;
    for entry in entries {
        let label = match entry {
            LegendEntry::Line {
                label,
                stroke,
                marker,
            } => {
                svg.line(
                    (x, y),
                    (x + 28.0, y),
                    &stroke_attrs(&Stroke {
                        width: 2.0,
                        ..stroke.clone()
                    }),
                );
                if let Some(marker) = marker {
                    draw_marker(svg, (x + 14.0, y), marker);
                }
                label
            }
            LegendEntry::Swatch { label, fill } => {
                svg.rect(
                    (x, y - 5.0),
                    (28.0, 10.0),
                    &format!("fill=\"{}\"", escape(fill)),
                );
                label
            }
            LegendEntry::Note(text) => {
                let small = "font-size=\"10\" fill=\"#666\"";
                svg.text(x, y + 4.0, small, &truncate(text, label_chars + 8));
                y += 15.0;
                continue;
            }
            LegendEntry::Gap => {
                y += 6.0;
                continue;
            }
        };
        svg.text(x + 34.0, y + 4.0, "", &truncate(label, label_chars));
        y += 20.0;
    }
}
