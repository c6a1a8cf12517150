//! plantwatch-collector: polls devices on plant networks and pushes their metrics to the
//! server. Enrollment, config pull, SNMP/ICMP polling, discovery and the on-disk buffer arrive
//! in later issues; the same code will run in-process in the server as its local collector.
