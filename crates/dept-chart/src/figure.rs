//! What a figure shows, in data coordinates; [`Figure::to_svg`](crate::Figure::to_svg) places it on the page.

use crate::axis::{Axis, Tick};

/// The page: its size and font, and where each panel's plotting area sits.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Page {
    pub width: f64,
    pub height: f64,
    pub font_size: f64,
    /// The legend's column on the right (0 for none).
    pub legend_width: f64,
    /// Panels side by side, each `(width - legend_width) / panels` wide.
    pub panels: usize,
    /// Top and bottom edge of every plotting area (room above for the titles, below for the x labels).
    pub frame_top: f64,
    pub frame_bottom: f64,
    /// Room inside each panel's slot left of its plotting area (the y labels) and right of it.
    pub inset_left: f64,
    pub inset_right: f64,
}

/// A plotting area in pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Frame {
    pub left: f64,
    pub right: f64,
    pub top: f64,
    pub bottom: f64,
}

impl Page {
    pub fn panel_width(&self) -> f64 {
        (self.width - self.legend_width) / self.panels.max(1) as f64
    }

    /// The plotting area of the panel whose slot starts at `x0`.
    pub fn frame_at(&self, x0: f64) -> Frame {
        Frame {
            left: x0 + self.inset_left,
            right: x0 + self.panel_width() - self.inset_right,
            top: self.frame_top,
            bottom: self.frame_bottom,
        }
    }

    /// The plotting area of panel `k` (from 0, left to right).
    pub fn frame(&self, k: usize) -> Frame {
        self.frame_at(k as f64 * self.panel_width())
    }
}

impl Frame {
    pub fn centre_x(&self) -> f64 {
        (self.left + self.right) / 2.0
    }

    /// The pixel column of `x` on `axis`.
    pub fn x_px(&self, x: f64, axis: &XAxis) -> f64 {
        self.left + (x - axis.lo) / (axis.hi - axis.lo) * (self.right - self.left)
    }
}

/// A page of panels with an optional title above them and a legend column beside them.
#[derive(Debug, Clone, PartialEq)]
pub struct Figure {
    pub page: Page,
    pub title: Option<Title>,
    pub panels: Vec<Panel>,
    pub legend: Vec<LegendEntry>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Title {
    pub text: String,
    pub subtitle: String,
}

/// One panel: titles, axes and what is drawn on them, in the order given.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Panel {
    pub title: String,
    /// Under the title, smaller (units, which way is better); empty for none.
    pub subtitle: String,
    /// `None`: nothing to plot; the panel shows `empty_text` instead.
    pub y: Option<Axis>,
    pub y_label: String,
    /// Needed by [`Mark::Line`]; bar panels label their groups instead.
    pub x: Option<XAxis>,
    pub marks: Vec<Mark>,
    pub empty_text: String,
}

/// A linear x axis from `lo` to `hi` with the given labelled ticks.
#[derive(Debug, Clone, PartialEq)]
pub struct XAxis {
    pub lo: f64,
    pub hi: f64,
    pub ticks: Vec<Tick>,
    pub label: String,
}

impl XAxis {
    /// Over `axis`'s range with its ticks.
    pub fn from_axis(axis: &Axis, label: impl Into<String>) -> Self {
        XAxis {
            lo: axis.lo(),
            hi: axis.hi(),
            ticks: axis.tick_marks(),
            label: label.into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Mark {
    Line(Line),
    /// A horizontal reference line across the panel.
    Rule(Rule),
    /// Bars side by side per group, the groups spread evenly over the panel's width.
    Bars(Vec<BarGroup>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Stroke {
    pub colour: String,
    pub width: f64,
    pub dashed: bool,
}

impl Stroke {
    pub fn solid(colour: &str, width: f64) -> Self {
        Stroke {
            colour: colour.to_string(),
            width,
            dashed: false,
        }
    }

    pub fn dashed(colour: &str, width: f64) -> Self {
        Stroke {
            dashed: true,
            ..Stroke::solid(colour, width)
        }
    }
}

/// A round marker; hollow ones are white inside.
#[derive(Debug, Clone, PartialEq)]
pub struct Marker {
    pub colour: String,
    pub radius: f64,
    pub hollow: bool,
}

/// Points joined by `stroke` (when given, and there is at least one point) and each drawn as `marker`.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    pub points: Vec<(f64, f64)>,
    pub stroke: Option<Stroke>,
    pub marker: Option<Marker>,
}

/// A horizontal line at `y`, with an optional short solid tab of another colour at its left end (to say whose it is).
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub y: f64,
    pub stroke: Stroke,
    pub tab: Option<String>,
}

/// One group of bars with its label under the axis and an optional smaller note under that.
#[derive(Debug, Clone, PartialEq)]
pub struct BarGroup {
    pub label: String,
    pub note: String,
    pub bars: Vec<Bar>,
    pub annotation: Option<Annotation>,
}

/// A bar; `None` is written "n/a" at its foot.
#[derive(Debug, Clone, PartialEq)]
pub struct Bar {
    pub value: Option<f64>,
    pub fill: String,
}

/// Bold text centred over bar `bar` of its group, above the group's tallest bar so that no bar covers it.
#[derive(Debug, Clone, PartialEq)]
pub struct Annotation {
    pub text: String,
    pub bar: usize,
    pub colour: String,
}

/// The legend column, top to bottom.
#[derive(Debug, Clone, PartialEq)]
pub enum LegendEntry {
    Line {
        label: String,
        stroke: Stroke,
        marker: Option<Marker>,
    },
    Swatch {
        label: String,
        fill: String,
    },
    Note(String),
    Gap,
}
