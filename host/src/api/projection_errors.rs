//! How projection errors become HTTP answers: the status of each, the
//! message with its causes, and the field it is about.

use axum::http::StatusCode;

use super::ApiError;
use crate::plugin::PluginError;
use crate::projection::ProjectionError;

impl From<ProjectionError> for ApiError {
    fn from(err: ProjectionError) -> ApiError {
        let status = match &err {
            ProjectionError::NotFound { .. } | ProjectionError::NoPartition { .. } => {
                StatusCode::NOT_FOUND
            }
            ProjectionError::PartitionRequired { .. } | ProjectionError::NotPartitioned { .. } => {
                StatusCode::BAD_REQUEST
            }
            ProjectionError::PartitionFaulted { .. } => StatusCode::CONFLICT,
            ProjectionError::AlreadyDeployed { .. }
            | ProjectionError::Faulted { .. }
            | ProjectionError::Stopped { .. }
            | ProjectionError::Conflict(_)
            | ProjectionError::Wake { .. } => StatusCode::CONFLICT,
            ProjectionError::Invalid(_) => StatusCode::BAD_REQUEST,
            ProjectionError::NotYet { .. } => StatusCode::CONFLICT,
            ProjectionError::Position(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ProjectionError::Streams(_) => StatusCode::BAD_REQUEST,
            ProjectionError::Load(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ProjectionError::Timeout { .. } => StatusCode::GATEWAY_TIMEOUT,
            ProjectionError::Plugin { source, .. } => match source {
                PluginError::QueryRejected { .. } => StatusCode::BAD_REQUEST,
                _ => StatusCode::UNPROCESSABLE_ENTITY,
            },
            ProjectionError::Gone { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ProjectionError::Log(_)
            | ProjectionError::Snapshot(_)
            | ProjectionError::Records(_) => {
                tracing::error!(error = %err, "projection runtime failure");
                StatusCode::INTERNAL_SERVER_ERROR
            }
        };
        let mut api = ApiError::new(status, error_chain(&err));
        match &err {
            ProjectionError::Streams(_) => api.field = Some("streams".into()),
            ProjectionError::Load(_) => api.field = Some("plugin".into()),
            ProjectionError::PartitionRequired { .. }
            | ProjectionError::NotPartitioned { .. }
            | ProjectionError::NoPartition { .. } => api.field = Some("partition".into()),
            _ => {}
        }
        api
    }
}

/// The error and its causes, `: `-separated (as the CLI prints them).
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}
