//! Vendors by IANA private enterprise number (the digit after `1.3.6.1.4.1.` in sysObjectID),
//! for devices no template recognises. The common vendors of plant and data-centre networks;
//! the full registry is at <https://www.iana.org/assignments/enterprise-numbers>.

const ENTERPRISES: &[(u64, &str)] = &[
    (2, "IBM"),
    (9, "Cisco"),
    (11, "HPE"),
    (43, "3Com"),
    (171, "D-Link"),
    (232, "HPE"),
    (311, "Microsoft"),
    (318, "APC"),
    (534, "Eaton"),
    (637, "Nokia"),
    (674, "Dell"),
    (705, "Eaton"),
    (789, "NetApp"),
    (1588, "Brocade"),
    (1916, "Extreme Networks"),
    (1991, "Brocade"),
    (2011, "Huawei"),
    (2021, "Net-SNMP"),
    (2636, "Juniper"),
    (3375, "F5"),
    (4329, "Siemens"),
    (4413, "Broadcom"),
    (4526, "Netgear"),
    (6027, "Dell"),
    (6486, "Alcatel-Lucent"),
    (6527, "Nokia"),
    (6574, "Synology"),
    (6876, "VMware"),
    (8072, "Net-SNMP"),
    (8691, "Moxa"),
    (10418, "Avocent"),
    (12124, "Isilon"),
    (12356, "Fortinet"),
    (13576, "Phoenix Contact"),
    (14823, "Aruba"),
    (14988, "MikroTik"),
    (17163, "Riverbed"),
    (21239, "Geist"),
    (24681, "QNAP"),
    (25461, "Palo Alto Networks"),
    (25506, "H3C"),
    (30065, "Arista"),
    (30803, "Vyatta"),
    (36724, "Samsung"),
    (39165, "Hikvision"),
    (41112, "Ubiquiti"),
    (850, "Tripp Lite"),
    (476, "Emerson"),
    (4881, "Ruijie"),
];

/// The vendor of a device by its sysObjectID, when the enterprise is known.
pub fn vendor_of(sys_object_id: &str) -> Option<&'static str> {
    let rest = sys_object_id
        .trim_start_matches('.')
        .strip_prefix("1.3.6.1.4.1.")?;
    let number: u64 = rest.split('.').next()?.parse().ok()?;
    ENTERPRISES
        .iter()
        .find(|(n, _)| *n == number)
        .map(|(_, name)| *name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enterprises_are_read_from_the_object_id() {
        assert_eq!(vendor_of("1.3.6.1.4.1.9.1.516"), Some("Cisco"));
        assert_eq!(vendor_of(".1.3.6.1.4.1.2636.1.1.1.2.25"), Some("Juniper"));
        assert_eq!(vendor_of("1.3.6.1.4.1.99999.1"), None);
        assert_eq!(vendor_of("1.3.6.1.2.1.1"), None);
        assert_eq!(vendor_of("1.3.6.1.4.1."), None);
    }
}
