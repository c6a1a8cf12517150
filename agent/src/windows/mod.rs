//! What the agent does only on Windows: the service (install, start, stop, run under the
//! Service Control Manager), the services the SCM lists, WMI inventory.

pub mod cpu;
pub mod scm;
pub mod service;
pub mod wmi;
