//! Styles. Colour only ever repeats what the text already says (a symbol or a word), and with
//! `NO_COLOR` set (<https://no-color.org>) only bold, reverse and underline are used.

use ratatui::style::{Color, Modifier, Style};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Theme {
    pub color: bool,
}

impl Theme {
    /// Colour unless `NO_COLOR` is set to anything non-empty.
    pub fn from_env() -> Self {
        Theme::for_no_color(std::env::var_os("NO_COLOR").as_deref())
    }

    /// The theme for a value of `NO_COLOR`.
    pub fn for_no_color(value: Option<&std::ffi::OsStr>) -> Self {
        Theme {
            color: value.is_none_or(|v| v.is_empty()),
        }
    }

    fn pick(self, colored: Style, plain: Style) -> Style {
        if self.color { colored } else { plain }
    }

    pub fn header(self) -> Style {
        self.pick(
            Style::new().fg(Color::Black).bg(Color::Cyan),
            Style::new().add_modifier(Modifier::REVERSED),
        )
    }

    pub fn title(self) -> Style {
        self.pick(
            Style::new().fg(Color::Cyan).add_modifier(Modifier::BOLD),
            Style::new().add_modifier(Modifier::BOLD),
        )
    }

    pub fn column_header(self) -> Style {
        self.pick(
            Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD),
            Style::new().add_modifier(Modifier::BOLD | Modifier::UNDERLINED),
        )
    }

    pub fn selected(self) -> Style {
        self.pick(
            Style::new().fg(Color::Black).bg(Color::LightBlue),
            Style::new().add_modifier(Modifier::REVERSED),
        )
    }

    pub fn key(self) -> Style {
        self.pick(
            Style::new().fg(Color::Cyan).add_modifier(Modifier::BOLD),
            Style::new().add_modifier(Modifier::BOLD),
        )
    }

    /// Rows marked for a batch action.
    pub fn marked(self) -> Style {
        self.pick(
            Style::new().fg(Color::LightYellow),
            Style::new().add_modifier(Modifier::BOLD),
        )
    }

    pub fn dim(self) -> Style {
        self.pick(Style::new().fg(Color::DarkGray), Style::new())
    }

    pub fn error(self) -> Style {
        self.pick(
            Style::new()
                .fg(Color::LightRed)
                .add_modifier(Modifier::BOLD),
            Style::new().add_modifier(Modifier::BOLD),
        )
    }

    pub fn ok(self) -> Style {
        self.pick(Style::new().fg(Color::LightGreen), Style::new())
    }

    pub fn banner(self) -> Style {
        self.pick(
            Style::new()
                .fg(Color::White)
                .bg(Color::Red)
                .add_modifier(Modifier::BOLD),
            Style::new().add_modifier(Modifier::REVERSED | Modifier::BOLD),
        )
    }

    pub fn focused_field(self) -> Style {
        self.pick(
            Style::new().fg(Color::Black).bg(Color::Gray),
            Style::new().add_modifier(Modifier::UNDERLINED | Modifier::BOLD),
        )
    }

    pub fn field(self) -> Style {
        self.pick(
            Style::new().bg(Color::DarkGray),
            Style::new().add_modifier(Modifier::UNDERLINED),
        )
    }
}

#[cfg(test)]
mod tests {
    use std::ffi::OsStr;

    use super::*;

    #[test]
    fn no_color_set_to_anything_turns_colour_off() {
        assert!(Theme::for_no_color(None).color);
        assert!(Theme::for_no_color(Some(OsStr::new(""))).color);
        assert!(!Theme::for_no_color(Some(OsStr::new("1"))).color);
        let plain = Theme { color: false };
        for style in [
            plain.header(),
            plain.selected(),
            plain.error(),
            plain.banner(),
        ] {
            assert_eq!(style.fg, None);
            assert_eq!(style.bg, None);
        }
    }
}
