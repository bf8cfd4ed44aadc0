//! Small SVG charts for the project's figures, with no plotting library and no font files.
//!
//! A [`Figure`] is a [`Page`] of side-by-side [`Panel`]s, with an optional [`Title`] above them and a legend column
//! ([`LegendEntry`]) beside them. A panel has a y [`Axis`] with nice ticks, an optional [`XAxis`], and [`Mark`]s
//! drawn in data coordinates: a [`Line`] (a polyline, markers, or both; solid or dashed), a horizontal reference
//! [`Rule`], or grouped [`Bar`]s with an [`Annotation`] over one bar of a group. Figure code says what to show;
//! [`Figure::to_svg`] owns every pixel and escapes every text, so callers pass plain strings.
//!
//! ```
//! use dept_chart::{Axis, Figure, Line, Mark, Page, Panel, Stroke, XAxis};
//!
//! let page = Page {
//!     width: 480.0, height: 300.0, font_size: 12.0, legend_width: 0.0, panels: 1,
//!     frame_top: 40.0, frame_bottom: 260.0, inset_left: 60.0, inset_right: 20.0,
//! };
//! let loss = vec![(1.0, 2.3), (2.0, 1.7), (3.0, 1.2)];
//! let panel = Panel {
//!     title: "training loss".to_string(),
//!     y: Some(Axis::nice(1.2, 2.3, 5)),
//!     x: Some(XAxis::from_axis(&Axis::nice(1.0, 3.0, 5), "step")),
//!     marks: vec![Mark::Line(Line { points: loss, stroke: Some(Stroke::solid("#1f77b4", 1.5)), marker: None })],
//!     ..Panel::default()
//! };
//! let svg = Figure { page, title: None, panels: vec![panel], legend: Vec::new() }.to_svg();
//! assert!(svg.starts_with("<svg") && svg.contains("<polyline"));
//! ```
//!
//! Why not `plotters`: its SVG backend writes integer pixel positions and dashes as separate segments, and its
//! legend sits inside the plot; the figures here want a legend column, bold ticks, bar annotations and reference
//! lines with a coloured tab, which would have been per-figure drawing code again.

mod axis;
mod figure;
mod render;
mod svg;

pub use axis::{bounds, Axis, Tick};
pub use figure::{
    Annotation, Bar, BarGroup, Figure, Frame, LegendEntry, Line, Mark, Marker, Page, Panel, Rule,
    Stroke, Title, XAxis,
};
pub use svg::{escape, truncate};

#[cfg(test)]
mod tests;
