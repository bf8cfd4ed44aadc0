//! The efficiency study's figures. This file says what they show; `dept-chart` places it on the page.
//!
//! - [`figure3_svg`]: cost against the number of prompt tokens m at PT's parameter budget, relative to PT (the
//!   paper's Figure 3): one line per shape and padding, with the backbone alone as a reference.
//! - [`figure4_svg`]: PT against DePT against the backbone alone, shape by shape (the paper's Figure 4: the savings
//!   grow with the model).

use dept_chart::{
    bounds, Annotation, Axis, Bar, BarGroup, Figure, LegendEntry, Line, Mark, Marker, Page, Panel,
    Rule, Stroke, Tick, Title, XAxis,
};
use dept_train::memory::MemoryKind;

use super::row::{PaddingMode, Row, Variant};

const FRAME_TOP: f64 = 82.0;
const FRAME_BOTTOM: f64 = 340.0;
/// Both figures' page: three panels, and the legend's column on the right.
const PAGE: Page = Page {
    width: 1200.0,
    height: 400.0,
    font_size: 11.0,
    legend_width: 190.0,
    panels: METRICS,
    frame_top: FRAME_TOP,
    frame_bottom: FRAME_BOTTOM,
    inset_left: 64.0,
    inset_right: 14.0,
};
const GREY: &str = "#888888";
const SHAPE_COLOURS: [&str; 8] = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22",
];
const PT_COLOUR: &str = "#d62728";
const DEPT_COLOUR: &str = "#1f77b4";
const FLOOR_COLOUR: &str = "#bbbbbb";
const NOT_MEASURED: &str = "not measured";

/// The three measured costs, in the order of the panels.
const METRICS: usize = 3;

/// Panel `x0`'s plotting area on the figures' page (the tests place expected marks with it).
#[cfg(test)]
struct Frame;

#[cfg(test)]
impl Frame {
    fn at(x0: f64) -> dept_chart::Frame {
        PAGE.frame_at(x0)
    }
}

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

/// A panel with nothing to draw.
fn not_measured(title: &str, subtitle: &str) -> Panel {
    Panel {
        title: title.to_string(),
        subtitle: subtitle.to_string(),
        empty_text: NOT_MEASURED.to_string(),
        ..Panel::default()
    }
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

/// Solid for max_length, dashed for longest.
fn series_stroke(s: &Series) -> Stroke {
    let colour = shape_colour(s.shape_index);
    match s.padding {
        PaddingMode::MaxLength => Stroke::solid(colour, 2.0),
        PaddingMode::Longest => Stroke::dashed(colour, 2.0),
    }
}

/// Filled for max_length, hollow for longest.
fn series_marker(s: &Series) -> Marker {
    Marker {
        colour: shape_colour(s.shape_index).to_string(),
        radius: 3.5,
        hollow: s.padding == PaddingMode::Longest,
    }
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

/// "PT l=100" when every group's PT has the same l, else "PT".
fn pt_name(ls: &[i64]) -> String {
    match ls {
        [l] => format!("PT l={l}"),
        _ => "PT".to_string(),
    }
}

/// Cost against prompt tokens m at PT's parameter budget, relative to PT (the paper's Figure 3): step time, peak
/// memory and inference throughput, one line per shape and padding (solid: max_length, dashed: longest), PT at m = l
/// and ratio 1, the backbone alone as a dashed grey reference.
pub fn figure3_svg(rows: &[Row]) -> String {
    let series = figure3_series(rows);
    let pt_ls = distinct(series.iter().map(|s| s.pt_l));
    let pt_text = pt_name(&pt_ls);
    let x = figure3_x_axis(&series, &pt_ls, &pt_text);
    let memory = match memory_kind(rows) {
        Some(kind) => format!("lower is better · {kind}"),
        None => "lower is better".to_string(),
    };
    let titles = [
        ("training step time ÷ PT", "lower is better".to_string()),
        ("peak memory ÷ PT", memory),
        ("inference samples/s ÷ PT", "higher is better".to_string()),
    ];
    let panels = titles
        .iter()
        .enumerate()
        .map(|(k, (title, subtitle))| figure3_panel(&series, k, title, subtitle, &x))
        .collect();
    let title = Title {
        text: "Cost against prompt tokens m at PT's parameter budget (cf. DePT Figure 3)"
            .to_string(),
        subtitle: format!(
            "Each line: one shape and padding, relative to its own {pt_text} run (= 1); \
             DePT's rank r is solved so that its trainable parameters match PT's."
        ),
    };
    Figure {
        page: PAGE,
        title: Some(title),
        panels,
        legend: figure3_legend(&series, &pt_text),
    }
    .to_svg()
}

/// One x scale for all three panels: DePT's m values and PT at its l (in bold), m labels thinned so that they keep
/// 24 px apart and clear of PT's.
fn figure3_x_axis(series: &[Series], pt_ls: &[i64], pt_text: &str) -> XAxis {
    let xs: Vec<f64> = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.m as f64))
        .collect();
    let (lo, hi) = bounds(xs.iter().copied()).unwrap_or((0.0, 100.0));
    let (lo, hi) = if hi - lo < 1.0 {
        (lo - 10.0, hi + 10.0)
    } else {
        let pad = 0.06 * (hi - lo);
        (lo - pad, hi + pad)
    };
    let frame = PAGE.frame(0);
    let min_gap = 24.0 / (frame.right - frame.left) * (hi - lo);
    let mut ticks: Vec<Tick> = pt_ls
        .iter()
        .map(|&l| Tick {
            bold: true,
            ..Tick::new(
                l as f64,
                if pt_ls.len() == 1 {
                    "PT".to_string()
                } else {
                    format!("PT {l}")
                },
            )
        })
        .collect();
    let dept_ms = distinct(
        series
            .iter()
            .flat_map(|s| s.points.iter().filter(|p| !p.is_pt).map(|p| p.m)),
    );
    let mut last: Option<i64> = None;
    for m in dept_ms {
        let clear_of_pt = pt_ls.iter().all(|&l| ((l - m) as f64).abs() >= min_gap);
        if clear_of_pt && last.is_none_or(|lm| (m - lm) as f64 >= min_gap) {
            ticks.push(Tick::new(m as f64, m.to_string()));
            last = Some(m);
        }
    }
    XAxis {
        lo,
        hi,
        ticks,
        label: format!("prompt tokens m ({pt_text} at m = l)"),
    }
}

