//! Chart pictures for shift reports and tickets: a [`Plot`] as SVG or PNG, drawn by plotters
//! with an embedded font (DejaVu Sans Mono, `tui/assets`), so no system font is needed.

use std::path::{Path, PathBuf};
use std::sync::Once;

use anyhow::Context;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::{FontStyle, register_font};

use super::plot::{Plot, tick, with_unit};

/// The picture's size in pixels.
pub const WIDTH: u32 = 1200;
pub const HEIGHT: u32 = 600;

static FONT: &[u8] = include_bytes!("../../assets/DejaVuSansMono.ttf");

const PALETTE: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(23, 190, 207),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
];

fn fonts() {
    static ONCE: Once = Once::new();
    // The font is compiled in: it parses, or the build's own test fails.
    ONCE.call_once(|| {
        let _ = register_font("sans-serif", FontStyle::Normal, FONT);
    });
}

/// A picture's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Svg,
    Png,
}

impl Format {
    /// The format a file name asks for by its extension.
    pub fn of_path(path: &Path) -> Option<Format> {
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "svg" => Some(Format::Svg),
            "png" => Some(Format::Png),
            _ => None,
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            Format::Svg => "svg",
            Format::Png => "png",
        }
    }
}

fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    plot: &Plot,
    node: &str,
) -> anyhow::Result<()>
where
    DB::ErrorType: 'static,
{
    let failed = |e: DrawingAreaErrorKind<DB::ErrorType>| anyhow::anyhow!("drawing the chart: {e}");
    root.fill(&WHITE).map_err(failed)?;
    let unit = plot.unit;
    let caption = if unit.is_empty() {
        format!("{node} · {}", plot.title)
    } else {
        format!("{node} · {} ({unit})", plot.title)
    };
    let span = plot.to - plot.from;
    let mut chart = ChartBuilder::on(root)
        .caption(caption, ("sans-serif", 20))
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(96)
        .build_cartesian_2d(plot.from..plot.to.max(plot.from + 1), 0.0..plot.top())
        .map_err(failed)?;
    let x_label = |t: &i64| tick(*t, span);
    let y_label = |v: &f64| with_unit(*v, unit);
    chart
        .configure_mesh()
        .x_labels(7)
        .y_labels(6)
        .x_label_formatter(&x_label)
        .y_label_formatter(&y_label)
        .x_desc("UTC")
        .label_style(("sans-serif", 14))
        .draw()
        .map_err(failed)?;
    for (index, (label, points)) in plot.lines.iter().enumerate() {
        let color = PALETTE[index % PALETTE.len()];
        chart
            .draw_series(LineSeries::new(
                points.iter().copied(),
                color.stroke_width(2),
            ))
            .map_err(failed)?
            .label(label.clone())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
            });
    }
    for (label, value) in &plot.thresholds {
        let color = if label.starts_with("critical") {
            RED
        } else {
            RGBColor(255, 140, 0)
        };
        chart
            .draw_series(DashedLineSeries::new(
                [(plot.from, *value), (plot.to, *value)],
                8,
                6,
                color.stroke_width(1),
            ))
            .map_err(failed)?
            .label(format!("{label} {}", with_unit(*value, unit)))
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(1))
            });
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 14))
        .draw()
        .map_err(failed)?;
    root.present().map_err(failed)?;
    Ok(())
}

/// The chart as an SVG document.
pub fn svg(plot: &Plot, node: &str) -> anyhow::Result<String> {
    fonts();
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (WIDTH, HEIGHT)).into_drawing_area();
        draw(&root, plot, node)?;
    }
    Ok(out)
}

/// The chart as a PNG image.
pub fn png(plot: &Plot, node: &str) -> anyhow::Result<Vec<u8>> {
    fonts();
    let mut pixels = vec![0u8; (WIDTH * HEIGHT * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut pixels, (WIDTH, HEIGHT)).into_drawing_area();
        draw(&root, plot, node)?;
    }
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, WIDTH, HEIGHT);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().context("encoding the PNG")?;
    writer
        .write_image_data(&pixels)
        .context("encoding the PNG")?;
    writer.finish().context("encoding the PNG")?;
    Ok(out)
}

