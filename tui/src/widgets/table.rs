//! The one table every list view uses: filter (`!` inverts), sort by any column, a cursor that
//! stays on the same row across refreshes, and rendering of the visible rows only, so a table of
//! tens of thousands of rows scrolls as fast as one of ten.

use std::cell::Cell;
use std::cmp::Ordering;

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Row, Table, TableState};

use crate::theme::Theme;

/// A column: its title, the letter that sorts by it (with Shift), its width, its text, its order.
pub struct Column<T> {
    pub title: &'static str,
    pub sort_key: char,
    pub width: Constraint,
    pub cell: fn(&T) -> String,
    pub cmp: fn(&T, &T) -> Ordering,
}

/// Orders text ignoring case, without allocating (sorting compares often).
pub fn caseless(a: &str, b: &str) -> Ordering {
    a.chars()
        .flat_map(char::to_lowercase)
        .cmp(b.chars().flat_map(char::to_lowercase))
}

/// Rows plus the view of them the user has chosen.
pub struct DataTable<T: 'static> {
    columns: &'static [Column<T>],
    id: fn(&T) -> String,
    rows: Vec<T>,
    /// Each row's cells, lower-cased and joined: what the filter searches, built once per load
    /// when a filter is first applied.
    haystacks: Vec<String>,
    /// Indexes into `rows` that pass the filter, in sort order.
    visible: Vec<usize>,
    /// Position in `visible`.
    cursor: usize,
    filter: String,
    /// Column and whether descending.
    sort: Option<(usize, bool)>,
    loaded: bool,
    /// Ids of the rows marked for a batch action; kept across refreshes.
    marked: std::collections::BTreeSet<String>,
    offset: Cell<usize>,
    page: Cell<usize>,
    /// Whether the title counts the rows (not for a table of settings).
    counted: bool,
}

