//! A resource view's list and the row being acted on: what nine views used to keep each on
//! their own (a `DataTable` and a `target`), with the lifecycle's words ([`super::lifecycle`])
//! in the resource's own noun. It derefs to its table, so navigation, filters and sorts are
//! the table's.

use std::ops::{Deref, DerefMut};

use super::Effect;
use super::lifecycle;
use crate::widgets::form::Ask;
use crate::widgets::table::{Column, DataTable};

pub struct Resource<R: 'static> {
    /// What one row is, for messages and questions ("node", "channel").
    pub noun: &'static str,
    pub table: DataTable<R>,
    /// The row a form or question is about, once one is open.
    pub target: Option<R>,
}

impl<R: Clone + 'static> Resource<R> {
    pub fn new(noun: &'static str, columns: &'static [Column<R>], key: fn(&R) -> String) -> Self {
        Resource {
            noun,
            table: DataTable::new(columns, key),
            target: None,
        }
    }

    /// Asks before deleting the row called `name`.
    pub fn ask_delete(&self, name: &str, consequence: &str, tag: Ask) -> Vec<Effect> {
        lifecycle::ask_delete(self.noun, name, consequence, tag)
    }

    /// A save of the row called `name` answered.
    pub fn saved(&self, name: &str, created: bool) -> Vec<Effect> {
        lifecycle::saved(self.noun, name, created)
    }

    /// A delete of the row called `name` answered.
    pub fn deleted(&self, name: &str) -> Vec<Effect> {
        lifecycle::deleted(self.noun, name)
    }
}

impl<R> Deref for Resource<R> {
    type Target = DataTable<R>;

    fn deref(&self) -> &DataTable<R> {
        &self.table
    }
}

impl<R> DerefMut for Resource<R> {
    fn deref_mut(&mut self) -> &mut DataTable<R> {
        &mut self.table
    }
}