/// The picture in `format`.
pub fn render(plot: &Plot, node: &str, format: Format) -> anyhow::Result<Vec<u8>> {
    match format {
        Format::Svg => svg(plot, node).map(String::into_bytes),
        Format::Png => png(plot, node),
    }
}

/// Writes the picture to `path` whole or not at all (a temporary file renamed over it).
pub fn write(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let mut file = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("writing in {}", dir.display()))?;
    std::io::Write::write_all(&mut file, bytes)
        .with_context(|| format!("writing {}", path.display()))?;
    // A picture for a report is read by others: not the temporary file's 0600.
    std::fs::set_permissions(
        file.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )
    .with_context(|| format!("writing {}", path.display()))?;
    file.persist(path)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// A file name for a chart: `sw-1_interface.in_octets_total_20261204-1042.svg`.
pub fn file_name(node: &str, plot: &Plot, format: Format) -> PathBuf {
    let clean = |text: &str| -> String {
        text.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '.' | '-') {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    };
    let at = time::OffsetDateTime::from_unix_timestamp(plot.to)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let stamp = format!(
        "{:04}{:02}{:02}-{:02}{:02}",
        at.year(),
        at.month() as u8,
        at.day(),
        at.hour(),
        at.minute()
    );
    PathBuf::from(format!(
        "{}_{}_{stamp}.{}",
        clean(node),
        clean(&plot.title),
        format.extension()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plot() -> Plot {
        Plot {
            title: "interface.in_octets_total Gi0/1".into(),
            unit: "b/s",
            from: 1_764_835_200,
            to: 1_764_838_800,
            lines: vec![
                (
                    "in".into(),
                    (0..60)
                        .map(|i| (1_764_835_200 + i * 60, 1e6 + i as f64 * 1e4))
                        .collect(),
                ),
                (
                    "out".into(),
                    (0..60).map(|i| (1_764_835_200 + i * 60, 2e5)).collect(),
                ),
            ],
            thresholds: vec![("warning: uplink busy".into(), 1.5e6)],
            of: 2,
        }
    }

    #[test]
    fn svg_has_axes_legend_and_threshold_text() {
        let svg = svg(&plot(), "sw-1").expect("an SVG");
        assert!(svg.starts_with("<svg"), "{}", &svg[..80]);
        for text in [
            "sw-1 · interface.in_octets_total Gi0/1 (b/s)",
            "UTC",
            "in",
            "out",
            "warning: uplink busy 1.50 Mb/s",
        ] {
            assert!(svg.contains(text), "no {text:?} in the SVG:\n{svg}");
        }
        // Time labels on the x axis, values with their unit on the y axis.
        let texts: Vec<&str> = svg.lines().filter(|l| !l.starts_with('<')).collect();
        assert!(texts.iter().any(|t| t.starts_with("08:")), "{texts:?}");
        assert!(
            texts.iter().any(|t| t.ends_with(" Mb/s") && t.len() < 10),
            "{texts:?}"
        );
    }

    #[test]
    fn png_is_a_png_with_ink_on_it() {
        let bytes = png(&plot(), "sw-1").expect("a PNG");
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
        let decoder = png::Decoder::new(std::io::Cursor::new(&bytes));
        let mut reader = decoder.read_info().expect("a header");
        let mut pixels = vec![0; reader.output_buffer_size().expect("a size")];
        let info = reader.next_frame(&mut pixels).expect("a frame");
        assert_eq!((info.width, info.height), (WIDTH, HEIGHT));
        let dark = pixels
            .chunks(3)
            .filter(|p| p.iter().all(|c| *c < 80))
            .count();
        assert!(dark > 2_000, "text and axes are drawn: {dark} dark pixels");
    }

    #[test]
    fn files_are_named_after_node_chart_and_time() {
        let name = file_name("sw 1", &plot(), Format::Png);
        assert_eq!(
            name,
            PathBuf::from("sw_1_interface.in_octets_total_Gi0_1_20251204-0900.png")
        );
        assert_eq!(Format::of_path(Path::new("a.SVG")), Some(Format::Svg));
        assert_eq!(Format::of_path(Path::new("a.pdf")), None);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("chart.svg");
        write(&path, b"<svg/>").unwrap();
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(&path).unwrap().permissions(),
        );
        assert_eq!(
            mode & 0o777,
            0o644,
            "readable by the people the report goes to"
        );
    }
}
