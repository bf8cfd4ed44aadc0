//! The efficiency study's figures, written by hand as SVG (no plotting library).
//!
//! - [`figure3_svg`]: cost against the number of prompt tokens m at PT's parameter budget, relative to PT (the
//!   paper's Figure 3): one line per shape and padding, with the backbone alone as a reference.
//! - [`figure4_svg`]: PT against DePT against the backbone alone, shape by shape (the paper's Figure 4: the savings
//!   grow with the model).

use std::fmt::Write;

use dept_train::memory::MemoryKind;

use super::row::{PaddingMode, Row, Variant};

const WIDTH: f64 = 1200.0;
const HEIGHT: f64 = 400.0;
/// The legend's column on the right.
const LEGEND_W: f64 = 190.0;
const PANEL_W: f64 = (WIDTH - LEGEND_W) / 3.0;
const FRAME_TOP: f64 = 82.0;
const FRAME_BOTTOM: f64 = 340.0;
const DASH: &str = "6 4";
const GREY: &str = "#888888";
const SHAPE_COLOURS: [&str; 8] = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22",
];
const PT_COLOUR: &str = "#d62728";
const DEPT_COLOUR: &str = "#1f77b4";
const FLOOR_COLOUR: &str = "#bbbbbb";

/// The three measured costs, in the order of the panels.
const METRICS: usize = 3;

/// Training step median (ms), peak memory (MiB), inference samples/s.
fn metric(row: &Row, k: usize) -> Option<f64> {
    let v = match k {
        0 => Some(row.step_ms.median),
        1 => row.peak.map(|p| p.mib()),
        _ => row.inference_samples_per_s,
    }?;
    v.is_finite().then_some(v)
}

/// `value ÷ base`, when both exist and the quotient is a number.
fn ratio(value: Option<f64>, base: Option<f64>) -> Option<f64> {
    let (v, b) = (value?, base?);
    let r = v / b;
    (b > 0.0 && r.is_finite()).then_some(r)
}

fn dept_m(row: &Row) -> Option<i64> {
    match row.variant {
        Variant::Dept { m, .. } => Some(m),
        _ => None,
    }
}

/// Shapes in the order they first appear.
fn shape_order(rows: &[Row]) -> Vec<&str> {
    let mut shapes: Vec<&str> = Vec::new();
    for r in rows {
        if !shapes.contains(&r.shape.as_str()) {
            shapes.push(&r.shape);
        }
    }
    shapes
}

/// What the peaks measure, in words ("mixed" when rows disagree).
fn memory_kind(rows: &[Row]) -> Option<&'static str> {
    let mut kinds = rows.iter().filter_map(|r| r.peak.map(|p| p.kind));
    let first = kinds.next()?;
    if kinds.any(|k| k != first) {
        return Some("mixed kinds");
    }
    Some(match first {
        MemoryKind::CudaAllocated => "CUDA allocated",
        MemoryKind::ProcessRss => "process RSS",
    })
}

// ---------------------------------------------------------------------------------------------------------------
// Figure 3

/// One point of a Figure 3 line: a DePT row at its m, or the PT row at its l.
#[derive(Debug, Clone, PartialEq)]
struct Point {
    m: i64,
    is_pt: bool,
    /// Step time, peak memory and inference throughput, each ÷ the group's PT.
    ratios: [Option<f64>; METRICS],
}

/// One (shape, padding) group of Figure 3, relative to its own PT row.
#[derive(Debug, Clone, PartialEq)]
struct Series {
    shape: String,
    /// Index of the shape in order of appearance (its colour).
    shape_index: usize,
    padding: PaddingMode,
    pt_l: i64,
    /// Sorted by m (PT at its l).
    points: Vec<Point>,
    /// The backbone alone ÷ PT, when a floor row exists.
    floor: Option<[Option<f64>; METRICS]>,
}

/// Figure 3's numbers: per (shape, padding) in order of appearance, every DePT row and the PT row as ratios to that
/// group's PT row. Groups without a PT row are left out.
fn figure3_series(rows: &[Row]) -> Vec<Series> {
    let shapes = shape_order(rows);
    let mut groups: Vec<(&str, PaddingMode)> = Vec::new();
    for r in rows {
        if !groups.contains(&(r.shape.as_str(), r.padding)) {
            groups.push((&r.shape, r.padding));
        }
    }
    groups
        .into_iter()
        .filter_map(|(shape, padding)| {
            let group: Vec<&Row> = rows
                .iter()
                .filter(|r| r.shape == shape && r.padding == padding)
                .collect();
            let (pt, l) = group.iter().find_map(|r| match r.variant {
                Variant::Pt { l } => Some((*r, l)),
                _ => None,
            })?;
            let against_pt = |r: &Row| -> [Option<f64>; METRICS] {
                std::array::from_fn(|k| ratio(metric(r, k), metric(pt, k)))
            };
            let mut points: Vec<Point> = group
                .iter()
                .filter_map(|r| {
                    Some(Point {
                        m: dept_m(r)?,
                        is_pt: false,
                        ratios: against_pt(r),
                    })
                })
                .collect();
            points.push(Point {
                m: l,
                is_pt: true,
                ratios: against_pt(pt),
            });
            points.sort_by_key(|p| p.m);
            let floor = group
                .iter()
                .find(|r| r.variant == Variant::Floor)
                .map(|r| against_pt(r));
            Some(Series {
                shape: shape.to_string(),
                shape_index: shapes.iter().position(|s| *s == shape).unwrap_or(0),
                padding,
                pt_l: l,
                points,
                floor,
            })
        })
        .collect()
}

fn shape_colour(index: usize) -> &'static str {
    SHAPE_COLOURS[index % SHAPE_COLOURS.len()]
}