/// Panel `k` of Figure 3: each group's floor as a dashed grey rule with a tab of the shape's colour, then its line.
fn figure3_panel(series: &[Series], k: usize, title: &str, subtitle: &str, x: &XAxis) -> Panel {
    let mut values: Vec<f64> = series
        .iter()
        .flat_map(|s| s.points.iter().filter_map(|p| p.ratios[k]))
        .collect();
    if values.is_empty() {
        return not_measured(title, subtitle);
    }
    values.extend(series.iter().filter_map(|s| s.floor.and_then(|f| f[k])));
    let floors = series.iter().filter_map(|s| {
        Some(Mark::Rule(Rule {
            y: s.floor?[k]?,
            stroke: Stroke::dashed(GREY, 1.2),
            tab: Some(shape_colour(s.shape_index).to_string()),
        }))
    });
    let lines = series.iter().map(|s| {
        let points: Vec<(f64, f64)> = s
            .points
            .iter()
            .filter_map(|p| Some((p.m as f64, p.ratios[k]?)))
            .collect();
        Mark::Line(Line {
            stroke: (points.len() >= 2).then(|| series_stroke(s)),
            marker: Some(series_marker(s)),
            points,
        })
    });
    Panel {
        title: title.to_string(),
        subtitle: subtitle.to_string(),
        y: Some(ratio_axis(&values)),
        y_label: "ratio to PT".to_string(),
        x: Some(x.clone()),
        marks: floors.chain(lines).collect(),
        empty_text: String::new(),
    }
}

fn figure3_legend(series: &[Series], pt_text: &str) -> Vec<LegendEntry> {
    let mut legend = Vec::new();
    if series.is_empty() {
        legend.push(LegendEntry::Note(
            "no PT row to compare against".to_string(),
        ));
    }
    legend.extend(series.iter().map(|s| LegendEntry::Line {
        label: format!("{} · {}", s.shape, s.padding.as_str()),
        stroke: series_stroke(s),
        marker: Some(series_marker(s)),
    }));
    if series.iter().any(|s| s.floor.is_some()) {
        legend.push(LegendEntry::Line {
            label: "backbone alone".to_string(),
            stroke: Stroke::dashed(GREY, 2.0),
            marker: None,
        });
    }
    legend.push(LegendEntry::Gap);
    for note in [
        "solid: max_length padding".to_string(),
        "dashed: longest padding".to_string(),
        format!("{pt_text} sits at 1"),
    ] {
        legend.push(LegendEntry::Note(note));
    }
    legend
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

/// Figure 4's groups and what its texts need to know about them.
struct Figure4<'a> {
    groups: Vec<ShapeBars<'a>>,
    headline_m: i64,
    with_floor: bool,
    /// The m of every chosen DePT row.
    chosen_ms: Vec<i64>,
    paddings: Vec<PaddingMode>,
    pt_text: String,
}

