//! Windows services as metrics: every service the Service Control Manager lists, its state and
//! start type (read by `windows::scm`; the lines are written here, on every platform, so the
//! format is tested everywhere).

use plantwatch_shared::lineproto::Writer;
use plantwatch_shared::metric_names::{WINDOWS_SERVICE_START_TYPE, WINDOWS_SERVICE_STATE};

/// One service as the Service Control Manager describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceState {
    /// The service's (key) name: `Spooler`.
    pub name: String,
    pub display_name: String,
    /// `SERVICE_STOPPED` (1) … `SERVICE_PAUSED` (7).
    pub state: u32,
    /// `SERVICE_BOOT_START` (0) … `SERVICE_DISABLED` (4).
    pub start_type: u32,
    /// Automatic, started some time after boot.
    pub delayed: bool,
    /// Started (and usually stopped again) by a trigger: a device arriving, a network event.
    pub trigger: bool,
}

impl ServiceState {
    /// The `start` tag: how the service is meant to run. `auto-trigger` services stop by
    /// design when idle, so `windows_service_stopped` leaves them alone.
    pub fn start(&self) -> &'static str {
        match self.start_type {
            0 => "boot",
            1 => "system",
            2 if self.trigger => "auto-trigger",
            2 if self.delayed => "auto-delayed",
            2 => "auto",
            3 if self.trigger => "manual-trigger",
            3 => "manual",
            4 => "disabled",
            _ => "other",
        }
    }
}

/// Writes one `windows_service` line per service.
pub fn write_lines(services: &[ServiceState], now_ms: i64, out: &mut Writer) {
    for service in services {
        out.line(
            WINDOWS_SERVICE_STATE.measurement,
            &[("service", &service.name), ("start", service.start())],
        )
        .float(WINDOWS_SERVICE_STATE.field, f64::from(service.state))
        .float(
            WINDOWS_SERVICE_START_TYPE.field,
            f64::from(service.start_type),
        )
        .finish(now_ms);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use plantwatch_shared::lineproto::parse_line;

    fn service(name: &str, state: u32, start_type: u32) -> ServiceState {
        ServiceState {
            name: name.into(),
            display_name: name.into(),
            state,
            start_type,
            delayed: false,
            trigger: false,
        }
    }

    #[test]
    fn each_service_is_a_line_with_its_name_start_and_state() {
        let mut spooler = service("Spooler", 4, 2);
        let mut wsearch = service("WSearch", 1, 2);
        wsearch.delayed = true;
        let mut usb = service("Windows Update", 1, 2);
        usb.trigger = true;
        let services = vec![spooler.clone(), wsearch, usb, service("Fax", 1, 4)];
        let mut out = Writer::new();
        write_lines(&services, 5_000, &mut out);
        let text = out.take();
        let lines: Vec<_> = text.lines().map(|l| parse_line(l).unwrap()).collect();
        assert_eq!(lines.len(), 4, "{text}");
        let starts: Vec<_> = lines.iter().map(|l| l.tag("start").unwrap()).collect();
        assert_eq!(starts, ["auto", "auto-delayed", "auto-trigger", "disabled"]);
        assert_eq!(lines[2].tag("service"), Some("Windows Update"));
        assert_eq!(lines[0].fields[0].0, "state");
        assert_eq!(lines[0].fields[0].1.as_f64(), Some(4.0));
        assert_eq!(lines[3].fields[1].1.as_f64(), Some(4.0));
        spooler.start_type = 3;
        spooler.trigger = true;
        assert_eq!(spooler.start(), "manual-trigger");
    }
}