fn dash_attr(padding: PaddingMode) -> String {
    match padding {
        PaddingMode::MaxLength => String::new(),
        PaddingMode::Longest => format!(" stroke-dasharray=\"{DASH}\""),
    }
}

fn marker(x: f64, y: f64, colour: &str, padding: PaddingMode) -> String {
    let fill = match padding {
        PaddingMode::MaxLength => colour,
        PaddingMode::Longest => "white",
    };
    format!(
        "<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"3.5\" fill=\"{fill}\" stroke=\"{colour}\" stroke-width=\"1.5\"/>\n"
    )
}

/// The y axis of a Figure 3 panel for these ratios (1, PT, always included).
fn ratio_axis(values: &[f64]) -> Axis {
    let lo = values.iter().copied().fold(1.0_f64, f64::min);
    let hi = values.iter().copied().fold(1.0_f64, f64::max);
    let span = hi - lo;
    let (lo, hi) = if span < 0.02 {
        (lo - 0.05, hi + 0.05)
    } else {
        (lo - 0.06 * span, hi + 0.06 * span)
    };
    Axis::nice(lo.max(0.0), hi, 5)
}

/// Cost against prompt tokens m at PT's parameter budget, relative to PT (the paper's Figure 3): step time, peak
/// memory and inference throughput, one line per shape and padding (solid: max_length, dashed: longest), PT at m = l
/// and ratio 1, the backbone alone as a dashed grey reference.
pub fn figure3_svg(rows: &[Row]) -> String {
    let series = figure3_series(rows);
    let mut svg = svg_open();
    let pt_ls = distinct(series.iter().map(|s| s.pt_l));
    let pt_text = match pt_ls.as_slice() {
        [l] => format!("PT l={l}"),
        _ => "PT".to_string(),
    };
    title(
        &mut svg,
        "Cost against prompt tokens m at PT's parameter budget (cf. DePT Figure 3)",
        &format!(
            "Each line: one shape and padding, relative to its own {pt_text} run (= 1); \
             DePT's rank r is solved so that its trainable parameters match PT's."
        ),
    );

    // One x scale for all three panels: DePT's m values and PT at its l.
    let xs: Vec<f64> = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.m as f64))
        .collect();
    let (xmin, xmax) = bounds(&xs).unwrap_or((0.0, 100.0));
    let (xmin, xmax) = if xmax - xmin < 1.0 {
        (xmin - 10.0, xmax + 10.0)
    } else {
        let pad = 0.06 * (xmax - xmin);
        (xmin - pad, xmax + pad)
    };
    let dept_ms = distinct(
        series
            .iter()
            .flat_map(|s| s.points.iter().filter(|p| !p.is_pt).map(|p| p.m)),
    );

    let memory = match memory_kind(rows) {
        Some(kind) => format!("lower is better · {kind}"),
        None => "lower is better".to_string(),
    };
    let panels = [
        ("training step time ÷ PT", "lower is better".to_string()),
        ("peak memory ÷ PT", memory),
        ("inference samples/s ÷ PT", "higher is better".to_string()),
    ];
    for (k, (panel_title, subtitle)) in panels.iter().enumerate() {
        let frame = Frame::at(k as f64 * PANEL_W);
        frame.titles(&mut svg, panel_title, subtitle);
        let mut values: Vec<f64> = series
            .iter()
            .flat_map(|s| s.points.iter().filter_map(|p| p.ratios[k]))
            .collect();
        if values.is_empty() {
            frame.not_measured(&mut svg);
            continue;
        }
        values.extend(series.iter().filter_map(|s| s.floor.and_then(|f| f[k])));
        let axis = ratio_axis(&values);
        frame.y_ticks(&mut svg, &axis);
        frame.y_label(&mut svg, "ratio to PT");
        let sx = |x: f64| frame.left + (x - xmin) / (xmax - xmin) * (frame.right - frame.left);

        // x ticks: PT at its l, DePT's m values thinned so that labels keep apart.
        let mut ticks: Vec<(f64, String)> = Vec::new();
        for &l in &pt_ls {
            let label = if pt_ls.len() == 1 {
                "PT".to_string()
            } else {
                format!("PT {l}")
            };
            ticks.push((sx(l as f64), label));
        }
        let mut last: Option<f64> = None;
        for &m in &dept_ms {
            let x = sx(m as f64);
            let clear_of_pt = pt_ls.iter().all(|&l| (sx(l as f64) - x).abs() >= 24.0);
            let clear_of_last = last.is_none_or(|lx| x - lx >= 24.0);
            if clear_of_pt && clear_of_last {
                ticks.push((x, m.to_string()));
                last = Some(x);
            }
        }
        for (x, label) in &ticks {
            let bold = if label.starts_with("PT") {
                " font-weight=\"bold\""
            } else {
                ""
            };
            let _ = write!(
                svg,
                "<line x1=\"{x:.1}\" y1=\"{b:.1}\" x2=\"{x:.1}\" y2=\"{b4:.1}\" stroke=\"#999\"/>\n\
                 <text x=\"{x:.1}\" y=\"{ty:.1}\" text-anchor=\"middle\"{bold}>{}</text>\n",
                escape(label),
                b = frame.bottom,
                b4 = frame.bottom + 4.0,
                ty = frame.bottom + 16.0,
            );
        }
        frame.x_label(&mut svg, &format!("prompt tokens m ({pt_text} at m = l)"));

        // The backbone alone: a dashed grey line per group, with a tab of the shape's colour at its left end.
        for s in &series {
            if let Some(v) = s.floor.and_then(|f| f[k]) {
                let y = axis.px(v, frame.top, frame.bottom);
                let _ = write!(
                    svg,
                    "<line x1=\"{l:.1}\" y1=\"{y:.1}\" x2=\"{r:.1}\" y2=\"{y:.1}\" stroke=\"{GREY}\" \
                     stroke-width=\"1.2\" stroke-dasharray=\"{DASH}\"/>\n\
                     <line x1=\"{l:.1}\" y1=\"{y:.1}\" x2=\"{l10:.1}\" y2=\"{y:.1}\" stroke=\"{c}\" \
                     stroke-width=\"3\"/>\n",
                    l = frame.left,
                    r = frame.right,
                    l10 = frame.left + 10.0,
                    c = shape_colour(s.shape_index),
                );
            }
        }
        for s in &series {
            let colour = shape_colour(s.shape_index);
            let pts: Vec<(f64, f64)> = s
                .points
                .iter()
                .filter_map(|p| {
                    Some((
                        sx(p.m as f64),
                        axis.px(p.ratios[k]?, frame.top, frame.bottom),
                    ))
                })
                .collect();
            if pts.len() >= 2 {
                let path: Vec<String> = pts.iter().map(|(x, y)| format!("{x:.1},{y:.1}")).collect();
                let _ = writeln!(
                    svg,
                    "<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\"{} points=\"{}\"/>",
                    dash_attr(s.padding),
                    path.join(" ")
                );
            }
            for (x, y) in pts {
                svg += &marker(x, y, colour, s.padding);
            }
        }
    }

    // Legend.
    let mut legend = Legend::new();
    if series.is_empty() {
        legend.note("no PT row to compare against");
    }
    for s in &series {
        let colour = shape_colour(s.shape_index);
        legend.line(
            &format!("{} · {}", s.shape, s.padding.as_str()),
            colour,
            s.padding == PaddingMode::Longest,
            Some(marker(0.0, 0.0, colour, s.padding)),
        );
    }
    if series.iter().any(|s| s.floor.is_some()) {
        legend.line("backbone alone", GREY, true, None);
    }
    legend.gap();
    legend.note("solid: max_length padding");
    legend.note("dashed: longest padding");
    legend.note(&format!("{pt_text} sits at 1"));
    svg += &legend.svg;
    svg += "</svg>\n";
    svg
}