impl<T: 'static> DataTable<T> {
    pub fn new(columns: &'static [Column<T>], id: fn(&T) -> String) -> Self {
        DataTable {
            columns,
            id,
            rows: Vec::new(),
            haystacks: Vec::new(),
            visible: Vec::new(),
            cursor: 0,
            filter: String::new(),
            sort: None,
            loaded: false,
            marked: Default::default(),
            offset: Cell::new(0),
            page: Cell::new(10),
            counted: true,
        }
    }

    /// A table whose title does not count its rows: the lines of one record, such as settings.
    pub fn uncounted(mut self) -> Self {
        self.counted = false;
        self
    }

    /// The columns' titles and sort letters, for the keymap.
    pub fn sort_keys(&self) -> Vec<(&'static str, char)> {
        self.columns.iter().map(|c| (c.title, c.sort_key)).collect()
    }

    /// Replaces the rows, keeping the cursor on the same row (by id) if it is still there.
    pub fn set_rows(&mut self, rows: Vec<T>) {
        let selected = self.selected().map(self.id);
        self.haystacks.clear();
        if !self.marked.is_empty() {
            let present: std::collections::HashSet<String> = rows.iter().map(self.id).collect();
            self.marked.retain(|id| present.contains(id));
        }
        self.rows = rows;
        self.loaded = true;
        self.rebuild(selected);
    }

    /// Marks the row under the cursor, or unmarks it, and moves down.
    pub fn toggle_mark(&mut self) {
        if let Some(id) = self.selected().map(self.id) {
            if !self.marked.remove(&id) {
                self.marked.insert(id);
            }
            self.move_by(1);
        }
    }

    /// Marks every row the filter shows, or unmarks them when all already are.
    pub fn toggle_mark_all(&mut self) {
        let ids: Vec<String> = self
            .visible
            .iter()
            .map(|&i| (self.id)(&self.rows[i]))
            .collect();
        if ids.iter().all(|id| self.marked.contains(id)) {
            for id in &ids {
                self.marked.remove(id);
            }
        } else {
            self.marked.extend(ids);
        }
    }

    /// The marked rows that still exist, in load order.
    pub fn marked(&self) -> Vec<&T> {
        self.rows
            .iter()
            .filter(|row| self.marked.contains(&(self.id)(row)))
            .collect()
    }

    pub fn clear_marks(&mut self) {
        self.marked.clear();
    }

    pub fn is_loaded(&self) -> bool {
        self.loaded
    }

    pub fn rows(&self) -> &[T] {
        &self.rows
    }

    pub fn filter(&self) -> &str {
        &self.filter
    }

    /// Sets the filter text; rows match when any cell contains it (case-insensitive), or with a
    /// leading `!` when none does.
    pub fn set_filter(&mut self, filter: &str) {
        if self.filter != filter {
            let selected = self.selected().map(self.id);
            self.filter = filter.to_owned();
            self.rebuild(selected);
        }
    }

    /// Sorts by `column`; sorting by the same column again reverses the order.
    pub fn sort_by(&mut self, column: usize) {
        if column >= self.columns.len() {
            return;
        }
        let descending = matches!(self.sort, Some((c, false)) if c == column);
        self.sort = Some((column, descending));
        let selected = self.selected().map(self.id);
        self.rebuild(selected);
    }

    pub fn sort(&self) -> Option<(usize, bool)> {
        self.sort
    }

    fn rebuild(&mut self, keep: Option<String>) {
        let (needle, invert) = match self.filter.strip_prefix('!') {
            Some(rest) => (rest.to_lowercase(), true),
            None => (self.filter.to_lowercase(), false),
        };
        let columns = self.columns;
        if !needle.is_empty() && self.haystacks.len() != self.rows.len() {
            self.haystacks = self
                .rows
                .iter()
                .map(|row| {
                    columns
                        .iter()
                        .map(|c| (c.cell)(row).to_lowercase())
                        .collect::<Vec<_>>()
                        .join("\u{1f}")
                })
                .collect();
        }
        self.visible = (0..self.rows.len())
            .filter(|&i| needle.is_empty() || self.haystacks[i].contains(&needle) != invert)
            .collect();
        if let Some((column, descending)) = self.sort {
            let cmp = columns[column].cmp;
            let rows = &self.rows;
            self.visible.sort_by(|&a, &b| {
                let order = cmp(&rows[a], &rows[b]);
                if descending { order.reverse() } else { order }
            });
        }
        let id = self.id;
        self.cursor = keep
            .and_then(|key| self.visible.iter().position(|&i| id(&self.rows[i]) == key))
            .unwrap_or_else(|| self.cursor.min(self.visible.len().saturating_sub(1)));
    }

    /// The row under the cursor.
    pub fn selected(&self) -> Option<&T> {
        self.visible.get(self.cursor).map(|&i| &self.rows[i])
    }

    /// How many rows pass the filter.
    pub fn visible_len(&self) -> usize {
        self.visible.len()
    }

    pub fn cursor(&self) -> usize {
        self.cursor
    }

    pub fn move_by(&mut self, delta: isize) {
        let last = self.visible.len().saturating_sub(1);
        self.cursor = self.cursor.saturating_add_signed(delta).min(last);
    }

    pub fn page(&self) -> isize {
        isize::try_from(self.page.get().max(1)).unwrap_or(1)
    }

    pub fn top(&mut self) {
        self.cursor = 0;
    }

    pub fn bottom(&mut self) {
        self.cursor = self.visible.len().saturating_sub(1);
    }

    /// The title line: what, how many, the filter and the sort.
    pub fn title(&self, what: &str) -> String {
        let mut title = if self.filter.is_empty() && !self.counted {
            format!(" {what} ")
        } else if self.filter.is_empty() {
            format!(" {what} ({}) ", self.rows.len())
        } else {
            format!(
                " {what} ({} of {}) /{} ",
                self.visible.len(),
                self.rows.len(),
                self.filter
            )
        };
        if let Some((column, descending)) = self.sort {
            let arrow = if descending { "↓" } else { "↑" };
            title.push_str(&format!("sort: {}{arrow} ", self.columns[column].title));
        }
        // `set_rows` drops marks of rows that are gone, so the set's size is the count.
        let marked = self.marked.len();
        if marked > 0 {
            title.push_str(&format!("· {marked} marked "));
        }
        title
    }

    /// Draws the rows that fit in `area`, with `empty` shown when there are none.
    pub fn render(&self, frame: &mut Frame, area: Rect, what: &str, empty: &str, theme: Theme) {
        let block = Block::default()
            .borders(Borders::ALL)
            .title(Span::styled(self.title(what), theme.title()));
        let inner = block.inner(area);
        frame.render_widget(block, area);
        let height = usize::from(inner.height.saturating_sub(1));
        self.page.set(height);

        let header = Row::new(self.columns.iter().enumerate().map(
            |(index, column)| match self.sort {
                Some((c, descending)) if c == index => {
                    format!("{}{}", column.title, if descending { "↓" } else { "↑" })
                }
                _ => column.title.to_owned(),
            },
        ))
        .style(theme.column_header());

        if self.visible.is_empty() {
            let text = if !self.loaded {
                "Loading…".to_owned()
            } else if self.rows.is_empty() {
                empty.to_owned()
            } else {
                format!(
                    "No {} match the filter /{} (Esc clears it).",
                    what.to_lowercase(),
                    self.filter
                )
            };
            let table = Table::new(Vec::<Row>::new(), self.widths()).header(header);
            frame.render_widget(table, inner);
            if inner.height > 1 {
                let message = Rect {
                    y: inner.y + 1,
                    height: inner.height - 1,
                    ..inner
                };
                frame.render_widget(Paragraph::new(Line::styled(text, theme.dim())), message);
            }
            return;
        }

        let mut offset = self.offset.get();
        if self.cursor < offset {
            offset = self.cursor;
        } else if height > 0 && self.cursor >= offset + height {
            offset = self.cursor + 1 - height;
        }
        offset = offset.min(self.visible.len().saturating_sub(height.max(1)));
        self.offset.set(offset);

        // The widths the table will give each column (as ratatui lays them out: one column
        // for the highlight symbol, then the constraints with a space between), so a cell cut
        // short ends in `…` (an address `127.10.5.5:1161` must not read as port 1).
        let [_, columns_area] =
            ratatui::layout::Layout::horizontal([Constraint::Length(1), Constraint::Fill(0)])
                .areas(Rect::new(0, 0, inner.width, 1));
        let room: Vec<usize> = ratatui::layout::Layout::horizontal(self.widths())
            .flex(ratatui::layout::Flex::Start)
            .spacing(1)
            .split(columns_area)
            .iter()
            .map(|r| usize::from(r.width))
            .collect();
        let rows = self.visible[offset..].iter().take(height).map(|&i| {
            let row = &self.rows[i];
            let marked = !self.marked.is_empty() && self.marked.contains(&(self.id)(row));
            Row::new(self.columns.iter().enumerate().map(|(n, c)| {
                let cell = (c.cell)(row);
                let cell = if n == 0 && marked {
                    format!("✓ {cell}")
                } else {
                    cell
                };
                fit(cell, room.get(n).copied().unwrap_or(usize::MAX))
            }))
            .style(if marked {
                theme.marked()
            } else {
                Default::default()
            })
        });
        let table = Table::new(rows, self.widths())
            .header(header)
            .row_highlight_style(theme.selected())
            .highlight_symbol("›");
        let mut state = TableState::default().with_selected(Some(self.cursor - offset));
        frame.render_stateful_widget(table, inner, &mut state);
    }

    fn widths(&self) -> Vec<Constraint> {
        self.columns.iter().map(|c| c.width).collect()
    }
}

