//! Closed vocabularies spelled once: error codes and audit actions.
//!
//! The server writes one of these, clients match on them; both sides spell a value only here.
//! On the wire a value is its text, as it always was. Text this build does not know (from a
//! newer server) reads as `Other`, so old clients keep working.

use std::borrow::Cow;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An enum of wire strings with `as_str`, `parse`, `Display` and serde as its text.
macro_rules! wire_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $text:literal,)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum $name {
            $($variant,)*
            /// Text this build does not know.
            Other(String),
        }

        impl $name {
            /// Every value this build knows.
            pub const KNOWN: &[$name] = &[$($name::$variant,)*];

            /// The value as it is written on the wire.
            pub fn as_str(&self) -> &str {
                match self {
                    $($name::$variant => $text,)*
                    $name::Other(text) => text,
                }
            }

            /// The value written `text` on the wire (never fails: unknown text is `Other`).
            pub fn parse(text: &str) -> $name {
                match text {
                    $($text => $name::$variant,)*
                    other => $name::Other(other.to_owned()),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = Cow::<'de, str>::deserialize(deserializer)?;
                Ok($name::parse(&text))
            }
        }
    };
}

wire_enum! {
    /// A stable error code (`{"error": {"code": …}}`). An answer without an error document (a
    /// proxy's 502) reads as `Other("http_502")`.
    ErrorCode {
        AlertNotFound => "alert_not_found",
        AlertResolved => "alert_resolved",
        AlreadyExists => "already_exists",
        ApiKeyRevoked => "api_key_revoked",
        BadRequest => "bad_request",
        BuiltinRule => "builtin_rule",
        CannotDeleteSelf => "cannot_delete_self",
        ChannelNotFound => "channel_not_found",
        CheckNotFound => "check_not_found",
        CommentTooLong => "comment_too_long",
        ComponentNotFound => "component_not_found",
        ComponentRevoked => "component_revoked",
        CredentialNotAttached => "credential_not_attached",
        CredentialNotFound => "credential_not_found",
        CredentialScope => "credential_scope",
        DirectoryUnavailable => "directory_unavailable",
        DirectoryUser => "directory_user",
        Forbidden => "forbidden",
        IgnoredSeriesNotFound => "ignored_series_not_found",
        ImportRejected => "import_rejected",
        ImportTooLarge => "import_too_large",
        IngestBusy => "ingest_busy",
        Internal => "internal",
        InvalidApiKey => "invalid_api_key",
        InvalidBatchId => "invalid_batch_id",
        InvalidBody => "invalid_body",
        InvalidChannel => "invalid_channel",
        InvalidCheck => "invalid_check",
        InvalidReceivers => "invalid_receivers",
        InvalidFindings => "invalid_findings",
        InvalidChoice => "invalid_choice",
        InvalidCredential => "invalid_credential",
        InvalidCredentials => "invalid_credentials",
        InvalidHeartbeat => "invalid_heartbeat",
        InvalidHostname => "invalid_hostname",
        InvalidLdapSettings => "invalid_ldap_settings",
        InvalidImportFile => "invalid_import_file",
        InvalidJson => "invalid_json",
        InvalidLimit => "invalid_limit",
        InvalidLines => "invalid_lines",
        InvalidMaintenanceWindow => "invalid_maintenance_window",
        InvalidName => "invalid_name",
        InvalidNode => "invalid_node",
        InvalidOptions => "invalid_options",
        InvalidPassword => "invalid_password",
        InvalidPath => "invalid_path",
        InvalidPrecision => "invalid_precision",
        InvalidQuery => "invalid_query",
        InvalidRange => "invalid_range",
        InvalidRegistration => "invalid_registration",
        InvalidReport => "invalid_report",
        InvalidResult => "invalid_result",
        InvalidRule => "invalid_rule",
        InvalidSchedule => "invalid_schedule",
        InvalidSetupCode => "invalid_setup_code",
        InvalidSort => "invalid_sort",
        InvalidState => "invalid_state",
        InvalidStep => "invalid_step",
        InvalidTags => "invalid_tags",
        InvalidTargets => "invalid_targets",
        InvalidTemplate => "invalid_template",
        InvalidToken => "invalid_token",
        InvalidTokenRequest => "invalid_token_request",
        InvalidUsername => "invalid_username",
        JobFinished => "job_finished",
        JobNotFound => "job_not_found",
        LastAdmin => "last_admin",
        LocalCollector => "local_collector",
        LocalDiscoveryOff => "local_discovery_off",
        MachineIdReserved => "machine_id_reserved",
        MaintenanceWindowEnded => "maintenance_window_ended",
        MaintenanceWindowNotFound => "maintenance_window_not_found",
        MethodNotAllowed => "method_not_allowed",
        MetricsEngineUnavailable => "metrics_engine_unavailable",
        NameTaken => "name_taken",
        NodeChoiceNeeded => "node_choice_needed",
        NodeNameTaken => "node_name_taken",
        NoDirectory => "no_directory",
        NoRole => "no_role",
        NodeNotFound => "node_not_found",
        NotASeries => "not_a_series",
        NotFound => "not_found",
        NothingSelected => "nothing_selected",
        NothingToChange => "nothing_to_change",
        ParentNotFound => "parent_not_found",
        PayloadTooLarge => "payload_too_large",
        PendingApproval => "pending_approval",
        RemoteWriteBacklogFull => "remote_write_backlog_full",
        RequestTimeout => "request_timeout",
        RouteNotFound => "route_not_found",
        RuleNotFound => "rule_not_found",
        SeriesLimit => "series_limit",
        SessionExpired => "session_expired",
        SetupDone => "setup_done",
        Standby => "standby",
        TemplateNotFound => "template_not_found",
        TokenExhausted => "token_exhausted",
        TokenExpired => "token_expired",
        TokenNotFound => "token_not_found",
        TokenRevoked => "token_revoked",
        TooManyAddresses => "too_many_addresses",
        TooManyAttempts => "too_many_attempts",
        TooManyDevices => "too_many_devices",
        TooManyRows => "too_many_rows",
        Unauthenticated => "unauthenticated",
        UnknownCollector => "unknown_collector",
        UnknownCredential => "unknown_credential",
        UnknownTarget => "unknown_target",
        UnreadableBody => "unreadable_body",
        UnsupportedEncoding => "unsupported_encoding",
        UnsupportedMediaType => "unsupported_media_type",
        UriTooLong => "uri_too_long",
        UserNotFound => "user_not_found",
        WrongPassword => "wrong_password",
    }
}

