//! The one error type of the HTTP API and its status mapping.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use batch_types::{ErrorBody, ErrorDetails, FieldError, UNAUTHORIZED_MESSAGE, UnauthorizedBody};
use chrono::Utc;

use crate::i18n::pick;

/// Everything a handler can fail with. Each variant maps to one status.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 401: the API key is missing or wrong.
    #[error("unauthorized")]
    Unauthorized,
    /// 400: the request is invalid; one entry per field.
    #[error("invalid request: {0:?}")]
    Validation(Vec<FieldError>),
    /// 404: the named thing does not exist.
    #[error("{message}")]
    NotFound {
        /// The message naming the missing thing.
        message: String,
        /// Facts for the caller, such as `remainingItems`.
        data: Option<serde_json::Value>,
    },
    /// 409: the request conflicts with the current state.
    #[error("{message}")]
    Conflict {
        /// What conflicts.
        message: String,
        /// The next step for the caller.
        details: String,
        /// The current state, such as `currentBatchId`.
        data: Option<serde_json::Value>,
    },
    /// 413: the body is larger than the route accepts.
    #[error("request body larger than {limit} bytes")]
    PayloadTooLarge {
        /// The route's limit in bytes.
        limit: usize,
    },
    /// 503: a row this request must change stayed locked past the lock timeout.
    #[error("row lock not granted: {0}")]
    Busy(String),
    /// 503: the database cannot be reached right now.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// 500: an operation failed for a reason the caller can act on, such as
    /// an unreachable database. `details` gives the next step.
    #[error("{error}: {cause}")]
    OperationFailed {
        /// The operation's failure message.
        error: String,
        /// The next step for the caller.
        details: String,
        /// The cause, for the log.
        cause: String,
    },
    /// 500: an unexpected failure. `error` is the operation's failure message;
    /// the cause goes to the log, never to the caller.
    #[error("{error}: {cause}")]
    Internal {
        /// The failure message returned to the caller, such as `清除操作失败`.
        error: String,
        /// The cause, for the log.
        cause: String,
    },
}

impl ApiError {
    /// Creates a 400 with one invalid field.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Validation(vec![FieldError::new(field, message)])
    }

    /// Creates a 500 whose caller-facing message is `error`.
    pub fn internal(error: impl Into<String>, cause: impl std::fmt::Display) -> Self {
        Self::Internal {
            error: error.into(),
            cause: cause.to_string(),
        }
    }

    /// Turns a 500 or a 503 into a 500 whose message is the operation's
    /// failure (`清除操作失败` for a clear), as the clear contract defines
    /// one error body for every failure of the operation.
    pub fn during(self, operation_failed: impl Into<String>) -> Self {
        match self {
            Self::Internal { cause, .. } => Self::Internal {
                error: operation_failed.into(),
                cause,
            },
            Self::Unavailable(cause) => Self::OperationFailed {
                error: operation_failed.into(),
                details: unavailable_details(),
                cause,
            },
            Self::Busy(cause) => Self::OperationFailed {
                error: operation_failed.into(),
                details: busy_details(),
                cause,
            },
            other => other,
        }
    }
}

fn busy_details() -> String {
    pick(
        "批次记录被另一个事务长时间锁定（可能是卡住的工作进程），请几秒后重试；若持续出现，请检查数据库中长时间运行的事务",
        "another transaction held the batch row past the lock timeout, such as a stalled worker; \
         retry in a few seconds, and if this persists look for long-running transactions in the database",
    )
}

fn unavailable_details() -> String {
    pick(
        "无法在限定时间内连接数据库，请稍后重试；若持续出现，请检查 PostgreSQL 是否运行",
        "no database connection could be had in time; retry shortly, and if this persists \
         check that PostgreSQL is running",
    )
}

impl From<DbError> for ApiError {
    fn from(error: DbError) -> Self {
        match error {
            DbError::Unavailable(reason) => Self::Unavailable(reason),
            DbError::Query(diesel::result::Error::DatabaseError(_, info))
                if info.message().contains("lock timeout") =>
            {
                Self::Busy(info.message().to_owned())
            }
            DbError::Query(error) => {
                Self::internal(pick("数据库操作失败", "a database operation failed"), error)
            }
        }
    }
}

/// A failure of a database call, split by what the caller can do about it.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// No connection could be had in time: retry later.
    #[error("no database connection: {0}")]
    Unavailable(String),
    /// A query failed.
    #[error(transparent)]
    Query(#[from] diesel::result::Error),
}

