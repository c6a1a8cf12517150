//! Building blocks the views share.

pub mod charts;
pub mod form;
pub mod node_charts;
pub mod picture;
pub mod plot;
pub mod table;

use ratatui::layout::{Constraint, Flex, Layout, Rect};

/// A `width` x `height` rectangle centred in `area`, shrunk to fit.
pub fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let [row] = Layout::vertical([Constraint::Length(height.min(area.height))])
        .flex(Flex::Center)
        .areas(area);
    let [cell] = Layout::horizontal([Constraint::Length(width.min(area.width))])
        .flex(Flex::Center)
        .areas(row);
    cell
}