/// PT against DePT against the backbone alone, shape by shape (the paper's Figure 4): (a) training step time in ms
/// with DePT÷PT above the DePT bar, (b) peak memory in MiB, (c) inference samples/s. DePT is the row with
/// `m == headline_m`, else the one with the largest m; each shape uses its max_length rows when it has them.
pub fn figure4_svg(rows: &[Row], headline_m: i64) -> String {
    let groups = figure4_groups(rows, headline_m);
    let pt_ls = distinct(groups.iter().filter_map(|g| match g.pt?.variant {
        Variant::Pt { l } => Some(l),
        _ => None,
    }));
    let fig = Figure4 {
        with_floor: groups.iter().any(|g| g.floor.is_some()),
        chosen_ms: distinct(groups.iter().filter_map(|g| dept_m(g.dept?))),
        paddings: distinct_padding(groups.iter().map(|g| g.padding)),
        pt_text: pt_name(&pt_ls),
        groups,
        headline_m,
    };
    let memory = match memory_kind(rows) {
        Some(kind) => format!("MiB ({kind}), lower is better"),
        None => "MiB, lower is better".to_string(),
    };
    let titles = [
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
    let panels = titles
        .iter()
        .enumerate()
        .map(|(k, (title, subtitle, unit))| fig.panel(k, title, subtitle, unit))
        .collect();
    Figure {
        page: PAGE,
        title: Some(fig.title()),
        panels,
        legend: fig.legend(),
    }
    .to_svg()
}

impl Figure4<'_> {
    /// "DePT m=60", or how the m was chosen when the shapes differ.
    fn dept_text(&self) -> String {
        let m = self.headline_m;
        match self.chosen_ms.as_slice() {
            [chosen] => format!("DePT m={chosen}"),
            [] => format!("DePT m={m}"),
            _ => format!("DePT m={m} (else largest m)"),
        }
    }

    fn title(&self) -> Title {
        let padding = match self.paddings.as_slice() {
            [p] => p.as_str().to_string(),
            _ => self
                .groups
                .iter()
                .map(|g| format!("{} {}", g.shape, g.padding.as_str()))
                .collect::<Vec<_>>()
                .join(", "),
        };
        let floor = if self.with_floor {
            " vs the backbone alone"
        } else {
            ""
        };
        Title {
            text: "Savings across model sizes at the same trainable parameters (cf. DePT Figure 4)"
                .to_string(),
            subtitle: format!(
                "{} vs {}{floor} · padding: {padding}",
                self.pt_text,
                self.dept_text()
            ),
        }
    }

    /// Panel `k`: a group of bars per shape on an axis from 0 with headroom for the ratio above the DePT bar.
    fn panel(&self, k: usize, title: &str, subtitle: &str, unit: &str) -> Panel {
        let values: Vec<f64> = self
            .groups
            .iter()
            .flat_map(|g| [g.pt, g.dept, g.floor])
            .filter_map(|r| metric(r?, k))
            .collect();
        let Some((_, hi)) = bounds(values.iter().copied()) else {
            return not_measured(title, subtitle);
        };
        Panel {
            title: title.to_string(),
            subtitle: subtitle.to_string(),
            y: Some(Axis::nice(0.0, if hi > 0.0 { hi * 1.1 } else { 1.0 }, 5)),
            y_label: unit.to_string(),
            x: None,
            marks: vec![Mark::Bars(
                self.groups.iter().map(|g| self.bars(g, k)).collect(),
            )],
            empty_text: String::new(),
        }
    }

    /// PT, DePT and (when any shape has one) the floor; DePT ÷ PT over DePT's bar; under the shape, DePT's m when
    /// it is not the headline one and the padding when shapes differ in it.
    fn bars(&self, g: &ShapeBars, k: usize) -> BarGroup {
        let slots = if self.with_floor { 3 } else { 2 };
        let bars = [
            (g.pt, PT_COLOUR),
            (g.dept, DEPT_COLOUR),
            (g.floor, FLOOR_COLOUR),
        ]
        .into_iter()
        .take(slots)
        .map(|(row, colour)| Bar {
            value: row.and_then(|r| metric(r, k)),
            fill: colour.to_string(),
        })
        .collect();
        let annotation = ratio(
            g.dept.and_then(|r| metric(r, k)),
            g.pt.and_then(|r| metric(r, k)),
        )
        .map(|r| Annotation {
            text: format!("{r:.2}×"),
            bar: 1,
            colour: DEPT_COLOUR.to_string(),
        });
        let mut notes: Vec<String> = Vec::new();
        if let Some(m) = g.dept.and_then(dept_m) {
            if self.chosen_ms.len() > 1 && m != self.headline_m {
                notes.push(format!("m={m}"));
            }
        }
        if self.paddings.len() > 1 {
            notes.push(g.padding.as_str().to_string());
        }
        BarGroup {
            label: g.shape.to_string(),
            note: notes.join(" · "),
            bars,
            annotation,
        }
    }

    fn legend(&self) -> Vec<LegendEntry> {
        let swatch = |label: String, fill: &str| LegendEntry::Swatch {
            label,
            fill: fill.to_string(),
        };
        let dept = match self.chosen_ms.as_slice() {
            [_] | [] => self.dept_text(),
            _ => format!("DePT m={} or largest", self.headline_m),
        };
        let mut legend = vec![
            swatch(self.pt_text.clone(), PT_COLOUR),
            swatch(dept, DEPT_COLOUR),
        ];
        if self.with_floor {
            legend.push(swatch("backbone alone".to_string(), FLOOR_COLOUR));
        }
        legend.push(LegendEntry::Gap);
        legend.push(LegendEntry::Note("above DePT bars: DePT ÷ PT".to_string()));
        let fell_back = self.groups.iter().any(|g| {
            g.dept
                .and_then(dept_m)
                .is_some_and(|m| m != self.headline_m)
        });
        if fell_back {
            legend.push(LegendEntry::Note(format!(
                "no m={} row: largest m",
                self.headline_m
            )));
        }
        legend
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Helpers

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