// ---------------------------------------------------------------------------------------------------------------
// Figure 4

/// What Figure 4 shows for one shape.
#[derive(Debug, Clone, Copy)]
struct ShapeBars<'a> {
    shape: &'a str,
    padding: PaddingMode,
    pt: Option<&'a Row>,
    dept: Option<&'a Row>,
    floor: Option<&'a Row>,
}

/// Per shape in order of appearance: its max_length rows when there are any (else longest), PT, DePT at
/// `headline_m` (else the largest m) and the floor.
fn figure4_groups(rows: &[Row], headline_m: i64) -> Vec<ShapeBars<'_>> {
    shape_order(rows)
        .into_iter()
        .map(|shape| {
            let padding = if rows
                .iter()
                .any(|r| r.shape == shape && r.padding == PaddingMode::MaxLength)
            {
                PaddingMode::MaxLength
            } else {
                PaddingMode::Longest
            };
            let group: Vec<&Row> = rows
                .iter()
                .filter(|r| r.shape == shape && r.padding == padding)
                .collect();
            let pt = group
                .iter()
                .copied()
                .find(|r| matches!(r.variant, Variant::Pt { .. }));
            let dept = group
                .iter()
                .copied()
                .find(|r| dept_m(r) == Some(headline_m))
                .or_else(|| {
                    group
                        .iter()
                        .copied()
                        .filter(|r| dept_m(r).is_some())
                        .max_by_key(|r| dept_m(r))
                });
            let floor = group.iter().copied().find(|r| r.variant == Variant::Floor);
            ShapeBars {
                shape,
                padding,
                pt,
                dept,
                floor,
            }
        })
        .collect()
}

