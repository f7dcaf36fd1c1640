//! The Connect protocol's error codes: their names, the table for an HTTP
//! status without a Connect body, and what each one is to the engine
//! ([`ErrorKind`]).

use std::fmt;

use crate::sync::remote::{ErrorKind, RemoteError};

/// A Connect error code, plus `Transport` for a request that got no
/// answer at all.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum Code {
    Canceled,
    Unknown,
    InvalidArgument,
    DeadlineExceeded,
    NotFound,
    AlreadyExists,
    PermissionDenied,
    ResourceExhausted,
    FailedPrecondition,
    Aborted,
    OutOfRange,
    Unimplemented,
    Internal,
    Unavailable,
    DataLoss,
    Unauthenticated,
    /// No response: connection refused or reset, timeout, bad HTTP.
    Transport,
}

impl Code {
    /// Parses a Connect code name (`not_found`…).
    pub fn from_name(s: &str) -> Option<Code> {
        Some(match s {
            "canceled" => Code::Canceled,
            "unknown" => Code::Unknown,
            "invalid_argument" => Code::InvalidArgument,
            "deadline_exceeded" => Code::DeadlineExceeded,
            "not_found" => Code::NotFound,
            "already_exists" => Code::AlreadyExists,
            "permission_denied" => Code::PermissionDenied,
            "resource_exhausted" => Code::ResourceExhausted,
            "failed_precondition" => Code::FailedPrecondition,
            "aborted" => Code::Aborted,
            "out_of_range" => Code::OutOfRange,
            "unimplemented" => Code::Unimplemented,
            "internal" => Code::Internal,
            "unavailable" => Code::Unavailable,
            "data_loss" => Code::DataLoss,
            "unauthenticated" => Code::Unauthenticated,
            _ => return None,
        })
    }

    /// Returns the code for an HTTP status without a Connect error body
    /// (the Connect protocol's own table).
    pub fn from_http_status(status: u16) -> Code {
        match status {
            400 => Code::Internal,
            401 => Code::Unauthenticated,
            403 => Code::PermissionDenied,
            404 => Code::Unimplemented,
            429 | 502..=504 => Code::Unavailable,
            _ => Code::Unknown,
        }
    }

    /// Returns the Connect name of the code (`transport` for no answer).
    pub fn name(self) -> &'static str {
        match self {
            Code::Canceled => "canceled",
            Code::Unknown => "unknown",
            Code::InvalidArgument => "invalid_argument",
            Code::DeadlineExceeded => "deadline_exceeded",
            Code::NotFound => "not_found",
            Code::AlreadyExists => "already_exists",
            Code::PermissionDenied => "permission_denied",
            Code::ResourceExhausted => "resource_exhausted",
            Code::FailedPrecondition => "failed_precondition",
            Code::Aborted => "aborted",
            Code::OutOfRange => "out_of_range",
            Code::Unimplemented => "unimplemented",
            Code::Internal => "internal",
            Code::Unavailable => "unavailable",
            Code::DataLoss => "data_loss",
            Code::Unauthenticated => "unauthenticated",
            Code::Transport => "transport",
        }
    }

    /// Returns what the code is to the engine.
    pub fn kind(self) -> ErrorKind {
        match self {
            Code::Unauthenticated => ErrorKind::Unauthenticated,
            Code::PermissionDenied => ErrorKind::PermissionDenied,
            Code::NotFound => ErrorKind::NotFound,
            Code::AlreadyExists => ErrorKind::AlreadyExists,
            Code::InvalidArgument => ErrorKind::InvalidRequest,
            Code::Unimplemented => ErrorKind::Unsupported,
            Code::ResourceExhausted => ErrorKind::Throttled,
            Code::Unavailable => ErrorKind::Unavailable,
            Code::DeadlineExceeded => ErrorKind::TimedOut,
            Code::Transport => ErrorKind::NoResponse,
            Code::Canceled
            | Code::Unknown
            | Code::FailedPrecondition
            | Code::Aborted
            | Code::OutOfRange
            | Code::Internal
            | Code::DataLoss => ErrorKind::Other,
        }
    }

    /// Returns the code in words, as errors show it.
    pub fn describe(self) -> &'static str {
        match self {
            Code::Unauthenticated => "the platform did not accept the token (unauthenticated)",
            Code::PermissionDenied => "the token is not allowed to do this (permission_denied)",
            Code::NotFound => "not found (not_found)",
            Code::AlreadyExists => "already exists (already_exists)",
            Code::InvalidArgument => "the platform refused the request (invalid_argument)",
            Code::Unavailable => "the platform is unavailable (unavailable)",
            Code::ResourceExhausted => "too many requests (resource_exhausted)",
            Code::Transport => "no response from the platform",
            other => other.name(),
        }
    }

    /// Returns an error of `method` with this code.
    pub fn error(self, method: &'static str, message: impl Into<String>) -> RemoteError {
        RemoteError::new(method, self.kind(), self.describe(), message)
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.describe())
    }
}