impl From<diesel::r2d2::PoolError> for DbError {
    fn from(error: diesel::r2d2::PoolError) -> Self {
        Self::Unavailable(error.to_string())
    }
}

impl From<actix_web::error::BlockingError> for DbError {
    fn from(error: actix_web::error::BlockingError) -> Self {
        Self::Unavailable(error.to_string())
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::Validation(_) => StatusCode::BAD_REQUEST,
            Self::NotFound { .. } => StatusCode::NOT_FOUND,
            Self::Conflict { .. } => StatusCode::CONFLICT,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Busy(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal { .. } | Self::OperationFailed { .. } => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        let (error, details, data) = match self {
            Self::Unauthorized => {
                return HttpResponse::build(status).json(UnauthorizedBody {
                    error: UNAUTHORIZED_MESSAGE.to_owned(),
                });
            }
            Self::Validation(fields) => (
                pick("请求参数无效", "the request is invalid"),
                Some(ErrorDetails::Fields(fields.clone())),
                None,
            ),
            Self::NotFound { message, data } => (message.clone(), None, data.clone()),
            Self::Conflict {
                message,
                details,
                data,
            } => (
                message.clone(),
                Some(ErrorDetails::Message(details.clone())),
                data.clone(),
            ),
            Self::PayloadTooLarge { limit } => (
                pick("请求体过大", "the request body is too large"),
                Some(ErrorDetails::Message(pick(
                    format!("此接口的请求体最多 {limit} 字节，请拆分后分批发送"),
                    format!(
                        "this route accepts at most {limit} bytes; split the request into smaller ones"
                    ),
                ))),
                None,
            ),
            Self::Busy(cause) => {
                log::warn!("returning 503 because a row stayed locked: {cause}");
                (
                    pick(
                        "数据正被其他操作锁定",
                        "the data is locked by another operation",
                    ),
                    Some(ErrorDetails::Message(busy_details())),
                    None,
                )
            }
            Self::Unavailable(cause) => {
                log::warn!("returning 503 because the database is unavailable: {cause}");
                (
                    pick("数据库暂时不可用", "the database is unavailable"),
                    Some(ErrorDetails::Message(unavailable_details())),
                    None,
                )
            }
            Self::OperationFailed {
                error,
                details,
                cause,
            } => {
                log::error!("{error}: {cause}");
                (
                    error.clone(),
                    Some(ErrorDetails::Message(details.clone())),
                    None,
                )
            }
            Self::Internal { error, cause } => {
                log::error!("{error}: {cause}");
                (
                    error.clone(),
                    Some(ErrorDetails::Message(pick(
                        "服务器内部错误，详情已写入服务日志；请稍后重试，若持续出现请联系管理员",
                        "an internal error occurred and was written to the server log; retry, \
                         and if it persists ask the operator to check the log",
                    ))),
                    None,
                )
            }
        };
        HttpResponse::build(status).json(ErrorBody {
            success: false,
            error,
            details,
            data,
            timestamp: Utc::now(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_variant_has_its_status() {
        let cases = [
            (ApiError::Unauthorized, 401),
            (ApiError::invalid("batchSize", "too big"), 400),
            (
                ApiError::NotFound {
                    message: "x".into(),
                    data: None,
                },
                404,
            ),
            (
                ApiError::Conflict {
                    message: "x".into(),
                    details: "y".into(),
                    data: None,
                },
                409,
            ),
            (ApiError::PayloadTooLarge { limit: 10 }, 413),
            (ApiError::Unavailable("down".into()), 503),
            (ApiError::Busy("lock timeout".into()), 503),
            (ApiError::internal("清除操作失败", "boom"), 500),
            (
                ApiError::Unavailable("down".into()).during("清除操作失败"),
                500,
            ),
        ];
        for (error, status) in cases {
            assert_eq!(error.status_code().as_u16(), status, "{error:?}");
            assert_eq!(
                error.error_response().status().as_u16(),
                status,
                "{error:?}"
            );
        }
    }

    #[test]
    fn internal_body_hides_the_cause() {
        let error = ApiError::internal("清除操作失败", "relation \"ai_batches\" does not exist");
        let body = error.error_response().into_body();
        let bytes = actix_web::body::to_bytes(body);
        let bytes = futures_util::FutureExt::now_or_never(bytes)
            .expect("a JSON body is ready at once")
            .expect("the body is readable");
        let text = String::from_utf8_lossy(&bytes);
        assert!(text.contains("清除操作失败"), "{text}");
        assert!(!text.contains("ai_batches"), "{text}");
    }
}
