//! The rendered SVG: what each mark writes, where, and that the document stays well formed.

use crate::*;

const PAGE: Page = Page {
    width: 700.0,
    height: 300.0,
    font_size: 11.0,
    legend_width: 100.0,
    panels: 2,
    frame_top: 60.0,
    frame_bottom: 260.0,
    inset_left: 50.0,
    inset_right: 10.0,
};

/// Every element closed in order, quotes paired, no raw `<`/`>` or bare `&` in text, no NaN or infinity.
fn assert_well_formed(svg: &str) {
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    for word in svg.split(|c: char| !c.is_ascii_alphabetic()) {
        assert!(word != "NaN" && word != "inf", "{word} in {svg}");
    }
    let mut open: Vec<&str> = Vec::new();
    let mut rest = svg;
    while let Some(start) = rest.find('<') {
        let text = &rest[..start];
        assert!(!text.contains('>'), "raw > in {text:?}");
        assert_eq!(
            text.matches('&').count(),
            text.matches(';').count(),
            "bare & in {text:?}"
        );
        let end = rest[start..].find('>').expect("unclosed tag") + start;
        let tag = &rest[start + 1..end];
        assert_eq!(tag.matches('"').count() % 2, 0, "odd quotes in {tag:?}");
        if let Some(name) = tag.strip_prefix('/') {
            assert_eq!(open.pop(), Some(name), "mismatched close in {svg}");
        } else if !tag.ends_with('/') {
            open.push(tag.split_whitespace().next().unwrap());
        }
        rest = &rest[end + 1..];
    }
    assert!(open.is_empty(), "unclosed {open:?}");
}

fn line_panel(line: Line) -> Panel {
    Panel {
        title: "line".to_string(),
        y: Some(Axis::nice(0.0, 10.0, 5)),
        x: Some(XAxis::from_axis(&Axis::nice(0.0, 100.0, 5), "m")),
        marks: vec![Mark::Line(line)],
        ..Panel::default()
    }
}

fn figure(panels: Vec<Panel>, legend: Vec<LegendEntry>) -> String {
    let svg = Figure {
        page: PAGE,
        title: Some(Title {
            text: "a <b> & \"c\"".to_string(),
            subtitle: "sub".to_string(),
        }),
        panels,
        legend,
    }
    .to_svg();
    assert_well_formed(&svg);
    svg
}

#[test]
fn frames_split_the_page_left_of_the_legend() {
    assert_eq!(PAGE.panel_width(), 300.0);
    let f = PAGE.frame(1);
    assert_eq!(
        (f.left, f.right, f.top, f.bottom),
        (350.0, 590.0, 60.0, 260.0)
    );
    assert_eq!(PAGE.frame_at(300.0), f);
}

#[test]
fn lines_map_data_onto_the_frame() {
    let svg = figure(
        vec![line_panel(Line {
            points: vec![(0.0, 0.0), (50.0, 5.0), (f64::NAN, 1.0), (100.0, 10.0)],
            stroke: Some(Stroke::dashed("#123456", 2.0)),
            marker: Some(Marker {
                colour: "#123456".to_string(),
                radius: 3.5,
                hollow: true,
            }),
        })],
        Vec::new(),
    );
    // Frame 0 runs from x 50 to 290, y 260 (0) to 60 (10); the NaN point is dropped.
    assert!(svg.contains(
        "<polyline fill=\"none\" stroke=\"#123456\" stroke-width=\"2\" stroke-dasharray=\"6 4\" \
         points=\"50.0,260.0 170.0,160.0 290.0,60.0\"/>"
    ));
    assert!(svg
        .contains("<circle cx=\"170.0\" cy=\"160.0\" r=\"3.5\" fill=\"white\" stroke=\"#123456\""));
    assert_eq!(svg.matches("<circle").count(), 3);
    // Nice y ticks become grid lines and labels; the title is escaped.
    assert!(svg.contains(">10</text>") && svg.contains(">m</text>"));
    assert!(svg.contains(">a &lt;b&gt; &amp; &quot;c&quot;</text>"));
}

#[test]
fn a_line_without_stroke_is_markers_only_and_without_x_axis_nothing() {
    let markers_only = line_panel(Line {
        points: vec![(10.0, 1.0)],
        stroke: None,
        marker: Some(Marker {
            colour: "red".to_string(),
            radius: 2.0,
            hollow: false,
        }),
    });
    let no_x = Panel {
        x: None,
        ..markers_only.clone()
    };
    let svg = figure(vec![markers_only, no_x], Vec::new());
    assert_eq!(svg.matches("<polyline").count(), 0);
    assert_eq!(svg.matches("<circle").count(), 1);
    assert!(svg.contains("fill=\"red\" stroke=\"red\""));
}