/// PT against DePT against the backbone alone, shape by shape (the paper's Figure 4): (a) training step time in ms
/// with DePT÷PT above the DePT bar, (b) peak memory in MiB, (c) inference samples/s. DePT is the row with
/// `m == headline_m`, else the one with the largest m; each shape uses its max_length rows when it has them.
pub fn figure4_svg(rows: &[Row], headline_m: i64) -> String {
    let groups = figure4_groups(rows, headline_m);
    let with_floor = groups.iter().any(|g| g.floor.is_some());
    let mut svg = svg_open();

    let pt_ls = distinct(groups.iter().filter_map(|g| match g.pt?.variant {
        Variant::Pt { l } => Some(l),
        _ => None,
    }));
    let pt_text = match pt_ls.as_slice() {
        [l] => format!("PT l={l}"),
        _ => "PT".to_string(),
    };
    let chosen_ms = distinct(groups.iter().filter_map(|g| dept_m(g.dept?)));
    let dept_text = match chosen_ms.as_slice() {
        [m] => format!("DePT m={m}"),
        [] => format!("DePT m={headline_m}"),
        _ => format!("DePT m={headline_m} (else largest m)"),
    };
    let dept_legend = match chosen_ms.as_slice() {
        [_] | [] => dept_text.clone(),
        _ => format!("DePT m={headline_m} or largest"),
    };
    let paddings = distinct_padding(groups.iter().map(|g| g.padding));
    let padding_text = match paddings.as_slice() {
        [p] => format!("padding: {}", p.as_str()),
        _ => format!(
            "padding: {}",
            groups
                .iter()
                .map(|g| format!("{} {}", g.shape, g.padding.as_str()))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    title(
        &mut svg,
        "Savings across model sizes at the same trainable parameters (cf. DePT Figure 4)",
        &format!(
            "{pt_text} vs {dept_text}{} · {padding_text}",
            if with_floor {
                " vs the backbone alone"
            } else {
                ""
            }
        ),
    );
    let memory = match memory_kind(rows) {
        Some(kind) => format!("MiB ({kind}), lower is better"),
        None => "MiB, lower is better".to_string(),
    };
    let panels = [
        (
            "(a) training step time",
            "ms, lower is better".to_string(),
            "ms",
        ),
        ("(b) peak memory", memory, "MiB"),
        (
            "(c) inference throughput",
            "samples/s, higher is better".to_string(),
            "samples/s",
        ),
    ];
    for (k, (panel_title, subtitle, unit)) in panels.iter().enumerate() {
        let frame = Frame::at(k as f64 * PANEL_W);
        frame.titles(&mut svg, panel_title, subtitle);
        let values: Vec<f64> = groups
            .iter()
            .flat_map(|g| [g.pt, g.dept, g.floor])
            .filter_map(|r| metric(r?, k))
            .collect();
        let Some((_, hi)) = bounds(&values) else {
            frame.not_measured(&mut svg);
            continue;
        };
        // Headroom for the ratio written above the DePT bar.
        let axis = Axis::nice(0.0, if hi > 0.0 { hi * 1.1 } else { 1.0 }, 5);
        frame.y_ticks(&mut svg, &axis);
        frame.y_label(&mut svg, unit);

        let slots = if with_floor { 3 } else { 2 };
        let group_w = (frame.right - frame.left) / groups.len() as f64;
        let bar_w = (group_w * 0.75 / slots as f64).min(36.0);
        for (i, g) in groups.iter().enumerate() {
            let centre = frame.left + (i as f64 + 0.5) * group_w;
            let first = centre - bar_w * slots as f64 / 2.0;
            let bars = [
                (g.pt, PT_COLOUR),
                (g.dept, DEPT_COLOUR),
                (g.floor, FLOOR_COLOUR),
            ];
            for (slot, (row, colour)) in bars.iter().take(slots).enumerate() {
                let x = first + slot as f64 * bar_w;
                match row.and_then(|r| metric(r, k)) {
                    Some(v) => {
                        let y = axis.px(v, frame.top, frame.bottom);
                        let _ = writeln!(
                            svg,
                            "<rect x=\"{:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{colour}\"/>",
                            x + 1.0,
                            bar_w - 2.0,
                            (frame.bottom - y).max(0.0)
                        );
                    }
                    None => {
                        let _ = writeln!(
                            svg,
                            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" font-size=\"9\" \
                             fill=\"{GREY}\">n/a</text>",
                            x + bar_w / 2.0,
                            frame.bottom - 4.0
                        );
                    }
                }
            }
            // DePT ÷ PT over the DePT bar, above the group's tallest bar so that no bar covers it.
            if let Some(r) = ratio(
                g.dept.and_then(|r| metric(r, k)),
                g.pt.and_then(|r| metric(r, k)),
            ) {
                let tallest = bars
                    .iter()
                    .take(slots)
                    .filter_map(|(row, _)| metric((*row)?, k))
                    .fold(0.0_f64, f64::max);
                let y = axis.px(tallest, frame.top, frame.bottom);
                let _ = writeln!(
                    svg,
                    "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" font-size=\"10\" \
                     font-weight=\"bold\" fill=\"{DEPT_COLOUR}\">{r:.2}×</text>",
                    first + 1.5 * bar_w,
                    y - 4.0
                );
            }
            let max_chars = ((group_w - 4.0) / 6.5).max(3.0) as usize;
            let _ = writeln!(
                svg,
                "<text x=\"{centre:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
                frame.bottom + 16.0,
                escape(&truncate(g.shape, max_chars))
            );
            let mut notes: Vec<String> = Vec::new();
            if let Some(m) = g.dept.and_then(dept_m) {
                if chosen_ms.len() > 1 && m != headline_m {
                    notes.push(format!("m={m}"));
                }
            }
            if paddings.len() > 1 {
                notes.push(g.padding.as_str().to_string());
            }
            if !notes.is_empty() {
                let _ = writeln!(
                    svg,
                    "<text x=\"{centre:.1}\" y=\"{:.1}\" text-anchor=\"middle\" font-size=\"9\" \
                     fill=\"#666\">{}</text>",
                    frame.bottom + 28.0,
                    escape(&truncate(&notes.join(" · "), max_chars + 4))
                );
            }
        }
    }

    let mut legend = Legend::new();
    legend.bar(&pt_text, PT_COLOUR);
    legend.bar(&dept_legend, DEPT_COLOUR);
    if with_floor {
        legend.bar("backbone alone", FLOOR_COLOUR);
    }
    legend.gap();
    legend.note("above DePT bars: DePT ÷ PT");
    if groups
        .iter()
        .any(|g| g.dept.and_then(dept_m).is_some_and(|m| m != headline_m))
    {
        legend.note(&format!("no m={headline_m} row: largest m"));
    }
    svg += &legend.svg;
    svg += "</svg>\n";
    svg
}

// ---------------------------------------------------------------------------------------------------------------
// Drawing

fn svg_open() -> String {
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{HEIGHT}\" \
         viewBox=\"0 0 {WIDTH} {HEIGHT}\" font-family=\"sans-serif\" font-size=\"11\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
    )
}

fn title(svg: &mut String, text: &str, subtitle: &str) {
    let _ = write!(
        svg,
        "<text x=\"{x}\" y=\"20\" text-anchor=\"middle\" font-size=\"15\" font-weight=\"bold\">{}</text>\n\
         <text x=\"{x}\" y=\"38\" text-anchor=\"middle\" fill=\"#555\">{}</text>\n",
        escape(text),
        escape(subtitle),
        x = WIDTH / 2.0,
    );
}

/// A panel's plotting area.
struct Frame {
    left: f64,
    right: f64,
    top: f64,
    bottom: f64,
}

impl Frame {
    fn at(x0: f64) -> Self {
        Frame {
            left: x0 + 64.0,
            right: x0 + PANEL_W - 14.0,
            top: FRAME_TOP,
            bottom: FRAME_BOTTOM,
        }
    }

    fn centre_x(&self) -> f64 {
        (self.left + self.right) / 2.0
    }

    fn titles(&self, svg: &mut String, title: &str, subtitle: &str) {
        let _ = write!(
            svg,
            "<text x=\"{x:.1}\" y=\"60\" text-anchor=\"middle\" font-size=\"13\" font-weight=\"bold\">{}</text>\n\
             <text x=\"{x:.1}\" y=\"74\" text-anchor=\"middle\" font-size=\"10\" fill=\"#666\">{}</text>\n\
             <rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"none\" stroke=\"#999\"/>\n",
            escape(title),
            escape(subtitle),
            self.left,
            self.top,
            self.right - self.left,
            self.bottom - self.top,
            x = self.centre_x(),
        );
    }

    fn not_measured(&self, svg: &mut String) {
        let _ = writeln!(
            svg,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" font-size=\"13\" fill=\"#999\">not measured</text>",
            self.centre_x(),
            (self.top + self.bottom) / 2.0
        );
    }

    fn y_ticks(&self, svg: &mut String, axis: &Axis) {
        for (v, label) in axis.ticks.iter().zip(axis.labels()) {
            let y = axis.px(*v, self.top, self.bottom);
            let _ = write!(
                svg,
                "<line x1=\"{l:.1}\" y1=\"{y:.1}\" x2=\"{r:.1}\" y2=\"{y:.1}\" stroke=\"#e5e5e5\"/>\n\
                 <text x=\"{tx:.1}\" y=\"{ty:.1}\" text-anchor=\"end\">{label}</text>\n",
                l = self.left,
                r = self.right,
                tx = self.left - 5.0,
                ty = y + 4.0,
            );
        }
    }

    fn y_label(&self, svg: &mut String, text: &str) {
        let (x, y) = (self.left - 48.0, (self.top + self.bottom) / 2.0);
        let _ = writeln!(
            svg,
            "<text x=\"{x:.1}\" y=\"{y:.1}\" text-anchor=\"middle\" fill=\"#555\" \
             transform=\"rotate(-90 {x:.1} {y:.1})\">{}</text>",
            escape(text)
        );
    }

    fn x_label(&self, svg: &mut String, text: &str) {
        let _ = writeln!(
            svg,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"#555\">{}</text>",
            self.centre_x(),
            self.bottom + 34.0,
            escape(text)
        );
    }
}

/// A linear axis over "nice" ticks (1, 2, 2.5 or 5 times a power of ten); its range is the first to the last tick.
#[derive(Debug, Clone, PartialEq)]
struct Axis {
    ticks: Vec<f64>,
    step: f64,
}

impl Axis {
    /// Ticks covering [lo, hi], about `target` intervals.
    fn nice(lo: f64, hi: f64, target: usize) -> Self {
        let (lo, hi) = if hi - lo > 1e-12 {
            (lo, hi)
        } else {
            (lo - 0.5, hi + 0.5)
        };
        let step = nice_step((hi - lo) / target.max(1) as f64);
        let k0 = (lo / step + 1e-9).floor() as i64;
        let k1 = (hi / step - 1e-9).ceil() as i64;
        Axis {
            ticks: (k0..=k1.max(k0 + 1)).map(|k| k as f64 * step).collect(),
            step,
        }
    }

    fn lo(&self) -> f64 {
        self.ticks[0]
    }

    fn hi(&self) -> f64 {
        self.ticks[self.ticks.len() - 1]
    }

    /// The pixel row of `v` in a frame from `top` to `bottom`.
    fn px(&self, v: f64, top: f64, bottom: f64) -> f64 {
        bottom - (v - self.lo()) / (self.hi() - self.lo()) * (bottom - top)
    }

    fn labels(&self) -> Vec<String> {
        let decimals = decimals(self.step);
        self.ticks
            .iter()
            .map(|t| {
                let s = format!("{t:.decimals$}");
                // No "-0".
                if s.trim_start_matches('-')
                    .chars()
                    .all(|c| c == '0' || c == '.')
                {
                    s.trim_start_matches('-').to_string()
                } else {
                    s
                }
            })
            .collect()
    }
}

fn nice_step(raw: f64) -> f64 {
    if !(raw.is_finite() && raw > 0.0) {
        return 1.0;
    }
    let magnitude = 10f64.powf(raw.log10().floor());
    let f = raw / magnitude;
    let nice = if f <= 1.0 {
        1.0
    } else if f <= 2.0 {
        2.0
    } else if f <= 2.5 {
        2.5
    } else if f <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * magnitude
}

/// Decimal places that show `step` exactly.
fn decimals(step: f64) -> usize {
    (0..6)
        .find(|&d| {
            let scaled = step * 10f64.powi(d as i32);
            (scaled - scaled.round()).abs() < 1e-6 * scaled.abs().max(1.0)
        })
        .unwrap_or(6)
}

/// The right-hand column.
struct Legend {
    svg: String,
    y: f64,
}

impl Legend {
    const X: f64 = WIDTH - LEGEND_W + 12.0;
    const CHARS: usize = 25;

    fn new() -> Self {
        Legend {
            svg: String::new(),
            y: FRAME_TOP + 8.0,
        }
    }

    fn line(&mut self, label: &str, colour: &str, dashed: bool, marker: Option<String>) {
        let (x, y) = (Self::X, self.y);
        let dash = if dashed {
            format!(" stroke-dasharray=\"{DASH}\"")
        } else {
            String::new()
        };
        let _ = writeln!(
            self.svg,
            "<line x1=\"{x:.1}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\" stroke=\"{colour}\" stroke-width=\"2\"{dash}/>",
            x + 28.0
        );
        if let Some(m) = marker {
            // The marker was drawn at the origin; move it to the middle of the sample line.
            let _ = writeln!(
                self.svg,
                "<g transform=\"translate({:.1} {y:.1})\">{}</g>",
                x + 14.0,
                m.trim_end()
            );
        }
        self.label(label);
    }

    fn bar(&mut self, label: &str, colour: &str) {
        let _ = writeln!(
            self.svg,
            "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"28\" height=\"10\" fill=\"{colour}\"/>",
            Self::X,
            self.y - 5.0
        );
        self.label(label);
    }

    fn label(&mut self, label: &str) {
        let _ = writeln!(
            self.svg,
            "<text x=\"{:.1}\" y=\"{:.1}\">{}</text>",
            Self::X + 34.0,
            self.y + 4.0,
            escape(&truncate(label, Self::CHARS))
        );
        self.y += 20.0;
    }

    fn note(&mut self, text: &str) {
        let _ = writeln!(
            self.svg,
            "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\" fill=\"#666\">{}</text>",
            Self::X,
            self.y + 4.0,
            escape(&truncate(text, Self::CHARS + 8))
        );
        self.y += 15.0;
    }

    fn gap(&mut self) {
        self.y += 6.0;
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Helpers

fn escape(text: &str) -> String {
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
fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
        cut.push('…');
        cut
    }
}

fn bounds(values: &[f64]) -> Option<(f64, f64)> {
    let mut finite = values.iter().copied().filter(|v| v.is_finite());
    let first = finite.next()?;
    Some(finite.fold((first, first), |(lo, hi), v| (lo.min(v), hi.max(v))))
}

/// Sorted, without repeats.
fn distinct(values: impl Iterator<Item = i64>) -> Vec<i64> {
    let mut v: Vec<i64> = values.collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// In order of appearance, without repeats.
fn distinct_padding(values: impl Iterator<Item = PaddingMode>) -> Vec<PaddingMode> {
    let mut out = Vec::new();
    for p in values {
        if !out.contains(&p) {
            out.push(p);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::efficiency::row::Stats;
    use dept_train::memory::PeakMemory;

    const MIB: u64 = 1024 * 1024;

    fn row(
        shape: &str,
        padding: PaddingMode,
        variant: Variant,
        step: f64,
        mib: Option<u64>,
        inference: Option<f64>,
    ) -> Row {
        Row {
            shape: shape.to_string(),
            padding,
            variant,
            params: if variant == Variant::Floor { 0 } else { 76_800 },
            step_ms: Stats {
                median: step,
                min: step * 0.9,
                max: step * 1.1,
            },
            examples_per_s: 16.0 / (step / 1000.0),
            peak: mib.map(|m| PeakMemory {
                bytes: m * MIB,
                kind: MemoryKind::ProcessRss,
            }),
            inference_samples_per_s: inference,
            inference_ms: None,
        }
    }

    /// A full study on one shape and padding: floor, PT l=100 and DePT at m = 0, 20, …, 80.
    /// Costs grow with `scale`, and so does the share of them that the prompt takes.
    fn study(shape: &str, padding: PaddingMode, scale: f64, inference: bool) -> Vec<Row> {
        let inf = |v: f64| inference.then_some(v / scale);
        let share = 0.3 + 0.05 * scale.ln();
        let mut rows = vec![
            row(
                shape,
                padding,
                Variant::Floor,
                100.0 * (1.0 - 1.1 * share) * scale,
                Some((2000.0 * (1.0 - 1.2 * share) * scale) as u64),
                inf(100.0 / (1.0 - 1.3 * share)),
            ),
            row(
                shape,
                padding,
                Variant::Pt { l: 100 },
                100.0 * scale,
                Some((2000.0 * scale) as u64),
                inf(100.0),
            ),
        ];
        for m in [0, 20, 40, 60, 80] {
            let f = m as f64 / 100.0;
            rows.push(row(
                shape,
                padding,
                Variant::Dept { m, r: 60 - m / 2 },
                100.0 * (1.0 - share * (1.0 - f)) * scale,
                Some((2000.0 * (1.0 - 1.1 * share * (1.0 - f)) * scale) as u64),
                inf(100.0 / (1.0 - 1.2 * share * (1.0 - f))),
            ));
        }
        rows
    }

    fn all_shapes(inference: bool) -> Vec<Row> {
        let mut rows = Vec::new();
        for (shape, scale) in [("t5-small", 1.0), ("t5-base", 3.0), ("t5-large", 9.0)] {
            rows.extend(study(shape, PaddingMode::MaxLength, scale, inference));
            rows.extend(study(shape, PaddingMode::Longest, scale * 0.6, inference));
        }
        rows
    }

    /// Starts with `<svg`, every element closed in order, nothing unescaped, no NaN or infinity.
    fn assert_well_formed(svg: &str) {
        assert!(svg.starts_with("<svg"), "{svg}");
        assert!(svg.trim_end().ends_with("</svg>"));
        // Rust writes non-finite floats as NaN, inf, -inf: no word of the output may be one.
        for word in svg.split(|c: char| !c.is_ascii_alphabetic()) {
            assert!(word != "NaN" && word != "inf", "{word} in output");
        }
        let mut stack: Vec<String> = Vec::new();
        let mut rest = svg;
        while let Some(start) = rest.find('<') {
            // Text between tags holds no raw '>' or unknown entities.
            let text = &rest[..start];
            assert!(!text.contains('>'), "raw > in text {text:?}");
            for (i, _) in text.match_indices('&') {
                let entity = &text[i..];
                assert!(
                    ["&amp;", "&lt;", "&gt;", "&quot;", "&apos;"]
                        .iter()
                        .any(|e| entity.starts_with(e)),
                    "bare & in {text:?}"
                );
            }
            let end = rest[start..].find('>').expect("unclosed tag") + start;
            let tag = &rest[start + 1..end];
            assert!(!tag.contains('<'), "< inside tag {tag:?}");
            assert_eq!(tag.matches('"').count() % 2, 0, "odd quotes in {tag:?}");
            if let Some(name) = tag.strip_prefix('/') {
                assert_eq!(
                    stack.pop().as_deref(),
                    Some(name.trim()),
                    "mismatched close"
                );
            } else if !tag.ends_with('/') {
                let name = tag.split_whitespace().next().unwrap().to_string();
                stack.push(name);
            }
            rest = &rest[end + 1..];
        }
        assert!(stack.is_empty(), "unclosed: {stack:?}");
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn series_are_ratios_to_their_own_pt() {
        let rows = all_shapes(true);
        let series = figure3_series(&rows);
        assert_eq!(series.len(), 6);
        let s = &series[0];
        assert_eq!(
            (s.shape.as_str(), s.padding, s.pt_l),
            ("t5-small", PaddingMode::MaxLength, 100)
        );
        assert_eq!(series[1].padding, PaddingMode::Longest);
        assert_eq!(series[2].shape, "t5-base");
        assert_eq!(series[2].shape_index, 1);
        let ms: Vec<i64> = s.points.iter().map(|p| p.m).collect();
        assert_eq!(ms, [0, 20, 40, 60, 80, 100]);
        let pt = s.points.last().unwrap();
        assert!(pt.is_pt);
        assert_eq!(pt.ratios, [Some(1.0), Some(1.0), Some(1.0)]);

        // DePT m=60 on t5-base longest: ratios of its own numbers to its own group's PT.
        let base_longest = &series[3];
        let find = |v: Variant| {
            rows.iter()
                .find(|r| {
                    r.shape == "t5-base" && r.padding == PaddingMode::Longest && r.variant == v
                })
                .unwrap()
        };
        let (dept, pt) = (
            find(Variant::Dept { m: 60, r: 30 }),
            find(Variant::Pt { l: 100 }),
        );
        let p = base_longest.points.iter().find(|p| p.m == 60).unwrap();
        assert!(close(
            p.ratios[0].unwrap(),
            dept.step_ms.median / pt.step_ms.median
        ));
        assert!(close(
            p.ratios[1].unwrap(),
            dept.peak.unwrap().mib() / pt.peak.unwrap().mib()
        ));
        assert!(close(
            p.ratios[2].unwrap(),
            dept.inference_samples_per_s.unwrap() / pt.inference_samples_per_s.unwrap()
        ));
        let floor = find(Variant::Floor);
        let f = base_longest.floor.unwrap();
        assert!(close(
            f[0].unwrap(),
            floor.step_ms.median / pt.step_ms.median
        ));
    }

    #[test]
    fn groups_without_pt_are_skipped() {
        let mut rows = study("t5-small", PaddingMode::MaxLength, 1.0, true);
        rows.push(row(
            "orphan",
            PaddingMode::MaxLength,
            Variant::Dept { m: 60, r: 30 },
            10.0,
            None,
            None,
        ));
        let series = figure3_series(&rows);
        assert_eq!(series.len(), 1);
        assert_eq!(series[0].shape, "t5-small");
        assert!(!figure3_svg(&rows).contains("orphan"));
    }

    #[test]
    fn pt_point_is_drawn_at_ratio_one() {
        let rows = study("t5-small", PaddingMode::MaxLength, 1.0, true);
        let svg = figure3_svg(&rows);
        assert_well_formed(&svg);
        let series = figure3_series(&rows);
        // The step-time panel's axis from the same ratios as the drawing uses.
        let mut values: Vec<f64> = series[0]
            .points
            .iter()
            .filter_map(|p| p.ratios[0])
            .collect();
        values.extend(series[0].floor.unwrap()[0]);
        let axis = ratio_axis(&values);
        assert!(values.iter().all(|v| (axis.lo()..=axis.hi()).contains(v)));
        let y = axis.px(1.0, FRAME_TOP, FRAME_BOTTOM);
        let frame = Frame::at(0.0);
        // x runs over m in [0, 100] padded by 6% either side; PT sits at l = 100.
        let pad = 0.06 * (100.0 - 0.0);
        let (xmin, xmax) = (0.0 - pad, 100.0 + pad);
        let x_pt = frame.left + (100.0 - xmin) / (xmax - xmin) * (frame.right - frame.left);
        let circle = format!("<circle cx=\"{x_pt:.1}\" cy=\"{y:.1}\"");
        assert!(svg.contains(&circle), "{circle} not in {svg}");
        // 1 is a tick, labelled.
        assert!(axis.ticks.iter().any(|t| close(*t, 1.0)));
    }

    #[test]
    fn figure3_draws_every_group_and_the_floor() {
        let svg = figure3_svg(&all_shapes(true));
        assert_well_formed(&svg);
        // 6 groups × 3 panels.
        assert_eq!(svg.matches("<polyline").count(), 18);
        // Half of them dashed (longest).
        assert_eq!(
            svg.matches(
                "<polyline fill=\"none\" stroke=\"#1f77b4\" stroke-width=\"2\" stroke-dasharray"
            )
            .count(),
            3
        );
        assert!(svg.contains("backbone alone"));
        assert!(svg.contains("t5-large · longest"));
        assert!(svg.contains(">PT</text>"));
        assert!(!svg.contains("not measured"));
    }

    #[test]
    fn missing_measurements_say_not_measured() {
        let rows = all_shapes(false);
        let svg3 = figure3_svg(&rows);
        assert_well_formed(&svg3);
        assert_eq!(svg3.matches("not measured").count(), 1);
        let svg4 = figure4_svg(&rows, 60);
        assert_well_formed(&svg4);
        assert_eq!(svg4.matches("not measured").count(), 1);

        // Nothing at all: still a picture, every panel empty.
        for svg in [figure3_svg(&[]), figure4_svg(&[], 60)] {
            assert_well_formed(&svg);
            assert_eq!(svg.matches("not measured").count(), 3);
        }
    }

    #[test]
    fn partial_studies_draw() {
        // One shape, longest only, no floor, two m values, no memory.
        let rows: Vec<Row> = study("t5-base", PaddingMode::Longest, 2.0, true)
            .into_iter()
            .filter(|r| {
                matches!(
                    r.variant,
                    Variant::Pt { .. } | Variant::Dept { m: 40 | 80, .. }
                )
            })
            .map(|mut r| {
                r.peak = None;
                r
            })
            .collect();
        let svg3 = figure3_svg(&rows);
        assert_well_formed(&svg3);
        assert_eq!(svg3.matches("not measured").count(), 1);
        assert!(!svg3.contains("backbone alone"));
        let svg4 = figure4_svg(&rows, 40);
        assert_well_formed(&svg4);
        assert!(svg4.contains("padding: longest"));
        assert!(!svg4.contains("backbone alone"));
        // Only PT: one point per panel, no line.
        let only_pt: Vec<Row> = rows
            .into_iter()
            .filter(|r| matches!(r.variant, Variant::Pt { .. }))
            .collect();
        let svg = figure3_svg(&only_pt);
        assert_well_formed(&svg);
        assert_eq!(svg.matches("<polyline").count(), 0);
        assert_well_formed(&figure4_svg(&only_pt, 60));
    }

    #[test]
    fn shape_names_are_escaped() {
        let mut rows = study("t5<x>&\"y\"", PaddingMode::MaxLength, 1.0, true);
        rows.extend(study("t5-large", PaddingMode::Longest, 9.0, true));
        for svg in [figure3_svg(&rows), figure4_svg(&rows, 60)] {
            assert_well_formed(&svg);
            assert!(svg.contains("t5&lt;x&gt;&amp;&quot;y&quot;"));
            assert!(!svg.contains("t5<x>"));
        }
    }

    #[test]
    fn figure4_picks_headline_m_else_largest() {
        let rows = all_shapes(true);
        let groups = figure4_groups(&rows, 60);
        let shapes: Vec<&str> = groups.iter().map(|g| g.shape).collect();
        assert_eq!(shapes, ["t5-small", "t5-base", "t5-large"]);
        for g in &groups {
            assert_eq!(g.padding, PaddingMode::MaxLength);
            assert_eq!(g.dept.and_then(dept_m), Some(60));
            assert!(matches!(g.pt.unwrap().variant, Variant::Pt { l: 100 }));
            assert_eq!(g.floor.unwrap().variant, Variant::Floor);
        }
        let fallback = figure4_groups(&rows, 50);
        assert!(fallback.iter().all(|g| g.dept.and_then(dept_m) == Some(80)));
        let svg = figure4_svg(&rows, 50);
        assert_well_formed(&svg);
        assert!(svg.contains("m=80"));

        // The ratio above the DePT bar is DePT ÷ PT of the chosen rows.
        let svg = figure4_svg(&rows, 60);
        assert_well_formed(&svg);
        let g = &groups[2];
        let r = g.dept.unwrap().step_ms.median / g.pt.unwrap().step_ms.median;
        assert!(svg.contains(&format!(">{r:.2}×</text>")));
        assert!(svg.contains("padding: max_length"));
        assert!(svg.contains("DePT m=60"));
    }

    #[test]
    fn figure4_prefers_max_length_per_shape() {
        let mut rows = study("t5-small", PaddingMode::Longest, 1.0, true);
        rows.extend(study("t5-small", PaddingMode::MaxLength, 2.0, true));
        rows.extend(study("t5-base", PaddingMode::Longest, 3.0, true));
        let groups = figure4_groups(&rows, 60);
        assert_eq!(groups[0].padding, PaddingMode::MaxLength);
        assert_eq!(groups[0].pt.unwrap().padding, PaddingMode::MaxLength);
        assert_eq!(groups[1].padding, PaddingMode::Longest);
        let svg = figure4_svg(&rows, 60);
        assert_well_formed(&svg);
        assert!(svg.contains("t5-small max_length, t5-base longest"));
    }

    #[test]
    fn ticks_are_nice() {
        let a = Axis::nice(0.43, 1.02, 5);
        assert_eq!(a.labels(), ["0.4", "0.6", "0.8", "1.0", "1.2"]);
        let a = Axis::nice(0.0, 1234.0, 5);
        assert_eq!(a.labels(), ["0", "250", "500", "750", "1000", "1250"]);
        let a = Axis::nice(0.9, 1.2, 5);
        assert!(close(a.step, 0.1));
        assert_eq!(a.labels(), ["0.9", "1.0", "1.1", "1.2"]);
        assert_eq!(Axis::nice(0.0, 0.7, 5).labels()[1], "0.2");
        let a = Axis::nice(0.0, 3.0, 5);
        assert_eq!(a.labels(), ["0", "1", "2", "3"]);
        let a = Axis::nice(0.0, 0.24, 5);
        assert_eq!(a.labels(), ["0.00", "0.05", "0.10", "0.15", "0.20", "0.25"]);
        // Degenerate range still spans something.
        let a = Axis::nice(5.0, 5.0, 5);
        assert!(a.hi() > a.lo());
    }

    #[test]
    fn output_is_deterministic() {
        let rows = all_shapes(true);
        assert_eq!(figure3_svg(&rows), figure3_svg(&rows));
        assert_eq!(figure4_svg(&rows, 60), figure4_svg(&rows, 60));
    }
}