impl ErrorCode {
    /// The code of an answer with `status` and no error document.
    pub fn http(status: u16) -> ErrorCode {
        ErrorCode::Other(format!("http_{status}"))
    }
}

wire_enum! {
    /// What an audit entry records, `resource.verb`.
    AuditAction {
        AlertAck => "alert.ack",
        AlertIgnoreSeries => "alert.ignore_series",
        AlertUnack => "alert.unack",
        AlertUnignoreSeries => "alert.unignore_series",
        AlertRuleCreate => "alert_rule.create",
        AlertRuleDelete => "alert_rule.delete",
        AlertRuleUpdate => "alert_rule.update",
        AuthLogin => "auth.login",
        AuthLoginFailed => "auth.login_failed",
        AuthLogout => "auth.logout",
        AuthPasswordChange => "auth.password_change",
        ChannelCreate => "channel.create",
        ChannelDelete => "channel.delete",
        ChannelTest => "channel.test",
        ChannelUpdate => "channel.update",
        ComponentApprove => "component.approve",
        ComponentDelete => "component.delete",
        ComponentReEnroll => "component.re_enroll",
        ComponentRegister => "component.register",
        ComponentRevoke => "component.revoke",
        ComponentSetReceivers => "component.set_receivers",
        ComponentSetAutoParents => "component.set_auto_parents",
        CredentialCreate => "credential.create",
        CredentialDelete => "credential.delete",
        CredentialReveal => "credential.reveal",
        CredentialUpdate => "credential.update",
        DiscoveryCancel => "discovery.cancel",
        DiscoveryCreate => "discovery.create",
        DiscoveryDismiss => "discovery.dismiss",
        DiscoveryImport => "discovery.import",
        MaintenanceCreate => "maintenance.create",
        MaintenanceEnd => "maintenance.end",
        NodeAddCheck => "node.add_check",
        NodeAddParent => "node.add_parent",
        NodeAttachCredential => "node.attach_credential",
        NodeCreate => "node.create",
        NodeDelete => "node.delete",
        NodeDetachCredential => "node.detach_credential",
        NodeImport => "node.import",
        NodeRemoveCheck => "node.remove_check",
        NodeRemoveParent => "node.remove_parent",
        NodeUpdateCheck => "node.update_check",
        NodeUpdate => "node.update",
        SettingsLdapUpdate => "settings.ldap_update",
        SettingsLdapTest => "settings.ldap_test",
        SetupBootstrapAdmin => "setup.bootstrap_admin",
        SetupComplete => "setup.complete",
        TemplatesReload => "templates.reload",
        TokenCreate => "token.create",
        TokenRevoke => "token.revoke",
        UserCreate => "user.create",
        UserDelete => "user.delete",
        UserDirectoryRevoke => "user.directory_revoke",
        UserDirectoryRole => "user.directory_role",
        UserResetPassword => "user.reset_password",
        UserSetRole => "user.set_role",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reads_back<T>(known: &[T], shape: fn(char) -> bool)
    where
        T: fmt::Display + fmt::Debug + PartialEq + Serialize + for<'de> Deserialize<'de>,
    {
        let mut seen = std::collections::HashSet::new();
        for value in known {
            let text = value.to_string();
            assert!(seen.insert(text.clone()), "{text} is spelled twice");
            assert!(
                text.chars().all(shape),
                "{text} has an unexpected character"
            );
            let json = serde_json::to_string(value).unwrap();
            assert_eq!(json, format!("\"{text}\""));
            assert_eq!(&serde_json::from_str::<T>(&json).unwrap(), value);
        }
    }

    #[test]
    fn every_known_value_reads_back_as_itself() {
        reads_back(ErrorCode::KNOWN, |c| c.is_ascii_lowercase() || c == '_');
        reads_back(AuditAction::KNOWN, |c| {
            c.is_ascii_lowercase() || c == '_' || c == '.'
        });
        for action in AuditAction::KNOWN {
            assert_eq!(
                action.as_str().matches('.').count(),
                1,
                "{action}: resource.verb"
            );
        }
    }

    #[test]
    fn unknown_text_and_bare_statuses_survive_a_round_trip() {
        assert_eq!(ErrorCode::parse("http_502"), ErrorCode::http(502));
        assert_eq!(ErrorCode::http(502).to_string(), "http_502");
        let newer: ErrorCode = serde_json::from_str("\"quota_exceeded\"").unwrap();
        assert_eq!(newer, ErrorCode::Other("quota_exceeded".into()));
        assert_eq!(serde_json::to_string(&newer).unwrap(), "\"quota_exceeded\"");
        assert_eq!(AuditAction::parse("user.create"), AuditAction::UserCreate);
    }
}