/// `cell` cut to `width` columns, ending in `…` when it was longer.
pub fn fit(cell: String, width: usize) -> String {
    use unicode_width::UnicodeWidthStr as _;
    if cell.width() <= width {
        return cell;
    }
    if width == 0 {
        return String::new();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in cell.chars() {
        let w = unicode_width::UnicodeWidthChar::width(c).unwrap_or(0);
        if used + w > width - 1 {
            break;
        }
        used += w;
        out.push(c);
    }
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn cells_cut_short_end_in_an_ellipsis() {
        assert_eq!(fit("127.10.5.5:1161".into(), 12), "127.10.5.5:…");
        assert_eq!(fit("127.10.5.5:1161".into(), 15), "127.10.5.5:1161");
        assert_eq!(fit("pump".into(), 1), "…");
        assert_eq!(fit("Grüße an alle".into(), 6), "Grüße…");
    }

    use super::*;

    static COLUMNS: &[Column<(u32, &'static str)>] = &[
        Column {
            title: "ID",
            sort_key: 'i',
            width: Constraint::Length(4),
            cell: |r| r.0.to_string(),
            cmp: |a, b| a.0.cmp(&b.0),
        },
        Column {
            title: "NAME",
            sort_key: 'n',
            width: Constraint::Fill(1),
            cell: |r| r.1.to_owned(),
            cmp: |a, b| a.1.cmp(b.1),
        },
    ];

    fn table() -> DataTable<(u32, &'static str)> {
        let mut table = DataTable::new(COLUMNS, |r| r.0.to_string());
        table.set_rows(vec![(1, "pump"), (2, "valve"), (3, "Pumpwerk"), (4, "hmi")]);
        table
    }

    fn names(table: &DataTable<(u32, &'static str)>) -> Vec<&'static str> {
        table.visible.iter().map(|&i| table.rows[i].1).collect()
    }

    #[test]
    fn filter_matches_any_cell_ignoring_case_and_inverts_with_bang() {
        let mut table = table();
        table.set_filter("pump");
        assert_eq!(names(&table), ["pump", "Pumpwerk"]);
        table.set_filter("!pump");
        assert_eq!(names(&table), ["valve", "hmi"]);
        table.set_filter("4");
        assert_eq!(names(&table), ["hmi"]);
    }

    #[test]
    fn sorting_twice_reverses() {
        let mut table = table();
        table.sort_by(1);
        assert_eq!(names(&table), ["Pumpwerk", "hmi", "pump", "valve"]);
        table.sort_by(1);
        assert_eq!(names(&table), ["valve", "pump", "hmi", "Pumpwerk"]);
        assert_eq!(table.sort(), Some((1, true)));
    }

    #[test]
    fn cursor_follows_its_row_through_refresh_filter_and_sort() {
        let mut table = table();
        table.move_by(2);
        assert_eq!(table.selected().unwrap().1, "Pumpwerk");
        table.set_rows(vec![(0, "new"), (1, "pump"), (2, "valve"), (3, "Pumpwerk")]);
        assert_eq!(table.selected().unwrap().1, "Pumpwerk");
        table.sort_by(0);
        table.sort_by(0);
        assert_eq!(table.selected().unwrap().1, "Pumpwerk");
        table.set_filter("p");
        assert_eq!(table.selected().unwrap().1, "Pumpwerk");
        table.move_by(-100);
        assert_eq!(table.cursor(), 0);
        table.move_by(100);
        assert_eq!(table.cursor(), table.visible_len() - 1);
    }

    #[test]
    fn a_vanished_row_leaves_the_cursor_in_range() {
        let mut table = table();
        table.bottom();
        table.set_rows(vec![(1, "pump")]);
        assert_eq!(table.cursor(), 0);
        table.set_rows(Vec::new());
        assert!(table.selected().is_none());
    }

    #[test]
    fn marks_follow_rows_and_drop_when_a_row_goes() {
        let mut table = table();
        table.toggle_mark();
        table.toggle_mark();
        assert_eq!(table.marked(), [&(1, "pump"), &(2, "valve")]);
        assert!(table.title("Rows").contains("2 marked"));
        table.set_rows(vec![(2, "valve"), (3, "Pumpwerk")]);
        assert_eq!(table.marked(), [&(2, "valve")]);
        assert!(table.title("Rows").contains("1 marked"));
        table.clear_marks();
        assert!(!table.title("Rows").contains("marked"));
    }
}
