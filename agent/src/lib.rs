//! plantwatch-agent: runs on a monitored server, sends its system metrics and a heartbeat.
//! Enrollment, metrics and the buffer arrive in later issues.
