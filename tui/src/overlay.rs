//! What floats over a view. Only one at a time, so it is one enum.

use plantwatch_shared::Fingerprint;

use crate::widgets::form::Form;

#[derive(Debug, Clone)]
pub enum Overlay {
    /// Every binding of the current view.
    Help {
        scroll: u16,
    },
    /// `:` — go to a view by name or alias.
    Palette {
        input: String,
    },
    /// `/` — the filter being typed; `before` is restored by Esc.
    Filter {
        input: String,
        before: String,
    },
    Form(Form),
    Confirm(Confirm),
    /// An unknown server certificate: accept once, always, or refuse.
    Trust {
        url: String,
        fingerprint: Fingerprint,
    },
    /// A record's fields, read-only.
    Detail {
        title: String,
        lines: Vec<(String, String)>,
    },
}

/// A question before a destructive action.
#[derive(Debug, Clone)]
pub struct Confirm {
    pub title: String,
    pub question: String,
    /// What pressing `y` does, in words ("delete").
    pub yes: &'static str,
    /// Handed back to the view that asked.
    pub tag: u32,
}