#[test]
fn empty_panels_say_so_and_draw_nothing_else() {
    let empty = Panel {
        title: "t".to_string(),
        empty_text: "not measured".to_string(),
        marks: vec![Mark::Rule(Rule {
            y: 1.0,
            stroke: Stroke::solid("#000", 1.0),
            tab: None,
        })],
        ..Panel::default()
    };
    let svg = figure(vec![empty.clone(), empty], Vec::new());
    assert_eq!(svg.matches("not measured").count(), 2);
    assert_eq!(svg.matches("<line").count(), 0);
}

#[test]
fn rules_span_the_frame_with_a_tab() {
    let mut panel = line_panel(Line {
        points: Vec::new(),
        stroke: None,
        marker: None,
    });
    panel.marks = vec![Mark::Rule(Rule {
        y: 5.0,
        stroke: Stroke::dashed("#888", 1.2),
        tab: Some("#f00".to_string()),
    })];
    let svg = figure(vec![panel], Vec::new());
    assert!(svg.contains(
        "<line x1=\"50.0\" y1=\"160.0\" x2=\"290.0\" y2=\"160.0\" stroke=\"#888\" stroke-width=\"1.2\" \
         stroke-dasharray=\"6 4\"/>"
    ));
    assert!(svg.contains("<line x1=\"50.0\" y1=\"160.0\" x2=\"60.0\" y2=\"160.0\" stroke=\"#f00\" stroke-width=\"3\"/>"));
}

#[test]
fn bars_stand_on_the_axis_with_the_annotation_over_the_tallest() {
    let group = |label: &str, values: [Option<f64>; 2]| BarGroup {
        label: label.to_string(),
        note: "note".to_string(),
        bars: values
            .iter()
            .map(|&value| Bar {
                value,
                fill: "#abc".to_string(),
            })
            .collect(),
        annotation: Some(Annotation {
            text: "0.50×".to_string(),
            bar: 1,
            colour: "#00f".to_string(),
        }),
    };
    let panel = Panel {
        y: Some(Axis::nice(0.0, 10.0, 5)),
        marks: vec![Mark::Bars(vec![
            group(
                "a-very-long-shape-name-that-will-not-fit",
                [Some(10.0), Some(5.0)],
            ),
            group("b", [Some(4.0), None]),
        ])],
        ..Panel::default()
    };
    let svg = figure(vec![panel], Vec::new());
    // Two groups of 120 px: bars 36 px wide centred at 110, the first one full height; labels cut at 17 characters.
    assert!(
        svg.contains("<rect x=\"75.0\" y=\"60.0\" width=\"34.0\" height=\"200.0\" fill=\"#abc\"/>")
    );
    // Over the second bar, 4 px above the tallest bar of its group.
    assert!(svg.contains("<text x=\"128.0\" y=\"56.0\" text-anchor=\"middle\" font-size=\"10\" font-weight=\"bold\" fill=\"#00f\">0.50×</text>"));
    assert_eq!(svg.matches(">n/a</text>").count(), 1);
    assert!(svg.contains(">a-very-long-shap…</text>"));
    assert_eq!(svg.matches(">note</text>").count(), 2);
}

#[test]
fn legend_entries_stack_in_the_right_column() {
    let legend = vec![
        LegendEntry::Line {
            label: "series".to_string(),
            stroke: Stroke::dashed("#111", 1.2),
            marker: None,
        },
        LegendEntry::Swatch {
            label: "bar <x>".to_string(),
            fill: "#222".to_string(),
        },
        LegendEntry::Gap,
        LegendEntry::Note("a note that is far too long for this narrow column".to_string()),
    ];
    let svg = figure(Vec::new(), legend);
    // Column at x 612; entries 20 px apart from frame_top + 8, the gap 6 px; notes cut at 17 characters.
    assert!(svg.contains("<line x1=\"612.0\" y1=\"68.0\" x2=\"640.0\" y2=\"68.0\" stroke=\"#111\" stroke-width=\"2\" stroke-dasharray=\"6 4\"/>"));
    assert!(
        svg.contains("<rect x=\"612.0\" y=\"83.0\" width=\"28.0\" height=\"10.0\" fill=\"#222\"/>")
    );
    assert!(svg.contains(">bar &lt;x&gt;</text>"));
    assert!(svg.contains(
        "<text x=\"612.0\" y=\"118.0\" font-size=\"10\" fill=\"#666\">a note that is f…</text>"
    ));

    let no_column = Figure {
        page: Page {
            legend_width: 0.0,
            ..PAGE
        },
        title: None,
        panels: Vec::new(),
        legend: vec![LegendEntry::Note("hidden".to_string())],
    }
    .to_svg();
    assert!(!no_column.contains("hidden"));
}

#[test]
fn bounds_cover_the_finite_values_only() {
    assert_eq!(
        bounds([3.0, f64::NAN, -1.0, f64::INFINITY, 2.0]),
        Some((-1.0, 3.0))
    );
    assert_eq!(bounds([f64::NAN]), None);
    assert_eq!(bounds(std::iter::empty()), None);
}
